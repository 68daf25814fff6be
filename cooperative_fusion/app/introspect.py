"""A look at the live ROS graph without ros2cli: topics and their rates, one-line message summaries, recording.

The parts of ``cooperative-fusion topics``, ``echo`` and ``record``. A :class:`GraphSession` is one
rclpy context and node on the user's ``ROS_DOMAIN_ID``; Ctrl-C sets its ``stopped`` flag instead of
raising inside a callback, so a command can close what it wrote before it reports the interruption.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from ..core.errors import BagError, ConfigError, MessageFormatError

if TYPE_CHECKING:
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

    from ..ros.bag import BagWriter

#: Prefix of the introspection node's name; its own endpoints are left out of the counts.
NODE_PREFIX = '_cooperative_fusion_'
#: Depth of every introspection subscription: enough for a burst on a busy machine.
DEPTH = 100


def topic_name(text: str) -> str:
    """An absolute topic name (a relative one is taken from the root namespace, as ros2cli does)."""
    name = text.strip()
    if not name or name == '/':
        raise ConfigError(f'{text!r} is not a topic name')
    return name if name.startswith('/') else '/' + name


class GraphSession:
    """One rclpy context, node and executor on the user's ROS domain; use as a context manager.

    While open, SIGINT and SIGTERM set :attr:`stopped` (the previous handlers come back on exit).
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self.stopped = threading.Event()
        self._old_handlers: dict[int, Any] = {}
        self.node: Node | None = None

    def __enter__(self) -> 'GraphSession':
        import os

        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        self.context = Context()
        # ROS_DOMAIN_ID comes from the environment, as for every ROS 2 tool
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(f'{NODE_PREFIX}{self.role}_{os.getpid()}', context=self.context,
                         enable_rosout=False, start_parameter_services=False)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        import rclpy

        try:
            if self.node is not None:
                self.executor.remove_node(self.node)
                self.node.destroy_node()
            self.executor.shutdown(timeout_sec=1.0)
        finally:
            rclpy.try_shutdown(context=self.context)
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopped.set()

    def spin_for(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Run callbacks for ``seconds`` (inf: no limit), or until ``until()`` holds or the session is stopped."""
        deadline = time.monotonic() + seconds
        while not self.stopped.is_set() and not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.executor.spin_once(timeout_sec=min(0.05, left))

    def topic_types(self) -> dict[str, str]:
        """``{topic: 'pkg/msg/Type'}`` of every topic in the graph (the first type of a topic with several)."""
        return {name: types[0] for name, types in self.node.get_topic_names_and_types() if types}

    def publishers(self, topic: str) -> list[Any]:
        """Publisher endpoints of ``topic``, this session's own left out."""
        return [p for p in self.node.get_publishers_info_by_topic(topic) if not p.node_name.startswith(NODE_PREFIX)]

    def subscription_qos(self, topic: str, *, latched: bool) -> 'QoSProfile':
        """QoS that matches every publisher of ``topic``, as ros2cli chooses it.

        Reliable when all publishers are, else best effort; with ``latched``, transient local when all
        publishers are (a late joiner then gets what they keep), else volatile.
        """
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        pubs = self.publishers(topic)
        reliable = bool(pubs) and all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in pubs)
        durable = latched and bool(pubs) and all(
            p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in pubs)
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=DEPTH,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if durable else DurabilityPolicy.VOLATILE)

    def wait_for_topic(self, topic: str, timeout_s: float = math.inf) -> str | None:
        """The type of ``topic`` once it has a publisher; None when stopped or after ``timeout_s``."""
        found: dict[str, str] = {}

        def appeared() -> bool:
            msgtype = self.topic_types().get(topic)
            if msgtype is not None and self.publishers(topic):
                found['type'] = msgtype
            return bool(found)

        self.spin_for(timeout_s, appeared)
        return found.get('type')


# ----------------------------------------------------------------------------- topics

def rate_hz(arrivals_ns: Sequence[int]) -> float | None:
    """Mean rate of messages received at ``arrivals_ns`` (ns), Hz: (n - 1) / span; None below 2 messages."""
    if len(arrivals_ns) < 2:
        return None
    span = max(arrivals_ns) - min(arrivals_ns)
    return (len(arrivals_ns) - 1) * 1e9 / span if span > 0 else None


@dataclass(frozen=True)
class TopicStats:
    """One live topic: type, publisher count (this tool's own left out), messages heard and their rate."""

    topic: str
    msgtype: str
    publishers: int
    messages: int
    rate_hz: float | None


