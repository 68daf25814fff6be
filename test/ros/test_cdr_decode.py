"""ros.cdr_decode: serialized PointCloud2 / Image / OccupancyGrid / Odometry read straight into the adapters'
inputs.

decode(serialize(msg)) through cloud_to_array / depth_image_to_array / grid_from_msg / odometry_to_pose must
give what the
message itself gives, for either CDR byte order (the big-endian bytes come from
rosbags' serializer, independent of ros.cdr); bad bytes raise MessageFormatError.
"""
from __future__ import annotations

import array
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from nav_msgs.msg import OccupancyGrid, Odometry
from numpy.testing import assert_array_equal
from rclpy.serialization import serialize_message
from rosbags.typesys import get_typestore
from sensor_msgs.msg import Image, PointCloud2, PointField

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.ros.bag import TYPESTORE
from cooperative_fusion.ros.cdr import serialize_cdr
from cooperative_fusion.ros.cdr_decode import (as_image, as_occupancy_grid, as_odometry, as_point_cloud2,
                                               decode_image, decode_occupancy_grid, decode_odometry,
                                               decode_point_cloud2)
from cooperative_fusion.ros.grid import grid_from_msg
from cooperative_fusion.ros.image import array_to_depth_image, depth_image_to_array
from cooperative_fusion.ros.odometry import odometry_to_pose
from cooperative_fusion.ros.pointcloud import cloud_to_array
from cooperative_fusion.ros.time import stamp_to_ns

STORE = get_typestore(TYPESTORE)
TYPES = {PointCloud2: 'sensor_msgs/msg/PointCloud2', OccupancyGrid: 'nav_msgs/msg/OccupancyGrid',
         Odometry: 'nav_msgs/msg/Odometry', Image: 'sensor_msgs/msg/Image'}


def encodings(msg) -> dict[str, bytes]:
    """The serialized bytes of ``msg``: ros.cdr (LE), rclpy / Fast CDR (LE), rosbags big endian."""
    le = serialize_cdr(msg)
    typename = TYPES[type(msg)]
    be = bytes(STORE.serialize_cdr(STORE.deserialize_cdr(le, typename), typename, little_endian=False))
    assert be[:2] == b'\x00\x00' and le[:2] == b'\x00\x01'
    return {'le': le, 'rclpy': serialize_message(msg), 'be': be}


def random_name(rng: np.random.Generator) -> str:
    """0-9 characters, so the strings end at every offset modulo 4 and 8."""
    return ''.join(rng.choice(list('abcdxyz/_'), size=int(rng.integers(0, 10))))


def random_cloud(rng: np.random.Generator, n: int) -> PointCloud2:
    """A cloud of ``n`` points: x, y, z float32, odd extra fields, random byte order, padded rows."""
    extra = [('intensity', PointField.UINT8, 1, 1), ('t', PointField.FLOAT64, 8, 1), ('ring', PointField.UINT16, 2, 1),
             ('v', PointField.FLOAT32, 4, 3)]
    fields, offset = [], 0
    for name, datatype, size, count in [('x', PointField.FLOAT32, 4, 1), ('y', PointField.FLOAT32, 4, 1),
                                        ('z', PointField.FLOAT32, 4, 1)] + [e for e in extra if rng.random() < 0.5]:
        fields.append(PointField(name=name, offset=offset, datatype=datatype, count=count))
        offset += size * count + int(rng.integers(0, 3))        # odd padding between fields
    point_step = offset + int(rng.integers(0, 3))
    height = int(rng.integers(1, 4)) if n else int(rng.integers(0, 2))
    width = n // max(height, 1) if n else 0
    row_step = width * point_step + int(rng.integers(0, 5)) * bool(rng.integers(0, 2))
    msg = PointCloud2()
    msg.header.stamp = Time(sec=int(rng.integers(0, 2**31)), nanosec=int(rng.integers(0, 10**9)))
    msg.header.frame_id = random_name(rng)
    msg.height, msg.width, msg.fields = height, width, fields
    msg.is_bigendian = bool(rng.integers(0, 2))
    msg.point_step, msg.row_step = point_step, row_step
    data = rng.integers(0, 256, row_step * height).astype(np.uint8)
    # finite x, y, z mostly, a few NaN, in the cloud's own byte order
    xyz_dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
    for row in range(height):
        for col in range(width):
            for k in range(3):
                at = row * row_step + col * point_step + 4 * k
                value = np.nan if rng.random() < 0.05 else rng.normal() * 30.0
                data[at:at + 4] = np.frombuffer(np.array([value], dtype=xyz_dtype).tobytes(), np.uint8)
    msg.data = array.array('B', data.tobytes())
    msg.is_dense = bool(rng.integers(0, 2))
    return msg


def assert_same_cloud(decoded, msg, required=('x', 'y', 'z')) -> None:
    assert stamp_to_ns(decoded.header.stamp) == stamp_to_ns(msg.header.stamp)
    assert decoded.header.frame_id == msg.header.frame_id
    assert decoded.is_dense == msg.is_dense
    want, want_removed = cloud_to_array(msg, required)
    got, got_removed = cloud_to_array(decoded, required)
    assert got_removed == want_removed
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    for name in want.dtype.names:     # field by field: padding bytes of a byte-swapped copy are undefined
        assert_array_equal(got[name], want[name])


