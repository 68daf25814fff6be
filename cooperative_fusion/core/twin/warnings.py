"""What the twin tells a vehicle: a conflict as warning values, an advisory as base_link poses.

:func:`warning_of` gives the content of one ``/twin/warnings`` status (name =
vehicle id, level, message, values); :func:`advisory_of_base_link` moves an
advisory from box centres (what core works on) to base_link, as the vehicle's
own odometry reports it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .conflicts import Advisory, Conflict, ConflictLevel


@dataclass(frozen=True)
class TwinWarning:
    """One warning: the warned vehicle, WARN or ERROR, a one-line message and the values it carries."""

    vehicle_id: str
    level: ConflictLevel
    message: str
    values: dict[str, object]


def warning_of(c: Conflict, adv: Advisory | None) -> TwinWarning:
    """The warning of a conflict and the vehicle's advisory (if any).

    values : ttc_s, distance_m, x, y (predicted contact point); object (``track_<id>`` or the
    predecessor's vehicle id), obstacle_x, obstacle_y (its centre at the stamp, metres); track_id or
    predecessor (the other actor); required_decel_mps2, other_speed_mps, other_accel_mps2, min_gap_m, propagated; with an
    advisory also advised_decel_mps2, target_speed_mps, exceeds_comfort, unavoidable
    """
    values: dict[str, object] = {'ttc_s': c.ttc_s, 'distance_m': c.distance_m, 'x': c.x, 'y': c.y,
                                 'object': c.other_id, 'obstacle_x': c.obstacle_x, 'obstacle_y': c.obstacle_y}
    if c.obstacle_track_id is not None:
        values['track_id'] = c.obstacle_track_id
    if c.predecessor_id is not None:
        values['predecessor'] = c.predecessor_id
    values.update({'required_decel_mps2': c.required_decel_mps2, 'other_speed_mps': c.other_speed_mps,
                   'other_accel_mps2': c.other_accel_mps2, 'min_gap_m': c.min_gap_m,
                   'propagated': c.propagated})
    if adv is not None:
        values.update({'advised_decel_mps2': adv.decel_mps2, 'target_speed_mps': adv.target_speed_mps,
                       'exceeds_comfort': adv.exceeds_comfort, 'unavoidable': adv.unavoidable})
    ttc = f'{c.ttc_s:.1f} s' if math.isfinite(c.ttc_s) else 'not closing'
    message = f'{c.other_id} ahead: gap {c.distance_m:.1f} m, ttc {ttc}'
    return TwinWarning(c.vehicle_id, ConflictLevel(int(c.level)), message, values)


def advisory_of_base_link(adv: Advisory, base_to_centre_m: float) -> Advisory:
    """The advisory (box centres) as poses of the vehicle's base_link, ``base_to_centre_m`` behind each centre
    along its yaw."""
    back = base_to_centre_m
    return replace(adv, x=adv.x - back * np.cos(adv.yaw), y=adv.y - back * np.sin(adv.yaw))
