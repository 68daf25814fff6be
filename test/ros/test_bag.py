"""rosbag2 writing and reading through cooperative_fusion.ros.bag."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from nav_msgs.msg import OccupancyGrid, Odometry
from numpy.testing import assert_allclose
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, PointCloud2, PointField, TimeReference
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from cooperative_fusion.core.errors import BagError
from cooperative_fusion.ros.bag import BagReader, BagWriter, message_class, message_type_name, serialize, topic_qos

VENV_SHARE = Path(__file__).resolve().parents[2] / '.venv' / 'share'


def _cloud(rng: np.random.Generator, n: int, stamp_s: int) -> PointCloud2:
    pts = rng.standard_normal((n, 4)).astype(np.float32)
    msg = PointCloud2()
    msg.header.stamp = Time(sec=stamp_s, nanosec=5)
    msg.header.frame_id = 'v1/lidar'
    msg.height, msg.width = 1, n
    msg.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, name in enumerate(('x', 'y', 'z', 'intensity'))]
    msg.point_step, msg.row_step, msg.is_dense = 16, 16 * n, True
    msg.data = pts.tobytes()
    return msg


def _odom(x: float) -> Odometry:
    msg = Odometry()
    msg.header.frame_id = 'map'
    msg.child_frame_id = 'v1/base_link'
    msg.pose.pose.position.x = x
    msg.pose.pose.orientation.w = 1.0
    return msg


def _grid() -> OccupancyGrid:
    msg = OccupancyGrid()
    msg.header.frame_id = 'map'
    msg.info.resolution = 0.5
    msg.info.width, msg.info.height = 4, 3
    msg.data = [0, 100, -1, 50] * 3
    return msg


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, list[tuple[str, object, int]]]:
    """A bag with four types on four topics, written out of log-time order across topics."""
    rng = np.random.default_rng(0)
    records = [
        ('/truth/scenario', String(data=json.dumps({'seed': 0})), 0),
        ('/v1/lidar/points', _cloud(rng, 300, 1), 100_000_000),
        ('/v1/odom', _odom(1.5), 20_000_000),
        ('/truth/grid', _grid(), 100_000_000),
        ('/v1/odom', _odom(2.5), 40_000_000),
        ('/v1/lidar/points', _cloud(rng, 200, 2), 200_000_000),
    ]
    path = tmp_path / 'bag'
    with BagWriter(path) as bag:
        for topic, msg, t in records:
            bag.write(topic, msg, t)
    return path, records


def test_writes_mcap_with_types_hashes_and_qos(written: tuple[Path, list]) -> None:
    path, _ = written
    assert sorted(p.name for p in path.iterdir()) == ['bag.mcap', 'metadata.yaml']
    with BagReader(path) as bag:
        assert bag.storage == 'mcap'
        assert bag.message_count == 6
        assert bag.topics() == {'/truth/scenario': 'std_msgs/msg/String',
                                '/v1/lidar/points': 'sensor_msgs/msg/PointCloud2',
                                '/v1/odom': 'nav_msgs/msg/Odometry',
                                '/truth/grid': 'nav_msgs/msg/OccupancyGrid'}
        lidar_qos = bag.offered_qos('/v1/lidar/points')
        assert lidar_qos.depth == 5 and lidar_qos.reliability == ReliabilityPolicy.RELIABLE
        assert bag.offered_qos('/truth/scenario').durability == DurabilityPolicy.TRANSIENT_LOCAL
        assert bag.offered_qos('/truth/grid').durability == DurabilityPolicy.VOLATILE
        assert bag.offered_qos('/v1/odom').depth == 50
    # the RIHS01 hashes recorded must be those of the installed (Kilted) message packages
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        for conn in reader.connections:
            pkg, _, name = conn.msgtype.split('/')
            installed = json.loads((VENV_SHARE / pkg / 'msg' / f'{name}.json').read_text())
            assert conn.digest == installed['type_hashes'][0]['hash_string'], conn.msgtype
            assert conn.msgdef.data.strip(), conn.msgtype


def test_read_back_in_log_time_order_through_rclpy(written: tuple[Path, list]) -> None:
    path, records = written
    expected = sorted(records, key=lambda r: r[2])  # stable: equal times keep write order
    with BagReader(path) as bag:
        got = list(bag.messages())
        assert [(t, ts) for t, _, ts, _ in got] == [(t, ts) for t, _, ts in expected]
        for (topic, msgtype, _, raw), (_, msg, _) in zip(got, expected):
            assert raw == serialize(msg)
            assert bag.deserialize(msgtype, raw) == msg
            assert deserialize_message(raw, message_class(msgtype)) == msg
        only = [(t, ts) for t, _, ts, _ in bag.messages(topics=['/v1/odom', '/nowhere'])]
        assert only == [('/v1/odom', 20_000_000), ('/v1/odom', 40_000_000)]


def test_read_back_through_rosbags_anyreader(written: tuple[Path, list]) -> None:
    path, records = written
    clouds = [m for t, m, _ in records if t == '/v1/lidar/points']
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        conns = [c for c in reader.connections if c.topic == '/v1/lidar/points']
        msgs = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]
    assert len(msgs) == 2
    for got, want in zip(msgs, clouds):
        assert got.header.frame_id == 'v1/lidar'
        assert got.header.stamp.sec == want.header.stamp.sec
        assert [f.name for f in got.fields] == ['x', 'y', 'z', 'intensity']
        assert_allclose(np.frombuffer(got.data, np.float32), np.frombuffer(bytes(want.data), np.float32))


def test_existing_path_is_refused_unless_overwrite(written: tuple[Path, list], tmp_path: Path) -> None:
    path, _ = written
    with pytest.raises(BagError, match=r'bag already exists; choose another path or overwrite'):
        BagWriter(path)
    with BagWriter(path, overwrite=True) as bag:
        bag.write('/a', String(data='x'), 7)
    with BagReader(path) as bag:
        assert [(t, ts) for t, _, ts, _ in bag.messages()] == [('/a', 7)]
    other = tmp_path / 'notes'
    other.mkdir()
    (other / 'thesis.tex').write_text('keep me')
    with pytest.raises(BagError, match=r'notes exists and is not a rosbag2 directory; refusing'):
        BagWriter(other, overwrite=True)
    assert (other / 'thesis.tex').read_text() == 'keep me'


def test_topic_type_clash_and_bad_inputs(tmp_path: Path) -> None:
    with BagWriter(tmp_path / 'b') as bag:
        bag.write('/a', String(data='x'), 1)
        with pytest.raises(BagError, match=r'topic /a already holds std_msgs/msg/String, got nav_msgs/msg/Odometry'):
            bag.write('/a', _odom(0.0), 2)
        with pytest.raises(BagError, match=r'log time must be >= 0 ns, got -1 on /a'):
            bag.write('/a', String(data='y'), -1)
    with pytest.raises(BagError, match=r'is not an rclpy message class'):
        message_type_name(42)
    with pytest.raises(BagError, match=r"'nosuch_msgs/msg/Foo' is not installed"):
        message_class('nosuch_msgs/msg/Foo')
    with pytest.raises(BagError, match=r'not of the form pkg/msg/Name'):
        message_class('PointCloud2')


def test_not_a_bag_missing_and_corrupt(written: tuple[Path, list], tmp_path: Path) -> None:
    with pytest.raises(BagError, match=r'missing: no such bag \(path does not exist\)'):
        BagReader(tmp_path / 'missing')
    plain = tmp_path / 'plain'
    plain.mkdir()
    with pytest.raises(BagError, match=r'plain: not a rosbag2 directory \(no metadata.yaml\)'):
        BagReader(plain)
    path, _ = written
    mcap = path / 'bag.mcap'
    mcap.write_bytes(mcap.read_bytes()[:200])
    with pytest.raises(BagError, match=r'bag: cannot read bag: '):
        with BagReader(path) as bag:
            list(bag.messages())
    with pytest.raises(BagError, match=r'cannot deserialize 3 bytes as nav_msgs/msg/Odometry'):
        BagReader.deserialize('nav_msgs/msg/Odometry', b'abc')


def test_reads_sqlite3_bags(tmp_path: Path) -> None:
    """A Gazebo or vehicle bag may use sqlite3 storage."""
    store = get_typestore(Stores.ROS2_JAZZY)
    path = tmp_path / 'sq'
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        conn = w.add_connection('/v2/odom', 'nav_msgs/msg/Odometry', typestore=store)
        for t, x in ((30, 3.0), (10, 1.0)):
            w.write(conn, t, serialize_message(_odom(x)))
    with BagReader(path) as bag:
        assert bag.storage == 'sqlite3'
        got = [(ts, bag.deserialize(mt, raw).pose.pose.position.x) for _, mt, ts, raw in bag.messages()]
    assert got == [(10, 1.0), (30, 3.0)]


def _samples() -> list[object]:
    rng = np.random.default_rng(0)
    info = CameraInfo(width=64, height=48, distortion_model='plumb_bob')
    info.k = rng.random(9)
    info.d = [0.1, -0.2, 0.0, 0.0, 0.01]
    marker = Marker(ns='truck', id=3, type=Marker.CUBE, text='{"id": "t1"}')
    marker.scale.x, marker.pose.orientation.w = 12.0, 1.0
    marker.color.a = 1.0
    ref = TimeReference(source='gnss')
    ref.time_ref.sec = 12
    return [_cloud(rng, 17, 3), _odom(4.25), _grid(), info, MarkerArray(markers=[marker, Marker(id=4)]), ref,
            String(data='odd')]


@pytest.mark.parametrize('msg', _samples(), ids=lambda m: type(m).__name__)
def test_serialize_is_deterministic_cdr_that_rclpy_reads(msg: object) -> None:
    """Fast CDR leaves padding bytes uninitialised; ours are zero, so equal messages give equal bytes."""
    raw = serialize(msg)
    assert raw == serialize(msg)
    assert deserialize_message(raw, type(msg)) == msg
    reference = serialize_message(msg)
    assert len(raw) == len(reference)


@pytest.mark.parametrize('topic, depth, durability', [
    ('/v3/lidar/points', 5, DurabilityPolicy.VOLATILE),
    ('/v3/camera/depth/image', 5, DurabilityPolicy.VOLATILE),
    ('/v3/time_reference', 50, DurabilityPolicy.VOLATILE),
    ('/truth/odom/v3', 50, DurabilityPolicy.VOLATILE),
    ('/v3/radar/targets', 10, DurabilityPolicy.VOLATILE),
    ('/truth/objects', 10, DurabilityPolicy.VOLATILE),
    ('/cooperative/grid', 1, DurabilityPolicy.TRANSIENT_LOCAL),
    ('/clock', 100, DurabilityPolicy.VOLATILE),
])
def test_topic_qos(topic: str, depth: int, durability: DurabilityPolicy) -> None:
    profile = topic_qos(topic)
    assert (profile.depth, profile.durability, profile.reliability) == (depth, durability, ReliabilityPolicy.RELIABLE)


def test_diagnostic_array_round_trip(tmp_path):
    """DiagnosticStatus.level is a single octet (bytes in rclpy): it must serialize and read back."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    from cooperative_fusion.ros.bag import BagReader, BagWriter

    arr = DiagnosticArray(status=[DiagnosticStatus(level=DiagnosticStatus.WARN, name='v3', message='m',
                                                   values=[KeyValue(key='ttc_s', value='2.5')])])
    with BagWriter(tmp_path / 'b') as w:
        w.write('/twin/warnings', arr, 5)
    with BagReader(tmp_path / 'b') as r:
        (_, msgtype, t, raw), = list(r.messages())
        back = r.deserialize(msgtype, raw)
    assert t == 5
    assert back.status[0].level == DiagnosticStatus.WARN
    assert back.status[0].values[0].value == '2.5'


def test_damaged_chunk_is_an_error_not_silence(tmp_path):
    """rosbags does not check chunk CRCs; a bag whose chunks were overwritten must not read as 'fewer messages'."""
    from std_msgs.msg import String

    from cooperative_fusion.core.errors import BagError
    from cooperative_fusion.ros.bag import BagReader, BagWriter

    with BagWriter(tmp_path / 'b') as w:
        for i in range(40):
            w.write('/s', String(data='x' * 2000 + str(i)), i * 1000)
    mcap = next((tmp_path / 'b').glob('*.mcap'))
    data = bytearray(mcap.read_bytes())
    rng = np.random.default_rng(0)
    data[3000:30000] = rng.integers(0, 256, 27000, dtype=np.uint8).tobytes()
    mcap.write_bytes(bytes(data))
    with pytest.raises(BagError, match=r'damaged|cannot read|cannot open'):
        with BagReader(tmp_path / 'b') as r:
            list(r.messages())