def measure_topics(session: GraphSession, discovery_s: float, measure_s: float) -> list[TopicStats]:
    """Every topic in the graph, with its rate (0: not measured).

    Topics are looked for during ``discovery_s`` and the ``measure_s`` that follow (discovery
    between processes takes a second or more); each is measured from when it was found.
    """
    from ..ros.bag import message_class

    types: dict[str, str] = {}
    arrivals: dict[str, list[int]] = {}

    def look() -> None:
        for topic, msgtype in session.topic_types().items():
            if topic in types:
                continue
            types[topic] = msgtype
            stamps = arrivals[topic] = []
            if measure_s <= 0:
                continue
            try:
                cls = message_class(msgtype)
            except BagError:
                continue             # a type not installed here: listed, not measured
            session.node.create_subscription(cls, topic, lambda raw, s=stamps: s.append(time.monotonic_ns()),
                                             session.subscription_qos(topic, latched=False), raw=True)

    deadline = time.monotonic() + discovery_s + measure_s
    while not session.stopped.is_set() and (left := deadline - time.monotonic()) > 0:
        look()
        session.spin_for(min(0.25, left))
    look()
    return [TopicStats(t, types[t], len(session.publishers(t)), len(arrivals[t]), rate_hz(arrivals[t]))
            for t in sorted(types)]


def format_topics(rows: Iterable[TopicStats], measured: bool) -> str:
    """The table ``topics`` prints: topic, type, publishers and (when measured) the rate."""
    rows = list(rows)
    if not rows:
        return 'no topics'
    w_topic = max(len('TOPIC'), *(len(r.topic) for r in rows))
    w_type = max(len('TYPE'), *(len(r.msgtype) for r in rows))
    lines = [f"{'TOPIC':<{w_topic}}  {'TYPE':<{w_type}}  PUB" + ('  RATE' if measured else '')]
    for r in rows:
        line = f'{r.topic:<{w_topic}}  {r.msgtype:<{w_type}}  {r.publishers:>3}'
        if measured:
            if r.rate_hz is not None:
                line += f'  {r.rate_hz:.1f} Hz'
            else:
                line += '  no messages' if r.messages == 0 else '  1 message'
        lines.append(line)
    return '\n'.join(lines)


# ------------------------------------------------------------------------------- echo

def _stamp_text(stamp: Any) -> str:
    return f'{int(stamp.sec)}.{int(stamp.nanosec):09d}'


def _grid_summary(msg: Any) -> str:
    import numpy as np

    from ..ros.grid import grid_from_msg

    spec, cells = grid_from_msg(msg)
    occupied = int(np.count_nonzero(cells >= 50))
    unknown = int(np.count_nonzero(cells < 0))
    free = cells.size - occupied - unknown
    return (f'grid {spec.width}x{spec.height} at {spec.resolution:g} m: '
            f'{occupied} occupied, {free} free, {unknown} unknown')


def _status_summary(status: Any) -> str:
    from ..ros.diagnostics import status_level

    try:
        level = status_level(status).name
    except ValueError:
        level = f'level {status.level!r}'
    values = {kv.key: kv.value for kv in status.values}
    extra = ', '.join(f'{k} {values[k]}' for k in ('ttc_s', 'distance_m', 'object') if k in values)
    return f'{status.name} {level}' + (f' ({extra})' if extra else '')


def _summary(msgtype: str, msg: Any) -> str:
    if msgtype == 'sensor_msgs/msg/PointCloud2':
        fields = ','.join(f.name for f in msg.fields)
        return f'{int(msg.width) * int(msg.height)} points ({fields})'
    if msgtype == 'nav_msgs/msg/OccupancyGrid':
        return _grid_summary(msg)
    if msgtype == 'sensor_msgs/msg/Image':
        return f'image {msg.width}x{msg.height} {msg.encoding}'
    if msgtype == 'sensor_msgs/msg/CameraInfo':
        return f'camera info {msg.width}x{msg.height}, fx {msg.k[0]:g} fy {msg.k[4]:g}'
    if msgtype == 'nav_msgs/msg/Odometry':
        p, v = msg.pose.pose.position, msg.twist.twist.linear
        q = msg.pose.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        return (f'child {msg.child_frame_id}: x {p.x:.2f} y {p.y:.2f} yaw {yaw:.3f} rad, '
                f'v {math.hypot(v.x, v.y):.2f} m/s')
    if msgtype == 'sensor_msgs/msg/TimeReference':
        return f'time_ref {_stamp_text(msg.time_ref)} ({msg.source})'
    if msgtype == 'diagnostic_msgs/msg/DiagnosticArray':
        shown = [_status_summary(s) for s in msg.status[:8]]
        more = f', ... {len(msg.status) - 8} more' if len(msg.status) > 8 else ''
        return f'{len(msg.status)} statuses' + (': ' + '; '.join(shown) + more if shown else '')
    if msgtype == 'nav_msgs/msg/Path':
        return f'{len(msg.poses)} poses'
    if msgtype == 'geometry_msgs/msg/TwistStamped':
        # /<v>/cooperative/cmd carries its implied acceleration in linear.z (docs/follower.md)
        return (f'linear.x {msg.twist.linear.x:.2f} m/s, linear.z {msg.twist.linear.z:.2f}, '
                f'angular.z {msg.twist.angular.z:.3f} rad/s')
    if msgtype == 'visualization_msgs/msg/MarkerArray':
        return f'{len(msg.markers)} markers'
    if msgtype == 'rosgraph_msgs/msg/Clock':
        return f'clock {_stamp_text(msg.clock)}'
    if msgtype == 'std_msgs/msg/String':
        text = msg.data if len(msg.data) <= 60 else msg.data[:57] + '...'
        return f'{len(msg.data)} chars: {text!r}'
    if msgtype == 'rcl_interfaces/msg/Log':
        return f'[{msg.name}] {msg.msg[:80]}'
    return 'fields ' + ', '.join(msg.get_fields_and_field_types())


