"""Outcome of a drive, per platoon vehicle, from ground truth: gaps, time to collision, braking, collisions.

Inputs: the true boxes of every object (platoon members included, their ids the vehicle ids) at a sequence
of stamps, and each vehicle's true speed over time (``/truth/odom/<v>``). Everything is measured in the
vehicle's own frame (x along its heading), so it holds on any road heading:

- *gap*: bumper-to-bumper distance, metres, from the vehicle's front to the nearest part of any other box
  inside its *corridor* (``corridor_half_width_m`` either side of its centre line, straight ahead) that
  reaches past its front; 0 when such a box touches or overlaps its front.
- *closing speed*: own speed minus the object's velocity along the vehicle's heading, m/s.
- *ttc*: gap / closing speed while closing (> 0).
- *deceleration*: minus the mean acceleration over ``decel_window_s`` centred on each speed sample
  (a centred difference of the speed over the window: finite differences of 50 Hz odometry are noisy).
- *collision*: the vehicle's box overlaps any other box (interiors intersect) at a stamp.
- *time headway*: gap / own speed, over the stamps with something ahead and own speed at least
  ``min_headway_speed_mps``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError
from .metrics import Box

#: Report keys (DESIGN.md), each an object keyed by vehicle id.
OUTCOME_KEYS = ('min_gap_m', 'min_ttc_s', 'max_decel_mps2', 'collision', 'time_headway_s')


@dataclass(frozen=True)
class OutcomeConfig:
    """corridor_half_width_m : half the corridor ahead, metres (half a 3.5 m lane)
    decel_window_s : window of the centred speed difference, seconds
    min_headway_speed_mps : slower than this, no headway sample (a stopped car's headway is not defined)
    headway_percentiles : percentiles of the headway reported, as ``p<n>`` keys
    """

    corridor_half_width_m: float = 1.75
    decel_window_s: float = 0.2
    min_headway_speed_mps: float = 1.0
    headway_percentiles: tuple[int, ...] = (5, 50, 95)

    def __post_init__(self) -> None:
        for name in ('corridor_half_width_m', 'decel_window_s', 'min_headway_speed_mps'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f'outcome {name} must be a finite number > 0, got {value!r}')
        if not self.headway_percentiles or not all(0 <= p <= 100 for p in self.headway_percentiles):
            raise ConfigError(f'outcome headway_percentiles must be in [0, 100], got {self.headway_percentiles!r}')


@dataclass(frozen=True)
class Ahead:
    """The nearest thing ahead of a vehicle at one stamp: gap (m), closing speed (m/s), its id."""

    gap_m: float
    closing_mps: float
    object_id: str


def _local_corners(own: Box, other: Box) -> NDArray[np.float64]:
    """(4, 2) corners of ``other`` in ``own``'s frame (x along its heading), metres."""
    return own.to_local(other.corners())


def clipped_x_range(corners: NDArray[np.floating], half_width: float) -> tuple[float, float] | None:
    """(min x, max x) of a convex polygon's part with |y| <= half_width (corners (K, 2) in order); None
    when no part of it lies there. Exact: the extremes lie at corners inside the strip or where edges
    cross its sides."""
    c = np.asarray(corners, dtype=np.float64)
    xs = list(c[np.abs(c[:, 1]) <= half_width, 0])
    nxt = np.roll(c, -1, axis=0)
    for side in (-half_width, half_width):
        dy = nxt[:, 1] - c[:, 1]
        with np.errstate(divide='ignore', invalid='ignore'):
            f = (side - c[:, 1]) / dy
        cross = (dy != 0) & (f >= 0) & (f <= 1)
        xs.extend(c[cross, 0] + f[cross] * (nxt[cross, 0] - c[cross, 0]))
    if not xs:
        return None
    return float(min(xs)), float(max(xs))


def boxes_overlap(a: Box, b: Box, tol: float = 1e-6) -> bool:
    """Do the footprints' interiors intersect (separating axis test; touching edges do not count)?"""
    ca, cb = a.corners(), b.corners()
    for box in (a, b):
        for axis in ((math.cos(box.yaw), math.sin(box.yaw)), (-math.sin(box.yaw), math.cos(box.yaw))):
            pa, pb = ca @ axis, cb @ axis
            if pa.max() <= pb.min() + tol or pb.max() <= pa.min() + tol:
                return False
    return True


def nearest_ahead(own: Box, others: Sequence[Box], own_speed_mps: float, config: OutcomeConfig) -> Ahead | None:
    """The nearest box ahead of ``own`` in its corridor (see the module docstring), None when there is none.

    A box counts when its part in the corridor reaches past own front and not behind own rear (a follower
    or a car alongside is not ahead).
    """
    half_len = 0.5 * own.length
    heading = np.array([math.cos(own.yaw), math.sin(own.yaw)])
    best: Ahead | None = None
    for other in others:
        if other.id == own.id:
            continue
        span = clipped_x_range(_local_corners(own, other), config.corridor_half_width_m)
        if span is None or span[1] <= half_len or span[0] < -half_len:
            continue
        gap = max(span[0] - half_len, 0.0)
        if best is None or gap < best.gap_m:
            closing = own_speed_mps - float(np.dot(heading, (other.vx, other.vy)))
            best = Ahead(gap, closing, other.id)
    return best


def mean_accel(t_ns: NDArray[np.integer], speed_mps: NDArray[np.floating], window_s: float
               ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Acceleration (m/s²) averaged over ``window_s`` centred on each sample whose window lies inside the
    data: (speed(t + w/2) - speed(t - w/2)) / w, speeds linearly interpolated. Returns (stamps, accel)."""
    t = np.asarray(t_ns, dtype=np.int64)
    v = np.asarray(speed_mps, dtype=np.float64)
    if t.size < 2:
        return np.zeros(0, np.int64), np.zeros(0)
    order = np.argsort(t, kind='stable')
    t, v = t[order], v[order]
    half = int(round(0.5 * window_s * 1e9))
    inside = (t - half >= t[0]) & (t + half <= t[-1])
    tc = t[inside]
    ts = (t - t[0]).astype(np.float64) * 1e-9
    tcs = (tc - t[0]).astype(np.float64) * 1e-9
    accel = (np.interp(tcs + half * 1e-9, ts, v) - np.interp(tcs - half * 1e-9, ts, v)) / (2 * half * 1e-9)
    return tc, accel


@dataclass(frozen=True)
class VehicleOutcome:
    """One vehicle's outcome. None where there is no data (nothing ever ahead, never closing, no speeds).

    Times are stamps in nanoseconds (common time).
    """

    min_gap_m: float | None
    min_gap_object: str | None
    min_gap_ns: int | None
    min_ttc_s: float | None
    min_ttc_object: str | None
    min_ttc_ns: int | None
    max_decel_mps2: float | None
    max_decel_ns: int | None
    collision: bool
    collision_object: str | None
    collision_ns: int | None
    headway_s: dict[str, float] | None
    headway_samples: int


def vehicle_outcome(vehicle_id: str, frames: Sequence[tuple[int, Sequence[Box]]],
                    speed: tuple[NDArray[np.integer], NDArray[np.floating]] | None,
                    config: OutcomeConfig = OutcomeConfig()) -> VehicleOutcome:
    """The outcome of ``vehicle_id`` over ``frames`` ((stamp ns, boxes) in time order).

    speed : (stamps ns, speeds m/s) of the vehicle (truth odometry); without it the speed along its heading
        comes from its own box's velocity.
    """
    t_speed = v_speed = None
    if speed is not None and len(speed[0]) > 0:
        order = np.argsort(np.asarray(speed[0], dtype=np.int64), kind='stable')
        t_speed = np.asarray(speed[0], dtype=np.int64)[order]
        v_speed = np.asarray(speed[1], dtype=np.float64)[order]
    min_gap: tuple[float, str, int] | None = None
    min_ttc: tuple[float, str, int] | None = None
    collided: tuple[str, int] | None = None
    headways: list[float] = []
    for stamp, boxes in frames:
        own = next((b for b in boxes if b.id == vehicle_id), None)
        if own is None:
            continue
        if t_speed is not None:
            s = float(np.interp(float(stamp - t_speed[0]), (t_speed - t_speed[0]).astype(np.float64), v_speed))
        else:
            s = float(own.vx * math.cos(own.yaw) + own.vy * math.sin(own.yaw))
        if collided is None:
            hit = next((b for b in boxes if b.id != vehicle_id and boxes_overlap(own, b)), None)
            if hit is not None:
                collided = (hit.id, int(stamp))
        ahead = nearest_ahead(own, boxes, s, config)
        if ahead is None:
            continue
        if min_gap is None or ahead.gap_m < min_gap[0]:
            min_gap = (ahead.gap_m, ahead.object_id, int(stamp))
        if ahead.closing_mps > 0:
            ttc = ahead.gap_m / ahead.closing_mps
            if min_ttc is None or ttc < min_ttc[0]:
                min_ttc = (ttc, ahead.object_id, int(stamp))
        if s >= config.min_headway_speed_mps:
            headways.append(ahead.gap_m / s)
    max_decel: tuple[float, int] | None = None
    if t_speed is not None:
        ta, accel = mean_accel(t_speed, v_speed, config.decel_window_s)
        if accel.size:
            i = int(np.argmin(accel))
            max_decel = (max(0.0, -float(accel[i])), int(ta[i]))
    headway = ({f'p{p}': float(np.percentile(headways, p)) for p in config.headway_percentiles}
               if headways else None)
    return VehicleOutcome(
        min_gap[0] if min_gap else None, min_gap[1] if min_gap else None, min_gap[2] if min_gap else None,
        min_ttc[0] if min_ttc else None, min_ttc[1] if min_ttc else None, min_ttc[2] if min_ttc else None,
        max_decel[0] if max_decel else None, max_decel[1] if max_decel else None,
        collided is not None, collided[0] if collided else None, collided[1] if collided else None,
        headway, len(headways))


def outcome_report(vehicle_ids: Sequence[str], frames: Sequence[tuple[int, Sequence[Box]]],
                   speeds: Mapping[str, tuple[NDArray[np.integer], NDArray[np.floating]]],
                   config: OutcomeConfig = OutcomeConfig()) -> dict[str, Any]:
    """The report's outcome keys (:data:`OUTCOME_KEYS`, each keyed by vehicle id) plus ``outcome_events``:
    per vehicle, the object and time (common time, seconds) of its minimum gap, minimum ttc, hardest
    braking and first collision."""
    out: dict[str, Any] = {key: {} for key in OUTCOME_KEYS}
    events: dict[str, Any] = {}

    def sec(ns: int | None) -> float | None:
        return None if ns is None else ns * 1e-9

    for vid in vehicle_ids:
        o = vehicle_outcome(vid, frames, speeds.get(vid), config)
        out['min_gap_m'][vid] = o.min_gap_m
        out['min_ttc_s'][vid] = o.min_ttc_s
        out['max_decel_mps2'][vid] = o.max_decel_mps2
        out['collision'][vid] = o.collision
        out['time_headway_s'][vid] = o.headway_s
        events[vid] = {'min_gap_object': o.min_gap_object, 'min_gap_s': sec(o.min_gap_ns),
                       'min_ttc_object': o.min_ttc_object, 'min_ttc_at_s': sec(o.min_ttc_ns),
                       'max_decel_s': sec(o.max_decel_ns), 'collision_object': o.collision_object,
                       'collision_s': sec(o.collision_ns), 'headway_samples': o.headway_samples}
    out['outcome_events'] = events
    return out
