"""Faster-than-real-time rollout of the scene, predicted occupancy grids, and their self-check.

Road convention: the rollout runs in road coordinates (:mod:`..road`): x is
``s`` along the road in the driving direction, y is ``d`` across it, yaws and
velocities relative to the road's heading where the object is. On the map x
axis (``road`` None) these are map x and y. Platoon vehicles keep their lane
(constant y) and move along x by
IDM car-following (:mod:`.idm`), braking at most ``max_decel_mps2``; each one
follows whichever is closer of its predecessor in the platoon and the nearest
tracked obstacle in its path within ``lane_half_width_m`` (ahead, or overlapping
its box: a car that reaches an obstacle keeps braking instead of driving
through it). Box overlaps are the rollout's collisions. Other tracked objects
move by constant velocity plus their tracked along-road acceleration (or by
constant turn rate and velocity, CTRV); the acceleration is bounded: held, clipped to
[-``max_decel_mps2``, ``max_obstacle_accel_mps2``], until the object stops
(never reversing). A braking platoon leader likewise keeps braking at its
measured rate. Every step is vectorised over vehicles and obstacles; the only
Python loop is the time loop.

Predicted grids render each object's footprint convolved with an isotropic
Gaussian whose sigma grows with the horizon. The convolution of a rectangle
with an isotropic Gaussian is separable in the rectangle's own frame, so each
cell's probability is a product of two differences of normal CDFs; it is
evaluated only over each object's bounding window, and objects combine as
independent (1 - prod(1 - p)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, MessageFormatError
from ..grid import GridSpec
from ..road import RoadModel
from .idm import IdmParams, check_no_nan, desired_speeds, idm_acceleration_unchecked, idm_step
from .tracking import OrientedBox, Track


#: Desired speed of a leader that stands still at the start (keeps IDM's free term defined), m/s.
_MIN_CRUISE_MPS = 0.1


class ObstacleModel(Enum):
    """How tracked obstacles move during the rollout."""

    CV = 'cv'
    CTRV = 'ctrv'


@dataclass(frozen=True)
class PredictionConfig:
    """Rollout and predicted-grid settings.

    horizon_s, dt_s : rollout length and step, seconds
    output_horizons_s : horizons (multiples of dt_s, <= horizon_s) for predicted grids
    idm : car-following parameters of the platoon vehicles
    sigma0_m, sigma_growth_mps : footprint blur sigma(h) = sigma0 + growth·h, metres
        (combined in quadrature with a track's own position std)
    obstacle_model : CV or CTRV
    lane_half_width_m : an obstacle whose centre is within this of a vehicle's
        lane centre line is in its path
    window_sigmas : each object's raster window extends this many sigmas past its box
    leader_keeps_speed : a platoon vehicle without a platoon predecessor (the leader)
        cruises at its current speed on a free road (its IDM desired speed is its
        speed at the start) instead of accelerating towards ``idm.v0_mps``; it still
        brakes for obstacles ahead. Followers use ``idm.v0_mps``.
    lateral_deadband_mps : obstacles whose across-road speed |vy| is below this keep their lateral
        position in the rollout (lane keeping): a few tenths of a m/s of tracking noise in vy,
        extrapolated over seconds, would otherwise move a car in the next lane into the platoon's
        lane. A real lane change (about 1 m/s or more) is followed.
    lateral_max_std_mps : ... and only from tracks whose vy std is at most this (settled tracks;
        young fragments of a split object carry vy of several m/s at a std above 1 m/s), and only
        from tracks detected in the latest grid (a coasting track keeps its lane)
    max_lateral_shift_m : a CV obstacle moves across the road by at most this (one lane change:
        a car two lanes over does not reach the platoon's lane within the rollout)
    platoon_sigma_growth_mps : blur growth of the platoon vehicles in predicted grids, m/s: their
        start is odometry (not a track) and their motion the platoon's own controller, so their
        footprints stay sharper than obstacles' (sigma0 + this·h)
    lateral_sigmas : ... and below this many of the track's own vy std (a track confirmed a few
        frames ago has a vy std of 1-2 m/s, a settled one about 0.3 m/s)
    max_decel_mps2 : strongest braking of any vehicle in the rollout, m/s^2 (IDM alone brakes without
        limit when a gap is far below its desired gap); also bounds obstacles' tracked deceleration
    max_obstacle_accel_mps2 : bound on an obstacle's tracked (positive) acceleration, m/s^2
    """

    horizon_s: float = 5.0
    dt_s: float = 0.1
    output_horizons_s: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
    idm: IdmParams = field(default_factory=IdmParams)
    sigma0_m: float = 0.3
    sigma_growth_mps: float = 0.5
    obstacle_model: ObstacleModel = ObstacleModel.CV
    lane_half_width_m: float = 1.8
    window_sigmas: float = 3.0
    leader_keeps_speed: bool = True
    lateral_deadband_mps: float = 0.5
    lateral_sigmas: float = 3.0
    lateral_max_std_mps: float = 0.5
    max_lateral_shift_m: float = 3.5
    platoon_sigma_growth_mps: float = 0.1
    max_decel_mps2: float = 8.0
    max_obstacle_accel_mps2: float = 2.0

    def __post_init__(self) -> None:
        for name in ('horizon_s', 'dt_s', 'sigma0_m', 'lane_half_width_m', 'window_sigmas', 'max_lateral_shift_m',
                     'max_decel_mps2'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f'PredictionConfig.{name} must be a positive finite number, got {value!r}')
        for name in ('lateral_deadband_mps', 'lateral_sigmas', 'platoon_sigma_growth_mps', 'lateral_max_std_mps',
                     'max_obstacle_accel_mps2'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f'PredictionConfig.{name} must be a finite number >= 0, got {value!r}')
        if not (math.isfinite(self.sigma_growth_mps) and self.sigma_growth_mps >= 0):
            raise ConfigError(f'PredictionConfig.sigma_growth_mps must be >= 0, got {self.sigma_growth_mps!r}')
        if self.dt_s > self.horizon_s:
            raise ConfigError(f'dt_s {self.dt_s} s is longer than horizon_s {self.horizon_s} s')
        for h in self.output_horizons_s:
            steps = h / self.dt_s
            if not (0 < h <= self.horizon_s + 1e-9) or abs(steps - round(steps)) > 1e-6:
                raise ConfigError(f'output horizon {h} s must be a multiple of dt_s {self.dt_s} s '
                                  f'in (0, {self.horizon_s}] s')
        if not isinstance(self.obstacle_model, ObstacleModel):
            raise ConfigError(f'obstacle_model must be an ObstacleModel, got {self.obstacle_model!r}')

    @property
    def steps(self) -> int:
        return int(round(self.horizon_s / self.dt_s))

    def sigma_at(self, horizon_s: float) -> float:
        """Blur sigma at a horizon, metres (before adding a track's own std)."""
        return self.sigma0_m + self.sigma_growth_mps * horizon_s

    def platoon_sigma_at(self, horizon_s: float) -> float:
        """Blur sigma of the platoon vehicles at a horizon, metres."""
        return self.sigma0_m + self.platoon_sigma_growth_mps * horizon_s


def _vec(name: str, value: NDArray[np.floating] | Sequence[float] | float, n: int) -> NDArray[np.float64]:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise MessageFormatError(f'{name} has shape {a.shape}, expected ({n},)')
    if not np.all(np.isfinite(a)):
        raise MessageFormatError(f'{name} holds non-finite values: {a.tolist()}')
    return a


@dataclass(frozen=True)
class VehicleState:
    """One platoon vehicle: id, centre x, y (metres, ``map``), speed (m/s), heading (rad), length (metres)."""

    vehicle_id: str
    x: float
    y: float
    speed: float
    heading: float = 0.0
    length: float = 4.5


@dataclass(frozen=True)
class PlatoonState:
    """Platoon vehicles at the rollout's start (from their odometry).

    ids : vehicle ids (``v1``, ...)
    x, y : (V,) centre position in ``map``, metres; speed : (V,) m/s along the road
    heading : (V,) yaw, radians; length, width : (V,) metres
    order : (V,) position in the platoon, 0 = leader; vehicle i's predecessor has order[i] - 1
    accel : (V,) current acceleration, m/s^2 (used by the no-reaction conflict model)
    """

    ids: tuple[str, ...]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    speed: NDArray[np.float64]
    heading: NDArray[np.float64]
    length: NDArray[np.float64]
    width: NDArray[np.float64]
    order: NDArray[np.int64]
    accel: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        n = len(self.ids)
        object.__setattr__(self, 'ids', tuple(str(i) for i in self.ids))
        for name in ('x', 'y', 'speed', 'heading', 'length', 'width'):
            object.__setattr__(self, name, _vec(name, getattr(self, name), n))
        accel = self.accel if np.asarray(self.accel).size else np.zeros(n)
        object.__setattr__(self, 'accel', _vec('accel', accel, n))
        order = np.asarray(self.order, dtype=np.int64).reshape(-1)
        if sorted(order.tolist()) != list(range(n)):
            raise ConfigError(f'platoon order must be a permutation of 0..{n - 1}, got {order.tolist()}')
        object.__setattr__(self, 'order', order)
        if np.any(self.speed < 0):
            raise MessageFormatError(f'platoon speeds must be >= 0 m/s, got {self.speed.tolist()}')

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def predecessor(self) -> NDArray[np.int64]:
        """(V,) index of each vehicle's predecessor, -1 for the leader."""
        by_order = np.empty(len(self), np.int64)
        by_order[self.order] = np.arange(len(self))
        return np.where(self.order > 0, by_order[np.maximum(self.order - 1, 0)], -1)

    def in_road(self, road: RoadModel | None) -> PlatoonState:
        """The same vehicles in road coordinates: x, y -> s, d; heading relative to the road's there
        (speeds and accelerations stay: along the road). Itself for ``road`` None."""
        if road is None:
            return self
        s, d = road.to_road(np.column_stack([self.x, self.y]))
        heading = _wrap(self.heading - road.heading_at(s))
        return replace(self, x=s, y=d, heading=heading)

    def vehicle(self, vehicle_id: str) -> VehicleState:
        """State of one vehicle by id; ConfigError if the id is not in the platoon."""
        if vehicle_id not in self.ids:
            raise ConfigError(f'vehicle {vehicle_id!r} is not in the platoon {list(self.ids)}')
        i = self.ids.index(vehicle_id)
        return VehicleState(vehicle_id, float(self.x[i]), float(self.y[i]), float(self.speed[i]),
                            float(self.heading[i]), float(self.length[i]))

    def footprints(self, trail_s: float = 0.0, front_m: float = 0.0) -> list[OrientedBox]:
        """Each vehicle's box (for excluding it from detections), stretched backwards over the
        ``speed · trail_s`` metres it covered in the last ``trail_s`` seconds and forwards by ``front_m``."""
        if not (math.isfinite(trail_s) and trail_s >= 0 and math.isfinite(front_m) and front_m >= 0):
            raise ConfigError(f'footprint trail and front extension must be finite and >= 0, got '
                              f'{trail_s!r} s and {front_m!r} m')
        trail = self.speed * trail_s + front_m
        back = 0.5 * (trail - 2.0 * front_m)
        return [OrientedBox(float(self.x[i] - back[i] * math.cos(self.heading[i])),
                            float(self.y[i] - back[i] * math.sin(self.heading[i])),
                            float(self.length[i] + trail[i]), float(self.width[i]), float(self.heading[i]))
                for i in range(len(self))]


def velocity_variance_along(cov_v: NDArray[np.float64], c: NDArray[np.float64], s: NDArray[np.float64]
                            ) -> NDArray[np.float64]:
    """(K,) variance of each velocity along the unit direction (c, s), (m/s)^2: c² σxx + 2cs σxy + s² σyy.

    cov_v : (K, 2, 2) velocity covariances in map x, y; c, s : (K,) cosine and sine of the direction
    (across a road heading h: c = -sin h, s = cos h).
    """
    return c * c * cov_v[:, 0, 0] + 2.0 * c * s * cov_v[:, 0, 1] + s * s * cov_v[:, 1, 1]


@dataclass(frozen=True)
class ObstacleState:
    """Tracked objects at the rollout's start.

    ids : (K,) track ids; x, y : (K,) metres; vx, vy : (K,) m/s; length, width : (K,) metres;
    yaw : (K,) footprint yaw, radians; yaw_rate : (K,) rad/s (CTRV only);
    position_std : (K,) track position std, metres; vy_std : (K,) std of vy, m/s (0 when not given)
    misses : (K,) consecutive tracker cycles without a detection (coasting), 0 when not given
    ax : (K,) tracked acceleration along x, m/s^2 (0 when not given, or from a CV track)
    ay : (K,) ... along y
    vx_std : (K,) std of vx, m/s (0 when not given)
    """

    ids: NDArray[np.int64]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    vx: NDArray[np.float64]
    vy: NDArray[np.float64]
    length: NDArray[np.float64]
    width: NDArray[np.float64]
    yaw: NDArray[np.float64]
    yaw_rate: NDArray[np.float64]
    position_std: NDArray[np.float64]
    vy_std: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    misses: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    ax: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    ay: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    vx_std: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        object.__setattr__(self, 'ids', ids)
        for name in ('vy_std', 'ax', 'ay', 'vx_std'):
            if not np.asarray(getattr(self, name)).size:
                object.__setattr__(self, name, np.zeros(ids.shape[0]))
        misses = np.asarray(self.misses, dtype=np.int64).reshape(-1)
        if not misses.size:
            misses = np.zeros(ids.shape[0], np.int64)
        if misses.shape != ids.shape:
            raise MessageFormatError(f'misses has shape {misses.shape}, expected {ids.shape}')
        object.__setattr__(self, 'misses', misses)
        for name in ('x', 'y', 'vx', 'vy', 'length', 'width', 'yaw', 'yaw_rate', 'position_std', 'vy_std', 'ax',
                     'ay', 'vx_std'):
            object.__setattr__(self, name, _vec(name, getattr(self, name), ids.shape[0]))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> 'ObstacleState':
        z = np.zeros(0)
        return cls(np.zeros(0, np.int64), z, z, z, z, z, z, z, z, z)

    def lane_keeping(self, deadband_mps: float, sigmas: float = 0.0,
                     max_std_mps: float = math.inf) -> 'ObstacleState':
        """The same obstacles with vy set to 0 where |vy| < max(``deadband_mps``, ``sigmas`` · vy_std)
        or vy_std > ``max_std_mps``, or the track missed its latest detection: lateral motion is kept
        only where it is fast, significant and measured by a settled track that is seen now (a CTRV
        yaw rate stays). A coasting track's vy is extrapolated, not observed: on the common grid it
        is mostly a piece of a next-lane vehicle's side that lost its detection to a regrouping of
        the pieces, and the sideways speed it carries is what the regrouping made up."""
        keep = ((np.abs(self.vy) < np.maximum(deadband_mps, sigmas * self.vy_std)) | (self.vy_std > max_std_mps)
                | (self.misses > 0))
        if not keep.any():
            return self
        return replace(self, vy=np.where(keep, 0.0, self.vy))

    @classmethod
    def from_tracks(cls, tracks: Sequence[Track], min_length_m: float = 1.0, min_width_m: float = 0.8,
                    heading_speed_mps: float = 1.0, road: RoadModel | None = None) -> 'ObstacleState':
        """Obstacles from tracker snapshots (``map``), in ``road``'s coordinates when it is given.

        Extents below the minimums (partly seen objects) are raised to them. A
        track moving faster than ``heading_speed_mps`` takes its velocity's
        direction as footprint yaw, else its detection yaw. CA tracks give CTRV
        a yaw rate (v × a) / |v|^2. On a road, positions become (s, d), velocities,
        accelerations and yaws are taken relative to the road's heading at each
        track (vx_std, vy_std from the velocity covariance along and across it), and the yaw rate
        relative to the road's turn rate at the track's along-road speed.
        """
        if not tracks:
            return cls.empty()
        st = np.stack([np.pad(t.state, (0, 6 - t.state.shape[0])) for t in tracks])
        speed = np.hypot(st[:, 2], st[:, 3])
        moving = speed > heading_speed_mps
        yaw = np.where(moving, np.arctan2(st[:, 3], st[:, 2]), [t.yaw for t in tracks])
        with np.errstate(divide='ignore', invalid='ignore'):
            rate = np.where(moving, (st[:, 2] * st[:, 5] - st[:, 3] * st[:, 4]) / np.maximum(speed, 1e-9) ** 2, 0.0)
        x, y, vx, vy, ax, ay = st.T
        vx_var = np.array([t.covariance[2, 2] for t in tracks])
        vy_var = np.array([t.covariance[3, 3] for t in tracks])
        if road is not None:
            x, y = road.to_road(st[:, :2])
            h = road.heading_at(x)
            c, s = np.cos(h), np.sin(h)
            vx, vy = c * st[:, 2] + s * st[:, 3], c * st[:, 3] - s * st[:, 2]
            ax, ay = c * st[:, 4] + s * st[:, 5], c * st[:, 5] - s * st[:, 4]
            yaw = _wrap(yaw - h)
            rate = rate - road.curvature_at(x) * vx
            cov_v = np.stack([t.covariance[2:4, 2:4] for t in tracks])
            vx_var = velocity_variance_along(cov_v, c, s)
            vy_var = velocity_variance_along(cov_v, -s, c)
        return cls(np.array([t.track_id for t in tracks]), x, y, vx, vy,
                   np.maximum([t.length for t in tracks], min_length_m),
                   np.maximum([t.width for t in tracks], min_width_m), yaw, rate,
                   np.array([t.position_std_m for t in tracks]),
                   np.sqrt(np.maximum(vy_var, 0.0)),
                   np.array([t.misses for t in tracks], np.int64), ax, ay, np.sqrt(np.maximum(vx_var, 0.0)))


@dataclass(frozen=True)
class Rollout:
    """A predicted scene, one row per step (S = horizon / dt).

    times_s : (S+1,) seconds from the start
    platoon_x, platoon_speed : (S+1, V) IDM trajectory, metres and m/s
    platoon_accel : (S+1, V) IDM acceleration at each row's state (applied over the next step), m/s^2
    platoon_leader : (S+1, V) what each vehicle followed: -1 nothing, i < V platoon vehicle i,
        V + k obstacle k
    obstacle_x, obstacle_y, obstacle_yaw, obstacle_vx, obstacle_vy : (S+1, K)
    platoon_collision_s : (V,) first time each vehicle's box overlaps (along and across the road) an
        obstacle in its lane or its predecessor in the rollout, seconds; inf when it never does
    obstacles_ignored : True when no obstacle ever led or touched a platoon vehicle, so the platoon's rows
        are exactly those of a rollout without obstacles (False: not known)
    road : the road whose coordinates (s, d, relative yaw) all of the above are in; None: ``map`` itself
        (:meth:`platoon_poses` and :meth:`obstacle_poses` give map poses either way)
    platoon_x_alone : (S+1, V) platoon_x of the rollout of the platoon without the obstacles, when it was
        asked for (``rollout(..., platoon_alone=True)``) and differs from platoon_x; else None
    """

    config: PredictionConfig
    platoon: PlatoonState
    obstacles: ObstacleState
    times_s: NDArray[np.float64]
    platoon_x: NDArray[np.float64]
    platoon_speed: NDArray[np.float64]
    platoon_accel: NDArray[np.float64]
    platoon_leader: NDArray[np.int64]
    obstacle_x: NDArray[np.float64]
    obstacle_y: NDArray[np.float64]
    obstacle_yaw: NDArray[np.float64]
    obstacle_vx: NDArray[np.float64]
    obstacle_vy: NDArray[np.float64]
    platoon_collision_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    obstacles_ignored: bool = False
    road: RoadModel | None = None
    platoon_x_alone: NDArray[np.float64] | None = None

    def platoon_poses(self, k: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """(V,) map x, y, yaw of the platoon vehicles at step ``k``."""
        return _to_map(self.road, self.platoon_x[k], self.platoon.y, self.platoon.heading)

    def obstacle_poses(self, k: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """(K,) map x, y, yaw of the obstacles at step ``k``."""
        return _to_map(self.road, self.obstacle_x[k], self.obstacle_y[k], self.obstacle_yaw[k])

    def step_of(self, horizon_s: float) -> int:
        """Row index of a horizon (must be a multiple of dt within the rollout)."""
        k = horizon_s / self.config.dt_s
        if abs(k - round(k)) > 1e-6 or not 0 <= round(k) < self.times_s.shape[0]:
            raise ConfigError(f'horizon {horizon_s} s is not a step of this rollout '
                              f'(dt {self.config.dt_s} s, horizon {self.times_s[-1]} s)')
        return int(round(k))


def _wrap(angle: NDArray[np.floating]) -> NDArray[np.float64]:
    """Angles wrapped to [-pi, pi), radians."""
    return (np.asarray(angle, dtype=np.float64) + math.pi) % (2.0 * math.pi) - math.pi


def _to_map(road: RoadModel | None, s: NDArray[np.floating], d: NDArray[np.floating], yaw: NDArray[np.floating]
            ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Road poses (s, d, yaw relative to the road) -> map x, y, yaw; unchanged for ``road`` None."""
    if road is None:
        return s, d, yaw
    x, y, heading = road.to_map(s, d)
    return x, y, _wrap(yaw + heading)


def bounded_acceleration(x0: NDArray[np.floating], v0: NDArray[np.floating], a0: NDArray[np.floating],
                         t: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(S+1, N) positions and speeds along x holding acceleration ``a0`` (N,) from (x0, v0) (N,) over times
    ``t`` (S+1,) s; a braking mover (v0 > 0, a0 < 0) stops at v = 0 and stays, never reversing."""
    tt = np.asarray(t, dtype=np.float64)[:, None]
    x0, v0, a0 = (np.asarray(a, dtype=np.float64) for a in (x0, v0, a0))
    braking = (a0 < 0) & (v0 > 0)
    t_stop = np.where(braking, v0 / np.where(braking, -a0, 1.0), np.inf)
    a = np.where((a0 < 0) & (v0 <= 0), 0.0, a0)
    tb = np.minimum(tt, t_stop)
    return x0 + v0 * tb + 0.5 * a * tb * tb, v0 + a * tb


def _obstacle_paths(obs: ObstacleState, t: NDArray[np.float64], model: ObstacleModel,
                    max_shift_m: float = math.inf, accel_bounds: tuple[float, float] = (0.0, 0.0)
                    ) -> tuple[NDArray[np.float64], ...]:
    """(S+1, K) x, y, yaw, vx, vy of obstacles moving by CV or CTRV (closed form); CV obstacles move
    across the road by at most ``max_shift_m`` (one lane change), then keep that lane, and along it with
    their tracked acceleration clipped to ``accel_bounds`` (low, high) m/s^2 (see :func:`bounded_acceleration`)."""
    tt = t[:, None]
    if model is ObstacleModel.CV or len(obs) == 0:
        ax = np.clip(obs.ax, accel_bounds[0], accel_bounds[1])
        x, vx = bounded_acceleration(obs.x, obs.vx, ax, t)
        shift = obs.vy * tt
        y = obs.y + np.clip(shift, -max_shift_m, max_shift_m)
        ones = np.ones_like(tt)
        vy = np.where(np.abs(shift) < max_shift_m, obs.vy * ones, 0.0)
        return x, y, obs.yaw * ones, vx, vy
    speed = np.hypot(obs.vx, obs.vy)
    theta0 = np.arctan2(obs.vy, obs.vx)
    w = obs.yaw_rate
    turning = np.abs(w) > 1e-6
    w_safe = np.where(turning, w, 1.0)
    theta = theta0 + w * tt
    x = np.where(turning, obs.x + speed / w_safe * (np.sin(theta) - np.sin(theta0)), obs.x + obs.vx * tt)
    y = np.where(turning, obs.y + speed / w_safe * (np.cos(theta0) - np.cos(theta)), obs.y + obs.vy * tt)
    yaw = obs.yaw + w * tt
    return x, y, yaw, speed * np.cos(theta), speed * np.sin(theta)


def along_road_half_length(length: NDArray[np.floating], width: NDArray[np.floating],
                           yaw: NDArray[np.floating]) -> NDArray[np.float64]:
    """Half the extent along x of boxes (length, width, yaw), metres."""
    return 0.5 * (np.abs(np.cos(yaw)) * length + np.abs(np.sin(yaw)) * width)


def rollout(platoon: PlatoonState, obstacles: ObstacleState, cfg: PredictionConfig | None = None,
            road: RoadModel | None = None, platoon_alone: bool = False) -> Rollout:
    """Predict platoon (IDM) and obstacles (CV/CTRV) over ``cfg.horizon_s`` in steps of ``cfg.dt_s``.

    ``platoon`` and ``obstacles`` are in the coordinates of ``road`` (``PlatoonState.in_road``,
    ``ObstacleState.from_tracks(..., road=road)``; None: ``map`` with x along the road); the
    rollout keeps the road to give map poses.

    Gaps are bumper to bumper along x. A vehicle's leader at each step is the
    closer of its platoon predecessor and the nearest obstacle in its path: centre
    within ``lane_half_width_m`` of the vehicle's lane, and ahead of the vehicle's
    centre, or overlapping its box along the road after having been ahead (the
    gap is then negative and the vehicle brakes at ``max_decel_mps2``), and not
    overlapping its box at the start (a piece of its own cells); a vehicle
    whose box has overlapped another's brakes at ``max_decel_mps2`` to a standstill. With
    ``cfg.leader_keeps_speed`` the platoon leader's desired speed is its current
    speed (a cruise set point the twin cannot see), not ``idm.v0_mps``; a leader
    that brakes now (``platoon.accel`` < 0) keeps braking at that rate (bounded by
    ``max_decel_mps2``) unless the IDM brakes harder.

    ``platoon_alone``: also roll the platoon out without the obstacles, in the same loop (a second copy of
    each vehicle that no obstacle is in the path of: its rows are exactly those of
    ``rollout(platoon, ObstacleState.empty(), cfg)``), as ``platoon_x_alone`` (None when nothing was in a path).
    """
    cfg = cfg or PredictionConfig()
    n_steps = cfg.steps
    t = np.arange(n_steps + 1) * cfg.dt_s
    ox, oy, oyaw, ovx, ovy = _obstacle_paths(obstacles.lane_keeping(cfg.lateral_deadband_mps, cfg.lateral_sigmas,
                                                                    cfg.lateral_max_std_mps), t,
                                             cfg.obstacle_model, cfg.max_lateral_shift_m,
                                             (-cfg.max_decel_mps2, cfg.max_obstacle_accel_mps2))
    o_half = along_road_half_length(obstacles.length, obstacles.width, oyaw)      # (S+1, K)
    o_wide = along_road_half_length(obstacles.width, obstacles.length, oyaw)      # (S+1, K) across the road

    nv = len(platoon)
    pred = platoon.predecessor
    x0, y, speed = platoon.x, platoon.y, platoon.speed
    length, width, accel = platoon.length, platoon.width, platoon.accel
    copies = 2 if platoon_alone and len(obstacles) else 1
    if copies == 2:
        # Rows nv.. are the platoon again, followed by its own copies only (no obstacle is ever in their path).
        pred = np.concatenate([pred, np.where(pred >= 0, pred + nv, -1)])
        x0, y, speed, length, width, accel = (np.tile(a, 2) for a in (x0, y, speed, length, width, accel))
    n_rows = copies * nv
    xs = np.empty((n_steps + 1, n_rows))
    vs = np.empty((n_steps + 1, n_rows))
    acc = np.zeros((n_steps + 1, n_rows))
    leader = np.full((n_steps + 1, n_rows), -1, np.int64)
    xs[0], vs[0] = x0, speed
    has_pred = pred >= 0
    pred_safe = np.where(has_pred, pred, 0)
    v0 = (np.where(has_pred, cfg.idm.v0_mps, np.maximum(speed, _MIN_CRUISE_MPS))
          if cfg.leader_keeps_speed else None)
    v0_checked = cfg.idm.v0_mps if v0 is None else desired_speeds(v0)
    half = 0.5 * length
    half_w = 0.5 * width
    # A leader braking now keeps braking (bounded); no bound for followers and a leader not braking.
    lead_brake = np.where(has_pred | (accel >= 0), np.inf, np.maximum(accel, -cfg.max_decel_mps2))
    # Obstacles in each vehicle's lane: lanes are constant, obstacles move laterally.
    dy = np.abs(oy[:, None, :] - y[None, :, None])                                          # (S+1, V, K)
    in_lane = dy <= cfg.lane_half_width_m
    in_lane[:, nv:] = False                                                                  # the copies
    across = dy < o_wide[:, None, :] + half_w[None, :, None]                                 # boxes overlap across
    pred_across = np.abs(y[pred_safe] - y) < half_w[pred_safe] + half_w
    in_path = np.zeros((n_rows, len(obstacles)), bool)
    # An obstacle overlapping a vehicle's box at the start is a piece of that vehicle's own cells (or a contact
    # the conflicts judge): never that vehicle's leader here.
    own = ((np.abs(ox[0][None, :] - x0[:, None]) < o_half[0][None, :] + half[:, None])
           & across[0]) if len(obstacles) else np.zeros((n_rows, 0), bool)
    collision = np.full(n_rows, np.inf)
    collided: NDArray[np.bool_] | None = None          # np.isfinite(collision), once a vehicle has touched
    rows = np.arange(n_rows)
    obstacles_ignored = True
    # Constant over the steps, hoisted out of the loop (a call per operation on a few vehicles is what the
    # rollout costs); the model itself is idm.py's.
    half_pred, lead_pred = half[pred_safe], np.where(has_pred, pred, -1)
    touch_pred = has_pred & pred_across
    half_col = half[:, None]
    lane_own = in_lane & ~own[None]                            # (S+1, V, K) in the lane and not the vehicle's own
    lane_across = lane_own & across
    idm, dt, max_decel = cfg.idm, cfg.dt_s, cfg.max_decel_mps2
    gaps = np.empty((n_steps + 1, n_rows))                     # checked for NaN after the loop (idm.check_no_nan)
    nk = len(obstacles)
    in_path_any = False
    for k in range(n_steps + 1):
        x, v = xs[k], vs[k]
        gap = np.where(has_pred, xs[k, pred_safe] - half_pred - x - half, np.inf)
        touch = touch_pred & (gap <= 0)
        v_lead = np.where(has_pred, vs[k, pred_safe], v)
        lead = lead_pred
        if nk:
            dx = ox[k] - x[:, None]
            # In the path: ahead of the centre, or still overlapping after having been in the path.
            if in_path_any:
                in_path = lane_own[k] & ((dx > 0) | (in_path & (dx + o_half[k] + half_col > 0)))
            else:
                in_path = lane_own[k] & (dx > 0)
            in_path_any = bool(in_path.any())
            if in_path_any:                 # else nothing is in a path: gap, v_lead and lead stay as they are
                g_all = dx - o_half[k] - half_col
                g_obs = np.where(in_path, g_all, np.inf)
                obstacle_touch = (lane_across[k] & in_path & (g_all <= 0)).any(axis=1)
                touch |= obstacle_touch
                closer = g_obs.min(axis=1) < gap
                closer_any = bool(closer.any())
                obstacles_ignored &= not (closer_any or obstacle_touch.any())
                if closer_any:
                    j = np.argmin(g_obs, axis=1)
                    gap = np.where(closer, g_obs[rows, j], gap)
                    v_lead = np.where(closer, np.maximum(ovx[k, j], 0.0), v_lead)
                    lead = np.where(closer, n_rows + j, lead)
        if touch.any():
            collision = np.where(touch & ~np.isfinite(collision), t[k], collision)
            collided = np.isfinite(collision)
        leader[k] = lead
        gaps[k] = gap
        a = np.maximum(np.minimum(idm_acceleration_unchecked(v, v_lead, gap, idm, v0_checked), lead_brake),
                       -max_decel)
        # A vehicle that has collided brakes to a standstill: it does not drive on through the obstacle.
        if collided is not None:
            a = np.where(collided, -max_decel, a)
        acc[k] = a
        if k < n_steps:
            xs[k + 1], vs[k + 1] = idm_step(x, v, a, dt)
    for cols in ((slice(0, nv), slice(nv, n_rows)) if copies == 2 else (slice(None),)):
        bad = np.isnan(gaps[:, cols]).any(axis=1) | np.isnan(vs[:, cols]).any(axis=1)
        if bad.any():
            k = int(np.argmax(bad))
            check_no_nan(vs[k, cols], gaps[k, cols])
    alone = None
    if copies == 2:
        alone = None if obstacles_ignored else np.ascontiguousarray(xs[:, nv:])
        xs, vs, acc, collision = (np.ascontiguousarray(a[..., :nv]) for a in (xs, vs, acc, collision))
        leader = np.ascontiguousarray(np.where(leader[:, :nv] >= n_rows, leader[:, :nv] - nv, leader[:, :nv]))
    return Rollout(cfg, platoon, obstacles, t, xs, vs, acc, leader, ox, oy, oyaw, ovx, ovy, collision,
                   obstacles_ignored, road, alone)


@dataclass(frozen=True)
class BrakingProfile:
    """Constant-deceleration braking from v0 to v_final, then holding v_final.

    t_s, s_m, v_mps : (P,) time from start, distance travelled, speed
    decel_mps2 : the deceleration used (positive); stop_time_s, stop_distance_m : end of braking
    """

    t_s: NDArray[np.float64]
    s_m: NDArray[np.float64]
    v_mps: NDArray[np.float64]
    decel_mps2: float
    stop_time_s: float
    stop_distance_m: float


def braking_profile(v0_mps: float, decel_mps2: float, dt_s: float, duration_s: float | None = None,
                    v_final_mps: float = 0.0) -> BrakingProfile:
    """Closed-form constant-deceleration profile sampled every ``dt_s``.

    Braking lasts T = (v0 - v_final) / b and covers (v0² - v_final²) / (2b)
    metres; afterwards the speed stays v_final. ``duration_s`` defaults to T
    plus one second. Used by advice; the rollout's integrator reproduces it.
    """
    if not (decel_mps2 > 0 and math.isfinite(decel_mps2)):
        raise ConfigError(f'braking deceleration must be a positive finite m/s^2, got {decel_mps2!r}')
    if not (dt_s > 0 and math.isfinite(dt_s)):
        raise ConfigError(f'braking profile dt must be a positive finite number of seconds, got {dt_s!r}')
    if not 0 <= v_final_mps <= v0_mps:
        raise ConfigError(f'v_final {v_final_mps} m/s must be in [0, v0 = {v0_mps}] m/s')
    t_stop = (v0_mps - v_final_mps) / decel_mps2
    s_stop = (v0_mps ** 2 - v_final_mps ** 2) / (2.0 * decel_mps2)
    duration = t_stop + 1.0 if duration_s is None else duration_s
    t = np.arange(int(math.ceil(duration / dt_s - 1e-9)) + 1) * dt_s
    tb = np.minimum(t, t_stop)
    s = v0_mps * tb - 0.5 * decel_mps2 * tb * tb + v_final_mps * (t - tb)
    v = v0_mps - decel_mps2 * tb
    return BrakingProfile(t, s, v, float(decel_mps2), float(t_stop), float(s_stop))


def _phi(z: NDArray[np.float32]) -> NDArray[np.float32]:
    """Standard normal CDF, tanh approximation (max abs error 1.8e-4), ~10x faster than ndtr."""
    # 0.5·(1 + tanh(0.7978845608·(z + 0.044715·z·z·z))) in one buffer, the same float32 steps in the same order.
    t = np.multiply(np.float32(0.044715), z)
    t *= z
    t *= z
    t += z
    t *= np.float32(0.7978845608)
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= np.float32(0.5)
    return t


#: Windows whose clipped sizes fall in the same bins of this many cells are computed in one array.
_SIZE_STEP = 16


def _free_windows(spec: GridSpec, idx: NDArray[np.int64], r0: NDArray[np.int64], c0: NDArray[np.int64],
                  wy: int, wx: int, cx: NDArray[np.float64], cy: NDArray[np.float64], length: NDArray[np.float64],
                  width: NDArray[np.float64], c: NDArray[np.float64], s: NDArray[np.float64],
                  sigma: NDArray[np.float64]) -> NDArray[np.float32]:
    """(len(idx), wy, wx) float32 probability that each box ``idx`` leaves a cell free, over windows starting
    at cell (``r0``, ``c0``); every cell's value depends on that cell and box only."""
    f32 = np.float32
    res = spec.resolution
    dx = (spec.origin_x + (c0[idx, None] + np.arange(wx)[None, :] + 0.5) * res - cx[idx, None]).astype(f32)
    dy = (spec.origin_y + (r0[idx, None] + np.arange(wy)[None, :] + 0.5) * res - cy[idx, None]).astype(f32)
    inv = (1.0 / sigma[idx]).astype(f32)[:, None, None]
    c3, s3 = c[idx].astype(f32)[:, None, None] * inv, s[idx].astype(f32)[:, None, None] * inv
    u = c3 * dx[:, None, :] + s3 * dy[:, :, None]                                 # (n, wy, wx), in sigmas
    v = c3 * dy[:, :, None] - s3 * dx[:, None, :]
    hl = (0.5 * length[idx] / sigma[idx]).astype(f32)[:, None, None]
    hw = (0.5 * width[idx] / sigma[idx]).astype(f32)[:, None, None]
    # The four CDF arguments u ± L/2, v ± W/2 in one array: one _phi call, the same values per element.
    z = np.empty((4,) + u.shape, f32)
    np.add(u, hl, out=z[0])
    np.subtract(u, hl, out=z[1])
    np.add(v, hw, out=z[2])
    np.subtract(v, hw, out=z[3])
    p = _phi(z)
    return f32(1.0) - (p[0] - p[1]) * (p[2] - p[3])


def rasterise_boxes(spec: GridSpec, cx: NDArray[np.floating], cy: NDArray[np.floating],
                    length: NDArray[np.floating], width: NDArray[np.floating], yaw: NDArray[np.floating],
                    sigma: NDArray[np.floating], window_sigmas: float = 3.0) -> NDArray[np.float32]:
    """Occupancy probability (H, W) float32 of boxes blurred by isotropic Gaussians.

    cx, cy, length, width, yaw, sigma : (N,) metres / radians, one per box.
    Any grid yaw. Each box's probability at a cell is (Φ((u+L/2)/σ) − Φ((u−L/2)/σ))·(Φ((v+W/2)/σ) − Φ((v−W/2)/σ))
    with (u, v) the cell centre in the box frame; it is evaluated over the box's
    window only, clipped to the grid (windows of about one size are padded to one and
    done in one array), and
    boxes combine as independent: 1 − Π(1 − p).
    """
    return rasterise_box_sets(spec, [(cx, cy, length, width, yaw, sigma)], window_sigmas)[0]


def rasterise_box_sets(spec: GridSpec, sets: Sequence[tuple[NDArray[np.floating], ...]],
                       window_sigmas: float = 3.0) -> list[NDArray[np.float32]]:
    """:func:`rasterise_boxes` of each set of boxes (cx, cy, length, width, yaw, sigma) on one grid, one
    (H, W) float32 grid per set, the same values; windows of about one size are batched across the sets
    (the predicted grids of all horizons in a few arrays)."""
    return [prob for prob, _ in _rasterise_sets(spec, sets, window_sigmas)]


def probability_to_percent(prob: NDArray[np.float32]) -> NDArray[np.int8]:
    """(H, W) int8 OccupancyGrid cells, round(100 · p), of float32 probabilities in [0, 1]."""
    return np.rint(np.float32(100.0) * prob).astype(np.int8)


def _rasterise_sets(spec: GridSpec, sets: Sequence[tuple[NDArray[np.floating], ...]], window_sigmas: float
                    ) -> list[tuple[NDArray[np.float32], NDArray[np.int8]]]:
    """(probability, :func:`probability_to_percent` of it) per set of :func:`rasterise_box_sets`; both are
    computed over the boxes' windows only (every other cell is 0 in both)."""
    prepared = []
    for box_set in sets:
        cx, cy, length, width, yaw, sigma = (np.asarray(a, dtype=np.float64).reshape(-1) for a in box_set)
        grid = spec
        if spec.is_rotated:
            # A grid turned by its yaw: rasterise in its own frame, where it is axis-aligned.
            uv = spec.to_grid_frame(np.stack([cx, cy], axis=-1))
            cx, cy, yaw, grid = uv[:, 0], uv[:, 1], yaw - spec.yaw, spec.aligned()
        if np.any(sigma <= 0):
            raise ConfigError(f'box sigmas must be > 0 m, got {sigma.tolist()}')
        prepared.append((cx, cy, length, width, yaw, sigma))
    grid = spec.aligned() if spec.is_rotated else spec
    sizes = [p[0].shape[0] for p in prepared]
    if sum(sizes) == 0:
        return [(np.zeros(grid.shape, np.float32), np.zeros(grid.shape, np.int8)) for _ in prepared]
    cx, cy, length, width, yaw, sigma = (np.concatenate(col) for col in zip(*prepared))
    res = grid.resolution
    c, s = np.cos(yaw), np.sin(yaw)
    ex = 0.5 * (np.abs(c) * length + np.abs(s) * width) + window_sigmas * sigma
    ey = 0.5 * (np.abs(s) * length + np.abs(c) * width) + window_sigmas * sigma
    ix0 = np.floor((cx - ex - grid.origin_x) / res).astype(np.int64)
    iy0 = np.floor((cy - ey - grid.origin_y) / res).astype(np.int64)
    nx = np.floor((cx + ex - grid.origin_x) / res).astype(np.int64) - ix0 + 1
    ny = np.floor((cy + ey - grid.origin_y) / res).astype(np.int64) - iy0 + 1
    # Each window clipped to the grid; windows of about one size (cars, trucks, ...) are batched.
    r0, c0 = np.maximum(iy0, 0), np.maximum(ix0, 0)
    hy, hx = np.minimum(iy0 + ny, grid.height) - r0, np.minimum(ix0 + nx, grid.width) - c0
    on = np.nonzero((hy > 0) & (hx > 0))[0]
    size_class = (-(-hy[on] // _SIZE_STEP)) * (grid.width + 1) - (-hx[on] // _SIZE_STEP)
    windows: dict[int, NDArray[np.float32]] = {}
    for cls in np.unique(size_class):
        idx = on[size_class == cls]
        free_obj = _free_windows(grid, idx, r0, c0, int(hy[idx].max()), int(hx[idx].max()),
                                 cx, cy, length, width, c, s, sigma)
        for m, i in enumerate(idx.tolist()):
            windows[i] = free_obj[m]
    # Accumulate each set's windows into its free-space product in object order (a float32
    # product's rounding depends on its order); then 1 - free and the percent cells, window by window
    # (cells of overlapping windows are computed again, to the same values).
    rows0, cols0, rows, cols = r0.tolist(), c0.tolist(), hy.tolist(), hx.tolist()
    out, start, on_set = [], 0, set(on.tolist())
    free = np.ones(grid.shape, np.float32)
    f32_1, f32_100 = np.float32(1.0), np.float32(100.0)
    for n in sizes:
        cells = [(i, (slice(rows0[i], rows0[i] + rows[i]), slice(cols0[i], cols0[i] + cols[i])))
                 for i in range(start, start + n) if i in on_set]
        for i, win in cells:
            free[win] *= windows[i][:rows[i], :cols[i]]
        prob = np.zeros(grid.shape, np.float32)
        percent = np.zeros(grid.shape, np.int8)
        for _, win in cells:
            np.subtract(f32_1, free[win], out=prob[win])
        for _, win in cells:
            scaled = np.multiply(f32_100, prob[win])
            percent[win] = np.rint(scaled, out=scaled).astype(np.int8)
        for _, win in cells:
            free[win] = f32_1
        out.append((prob, percent))
        start += n
    return out


def predicted_grids(ro: Rollout, spec: GridSpec, cfg: PredictionConfig | None = None,
                    include_platoon: bool = True) -> dict[float, NDArray[np.float32]]:
    """Probability grids (H, W) float32 in [0, 1] at each output horizon, keyed by horizon (s).

    Objects: obstacles at their predicted poses and, with ``include_platoon``,
    the platoon vehicles at their IDM positions (their odometry is exact, so
    their sigma has no track term and grows by ``platoon_sigma_growth_mps``).
    Obstacles: sigma = sqrt(track_std² + (sigma0 + growth·h)²).
    """
    return predicted_grids_percent(ro, spec, cfg, include_platoon)[0]


def _predicted_boxes(ro: Rollout, cfg: PredictionConfig, include_platoon: bool) -> list[tuple[NDArray, ...]]:
    """Per output horizon, the boxes (cx, cy, length, width, yaw, sigma) of :func:`predicted_grids`."""
    p, o = ro.platoon, ro.obstacles
    sets = []
    for h in cfg.output_horizons_s:
        k = ro.step_of(h)
        sig = cfg.sigma_at(h)
        ox, oy, oyaw = ro.obstacle_poses(k)
        parts = [(ox, oy, o.length, o.width, oyaw, np.hypot(o.position_std, sig))]
        if include_platoon and len(p):
            px, py, pyaw = ro.platoon_poses(k)
            parts.append((px, py, p.length, p.width, pyaw, np.full(len(p), cfg.platoon_sigma_at(h))))
        sets.append(tuple(np.concatenate(c) for c in zip(*parts)))
    return sets


def predicted_grids_percent(ro: Rollout, spec: GridSpec, cfg: PredictionConfig | None = None,
                            include_platoon: bool = True
                            ) -> tuple[dict[float, NDArray[np.float32]], dict[float, NDArray[np.int8]]]:
    """:func:`predicted_grids` and their OccupancyGrid cells (:func:`probability_to_percent`), keyed by horizon."""
    cfg = cfg or ro.config
    grids = _rasterise_sets(spec, _predicted_boxes(ro, cfg, include_platoon), cfg.window_sigmas)
    return ({float(h): prob for h, (prob, _) in zip(cfg.output_horizons_s, grids)},
            {float(h): percent for h, (_, percent) in zip(cfg.output_horizons_s, grids)})


def _known_pairs(pred_prob: NDArray[np.floating], observed_percent: NDArray[np.integer]
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    pred = np.asarray(pred_prob, dtype=np.float32)
    obs = np.asarray(observed_percent)
    if pred.shape != obs.shape:
        raise MessageFormatError(f'predicted grid shape {pred.shape} does not match observed {obs.shape}')
    known = (obs >= 0) & (obs <= 100)
    return pred[known], obs[known].astype(np.float32) / 100.0


def iou(pred_prob: NDArray[np.floating], observed_percent: NDArray[np.integer], threshold: float = 0.5) -> float:
    """Intersection over union of occupied cells, over observed cells only.

    pred_prob : (H, W) probabilities; observed_percent : (H, W) OccupancyGrid cells (-1 unknown).
    A cell is occupied when its probability (observed: percent / 100) is >= threshold.
    NaN when neither grid has an occupied observed cell.
    """
    p, o = _known_pairs(pred_prob, observed_percent)
    a, b = p >= threshold, o >= threshold
    union = int(np.count_nonzero(a | b))
    return float(np.count_nonzero(a & b)) / union if union else float('nan')


def brier(pred_prob: NDArray[np.floating], observed_percent: NDArray[np.integer], threshold: float = 0.5) -> float:
    """Mean squared error between predicted probability and the observed outcome (0/1), over observed cells.

    The outcome of a cell is 1 when its percent / 100 >= threshold. NaN when no cell is observed.
    """
    p, o = _known_pairs(pred_prob, observed_percent)
    if p.size == 0:
        return float('nan')
    return float(np.mean((p - (o >= threshold)) ** 2))
