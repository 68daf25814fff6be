"""sensor_msgs/Image (depth) and CameraInfo <-> numpy.

Depth images are read through a strided numpy view of ``msg.data`` (row
padding and byte order honoured) and copied once into a native float32
array in metres, with NaN wherever the camera has no return.
"""
from __future__ import annotations

import array
import math

import numpy as np
from numpy.typing import NDArray
from sensor_msgs.msg import CameraInfo, Image

from ..core.vehicle import camera
from ..core.errors import ConfigError, MessageFormatError
from .time import ns_to_stamp

#: encoding -> (base dtype, metres per unit). 16UC1 is millimetres, 0 = no return (REP 118).
DEPTH_ENCODINGS: dict[str, tuple[np.dtype, float]] = {
    '32FC1': (np.dtype(np.float32), 1.0),
    '16UC1': (np.dtype(np.uint16), 1e-3),
}


def depth_image_to_array(msg: Image) -> NDArray[np.float32]:
    """Depth (H, W) float32 metres, NaN where there is no return.

    32FC1 is taken as metres (inf and -inf become NaN); 16UC1 as millimetres
    (0 becomes NaN). A zero-size image gives an empty (0, 0) array.
    """
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    if width == 0 or height == 0:
        return np.empty((0, 0), dtype=np.float32)
    spec = DEPTH_ENCODINGS.get(msg.encoding.upper())
    if spec is None:
        raise MessageFormatError(
            f'depth encoding {msg.encoding!r} is not supported: expected one of {sorted(DEPTH_ENCODINGS)}')
    base, scale = spec
    bpp = base.itemsize
    if step < width * bpp:
        raise MessageFormatError(
            f'step {step} does not match encoding {msg.encoding} at width {width}: expected >= {width * bpp}')
    if len(msg.data) != step * height:
        raise MessageFormatError(f'data length {len(msg.data)} not equal to step {step} * height {height}')
    dtype = base.newbyteorder('>' if msg.is_bigendian else '<')
    raw = np.ndarray((height, width), dtype=dtype, buffer=memoryview(msg.data), strides=(step, bpp))
    depth = raw.astype(np.float32)  # copy: native order, contiguous, ours to edit
    if scale != 1.0:
        invalid = raw == 0
        depth *= np.float32(scale)
        depth[invalid] = np.nan
    else:
        depth[~np.isfinite(depth)] = np.nan
    return depth


def camera_info_to_k(msg: CameraInfo) -> NDArray[np.float64]:
    """The pinhole matrix K (3, 3) of a CameraInfo; MessageFormatError unless fx, fy > 0 and K finite."""
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    fx, fy = k[0, 0], k[1, 1]
    if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
        raise MessageFormatError(f'camera_info K has fx={fx}, fy={fy}: expected finite values > 0')
    if not np.all(np.isfinite(k)):
        raise MessageFormatError(f'camera_info K has non-finite entries: {k.ravel().tolist()}')
    return k


def depth_to_points(image: Image, info: CameraInfo, max_range_m: float = float('inf'),
                    stride: int = 1) -> NDArray[np.float32]:
    """Points (N, 3) float32 metres in the optical frame of ``image``.

    The image must have the size ``info`` gives (when ``info`` gives a
    non-zero size); binning and ROI are not supported (we publish full frames).
    """
    if (info.width or info.height) and (image.width, image.height) != (info.width, info.height):
        raise MessageFormatError(
            f'depth image is {image.width}x{image.height} but camera_info is {info.width}x{info.height}')
    depth = depth_image_to_array(image)
    k = camera_info_to_k(info)
    if depth.size == 0:
        return np.empty((0, 3), dtype=np.float32)
    try:
        return camera.backproject(depth, k, max_range_m, stride)
    except ConfigError as exc:
        raise MessageFormatError(f'camera_info: {exc}') from exc


def array_to_depth_image(depth_m: NDArray[np.floating], stamp_ns: int, frame_id: str,
                         encoding: str = '32FC1') -> Image:
    """A little-endian depth Image from (H, W) metres.

    32FC1 keeps the values (NaN for no return); 16UC1 rounds to millimetres and
    writes 0 (no return) for NaN, <= 0 and anything beyond 65.535 m.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise MessageFormatError(f'depth has shape {depth.shape}: expected (H, W)')
    if encoding == '32FC1':
        out = depth.astype('<f4')
    elif encoding == '16UC1':
        mm = np.rint(np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0) * 1000.0)
        out = np.where((mm > 0) & (mm <= 65535), mm, 0).astype('<u2')
    else:
        raise MessageFormatError(
            f'depth encoding {encoding!r} is not supported: expected one of {sorted(DEPTH_ENCODINGS)}')
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = (int(v) for v in depth.shape)
    msg.encoding = encoding
    msg.is_bigendian = False
    msg.step = msg.width * out.dtype.itemsize
    msg.data = array.array('B')
    msg.data.frombytes(np.ascontiguousarray(out).view(np.uint8))  # one copy; see ros/pointcloud.py
    return msg


def k_to_camera_info(K: NDArray[np.floating], width: int, height: int, stamp_ns: int, frame_id: str) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera: plumb_bob with zero D, R = I, P = [K | 0]."""
    try:
        k = camera.validate_k(K)
    except ConfigError as exc:
        raise MessageFormatError(str(exc)) from exc
    msg = CameraInfo()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = k.ravel()
    msg.r = np.eye(3).ravel()
    p = np.zeros((3, 4))
    p[:, :3] = k
    msg.p = p.ravel()
    return msg
