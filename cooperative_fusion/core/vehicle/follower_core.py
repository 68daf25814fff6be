"""The advisory follower node's whole work without ROS: latest inputs in, one command per tick out.

:class:`FollowerCore` keeps the newest own odometry, predecessor odometry,
twin warning, twin advisory and own perceived obstacle (every mode), and ``step``
turns them into a :class:`~.follower.FollowerCommand` with
:class:`~.follower.AdvisoryFollower`. Odometry is stamped in the vehicle's own
clock, so it is aged by its arrival on the node clock; warnings and advisories
are stamped by the twin in common time and aged by their stamps.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from ..drops import Cause, Drop, DroppedInput
from ..errors import ConfigError, MessageFormatError
from ..grid import GridSpec
from ..platoon_config import PlatoonVehicle
from .ego_obstacle import nearest_in_corridor
from .follower import (STOPPED_MPS, AdvisoryFollower, AdvisoryProfile, FollowerCommand, FollowerConfig, FollowerMode,
                       Obstacle, OwnState, Predecessor, advisory_profile, bumper_gap, stopping_decel, warning_obstacle)

#: The predecessor's acceleration is the least-squares slope of its odometry speeds over this window, s.
ACCEL_WINDOW_S = 0.5

#: Ego mode: a perceived obstacle's speed is the least-squares slope of its position along the road (own
#: distance driven + gap) over this window, s; with fewer than 3 detections over 0.2 s it is taken as standing.
EGO_SPEED_WINDOW_S = 0.5

#: Ego mode: a detection farther than this (m) from where the tracked obstacle should be is another one.
EGO_TRACK_GATE_M = 3.0

#: In the cooperative modes the own obstacle counts once it has been tracked this long (s): its speed is then
#: the slope of a whole EGO_SPEED_WINDOW_S. Ego mode has nothing else and takes a new one as standing at once.
EGO_CONFIRM_S = EGO_SPEED_WINDOW_S

#: The own obstacle and a twin warning's obstacle whose gaps now differ by less than this (m) are one obstacle
#: (the twin's track and the own evidence differ by up to ~2 m, as PREDECESSOR_MARGIN_M says).
SAME_OBSTACLE_M = 3.0

#: A warning's obstacle farther than the predecessor's gap less this (m) is the predecessor or beyond it
#: (the twin's track and the odometry gap differ by up to ~2 m, as the evidence does; see ``on_warnings``).
PREDECESSOR_MARGIN_M = 3.0


@dataclass(frozen=True)
class EgoObstacleConfig:
    """Ego mode's obstacle from the own evidence grid (see ``ego_obstacle.nearest_in_corridor``); it expires
    ``max_age_s`` after its grid's stamp (the evidence stopped: no obstacle known). The corridor ends
    ``predecessor_margin_m`` short of the predecessor's rear bumper and bends with yaw rate / speed above
    ``min_curve_speed_mps`` (m/s), up to ``max_curvature_per_m`` (1/m)."""

    half_width_m: float = 1.5
    max_range_m: float = 120.0
    occupied_percent: int = 65
    min_cells: int = 2
    predecessor_margin_m: float = 3.0
    max_age_s: float = 0.5
    min_curve_speed_mps: float = 2.0
    max_curvature_per_m: float = 0.05

    def __post_init__(self) -> None:
        if not (self.max_age_s > 0 and math.isfinite(self.max_age_s)):
            raise ConfigError(f'EgoObstacleConfig.max_age_s must be a positive number of seconds, '
                              f'got {self.max_age_s!r}')
        if not (self.half_width_m > 0 and self.max_range_m > 0 and self.predecessor_margin_m >= 0):
            raise ConfigError(f'EgoObstacleConfig needs half_width_m, max_range_m > 0 and predecessor_margin_m '
                              f'>= 0, got {self.half_width_m}, {self.max_range_m}, {self.predecessor_margin_m}')
        if not (self.min_curve_speed_mps > 0 and self.max_curvature_per_m >= 0
                and math.isfinite(self.min_curve_speed_mps) and math.isfinite(self.max_curvature_per_m)):
            raise ConfigError(f'EgoObstacleConfig needs min_curve_speed_mps > 0 and max_curvature_per_m >= 0, '
                              f'got {self.min_curve_speed_mps}, {self.max_curvature_per_m}')
        if not (0 < self.occupied_percent <= 100 and self.min_cells >= 1):
            raise ConfigError(f'EgoObstacleConfig.occupied_percent must be in (0, 100] and min_cells >= 1, '
                              f'got {self.occupied_percent}, {self.min_cells}')


@dataclass(frozen=True)
class FollowerSetup:
    """One vehicle's follower: its id, its predecessor (None: the leader) and the bodies, metres.

    front_m : own base_link to front bumper; predecessor_rear_m : the predecessor's base_link to its rear
    bumper (its rear overhang); predecessor_length_m : its length (skipped in the own obstacle's corridor)
    odom_max_age_s : own odometry older than this (by arrival): no command
    """

    vehicle_id: str
    predecessor_id: str | None
    front_m: float
    predecessor_rear_m: float = 0.0
    predecessor_length_m: float = 0.0
    odom_max_age_s: float = 0.5
    follower: FollowerConfig = field(default_factory=FollowerConfig)
    ego: EgoObstacleConfig = field(default_factory=EgoObstacleConfig)

    def __post_init__(self) -> None:
        for name in ('front_m', 'predecessor_rear_m', 'predecessor_length_m'):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f'FollowerSetup.{name} must be a finite number >= 0, got {v!r}')
        if not (math.isfinite(self.odom_max_age_s) and self.odom_max_age_s > 0):
            raise ConfigError(f'FollowerSetup.odom_max_age_s must be positive, got {self.odom_max_age_s!r}')


@dataclass(frozen=True)
class _Odom:
    received_ns: int
    x: float
    y: float
    yaw: float
    speed: float
    yaw_rate: float = 0.0


class FollowerCore:
    """Latest inputs of one vehicle's follower and its command; see the module docstring."""

    def __init__(self, setup: FollowerSetup) -> None:
        self.setup = setup
        self.follower = AdvisoryFollower(setup.follower)
        self.own: _Odom | None = None
        self.pred: _Odom | None = None
        self.pred_accel_mps2 = 0.0
        self._pred_speeds: deque[tuple[int, float]] = deque()     # (arrival ns, speed m/s) within ACCEL_WINDOW_S
        self.warning: Obstacle | None = None
        self.warning_stamp_ns: int | None = None         # newest warnings array (with or without this vehicle)
        self.advisory: AdvisoryProfile | None = None
        self.ego_obstacle: Obstacle | None = None
        self._ego_track: deque[tuple[int, float]] = deque()  # (grid stamp ns, own distance driven + gap m)
        self._ego_since_ns: int | None = None                # grid stamp of the current track's first detection
        self.ego_confirmed = False                           # the own obstacle tracked EGO_CONFIRM_S: speed known
        self.ego_used = False                                # the own obstacle went into the last command
        self._driven: tuple[int, float] | None = None        # (grid stamp ns, own distance driven m since then)
        self.last: FollowerCommand | None = None
        self.commands = 0
        self._stale_seen: dict[str, int] = {}            # source -> stamp of the input last reported stale
        self.advisory_stamp_ns: int | None = None         # newest accepted advisory (also once expired)
        self.warned_for_predecessor = False              # the newest warnings for this vehicle: its predecessor only
        self.warning_held = False                        # a standing obstacle kept through the twin's silence
        self.twin_named: Obstacle | None = None          # the newest warning's obstacle, also once cleared
        self.expired = {'advisory': 0, 'warning': 0}

    @property
    def mode(self) -> FollowerMode:
        return self.setup.follower.mode

    # ------------------------------------------------------------ inputs --

    def on_odometry(self, received_ns: int, x: float, y: float, yaw: float, speed_mps: float,
                    yaw_rate_rps: float = 0.0) -> None:
        """Own base_link pose in ``map``, forward speed and yaw rate (rad/s, left +; bends the own
        obstacle's corridor); ConfigError on non-finite values."""
        self.own = _odom(received_ns, x, y, yaw, speed_mps, 'own odometry', yaw_rate_rps)

    def on_predecessor_odometry(self, received_ns: int, x: float, y: float, yaw: float, speed_mps: float) -> None:
        """The predecessor's base_link pose and speed; its acceleration is estimated from successive samples."""
        new = _odom(received_ns, x, y, yaw, speed_mps, 'predecessor odometry')
        old = self.pred
        if old is not None and new.received_ns <= old.received_ns:
            self.pred = new
            return
        # Least-squares slope of the speeds over the last ACCEL_WINDOW_S: odometry speed noise differentiated
        # at 50 Hz is metres per second squared; the slope over 0.5 s has ~0.07 m/s^2 at 0.05 m/s noise.
        hist = self._pred_speeds
        hist.append((new.received_ns, new.speed))
        while hist and (new.received_ns - hist[0][0]) * 1e-9 > ACCEL_WINDOW_S:
            hist.popleft()
        if len(hist) >= 3 and hist[-1][0] > hist[0][0]:
            self.pred_accel_mps2 = _slope(hist)
        self.pred = new

    def on_warnings(self, now_ns: int, stamp_ns: int, conflicts: Sequence[tuple[float, float, float]]) -> None:
        """One ``/twin/warnings`` array stamped ``stamp_ns``: (distance_m, other_speed_mps, other_accel_mps2) of
        each status for this vehicle.

        An array without this vehicle clears its warning (the twin publishes every cycle), except a warning
        about a standing obstacle (slower than ``STOPPED_MPS``, not braking): that one is held until it is
        ``warning_max_age_s`` old, as if the array had been lost (``warning_held``). Warnings about the
        predecessor or beyond it are taken as ``_behind_predecessor`` says; of the rest, the one needing the
        strongest deceleration counts. While the only warnings are about the predecessor, the twin's advisory
        (a stop ``safe_gap_m`` behind the predecessor) is not followed either: the CACC follows it.
        DroppedInput (``too_old``) for an array older than ``warning_max_age_s`` on arrival.
        """
        self._fresh('warnings', now_ns, stamp_ns, self.setup.follower.warning_max_age_s)
        self.warning_stamp_ns = int(stamp_ns)
        obstacles = self._behind_predecessor(now_ns, [warning_obstacle(stamp_ns, d, v, a) for d, v, a in conflicts])
        self.warned_for_predecessor = bool(conflicts) and not obstacles
        if not obstacles:
            # A stopped car does not leave when the twin stops warning about it (issue 16, lossy default
            # scenario: as v1 crept up to it at 1 m/s, its track took up ~0.8 m/s, the twin went quiet for
            # 0.8 s, and v1 accelerated at 1.5 m/s^2 to 4.77 m behind it).
            held = self.warning
            self.warning_held = (held is not None and held.speed_mps < STOPPED_MPS
                                 and held.accel_mps2 >= 0.0)
            if not self.warning_held:
                self.warning = None
            return
        self.warning_held = False
        v = self.own.speed if self.own is not None else 0.0
        self.warning = self.twin_named = max(obstacles, key=lambda o: (stopping_decel(v, o.distance_m, o.speed_mps, o.accel_mps2,
                                                                    self.setup.follower.obstacle_gap_m),
                                                     -o.distance_m))

    def on_advisory(self, now_ns: int, stamp_ns: int, t_offset_ns: NDArray[np.int64], x: NDArray[np.floating],
                    y: NDArray[np.floating]) -> None:
        """The twin's advised path (poses to reach at stamp + offset); an empty one clears the advisory.

        DroppedInput (``too_old``) for an advisory older than ``advisory_max_age_s`` on arrival.
        """
        self._fresh('advisory', now_ns, stamp_ns, self.setup.follower.advisory_max_age_s)
        if len(t_offset_ns) == 0:
            self.advisory = None
            return
        self.advisory = advisory_profile(stamp_ns, t_offset_ns, x, y)
        self.advisory_stamp_ns = int(stamp_ns)

    def _behind_predecessor(self, now_ns: int, obstacles: list[Obstacle]) -> list[Obstacle]:
        """Warning obstacles as this follower has to stop for them, given a fresh predecessor.

        The twin warns a follower about its braking predecessor, and about the obstacle its predecessor
        stops for. The predecessor itself (within ``PREDECESSOR_MARGIN_M`` of its body) is the CACC's:
        its state comes over V2V, and taken again as an obstacle to stop ``obstacle_gap_m`` behind (with the
        twin's noisy acceleration of its track) it braked each follower harder than its predecessor (issue
        16: 3.7, 6.2, 7.9, 8.0 m/s^2 down the platoon). An obstacle beyond the predecessor is where the
        predecessor stops ``obstacle_gap_m`` short of; the follower stops ``obstacle_gap_m`` behind that,
        so it is moved nearer by the predecessor's length and ``obstacle_gap_m``. Between the follower and
        its predecessor (a cut-in): kept as it is. Without a fresh predecessor: all kept.
        """
        own, pred, f = self.own, self.pred, self.setup.follower
        if (own is None or pred is None or self.setup.predecessor_id is None
                or (int(now_ns) - pred.received_ns) * 1e-9 > f.predecessor_max_age_s):
            return obstacles
        gap = self._pred_gap(own, pred)
        length = self.setup.predecessor_length_m
        out: list[Obstacle] = []
        for o in obstacles:
            if o.distance_m < gap - PREDECESSOR_MARGIN_M:
                out.append(o)
            elif o.distance_m > gap + length + PREDECESSOR_MARGIN_M:
                out.append(Obstacle(o.stamp_ns, o.distance_m - length - f.obstacle_gap_m, o.speed_mps, o.source,
                                    o.accel_mps2))
        return out

    @staticmethod
    def _fresh(what: str, now_ns: int, stamp_ns: int, limit_s: float) -> None:
        age = (int(now_ns) - int(stamp_ns)) * 1e-9
        if age > limit_s:
            raise DroppedInput(Cause.TOO_OLD, f'{what} is {age:.2f} s old on arrival, over its limit of {limit_s} s')

    def on_evidence(self, stamp_ns: int, spec: GridSpec, percent: NDArray[np.integer]) -> None:
        """Own evidence grid (every mode): the nearest obstacle in the lane ahead, short of the predecessor.

        The grid has no velocities: an obstacle's speed comes from its track over successive grids
        (``_ego_speed``; standing until seen for 0.2 s). Beyond the predecessor stands what the predecessor
        stops for (its braking reaches the law over V2V), so with a predecessor the corridor ends
        ``predecessor_margin_m`` short of its rear bumper (its evidence blurs up to ~2 m toward the
        sensors). The corridor bends with the curvature the vehicle drives (yaw rate / speed, above
        ``min_curve_speed_mps``). Ego mode acts on it at once; the cooperative modes once it has been tracked
        ``EGO_CONFIRM_S`` (``ego_confirmed``: its speed known).
        """
        own = self.own
        if own is None:
            return
        e = self.setup.ego
        skip = None
        if self.pred is not None and self.setup.predecessor_id is not None:
            skip = (self._pred_gap(own, self.pred) - e.predecessor_margin_m, math.inf)
        dt = (int(stamp_ns) - own.received_ns) * 1e-9                   # own pose moved to the grid's stamp
        x, y = own.x + own.speed * dt * math.cos(own.yaw), own.y + own.speed * dt * math.sin(own.yaw)
        d = nearest_in_corridor(percent, spec, x, y, own.yaw + own.yaw_rate * dt, self.setup.front_m,
                                e.half_width_m, e.max_range_m, e.occupied_percent, e.min_cells, skip,
                                self.curvature_per_m())
        speed = None if d is None else self._ego_speed(int(stamp_ns), d, own.speed)
        self.ego_obstacle = None if d is None else Obstacle(int(stamp_ns), d, speed, 'ego')
        self.ego_confirmed = (d is not None and self._ego_since_ns is not None
                              and (int(stamp_ns) - self._ego_since_ns) * 1e-9 >= EGO_CONFIRM_S - 1e-6)

    def _ego_speed(self, stamp_ns: int, gap_m: float, own_speed_mps: float) -> float:
        """Speed (m/s, >= 0) of the obstacle perceived ``gap_m`` ahead at ``stamp_ns``: the slope of its
        position along the road over ``EGO_SPEED_WINDOW_S`` (the grid has no velocity; a car ahead at the
        own speed taken as standing brakes the vehicle to a stop behind a moving car). A new obstacle (off
        the track by more than ``EGO_TRACK_GATE_M``) is standing until it has been seen long enough."""
        driven = 0.0
        if self._driven is not None:
            driven = self._driven[1] + own_speed_mps * max(stamp_ns - self._driven[0], 0) * 1e-9
        self._driven = (stamp_ns, driven)
        pos = driven + gap_m
        track = self._ego_track
        while track and (stamp_ns - track[0][0]) * 1e-9 > EGO_SPEED_WINDOW_S:
            track.popleft()
        speed = _slope(track) if len(track) >= 3 else 0.0
        if track and abs(pos - (track[-1][1] + speed * (stamp_ns - track[-1][0]) * 1e-9)) > EGO_TRACK_GATE_M:
            track.clear()
        if not track:
            self._ego_since_ns = stamp_ns
        track.append((stamp_ns, pos))
        if len(track) < 3 or (track[-1][0] - track[0][0]) * 1e-9 < 0.2:
            return 0.0
        return max(_slope(track), 0.0)

    def curvature_per_m(self) -> float:
        """Curvature the vehicle drives, 1/m (left +): yaw rate / speed, 0 below ``min_curve_speed_mps``,
        clipped to +-``max_curvature_per_m``."""
        own, e = self.own, self.setup.ego
        if own is None or own.speed < e.min_curve_speed_mps:
            return 0.0
        return min(max(own.yaw_rate / own.speed, -e.max_curvature_per_m), e.max_curvature_per_m)

    # -------------------------------------------------------------- step --

    def step(self, now_ns: int) -> tuple[FollowerCommand | None, list[Drop]]:
        """The command now (None without own odometry: none yet, or older than ``odom_max_age_s``) and the
        odometry (own, predecessor) that went stale since the last step, each sample reported once (``too_old``).
        Advisory and warning older than their limits expire (cleared, counted in ``expired``)."""
        own = self.own
        drops: list[Drop] = []
        if own is None:
            return None, drops
        if (now_ns - own.received_ns) * 1e-9 > self.setup.odom_max_age_s:
            self._stale(drops, 'odom', own.received_ns, now_ns, self.setup.odom_max_age_s)
            return None, drops
        age = max(now_ns - own.received_ns, 0) * 1e-9
        state = OwnState(int(now_ns), own.speed, own.x + own.speed * age * math.cos(own.yaw),
                         own.y + own.speed * age * math.sin(own.yaw), own.yaw)
        pred = None
        if self.pred is not None and self.setup.predecessor_id is not None:
            pred = Predecessor(self.pred.received_ns, self._pred_gap(own, self.pred), self.pred.speed,
                               self.pred_accel_mps2)
        # An advisory or warning the twin stopped refreshing has expired (the conflict is over, or the twin is
        # gone: diagnostics show the warnings' age): cleared, not a drop.
        f = self.setup.follower
        if self.advisory is not None and self.advisory.age_s(now_ns) > f.advisory_max_age_s:
            self.advisory, self.expired['advisory'] = None, self.expired['advisory'] + 1
        if self.warning is not None and (now_ns - self.warning.stamp_ns) * 1e-9 > f.warning_max_age_s:
            self.warning, self.expired['warning'] = None, self.expired['warning'] + 1
        if self.ego_obstacle is not None and (now_ns - self.ego_obstacle.stamp_ns) * 1e-9 > self.setup.ego.max_age_s:
            self.ego_obstacle, self.ego_confirmed = None, False
        advisory = None if self.warned_for_predecessor and pred is not None else self.advisory
        ego = self._own_obstacle(now_ns, own.speed)
        self.ego_used = ego is not None
        cmd = self.follower.command(now_ns, state, pred, self.warning, advisory, ego)
        self.last = cmd
        self.commands += 1
        if 'predecessor' in cmd.stale and self.pred is not None:
            self._stale(drops, 'predecessor', self.pred.received_ns, now_ns, f.predecessor_max_age_s)
        return cmd, drops

    def _own_obstacle(self, now_ns: int, speed_mps: float) -> Obstacle | None:
        """The own obstacle as the command takes it (the twin adds to what the vehicle sees, in every mode).

        In the cooperative modes, not before its speed is known (``ego_confirmed``): taken as standing, a car
        cutting in 2 m ahead at nearly the own speed braked v2 at 7.4 m/s^2 (cut_in). Nor while a twin warning
        names the same obstacle (gaps now within ``SAME_OBSTACLE_M``): one obstacle, one estimate, and the
        twin's, tracked with velocities in the common grid, is the better one (counting both braked for the
        harder of two noisy estimates: cut_in, v1 0.2 m/s^2 harder). A moving obstacle the twin warned about
        within ``warning_max_age_s`` stays the twin's through its silence, which may mean the conflict is
        over (filling the gaps of a flickering warning about c1 with an own speed 1.4 m/s low braked v2 at
        5.3 m/s^2, not 5.1). A standing one does not leave when the twin goes quiet: the own obstacle
        stands in at once (issue 16, v1 4.97 m behind the stopped car).
        """
        ego = self.ego_obstacle
        if ego is None or self.mode is FollowerMode.EGO:
            return ego
        if not self.ego_confirmed:
            return None

        def same(o: Obstacle | None) -> bool:
            return o is not None and abs(_gap_now(ego, now_ns, speed_mps)
                                         - _gap_now(o, now_ns, speed_mps)) < SAME_OBSTACLE_M

        named = self.twin_named
        if same(self.warning) or (ego.speed_mps >= STOPPED_MPS and named is not None and same(named)
                                  and (now_ns - named.stamp_ns) * 1e-9 <= self.setup.follower.warning_max_age_s):
            return None
        return ego

    def _stale(self, drops: list[Drop], source: str, stamp_ns: int, now_ns: int, limit_s: float) -> None:
        if self._stale_seen.get(source) != stamp_ns:
            self._stale_seen[source] = stamp_ns
            drops.append(Drop(source, Cause.TOO_OLD.value, f'{source} is {(now_ns - stamp_ns) * 1e-9:.2f} s old, '
                                                           f'over its limit of {limit_s} s: ignored'))

    def _pred_gap(self, own: _Odom, pred: _Odom) -> float:
        """Bumper gap at the predecessor's arrival time (own pose moved there at its speed)."""
        dt = (pred.received_ns - own.received_ns) * 1e-9
        ox = own.x + own.speed * dt * math.cos(own.yaw)
        oy = own.y + own.speed * dt * math.sin(own.yaw)
        return bumper_gap(ox, oy, own.yaw, self.setup.front_m, pred.x, pred.y, self.setup.predecessor_rear_m)

    # ------------------------------------------------------------ health --

    def health(self, now_ns: int) -> dict[str, object]:
        """Mode, input ages (s, nan when none), the last command and what limited it."""
        def age(t: int | None) -> float:
            return math.nan if t is None else (now_ns - t) * 1e-9

        last = self.last
        return {
            'mode': self.mode.value,
            'predecessor': self.setup.predecessor_id or '',
            'odom_age_s': age(None if self.own is None else self.own.received_ns),
            'predecessor_age_s': age(None if self.pred is None else self.pred.received_ns),
            'warning_age_s': age(None if self.warning is None else self.warning.stamp_ns),
            'warnings_array_age_s': age(self.warning_stamp_ns),
            'advisory_age_s': age(self.advisory_stamp_ns),
            'advisory_active': self.advisory is not None,
            'advisory_expired': self.expired['advisory'],
            'warning_expired': self.expired['warning'],
            'warning_held': self.warning is not None and self.warning_held,
            'ego_obstacle_m': math.nan if self.ego_obstacle is None else self.ego_obstacle.distance_m,
            'ego_obstacle_confirmed': self.ego_obstacle is not None and self.ego_confirmed,
            'ego_obstacle_used': self.ego_used,
            'commands': self.commands,
            'limit': '' if last is None else last.limit.value,
            'target_speed_mps': math.nan if last is None else last.target_speed_mps,
            'accel_mps2': math.nan if last is None else last.accel_mps2,
            'stale_inputs': '' if last is None else ','.join(last.stale),
        }


def _gap_now(o: Obstacle, now_ns: int, own_speed_mps: float) -> float:
    """Gap (m) to obstacle ``o`` at ``now_ns``, both moving at constant speed since its stamp."""
    return o.distance_m + (o.speed_mps - own_speed_mps) * max(int(now_ns) - o.stamp_ns, 0) * 1e-9


def _slope(samples: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of (stamp ns, value) samples, value per second (0 when they share one stamp)."""
    t = np.array([s[0] - samples[0][0] for s in samples], dtype=np.float64) * 1e-9
    y = np.array([s[1] for s in samples], dtype=np.float64)
    tc = t - t.mean()
    den = float(tc @ tc)
    return float(tc @ (y - y.mean())) / den if den > 0.0 else 0.0


def _odom(received_ns: int, x: float, y: float, yaw: float, speed: float, what: str,
          yaw_rate: float = 0.0) -> _Odom:
    values = (x, y, yaw, speed, yaw_rate)
    if not all(math.isfinite(v) for v in values):
        raise MessageFormatError(f'{what} holds non-finite values {values}')
    return _Odom(int(received_ns), float(x), float(y), float(yaw), float(speed), float(yaw_rate))



def bodies_from_platoon(platoon: Sequence[PlatoonVehicle], vehicle_id: str) -> dict[str, Any]:
    """FollowerSetup fields a platoon (in platoon order) gives one vehicle: ``predecessor_id`` (None for the
    leader), ``front_m``, ``predecessor_rear_m``, ``predecessor_length_m``. ConfigError if it is not in it."""
    ids = [v.id for v in platoon]
    if vehicle_id not in ids:
        raise ConfigError(f'vehicle {vehicle_id!r} is not in the platoon {ids}')
    i = ids.index(vehicle_id)
    own = platoon[i].body
    out: dict[str, Any] = {'predecessor_id': None, 'front_m': own.length_m - own.rear_overhang_m,
                           'predecessor_rear_m': 0.0, 'predecessor_length_m': 0.0}
    if i > 0:
        pred = platoon[i - 1]
        out.update(predecessor_id=pred.id, predecessor_rear_m=pred.body.rear_overhang_m,
                   predecessor_length_m=pred.body.length_m)
    return out
