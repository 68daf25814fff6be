"""rosbag2 reading and writing through ``rosbags``: the only module that touches bags.

Writing produces a rosbag2 directory (metadata version 9, mcap storage) that
``ros2 bag`` on Jazzy or newer reads: every connection carries the message
definition and the RIHS01 type hash of the ROS 2 Kilted typestore (identical
to Jazzy's for the message types this package uses, and to the hashes of the
installed message packages), and an offered QoS profile chosen per topic by
:func:`topic_qos`, so ``ros2 bag play`` on a vehicle publishes with it.

Messages are serialized straight from the rclpy message's fields by
:mod:`.cdr` (:func:`serialize`), into the bytes rosbags' CDR serializer writes.
Not ``rclpy.serialization.serialize_message`` (Fast CDR): it leaves alignment
padding uninitialised, so the same message gave different bytes from call to
call, and the same seed would not give the same bag; and not a field-by-field
copy into rosbags' classes: that copy was most of the recording's cost.

Reading accepts rosbag2 directories (mcap or sqlite3 storage) and single
``.mcap`` / ``.db3`` files, and yields raw CDR bytes in log-time order;
:meth:`BagReader.deserialize` turns them into rclpy messages.
"""
from __future__ import annotations

import array
import importlib
import shutil
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Iterator

import numpy as np

from rclpy.qos import DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ..core.errors import BagError
from . import qos as qos_profiles
from .cdr import UnsupportedType, serialize_cdr
from . import names

#: Typestore whose message definitions and RIHS01 hashes go into written bags.
TYPESTORE = Stores.ROS2_KILTED
#: rosbag2 metadata version written (Jazzy and Kilted read it).
BAG_VERSION = 9
#: Files that may sit in a rosbag2 directory; ``overwrite`` removes only such directories.
_BAG_SUFFIXES = ('.mcap', '.db3', '.yaml', '.zstd', '.db3-shm', '.db3-wal')


@lru_cache(maxsize=1)
def _typestore() -> Any:
    return get_typestore(TYPESTORE)


@lru_cache(maxsize=None)
def message_class(msgtype: str) -> type:
    """The rclpy message class of ``'pkg/msg/Name'`` (``'pkg/Name'`` is accepted too).

    Raises BagError when the name is malformed or the package is not installed.
    """
    parts = msgtype.split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagError(f'message type {msgtype!r} is not of the form pkg/msg/Name')
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f'{pkg}.{kind}')
        cls = getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise BagError(f'message type {msgtype!r} is not installed: {exc}') from exc
    return cls


def message_type_name(msg_or_cls: Any) -> str:
    """``'pkg/msg/Name'`` of an rclpy message instance or class."""
    cls = msg_or_cls if isinstance(msg_or_cls, type) else type(msg_or_cls)
    module = getattr(cls, '__module__', '')
    parts = module.split('.')
    if len(parts) < 2 or parts[1] not in ('msg', 'srv', 'action') or not hasattr(cls, '_TYPE_SUPPORT'):
        raise BagError(f'{cls!r} is not an rclpy message class')
    return f'{parts[0]}/{parts[1]}/{cls.__name__}'


def _to_rosbags(msg: Any, types: dict[str, type]) -> Any:
    """Copy an rclpy message into the rosbags dataclass of the same type (arrays without copying)."""
    kwargs = {}
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if hasattr(value, 'get_fields_and_field_types'):
            value = _to_rosbags(value, types)
        elif isinstance(value, bytes) and len(value) == 1:
            value = value[0]          # a single octet/byte field (e.g. DiagnosticStatus.level): rosbags wants an int
        elif isinstance(value, array.array):
            value = np.frombuffer(value, dtype=np.dtype(value.typecode))
        elif isinstance(value, list) and value:
            first = value[0]
            if hasattr(first, 'get_fields_and_field_types'):
                value = [_to_rosbags(v, types) for v in value]
            elif isinstance(first, bool):
                value = np.asarray(value, dtype=np.bool_)
            elif isinstance(first, bytes):
                value = np.frombuffer(b''.join(value), dtype=np.uint8)
        elif isinstance(value, list):
            value = []
        kwargs[name] = value
    return types[message_type_name(msg)](**kwargs)


def serialize(msg: Any) -> bytes:
    """CDR bytes (little endian, padding zeroed) of the rclpy message ``msg``.

    Deterministic, unlike Fast CDR's serializer, whose padding bytes are
    whatever was in memory. Written by :func:`.cdr.serialize_cdr`; a type it
    does not support goes through rosbags' serializer, and a type the
    typestore does not know through ``rclpy.serialization``.
    """
    store = _typestore()
    msgtype = message_type_name(msg)
    if msgtype not in store.types:
        return serialize_message(msg)
    try:
        return serialize_cdr(msg)
    except UnsupportedType:
        pass
    try:
        return bytes(store.serialize_cdr(_to_rosbags(msg, store.types), msgtype))
    except Exception as exc:
        raise BagError(f'cannot serialize {msgtype}: {exc}') from exc


