"""Longitudinal command of one vehicle from its predecessor, the twin's warnings and the twin's advisory.

:class:`AdvisoryFollower` turns, once per command period, the vehicle's own
state and its inputs into a :class:`FollowerCommand` (target speed, the
acceleration it implies, the input that limited it). The platoon law is a
CACC toward the predecessor whose state it has over V2V (constant time gap,
the predecessor's acceleration fed forward); obstacles (from the vehicle's
own evidence in every mode, and the twin's warnings in the cooperative ones) are followed as
standing or moving leaders by the Improved IDM (Treiber & Kesting, *Traffic
Flow Dynamics*, 2013, 11.3.5); both have a kinematic floor
(:func:`stopping_decel`) that brakes harder, up to ``max_decel_mps2``, when
the comfortable approach no longer fits.
The twin's advisory is a speed profile (:func:`advisory_profile`); followed
when fresh, by position along it, the command takes the lower of ACC and
advised speed.

Pure numpy / math, deterministic, no ROS. Stamps are integer nanoseconds in the
common timebase; distances metres along the vehicle's heading; speeds m/s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError


#: An advised path whose pose speeds, solved as piecewise linear, change faster than this is read another way.
_MAX_PROFILE_ACCEL_MPS2 = 15.0


#: A predecessor or obstacle slower than this (m/s) has stopped: the CACC's kinematic floor then holds at any
#: need, and a warning about it outlives the twin's silence (follower_core.FollowerCore.on_warnings).
STOPPED_MPS = 0.5
#: ... once the stop needs more than this (m/s^2): a standing follower may still creep up to the set gap.
_STOPPED_FLOOR_MPS2 = 0.1


class FollowerMode(str, Enum):
    """What the follower acts on (the issue's three modes)."""

    EGO = 'ego'                               # predecessor + own perception; twin ignored
    COOPERATIVE = 'cooperative'               # + the twin's warnings for this vehicle
    ADVISORY = 'cooperative+advisory'         # + the twin's advised speed profile


class Limit(str, Enum):
    """The input that set the command."""

    CRUISE = 'cruise'
    PREDECESSOR = 'predecessor'
    OBSTACLE = 'obstacle'
    ADVISORY = 'advisory'


@dataclass(frozen=True)
class FollowerConfig:
    """Follower parameters (seconds, metres, m/s, m/s^2).

    mode : FollowerMode (or its string value)
    cruise_speed_mps : set speed on a free road (OwnState.set_speed_mps overrides it per call); a
        scripted vehicle (the leader) drives the lower of it and its script
    time_gap_s : IIDM time gap T toward obstacles (leaders known without V2V: warnings, own perception)
    platoon_time_gap_s : CACC time gap h behind the predecessor (its state over V2V): steady following
        holds gap = standstill_gap_m + v·h
    standstill_gap_m : bumper gap behind the predecessor at standstill, metres
    cacc_gap_gain_per_s2, cacc_speed_gain_per_s, cacc_accel_feedforward : CACC gains on the gap error
        (m), the speed difference to the predecessor (m/s) and the predecessor's acceleration
    cacc_max_gap_error_m : a larger gap error closes no faster than this one (gap closing stays gentle)
    obstacle_gap_m : stop this far behind an obstacle or a stopped predecessor: the twin's 5 m ``safe_gap_m``
        plus 0.5 m for the error of a gap measured from odometry or the grid (a stop aimed at exactly 5 m
        ended 4.79 m behind in the default scenario's closed loop)
    max_accel_mps2 : IIDM maximum acceleration a
    comfort_decel_mps2 : IIDM comfortable deceleration b; the kinematic floor starts above it
    max_decel_mps2 : the vehicle's braking limit; no command asks for more
    delta : IIDM acceleration exponent
    advisory_max_age_s : an advisory whose stamp is older than this is stale and ignored (ACC only)
    warning_max_age_s : a warning older than this is stale and ignored
    predecessor_max_age_s : predecessor state older than this is ignored (free road)
    command_period_s : the command's period; target speed = v + a·period
    """

    mode: FollowerMode = FollowerMode.ADVISORY
    cruise_speed_mps: float = 30.0
    time_gap_s: float = 1.2
    platoon_time_gap_s: float = 0.48
    standstill_gap_m: float = 3.0
    cacc_gap_gain_per_s2: float = 0.15
    cacc_speed_gain_per_s: float = 0.6
    cacc_accel_feedforward: float = 0.5
    cacc_max_gap_error_m: float = 4.0
    obstacle_gap_m: float = 5.5
    max_accel_mps2: float = 1.5
    comfort_decel_mps2: float = 3.0
    max_decel_mps2: float = 8.0
    delta: float = 4.0
    advisory_max_age_s: float = 1.0
    warning_max_age_s: float = 1.0
    predecessor_max_age_s: float = 0.5
    command_period_s: float = 0.1

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, 'mode', FollowerMode(self.mode))
        except ValueError:
            raise ConfigError(f'FollowerConfig.mode must be one of {[m.value for m in FollowerMode]}, '
                              f'got {self.mode!r}') from None
        for name in ('cruise_speed_mps', 'time_gap_s', 'max_accel_mps2', 'comfort_decel_mps2', 'max_decel_mps2',
                     'delta', 'advisory_max_age_s', 'warning_max_age_s', 'predecessor_max_age_s',
                     'command_period_s', 'platoon_time_gap_s', 'cacc_gap_gain_per_s2', 'cacc_speed_gain_per_s',
                     'cacc_max_gap_error_m'):
            _check(name, getattr(self, name), positive=True)
        for name in ('standstill_gap_m', 'obstacle_gap_m', 'cacc_accel_feedforward'):
            _check(name, getattr(self, name), positive=False)
        if self.comfort_decel_mps2 > self.max_decel_mps2:
            raise ConfigError(f'FollowerConfig.comfort_decel_mps2 {self.comfort_decel_mps2} must not exceed '
                              f'max_decel_mps2 {self.max_decel_mps2}')


