"""Deterministic, lock-step execution of composed nodes over a recorded bag.

``cooperative-fusion run --bag`` without ``--rate`` must give the same result
bag on any machine, however slow. Spinning an executor over DDS cannot promise
that: delivery and callback order depend on load. So in lock-step mode the
runner *is* the executor:

* sim time is set on every node directly (the same path ``/clock`` takes in
  rclpy's TimeSource), one recorded message at a time;
* each recorded message is handed straight to the callbacks subscribed to its
  topic; whatever those callbacks publish is handed on to the callbacks
  subscribed to *that* topic, breadth-first, before time moves on;
* timers fire in sim-time order at their period, with sim time set to their
  due time first; a cancelled timer's ticks are skipped until it is reset.

Recorded CDR bytes (:meth:`LockstepRunner.feed_serialized`) and CDR bytes a node
publishes (as rclpy's ``Publisher.publish`` takes them) go as they are to ``raw=True``
subscriptions, as a :class:`SerializedMessage`; others get the message deserialized once.
A recorder writes what was published with :func:`write_published`.
Publishers still publish over DDS as well (so RViz or ``ros2 topic echo`` see
the run), unless ``publish_to_dds`` is False. Nodes driven this way must not
also be spun by an executor. Besides rclpy nodes, ``nodes`` may hold stand-ins
with the same ``subscriptions`` / ``publishers`` / ``timers`` (``.lockstep_parallel``).
"""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock

from ..core.errors import ConfigError
from ..ros.bag import BagReader, BagWriter, message_type_name, serialize
from ..ros.time import ns_to_stamp

#: Called with (topic, message, sim_time_ns) for every message published by a composed node;
#: the message is a :class:`SerializedMessage` when it was published as CDR bytes or came serialized
#: from a worker process (:func:`write_published`, :func:`published_message` take either).
Recorder = Callable[[str, Any, int], None]


class SerializedMessage:
    """A published message as CDR bytes: ``raw=True`` subscriptions get ``data``, others :meth:`message`."""

    __slots__ = ('msgtype', 'data', '_msg')

    def __init__(self, msgtype: str, data: bytes) -> None:
        self.msgtype = msgtype      # 'pkg/msg/Name'
        self.data = data
        self._msg: Any = None

    def message(self) -> Any:
        """The rclpy message (deserialized on first use); raises BagError for bytes that do not decode."""
        if self._msg is None:
            self._msg = BagReader.deserialize(self.msgtype, self.data)
        return self._msg


def published_message(msg: Any) -> Any:
    """The message object of what a node published: a :class:`SerializedMessage` deserialized (once)."""
    return msg.message() if isinstance(msg, SerializedMessage) else msg


def published_cdr(msg: Any) -> tuple[str, bytes]:
    """``('pkg/msg/Name', CDR bytes)`` of what a node published: a :class:`SerializedMessage` as it is, a
    message object serialized (:func:`~..ros.bag.serialize`: deterministic, equal messages give equal bytes)."""
    if isinstance(msg, SerializedMessage):
        return msg.msgtype, msg.data
    return message_type_name(msg), serialize(msg)


def write_published(writer: BagWriter, topic: str, msg: Any, t_ns: int) -> None:
    """Write what a node published on ``topic`` (a message object or a :class:`SerializedMessage`) at log
    time ``t_ns``, the same bytes either way."""
    writer.write_serialized(topic, *published_cdr(msg), t_ns)


@dataclass(order=True)
class _DueTimer:
    due_ns: int
    order: int
    timer: Any = field(compare=False)


