from __future__ import annotations

import array
import struct

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.ros.image import (array_to_depth_image, camera_info_to_k, depth_image_to_array,
                                          depth_to_points, k_to_camera_info)
from cooperative_fusion.ros.time import stamp_to_ns

K = np.array([[100.0, 0.0, 1.5], [0.0, 100.0, 0.5], [0.0, 0.0, 1.0]])


def _image(encoding, width, height, step, data: bytes, bigendian=False):
    return Image(encoding=encoding, width=width, height=height, step=step, is_bigendian=bigendian,
                 data=array.array('B', data))


def test_32fc1_round_trip_keeps_nan_and_stamp():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.1, 80, (6, 9)).astype(np.float32)
    depth[2, 3] = np.nan
    msg = deserialize_message(serialize_message(array_to_depth_image(depth, 77_000_000_001, 'v1/camera_optical')),
                              Image)
    assert (msg.encoding, msg.step, msg.header.frame_id) == ('32FC1', 36, 'v1/camera_optical')
    assert stamp_to_ns(msg.header.stamp) == 77_000_000_001
    assert_array_equal(depth_image_to_array(msg), depth)


def test_32fc1_inf_becomes_nan_and_big_endian_read():
    data = struct.pack('>4f', 1.0, np.inf, -np.inf, 2.5)
    out = depth_image_to_array(_image('32FC1', 2, 2, 8, data, bigendian=True))
    assert_array_equal(out, [[1.0, np.nan], [np.nan, 2.5]])
    assert out.dtype == np.float32 and out.dtype.isnative


def test_16uc1_millimetres_with_padded_rows():
    # width 3, step 8: 2 bytes of padding per row, padding bytes are garbage
    rows = [(1000, 0, 2500), (65535, 1, 42)]
    data = b''.join(struct.pack('<3H', *r) + b'\xff\xee' for r in rows)
    out = depth_image_to_array(_image('16UC1', 3, 2, 8, data))
    assert_allclose(out, [[1.0, np.nan, 2.5], [65.535, 0.001, 0.042]], rtol=1e-6)


def test_16uc1_big_endian():
    out = depth_image_to_array(_image('16UC1', 2, 1, 4, struct.pack('>2H', 1500, 258), bigendian=True))
    assert_allclose(out, [[1.5, 0.258]], rtol=1e-6)


def test_16uc1_round_trip_rounds_to_mm_and_marks_no_return():
    depth = np.array([[1.2344, np.nan, -1.0], [0.0, 70.0, 3.0]], dtype=np.float32)
    msg = array_to_depth_image(depth, 0, 'c', encoding='16UC1')
    assert msg.step == 6
    assert_allclose(depth_image_to_array(msg), [[1.234, np.nan, np.nan], [np.nan, np.nan, 3.0]], rtol=1e-6)


def test_zero_size_image_is_empty():
    assert depth_image_to_array(Image()).shape == (0, 0)
    assert depth_image_to_array(_image('32FC1', 4, 0, 16, b'')).shape == (0, 0)


@pytest.mark.parametrize('msg, match', [
    (_image('rgb8', 2, 1, 6, b'\x00' * 6),
     r"depth encoding 'rgb8' is not supported: expected one of \['16UC1', '32FC1'\]"),
    (_image('32FC1', 4, 1, 10, b'\x00' * 10), r'step 10 does not match encoding 32FC1 at width 4: expected >= 16'),
    (_image('16UC1', 4, 2, 8, b'\x00' * 15), r'data length 15 not equal to step 8 \* height 2'),
])
def test_malformed_images_raise(msg, match):
    with pytest.raises(MessageFormatError, match=match):
        depth_image_to_array(msg)


def test_camera_info_round_trip():
    info = deserialize_message(serialize_message(k_to_camera_info(K, 4, 2, 5, 'cam')), CameraInfo)
    assert_allclose(camera_info_to_k(info), K)
    assert (info.width, info.height, info.header.frame_id, info.distortion_model) == (4, 2, 'cam', 'plumb_bob')
    assert_allclose(np.asarray(info.p).reshape(3, 4)[:, :3], K)


@pytest.mark.parametrize('fx, fy', [(0.0, 100.0), (100.0, -1.0), (np.nan, 100.0), (100.0, np.inf)])
def test_camera_info_bad_focal_length(fx, fy):
    info = CameraInfo()
    info.k = [fx, 0.0, 1.0, 0.0, fy, 1.0, 0.0, 0.0, 1.0]
    with pytest.raises(MessageFormatError, match=r'camera_info K has fx=.*, fy=.*: expected finite values > 0'):
        camera_info_to_k(info)


def test_depth_to_points_known_pixel():
    depth = np.full((2, 4), np.nan, dtype=np.float32)
    depth[1, 3] = 4.0    # u - cx = 1.5, v - cy = 0.5
    depth[0, 0] = 50.0
    image = array_to_depth_image(depth, 0, 'cam')
    info = k_to_camera_info(K, 4, 2, 0, 'cam')
    assert_allclose(depth_to_points(image, info), [[-0.75, -0.25, 50.0], [0.06, 0.02, 4.0]], rtol=1e-6)
    assert_allclose(depth_to_points(image, info, max_range_m=10.0), [[0.06, 0.02, 4.0]], rtol=1e-6)


def test_depth_to_points_size_mismatch():
    image = array_to_depth_image(np.ones((2, 4), np.float32), 0, 'cam')
    with pytest.raises(MessageFormatError, match=r'depth image is 4x2 but camera_info is 8x2'):
        depth_to_points(image, k_to_camera_info(K, 8, 2, 0, 'cam'))
    info = k_to_camera_info(K, 0, 0, 0, 'cam')  # size unknown: accepted
    assert depth_to_points(image, info).shape == (8, 3)


def test_depth_to_points_bad_k_row_is_a_format_error():
    image = array_to_depth_image(np.ones((2, 4), np.float32), 0, 'cam')
    info = k_to_camera_info(K, 4, 2, 0, 'cam')
    k = np.asarray(info.k).copy()
    k[8] = 2.0
    info.k = k
    with pytest.raises(MessageFormatError, match=r'camera_info: camera matrix K has last row \[0.0, 0.0, 2.0\]'):
        depth_to_points(image, info)


def test_depth_to_points_stride():
    depth = np.arange(1, 9, dtype=np.float32).reshape(2, 4)
    pts = depth_to_points(array_to_depth_image(depth, 0, 'c'), k_to_camera_info(K, 4, 2, 0, 'c'), stride=2)
    assert_allclose(pts[:, 2], [1.0, 3.0])
