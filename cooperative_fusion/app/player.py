"""``cooperative-fusion replay BAG``: publish a recorded bag with its timing and a /clock.

Every topic is published with its recorded relative timing, scaled by
``--rate``, and ``/clock`` (rosgraph_msgs/Clock) carries the bag's log time,
so nodes with ``use_sim_time`` follow the bag. The clock goes out just before a
message, when that message's log time is at least one clock period
(``--clock-hz``, default :data:`DEFAULT_CLOCK_HZ`) past the last /clock, and once
more at the end: every node with ``use_sim_time`` receives every /clock in a
Python callback (about 0.35 ms each here), so a /clock before each of a 4-vehicle
bag's ~450 messages a second cost each node ~0.15 core. Between two ticks a node's
clock lags the newest message by less than one period (10 ms at 100 Hz), which is
also the resolution of its sim-time timers; ``--clock-hz 0`` ticks before every
message. Messages are published as the recorded CDR bytes (rclpy's
``Publisher.publish`` takes bytes), with no deserialisation.

QoS: every topic is published with :func:`cooperative_fusion.ros.bag.topic_qos`
(RELIABLE, which serves RELIABLE and BEST_EFFORT readers alike, so a Gazebo bag
recorded BEST_EFFORT still reaches this package's RELIABLE subscribers); a
topic recorded TRANSIENT_LOCAL (``/tf_static`` in a foreign bag,
``/truth/scenario``) stays latched. ``/clock`` uses ``clock_qos``. A ``/clock``
recorded in the bag is not replayed: the replay makes its own.

**Wall clock** (``wall_clock=True``, ``replay --wall-clock``), as on a vehicle: no
``/clock``, rate 1, and every stamp moved onto the wall clock by one constant
offset = (system time when the first message goes out) - (its log time), in
integer ns, shifted in the CDR bytes (:mod:`cooperative_fusion.ros.restamp`):
``header.stamp`` of every header-first type, and the time right after the header
(``TimeReference.time_ref``, ``OccupancyGrid.info.map_load_time``). One offset for
all topics keeps each vehicle's simulated clock offset (its time_reference
carries it). A type holding other stamps (``visualization_msgs/MarkerArray``, as
``/truth/objects``) is not replayed: on a graph where every other stamp is "now",
its bag-time stamps would be decades old to a node (dropped as too old, or matched
to the wrong time); its messages are counted and logged. A type without stamps
(``std_msgs/String``, as ``/truth/scenario``) goes out unchanged. Bytes that cannot
be shifted (not plain CDR, truncated) are counted, logged and skipped.

The timing loop, :class:`BagPlayer`, holds no ROS, so ``run --bag`` reuses it.
Top-level imports stay light: the CLI imports this module to build its parser.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from rclpy.node import Node

    from ..ros.bag import BagReader

#: /clock ticks per second of bag time by default (rosbag2's ``play --clock`` default is 40).
DEFAULT_CLOCK_HZ = 100.0

#: Longest single sleep: keeps a replay responsive to shutdown across long gaps in the bag.
_MAX_SLEEP_S = 0.1


class BagPlayer:
    """Iterate a bag's messages and pace them in wall time.

    Iterating yields ``(log_time_ns, topic, msgtype, raw_cdr)`` in log-time
    order. :meth:`wait_until` blocks until wall time has caught up with a log
    time: the first call anchors log time to wall time, later calls sleep until
    ``anchor_wall + (log_time_ns - anchor_log) / rate``. A consumer slower than
    that is never made to catch up by skipping: it just does not sleep.

    reader : an open :class:`~cooperative_fusion.ros.bag.BagReader`
    rate : replay speed factor (> 0), or None for "as fast as the consumer allows"
    topics : only these topics (None: all)
    clock, sleep : wall clock (s) and sleep (s); injectable for tests
    """

    def __init__(self, reader: 'BagReader', *, rate: float | None = 1.0, topics: Iterable[str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate is not None and not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ConfigError(f'replay rate must be a finite number > 0 (or None for as fast as possible), '
                              f'got {rate!r}')
        self.reader = reader
        self.rate = None if rate is None else float(rate)
        self.topics = None if topics is None else list(topics)
        self._clock = clock
        self._sleep = sleep
        self._anchor: tuple[int, float] | None = None

    def __iter__(self) -> Iterator[tuple[int, str, str, bytes]]:
        for topic, msgtype, log_time_ns, raw in self.reader.messages(self.topics):
            yield log_time_ns, topic, msgtype, raw

    def due_wall_time(self, log_time_ns: int) -> float | None:
        """Wall time (clock seconds) at which ``log_time_ns`` is due; None before the anchor or with rate None."""
        if self.rate is None or self._anchor is None:
            return None
        anchor_log_ns, anchor_wall = self._anchor
        return anchor_wall + (log_time_ns - anchor_log_ns) * 1e-9 / self.rate

    def wait_until(self, log_time_ns: int, should_continue: Callable[[], bool] = lambda: True) -> bool:
        """Sleep until ``log_time_ns`` is due; False if ``should_continue`` turned False meanwhile."""
        if self.rate is None:
            return should_continue()
        if self._anchor is None:
            self._anchor = (log_time_ns, self._clock())
            return should_continue()
        due = self.due_wall_time(log_time_ns)
        while True:
            if not should_continue():
                return False
            remaining = due - self._clock()
            if remaining <= 0.0:
                return True
            self._sleep(min(remaining, _MAX_SLEEP_S))


class ReplayPublisher:
    """Publishers for a bag's topics and /clock on one rclpy node.

    node : the node to publish from
    topics : ``{topic: msgtype}`` to publish (``/clock`` in it is ignored)
    latched : topics recorded TRANSIENT_LOCAL, kept latched
    clock_hz : at most this many /clock ticks per second of bag time (0: one before every message)
    clock : False: no /clock at all (a wall-clock replay)
    """

    def __init__(self, node: 'Node', topics: dict[str, str], latched: Iterable[str] = (),
                 clock_hz: float = DEFAULT_CLOCK_HZ, clock: bool = True) -> None:
        from rclpy.qos import DurabilityPolicy
        from rosgraph_msgs.msg import Clock

        from ..ros.bag import message_class, topic_qos
        from ..ros.qos import clock_qos

        if not (isinstance(clock_hz, (int, float)) and math.isfinite(clock_hz) and clock_hz >= 0):
            raise ConfigError(f'clock rate must be a finite number >= 0 Hz (0: a tick before every message), '
                              f'got {clock_hz!r}')
        self.node = node
        self._clock_cls = Clock
        self.clock_period_ns = int(round(1e9 / clock_hz)) if clock_hz > 0 else 0
        self.clock_ns: int | None = None   # the last /clock published
        self.clock_pub = node.create_publisher(Clock, '/clock', clock_qos()) if clock else None
        self.publishers: dict[str, Any] = {}
        latched = set(latched)
        for topic, msgtype in sorted(topics.items()):
            if topic == '/clock':
                continue
            qos = topic_qos(topic)
            if topic in latched:
                qos.durability = DurabilityPolicy.TRANSIENT_LOCAL
            self.publishers[topic] = node.create_publisher(message_class(msgtype), topic, qos)
        self.published = 0

    def wait_for_subscribers(self, timeout_s: float, should_continue: Callable[[], bool] = lambda: True,
                             expected: Mapping[str, int] | None = None) -> bool:
        """Wait up to ``timeout_s`` until every publisher (and /clock) has a subscriber; True if they all do.

        expected : ``{topic: n}`` subscriptions to wait for (default 1 each). One matched subscriber
        is not all of them: a message sent before the others matched is lost to them (a VOLATILE
        reader gets nothing from before it matched), e.g. the bag's first time reference.
        """
        deadline = time.monotonic() + timeout_s
        pubs = self._all_publishers()
        want = {p.topic_name: max(1, (expected or {}).get(p.topic_name, 1)) for p in pubs}
        while should_continue():
            if all(p.get_subscription_count() >= want[p.topic_name] for p in pubs):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return False

    def publish(self, log_time_ns: int, topic: str, raw: bytes) -> bool:
        """Publish ``raw`` on ``topic``, /clock at ``log_time_ns`` first when a tick is due; False for a topic
        not replayed."""
        pub = self.publishers.get(topic)
        if pub is None:
            return False
        if self.clock_pub is not None and (self.clock_ns is None
                                           or log_time_ns - self.clock_ns >= self.clock_period_ns):
            self._tick(log_time_ns)
        pub.publish(raw)
        self.published += 1
        return True

    def finish(self, log_time_ns: int) -> None:
        """The last /clock: at ``log_time_ns`` (the last message's log time) unless it went out already."""
        if self.clock_pub is not None and (self.clock_ns is None or log_time_ns > self.clock_ns):
            self._tick(log_time_ns)

    def _tick(self, log_time_ns: int) -> None:
        """Publish /clock at ``log_time_ns``; callers tick only forward (never behind ``clock_ns``)."""
        from ..ros.time import ns_to_stamp

        self.clock_ns = log_time_ns
        self.clock_pub.publish(self._clock_cls(clock=ns_to_stamp(log_time_ns)))

    def _all_publishers(self) -> list[Any]:
        return [p for p in [self.clock_pub, *self.publishers.values()] if p is not None]

    def wait_for_acked(self, timeout_s: float) -> bool:
        """Block until reliable subscribers acknowledged everything published (or ``timeout_s`` passed)."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        ok = True
        for pub in self._all_publishers():
            left = max(0.0, deadline - time.monotonic())
            ok &= bool(pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))))
        return ok


def replay(bag: str | Path, *, rate: float | None = 1.0, topics: Sequence[str] | None = None,
           context: Any = None, wait_for_subscribers_s: float = 0.0, node_name: str = 'replay',
           on_message: Callable[[int, str], None] | None = None, clock_hz: float = DEFAULT_CLOCK_HZ,
           clock_subscribers: int = 1, wall_clock: bool = False,
           on_offset: Callable[[int], None] | None = None) -> int:
    """Publish ``bag`` on the ROS graph of ``context`` (rclpy must be initialised); returns messages published.

    rate : speed factor, or None for as fast as possible
    topics : only these topics (None: all but /clock)
    wait_for_subscribers_s : wait up to this long for every topic to have a subscriber first
    clock_hz : /clock ticks per second of bag time at most (0: one before every message)
    clock_subscribers : with ``wait_for_subscribers_s``, wait for this many /clock subscribers (every node on
        sim time is one: a node that matches /clock late has no time yet when the first data reaches it)
    wall_clock : no /clock, stamps shifted onto the system clock (module docstring); rate must be 1
    on_offset : with ``wall_clock``, called once with the offset (ns) when the first message goes out
    """
    import rclpy
    from rclpy.qos import DurabilityPolicy

    from ..ros.bag import BagReader
    from ..ros.restamp import Restamper

    if wall_clock and rate != 1.0:
        raise ConfigError(f'a wall-clock replay runs at rate 1 (stamps are "now" when sent), got rate {rate!r}')
    with BagReader(bag) as reader:
        recorded = reader.topics()
        if topics is not None:
            unknown = sorted(set(topics) - set(recorded))
            if unknown:
                raise ConfigError(f'{bag}: topics {unknown} are not in the bag; it has {sorted(recorded)}')
            recorded = {t: recorded[t] for t in topics}
        restamper = Restamper(0, {t: m for t, m in recorded.items() if t != '/clock'}) if wall_clock else None
        skipped = restamper.skip_topics() if restamper is not None else []
        latched = [t for t in recorded
                   if (q := reader.offered_qos(t)) is not None and q.durability == DurabilityPolicy.TRANSIENT_LOCAL]
        node = rclpy.create_node(node_name, context=context)
        log = node.get_logger()
        try:
            out = ReplayPublisher(node, {t: m for t, m in recorded.items() if t not in skipped}, latched,
                                  clock_hz=clock_hz, clock=not wall_clock)
            if skipped:
                log.warning(f'not replayed on the wall clock (their stamps cannot be shifted): {skipped}')
            ok = context.ok if context is not None else rclpy.ok
            expected = {out.clock_pub.topic_name: clock_subscribers} if out.clock_pub is not None else {}
            if wait_for_subscribers_s > 0 and not out.wait_for_subscribers(wait_for_subscribers_s, ok, expected):
                log.warning(f'not every topic has a subscriber after {wait_for_subscribers_s:.1f} s; replaying anyway')
            player = BagPlayer(reader, rate=rate, topics=list(out.publishers) + skipped)
            last_ns = None
            for log_time_ns, topic, _msgtype, raw in player:
                if restamper is not None:
                    if topic in skipped:
                        restamper(topic, raw)       # counts it
                        continue
                    first = player.due_wall_time(log_time_ns) is None
                    if not player.wait_until(log_time_ns, ok):
                        break
                    if first:
                        restamper.offset_ns = time.time_ns() - log_time_ns
                        if on_offset is not None:
                            on_offset(restamper.offset_ns)
                    raw = restamper(topic, raw)
                    if raw is None:
                        log.warning(f'{topic}: a message at log time {log_time_ns} ns is not plain CDR with '
                                    f'a header stamp; skipped', throttle_duration_sec=5.0)
                        continue
                elif not player.wait_until(log_time_ns, ok):
                    break
                if out.publish(log_time_ns, topic, raw):
                    last_ns = log_time_ns
                    if on_message is not None:
                        on_message(log_time_ns, topic)
            if restamper is not None and (restamper.skipped or restamper.malformed):
                log.warning(f'wall-clock replay: messages not replayed: {restamper.skipped or "none"} of types '
                            f'whose stamps cannot be shifted, {restamper.malformed or "none"} with bad bytes')
            if ok():
                if last_ns is not None:
                    out.finish(last_ns)
                out.wait_for_acked(2.0)
            return out.published
        finally:
            node.destroy_node()
