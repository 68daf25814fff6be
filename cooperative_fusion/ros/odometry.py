"""nav_msgs/Odometry <-> core.types.PoseSample.

ROS orders quaternions (x, y, z, w); core uses (w, x, y, z). The pose
covariance (36,) row-major becomes (6, 6) in ROS order x, y, z, roll, pitch, yaw.
"""
from __future__ import annotations

import math

import numpy as np
from nav_msgs.msg import Odometry
from numpy.typing import NDArray

from ..core.errors import MessageFormatError
from ..core.types import PoseSample, covariance_is_psd
from .time import ns_to_stamp, stamp_to_ns

__all__ = ['odometry_to_pose', 'pose_to_odometry', 'covariance_is_psd']   # covariance_is_psd: core.types


def _finite(name: str, values: NDArray[np.float64]) -> NDArray[np.float64]:
    if not np.all(np.isfinite(values)):
        raise MessageFormatError(f'odometry {name} is not finite: {values.ravel().tolist()}')
    return values


def odometry_to_pose(msg: Odometry) -> PoseSample:
    """PoseSample (stamp from header, in the sender's clock) of an Odometry message.

    The quaternion is normalised. MessageFormatError for non-finite position,
    orientation, covariance or twist, or a zero quaternion.
    """
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    fields = [p.x, p.y, p.z, q.w, q.x, q.y, q.z, lin.x, lin.y, lin.z, ang.x, ang.y, ang.z]
    values = np.array(fields, dtype=np.float64)
    cov = np.array(msg.pose.covariance, dtype=np.float64).reshape(6, 6)
    # A plain sum screens the fields (a NaN or an infinity makes it non-finite; so may an overflow of
    # finite values, which the checks below then let through), without numpy's overflow warning.
    if not (math.isfinite(sum(fields)) and np.isfinite(cov).all()):
        _finite('position', values[0:3])
        _finite('orientation', values[3:7])
        _check_norm(values[3:7], q)
        _finite('covariance', cov)
        _finite('twist.linear', values[7:10])
        _finite('twist.angular', values[10:13])
    quat = values[3:7]
    norm = _check_norm(quat, q)
    return PoseSample(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        position=values[0:3],
        quat_wxyz=quat / norm,
        covariance=cov,
        linear_velocity=values[7:10],
        angular_velocity=values[10:13],
    )


def _check_norm(quat: NDArray[np.float64], q) -> float:
    norm = math.sqrt(quat.dot(quat))        # what np.linalg.norm computes for a vector, without its overhead
    if norm < 1e-9:
        raise MessageFormatError(f'odometry orientation is a zero quaternion (x, y, z, w) = '
                                 f'({q.x}, {q.y}, {q.z}, {q.w}): expected a unit quaternion')
    return norm


def pose_to_odometry(pose: PoseSample, frame_id: str, child_frame_id: str) -> Odometry:
    """Odometry of a PoseSample; the twist covariance is left zero (unknown)."""
    msg = Odometry()
    msg.header.stamp = ns_to_stamp(pose.stamp_ns)
    msg.header.frame_id = frame_id
    msg.child_frame_id = child_frame_id
    position = msg.pose.pose.position
    position.x, position.y, position.z = (float(v) for v in pose.position)
    orientation = msg.pose.pose.orientation
    orientation.w, orientation.x, orientation.y, orientation.z = (float(v) for v in pose.quat_wxyz)
    cov = np.asarray(pose.covariance, dtype=np.float64)
    if cov.shape != (6, 6):
        raise MessageFormatError(f'pose covariance has shape {cov.shape}: expected (6, 6)')
    msg.pose.covariance = cov.ravel()
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    lin.x, lin.y, lin.z = (float(v) for v in pose.linear_velocity)
    ang.x, ang.y, ang.z = (float(v) for v in pose.angular_velocity)
    return msg