def summarize(msgtype: str, msg: Any) -> str:
    """One line about a message: header stamp (s.ns) and frame ('-' without a header), then a summary by type.

    A message the adapters reject is summarized as ``bad message: <why>``.
    """
    header = getattr(msg, 'header', None)
    if header is not None and hasattr(header, 'stamp'):
        head = f'{_stamp_text(header.stamp)} {header.frame_id or "-"}'
    else:
        head = '- -'
    try:
        body = _summary(msgtype, msg)
    except (MessageFormatError, ValueError, IndexError) as exc:
        body = f'bad message: {exc}'
    return f'{head} {body}'


# ----------------------------------------------------------------------------- record

class TopicRecorder:
    """Writes live topics into a bag as they appear: log time = the node's clock, raw CDR as received.

    topics : the topics to record (None: every topic, including ones that appear later)
    """

    def __init__(self, session: GraphSession, writer: 'BagWriter', topics: Sequence[str] | None,
                 warn: Callable[[str], None]) -> None:
        self.session = session
        self.writer = writer
        self.wanted = None if topics is None else list(dict.fromkeys(topics))
        self.warn = warn
        self.subscribed: dict[str, str] = {}
        self._skipped: set[str] = set()
        self.count = 0

    def discover(self) -> list[str]:
        """Subscribe to the wanted topics that have appeared since the last call; returns them."""
        from rclpy.qos import DurabilityPolicy

        from ..ros.bag import message_class

        new = []
        for topic, msgtype in sorted(self.session.topic_types().items()):
            if topic in self.subscribed or topic in self._skipped:
                continue
            if self.wanted is not None and topic not in self.wanted:
                continue
            if not self.session.publishers(topic):
                continue             # only subscribers so far: type and QoS come with a publisher
            try:
                cls = message_class(msgtype)
            except BagError as exc:
                self._skipped.add(topic)
                self.warn(f'not recording {topic}: {exc}')
                continue
            qos = self.session.subscription_qos(topic, latched=True)
            latched = qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
            self.session.node.create_subscription(cls, topic, self._callback(topic, msgtype), qos, raw=True)
            self.subscribed[topic] = msgtype
            new.append(topic + (' (latched)' if latched else ''))
        return new

    def _callback(self, topic: str, msgtype: str) -> Callable[[bytes], None]:
        def on_message(raw: bytes) -> None:
            if topic in self._skipped:
                return
            t_ns = max(0, int(self.session.node.get_clock().now().nanoseconds))
            try:
                self.writer.write_serialized(topic, msgtype, raw, t_ns)
            except BagError as exc:     # e.g. a type the bag's typestore cannot describe
                self._skipped.add(topic)
                self.warn(f'not recording {topic}: {exc}')
                return
            self.count += 1

        return on_message


def record(session: GraphSession, out: str | Path, topics: Sequence[str] | None, *, overwrite: bool,
           discover_period_s: float, max_duration_s: float, info: Callable[[str], None]) -> tuple[int, dict[str, int]]:
    """Record until the session is stopped (Ctrl-C) or ``max_duration_s`` passed; the bag is closed either way.

    Returns (messages written, {topic: count}).
    """
    from ..ros.bag import BagWriter

    writer = BagWriter(out, overwrite=overwrite).open()
    try:
        recorder = TopicRecorder(session, writer, topics, info)
        deadline = time.monotonic() + max_duration_s
        while not session.stopped.is_set() and time.monotonic() < deadline:
            for topic in recorder.discover():
                info(f'recording {topic}')
            session.spin_for(min(discover_period_s, max(0.0, deadline - time.monotonic())))
        counts = dict(writer.counts)
    except BaseException:
        writer.close()            # keep what was recorded readable, whatever stopped us
        raise
    writer.close()
    return recorder.count, counts
