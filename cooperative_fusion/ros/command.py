"""The advisory follower's messages: its command as geometry_msgs/TwistStamped, and the twin's warnings for it.

Command convention (README, topic table): ``twist.linear.x`` = target speed, m/s
(forward, in ``<v>/base_link``); ``twist.linear.z`` = the longitudinal
acceleration it implies, m/s^2 (TwistStamped has no acceleration field; a ground
vehicle has no vertical speed, so a consumer reading a plain Twist ignores it);
every other component is 0.
"""
from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped

from ..core.errors import MessageFormatError
from ..core.vehicle.follower import FollowerCommand
from .time import ns_to_stamp, stamp_to_ns


def command_to_twist(cmd: FollowerCommand, frame_id: str) -> TwistStamped:
    """TwistStamped of a command, stamped at the command's time (see the module docstring)."""
    msg = TwistStamped()
    msg.header.stamp = ns_to_stamp(cmd.stamp_ns)
    msg.header.frame_id = frame_id
    msg.twist.linear.x = float(cmd.target_speed_mps)
    msg.twist.linear.z = float(cmd.accel_mps2)
    return msg


def twist_to_speed_accel(msg: TwistStamped) -> tuple[int, float, float]:
    """(stamp_ns, target speed m/s, implied acceleration m/s^2) of a command message."""
    return stamp_to_ns(msg.header.stamp), float(msg.twist.linear.x), float(msg.twist.linear.z)


def warnings_for(msg: DiagnosticArray, vehicle_id: str) -> tuple[int, list[tuple[float, float, float]]]:
    """(array stamp ns, [(distance_m, other_speed_mps, other_accel_mps2)] of each status named ``vehicle_id``).

    other_accel_mps2 is 0 when absent. MessageFormatError when such a status lacks distance_m or
    other_speed_mps, or holds a non-number.
    """
    out: list[tuple[float, float, float]] = []
    for status in msg.status:
        if status.name != vehicle_id:
            continue
        values = {kv.key: kv.value for kv in status.values}
        try:
            d, v = float(values['distance_m']), float(values['other_speed_mps'])
            a = float(values.get('other_accel_mps2', 0.0))
        except (KeyError, ValueError) as exc:
            raise MessageFormatError(f'warning for {vehicle_id} needs numeric distance_m and other_speed_mps, '
                                     f'got {values}') from exc
        if not (math.isfinite(d) and math.isfinite(v) and math.isfinite(a)):
            raise MessageFormatError(f'warning for {vehicle_id} has non-finite distance_m {d}, '
                                     f'other_speed_mps {v} or other_accel_mps2 {a}')
        out.append((d, v, a))
    return stamp_to_ns(msg.header.stamp), out
