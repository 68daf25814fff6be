"""Platoon scenario: a validated, frozen description loaded from YAML.

A scenario file (``config/scenarios/*.yaml``) describes the road, the platoon,
other traffic, hazards, each platoon vehicle's sensors, clock and localisation
error, the ground-truth outputs, the duration and the seed. Every key is
checked: a bad value raises :class:`ConfigError` naming the file, the key path
(``platoon.vehicles[2].sensors.lidar.rate_hz``), the value and what is
expected; unknown keys are rejected.

Geometry conventions
--------------------
* The road starts at (``road.x_m``, ``road.y_m``) in ``map`` heading
  ``road.heading_deg`` (counter-clockwise from +x); by default at the origin
  heading +x. With ``curvature_per_m`` = 0 it is straight (and with the default
  start, ``map`` x is the distance along the road). Lateral position ``d`` is to
  the left; lane ``i`` is centred at ``d = i·lane_width`` (lane 0 is the
  rightmost lane, centred on the road's start line).
* ``base_link`` of a vehicle is at the rear axle, on the ground, on the
  vehicle's centre line; x forward, z up. Its box runs from
  ``−rear_overhang_m`` to ``length_m − rear_overhang_m`` along x.
* Vehicle positions (``x_m``) are the road coordinate of base_link; a hazard's
  ``x_m`` is the road coordinate of its rear face (what a platoon meets).
* Sensor mounts are ``xyz_m`` and ``rpy_deg`` (roll, pitch, yaw, static axes)
  of the sensor relative to base_link. For the camera the mount is the camera
  BODY (x forward, z up); the simulator composes the REP-103 optical rotation
  (rpy = (−90°, 0, −90°)) to get ``<v>/camera_optical`` (z forward, x right,
  y down). :func:`cooperative_fusion.sim.world.sensor_extrinsics` returns the
  composed numbers.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any


import numpy as np
from numpy.typing import NDArray

from ..core.config_files import read_yaml
from ..core.errors import ConfigError
from ..core.twin.idm import IdmParams
from .clocks import ClockConfig
from .dynamics import DynamicsConfig


class VehicleType(str, Enum):
    CAR = 'car'
    TRUCK = 'truck'


class HazardKind(str, Enum):
    STOPPED_CAR = 'stopped_car'
    DEBRIS = 'debris'


class GridWindowMode(str, Enum):
    FOLLOW = 'follow'   # centred on the platoon centroid plus center_ahead_m, moves with it
    FIXED = 'fixed'     # centred on (center_x_m, center_y_m)


#: Default box dimensions (length, width, height, rear overhang), metres.
DEFAULT_DIMENSIONS: dict[str, tuple[float, float, float, float]] = {
    'car': (4.5, 1.8, 1.5, 1.0),
    'truck': (12.0, 2.5, 3.8, 2.5),
    'stopped_car': (4.5, 1.8, 1.5, 1.0),
    'debris': (0.6, 0.5, 0.2, 0.3),
    'roadside': (0.4, 0.4, 1.0, 0.2),
}


@dataclass(frozen=True)
class Dimensions:
    length_m: float
    width_m: float
    height_m: float
    rear_overhang_m: float

    @property
    def front_m(self) -> float:
        """Distance from base_link to the front face, metres."""
        return self.length_m - self.rear_overhang_m


@dataclass(frozen=True)
class MountPose:
    """Sensor pose relative to base_link: xyz_m (3,) metres, rpy_deg (3,) degrees (static xyz axes)."""

    xyz_m: tuple[float, float, float]
    rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class LidarConfig:
    """Rotating lidar: ``beams`` rows evenly between the elevation limits, one column per
    ``azimuth_resolution_deg`` over 360°, swept once per 1/rate_hz starting behind (−180°)."""

    mount: MountPose
    enabled: bool = True
    rate_hz: float = 10.0
    beams: int = 32
    elevation_min_deg: float = -15.0
    elevation_max_deg: float = 9.0
    azimuth_resolution_deg: float = 0.6
    range_min_m: float = 0.5
    range_max_m: float = 100.0
    range_noise_m: float = 0.02
    dropout_prob: float = 0.02


@dataclass(frozen=True)
class RadarConfig:
    """Automotive radar: a fan of probe rays (``ray_azimuth_step_deg`` × 3 elevations) over the
    FOV; hits on objects become detections (ground returns are suppressed)."""

    mount: MountPose
    enabled: bool = True
    rate_hz: float = 20.0
    fov_azimuth_deg: float = 90.0
    fov_elevation_deg: float = 6.0
    ray_azimuth_step_deg: float = 0.5
    range_max_m: float = 150.0
    range_noise_m: float = 0.15
    azimuth_noise_deg: float = 0.3
    velocity_noise_mps: float = 0.1
    detection_prob: float = 0.9
    false_alarm_rate: float = 2.0        # mean clutter detections per scan (Poisson)


@dataclass(frozen=True)
class CameraConfig:
    """Depth camera (pinhole, square pixels). Depth is along the optical axis (z-depth)."""

    mount: MountPose
    enabled: bool = True
    rate_hz: float = 15.0
    width: int = 160
    height: int = 120
    hfov_deg: float = 90.0
    range_max_m: float = 60.0
    depth_noise_m: float = 0.05
    dropout_prob: float = 0.01


@dataclass(frozen=True)
class SensorsConfig:
    lidar: LidarConfig
    radar: RadarConfig
    camera: CameraConfig


@dataclass(frozen=True)
class LocalizationConfig:
    """Odometry error: a constant bias (map frame) plus white Gaussian noise per sample."""

    rate_hz: float = 50.0
    bias_x_m: float = 0.0
    bias_y_m: float = 0.0
    bias_yaw_deg: float = 0.0
    noise_xy_m: float = 0.05
    noise_yaw_deg: float = 0.1
    speed_noise_mps: float = 0.05


@dataclass(frozen=True)
class PlatoonVehicle:
    id: str
    type: VehicleType
    dimensions: Dimensions
    gap_m: float                       # bumper-to-bumper gap to the predecessor at t = 0 (0 for the leader)
    sensors: SensorsConfig
    clock: ClockConfig
    localization: LocalizationConfig
    # A follower's scripted (t_s, v_mps) profile, piecewise linear, instead of the IDM (None: IDM).
    speed_profile: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Platoon:
    lane: int
    x_m: float                                       # leader base_link road coordinate at t = 0
    speed_profile: tuple[tuple[float, float], ...]   # leader (t_s, v_mps), piecewise linear, held at the ends
    idm: IdmParams
    vehicles: tuple[PlatoonVehicle, ...]


@dataclass(frozen=True)
class LaneChange:
    t_s: float
    to_lane: int
    duration_s: float = 3.0


@dataclass(frozen=True)
class TrafficVehicle:
    id: str
    type: VehicleType
    dimensions: Dimensions
    lane: int
    x_m: float
    speed_mps: float
    lane_change: LaneChange | None = None


@dataclass(frozen=True)
class Hazard:
    id: str
    kind: HazardKind
    dimensions: Dimensions
    lane: int
    x_m: float             # road coordinate of the rear face
    lateral_offset_m: float = 0.0


@dataclass(frozen=True)
class RoadsideRow:
    """A row of static boxes beside the road (guard-rail posts, barrier segments): landmarks, not hazards.

    side : 'right' (below lane 0) or 'left' (beyond the last lane); offset_m : gap between the road
    edge and the box's near face; boxes every spacing_m from x_start_m (rear face) up to x_end_m.
    """

    id: str
    side: str
    offset_m: float
    x_start_m: float
    x_end_m: float
    spacing_m: float
    dimensions: Dimensions

    def boxes(self, road: 'Road') -> list[tuple[str, float, float]]:
        """(id, road s of the box centre, road d of the box centre) of every box of the row."""
        half_w = self.dimensions.width_m / 2
        if self.side == 'right':
            d = -road.lane_width_m / 2 - self.offset_m - half_w
        else:
            d = (road.lane_count - 0.5) * road.lane_width_m + self.offset_m + half_w
        n = int(math.floor((self.x_end_m - self.x_start_m) / self.spacing_m + 1e-9)) + 1
        return [(f'{self.id}_{k}', self.x_start_m + k * self.spacing_m + self.dimensions.length_m / 2, d)
                for k in range(n)]


@dataclass(frozen=True)
class Road:
    """Lanes and centre line: starts at (x_m, y_m) in map heading heading_deg; curvature > 0 turns left."""

    lane_width_m: float = 3.5
    lane_count: int = 3
    curvature_per_m: float = 0.0
    heading_deg: float = 0.0
    x_m: float = 0.0
    y_m: float = 0.0

    @property
    def at_origin_along_x(self) -> bool:
        """True for the default start: at the map origin, heading +x."""
        return self.heading_deg == 0.0 and self.x_m == 0.0 and self.y_m == 0.0

    def to_map(self, s: NDArray[np.floating], d: NDArray[np.floating]
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Road coordinates (s along, d left; metres) to map ``(x, y, heading)`` of the road there (rad)."""
        s = np.asarray(s, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        kappa = self.curvature_per_m
        if abs(kappa) < 1e-12:
            x, y, th = s.copy(), d.copy(), np.zeros_like(s)
        else:
            th = kappa * s
            x = np.sin(th) / kappa - d * np.sin(th)
            y = (1.0 - np.cos(th)) / kappa + d * np.cos(th)
        if self.at_origin_along_x:
            return x, y, th
        h = math.radians(self.heading_deg)
        c, sn = math.cos(h), math.sin(h)
        return self.x_m + c * x - sn * y, self.y_m + sn * x + c * y, th + h

    def to_road(self, x: NDArray[np.floating], y: NDArray[np.floating]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Map points to road coordinates ``(s, d)``, metres: the inverse of :meth:`to_map` (on a curve,
        within half a turn of the start)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if not self.at_origin_along_x:
            h = math.radians(self.heading_deg)
            c, sn = math.cos(h), math.sin(h)
            x, y = c * (x - self.x_m) + sn * (y - self.y_m), -sn * (x - self.x_m) + c * (y - self.y_m)
        kappa = self.curvature_per_m
        if abs(kappa) < 1e-12:
            return x.copy(), y.copy()
        # About the circle's centre (0, 1/kappa): x = r sin(th), y - 1/kappa = -r cos(th), r = 1/kappa - d.
        sign = 1.0 if kappa > 0 else -1.0
        th = np.arctan2(sign * x, -sign * (y - 1.0 / kappa))
        r = sign * np.hypot(x, y - 1.0 / kappa)
        return th / kappa, 1.0 / kappa - r


@dataclass(frozen=True)
class TruthConfig:
    grid_resolution_m: float = 0.2
    grid_rate_hz: float = 10.0
    grid_mode: GridWindowMode = GridWindowMode.FOLLOW
    grid_size_x_m: float = 240.0
    grid_size_y_m: float = 24.0
    grid_center_ahead_m: float = 40.0     # follow mode: window centre ahead of the platoon centroid
    grid_center_x_m: float = 0.0          # fixed mode
    grid_center_y_m: float = 3.5
    odom_rate_hz: float = 50.0
    objects_rate_hz: float = 10.0


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_s: float
    seed: int
    start_time_s: float
    road: Road
    platoon: Platoon
    traffic: tuple[TrafficVehicle, ...]
    hazards: tuple[Hazard, ...]
    truth: TruthConfig
    source: str = ''
    roadside: tuple[RoadsideRow, ...] = ()
    dynamics: DynamicsConfig = DynamicsConfig()     # closed loop only: the platoon vehicles' model

    @property
    def vehicle_ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.platoon.vehicles)


# ----------------------------------------------------------------------------------------------
# Loading and validation


class _Ctx:
    """Carries the file name for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f'{self.source}: {path}: got {value!r}, expected {expected}')


def _mapping(ctx: _Ctx, raw: Any, path: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(raw, dict):
        raise ctx.fail(path or '<top level>', raw, 'a mapping')
    unknown = sorted(set(raw) - allowed)
    if unknown:
        where = f'{path}.{unknown[0]}' if path else str(unknown[0])
        raise ConfigError(f'{ctx.source}: {where}: unknown key; allowed keys at '
                          f'{path or "<top level>"}: {", ".join(sorted(allowed))}')
    missing = sorted(required - set(raw))
    if missing:
        where = f'{path}.{missing[0]}' if path else missing[0]
        raise ConfigError(f'{ctx.source}: {where}: missing required key')
    return raw


def _num(ctx: _Ctx, raw: dict, key: str, path: str, default: float | None = None, *, lo: float | None = None,
         hi: float | None = None, lo_open: bool = False, integer: bool = False) -> Any:
    full = f'{path}.{key}' if path else key
    if key not in raw:
        if default is None:
            raise ConfigError(f'{ctx.source}: {full}: missing required key')
        return default
    value = raw[key]
    kind = 'an integer' if integer else 'a number'
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        raise ctx.fail(full, value, f'{kind}')
    if lo is not None and (value <= lo if lo_open else value < lo) or hi is not None and value > hi:
        lo_txt = '' if lo is None else (f'> {lo}' if lo_open else f'>= {lo}')
        hi_txt = '' if hi is None else f'<= {hi}'
        raise ctx.fail(full, value, f'{kind} {" and ".join(t for t in (lo_txt, hi_txt) if t)}')
    return int(value) if integer else float(value)


def _bool(ctx: _Ctx, raw: dict, key: str, path: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ctx.fail(f'{path}.{key}', value, 'true or false')
    return value


def _str(ctx: _Ctx, raw: dict, key: str, path: str, default: str | None = None) -> str:
    full = f'{path}.{key}' if path else key
    if key not in raw:
        if default is None:
            raise ConfigError(f'{ctx.source}: {full}: missing required key')
        return default
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise ctx.fail(full, value, 'a non-empty string')
    return value


def _enum(ctx: _Ctx, raw: dict, key: str, path: str, enum: type[Enum], default: Enum | None = None) -> Any:
    full = f'{path}.{key}' if path else key
    if key not in raw and default is not None:
        return default
    value = raw.get(key)
    try:
        return enum(value)
    except ValueError:
        raise ctx.fail(full, value, 'one of ' + ', '.join(repr(m.value) for m in enum)) from None


def _vector(ctx: _Ctx, raw: dict, key: str, path: str, n: int, default: tuple | None = None) -> tuple[float, ...]:
    full = f'{path}.{key}'
    if key not in raw:
        if default is None:
            raise ConfigError(f'{ctx.source}: {full}: missing required key')
        return default
    value = raw[key]
    if (not isinstance(value, (list, tuple)) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ctx.fail(full, value, f'a list of {n} finite numbers')
    return tuple(float(v) for v in value)


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _dimensions(ctx: _Ctx, raw: Any, path: str, kind: str) -> Dimensions:
    length, width, height, rear = DEFAULT_DIMENSIONS[kind]
    if raw is None:
        return Dimensions(length, width, height, rear)
    raw = _mapping(ctx, raw, path, {'length_m', 'width_m', 'height_m', 'rear_overhang_m'})
    dims = Dimensions(_num(ctx, raw, 'length_m', path, length, lo=0, lo_open=True),
                      _num(ctx, raw, 'width_m', path, width, lo=0, lo_open=True),
                      _num(ctx, raw, 'height_m', path, height, lo=0, lo_open=True),
                      _num(ctx, raw, 'rear_overhang_m', path, rear, lo=0))
    if dims.rear_overhang_m >= dims.length_m:
        raise ctx.fail(f'{path}.rear_overhang_m', dims.rear_overhang_m, f'less than length_m = {dims.length_m}')
    return dims


def _mount(ctx: _Ctx, raw: Any, path: str) -> MountPose:
    raw = _mapping(ctx, raw, path, {'xyz_m', 'rpy_deg'}, {'xyz_m'})
    return MountPose(_vector(ctx, raw, 'xyz_m', path, 3), _vector(ctx, raw, 'rpy_deg', path, 3, (0.0, 0.0, 0.0)))


def _prob(ctx, raw, key, path, default):
    return _num(ctx, raw, key, path, default, lo=0.0, hi=1.0)


def _lidar(ctx: _Ctx, raw: Any, path: str) -> LidarConfig:
    d = LidarConfig(mount=MountPose((0.0, 0.0, 0.0)))
    raw = _mapping(ctx, raw, path, {'mount', 'enabled', 'rate_hz', 'beams', 'elevation_min_deg', 'elevation_max_deg',
                                    'azimuth_resolution_deg', 'range_min_m', 'range_max_m', 'range_noise_m',
                                    'dropout_prob'}, {'mount'})
    cfg = LidarConfig(
        mount=_mount(ctx, raw['mount'], f'{path}.mount'),
        enabled=_bool(ctx, raw, 'enabled', path, d.enabled),
        rate_hz=_num(ctx, raw, 'rate_hz', path, d.rate_hz, lo=0, lo_open=True, hi=100.0),
        beams=_num(ctx, raw, 'beams', path, d.beams, lo=1, hi=256, integer=True),
        elevation_min_deg=_num(ctx, raw, 'elevation_min_deg', path, d.elevation_min_deg, lo=-89.0, hi=89.0),
        elevation_max_deg=_num(ctx, raw, 'elevation_max_deg', path, d.elevation_max_deg, lo=-89.0, hi=89.0),
        azimuth_resolution_deg=_num(ctx, raw, 'azimuth_resolution_deg', path, d.azimuth_resolution_deg,
                                    lo=0.05, hi=10.0),
        range_min_m=_num(ctx, raw, 'range_min_m', path, d.range_min_m, lo=0.0),
        range_max_m=_num(ctx, raw, 'range_max_m', path, d.range_max_m, lo=0, lo_open=True),
        range_noise_m=_num(ctx, raw, 'range_noise_m', path, d.range_noise_m, lo=0.0),
        dropout_prob=_prob(ctx, raw, 'dropout_prob', path, d.dropout_prob))
    if cfg.elevation_max_deg < cfg.elevation_min_deg:
        raise ctx.fail(f'{path}.elevation_max_deg', cfg.elevation_max_deg,
                       f'>= elevation_min_deg = {cfg.elevation_min_deg}')
    if cfg.range_max_m <= cfg.range_min_m:
        raise ctx.fail(f'{path}.range_max_m', cfg.range_max_m, f'> range_min_m = {cfg.range_min_m}')
    return cfg


def _radar(ctx: _Ctx, raw: Any, path: str) -> RadarConfig:
    d = RadarConfig(mount=MountPose((0.0, 0.0, 0.0)))
    raw = _mapping(ctx, raw, path, {'mount', 'enabled', 'rate_hz', 'fov_azimuth_deg', 'fov_elevation_deg',
                                    'ray_azimuth_step_deg', 'range_max_m', 'range_noise_m', 'azimuth_noise_deg',
                                    'velocity_noise_mps', 'detection_prob', 'false_alarm_rate'}, {'mount'})
    return RadarConfig(
        mount=_mount(ctx, raw['mount'], f'{path}.mount'),
        enabled=_bool(ctx, raw, 'enabled', path, d.enabled),
        rate_hz=_num(ctx, raw, 'rate_hz', path, d.rate_hz, lo=0, lo_open=True, hi=100.0),
        fov_azimuth_deg=_num(ctx, raw, 'fov_azimuth_deg', path, d.fov_azimuth_deg, lo=0, lo_open=True, hi=360.0),
        fov_elevation_deg=_num(ctx, raw, 'fov_elevation_deg', path, d.fov_elevation_deg, lo=0, hi=90.0),
        ray_azimuth_step_deg=_num(ctx, raw, 'ray_azimuth_step_deg', path, d.ray_azimuth_step_deg, lo=0.05, hi=10.0),
        range_max_m=_num(ctx, raw, 'range_max_m', path, d.range_max_m, lo=0, lo_open=True),
        range_noise_m=_num(ctx, raw, 'range_noise_m', path, d.range_noise_m, lo=0.0),
        azimuth_noise_deg=_num(ctx, raw, 'azimuth_noise_deg', path, d.azimuth_noise_deg, lo=0.0),
        velocity_noise_mps=_num(ctx, raw, 'velocity_noise_mps', path, d.velocity_noise_mps, lo=0.0),
        detection_prob=_prob(ctx, raw, 'detection_prob', path, d.detection_prob),
        false_alarm_rate=_num(ctx, raw, 'false_alarm_rate', path, d.false_alarm_rate, lo=0.0))


def _camera(ctx: _Ctx, raw: Any, path: str) -> CameraConfig:
    d = CameraConfig(mount=MountPose((0.0, 0.0, 0.0)))
    raw = _mapping(ctx, raw, path, {'mount', 'enabled', 'rate_hz', 'width', 'height', 'hfov_deg', 'range_max_m',
                                    'depth_noise_m', 'dropout_prob'}, {'mount'})
    return CameraConfig(
        mount=_mount(ctx, raw['mount'], f'{path}.mount'),
        enabled=_bool(ctx, raw, 'enabled', path, d.enabled),
        rate_hz=_num(ctx, raw, 'rate_hz', path, d.rate_hz, lo=0, lo_open=True, hi=100.0),
        width=_num(ctx, raw, 'width', path, d.width, lo=2, hi=4096, integer=True),
        height=_num(ctx, raw, 'height', path, d.height, lo=2, hi=4096, integer=True),
        hfov_deg=_num(ctx, raw, 'hfov_deg', path, d.hfov_deg, lo=1.0, hi=170.0),
        range_max_m=_num(ctx, raw, 'range_max_m', path, d.range_max_m, lo=0, lo_open=True),
        depth_noise_m=_num(ctx, raw, 'depth_noise_m', path, d.depth_noise_m, lo=0.0),
        dropout_prob=_prob(ctx, raw, 'dropout_prob', path, d.dropout_prob))


def _sensors(ctx: _Ctx, raw: Any, path: str) -> SensorsConfig:
    raw = _mapping(ctx, raw, path, {'lidar', 'radar', 'camera'}, {'lidar', 'radar', 'camera'})
    return SensorsConfig(_lidar(ctx, raw['lidar'], f'{path}.lidar'), _radar(ctx, raw['radar'], f'{path}.radar'),
                         _camera(ctx, raw['camera'], f'{path}.camera'))


def _clock(ctx: _Ctx, raw: Any, path: str) -> ClockConfig:
    raw = _mapping(ctx, raw or {}, path, {'offset_ms', 'drift_ppm', 'jitter_ms'})
    return ClockConfig(_num(ctx, raw, 'offset_ms', path, 0.0), _num(ctx, raw, 'drift_ppm', path, 0.0, lo=-1e4, hi=1e4),
                       _num(ctx, raw, 'jitter_ms', path, 0.0, lo=0.0))


def _localization(ctx: _Ctx, raw: Any, path: str) -> LocalizationConfig:
    d = LocalizationConfig()
    raw = _mapping(ctx, raw or {}, path, {'rate_hz', 'bias_x_m', 'bias_y_m', 'bias_yaw_deg', 'noise_xy_m',
                                          'noise_yaw_deg', 'speed_noise_mps'})
    return LocalizationConfig(
        rate_hz=_num(ctx, raw, 'rate_hz', path, d.rate_hz, lo=0, lo_open=True, hi=1000.0),
        bias_x_m=_num(ctx, raw, 'bias_x_m', path, 0.0), bias_y_m=_num(ctx, raw, 'bias_y_m', path, 0.0),
        bias_yaw_deg=_num(ctx, raw, 'bias_yaw_deg', path, 0.0, lo=-180.0, hi=180.0),
        noise_xy_m=_num(ctx, raw, 'noise_xy_m', path, d.noise_xy_m, lo=0.0),
        noise_yaw_deg=_num(ctx, raw, 'noise_yaw_deg', path, d.noise_yaw_deg, lo=0.0),
        speed_noise_mps=_num(ctx, raw, 'speed_noise_mps', path, d.speed_noise_mps, lo=0.0))


def _lane(ctx: _Ctx, raw: dict, path: str, road: Road, key: str = 'lane') -> int:
    return _num(ctx, raw, key, path, None, lo=0, hi=road.lane_count - 1, integer=True)


def _speed_profile(ctx: _Ctx, profile_raw: Any, path: str) -> tuple[tuple[float, float], ...]:
    """A non-empty list of [t_s, v_mps] pairs, times increasing, speeds >= 0."""
    if (not isinstance(profile_raw, list) or not profile_raw
            or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float))
                                                                  and not isinstance(v, bool) for v in p)
                       for p in profile_raw)):
        raise ctx.fail(path, profile_raw, 'a non-empty list of [t_s, v_mps] pairs')
    profile = tuple((float(t), float(v)) for t, v in profile_raw)
    for i, (t, v) in enumerate(profile):
        if v < 0 or not math.isfinite(v):
            raise ctx.fail(f'{path}[{i}]', [t, v], 'a speed >= 0 m/s')
        if i and t <= profile[i - 1][0]:
            raise ctx.fail(f'{path}[{i}]', [t, v], f'a time > {profile[i - 1][0]} s (increasing)')
    return profile


def _platoon(ctx: _Ctx, raw: Any, road: Road) -> Platoon:
    path = 'platoon'
    raw = _mapping(ctx, raw, path, {'lane', 'x_m', 'speed_profile', 'idm', 'sensor_defaults', 'vehicles'},
                   {'lane', 'speed_profile', 'vehicles'})
    lane = _lane(ctx, raw, path, road)
    profile = _speed_profile(ctx, raw['speed_profile'], f'{path}.speed_profile')
    idm_raw = _mapping(ctx, raw.get('idm') or {}, f'{path}.idm', set(IdmParams.__dataclass_fields__))
    d = IdmParams()
    try:
        idm = IdmParams(**{k: _num(ctx, idm_raw, k, f'{path}.idm', getattr(d, k), lo=0.0) for k in
                           IdmParams.__dataclass_fields__})
    except ConfigError as exc:
        raise ConfigError(f'{ctx.source}: {path}.idm: {exc}') from exc
    defaults = raw.get('sensor_defaults') or {}
    if not isinstance(defaults, dict):
        raise ctx.fail(f'{path}.sensor_defaults', defaults, 'a mapping')
    vehicles_raw = raw['vehicles']
    if not isinstance(vehicles_raw, list) or not vehicles_raw:
        raise ctx.fail(f'{path}.vehicles', vehicles_raw, 'a non-empty list')
    vehicles = []
    seen: set[str] = set()
    for i, vr in enumerate(vehicles_raw):
        vp = f'{path}.vehicles[{i}]'
        vr = _mapping(ctx, vr, vp, {'id', 'type', 'dimensions', 'gap_m', 'sensors', 'clock', 'localization',
                                    'speed_profile'}, {'id', 'type'})
        if i == 0 and 'speed_profile' in vr:
            raise ctx.fail(f'{vp}.speed_profile', vr['speed_profile'],
                           'no per-vehicle profile for the leader (it drives platoon.speed_profile)')
        own = _speed_profile(ctx, vr['speed_profile'], f'{vp}.speed_profile') if 'speed_profile' in vr else None
        vid = _str(ctx, vr, 'id', vp)
        if not vid.replace('_', '').isalnum() or vid in seen:
            raise ctx.fail(f'{vp}.id', vid, 'a unique name of letters, digits and _ (it becomes a ROS namespace)')
        seen.add(vid)
        vtype = _enum(ctx, vr, 'type', vp, VehicleType)
        sensors_raw = vr.get('sensors') or {}
        if not isinstance(sensors_raw, dict):
            raise ctx.fail(f'{vp}.sensors', sensors_raw, 'a mapping')
        type_defaults = defaults.get(vtype.value, {}) if isinstance(defaults.get(vtype.value), dict) else None
        if type_defaults is None:
            raise ctx.fail(f'{path}.sensor_defaults.{vtype.value}', defaults.get(vtype.value), 'a mapping')
        gap = 0.0 if i == 0 else _num(ctx, vr, 'gap_m', vp, None, lo=0, lo_open=True)
        vehicles.append(PlatoonVehicle(
            id=vid, type=vtype, dimensions=_dimensions(ctx, vr.get('dimensions'), f'{vp}.dimensions', vtype.value),
            gap_m=gap, sensors=_sensors(ctx, _deep_merge(type_defaults, sensors_raw), f'{vp}.sensors'),
            clock=_clock(ctx, vr.get('clock'), f'{vp}.clock'),
            localization=_localization(ctx, vr.get('localization'), f'{vp}.localization'), speed_profile=own))
    for key in defaults:
        if key not in {t.value for t in VehicleType}:
            raise ConfigError(f'{ctx.source}: {path}.sensor_defaults.{key}: unknown key; allowed keys at '
                              f'{path}.sensor_defaults: car, truck')
    return Platoon(lane=lane, x_m=_num(ctx, raw, 'x_m', path, 0.0), speed_profile=profile, idm=idm,
                   vehicles=tuple(vehicles))


def _traffic(ctx: _Ctx, raw: Any, road: Road) -> tuple[TrafficVehicle, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ctx.fail('traffic', raw, 'a list')
    out = []
    for i, tr in enumerate(raw):
        p = f'traffic[{i}]'
        tr = _mapping(ctx, tr, p, {'id', 'type', 'dimensions', 'lane', 'x_m', 'speed_mps', 'lane_change'},
                      {'id', 'type', 'lane', 'x_m', 'speed_mps'})
        vtype = _enum(ctx, tr, 'type', p, VehicleType)
        change = None
        if tr.get('lane_change') is not None:
            lp = f'{p}.lane_change'
            lc = _mapping(ctx, tr['lane_change'], lp, {'t_s', 'to_lane', 'duration_s'}, {'t_s', 'to_lane'})
            change = LaneChange(_num(ctx, lc, 't_s', lp, None, lo=0.0), _lane(ctx, lc, lp, road, 'to_lane'),
                                _num(ctx, lc, 'duration_s', lp, 3.0, lo=0, lo_open=True))
        out.append(TrafficVehicle(
            id=_str(ctx, tr, 'id', p), type=vtype,
            dimensions=_dimensions(ctx, tr.get('dimensions'), f'{p}.dimensions', vtype.value),
            lane=_lane(ctx, tr, p, road), x_m=_num(ctx, tr, 'x_m', p, None),
            speed_mps=_num(ctx, tr, 'speed_mps', p, None, lo=0.0), lane_change=change))
    return tuple(out)


def _hazards(ctx: _Ctx, raw: Any, road: Road) -> tuple[Hazard, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ctx.fail('hazards', raw, 'a list')
    out = []
    for i, hr in enumerate(raw):
        p = f'hazards[{i}]'
        hr = _mapping(ctx, hr, p, {'id', 'kind', 'dimensions', 'lane', 'x_m', 'lateral_offset_m'},
                      {'id', 'kind', 'lane', 'x_m'})
        kind = _enum(ctx, hr, 'kind', p, HazardKind)
        out.append(Hazard(id=_str(ctx, hr, 'id', p), kind=kind,
                          dimensions=_dimensions(ctx, hr.get('dimensions'), f'{p}.dimensions', kind.value),
                          lane=_lane(ctx, hr, p, road), x_m=_num(ctx, hr, 'x_m', p, None),
                          lateral_offset_m=_num(ctx, hr, 'lateral_offset_m', p, 0.0)))
    return tuple(out)


def _roadside(ctx: _Ctx, raw: Any) -> tuple[RoadsideRow, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ctx.fail('roadside', raw, 'a list')
    out = []
    for i, rr in enumerate(raw):
        p = f'roadside[{i}]'
        rr = _mapping(ctx, rr, p, {'id', 'side', 'offset_m', 'x_start_m', 'x_end_m', 'spacing_m', 'dimensions'},
                      {'id', 'side', 'x_start_m', 'x_end_m', 'spacing_m'})
        side = _str(ctx, rr, 'side', p)
        if side not in ('left', 'right'):
            raise ctx.fail(f'{p}.side', side, "'left' or 'right'")
        x0 = _num(ctx, rr, 'x_start_m', p, None)
        row = RoadsideRow(id=_str(ctx, rr, 'id', p), side=side, offset_m=_num(ctx, rr, 'offset_m', p, 0.5, lo=0.0),
                          x_start_m=x0, x_end_m=_num(ctx, rr, 'x_end_m', p, None, lo=x0),
                          spacing_m=_num(ctx, rr, 'spacing_m', p, None, lo=0.5),
                          dimensions=_dimensions(ctx, rr.get('dimensions'), f'{p}.dimensions', 'roadside'))
        if len(row.boxes(Road())) > 10_000:
            raise ctx.fail(f'{p}.spacing_m', row.spacing_m, 'at most 10000 boxes per row')
        out.append(row)
    return tuple(out)


def _truth(ctx: _Ctx, raw: Any) -> TruthConfig:
    d = TruthConfig()
    p = 'truth'
    raw = _mapping(ctx, raw or {}, p, set(TruthConfig.__dataclass_fields__))
    num = {k: _num(ctx, raw, k, p, getattr(d, k), lo=0, lo_open=True)
           for k in ('grid_resolution_m', 'grid_rate_hz', 'grid_size_x_m', 'grid_size_y_m', 'odom_rate_hz',
                     'objects_rate_hz')}
    return TruthConfig(grid_mode=_enum(ctx, raw, 'grid_mode', p, GridWindowMode, d.grid_mode),
                       grid_center_ahead_m=_num(ctx, raw, 'grid_center_ahead_m', p, d.grid_center_ahead_m),
                       grid_center_x_m=_num(ctx, raw, 'grid_center_x_m', p, d.grid_center_x_m),
                       grid_center_y_m=_num(ctx, raw, 'grid_center_y_m', p, d.grid_center_y_m), **num)


def _dynamics(ctx: _Ctx, raw: Any) -> DynamicsConfig:
    d = DynamicsConfig()
    p = 'vehicle_dynamics'
    raw = _mapping(ctx, raw or {}, p, set(DynamicsConfig.__dataclass_fields__))
    positive = {k: _num(ctx, raw, k, p, getattr(d, k), lo=0, lo_open=True)
                for k in ('max_speed_mps', 'max_accel_mps2', 'max_decel_mps2', 'max_jerk_mps3', 'speed_gain_per_s')}
    return DynamicsConfig(actuation_delay_s=_num(ctx, raw, 'actuation_delay_s', p, d.actuation_delay_s, lo=0.0, hi=5.0),
                          lag_time_constant_s=_num(ctx, raw, 'lag_time_constant_s', p, d.lag_time_constant_s,
                                                   lo=0.0, hi=5.0),
                          command_hold_s=_num(ctx, raw, 'command_hold_s', p, d.command_hold_s, lo=0.0, hi=60.0),
                          **positive)


def scenario_from_dict(raw: Any, source: str = '<dict>') -> Scenario:
    """Validate a parsed scenario mapping; ``source`` names it in error messages."""
    ctx = _Ctx(source)
    raw = _mapping(ctx, raw, '', {'name', 'duration_s', 'seed', 'start_time_s', 'road', 'platoon', 'traffic',
                                  'hazards', 'roadside', 'truth', 'vehicle_dynamics'},
                   {'name', 'duration_s', 'road', 'platoon'})
    road_raw = _mapping(ctx, raw['road'], 'road', {'lane_width_m', 'lane_count', 'curvature_per_m', 'heading_deg',
                                                   'x_m', 'y_m'})
    d = Road()
    road = Road(_num(ctx, road_raw, 'lane_width_m', 'road', d.lane_width_m, lo=1.0, hi=10.0),
                _num(ctx, road_raw, 'lane_count', 'road', d.lane_count, lo=1, hi=10, integer=True),
                _num(ctx, road_raw, 'curvature_per_m', 'road', d.curvature_per_m, lo=-0.01, hi=0.01),
                _num(ctx, road_raw, 'heading_deg', 'road', d.heading_deg, lo=-180.0, hi=180.0),
                _num(ctx, road_raw, 'x_m', 'road', d.x_m, lo=-1e6, hi=1e6),
                _num(ctx, road_raw, 'y_m', 'road', d.y_m, lo=-1e6, hi=1e6))
    platoon = _platoon(ctx, raw['platoon'], road)
    traffic = _traffic(ctx, raw.get('traffic'), road)
    hazards = _hazards(ctx, raw.get('hazards'), road)
    roadside = _roadside(ctx, raw.get('roadside'))
    ids = [v.id for v in platoon.vehicles] + [t.id for t in traffic] + [h.id for h in hazards] \
        + [b[0] for row in roadside for b in row.boxes(road)]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f'{source}: object id {dup[0]!r} is used more than once; ids must be unique')
    return Scenario(name=_str(ctx, raw, 'name', ''),
                    duration_s=_num(ctx, raw, 'duration_s', '', None, lo=0, lo_open=True),
                    seed=_num(ctx, raw, 'seed', '', 0, lo=0, integer=True),
                    start_time_s=_num(ctx, raw, 'start_time_s', '', 0.0, lo=0.0),
                    road=road, platoon=platoon, traffic=traffic, hazards=hazards, truth=_truth(ctx, raw.get('truth')),
                    source=source, roadside=roadside, dynamics=_dynamics(ctx, raw.get('vehicle_dynamics')))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file. Raises ConfigError naming the file and key path."""
    return scenario_from_dict(read_yaml(path, 'scenario file'), str(path))


def scenario_platoon_config(path: str | Path) -> Path | None:
    """The bringup config a scenario file ships for its own platoon (ids, bodies, extrinsics):
    ``<dir>/<name>/platoon.yaml`` next to ``<dir>/<name>.yaml``; None when it has none (the default
    platoon, config/platoon.yaml, fits it)."""
    own = Path(path).with_suffix('') / 'platoon.yaml'
    return own if own.is_file() else None