def topic_qos(topic: str) -> QoSProfile:
    """The QoS a recorded topic is offered with, by what flows through it.

    Sensor streams get :func:`~cooperative_fusion.ros.qos.sensor_qos`, poses and
    time references :func:`state_qos`, ``/clock`` :func:`clock_qos`,
    ``/diagnostics`` :func:`diagnostics_qos`, the common grid and the one-shot
    ``/truth/scenario`` :func:`latched_qos` (a late joiner must still get it).
    Everything else (evidence grids, truth grids and objects, twin outputs) is a
    stream in which every message counts and none is replayed to late joiners,
    so :func:`evidence_qos`: latching a 10 Hz truth grid would hand a late
    subscriber a stale grid stamped in the past.
    """
    if topic == '/clock':
        return qos_profiles.clock_qos()
    if topic == '/diagnostics':
        return qos_profiles.diagnostics_qos()
    if topic in (names.COMMON_GRID, names.TRUTH_SCENARIO):
        return qos_profiles.latched_qos()
    if topic.startswith(names.TRUTH_ODOM_PREFIX) or topic.endswith('/odom') or topic.endswith('/time_reference'):
        return qos_profiles.state_qos()
    if topic.endswith('/radar/targets'):
        return qos_profiles.evidence_qos()
    if any(part in topic for part in ('/lidar/', '/radar/', '/camera/')):
        return qos_profiles.sensor_qos()
    return qos_profiles.evidence_qos()


