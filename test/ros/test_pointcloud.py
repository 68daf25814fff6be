from __future__ import annotations

import array
import struct

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.ros.pointcloud import array_to_cloud, cloud_to_array, from_columns, xyz
from cooperative_fusion.ros.time import stamp_to_ns

F32, F64, U16, I8, U8 = PointField.FLOAT32, PointField.FLOAT64, PointField.UINT16, PointField.INT8, PointField.UINT8


def _cloud(fields, point_step, data: bytes, width, height=1, row_step=None, bigendian=False):
    msg = PointCloud2()
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields]
    msg.point_step = point_step
    msg.width, msg.height = width, height
    msg.row_step = point_step * width if row_step is None else row_step
    msg.is_bigendian = bigendian
    msg.data = array.array('B', data)
    return msg


XYZ = [('x', 0, F32, 1), ('y', 4, F32, 1), ('z', 8, F32, 1)]


def test_dense_cloud_is_a_view_of_the_buffer():
    pts = from_columns({'x': [1, 2], 'y': [3, 4], 'z': [5, 6], 'intensity': [7, 8]})
    msg = array_to_cloud(pts, 1_500_000_001, 'v1/lidar')
    out, removed = cloud_to_array(msg)
    assert removed == 0
    assert out.dtype.names == ('x', 'y', 'z', 'intensity')
    assert_array_equal(out['intensity'], [7, 8])
    out['x'][0] = 42.0  # documented: a view over msg.data, no copy
    assert struct.unpack_from('<f', msg.data, 0)[0] == 42.0
    assert msg.header.frame_id == 'v1/lidar' and stamp_to_ns(msg.header.stamp) == 1_500_000_001
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (1, 2, 16, 32, True)


def test_big_endian_cloud():
    data = struct.pack('>fffH', 1.5, -2.0, 3.25, 513) + struct.pack('>fffH', 4.0, 5.0, 6.0, 7)
    msg = _cloud(XYZ + [('ring', 12, U16, 1)], 14, data, 2, bigendian=True)
    out, removed = cloud_to_array(msg)
    assert removed == 0 and out.dtype['x'].isnative and out.dtype['ring'].isnative
    assert_allclose(xyz(out), [[1.5, -2.0, 3.25], [4.0, 5.0, 6.0]])
    assert_array_equal(out['ring'], [513, 7])


def test_padded_point_step_with_odd_offsets():
    # x at 1, y at 5, z at 13 (float64), label int8 at 21; 3 bytes of padding -> point_step 25
    fields = [('x', 1, F32, 1), ('y', 5, F32, 1), ('z', 13, F64, 1), ('label', 21, I8, 1)]
    rows = [(0.5, 1.5, 2.5, -3), (4.0, 5.0, 6.0, 7), (-1.0, -2.0, -3.0, 127)]
    data = b''.join(b'\xaa' + struct.pack('<ff', x, y) + b'\xbb' * 4 + struct.pack('<db', z, l) + b'\xcc' * 3
                    for x, y, z, l in rows)
    out, _ = cloud_to_array(_cloud(fields, 25, data, 3))
    assert_allclose(xyz(out), [r[:3] for r in rows])
    assert_array_equal(out['label'], [-3, 7, 127])
    assert out['z'].dtype == np.float64


def test_organized_cloud_with_row_padding_flattens_row_major():
    # height 2, width 3, point_step 12, row_step 40 (4 bytes of padding per row)
    vals = np.arange(18, dtype='<f4').reshape(2, 3, 3)
    data = b''.join(vals[r].tobytes() + b'\xff' * 4 for r in range(2))
    out, removed = cloud_to_array(_cloud(XYZ, 12, data, 3, height=2, row_step=40))
    assert removed == 0 and out.shape == (6,)
    assert_allclose(xyz(out), vals.reshape(6, 3))


def test_nonfinite_points_removed_and_counted():
    pts = from_columns({'x': [1, np.nan, 3, 4, 5], 'y': [0, 0, np.inf, 0, 0], 'z': [0, 0, 0, -np.inf, 0],
                        'intensity': [np.nan, 1, 2, 3, 4]})
    msg = array_to_cloud(pts, 0, 'l')
    out, removed = cloud_to_array(msg)
    assert removed == 3  # NaN intensity is not a required field: that point stays
    assert_allclose(out['x'], [1, 5])
    out, removed = cloud_to_array(msg, required=('x', 'y', 'z', 'intensity'))
    assert removed == 4
    assert_allclose(out['x'], [5])
    out, removed = cloud_to_array(msg, skip_nonfinite=False)
    assert removed == 0 and out.shape == (5,)


