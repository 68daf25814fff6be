"""Conflicts between platoon vehicles and what lies ahead of them, and braking advice.

Conflicts with obstacles are judged on the **no-reaction** assumption: the
vehicle under test keeps its current speed, the obstacles move as the rollout
predicts them (with their bounded tracked acceleration): a vehicle that would
brake in time in the rollout still needs to be told about an obstacle it may
not see. Its platoon predecessor is different: the vehicle's own controller
follows it. With ``predecessor_reacts`` the predecessor's contact time and
``min_gap_m`` come from the IDM rollout, where both react (braking at most
``max_decel_mps2``, a leader braking now keeps braking); the required
deceleration (stopping behind a braking predecessor) and the current-gap rules
stay. A platoon slowing together at 1.5 m/s² raises nothing (under no reaction
it gave a TTC below ``ttc_warn_s`` in every slowing phase); a predecessor
braking at 6 m/s² is an ERROR. A short but open predicted gap raises nothing:
the leader may be braking there for a track not yet confirmed, and the warning
would name the predecessor instead.

For vehicle i and each other actor j ahead of it in its path at prediction step k
(centre within ``lane_half_width_m`` of i's lane and its box overlapping i's width across
the road, and ahead: its rear was ahead of
i's front at the first step of its current stay in that lane, now or when it
comes into it; or, at the start, touching i: overlapping its box along and across
the road and not moving with it, contact now):

Everything is measured in the rollout's road coordinates (x along the road, y
across it; see :mod:`.prediction`); :func:`conflict_in_map` and
:func:`advisory_in_map` give the points of a conflict and an advisory in ``map``.

- gap_k = rear of j - front of i (along x); closing_k = v_i - vx_j,k (for obstacles, and for the
  predecessor without ``predecessor_reacts``)
- contact time t_k + gap_k / closing_k, defined only when closing_k > 0
  (a predecessor at the same speed never produces a TTC); ``ttc_s`` is its
  minimum over the steps, so a contact after the rollout horizon is
  extrapolated from the last step;
- required deceleration to end ``safe_gap_m`` behind j at j's speed:
  (v_i - v_j)² / (2 (gap_0 - safe_gap)) (for an actor braking now: behind it at
  the lowest speed the rollout gives it within the horizon, a stop for a
  leader braking with nothing ahead, about the speed of the car it follows for
  a predecessor braking behind one);
- closing counts only above ``min_closing_speed_mps`` and, for obstacles,
  ``closing_sigmas`` stds of the tracked along-road speed.

Levels: ERROR when ttc < ttc_error_s, or the required deceleration exceeds
``comfortable_decel_mps2``, or the current gap to an in-path actor is below
``gap_error_m``; WARN when ttc < ttc_warn_s or that gap is below ``gap_warn_m`` and closing
to ``gap_error_m`` within the horizon.
With ``propagate_to_followers``, a follower whose predecessor has a conflict
with an obstacle that is also ahead in the follower's own path (and closing,
with its own TTC below ``propagate_max_ttc_s``, to within ``gap_error_m`` inside the
rollout's horizon: the definition a warning is judged by) gets at least a WARN for it: a
platoon brakes together. (A car that cut in just ahead of the predecessor at
nearly its speed gives the followers TTCs of tens of seconds: no warning.)
Obstacles are not masked by the platoon vehicles in between: seeing past the truck ahead is the
point of the common grid.

A stable platoon (equal speeds, gaps above ``gap_error_m``) raises nothing. An actor
beside a vehicle (overlapping it along the road, clear of it across) when it is, or
comes, within the lane is not ahead of it: following it at constant speed never
runs into it. On the common grid such an actor is mostly a piece of the near side
of a vehicle in the next lane, tracked with a sideways speed it does not have; a
real car moving into a vehicle from beside is a side conflict this model does not
judge.

An obstacle that overlaps a platoon vehicle's box now and moves with it (along-road
speeds within ``own_body_speed_tol_mps``) is that vehicle: two bodies do not overlap
and drive on together. It is a piece of the vehicle's own cells on the common grid
that the twin's footprint did not clear (the vehicle placed off by an unknown clock
offset until its first time reference, a ghost that then coasts inside its box); it
raises no conflict for any vehicle. A real contact closes: a vehicle running into a
stopped car overlaps it at its own speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..road import RoadModel
from .prediction import (ObstacleModel, ObstacleState, Rollout, VehicleState, along_road_half_length,
                         rollout)


class ConflictLevel(IntEnum):
    """Severity, with the values of diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class ConflictConfig:
    """Conflict thresholds and advice settings (seconds, metres, m/s^2).

    min_track_hits : a track raises conflicts only after this many detections (used by the twin:
        the velocity of a young track, or of a fragment of a split object, is not known well enough
        for a time to collision)
    known_velocity_hits, known_velocity_std_mps : ... or already after ``known_velocity_hits``
        detections when its along-road velocity is known to ``known_velocity_std_mps`` (1 sigma of
        the tracker's covariance): a track with a radar velocity hint (a stopped car seen by the
        leader's radar) has it after about three detections, one from grid positions alone after
        five or six. 0 hits: only ``min_track_hits`` counts
    max_track_misses : a track raises conflicts only while it missed at most this many grids in a row: a
        coasting track's position and velocity are extrapolated, not seen (on the common grid mostly a
        fragment of an object whose detection went to another track, drifting at the fragment's speed)
    closing_sigmas : an obstacle closes only faster than this many stds of its tracked along-road speed
        (and ``min_closing_speed_mps``): a closing speed the track cannot tell from zero gives no time to
        collision and no short-gap warning (0: only ``min_closing_speed_mps``)
    own_body_speed_tol_mps : an obstacle overlapping a platoon vehicle's box whose along-road speed
        is within this of the vehicle's is the vehicle itself, not a contact, m/s
    predecessor_reacts : judge the platoon predecessor in the IDM rollout, where the vehicle's own
        controller follows it (see the module doc); False: under no reaction, like obstacles
    advisory_dt_s, advisory_hold_s, advisory_max_poses : shortest spacing of the braking poses of an
        advisory, how long it goes on after braking, and its most poses (a nav_msgs/Path of 12 poses is
        under 1,200 bytes, the 3GPP platooning message size; see :func:`advise`)
    """

    ttc_warn_s: float = 6.0
    ttc_error_s: float = 3.0
    gap_warn_m: float = 10.0
    gap_error_m: float = 5.0
    comfortable_decel_mps2: float = 3.0
    max_decel_mps2: float = 8.0
    safe_gap_m: float = 5.0
    lane_half_width_m: float = 1.8
    min_closing_speed_mps: float = 0.1
    propagate_to_followers: bool = True
    propagate_max_ttc_s: float = 10.0
    min_track_hits: int = 1
    max_track_misses: int = 1000
    known_velocity_hits: int = 0
    known_velocity_std_mps: float = 0.7
    own_body_speed_tol_mps: float = 1.0
    closing_sigmas: float = 0.0
    predecessor_reacts: bool = True
    advisory_dt_s: float = 0.1
    advisory_hold_s: float = 1.0
    advisory_max_poses: int = 12

    def __post_init__(self) -> None:
        for name in ('ttc_warn_s', 'ttc_error_s', 'comfortable_decel_mps2', 'max_decel_mps2', 'lane_half_width_m',
                     'min_closing_speed_mps', 'advisory_dt_s', 'propagate_max_ttc_s'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f'ConflictConfig.{name} must be a positive finite number, got {value!r}')
        for name in ('gap_warn_m', 'gap_error_m', 'safe_gap_m', 'advisory_hold_s', 'own_body_speed_tol_mps',
                     'closing_sigmas'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f'ConflictConfig.{name} must be a finite number >= 0, got {value!r}')
        if not (isinstance(self.advisory_max_poses, int) and self.advisory_max_poses >= 4):
            raise ConfigError(f'ConflictConfig.advisory_max_poses must be an integer >= 4 (start, start of braking, '
                              f'end of braking, end of hold), got {self.advisory_max_poses!r}')
        if not (isinstance(self.max_track_misses, int) and self.max_track_misses >= 0):
            raise ConfigError(f'ConflictConfig.max_track_misses must be an integer >= 0, got {self.max_track_misses!r}')
        if not (isinstance(self.min_track_hits, int) and self.min_track_hits >= 1):
            raise ConfigError(f'ConflictConfig.min_track_hits must be an integer >= 1, got {self.min_track_hits!r}')
        if not (isinstance(self.known_velocity_hits, int) and self.known_velocity_hits >= 0):
            raise ConfigError(f'ConflictConfig.known_velocity_hits must be an integer >= 0, '
                              f'got {self.known_velocity_hits!r}')
        if not (isinstance(self.known_velocity_std_mps, (int, float)) and math.isfinite(self.known_velocity_std_mps)
                and self.known_velocity_std_mps > 0):
            raise ConfigError(f'ConflictConfig.known_velocity_std_mps must be a positive finite number, '
                              f'got {self.known_velocity_std_mps!r}')
        if self.ttc_error_s > self.ttc_warn_s:
            raise ConfigError(f'ttc_error_s {self.ttc_error_s} s must not exceed ttc_warn_s {self.ttc_warn_s} s')
        if self.gap_error_m > self.gap_warn_m:
            raise ConfigError(f'gap_error_m {self.gap_error_m} m must not exceed gap_warn_m {self.gap_warn_m} m')
        if self.comfortable_decel_mps2 > self.max_decel_mps2:
            raise ConfigError(f'comfortable_decel_mps2 {self.comfortable_decel_mps2} must not exceed '
                              f'max_decel_mps2 {self.max_decel_mps2}')