def _qos_time(duration: Any) -> QosTime:
    ns = int(duration.nanoseconds)
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def qos_to_rosbags(profile: QoSProfile) -> Qos:
    """An rclpy QoSProfile as the rosbags Qos record written into bag metadata."""
    return Qos(
        history=QosHistory(int(profile.history)),
        depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=_qos_time(profile.deadline),
        lifespan=_qos_time(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_qos_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def qos_from_rosbags(qos: Qos) -> QoSProfile:
    """The rclpy QoSProfile of a recorded offered profile (history, depth, reliability, durability)."""
    def policy(enum: Any, value: Any, default: Any) -> Any:
        try:
            return enum(value.value)
        except ValueError:
            return default

    return QoSProfile(
        history=policy(HistoryPolicy, qos.history, HistoryPolicy.KEEP_LAST),
        depth=max(1, int(qos.depth)),
        reliability=policy(ReliabilityPolicy, qos.reliability, ReliabilityPolicy.RELIABLE),
        durability=policy(DurabilityPolicy, qos.durability, DurabilityPolicy.VOLATILE),
        liveliness=policy(LivelinessPolicy, qos.liveliness, LivelinessPolicy.SYSTEM_DEFAULT),
    )


def _looks_like_bag_dir(path: Path) -> bool:
    return path.is_dir() and all(p.is_file() and p.name.endswith(_BAG_SUFFIXES) for p in path.iterdir())


class BagWriter:
    """Write a rosbag2 directory in mcap storage; use as a context manager.

    Messages go to disk in ~1 MiB chunks as they are written, so memory does
    not grow with the bag's duration. A connection is created per topic on its
    first message. On an exception inside the ``with`` block the bag is
    aborted (left without summary and metadata).

    path : the bag directory to create; it must not exist unless ``overwrite``
        (then an existing rosbag2 directory is removed first; any other
        existing path is refused).
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() or self.path.is_symlink():
            if not overwrite:
                raise BagError(f'{self.path} already exists; choose another path or overwrite it')
            if not _looks_like_bag_dir(self.path):
                raise BagError(f'{self.path} exists and is not a rosbag2 directory; refusing to overwrite it')
        self._overwrite = overwrite
        self._writer: Writer | None = None
        self._connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}

    def open(self) -> 'BagWriter':
        if self._writer is not None:
            raise BagError(f'{self.path}: bag is already open')
        if self._overwrite and self.path.exists():
            shutil.rmtree(self.path)
        try:
            writer = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
            writer.open()
        except Exception as exc:  # rosbags raises WriterError, OSError, ...
            raise BagError(f'{self.path}: cannot create bag: {exc}') from exc
        self._writer = writer
        return self

    def close(self) -> None:
        """Write the mcap summary and metadata.yaml."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except Exception as exc:
            raise BagError(f'{self.path}: cannot finish bag: {exc}') from exc

    def abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()

    def __enter__(self) -> 'BagWriter':
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _connection(self, writer: Writer, topic: str, msgtype: str) -> Connection:
        conn = self._connections.get(topic)
        if conn is not None:
            if conn.msgtype != msgtype:
                raise BagError(f'{self.path}: topic {topic} already holds {conn.msgtype}, got {msgtype}')
            return conn
        try:
            conn = writer.add_connection(
                topic, msgtype, typestore=_typestore(),
                offered_qos_profiles=[qos_to_rosbags(topic_qos(topic))])
        except KeyError as exc:
            raise BagError(f'{self.path}: message type {msgtype} is unknown to the {TYPESTORE.value} '
                           f'typestore; cannot record its definition') from exc
        self._connections[topic] = conn
        self.counts[topic] = 0
        return conn

    def write_serialized(self, topic: str, msgtype: str, data: bytes, log_time_ns: int) -> None:
        """Append CDR bytes ``data`` of type ``msgtype`` on ``topic`` at ``log_time_ns`` (int ns)."""
        if log_time_ns < 0:
            raise BagError(f'{self.path}: log time must be >= 0 ns, got {log_time_ns} on {topic}')
        writer = self._writer
        if writer is None:
            raise BagError(f'{self.path}: bag is not open (use it as a context manager)')
        conn = self._connection(writer, topic, msgtype)
        writer.write(conn, int(log_time_ns), data)
        self.counts[topic] += 1

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Serialize the rclpy message ``msg`` (:func:`serialize`) and append it on ``topic`` at ``log_time_ns``."""
        self.write_serialized(topic, message_type_name(msg), serialize(msg), log_time_ns)


class BagReader:
    """Read a rosbag2 directory (mcap or sqlite3) or a single .mcap/.db3 file.

    Use as a context manager. Every failure to open or read (missing path, a
    directory that is not a bag, a corrupt file) raises BagError naming the path.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'{self.path}: no such bag (path does not exist)')
        if self.path.is_dir() and not (self.path / 'metadata.yaml').is_file():
            raise BagError(f'{self.path}: not a rosbag2 directory (no metadata.yaml)')
        try:
            self._reader = Reader(self.path)
        except Exception as exc:
            raise BagError(f'{self.path}: cannot read bag: {exc}') from exc
        self._open = False

    def open(self) -> 'BagReader':
        try:
            self._reader.open()
        except Exception as exc:
            raise BagError(f'{self.path}: cannot read bag: {exc}') from exc
        self._open = True
        return self

    def close(self) -> None:
        if self._open:
            self._open = False
            self._reader.close()

    def __enter__(self) -> 'BagReader':
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self) -> None:
        if not self._open:
            raise BagError(f'{self.path}: bag is not open (use it as a context manager)')

    def topics(self) -> dict[str, str]:
        """``{topic: 'pkg/msg/Type'}`` of every topic in the bag."""
        self._check_open()
        return {c.topic: c.msgtype for c in self._reader.connections}

    def offered_qos(self, topic: str) -> QoSProfile | None:
        """The first offered QoS recorded for ``topic``, or None when the bag has none."""
        self._check_open()
        for conn in self._reader.connections:
            ext = conn.ext
            if conn.topic == topic and getattr(ext, 'offered_qos_profiles', None):
                return qos_from_rosbags(ext.offered_qos_profiles[0])
        return None

    @property
    def start_time_ns(self) -> int:
        self._check_open()
        return int(self._reader.start_time)

    @property
    def end_time_ns(self) -> int:
        self._check_open()
        return int(self._reader.end_time)

    @property
    def message_count(self) -> int:
        self._check_open()
        return int(self._reader.message_count)

    @property
    def storage(self) -> str:
        """``'mcap'`` or ``'sqlite3'``."""
        self._check_open()
        if self.path.is_dir():
            files = [p.suffix for p in self.path.iterdir()]
            return 'mcap' if '.mcap' in files else 'sqlite3'
        return 'mcap' if self.path.suffix == '.mcap' else 'sqlite3'

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, str, int, bytes]]:
        """Yield ``(topic, msgtype, log_time_ns, raw_cdr)`` in log-time order.

        topics : only these topics (None: all); a name not in the bag is ignored.
        """
        self._check_open()
        conns = self._reader.connections
        if topics is not None:
            wanted = set(topics)
            conns = [c for c in conns if c.topic in wanted]
            if not conns:
                return
        expected = sum(int(getattr(c, 'msgcount', 0) or 0) for c in conns)
        count = 0
        try:
            for conn, log_time_ns, raw in self._reader.messages(connections=conns):
                count += 1
                yield conn.topic, conn.msgtype, int(log_time_ns), bytes(raw)
        except BagError:
            raise
        except Exception as exc:
            raise BagError(f'{self.path}: cannot read messages: {exc}') from exc
        # rosbags does not check chunk CRCs: a damaged chunk can vanish silently. The index says
        # how many messages there are; reading fewer means data was lost, and that is an error.
        if expected and count != expected:
            raise BagError(f'{self.path}: the bag is damaged: read {count} of the {expected} messages its '
                           f'index lists')

    @staticmethod
    def deserialize(msgtype: str, raw: bytes) -> Any:
        """The rclpy message of type ``msgtype`` held in CDR bytes ``raw``."""
        cls = message_class(msgtype)
        try:
            return deserialize_message(raw, cls)
        except Exception as exc:
            raise BagError(f'cannot deserialize {len(raw)} bytes as {msgtype}: {exc}') from exc