def test_count_gt_one_is_a_subarray():
    data = struct.pack('<fff3H', 1, 2, 3, 10, 20, 30) + struct.pack('<fff3H', 4, 5, 6, 40, 50, 60)
    out, _ = cloud_to_array(_cloud(XYZ + [('rgb', 12, U16, 3)], 18, data, 2))
    assert out['rgb'].shape == (2, 3)
    assert_array_equal(out['rgb'], [[10, 20, 30], [40, 50, 60]])
    back, _ = cloud_to_array(deserialize_message(serialize_message(array_to_cloud(out, 5, 'f')), PointCloud2))
    assert_array_equal(back['rgb'], out['rgb'])


def test_empty_cloud():
    out, removed = cloud_to_array(_cloud(XYZ, 12, b'', 0))
    assert out.shape == (0,) and removed == 0 and xyz(out).shape == (0, 3)


@pytest.mark.parametrize('dtype', [np.float32, np.float64, np.int16, np.uint32])
def test_round_trip_through_serialization(dtype):
    rng = np.random.default_rng(0)
    pts = from_columns({n: rng.uniform(-100, 100, 1000) for n in ('x', 'y', 'z', 'velocity', 'rcs')}, dtype)
    msg = deserialize_message(serialize_message(array_to_cloud(pts, 123_456_789_012, 'v2/radar')), PointCloud2)
    out, removed = cloud_to_array(msg)
    assert removed == 0 and msg.header.frame_id == 'v2/radar' and stamp_to_ns(msg.header.stamp) == 123_456_789_012
    assert out.dtype == pts.dtype
    assert_array_equal(out, pts)


def test_array_to_cloud_big_endian_input_written_little_endian():
    pts = np.array([(1.0, 2.0, 3.0)], dtype=[('x', '>f4'), ('y', '>f4'), ('z', '>f4')])
    msg = array_to_cloud(pts, 0, 'f')
    assert not msg.is_bigendian and struct.unpack('<fff', msg.data) == (1.0, 2.0, 3.0)


def test_array_to_cloud_rejects_unsupported_dtypes():
    with pytest.raises(MessageFormatError, match=r"field 'n' has dtype int64 which PointField cannot carry"):
        array_to_cloud(np.zeros(2, dtype=[('x', 'f4'), ('n', 'i8')]), 0, 'f')
    with pytest.raises(MessageFormatError, match=r'expected a 1-D structured array, got dtype float32'):
        array_to_cloud(np.zeros((2, 3), np.float32), 0, 'f')


def test_xyz_requires_fields():
    with pytest.raises(MessageFormatError, match=r"field\(s\) \['z'\] missing: the points have fields \['x', 'y'\]"):
        xyz(np.zeros(1, dtype=[('x', 'f4'), ('y', 'f4')]))


_GOOD = struct.pack('<fff', 1, 2, 3) * 2


@pytest.mark.parametrize('kwargs, match', [
    (dict(fields=XYZ, point_step=12, data=_GOOD[:-1], width=2),
     r'data length 23 not equal to row_step 24 \* height 1 \(width 2 \* height 1 \* point_step 12 when dense\)'),
    (dict(fields=XYZ, point_step=12, data=_GOOD, width=2, row_step=20),
     r'row_step 20 < width 2 \* point_step 12'),
    (dict(fields=XYZ[:2] + [('intensity', 8, F32, 1)], point_step=12, data=_GOOD, width=2),
     r"required field\(s\) \['z'\] missing: the cloud has fields \['x', 'y', 'intensity'\]"),
    (dict(fields=XYZ[:2] + [('z', 8, 9, 1)], point_step=12, data=_GOOD, width=2),
     r"field 'z' has unsupported datatype 9"),
    (dict(fields=XYZ[:2] + [('z', 8, F64, 1)], point_step=12, data=_GOOD, width=2),
     r"field 'z' \(offset 8, 8 bytes\) extends past point_step 12"),
    (dict(fields=XYZ, point_step=0, data=b'', width=2),
     r'point_step is 0 but the cloud has 2x1 points'),
    (dict(fields=XYZ + [('y', 8, F32, 1)], point_step=12, data=_GOOD, width=2),
     r"duplicate field name 'y'"),
])
def test_malformed_clouds_raise(kwargs, match):
    with pytest.raises(MessageFormatError, match=match):
        cloud_to_array(_cloud(**kwargs))


def test_from_columns_rejects_ragged():
    with pytest.raises(MessageFormatError, match='equal length'):
        from_columns({'x': [1, 2], 'y': [1]})
