"""ros.cdr: CDR written straight from rclpy fields equals rosbags' serializer byte for byte."""
from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import get_typestore
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField, TimeReference
from std_msgs.msg import ByteMultiArray, ColorRGBA, Empty, String
from visualization_msgs.msg import Marker, MarkerArray

from cooperative_fusion.core.errors import BagError
from cooperative_fusion.ros.bag import TYPESTORE, _to_rosbags, message_type_name, serialize
from cooperative_fusion.ros.cdr import UnsupportedType, serialize_cdr

STORE = get_typestore(TYPESTORE)


def rosbags_bytes(msg) -> bytes:
    """Independent of ros.cdr: Fast CDR's bytes (padding uninitialised) read and written again by rosbags."""
    msgtype = message_type_name(msg)
    return bytes(STORE.serialize_cdr(STORE.deserialize_cdr(serialize_message(msg), msgtype), msgtype))


def text(rng: np.random.Generator) -> str:
    """0-9 characters, so strings end at every offset modulo 4 and 8."""
    return ''.join(rng.choice(list('abcdefgh/_ä'), size=int(rng.integers(0, 10))))


def stamp(rng: np.random.Generator) -> Time:
    return Time(sec=int(rng.integers(0, 2**31)), nanosec=int(rng.integers(0, 10**9)))


def marker_array(rng: np.random.Generator) -> MarkerArray:
    out = MarkerArray()
    for i in range(int(rng.integers(0, 6))):
        m = Marker()
        m.header.stamp, m.header.frame_id, m.ns, m.id = stamp(rng), text(rng), text(rng), i
        m.type, m.action = int(rng.integers(0, 11)), int(rng.integers(0, 3))
        m.pose.position.x, m.pose.orientation.w = float(rng.normal()), float(rng.normal())
        m.scale.x, m.color.r, m.color.a = float(rng.random()), float(rng.random()), 1.0
        m.lifetime = Duration(sec=int(rng.integers(0, 5)), nanosec=int(rng.integers(0, 10**9)))
        m.frame_locked = bool(rng.integers(0, 2))
        m.points = [Point(x=float(v), y=-float(v), z=0.5) for v in rng.normal(size=int(rng.integers(0, 4)))]
        m.colors = [ColorRGBA(r=float(v), a=1.0) for v in rng.random(int(rng.integers(0, 3)))]
        m.text, m.mesh_resource = text(rng), text(rng)
        m.texture.data = rng.integers(0, 256, int(rng.integers(0, 7))).astype(np.uint8).tolist()
        m.mesh_use_embedded_materials = bool(rng.integers(0, 2))
        out.markers.append(m)
    return out


def occupancy_grid(rng: np.random.Generator) -> OccupancyGrid:
    msg = OccupancyGrid()
    msg.header.stamp, msg.header.frame_id = stamp(rng), text(rng)
    msg.info.map_load_time, msg.info.resolution = stamp(rng), float(rng.random())
    msg.info.width, msg.info.height = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    msg.info.origin.position.x, msg.info.origin.orientation.w = float(rng.normal()), 1.0
    msg.data = rng.integers(-1, 101, msg.info.width * msg.info.height).astype(np.int8).tolist()
    return msg


def point_cloud(rng: np.random.Generator) -> PointCloud2:
    n = int(rng.integers(0, 20))
    msg = PointCloud2()
    msg.header.stamp, msg.header.frame_id = stamp(rng), text(rng)
    msg.height, msg.width = 1, n
    msg.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, name in enumerate(('x', 'y', 'z', 'velocity', 'rcs')[:int(rng.integers(1, 6))])]
    msg.point_step = 4 * len(msg.fields)
    msg.row_step, msg.is_dense = msg.point_step * n, bool(rng.integers(0, 2))
    msg.data = rng.standard_normal(n * len(msg.fields)).astype(np.float32).tobytes()
    return msg


def diagnostics(rng: np.random.Generator) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = stamp(rng)
    msg.status = [DiagnosticStatus(level=bytes([int(rng.integers(0, 4))]), name=text(rng), message=text(rng),
                                   hardware_id=text(rng), values=[KeyValue(key=text(rng), value=text(rng))
                                                                  for _ in range(int(rng.integers(0, 3)))])
                  for _ in range(int(rng.integers(0, 4)))]
    return msg