@dataclass(frozen=True)
class Conflict:
    """The worst conflict of one platoon vehicle.

    ttc_s : seconds from now to contact under no reaction (inf if not closing)
    distance_m : current bumper gap along x to the other actor, metres
    x, y : predicted contact point (the vehicle's front), or the other's position if no contact, metres
    obstacle_track_id / predecessor_id : the other actor (exactly one is set)
    required_decel_mps2 : deceleration that ends safe_gap behind it at its speed
    other_speed_mps, other_accel_mps2 : the other's current along-road speed and acceleration
    min_gap_m : smallest predicted gap over the horizon while in the path (no reaction), metres
    propagated : True when the level comes only from the predecessor's conflict
    obstacle_x, obstacle_y : the other actor's centre now (at the conflict's stamp), metres
    """

    vehicle_id: str
    level: ConflictLevel
    ttc_s: float
    distance_m: float
    x: float
    y: float
    obstacle_track_id: int | None
    predecessor_id: str | None
    required_decel_mps2: float
    other_speed_mps: float
    other_accel_mps2: float
    min_gap_m: float
    propagated: bool = False
    obstacle_x: float = math.nan
    obstacle_y: float = math.nan

    @property
    def other_id(self) -> str:
        """``track_<id>`` or the predecessor's vehicle id."""
        return self.predecessor_id if self.predecessor_id is not None else f'track_{self.obstacle_track_id}'


