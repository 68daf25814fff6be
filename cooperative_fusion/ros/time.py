"""builtin_interfaces/Time <-> integer nanoseconds.

Core works on integer nanoseconds only; these two functions are where ROS
stamps enter and leave it. Integer arithmetic throughout: a float round trip
would lose nanoseconds beyond ~104 days of epoch time.
"""
from __future__ import annotations

from builtin_interfaces.msg import Time
from sensor_msgs.msg import TimeReference

from ..core.errors import MessageFormatError

_NS_PER_S = 1_000_000_000
_INT32_MAX = 2**31 - 1


def stamp_to_ns(stamp: Time) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` (``sec * 1e9 + nanosec``, exact)."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """``builtin_interfaces/Time`` of ``ns`` nanoseconds.

    Raises MessageFormatError for a negative stamp or one past 2038 (``sec`` is int32).
    """
    ns = int(ns)
    if ns < 0:
        raise MessageFormatError(f'stamp {ns} ns is negative: expected >= 0')
    sec, nanosec = divmod(ns, _NS_PER_S)
    if sec > _INT32_MAX:
        raise MessageFormatError(f'stamp {ns} ns does not fit builtin_interfaces/Time: sec {sec} > {_INT32_MAX}')
    return Time(sec=sec, nanosec=nanosec)


def time_reference_to_ns(msg: TimeReference) -> tuple[int, int]:
    """``(stamp_vehicle_ns, time_ref_ns)`` of a TimeReference: the vehicle clock's reading
    (``header.stamp``) and the common (GNSS) time it corresponds to (``time_ref``)."""
    return stamp_to_ns(msg.header.stamp), stamp_to_ns(msg.time_ref)


def make_time_reference(stamp_vehicle_ns: int, time_ref_ns: int, source: str = 'gnss',
                        frame_id: str = '') -> TimeReference:
    """TimeReference pairing a vehicle-clock stamp with common time (DESIGN.md ``/<v>/time_reference``)."""
    msg = TimeReference()
    msg.header.stamp = ns_to_stamp(stamp_vehicle_ns)
    msg.header.frame_id = frame_id
    msg.time_ref = ns_to_stamp(time_ref_ns)
    msg.source = source
    return msg