@pytest.mark.parametrize('seed', range(12))
def test_decoded_cloud_equals_the_adapter_on_the_message(seed):
    rng = np.random.default_rng(seed)
    msg = random_cloud(rng, int(rng.choice([0, 1, 7, 333, 1001])))
    for name, raw in encodings(msg).items():
        assert_same_cloud(decode_point_cloud2(raw), msg), name


def test_empty_cloud_decodes_to_no_points():
    msg = PointCloud2(fields=[PointField(name=c, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                              for i, c in enumerate('xyz')], point_step=12)
    for raw in encodings(msg).values():
        points, removed = cloud_to_array(decode_point_cloud2(raw))
        assert points.shape == (0,) and removed == 0 and points.dtype.names == ('x', 'y', 'z')


def test_dense_little_endian_cloud_is_a_view_of_the_received_bytes():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(100, 3)).astype('<f4')
    msg = PointCloud2(height=1, width=100, point_step=12, row_step=1200, is_dense=True,
                      fields=[PointField(name=c, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                              for i, c in enumerate('xyz')])
    msg.data = array.array('B', pts.tobytes())
    raw = serialize_cdr(msg)
    points, _ = cloud_to_array(decode_point_cloud2(raw))
    assert np.shares_memory(points, np.frombuffer(raw, np.uint8))
    assert_array_equal(points['y'], pts[:, 1])


def random_grid(rng: np.random.Generator) -> OccupancyGrid:
    """Odd sizes, a yaw or none, cells -1..100."""
    width, height = int(rng.integers(1, 60)), int(rng.integers(1, 40))
    msg = OccupancyGrid()
    msg.header.stamp = Time(sec=int(rng.integers(0, 2**31)), nanosec=int(rng.integers(0, 10**9)))
    msg.header.frame_id = random_name(rng) or 'map'
    msg.info.map_load_time = msg.header.stamp
    msg.info.resolution = float(rng.choice([0.1, 0.2, 0.4, 0.37]))
    msg.info.width, msg.info.height = width, height
    msg.info.origin.position.x = float(rng.normal() * 100.0)
    msg.info.origin.position.y = float(rng.normal() * 10.0)
    yaw = float(rng.choice([0.0, rng.normal()]))
    msg.info.origin.orientation.z, msg.info.origin.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    msg.data = array.array('b', rng.integers(-1, 101, width * height).astype(np.int8).tobytes())
    return msg


@pytest.mark.parametrize('seed', range(12))
def test_decoded_grid_equals_the_adapter_on_the_message(seed):
    msg = random_grid(np.random.default_rng(seed))
    want_spec, want_cells = grid_from_msg(msg)
    for name, raw in encodings(msg).items():
        decoded = decode_occupancy_grid(raw)
        assert decoded.header.frame_id == msg.header.frame_id, name
        assert stamp_to_ns(decoded.header.stamp) == stamp_to_ns(msg.header.stamp), name
        assert stamp_to_ns(decoded.info.map_load_time) == stamp_to_ns(msg.info.map_load_time), name
        spec, cells = grid_from_msg(decoded)
        assert spec == want_spec, name
        assert cells.dtype == np.int8 and cells.shape == want_cells.shape, name
        assert_array_equal(cells, want_cells)
        assert np.shares_memory(cells, np.frombuffer(raw, np.uint8)), name


def random_odometry(rng: np.random.Generator) -> Odometry:
    """Random stamp, frame names of every length modulo 8 (the doubles' alignment), pose, twist, covariances."""
    msg = Odometry()
    msg.header.stamp = Time(sec=int(rng.integers(0, 2**31)), nanosec=int(rng.integers(0, 10**9)))
    msg.header.frame_id = random_name(rng)
    msg.child_frame_id = random_name(rng)
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = (float(v) for v in rng.normal(0.0, 100.0, 3))
    q.x, q.y, q.z, q.w = (float(v) for v in rng.normal(0.0, 1.0, 4))
    msg.pose.covariance = rng.normal(0.0, 1.0, 36)
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    lin.x, lin.y, lin.z, ang.x, ang.y, ang.z = (float(v) for v in rng.normal(0.0, 10.0, 6))
    msg.twist.covariance = rng.normal(0.0, 1.0, 36)
    return msg


@pytest.mark.parametrize('seed', range(12))
def test_decoded_odometry_equals_the_adapter_on_the_message(seed):
    msg = random_odometry(np.random.default_rng(seed))
    want = odometry_to_pose(msg)
    for name, raw in encodings(msg).items():
        decoded = decode_odometry(raw)
        assert decoded.header.frame_id == msg.header.frame_id, name
        assert decoded.child_frame_id == msg.child_frame_id, name
        assert stamp_to_ns(decoded.header.stamp) == stamp_to_ns(msg.header.stamp), name
        assert_array_equal(decoded.pose.covariance, msg.pose.covariance)
        assert_array_equal(decoded.twist.covariance, msg.twist.covariance)
        assert decoded.twist.twist.angular.z == msg.twist.twist.angular.z, name
        got = odometry_to_pose(decoded)
        assert got.stamp_ns == want.stamp_ns, name
        for field in ('position', 'quat_wxyz', 'covariance', 'linear_velocity', 'angular_velocity'):
            assert_array_equal(getattr(got, field), getattr(want, field))


def random_depth_image(rng: np.random.Generator) -> Image:
    """32FC1 or 16UC1, odd sizes (the data ends at every offset modulo 4), a few holes, a random frame name."""
    height, width = (int(v) for v in rng.integers(1, 9, 2))
    depth = rng.uniform(0.5, 60.0, (height, width)).astype(np.float32)
    depth[rng.random((height, width)) < 0.1] = np.nan
    encoding = '32FC1' if rng.random() < 0.5 else '16UC1'
    return array_to_depth_image(depth, int(rng.integers(0, 2**31)) * 10**9 + 7, random_name(rng), encoding)


@pytest.mark.parametrize('seed', range(12))
def test_decoded_image_equals_the_adapter_on_the_message(seed):
    msg = random_depth_image(np.random.default_rng(seed))
    want = depth_image_to_array(msg)
    for name, raw in encodings(msg).items():
        decoded = decode_image(raw)
        assert decoded.header.frame_id == msg.header.frame_id, name
        assert stamp_to_ns(decoded.header.stamp) == stamp_to_ns(msg.header.stamp), name
        assert (decoded.encoding, decoded.step, decoded.height, decoded.width) == \
            (msg.encoding, msg.step, msg.height, msg.width), name
        assert_array_equal(depth_image_to_array(decoded), want)


def test_as_functions_pass_messages_through_and_decode_bytes():
    cloud, grid = random_cloud(np.random.default_rng(1), 10), random_grid(np.random.default_rng(1))
    assert as_point_cloud2(cloud) is cloud and as_occupancy_grid(grid) is grid
    raw = serialize_cdr(grid)
    for form in (raw, bytearray(raw), memoryview(raw)):
        assert as_occupancy_grid(form).info.width == grid.info.width
    assert as_point_cloud2(serialize_cdr(cloud)).width == cloud.width
    odom = random_odometry(np.random.default_rng(1))
    assert as_odometry(odom) is odom
    assert as_odometry(serialize_cdr(odom)).pose.pose.position.x == odom.pose.pose.position.x
    image = random_depth_image(np.random.default_rng(1))
    assert as_image(image) is image
    assert as_image(serialize_cdr(image)).width == image.width


@pytest.mark.parametrize('decode, msg', [
    (decode_point_cloud2, random_cloud(np.random.default_rng(5), 50)),
    (decode_occupancy_grid, random_grid(np.random.default_rng(5))),
    (decode_odometry, random_odometry(np.random.default_rng(5))),
    (decode_image, random_depth_image(np.random.default_rng(5))),
])
def test_every_truncation_raises_the_domain_error(decode, msg):
    raw = serialize_cdr(msg)
    decode(raw)
    for cut in range(len(raw) - 1, -1, -1):
        with pytest.raises(MessageFormatError):
            decode(raw[:cut])


@pytest.mark.parametrize('decode', [decode_point_cloud2, decode_occupancy_grid, decode_odometry, decode_image])
def test_garbage_raises_the_domain_error_never_another(decode):
    rng = np.random.default_rng(7)
    for size in list(range(0, 40)) + [100, 1000, 5000]:
        for header in (b'\x00\x01\x00\x00', b'\x00\x00\x00\x00', b''):
            raw = header + rng.integers(0, 256, size).astype(np.uint8).tobytes()
            try:
                decode(raw)
            except MessageFormatError:
                pass


@pytest.mark.parametrize('raw, match', [
    (b'', 'cannot hold a CDR header'),
    (b'\x00\x03\x00\x00' + bytes(64), 'not plain CDR'),
    (b'\x01\x01\x00\x00' + bytes(64), 'not plain CDR'),
    (b'\x00\x01\x00\x00' + bytes(8) + b'\xff\xff\xff\x7f', 'truncated at header.frame_id'),
    (b'\x00\x01\x00\x00' + bytes(8) + b'\x02\x00\x00\x00ab', 'not NUL-terminated'),
])
def test_bad_bytes_name_the_problem(raw, match):
    with pytest.raises(MessageFormatError, match=match):
        decode_occupancy_grid(raw)


def test_trailing_bytes_and_bad_booleans_are_refused():
    msg = random_cloud(np.random.default_rng(2), 20)
    raw = serialize_cdr(msg)
    with pytest.raises(MessageFormatError, match='bytes after the end'):
        decode_point_cloud2(raw + bytes(8))
    with pytest.raises(MessageFormatError, match='expected booleans'):
        decode_point_cloud2(raw[:-1] + b'\x07')
    with pytest.raises(MessageFormatError, match='fields cannot fit'):
        decode_point_cloud2(b'\x00\x01\x00\x00' + bytes(8) + b'\x01\x00\x00\x00\x00\x00\x00\x00'
                            + bytes(8) + b'\xff\xff\xff\x00')