class LockstepRunner:
    """Drive ``nodes`` deterministically; see the module docstring.

    Every node gets ``use_sim_time = True``. Call :meth:`feed` (or :meth:`feed_serialized`)
    with recorded messages in log-time order, then :meth:`advance_to` the end time.
    """

    def __init__(self, nodes: Iterable[Any], recorder: Recorder | None = None,
                 publish_to_dds: bool = True, start_ns: int = 0) -> None:
        self._nodes = list(nodes)
        self._ros_nodes = [n for n in self._nodes if isinstance(n, Node)]
        self._recorder = recorder
        self._publish_to_dds = publish_to_dds
        self._now_ns = start_ns
        self._time_set = False
        self._queue: deque[tuple[str, Any]] = deque()
        self._subs: dict[str, list[Any]] = {}
        self._sub_types: dict[int, str] = {}
        self._timers: list[_DueTimer] = []
        self._order = 0
        self.dispatched = 0
        for node in self._ros_nodes:
            node.set_parameters([Parameter('use_sim_time', Parameter.Type.BOOL, True)])
        self._set_time(start_ns)
        for node in self._nodes:
            for sub in node.subscriptions:
                self._subs.setdefault(sub.topic_name, []).append(sub)
                self._sub_types[id(sub)] = message_type_name(sub.msg_type)
            for pub in node.publishers:
                self._wrap(pub)
            for timer in node.timers:
                self._schedule(timer, start_ns + timer.timer_period_ns)

    @property
    def now_ns(self) -> int:
        return self._now_ns

    def _wrap(self, pub: Any) -> None:
        original = pub.publish
        topic = pub.topic_name
        msgtype = message_type_name(pub.msg_type)

        def publish(msg: Any) -> None:
            if isinstance(msg, bytes):      # CDR bytes, as rclpy's Publisher.publish takes them
                msg = SerializedMessage(msgtype, msg)
            if self._publish_to_dds:
                original(msg.data if isinstance(msg, SerializedMessage) else msg)
            self._queue.append((topic, msg))

        pub.publish = publish
        # the callbacks here and the recorder (it gets everything) subscribe too, whether or not DDS sees them
        dds_count = pub.get_subscription_count
        pub.get_subscription_count = lambda: max(dds_count(), len(self._subs.get(topic, ()))
                                                 + (1 if self._recorder is not None else 0))

    def _schedule(self, timer: Any, due_ns: int) -> None:
        self._order += 1
        heapq.heappush(self._timers, _DueTimer(due_ns, self._order, timer))

    def _set_time(self, t_ns: int) -> None:
        if t_ns < self._now_ns:
            raise ConfigError(f'lock-step time cannot go back: {t_ns} ns < {self._now_ns} ns')
        if t_ns == self._now_ns and self._time_set:
            return
        self._now_ns = t_ns
        self._time_set = True
        clock = Clock(clock=ns_to_stamp(t_ns))
        for node in self._ros_nodes:
            node._time_source.clock_callback(clock)  # the path /clock takes in rclpy

    def _call_sub(self, sub: Any, msg: Any) -> None:
        """Run one subscription callback (a hook for :mod:`.lockstep_parallel`)."""
        sub.callback(msg)

    def _call_timer(self, timer: Any) -> None:
        """Run one timer callback (a hook for :mod:`.lockstep_parallel`)."""
        timer.callback()

    def _deliver(self, topic: str, msg: Any) -> None:
        if isinstance(msg, SerializedMessage):
            self._deliver_serialized(topic, msg)
            return
        for sub in self._subs.get(topic, ()):
            if isinstance(msg, sub.msg_type):
                self._call_sub(sub, msg)
                self.dispatched += 1

    def _deliver_serialized(self, topic: str, msg: SerializedMessage) -> None:
        for sub in self._subs.get(topic, ()):
            if self._sub_types[id(sub)] == msg.msgtype:
                self._call_sub(sub, msg.data if sub.raw else msg.message())
                self.dispatched += 1

    def _drain(self) -> None:
        while self._queue:
            topic, msg = self._queue.popleft()
            if self._recorder is not None:
                self._recorder(topic, msg, self._now_ns)
            self._deliver(topic, msg)

    def advance_to(self, t_ns: int) -> None:
        """Fire every timer due up to ``t_ns`` (inclusive), in order, then set time to ``t_ns``."""
        while self._timers and self._timers[0].due_ns <= t_ns:
            due = heapq.heappop(self._timers)
            if not due.timer.is_canceled():     # a cancelled timer keeps its phase: reset() resumes its ticks
                self._set_time(max(due.due_ns, self._now_ns))
                self._call_timer(due.timer)
                self._drain()
            self._schedule(due.timer, due.due_ns + due.timer.timer_period_ns)
        self._set_time(max(t_ns, self._now_ns))

    def feed(self, topic: str, msg: Any, t_ns: int) -> None:
        """Deliver one recorded message at sim time ``t_ns`` and everything it causes."""
        self.advance_to(t_ns)
        self._deliver(topic, msg)
        self._drain()

    def feed_serialized(self, topic: str, msgtype: str, data: bytes, t_ns: int) -> None:
        """:meth:`feed` for recorded CDR bytes of type ``msgtype``: ``raw=True`` subscriptions get the bytes.

        Raises BagError, before time moves, when a subscription that takes messages
        needs them and they do not deserialize (the caller skips the message).
        """
        msg = SerializedMessage(msgtype, data)
        if any(not sub.raw and self._sub_types[id(sub)] == msgtype for sub in self._subs.get(topic, ())):
            msg.message()
        self.feed(topic, msg, t_ns)
