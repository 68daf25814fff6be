"""Pinhole depth camera: back-projection of depth images and projection of points.

Frames follow REP 103's optical convention: z forward, x right, y down.
Pixel ``(u, v)`` = (column, row) is the centre of that pixel, as in OpenCV
and sensor_msgs/CameraInfo. Depth is the z coordinate (what depth cameras
report), not the distance along the ray.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, MessageFormatError


def validate_k(K: NDArray[np.floating]) -> NDArray[np.float64]:
    """``K`` as a (3, 3) float64 array; ConfigError unless finite with fx, fy > 0 and last row (0, 0, 1)."""
    k = np.asarray(K, dtype=np.float64)
    if k.shape != (3, 3):
        raise ConfigError(f'camera matrix K has shape {k.shape}: expected (3, 3)')
    if not np.all(np.isfinite(k)):
        raise ConfigError(f'camera matrix K has non-finite entries: {k.ravel().tolist()}')
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise ConfigError(f'camera matrix K has fx={k[0, 0]}, fy={k[1, 1]}: expected both > 0')
    if not np.allclose(k[2], (0.0, 0.0, 1.0)):
        raise ConfigError(f'camera matrix K has last row {k[2].tolist()}: expected [0, 0, 1]')
    return k


@lru_cache(maxsize=16)
def _rays(k_bytes: bytes, width: int, height: int, normalize: bool) -> NDArray[np.float32]:
    k = np.frombuffer(k_bytes, dtype=np.float64).reshape(3, 3)
    fx, s, cx = k[0]
    fy, cy = k[1, 1], k[1, 2]
    yn = (np.arange(height, dtype=np.float64) - cy) / fy                         # (H,)
    u = np.arange(width, dtype=np.float64)
    xn = (u[None, :] - cx - s * yn[:, None]) / fx                                 # (H, W), skew kept
    rays = np.empty((height, width, 3), dtype=np.float64)
    rays[..., 0] = xn
    rays[..., 1] = yn[:, None]
    rays[..., 2] = 1.0
    if normalize:
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    out = rays.astype(np.float32)
    out.setflags(write=False)  # shared by the cache
    return out


def pixel_rays(K: NDArray[np.floating], width: int, height: int, normalize: bool = False) -> NDArray[np.float32]:
    """Ray direction of every pixel, (height, width, 3) float32, read-only and cached.

    ``K⁻¹ (u, v, 1)``: z = 1, so ``depth[..., None] * rays`` are the points;
    with ``normalize`` the rays are unit vectors instead (for range images).
    """
    k = np.asarray(K, dtype=np.float64)
    if k.shape != (3, 3):
        validate_k(k)               # raises the shape error
    key = k.tobytes()
    _checked_k(key)
    if width < 0 or height < 0:
        raise ConfigError(f'image size {width}x{height} is negative')
    return _rays(key, int(width), int(height), bool(normalize))


@lru_cache(maxsize=16)
def _checked_k(k_bytes: bytes) -> bool:
    """:func:`validate_k` of a (3, 3) float64 matrix's bytes, once per matrix (a bad one raises every time)."""
    validate_k(np.frombuffer(k_bytes, dtype=np.float64).reshape(3, 3))
    return True


def backproject(depth_m: NDArray[np.floating], K: NDArray[np.floating],
                max_range_m: float = math.inf, stride: int = 1) -> NDArray[np.float32]:
    """Points (N, 3) float32, metres, in the camera optical frame, from a depth image.

    depth_m : (H, W) depth (z) in metres; non-finite, <= 0 and > ``max_range_m`` pixels are skipped
    K : (3, 3) pinhole matrix
    stride : keep every ``stride``-th pixel in u and v (1 = all)
    Points come out in row-major pixel order.
    """
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise MessageFormatError(f'depth image has shape {depth.shape}: expected (H, W)')
    if stride < 1:
        raise ConfigError(f'stride {stride} must be >= 1')
    rays = pixel_rays(K, depth.shape[1], depth.shape[0])
    if stride > 1:
        depth, rays = depth[::stride, ::stride], rays[::stride, ::stride]
    with np.errstate(invalid='ignore'):
        valid = (depth > 0) & (depth <= max_range_m) & np.isfinite(depth)  # NaN compares False
    z = depth[valid].astype(np.float32)
    return rays[valid] * z[:, None]


def project(points_cam: NDArray[np.floating], K: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pixel coordinates ``(u, v)`` (N,) of points (N, 3) in the optical frame.

    Points with z <= 0 (behind the camera) get NaN. Round to the nearest
    integer for the pixel that contains the point.
    """
    k = validate_k(K)
    p = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
    z = np.where(p[:, 2] > 0, p[:, 2], np.nan)
    uvw = p @ k.T
    return uvw[:, 0] / z, uvw[:, 1] / z
