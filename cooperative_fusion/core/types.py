"""Small value types shared by several core modules, and the check of a pose covariance."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


def _zeros6() -> NDArray[np.float64]:
    return np.zeros((6, 6))


@dataclass(frozen=True)
class PoseSample:
    """A vehicle pose ``base2map`` at one stamp, as odometry reports it.

    stamp_ns : int, nanoseconds (vehicle clock or common time: the holder says which)
    position : (3,) metres in ``map``
    quat_wxyz : (4,) unit quaternion, rotation base_link -> map
    covariance : (6, 6) pose covariance, order x, y, z, roll, pitch, yaw (ROS order)
    linear_velocity : (3,) m/s in base_link (nav_msgs/Odometry twist convention)
    angular_velocity : (3,) rad/s in base_link
    """

    stamp_ns: int
    position: NDArray[np.float64]
    quat_wxyz: NDArray[np.float64]
    covariance: NDArray[np.float64] = field(default_factory=_zeros6)
    linear_velocity: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    angular_velocity: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))


def covariance_is_psd(cov: NDArray[np.floating], tol: float = 1e-9) -> bool:
    """True when ``cov`` (n, n) is finite, symmetric and positive semi-definite.

    Tolerances scale with the largest entry (``tol * max(1, max|cov|)``), so a
    large variance (an unknown yaw at 1e6) does not fail on rounding.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        return False
    if cov.shape[0] <= 3:
        return _small_covariance_is_psd(cov, tol)
    largest = float(np.abs(cov).max(initial=0.0))
    if not math.isfinite(largest):          # NaN or inf anywhere
        return False
    scale = tol * max(1.0, largest)
    diagonal = cov.diagonal()
    if np.count_nonzero(cov) == np.count_nonzero(diagonal):
        # A diagonal matrix (symmetric as it is): its eigenvalues are its diagonal, exactly (what eigvalsh
        # returns too).
        return min(float(diagonal.min(initial=0.0)), 0.0) >= -scale
    if float(np.abs(cov - cov.T).max(initial=0.0)) > scale:
        return False
    return bool(np.linalg.eigvalsh(0.5 * (cov + cov.T)).min(initial=0.0) >= -scale)


def _small_covariance_is_psd(cov: NDArray[np.float64], tol: float) -> bool:
    """covariance_is_psd of a square (n <= 3) matrix with plain floats (called per odometry message), the
    same answer: every value finite, |c_ij - c_ji| within the scale, a diagonal one by its diagonal."""
    n = cov.shape[0]
    flat = cov.ravel().tolist()
    if not all(map(math.isfinite, flat)):       # NaN or inf anywhere
        return False
    scale = tol * max(1.0, max(map(abs, flat), default=0.0))
    diagonal = True
    for i in range(n):
        for j in range(i + 1, n):
            a, b = flat[i * n + j], flat[j * n + i]
            if abs(a - b) > scale:
                return False
            if a or b:
                diagonal = False
    if diagonal:
        # Its eigenvalues are its diagonal, exactly (what eigvalsh returns too).
        return min(min(flat[::n + 1], default=0.0), 0.0) >= -scale
    return bool(np.linalg.eigvalsh(0.5 * (cov + cov.T)).min(initial=0.0) >= -scale)
