"""One vehicle's perception cycle: a synchronised sensor set -> this cycle's evidence grid.

:class:`~cooperative_fusion.core.vehicle.vehicle_core.VehicleCore` hands in the members of one
:class:`~cooperative_fusion.core.vehicle.sync.SyncSet` (converted to arrays) and its pose buffer;
:class:`VehiclePipeline` does the rest:

1. motion compensation: every sensor's points go to ``map`` with the pose at
   *that sensor's* stamp (``compensate``), or per point when the lidar cloud
   carries per-point time offsets and deskew is on (``deskew``);
2. ground split (``split_ground``): obstacle returns are hits, ground returns
   are the free-space end points;
3. inverse sensor models: lidar (polar sweep), radar (Gaussian spread of
   detections), depth camera (polar sweep inside its field of view);
4. the layers' sum (as ``combine`` adds them) and ``logodds_to_percent``: OccupancyGrid cells, round(100·p) of
   this cycle's evidence, -1 where there is none.

The grid window is axis-aligned in ``map`` and on the global lattice, either
rolling (centred ``forward_offset_m`` ahead of the vehicle at the set stamp) or
fixed. Radar targets are returned in ``map`` with the ego motion removed from
their radial velocity.

Stamps here are in the vehicle's clock (``*_vehicle_ns``): the pose buffer is
filled from the vehicle's own odometry, so both sides share that clock.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

from .. import se3
from .camera import backproject
from ..errors import ConfigError, FrameError
from .extrinsics import extrinsic_from_params
from ..grid import GridSpec, follow_yaw, logodds_to_percent
from .motion import compensate, deskew
from ..vehicle_defaults import LIDAR_EXTRINSIC, MOVING_AZIMUTH_SIGMA_DEG, MOVING_RANGE_SIGMA_M
from .sensor_models import (MOVING_MIN_SPEED_MPS, MOVING_RADIUS_M, EvidencePatch, GroundConfig, MovingReturns,
                            RadarNoise, SensorModel, camera_patch, default_camera_model, default_lidar_model,
                            default_radar_model, hits_to_stamp, lidar_patch, moving_returns, radar_patch,
                            split_ground)

__all__ = [
    'GridMode', 'WindowConfig', 'PipelineConfig', 'LidarScan', 'RadarScan', 'DepthFrame', 'CycleResult', 'VehiclePipeline',
    'RADAR_TARGET_DTYPE', 'radar_targets', 'window_spec', 'window_yaw',
]

#: Fields of the radar targets cloud published in ``map``.
RADAR_TARGET_DTYPE = np.dtype([('x', np.float32), ('y', np.float32), ('z', np.float32),
                               ('velocity', np.float32), ('rcs', np.float32)])

#: Stream names, as the sync and the parameters use them.
STREAMS = ('lidar', 'radar', 'camera')


class PoseLookup(Protocol):
    """What the pipeline needs of a pose buffer (core.vehicle.pose_buffer.PoseBuffer)."""

    def lookup(self, stamp_ns: int) -> NDArray[np.float64]: ...

    def lookup_many(self, stamps_ns: NDArray[np.int64]) -> NDArray[np.float64]: ...

    def velocity(self, stamp_ns: int) -> NDArray[np.float64]: ...

    def sensor_velocity(self, stamp_ns: int, sensor2base: NDArray[np.floating]) -> NDArray[np.float64]: ...


# ------------------------------------------------------------------- config ---

class GridMode(Enum):
    ROLLING = 'rolling'
    FIXED = 'fixed'


def _finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ConfigError(f'{name} must be a finite number, got {value!r}')


@dataclass(frozen=True)
class WindowConfig:
    """Where this cycle's evidence grid lies in ``map``.

    mode : GridMode (a string value such as ``'rolling'`` is converted)
    size_x_m, size_y_m : metres, extent along map x and y
    resolution_m : metres per cell
    forward_offset_m : metres; rolling mode centres the window this far ahead of
        base_link along the vehicle heading (a vehicle sees more ahead than behind)
    fixed_origin_x_m, fixed_origin_y_m : metres, lower-left corner in fixed mode;
        must lie on the lattice (whole multiples of the resolution)
    yaw_step_deg : rolling mode turns the window with the vehicle's heading (the road's) in steps
        of this many degrees, so the vehicles of a platoon on a straight road share one lattice;
        0 keeps it axis-aligned in map
    yaw_hysteresis_deg : the window's yaw changes only when the heading is more than half a step
        plus this from it (no flipping between two lattices every cycle)
    """

    mode: GridMode = GridMode.ROLLING
    size_x_m: float = 150.0
    size_y_m: float = 40.0
    resolution_m: float = 0.2
    forward_offset_m: float = 55.0
    fixed_origin_x_m: float = 0.0
    fixed_origin_y_m: float = 0.0
    yaw_step_deg: float = 0.0
    yaw_hysteresis_deg: float = 0.5

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, 'mode', GridMode(self.mode))
        except ValueError as exc:
            expected = ', '.join(m.value for m in GridMode)
            raise ConfigError(f'grid mode must be one of {expected}, got {self.mode!r}') from exc
        for name in ('size_x_m', 'size_y_m', 'resolution_m', 'forward_offset_m',
                     'fixed_origin_x_m', 'fixed_origin_y_m', 'yaw_step_deg', 'yaw_hysteresis_deg'):
            _finite(f'grid {name}', getattr(self, name))
        if not (0.0 <= self.yaw_step_deg <= 90.0 and self.yaw_hysteresis_deg >= 0.0):
            raise ConfigError(f'grid yaw_step_deg must be in [0, 90] and yaw_hysteresis_deg >= 0, got '
                              f'{self.yaw_step_deg!r} and {self.yaw_hysteresis_deg!r}')
        if not self.resolution_m > 0:
            raise ConfigError(f'grid resolution_m must be > 0, got {self.resolution_m!r}')
        for name in ('size_x_m', 'size_y_m'):
            if not getattr(self, name) >= self.resolution_m:
                raise ConfigError(
                    f'grid {name} must be at least one cell ({self.resolution_m} m), got {getattr(self, name)!r}')
        if self.mode is GridMode.FIXED:
            for name in ('fixed_origin_x_m', 'fixed_origin_y_m'):
                cells = getattr(self, name) / self.resolution_m
                if abs(cells - round(cells)) > 1e-6:
                    raise ConfigError(
                        f'grid {name} = {getattr(self, name)!r} is off the lattice: expected a whole '
                        f'multiple of the resolution {self.resolution_m} m')


def window_yaw(cfg: WindowConfig, base2map: NDArray[np.floating], current: float | None = None) -> float:
    """The rolling window's yaw (rad) for a vehicle at ``base2map`` (4×4): its heading in steps of
    ``yaw_step_deg`` with hysteresis about ``current`` (the previous window's yaw); 0 when the window
    does not turn (fixed mode, or a step of 0)."""
    if cfg.mode is GridMode.FIXED or cfg.yaw_step_deg == 0.0:
        return 0.0
    return follow_yaw(se3.yaw_of(base2map), math.radians(cfg.yaw_step_deg), current,
                      math.radians(cfg.yaw_hysteresis_deg))


def window_spec(cfg: WindowConfig, base2map: NDArray[np.floating], yaw: float = 0.0) -> GridSpec:
    """The evidence grid for a vehicle at ``base2map`` (4×4), its axes turned by ``yaw`` rad in rolling
    mode (see :func:`window_yaw`)."""
    if cfg.mode is GridMode.FIXED:
        return GridSpec(cfg.fixed_origin_x_m, cfg.fixed_origin_y_m, cfg.resolution_m,
                        max(1, int(round(cfg.size_x_m / cfg.resolution_m))),
                        max(1, int(round(cfg.size_y_m / cfg.resolution_m))))
    heading = se3.yaw_of(base2map)
    cx = float(base2map[0, 3]) + cfg.forward_offset_m * math.cos(heading)
    cy = float(base2map[1, 3]) + cfg.forward_offset_m * math.sin(heading)
    return GridSpec.centered(cx, cy, cfg.size_x_m, cfg.size_y_m, cfg.resolution_m, yaw)


def _extrinsic6(name: str, values: Sequence[float]) -> tuple[float, ...]:
    """Validated [x, y, z, roll, pitch, yaw] as a tuple (ConfigError from extrinsic_from_params)."""
    extrinsic_from_params(name, values)
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one evidence cycle needs besides the data.

    lidar_extrinsic, radar_extrinsic, camera_extrinsic : [x, y, z, roll, pitch, yaw]
        of the sensor frame (camera: the optical frame) in base_link, metres and radians
    lidar_model, radar_model, camera_model : inverse sensor models
    radar_sigma_m : metres, spread of a radar detection every way: of a standing one when the two next are 0, of
        a moving one when the two after them are 0
    radar_range_sigma_m, radar_azimuth_sigma_rad : metres and radians, the radar's 1-sigma range and azimuth
        error: a standing detection is spread by range sigma along the line of sight and range × azimuth sigma
        across it (:class:`.sensor_models.RadarNoise`); both 0 (the default): by ``radar_sigma_m`` every way
    radar_moving_range_sigma_m, radar_moving_azimuth_sigma_rad : the same for a moving detection (its own
        ellipse out to 1 % of the peak instead of the disc of ``radar_sigma_m``; default: the vehicle node's,
        :mod:`..vehicle_defaults`); both 0: the disc
    moving_min_speed_mps, moving_radius_m : hits within ``moving_radius_m`` of a radar return at least
        ``moving_min_speed_mps`` fast are moved with it to the output stamp (:func:`.sensor_models.hits_to_stamp`)
    camera_hfov_rad : radians, cap on the camera's horizontal field of view (the
        field of view from the intrinsics is used when narrower)
    camera_stride : take every n-th depth pixel along both image axes
    ground : ground removal for lidar and camera points
    deskew : per-point motion compensation when a lidar cloud carries time offsets
    enabled : streams that contribute evidence
    """

    window: WindowConfig = field(default_factory=WindowConfig)
    lidar_extrinsic: tuple[float, ...] = LIDAR_EXTRINSIC
    radar_extrinsic: tuple[float, ...] = (3.4, 0.0, 0.5, 0.0, 0.0, 0.0)
    camera_extrinsic: tuple[float, ...] = (1.8, 0.0, 1.4, -math.pi / 2, 0.0, -math.pi / 2)
    lidar_model: SensorModel = field(default_factory=default_lidar_model)
    radar_model: SensorModel = field(default_factory=default_radar_model)
    camera_model: SensorModel = field(default_factory=default_camera_model)
    radar_sigma_m: float = 0.5
    radar_range_sigma_m: float = 0.0
    radar_azimuth_sigma_rad: float = 0.0
    radar_moving_range_sigma_m: float = MOVING_RANGE_SIGMA_M
    radar_moving_azimuth_sigma_rad: float = math.radians(MOVING_AZIMUTH_SIGMA_DEG)
    moving_min_speed_mps: float = MOVING_MIN_SPEED_MPS
    moving_radius_m: float = MOVING_RADIUS_M
    camera_hfov_rad: float = math.radians(90.0)
    camera_stride: int = 1
    ground: GroundConfig = field(default_factory=GroundConfig)
    deskew: bool = True
    enabled: tuple[str, ...] = STREAMS

    def __post_init__(self) -> None:
        for name in ('lidar', 'radar', 'camera'):
            object.__setattr__(self, f'{name}_extrinsic',
                               _extrinsic6(f'extrinsics.{name}', getattr(self, f'{name}_extrinsic')))
        _finite('radar_sigma_m', self.radar_sigma_m)
        for name in ('moving_min_speed_mps', 'moving_radius_m'):
            _finite(name, getattr(self, name))
            if getattr(self, name) < 0:
                raise ConfigError(f'{name} must be >= 0, got {getattr(self, name)!r}')
        if self.radar_sigma_m < 0:
            raise ConfigError(f'radar_sigma_m must be >= 0, got {self.radar_sigma_m!r}')
        for prefix in ('radar_', 'radar_moving_'):
            rs, az = f'{prefix}range_sigma_m', f'{prefix}azimuth_sigma_rad'
            _finite(rs, getattr(self, rs))
            _finite(az, getattr(self, az))
            if not ((getattr(self, rs) > 0 and getattr(self, az) > 0)
                    or (getattr(self, rs) == 0 and getattr(self, az) == 0)):
                raise ConfigError(f'{rs} and {az} must both be > 0 (footprint from the radar\'s noise) or both 0 '
                                  f'(radar_sigma_m every way), got {getattr(self, rs)!r} and {getattr(self, az)!r}')
        _finite('camera_hfov_rad', self.camera_hfov_rad)
        if not 0 < self.camera_hfov_rad < math.pi:
            raise ConfigError(f'camera_hfov_rad must be in (0, pi) for a pinhole camera, got {self.camera_hfov_rad!r}')
        if isinstance(self.camera_stride, bool) or not isinstance(self.camera_stride, (int, np.integer)) \
                or self.camera_stride < 1:
            raise ConfigError(f'camera_stride must be an integer >= 1, got {self.camera_stride!r}')
        enabled = tuple(self.enabled)
        unknown = [s for s in enabled if s not in STREAMS]
        if unknown or not enabled:
            raise ConfigError(f'enabled streams must be a non-empty subset of {list(STREAMS)}, got {list(enabled)!r}')
        object.__setattr__(self, 'enabled', enabled)

    @property
    def radar_noise(self) -> RadarNoise | None:
        """The radar's range / azimuth noise that shapes a detection's footprint; None: ``radar_sigma_m``."""
        if self.radar_range_sigma_m == 0:
            return None
        return RadarNoise(self.radar_range_sigma_m, self.radar_azimuth_sigma_rad)

    @property
    def radar_moving_noise(self) -> RadarNoise | None:
        """The footprint of a moving detection: its own ellipse; None: the disc of ``radar_sigma_m``."""
        if self.radar_moving_range_sigma_m == 0:
            return None
        return RadarNoise(self.radar_moving_range_sigma_m, self.radar_moving_azimuth_sigma_rad)


# ------------------------------------------------------------------- inputs ---

def set_pose_horizon_ns(members: Mapping[str, Any], deskew: bool) -> int:
    """The latest vehicle-clock stamp whose pose a sync set needs: its newest member stamp, or for a
    deskewed lidar sweep its last point's time."""
    need = max(int(m.stamp_vehicle_ns) for m in members.values())
    lidar = members.get('lidar')
    if deskew and lidar is not None and lidar.t_offset_s is not None and len(lidar.t_offset_s):
        t = np.asarray(lidar.t_offset_s, dtype=np.float64)
        t = t[np.isfinite(t)]
        if t.size and t.max() > 0:
            need = max(need, int(lidar.stamp_vehicle_ns) + int(round(float(t.max()) * 1e9)))
    return need


@dataclass(frozen=True, eq=False)
class LidarScan:
    """A lidar cloud in its sensor frame.

    stamp_vehicle_ns : header stamp, vehicle clock
    points : (N, 3) float, metres, sensor frame
    t_offset_s : optional (N,) float, seconds of each point after the stamp
    """

    stamp_vehicle_ns: int
    points: NDArray[np.floating]
    t_offset_s: NDArray[np.floating] | None = None


@dataclass(frozen=True, eq=False)
class RadarScan:
    """Radar detections in the radar frame.

    points : (N, 3) float, metres; velocity : (N,) m/s radial, + away from the
    sensor, as measured (relative to the moving sensor); rcs : (N,) dBsm
    """

    stamp_vehicle_ns: int
    points: NDArray[np.floating]
    velocity: NDArray[np.floating]
    rcs: NDArray[np.floating]


@dataclass(frozen=True, eq=False)
class DepthFrame:
    """A depth image with the intrinsics it was taken with.

    depth_m : (H, W) float32 metres, NaN or 0 where no return; K : (3, 3) pinhole
    """

    stamp_vehicle_ns: int
    depth_m: NDArray[np.floating]
    K: NDArray[np.floating]


@dataclass(frozen=True, eq=False)
class CycleResult:
    """One cycle's output.

    stamp_vehicle_ns : the sync set's stamp (vehicle clock)
    spec : the evidence grid
    logodds : (height, width) float32, this cycle's evidence; known : (height, width) bool
    cells : (height, width) int8, OccupancyGrid cells (round(100·p), -1 unknown); made on
        first use (a vehicle sharing coarser cells never needs these)
    radar_targets : (M,) RADAR_TARGET_DTYPE in ``map``, ego motion removed; None without radar
    used : streams whose evidence went in
    skipped : stream -> reason, for members that could not be used (e.g. no pose)
    n_points : stream -> number of points that entered the sensor model
    """

    stamp_vehicle_ns: int
    spec: GridSpec
    logodds: NDArray[np.float32]
    known: NDArray[np.bool_]
    radar_targets: NDArray | None
    used: tuple[str, ...]
    skipped: dict[str, str]
    n_points: dict[str, int]

    @cached_property
    def cells(self) -> NDArray[np.int8]:
        return logodds_to_percent(self.logodds, self.known)


# ---------------------------------------------------------------- pipeline ---

def _xyz(points: NDArray[np.floating], name: str) -> NDArray[np.float64]:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ConfigError(f'{name} points must have shape (N, 3), got {pts.shape}')
    return pts


def radar_targets(points_map: NDArray[np.floating], velocity_measured: NDArray[np.floating],
                  rcs: NDArray[np.floating], sensor_xyz_map: NDArray[np.floating],
                  sensor_velocity_map: NDArray[np.floating]) -> NDArray:
    """Radar detections in ``map`` with the ego motion removed from the radial velocity.

    points_map : (N, 3) metres in ``map``; velocity_measured : (N,) m/s, + away;
    rcs : (N,); sensor_xyz_map : (3,) radar position; sensor_velocity_map : (3,) m/s.
    The radar measures ``(v_target - v_sensor) · u`` with ``u`` the unit line of
    sight from sensor to target, so ``v_target · u = v_measured + v_sensor · u``.
    Returns (N,) RADAR_TARGET_DTYPE.
    """
    pts = _xyz(points_map, 'radar')
    los = pts - np.asarray(sensor_xyz_map, dtype=np.float64)
    norm = np.linalg.norm(los, axis=1)
    unit = np.divide(los, norm[:, None], out=np.zeros_like(los), where=norm[:, None] > 1e-9)
    out = np.empty(len(pts), dtype=RADAR_TARGET_DTYPE)
    out['x'], out['y'], out['z'] = pts[:, 0], pts[:, 1], pts[:, 2]
    out['velocity'] = np.asarray(velocity_measured, dtype=np.float64) + unit @ np.asarray(sensor_velocity_map,
                                                                                          dtype=np.float64)
    out['rcs'] = rcs
    return out


class VehiclePipeline:
    """Turns one synchronised sensor set into this cycle's evidence (see the module docstring)."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self.lidar2base = extrinsic_from_params('lidar', cfg.lidar_extrinsic)
        self.radar2base = extrinsic_from_params('radar', cfg.radar_extrinsic)
        self.camera2base = extrinsic_from_params('camera_optical', cfg.camera_extrinsic)
        self.window_yaw: float | None = None       # the rolling window's yaw, rad (None before the first cycle)

    def process(self, stamp_vehicle_ns: int, poses: PoseLookup, lidar: LidarScan | None = None,
                radar: RadarScan | None = None, camera: DepthFrame | None = None,
                draw_at_vehicle_ns: int | None = None) -> CycleResult:
        """One cycle. ``stamp_vehicle_ns`` is the sync set's stamp; the window is placed at the pose then.

        draw_at_vehicle_ns : the moment the cycle's evidence describes (vehicle clock); when given, hits of
            moving objects (near a moving radar return) are moved there with the radar's Doppler
            (:func:`~.sensor_models.hits_to_stamp`) instead of staying where each sensor saw them
        Raises FrameError when there is no pose at ``stamp_vehicle_ns`` (nothing can
        be placed). A member whose own stamp has no pose is skipped and reported in
        ``CycleResult.skipped``; the others still count.
        """
        base2map = poses.lookup(int(stamp_vehicle_ns))
        self.window_yaw = window_yaw(self.cfg.window, base2map, self.window_yaw)
        spec = window_spec(self.cfg.window, base2map, self.window_yaw)
        results: dict[str, tuple[EvidencePatch, int]] = {}
        skipped: dict[str, str] = {}
        n_points: dict[str, int] = {}
        targets = None
        movers: MovingReturns | None = None
        draw_at = None if draw_at_vehicle_ns is None else int(draw_at_vehicle_ns)
        members = {'lidar': lidar, 'radar': radar, 'camera': camera}
        # Radar first: its moving returns move the other sensors' hits of moving objects.
        for name in ('radar', *[s for s in STREAMS if s != 'radar']):
            member = members[name]
            if member is None or name not in self.cfg.enabled:
                continue
            try:
                if name == 'lidar':
                    results[name] = self._lidar(spec, member, poses, movers, draw_at)
                elif name == 'radar':
                    layer, n, targets, movers = self._radar(spec, member, poses, draw_at)
                    results[name] = (layer, n)
                else:
                    results[name] = self._camera(spec, member, poses, movers, draw_at)
            except FrameError as exc:
                skipped[name] = str(exc)
                continue
        used = [name for name in STREAMS if name in results]
        n_points = {name: results[name][1] for name in used}
        # The layers' sum in stream order, as sensor_models.combine adds them, each only over its own patch.
        logodds, known = np.zeros(spec.shape, np.float32), np.zeros(spec.shape, bool)
        for name in used:
            results[name][0].add_to(logodds, known)
        return CycleResult(int(stamp_vehicle_ns), spec, logodds, known, targets, tuple(used), skipped, n_points)

    def _split(self, points_map: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        obstacle, ground = split_ground(points_map, self.cfg.ground)
        return points_map[obstacle, :2], points_map[ground, :2]

    def _lidar(self, spec: GridSpec, scan: LidarScan, poses: PoseLookup, movers: MovingReturns | None = None,
               draw_at: int | None = None):
        pts = _xyz(scan.points, 'lidar')
        stamp = int(scan.stamp_vehicle_ns)
        t_point: int | NDArray[np.int64] = stamp
        if self.cfg.deskew and scan.t_offset_s is not None:
            t = np.asarray(scan.t_offset_s, dtype=np.float64)
            if t.shape != (len(pts),):
                raise ConfigError(f'lidar t_offset_s must have shape ({len(pts)},), got {t.shape}')
            ok = np.isfinite(pts).all(axis=1) & np.isfinite(t)
            points_map = deskew(pts[ok], t[ok], self.lidar2base, poses, stamp)
            t_point = stamp + np.round(t[ok] * 1e9).astype(np.int64)
        else:
            pts = pts[np.isfinite(pts).all(axis=1)]
            points_map = compensate(pts, self.lidar2base, poses, stamp)
        origin = se3.apply(poses.lookup(stamp) @ self.lidar2base, np.zeros((1, 3)))[0, :2]
        points_map = np.asarray(points_map, dtype=np.float64)
        obstacle, ground = split_ground(points_map, self.cfg.ground)
        hits, free = points_map[obstacle, :2], points_map[ground, :2]
        if draw_at is not None and movers is not None:
            t_hit = t_point if np.ndim(t_point) == 0 else np.asarray(t_point)[obstacle]
            hits = hits_to_stamp(hits, t_hit, movers, draw_at, self.cfg.moving_radius_m)
        return lidar_patch(spec, origin, hits, free, self.cfg.lidar_model), len(points_map)

    def _radar(self, spec: GridSpec, scan: RadarScan, poses: PoseLookup, draw_at: int | None = None):
        pts = _xyz(scan.points, 'radar')
        vel = np.asarray(scan.velocity, dtype=np.float64).reshape(-1)
        rcs = np.asarray(scan.rcs, dtype=np.float64).reshape(-1)
        if vel.shape != (len(pts),) or rcs.shape != (len(pts),):
            raise ConfigError(f'radar velocity and rcs must have shape ({len(pts)},), got {vel.shape} and {rcs.shape}')
        ok = np.isfinite(pts).all(axis=1) & np.isfinite(vel)
        pts, vel, rcs = pts[ok], vel[ok], rcs[ok]
        stamp = int(scan.stamp_vehicle_ns)
        radar2map = poses.lookup(stamp) @ self.radar2base
        points_map = np.asarray(compensate(pts, self.radar2base, poses, stamp), dtype=np.float64)
        # The sensor's own velocity in map: base_link's, plus yaw rate × mount offset (lever arm).
        ego_velocity = np.asarray(poses.sensor_velocity(stamp, self.radar2base), dtype=np.float64)
        targets = radar_targets(points_map, vel, rcs, radar2map[:3, 3], ego_velocity)
        hits = points_map[:, :2]
        movers = None
        if draw_at is not None:
            movers = moving_returns(hits, radar2map[:2, 3], targets['velocity'], stamp,
                                    self.cfg.moving_min_speed_mps)
            hits = hits_to_stamp(hits, stamp, movers, draw_at, radius_m=0.0)
        # Standing things (no Doppler once the ego motion is removed) are seen again every scan: a tighter spread.
        static = np.abs(targets['velocity']) < self.cfg.moving_min_speed_mps
        layer = radar_patch(spec, hits, self.cfg.radar_sigma_m, self.cfg.radar_model,
                               origin_xy=radar2map[:2, 3], static=static, noise=self.cfg.radar_noise,
                            moving_noise=self.cfg.radar_moving_noise)
        return layer, len(points_map), targets, movers

    def _camera(self, spec: GridSpec, frame: DepthFrame, poses: PoseLookup, movers: MovingReturns | None = None,
                draw_at: int | None = None):
        depth = np.asarray(frame.depth_m, dtype=np.float32)
        if depth.ndim != 2:
            raise ConfigError(f'depth image must have shape (H, W), got {depth.shape}')
        K = np.asarray(frame.K, dtype=np.float64)
        # Returns beyond the model's max range still tell that the beam crossed it, so no range cut.
        pts = backproject(depth, K, stride=self.cfg.camera_stride)
        stamp = int(frame.stamp_vehicle_ns)
        camera2map = poses.lookup(stamp) @ self.camera2base
        points_map = np.asarray(compensate(pts, self.camera2base, poses, stamp), dtype=np.float64)
        axis = camera2map[:3, 2]  # optical z axis in map
        yaw = math.atan2(float(axis[1]), float(axis[0]))
        # Field of view from the intrinsics (columns 0 .. W-1 around cx), capped by the parameter.
        fx, cx, width = float(K[0, 0]), float(K[0, 2]), depth.shape[1]
        hfov = math.atan2(cx + 0.5, fx) + math.atan2(width - 0.5 - cx, fx)
        hfov = min(hfov, self.cfg.camera_hfov_rad) if hfov > 0 else self.cfg.camera_hfov_rad
        hits, free = self._split(points_map)
        if draw_at is not None and movers is not None:
            hits = hits_to_stamp(hits, stamp, movers, draw_at, self.cfg.moving_radius_m)
        layer = camera_patch(spec, camera2map[:2, 3], yaw, hfov, hits, free, self.cfg.camera_model)
        return layer, len(points_map)