def _check(name: str, value: object, positive: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ConfigError(f'FollowerConfig.{name} must be a {"positive" if positive else ">= 0"} finite number, '
                          f'got {value!r}')


@dataclass(frozen=True)
class OwnState:
    """The vehicle now: stamp (ns), speed (m/s), base_link x, y in ``map`` (m), yaw (rad), optional set speed."""

    stamp_ns: int
    speed_mps: float
    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    set_speed_mps: float | None = None


@dataclass(frozen=True)
class Predecessor:
    """The platoon predecessor at ``stamp_ns``: bumper-to-bumper gap (m), speed (m/s), acceleration (m/s^2)."""

    stamp_ns: int
    gap_m: float
    speed_mps: float
    accel_mps2: float = 0.0


@dataclass(frozen=True)
class Obstacle:
    """Something in the vehicle's path at ``stamp_ns``: gap from its front to the obstacle (m), speed along
    the vehicle's heading (m/s), where it comes from (``twin`` warning or ``ego`` perception) and its
    acceleration (m/s^2; braking, it is taken to its stop)."""

    stamp_ns: int
    distance_m: float
    speed_mps: float
    source: str = 'twin'
    accel_mps2: float = 0.0


@dataclass(frozen=True)
class AdvisoryProfile:
    """An advised speed profile: pose k is to be reached at ``stamp_ns + t_offset_ns[k]``.

    t_offset_ns : (P,) int64, increasing; x, y : (P,) base_link positions, m; speed : (P,) m/s at each pose
    """

    stamp_ns: int
    t_offset_ns: NDArray[np.int64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    speed: NDArray[np.float64]

    def age_s(self, now_ns: int) -> float:
        """Seconds since the advisory's stamp."""
        return (int(now_ns) - int(self.stamp_ns)) * 1e-9

    def speed_at(self, t_ns: int) -> float:
        """Advised speed at time ``t_ns`` (linear between poses, held before the first and after the last)."""
        rel_s = (int(t_ns) - int(self.stamp_ns)) * 1e-9
        return float(np.interp(rel_s, self.t_offset_ns * 1e-9, self.speed))

    def speed_along(self, x: float, y: float, ahead_m: float = 0.0) -> float:
        """Advised speed ``ahead_m`` beyond the point of the path nearest to (x, y), metres in its frame.

        The path is taken as straight from its first to its last pose (the twin's run along the heading);
        the speed squared is linear in distance between poses (exact under constant deceleration), held
        before the first pose and after the last. A path that stays in place: its last speed.
        """
        dx, dy = float(self.x[-1] - self.x[0]), float(self.y[-1] - self.y[0])
        length = math.hypot(dx, dy)
        if length < 1e-6:
            return float(self.speed[-1])
        ux, uy = dx / length, dy / length
        along = (self.x - self.x[0]) * ux + (self.y - self.y[0]) * uy
        s = (x - float(self.x[0])) * ux + (y - float(self.y[0])) * uy + ahead_m
        return math.sqrt(max(float(np.interp(s, np.maximum.accumulate(along), self.speed ** 2)), 0.0))


@dataclass(frozen=True)
class FollowerCommand:
    """One longitudinal command.

    target_speed_mps : speed to have one command period from now, m/s (>= 0)
    accel_mps2 : the acceleration that implies, m/s^2 (within [-max_decel, max_accel])
    limit : the input that set it
    stale : inputs given but ignored as too old (``advisory``, ``warning``, ``predecessor``)
    """

    stamp_ns: int
    target_speed_mps: float
    accel_mps2: float
    limit: Limit
    stale: tuple[str, ...] = ()


def advisory_profile(stamp_ns: int, t_offset_ns: NDArray[np.int64], x: NDArray[np.floating],
                     y: NDArray[np.floating]) -> AdvisoryProfile:
    """Speed profile of an advised path (poses with stamps).

    Segment k's mean speed m_k is its length over its duration. When the speed is linear in time between
    poses and the last segment holds its speed (the twin's advisories), the pose speeds solve
    v_k + v_k+1 = 2 m_k exactly, from the end backwards. A path for which that gives a negative speed or an
    acceleration above 15 m/s^2 is not such a path: each pose then takes the segment means interpolated at
    the segments' mid-times. One pose: speed 0 (stand there). ConfigError when stamps do not increase or
    arrays differ in length or hold non-finite values.
    """
    t = np.asarray(t_offset_ns, dtype=np.int64)
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] == 0 or xs.shape != t.shape or ys.shape != t.shape:
        raise ConfigError(f'advisory needs equal-length 1-D t, x, y, got shapes {t.shape}, {xs.shape}, {ys.shape}')
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ConfigError('advisory holds non-finite positions')
    if t.shape[0] == 1:
        return AdvisoryProfile(int(stamp_ns), t, xs, ys, np.zeros(1))
    dt = np.diff(t) * 1e-9
    if (dt <= 0).any():
        raise ConfigError(f'advisory stamps must increase, got offsets {t.tolist()} ns')
    seg = np.hypot(np.diff(xs), np.diff(ys)) / dt
    speed = np.empty(t.shape[0])
    speed[-1] = seg[-1]
    for k in range(t.shape[0] - 2, -1, -1):
        speed[k] = 2.0 * seg[k] - speed[k + 1]
    if (speed < -1e-6).any() or (np.abs(np.diff(speed)) > _MAX_PROFILE_ACCEL_MPS2 * dt).any():
        speed = np.interp(t * 1e-9, (t[:-1] + t[1:]) * 0.5e-9, seg)
    return AdvisoryProfile(int(stamp_ns), t, xs, ys, np.maximum(speed, 0.0))


def warning_obstacle(stamp_ns: int, distance_m: float, other_speed_mps: float,
                     other_accel_mps2: float = 0.0) -> Obstacle:
    """The obstacle input of a twin warning (its ``distance_m``, ``other_speed_mps``, ``other_accel_mps2``).

    ConfigError on a non-finite value (a warning without them cannot be braked for).
    """
    if not (math.isfinite(distance_m) and math.isfinite(other_speed_mps) and math.isfinite(other_accel_mps2)):
        raise ConfigError(f'warning needs a finite distance_m, other_speed_mps and other_accel_mps2, got '
                          f'{distance_m!r}, {other_speed_mps!r}, {other_accel_mps2!r}')
    return Obstacle(int(stamp_ns), float(distance_m), max(float(other_speed_mps), 0.0), 'twin',
                    float(other_accel_mps2))


def bumper_gap(own_x: float, own_y: float, own_yaw: float, own_front_m: float,
               other_x: float, other_y: float, other_rear_m: float) -> float:
    """Gap along the own heading from the own front bumper to the other's rear bumper, metres.

    own_front_m : base_link to front bumper; other_rear_m : the other's base_link to its rear bumper.
    """
    along = (other_x - own_x) * math.cos(own_yaw) + (other_y - own_y) * math.sin(own_yaw)
    return along - own_front_m - other_rear_m


def stopping_decel(v_mps: float, gap_m: float, other_speed_mps: float, other_accel_mps2: float,
                   stop_gap_m: float) -> float:
    """Constant deceleration (>= 0, m/s^2) that ends ``stop_gap_m`` behind the other at its speed.

    A braking other (accel < 0) is taken to its stop. ``inf`` when there is no room left and still closing.
    """
    braking = other_accel_mps2 < -1e-3
    room = gap_m - stop_gap_m
    if braking:
        room += other_speed_mps * other_speed_mps / (2.0 * -other_accel_mps2)
        rel = v_mps
    else:
        rel = v_mps - other_speed_mps
    if rel <= 1e-3:                                               # not closing (mm/s)
        return 0.0
    return rel * rel / (2.0 * room) if room > 0 else math.inf


def _iidm(v: float, v0: float, gap: float, v_lead: float, s0: float, cfg: FollowerConfig) -> float:
    """Improved IDM acceleration; gap = inf is a free road."""
    a, b, d = cfg.max_accel_mps2, cfg.comfort_decel_mps2, cfg.delta
    if v <= v0:
        a_free = a * (1.0 - (v / v0) ** d)
    else:
        a_free = -b * (1.0 - (v0 / v) ** (a * d / b))
    if not math.isfinite(gap):
        return a_free
    s_star = s0 + max(0.0, v * cfg.time_gap_s + v * (v - v_lead) / (2.0 * math.sqrt(a * b)))
    z = s_star / max(gap, 1e-3)
    if v <= v0:
        if z >= 1.0:
            return a * (1.0 - z * z)
        return 0.0 if a_free <= 0 else a_free * (1.0 - z ** (2.0 * a / a_free))
    return a_free + a * (1.0 - z * z) if z >= 1.0 else a_free


class AdvisoryFollower:
    """Per-vehicle longitudinal follower; ``command`` once per period (deterministic, stateless between calls)."""

    def __init__(self, cfg: FollowerConfig | None = None) -> None:
        self.cfg = cfg or FollowerConfig()

    def command(self, now_ns: int, own: OwnState, predecessor: Predecessor | None = None,
                warnings_obstacle: Obstacle | None = None, advisory: AdvisoryProfile | None = None,
                ego_obstacle: Obstacle | None = None) -> FollowerCommand:
        """The command at ``now_ns``.

        Inputs at other stamps are moved to ``now_ns`` at constant speeds. The predecessor and the own
        perception (``ego_obstacle``) count in every mode; cooperative adds ``warnings_obstacle`` (fresh within
        ``warning_max_age_s``); cooperative+advisory also the advisory (fresh within ``advisory_max_age_s``).
        The lowest acceleration wins; its input is ``limit``.
        """
        cfg = self.cfg
        v = max(float(own.speed_mps), 0.0)
        v0 = cfg.cruise_speed_mps if own.set_speed_mps is None else max(float(own.set_speed_mps), 0.0)
        stale: list[str] = []
        if v0 > 0.0:
            cruise = _iidm(v, v0, math.inf, 0.0, 0.0, cfg)
        else:                                                     # set speed 0: stop at the comfortable rate
            cruise = -min(cfg.comfort_decel_mps2, v / cfg.command_period_s)
        candidates: list[tuple[float, Limit]] = [(cruise, Limit.CRUISE)]

        if predecessor is not None:
            age = (now_ns - predecessor.stamp_ns) * 1e-9
            if age > cfg.predecessor_max_age_s:
                stale.append('predecessor')
            else:
                gap, vp = self._at_now(predecessor.gap_m, predecessor.speed_mps, v, age)
                candidates.append((self._platoon(v, gap, vp, predecessor.accel_mps2), Limit.PREDECESSOR))

        # The vehicle's own perception counts in every mode: the twin adds to what the vehicle sees, it does
        # not replace it (a twin gone quiet while the vehicle creeps up to a stopped car it sees 5.7 m ahead
        # is no reason to drive on; issue 16, default scenario).
        obstacles: list[Obstacle] = [] if ego_obstacle is None else [ego_obstacle]
        if cfg.mode is not FollowerMode.EGO and warnings_obstacle is not None:
            if (now_ns - warnings_obstacle.stamp_ns) * 1e-9 > cfg.warning_max_age_s:
                stale.append('warning')
            else:
                obstacles.append(warnings_obstacle)
        for ob in obstacles:
            gap, vo = self._at_now(ob.distance_m, ob.speed_mps, v, (now_ns - ob.stamp_ns) * 1e-9)
            candidates.append((self._follow(v, v0, gap, vo, ob.accel_mps2, cfg.obstacle_gap_m), Limit.OBSTACLE))

        if cfg.mode is FollowerMode.ADVISORY and advisory is not None:
            if advisory.age_s(now_ns) > cfg.advisory_max_age_s:
                stale.append('advisory')
            else:
                candidates.append((self._advised_accel(v, own, advisory), Limit.ADVISORY))

        accel, limit = min(candidates, key=lambda c: c[0])      # first of equals: cruise before the rest
        accel = min(max(accel, -cfg.max_decel_mps2), cfg.max_accel_mps2)
        target = max(v + accel * cfg.command_period_s, 0.0)
        if target == 0.0 and v < 1e-3:
            accel = 0.0                                           # standing: hold, do not ask to reverse
        return FollowerCommand(int(now_ns), target, accel, limit, tuple(stale))

    def _advised_accel(self, v: float, own: OwnState, advisory: AdvisoryProfile) -> float:
        """Acceleration to the advised speed where the vehicle will be one period on.

        By position, so an advisory a twin cycle late still brakes where the stop needs it rather than
        catching up with the profile's clock; the catching up (a speed above the profile's) brakes at most
        the comfortable deceleration or the profile's own, whichever is larger: the warnings' kinematic
        floor, not the advisory, answers for a stop that needs more.
        """
        cfg = self.cfg
        ahead = max(v * cfg.command_period_s, 1e-3)
        v_here = advisory.speed_along(own.x, own.y)
        v_next = advisory.speed_along(own.x, own.y, ahead)
        plan_decel = max((v_here * v_here - v_next * v_next) / (2.0 * ahead), 0.0)
        return max((v_next - v) / cfg.command_period_s, -max(cfg.comfort_decel_mps2, plan_decel))

    def _platoon(self, v: float, gap: float, v_pred: float, a_pred: float) -> float:
        """CACC toward the predecessor known over V2V (constant time gap with its acceleration fed forward,
        as Ploeg et al. 2011 / Milanes & Shladover 2014), with the kinematic floor of :meth:`_follow` for a
        hard-braking predecessor taken to its stop; at standstill the set gap is max(standstill_gap_m,
        obstacle_gap_m)."""
        cfg = self.cfg
        # At crawling speeds the set gap is no shorter than obstacle_gap_m: a platoon stopped behind a hazard
        # stands as far apart as the twin's safe gap (issue 16's min_gap_m >= 5), not standstill_gap_m.
        error = gap - max(cfg.standstill_gap_m + cfg.platoon_time_gap_s * v, cfg.obstacle_gap_m)
        a = (cfg.cacc_gap_gain_per_s2 * min(error, cfg.cacc_max_gap_error_m)
             + cfg.cacc_speed_gain_per_s * (v_pred - v) + cfg.cacc_accel_feedforward * a_pred)
        if error > 0.0:
            # The linear law is a close-range one: from beyond the set gap, closing on a slower predecessor
            # brakes no harder than the constant deceleration that reaches the set gap at its speed.
            closing = max(v - v_pred, 0.0)
            a = max(a, cfg.cacc_accel_feedforward * min(a_pred, 0.0) - closing * closing / (2.0 * error))
        need = stopping_decel(v, gap, v_pred, a_pred, max(cfg.standstill_gap_m, cfg.obstacle_gap_m))
        # Behind a stopped predecessor the floor holds at any need: the linear law alone rolls a slow
        # follower into the standstill gap (v2 at 0.6 m/s, 5.2 m behind a stopped v1, braked 0.3 m/s^2).
        if need >= 0.5 * cfg.comfort_decel_mps2 or (v_pred < STOPPED_MPS and a_pred <= 0.0
                                                     and need > _STOPPED_FLOOR_MPS2):
            a = min(a, -need)
        return a

    def _follow(self, v: float, v0: float, gap: float, v_other: float, a_other: float, stop_gap: float) -> float:
        """IIDM toward a leader, with the kinematic need (:func:`stopping_decel`) as a floor once it reaches
        half the comfortable deceleration: braking at the need keeps the need constant, so an approach that
        starts with room never brakes harder than ``comfort_decel_mps2``; without room, at the need, up to the
        limit. Past comfort the IIDM's time gap term asks far more than the stop needs (a car merging 40 m
        ahead at 15 m/s slower: the need is 3.0 m/s^2, the IIDM 12): the braking is held within
        [need, 2·need − comfort], enough to bring the need back to comfort (braking at the need alone lets
        the actuation delay creep it up), without jumping to the braking limit as the need crosses comfort.
        Inside ``stop_gap`` already (a car that cut in), the need is the deceleration that avoids contact plus
        ``comfort_decel_mps2``: at nearly the own speed it is dropped back from at about the comfortable rate,
        not braked for at the limit (which keeps hardly more of the gap and brakes the vehicles behind);
        much slower and close, it still takes the limit."""
        cfg = self.cfg
        a = _iidm(v, max(v0, 1e-3), gap, v_other, stop_gap, cfg)
        if gap > stop_gap:
            need = stopping_decel(v, gap, v_other, a_other, stop_gap)
        else:
            contact = stopping_decel(v, gap, v_other, a_other, 0.0)
            need = contact + cfg.comfort_decel_mps2 if contact > 0.0 else 0.0
        if need >= 0.5 * cfg.comfort_decel_mps2:
            a = min(a, -need)
        return max(a, -max(cfg.comfort_decel_mps2, 2.0 * need - cfg.comfort_decel_mps2))

    @staticmethod
    def _at_now(gap: float, v_other: float, v_own: float, age_s: float) -> tuple[float, float]:
        """Gap and speed of an actor seen ``age_s`` ago, both moving at constant speed since."""
        age = max(age_s, 0.0)
        return gap + (v_other - v_own) * age, v_other