def path(rng: np.random.Generator) -> Path:
    msg = Path()
    msg.header.frame_id = text(rng)
    for _ in range(int(rng.integers(0, 4))):
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp(rng), text(rng)
        pose.pose.position.x, pose.pose.orientation.z = float(rng.normal()), float(rng.normal())
        msg.poses.append(pose)
    return msg


def odometry(rng: np.random.Generator) -> Odometry:
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp(rng), text(rng), text(rng)
    msg.pose.pose.position.y = float(rng.normal())
    msg.pose.covariance = rng.normal(size=36)
    msg.twist.twist.angular.z = float(rng.normal())
    msg.twist.covariance = rng.normal(size=36)
    return msg


def camera_info(rng: np.random.Generator) -> CameraInfo:
    msg = CameraInfo()
    msg.header.frame_id, msg.distortion_model = text(rng), text(rng)
    msg.width, msg.height = int(rng.integers(0, 640)), int(rng.integers(0, 480))
    msg.d = rng.normal(size=int(rng.integers(0, 6))).tolist()
    msg.k, msg.r, msg.p = rng.normal(size=9), rng.normal(size=9), rng.normal(size=12)
    msg.roi.do_rectify = bool(rng.integers(0, 2))
    return msg


def image(rng: np.random.Generator) -> Image:
    msg = Image()
    msg.header.frame_id, msg.encoding = text(rng), '32FC1'
    msg.height, msg.width = int(rng.integers(0, 4)), int(rng.integers(0, 4))
    msg.step = 4 * msg.width
    msg.data = rng.standard_normal(msg.height * msg.width).astype(np.float32).tobytes()
    return msg


def small(rng: np.random.Generator):
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return TimeReference(header=TimeReference().header, time_ref=stamp(rng), source=text(rng))
    if kind == 1:
        return String(data=text(rng))
    return ByteMultiArray(data=[bytes([int(v)]) for v in rng.integers(0, 256, int(rng.integers(0, 5)))])


MAKERS = [marker_array, occupancy_grid, point_cloud, diagnostics, path, odometry, camera_info, image, small]


@pytest.mark.parametrize('make', MAKERS, ids=lambda f: f.__name__)
def test_equals_rosbags_serializer_on_random_messages(make):
    rng = np.random.default_rng(7)
    for _ in range(40):
        msg = make(rng)
        raw = serialize_cdr(msg)
        assert raw == rosbags_bytes(msg)
        if not isinstance(msg, ByteMultiArray):     # the old copy cannot carry an empty sequence<octet>
            assert raw == bytes(STORE.serialize_cdr(_to_rosbags(msg, STORE.types), message_type_name(msg)))
        assert serialize_cdr(deserialize_message(raw, type(msg))) == raw


def test_padding_is_zero_and_the_header_little_endian_cdr():
    msg = DiagnosticArray()
    msg.status = [DiagnosticStatus(level=b'\x02', name='a')]     # octet, then a string aligned to 4
    raw = serialize_cdr(msg)
    assert raw[:4] == b'\x00\x01\x00\x00'
    # header: stamp (8) + frame_id '' (4 + 1) -> status count at offset 16 after three zero pad bytes
    assert raw[4 + 13:4 + 16] == b'\x00\x00\x00'


def test_a_message_without_fields_is_unsupported_and_serialize_falls_back():
    with pytest.raises(UnsupportedType):
        serialize_cdr(Empty())
    assert serialize(Empty()) == bytes(STORE.serialize_cdr(STORE.types['std_msgs/msg/Empty'](), 'std_msgs/msg/Empty'))


def test_a_value_that_does_not_fit_its_field_is_a_bag_error():
    msg = TimeReference()
    msg.header.stamp.sec = 5
    object.__setattr__(msg.header.stamp, '_sec', 2**40)      # past int32, bypassing the setter's check
    with pytest.raises(BagError, match='cannot serialize TimeReference'):
        serialize_cdr(msg)
