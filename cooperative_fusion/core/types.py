"""Small value types shared by several core modules."""
from __future__ import annotations

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
