"""SE(3) helpers over 4×4 homogeneous matrices.

Quaternions inside core are ``(w, x, y, z)`` (transforms3d's order); ROS
messages carry ``(x, y, z, w)`` and the adapters in ``ros/`` convert. A matrix
named ``a2b`` maps points expressed in frame ``a`` into frame ``b``.
"""
from __future__ import annotations

import numpy as np
import transforms3d
from numpy.typing import NDArray



def from_xyz_rpy(xyz: NDArray[np.floating], rpy: NDArray[np.floating]) -> NDArray[np.float64]:
    """4×4 transform from a translation (3,) metres and roll, pitch, yaw (3,) radians (static axes, ROS's convention)."""
    t = np.eye(4)
    r, p, y = (float(v) for v in rpy)
    t[:3, :3] = transforms3d.euler.euler2mat(r, p, y, axes='sxyz')
    t[:3, 3] = np.asarray(xyz, dtype=np.float64)
    return t


def from_xy_yaw(x: float, y: float, yaw: float, z: float = 0.0) -> NDArray[np.float64]:
    """Planar pose as a 4×4 transform."""
    c, s = np.cos(yaw), np.sin(yaw)
    t = np.eye(4)
    t[:2, :2] = [[c, -s], [s, c]]
    t[:3, 3] = (x, y, z)
    return t


def to_translation_quat(t: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Translation (3,) and unit quaternion (w, x, y, z) of a 4×4 transform."""
    t = np.asarray(t, dtype=np.float64)
    return t[:3, 3].copy(), transforms3d.quaternions.mat2quat(t[:3, :3])


def yaw_of(t: NDArray[np.floating]) -> float:
    """Heading (rotation about z) of a 4×4 transform, radians."""
    return float(np.arctan2(t[1, 0], t[0, 0]))


def invert(t: NDArray[np.floating]) -> NDArray[np.float64]:
    """Inverse of a rigid 4×4 transform (no general matrix inverse)."""
    t = np.asarray(t, dtype=np.float64)
    out = np.eye(4)
    rot_t = t[:3, :3].T
    out[:3, :3] = rot_t
    out[:3, 3] = -rot_t @ t[:3, 3]
    return out


def apply(t: NDArray[np.floating], points: NDArray[np.floating]) -> NDArray[np.float64]:
    """Transform points (N, 3) by a 4×4 transform; returns (N, 3) float64."""
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(t)[:3, :3].T + np.asarray(t)[:3, 3]