def _no_reaction(x0: NDArray[np.float64], v0: NDArray[np.float64], a0: NDArray[np.float64],
                 t: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(S+1, N) positions and speeds at constant acceleration, stopping (not reversing) at v = 0."""
    tt = t[:, None]
    braking = a0 < 0
    t_stop = np.where(braking, v0 / np.where(braking, -a0, 1.0), np.inf)
    tb = np.minimum(tt, t_stop)
    return x0 + v0 * tb + 0.5 * a0 * tb * tb, v0 + a0 * tb


def stays_in_path(in_lane: NDArray[np.bool_], ahead: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """(S+1, ...) bool: in_path[k] = in_lane[k] & (ahead[k] | in_path[k - 1]), in_path[0] = in_lane[0] & ahead[0].

    Over all steps at once: in_path[k] holds when, within the stay in the lane that step k is in, an actor
    was ahead at some step up to k.
    """
    n_ahead = np.cumsum(in_lane & ahead, axis=0)
    # ahead-counts up to the last step out of the lane (0 before any)
    before_stay = np.maximum.accumulate(np.where(in_lane, 0, n_ahead), axis=0)
    return in_lane & (n_ahead > before_stay)


def find_conflicts(ro: Rollout, cfg: ConflictConfig | None = None,
                   eligible: NDArray[np.bool_] | None = None) -> list[Conflict]:
    """At most one conflict per platoon vehicle (its worst), in platoon order. See the module doc.

    eligible : (K,) which obstacles may raise a conflict (None: all); the others still are in the
        rollout (and the predicted grids)
    """
    cfg = cfg or ConflictConfig()
    pl, ob = ro.platoon, ro.obstacles
    nv, nk = len(pl), len(ob)
    if nv == 0:
        return []
    t = ro.times_s
    half_v = 0.5 * pl.length
    xi = pl.x + pl.speed * t[:, None]                                            # (S+1, V) no reaction
    pred = pl.predecessor
    has_pred = pred >= 0
    ps = np.where(has_pred, pred, 0)
    xp, vp = _no_reaction(pl.x, pl.speed, pl.accel, t)

    # Others per vehicle: K obstacles then the predecessor -> (S+1, V, K+1).
    shape = (t.shape[0], nv, nk + 1)
    ox = np.empty(shape)
    oy = np.empty(shape)
    ovx = np.empty(shape)
    ohalf = np.empty(shape)
    owide = np.empty(shape[1:])                                                 # half width across the road, now
    ox[:, :, :nk] = ro.obstacle_x[:, None, :]
    oy[:, :, :nk] = ro.obstacle_y[:, None, :]
    ovx[:, :, :nk] = ro.obstacle_vx[:, None, :]
    ohalf[:, :, :nk] = along_road_half_length(ob.length, ob.width, ro.obstacle_yaw)[:, None, :]
    owide[:, :nk] = along_road_half_length(ob.width, ob.length, ro.obstacle_yaw[0])[None, :]
    ox[:, :, nk] = xp[:, ps]
    oy[:, :, nk] = pl.y[ps]
    ovx[:, :, nk] = vp[:, ps]
    ohalf[:, :, nk] = half_v[ps]
    owide[:, nk] = 0.5 * pl.width[ps]
    # Actors the vehicle's box touches now (overlapping along and across the road), (V, K+1).
    touching = ((np.abs(oy[0] - pl.y[:, None]) < 0.5 * pl.width[:, None] + owide)
                & (np.abs(ox[0] - xi[0][:, None]) < ohalf[0] + half_v[:, None]))
    # A contact is ahead only while the actor still reaches past the vehicle's front: one the front
    # has passed (the vehicle drove over its remains, or it touches the flank or rear) is no braking case.
    touching_ahead = touching & (ox[0] + ohalf[0] > xi[0][:, None] + half_v[:, None])
    # An obstacle touching a vehicle and moving with it is that vehicle (its own cells): nobody's obstacle.
    own_body = touching[:, :nk] & (np.abs(pl.speed[:, None] - ovx[0, :, :nk]) <= cfg.own_body_speed_tol_mps)
    valid = np.ones((nv, nk + 1), bool)
    valid[:, nk] = has_pred
    valid[:, :nk] &= ~own_body.any(axis=0)[None, :]
    if eligible is not None:
        valid[:, :nk] &= np.asarray(eligible, dtype=bool).reshape(1, nk)

    xi3 = xi[:, :, None]
    gap = ox - ohalf - xi3 - half_v[None, :, None]
    # In the lane: centre within lane_half_width_m of the vehicle's line, and the boxes overlapping across the
    # road (a piece of a next-lane car's near side on the lane line, 0.8 m wide, is passed, not run into).
    dy = np.abs(oy - pl.y[None, :, None])
    in_lane = valid & (dy <= cfg.lane_half_width_m) & (dy < (0.5 * pl.width[:, None] + owide)[None])
    # In the path = in the lane, and ahead (rear past the front) when its stay in the lane began;
    # at the start also an actor the vehicle's box touches now (contact).
    ahead = gap > 0
    ahead[0] |= touching_ahead
    in_path = stays_in_path(in_lane, ahead)
    closing = pl.speed[None, :, None] - ovx
    # Slowest closing that counts, (V, K+1): for obstacles also closing_sigmas of their speed's std.
    min_closing = np.full((nv, nk + 1), cfg.min_closing_speed_mps)
    min_closing[:, :nk] = np.maximum(min_closing[:, :nk], cfg.closing_sigmas * ob.vx_std[None, :])
    t3 = t[:, None, None]

    def shrinks_to(distance_m: float) -> NDArray[np.float64]:
        """(steps, V, K+1) time at which each gap would be down to ``distance_m`` under no reaction, inf when
        it never closes on it (at step k: now if already there); inf outside the path."""
        with np.errstate(divide='ignore', invalid='ignore'):
            when = np.where(gap <= distance_m, t3,
                            np.where(closing > min_closing, t3 + (gap - distance_m) / closing, np.inf))
        return np.where(in_path, when, np.inf)

    contact = shrinks_to(0.0)
    # A conflict is a gap that shrinks to gap_error_m (the conflict distance) within the rollout's horizon
    # (the definition a warning is judged by).
    within = shrinks_to(cfg.gap_error_m).min(axis=0) <= t[-1] + 1e-9            # (V, K+1)
    kmin = np.argmin(contact, axis=0)                                            # (V, K+1)
    ttc = np.take_along_axis(contact, kmin[None], axis=0)[0]
    min_gap = np.where(in_path, np.maximum(gap, 0.0), np.inf).min(axis=0)
    gap0, in_path0 = gap[0], in_path[0]

    # Required deceleration (no reaction of the vehicle). The other, braking now at a_j, slows to v_end, the
    # lowest speed the rollout gives it within the horizon: an obstacle by its bounded braking, the
    # predecessor as it follows what is ahead of it (a truck braking hard behind a car that cut in slows to
    # about that car's speed, not to a stop; a leader braking now keeps braking). Ending safe_gap behind it
    # at v_end needs (v_i - v_end)^2 / (2 (gap_0 - safe_gap + (v_j - v_end)^2 / (2 |a_j|))).
    v_i = pl.speed[:, None]
    v_j = np.maximum(ovx[0], 0.0)
    a_j = np.zeros((nv, nk + 1))
    if ro.config.obstacle_model is ObstacleModel.CV:
        a_j[:, :nk] = np.clip(ob.ax, -ro.config.max_decel_mps2, ro.config.max_obstacle_accel_mps2)[None, :]
    a_j[:, nk] = pl.accel[ps]
    stopping = a_j < -1e-3
    v_end = np.empty((nv, nk + 1))
    v_end[:, :nk] = ro.obstacle_vx.min(axis=0)[None, :]
    v_end[:, nk] = ro.platoon_speed[:, ps].min(axis=0)
    v_end = np.where(stopping, np.clip(v_end, 0.0, v_j), v_j)
    with np.errstate(divide='ignore', invalid='ignore'):
        room = gap0 - cfg.safe_gap_m + np.where(stopping, (v_j - v_end) ** 2 / (2.0 * np.abs(a_j)), 0.0)
        rel = v_i - v_end
        a_req = np.where(rel > cfg.min_closing_speed_mps,
                         np.where(room > 0, rel ** 2 / (2.0 * room), np.inf), 0.0)
    if cfg.predecessor_reacts:
        # The predecessor is followed by the vehicle's own controller: contact and gaps come from a rollout of
        # the platoon alone, where both react (IDM, braking at most max_decel; a leader braking now keeps
        # braking), not from no reaction. Obstacles are left out there: braking for them is judged (and
        # propagated) as conflicts with them, not as one with the predecessor. (The required deceleration
        # stays kinematic: the IDM's own desired gap may differ from the platoon's.)
        if nk == 0 or ro.obstacles_ignored:
            xr = ro.platoon_x
        elif ro.platoon_x_alone is not None:
            xr = ro.platoon_x_alone
        else:
            xr = rollout(pl, ObstacleState.empty(), ro.config).platoon_x
        gap_r = np.where(has_pred[None, :], xr[:, ps] - half_v[ps][None, :] - xr - half_v[None, :], np.inf)
        touch = gap_r <= 0
        ttc[:, nk] = np.where(touch.any(axis=0) & in_path0[:, nk], t[np.argmax(touch, axis=0)], np.inf)
        min_gap[:, nk] = np.where(in_path0[:, nk], np.maximum(gap_r.min(axis=0), 0.0), np.inf)
    relevant = np.isfinite(ttc) | in_path0
    a_req = np.where(relevant, a_req, 0.0)
    error = relevant & ((ttc < cfg.ttc_error_s) | (a_req > cfg.comfortable_decel_mps2)
                        | (in_path0 & (gap0 < cfg.gap_error_m)))
    # A short gap warns only while it closes, to gap_error_m within the horizon: a car that cut in and
    # follows at about the vehicle's speed is for its ACC, not a conflict (below gap_error_m it is an
    # ERROR all the same).
    short = (gap0 < cfg.gap_warn_m) & (closing[0] > min_closing) & within
    warn = relevant & ((ttc < cfg.ttc_warn_s) | (in_path0 & short))
    level = np.where(error, 2, np.where(warn, 1, 0))
    propagated = np.zeros_like(error)
    if cfg.propagate_to_followers and nk:
        # Sequential along the platoon order (a follower inherits from its predecessor), vectorised over obstacles.
        by_order = np.argsort(pl.order)
        for j in by_order[1:]:
            inherit = ((level[pred[j], :nk] > 0) & (ttc[j, :nk] < cfg.propagate_max_ttc_s) & within[j, :nk]
                       & (level[j, :nk] == 0))
            level[j, :nk] = np.where(inherit, 1, level[j, :nk])
            propagated[j, :nk] = inherit

    out: list[Conflict] = []
    score = np.where(level > 0, level * 1e6 - np.minimum(ttc, 1e5), -np.inf)
    for i in np.argsort(pl.order):
        if level[i].max() == 0:
            continue
        j = int(np.argmax(score[i]))
        is_pred = j == nk
        if np.isfinite(ttc[i, j]):
            cx, cy = pl.x[i] + half_v[i] + pl.speed[i] * ttc[i, j], pl.y[i]
        else:
            cx, cy = ox[0, i, j], oy[0, i, j]
        out.append(Conflict(
            vehicle_id=pl.ids[i], level=ConflictLevel(int(level[i, j])), ttc_s=float(ttc[i, j]),
            distance_m=float(gap0[i, j]), x=float(cx), y=float(cy),
            obstacle_track_id=None if is_pred else int(ob.ids[j]),
            predecessor_id=pl.ids[pred[i]] if is_pred else None,
            required_decel_mps2=float(a_req[i, j]), other_speed_mps=float(v_j[i, j]),
            other_accel_mps2=float(a_j[i, j]), min_gap_m=float(min_gap[i, j]),
            propagated=bool(propagated[i, j]), obstacle_x=float(ox[0, i, j]), obstacle_y=float(oy[0, i, j])))
    return out


@dataclass(frozen=True)
class Advisory:
    """An advised trajectory along the vehicle's heading: pose k is where to be at stamp + ``t_offset_ns[k]``.

    t_offset_ns : (P,) int64 nanoseconds from the advisory's stamp, increasing, P <= ``advisory_max_poses``
    x, y, yaw, speed : (P,) metres, metres, radians (the vehicle's heading), m/s (the speed at each pose;
        a follower reads it from successive poses and stamps)
    coast_s : seconds at the current speed before braking starts
    decel_mps2 : deceleration the profile brakes at; needed_decel_mps2 : the least that ends exactly
        safe_gap behind the other (braking now)
    target_speed_mps : the speed held after braking (the other's speed, 0 if it stands or stops)
    exceeds_comfort : needed > comfortable; unavoidable : needed > max (the safe gap cannot be kept)
    """

    vehicle_id: str
    t_offset_ns: NDArray[np.int64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    yaw: NDArray[np.float64]
    speed: NDArray[np.float64]
    decel_mps2: float
    needed_decel_mps2: float
    target_speed_mps: float
    exceeds_comfort: bool
    unavoidable: bool
    coast_s: float = 0.0


def advise(vehicle: VehicleState, conflict: Conflict, cfg: ConflictConfig | None = None) -> Advisory:
    """Speed profile that stops (or slows) the vehicle ``safe_gap_m`` behind the other actor, along its heading.

    The other keeps its speed (a braking predecessor is taken to its stop). When braking at
    ``comfortable_decel_mps2`` fits, the profile holds the current speed for ``coast_s`` and then brakes at
    exactly that deceleration, ending ``safe_gap_m`` behind the other at its speed: a warning with room to
    spare costs no braking yet (with under ``advisory_dt_s`` of coasting left it brakes now, at the need).
    When it does not fit, the profile brakes now at the least deceleration that does, up to
    ``max_decel_mps2``; beyond that the safe gap cannot be kept: it brakes now at ``max_decel_mps2`` with
    ``unavoidable`` set. Not closing: hold the lower of the two speeds. Poses: the start, the start of
    braking, braking sampled evenly (spacing at least ``advisory_dt_s``), its end, and ``advisory_hold_s``
    (at least ``advisory_dt_s``) after it: at most ``advisory_max_poses``. Pose stamps say when to be
    there; the speed follows from successive poses (``core.vehicle.follower.advisory_profile``).
    """
    cfg = cfg or ConflictConfig()
    if vehicle.vehicle_id != conflict.vehicle_id:
        raise ConfigError(f'conflict is for {conflict.vehicle_id!r}, not for vehicle {vehicle.vehicle_id!r}')
    v = max(float(vehicle.speed), 0.0)
    stopping = conflict.other_accel_mps2 < -1e-3
    v_t = 0.0 if stopping else min(max(conflict.other_speed_mps, 0.0), v)
    room = conflict.distance_m - cfg.safe_gap_m
    if stopping:
        room += conflict.other_speed_mps ** 2 / (2.0 * abs(conflict.other_accel_mps2))
    rel = v - v_t
    if rel <= cfg.min_closing_speed_mps:
        needed = 0.0
    elif room <= 0:
        needed = math.inf
    else:
        needed = rel * rel / (2.0 * room)
    if needed == 0.0:
        decel, coast, brake = 0.0, 0.0, 0.0
        t = np.array([0.0, max(cfg.advisory_hold_s, cfg.advisory_dt_s)])
    else:
        decel = max(min(needed, cfg.max_decel_mps2), cfg.comfortable_decel_mps2)
        # the gap closes at rel while coasting (a stopping other: room counts the vehicle's own travel at v)
        coast = max((room - rel * rel / (2.0 * decel)) / rel, 0.0) if math.isfinite(needed) else 0.0
        if coast < cfg.advisory_dt_s:                  # about to brake at comfort anyway: the exact need, now
            coast, decel = 0.0, max(min(needed, cfg.max_decel_mps2), 1e-9)
        brake = rel / decel
        # the last segment holds the target speed (at least advisory_dt_s): a follower reading speeds from
        # successive poses then gets every pose's speed exactly (core.vehicle.follower.advisory_profile)
        hold = [coast + brake + max(cfg.advisory_hold_s, cfg.advisory_dt_s)]
        head = [0.0, coast] if coast > 0 else [0.0]
        n = max(1, min(cfg.advisory_max_poses - len(head) - len(hold),
                       int(math.floor(brake / cfg.advisory_dt_s + 1e-9))))
        t = np.array(head + [coast + brake * k / n for k in range(1, n + 1)] + hold)
    v0 = v if decel > 0 else v_t
    tb = np.clip(t - coast, 0.0, brake)                                  # time spent braking by t
    s = v0 * np.minimum(t, coast) + v0 * tb - 0.5 * decel * tb * tb + v_t * np.maximum(t - coast - brake, 0.0)
    speed = np.where(t < coast + brake, v0 - decel * tb, v_t)
    c, sn = math.cos(vehicle.heading), math.sin(vehicle.heading)
    n_p = t.shape[0]
    return Advisory(vehicle.vehicle_id, np.rint(t * 1e9).astype(np.int64), vehicle.x + s * c, vehicle.y + s * sn,
                    np.full(n_p, float(vehicle.heading)), speed, float(decel), float(needed), float(v_t),
                    needed > cfg.comfortable_decel_mps2, needed > cfg.max_decel_mps2, float(coast))


def conflict_in_map(conflict: Conflict, road: RoadModel | None) -> Conflict:
    """The conflict with its contact point (x, y) and obstacle position in ``map``, from ``road``'s
    coordinates (s, d); itself for ``road`` None. Distances and speeds stay along the road."""
    if road is None:
        return conflict
    (x, ox), (y, oy), _ = road.to_map(np.array([conflict.x, conflict.obstacle_x]),
                                      np.array([conflict.y, conflict.obstacle_y]))
    return replace(conflict, x=float(x), y=float(y), obstacle_x=float(ox), obstacle_y=float(oy))


def advisory_in_map(advisory: Advisory, road: RoadModel | None) -> Advisory:
    """The advisory's poses in ``map`` from ``road``'s coordinates (x = s, y = d, yaw relative to the
    road): along the vehicle's lane as the road curves, yaw the road's heading; itself for ``road`` None."""
    if road is None:
        return advisory
    x, y, heading = road.to_map(advisory.x, advisory.y)
    yaw = (advisory.yaw + heading + math.pi) % (2.0 * math.pi) - math.pi
    return replace(advisory, x=x, y=y, yaw=yaw)
