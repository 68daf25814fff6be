"""Edge digital twin: mirror the common grid, track, predict, find conflicts, warn and advise the platoon.

Subscribes ``/cooperative/grid`` (latched: it starts with the latest grid),
and per vehicle ``/<v>/odom``, ``/<v>/time_reference`` (vehicle clock ->
common time, one :class:`ClockEstimator` per vehicle) and
``/<v>/radar/targets`` (map frame, common time: velocity hints for tracks).

On every new grid (throttled to ``max_rate_hz`` by grid stamp, so a replay is
deterministic; held while no odometry has arrived since the last cycle) the
platoon's odometry is mapped to common time and extrapolated to the grid's
stamp (base_link moved to the centre of each vehicle's box), and :meth:`TwinCore.step` runs once. The
node publishes ``/twin/predicted_grid`` (one per output horizon, stamped grid
stamp + horizon), ``/twin/warnings`` (every cycle; one status per conflict,
name = vehicle id), ``/<v>/twin/advisory`` for each warned vehicle (base_link poses; no warnings
while a platoon vehicle's clock is unknown: its position is not trusted),
``/twin/markers`` and, on a timer, its health in ``/diagnostics`` (status
``twin_node``: grid rate, age, gaps, tracks, cycle time, ``twin_speedup``,
prediction self-check, degraded inputs, drops by cause).

Every input is validated before it changes any state: a malformed grid, or one
stamped ahead of the node clock (``future_tolerance_s``), before the latest
grid, or over 5 s before it (``grid_stale``: a single old grid does not reset
the tracker; ``restart_grids`` of them in a row are a replay restart), is
counted by cause and leaves the mirror, its arrival statistics and the
self-check untouched. Odometry with a covariance that is not PSD, or from the
future, and out-of-order or future radar targets are dropped likewise.

The mirror keeps the received grid exactly (spec + int8 cells);
:meth:`TwinNode.mirror_checksum` identifies it (:func:`grid_checksum`).
Self-check: each predicted grid is kept until a mirrored grid stamped at or
after its target time (within half a grid period) arrives; IoU and Brier score
against it go to ``/diagnostics`` as ``self_check.iou_<h>s`` / ``self_check.brier_<h>s``.

Run: ``twin_node --ros-args --params-file config/twin.yaml``.
"""
from __future__ import annotations

import hashlib
import math
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from numpy.typing import NDArray
from sensor_msgs.msg import PointCloud2, TimeReference
from visualization_msgs.msg import MarkerArray

from ..core.twin.conflicts import Advisory, Conflict, ConflictConfig
from ..core.errors import ConfigError, CooperativeFusionError, MessageFormatError, SyncError
from ..core.grid import GridSpec
from ..core.twin.idm import IdmParams
from ..core.link import LinkMonitor
from ..core.twin.prediction import ObstacleModel, PlatoonState, PredictionConfig, brier, iou
from ..core.timebase import ClockEstimator, ClockFitConfig
from ..core.twin.tracking import MotionModel, TrackerConfig, radar_to_stamp
from ..core.twin.twin_core import TwinConfig, TwinCore, TwinResult
from ..ros.diagnostics import DropCounter, LatencyStats, Level, RateMeter, make_array, make_status
from ..ros.grid import grid_from_msg, grid_to_msg
from ..ros.markers import advisory_to_path, twin_markers
from ..ros.odometry import covariance_is_psd, odometry_to_pose
from ..ros.params import Param, declare
from ..ros.pointcloud import cloud_to_array
from ..ros.qos import diagnostics_qos, evidence_qos, latched_qos, state_qos
from ..ros.time import stamp_to_ns, time_reference_to_ns
from .entry import SetupNode, spin_node

NODE_NAME = 'twin_node'
_NS_PER_S = 1_000_000_000
#: Grid inter-arrival intervals kept for the median period (gap detection).
_PERIOD_WINDOW = 50
#: Self-check scores kept per horizon for the reported mean.
_SELF_CHECK_WINDOW = 50
#: A grid stamp this far before the latest grid's is stale, or (``restart_grids`` in a row) a replay restart.
_RESTART_NS = 5 * _NS_PER_S

_D_TRACKER = TrackerConfig()
_D_PRED = PredictionConfig()
#: The platoon's own car-following controller (the default scenario's CACC-like IDM: 15 m gaps at 25 m/s).
_D_IDM = IdmParams(v0_mps=30.0, time_headway_s=0.35)
_D_CONF = ConflictConfig()
_D_TWIN = TwinConfig()
_D_CLOCK = ClockFitConfig()

#: Every parameter of the node, in one place; config/twin.yaml documents each row.
#: Per-vehicle topics are templates in which ``{v}`` is replaced by the vehicle id.
PARAMS: tuple[Param, ...] = (
    # platoon
    Param('vehicles', ['v1', 'v2', 'v3', 'v4'], 'platoon vehicle ids in platoon order (leader first)'),
    Param('vehicle_lengths_m', [4.5, 12.0, 4.5, 4.5], 'length of each vehicle of `vehicles`, metres'),
    Param('vehicle_widths_m', [1.8, 2.5, 1.8, 1.8], 'width of each vehicle of `vehicles`, metres'),
    Param('vehicle_rear_overhangs_m', [1.0, 2.5, 1.0, 1.0],
          'rear face to base_link (the odometry origin) of each vehicle of `vehicles`, metres'),
    # cycle and freshness
    Param('max_rate_hz', 10.0, 'at most this many twin cycles per second of grid time', 0.1, 1000.0),
    Param('stale_grid_s', 0.5, 'a grid older than this (node clock - stamp) is stale: WARN, seconds', 0.001, 3600.0),
    Param('gap_factor', 2.5, 'a grid inter-arrival above this times the median period is a gap', 1.0, 100.0),
    Param('future_tolerance_s', 2.0,
          'a grid, odometry (clock known) or radar stamp further than this ahead of the node clock is dropped, '
          'seconds', 0.001, 3600.0),
    Param('restart_grids', 3,
          'a grid stamped over 5 s before the latest is dropped as stale unless this many such grids in a row, '
          'each newer than the one before, confirm a replay restart (the tracker starts afresh)', 1, 1000),
    Param('stale_odom_s', 0.5, 'odometry older than this at the grid stamp is stale: WARN, seconds',
          0.001, 3600.0),
    Param('odom_max_age_s', 5.0, 'odometry older than this at the grid stamp leaves the vehicle out, seconds',
          0.001, 3600.0),
    Param('accel_window_s', 0.3, 'acceleration = speed difference over at least this much odometry, seconds',
          0.01, 10.0),
    Param('radar_max_age_s', 0.2, 'radar targets within this of the grid stamp are used as they are, seconds',
          0.0, 10.0),
    Param('radar_max_late_s', 1.0, 'radar targets further than radar_max_age_s from the grid stamp, up to this, are '
          'moved to it along the road at their speed (line of sight within radar.max_los_angle_deg of the road); '
          'further ones are not used, seconds', 0.0, 10.0),
    Param('use_radar', True, 'use radar targets as velocity hints for new detections'),
    Param('self_check', True, 'score predicted grids against the mirrored grid at their target time'),
    Param('publish_markers', True, 'publish /twin/markers'),
    # prediction
    Param('horizon_s', _D_PRED.horizon_s, 'rollout length, seconds', 0.01, 60.0),
    Param('dt_s', _D_PRED.dt_s, 'rollout step, seconds', 0.001, 10.0),
    Param('output_horizons_s', list(_D_PRED.output_horizons_s),
          'horizons of the predicted grids, seconds (multiples of dt_s, <= horizon_s)'),
    Param('prediction.sigma0_m', _D_PRED.sigma0_m, 'predicted footprint blur at horizon 0, metres', 0.001, 100.0),
    Param('prediction.sigma_growth_mps', _D_PRED.sigma_growth_mps, 'blur growth per second of horizon, m/s',
          0.0, 100.0),
    Param('prediction.platoon_sigma_growth_mps', _D_PRED.platoon_sigma_growth_mps,
          'blur growth of the platoon vehicles per second of horizon, m/s', 0.0, 100.0),
    Param('prediction.obstacle_model', _D_PRED.obstacle_model.value, 'obstacle motion in the rollout: cv or ctrv'),
    Param('prediction.lane_half_width_m', _D_PRED.lane_half_width_m,
          'rollout: an obstacle this close to a lane centre line is followed, metres', 0.01, 100.0),
    Param('prediction.window_sigmas', _D_PRED.window_sigmas, 'raster window past each box, in sigmas', 0.5, 20.0),
    Param('prediction.lateral_deadband_mps', _D_PRED.lateral_deadband_mps,
          'obstacles slower than this across the road keep their lane in the rollout, m/s', 0.0, 100.0),
    Param('prediction.lateral_sigmas', _D_PRED.lateral_sigmas,
          '... or than this many of the track\'s own vy std', 0.0, 100.0),
    Param('prediction.lateral_max_std_mps', _D_PRED.lateral_max_std_mps,
          '... and only tracks whose vy std is at most this (and seen in the latest grid) move across the road, '
          'm/s', 0.0, 100.0),
    Param('prediction.max_lateral_shift_m', _D_PRED.max_lateral_shift_m,
          'an obstacle moves across the road by at most this in the rollout (one lane change), metres',
          0.01, 100.0),
    Param('prediction.leader_keeps_speed', _D_PRED.leader_keeps_speed,
          'the platoon leader cruises at its current speed on a free road (followers use idm.v0_mps)'),
    Param('idm.v0_mps', _D_IDM.v0_mps, 'IDM desired speed, m/s', 0.01, 100.0),
    Param('idm.time_headway_s', _D_IDM.time_headway_s, 'IDM desired time gap, seconds', 0.0, 10.0),
    Param('idm.a_max', _D_IDM.a_max, 'IDM maximum acceleration, m/s^2', 0.01, 20.0),
    Param('idm.b_comf', _D_IDM.b_comf, 'IDM comfortable deceleration, m/s^2', 0.01, 20.0),
    Param('idm.s0_m', _D_IDM.s0_m, 'IDM jam distance, metres', 0.0, 100.0),
    Param('idm.delta', _D_IDM.delta, 'IDM acceleration exponent', 0.1, 20.0),
    # detection on the grid
    Param('detection.occupied_threshold', _D_TWIN.occupied_threshold, 'a cell is occupied at this percent or more',
          1, 100),
    Param('detection.min_cells', _D_TWIN.min_cells, 'smaller occupied components are noise, cells', 1, 100000),
    Param('detection.exclude_margin_m', _D_TWIN.exclude_margin_m,
          'platoon footprints grow by this before their cells are cleared, metres', 0.0, 10.0),
    Param('detection.exclude_trail_s', 0.2,
          'platoon footprints also reach back over the distance driven in this long (grid latency), seconds',
          0.0, 10.0),
    Param('detection.exclude_front_m', 1.5,
          'platoon footprints also reach this far ahead of each front (own near-field returns), metres', 0.0, 10.0),
    Param('detection.merge_gap_m', 1.0,
          'occupied components at most this far apart are one object (pieces of one car), metres', 0.0, 10.0),
    Param('detection.include_platoon_in_grids', _D_TWIN.include_platoon_in_grids,
          'draw the platoon vehicles in the predicted grids'),
    Param('radar.radius_m', _D_TWIN.radar_radius_m, 'a radar target hints a detection within this, metres',
          0.01, 100.0),
    Param('radar.max_los_angle_deg', _D_TWIN.radar_max_los_angle_deg,
          'radial speed is used only where line of sight and road are within this, degrees', 0.1, 89.0),
    # tracker
    Param('tracker.model', _D_TRACKER.model.value, 'Kalman motion model: cv or ca'),
    Param('tracker.process_noise_accel', _D_TRACKER.process_noise_accel,
          'white acceleration std (cv, m/s^2) or jerk std (ca, m/s^3)', 1e-6, 100.0),
    Param('tracker.meas_noise_m', _D_TRACKER.meas_noise_m, 'detection centroid std, metres', 1e-6, 100.0),
    Param('tracker.meas_noise_vel_mps', _D_TRACKER.meas_noise_vel_mps, 'radar velocity hint std, m/s',
          1e-6, 100.0),
    Param('tracker.gate_chi2', _D_TRACKER.gate_chi2, 'Mahalanobis gate (2 dof; 9.21 = 99 %)', 0.01, 1000.0),
    Param('tracker.confirm_hits', _D_TRACKER.confirm_hits, 'hits that confirm a track ...', 1, 100),
    Param('tracker.confirm_window', _D_TRACKER.confirm_window, '... within this many first frames', 1, 100),
    Param('tracker.max_misses', _D_TRACKER.max_misses, 'consecutive misses that delete a confirmed track', 1, 1000),
    Param('tracker.init_velocity_std_mps', _D_TRACKER.init_velocity_std_mps, 'new track velocity std, m/s',
          1e-6, 1000.0),
    Param('tracker.init_accel_std_mps2', _D_TRACKER.init_accel_std_mps2, 'new track acceleration std (ca), m/s^2',
          1e-6, 1000.0),
    Param('tracker.size_smoothing', _D_TRACKER.size_smoothing, 'weight of a new detection in a track\'s size',
          0.0, 1.0),
    # conflicts and advice
    Param('conflicts.ttc_warn_s', _D_CONF.ttc_warn_s, 'WARN below this time to collision, seconds', 0.01, 100.0),
    Param('conflicts.ttc_error_s', _D_CONF.ttc_error_s, 'ERROR below this time to collision, seconds', 0.01, 100.0),
    Param('conflicts.gap_warn_m', _D_CONF.gap_warn_m, 'WARN below this gap to an actor in the path, metres',
          0.0, 1000.0),
    Param('conflicts.gap_error_m', _D_CONF.gap_error_m, 'ERROR below this gap, metres', 0.0, 1000.0),
    Param('conflicts.comfortable_decel_mps2', _D_CONF.comfortable_decel_mps2,
          'ERROR when keeping the safe gap needs more than this, m/s^2', 0.01, 20.0),
    Param('conflicts.max_decel_mps2', _D_CONF.max_decel_mps2, 'strongest advised deceleration, m/s^2', 0.01, 20.0),
    Param('conflicts.safe_gap_m', _D_CONF.safe_gap_m, 'advisories end this far behind the other actor, metres',
          0.0, 1000.0),
    Param('conflicts.lane_half_width_m', _D_CONF.lane_half_width_m,
          'an actor this close to a lane centre line is in the path, metres', 0.01, 100.0),
    Param('conflicts.min_closing_speed_mps', _D_CONF.min_closing_speed_mps,
          'slower closing is not closing, m/s', 1e-6, 100.0),
    Param('conflicts.propagate_to_followers', _D_CONF.propagate_to_followers,
          'a follower inherits at least WARN from its predecessor\'s conflict'),
    Param('conflicts.propagate_max_ttc_s', _D_CONF.propagate_max_ttc_s,
          '... when the follower\'s own TTC to that obstacle is below this, seconds', 0.01, 1000.0),
    Param('conflicts.min_track_hits', 6, 'a track raises conflicts only after this many detections', 1, 1000),
    Param('conflicts.own_body_speed_tol_mps', _D_CONF.own_body_speed_tol_mps,
          'an obstacle overlapping a platoon vehicle and this close to its speed is that vehicle, m/s', 0.0, 100.0),
    Param('conflicts.advisory_dt_s', _D_CONF.advisory_dt_s, 'spacing of advisory poses, seconds', 0.001, 10.0),
    Param('conflicts.advisory_hold_s', _D_CONF.advisory_hold_s, 'advisory continues this long after braking, seconds',
          0.0, 60.0),
    # clocks
    Param('clock.window_s', _D_CLOCK.window_ns / _NS_PER_S, 'time-reference pairs kept for the clock fit, seconds',
          0.001, 3600.0),
    Param('clock.min_samples', _D_CLOCK.min_samples, 'pairs before offset and drift are fitted', 2, 10000),
    Param('clock.outlier_threshold_s', _D_CLOCK.outlier_threshold_ns / _NS_PER_S,
          'a pair off the fit by more than this is an outlier, seconds', 1e-9, 10.0),
    Param('clock.max_drift_ppm', _D_CLOCK.max_drift_ppm, 'bound on the fitted clock drift, ppm', 0.001, 1e6),
    # topics and frames
    Param('frames.map', 'map', 'shared frame of every input and output'),
    Param('topics.grid', '/cooperative/grid', 'common grid in (nav_msgs/OccupancyGrid, latched)'),
    Param('topics.odom', '/{v}/odom', 'odometry in, per vehicle ({v} = vehicle id)'),
    Param('topics.time_reference', '/{v}/time_reference', 'vehicle clock -> common time pairs, per vehicle'),
    Param('topics.radar_targets', '/{v}/radar/targets', 'radar targets in map, per vehicle'),
    Param('topics.predicted_grid', '/twin/predicted_grid', 'predicted grids out, one per horizon per cycle'),
    Param('topics.warnings', '/twin/warnings', 'conflicts out (diagnostic_msgs/DiagnosticArray), every cycle'),
    Param('topics.advisory', '/{v}/twin/advisory', 'advised trajectory out (nav_msgs/Path), per warned vehicle'),
    Param('topics.markers', '/twin/markers', 'visualization_msgs/MarkerArray out'),
    # qos / diagnostics
    Param('qos.state_depth', 50, 'queue depth of odometry, time reference and radar subscriptions', 1, 10000),
    Param('qos.output_depth', 10, 'queue depth of the output publishers', 1, 1000),
    Param('diagnostics.period_s', 1.0, 'period of /diagnostics, seconds', 0.01, 3600.0),
    # link quality of each vehicle's odometry and radar as the twin receives them (core.link)
    Param('links.window_s', 2.0, 'arrival-time window of the per-vehicle link statistics, seconds', 0.01, 3600.0),
    Param('links.late_s', 0.25,
          'odometry or radar arriving later than this (median arrival - stamp) is reported in degraded, seconds',
          0.0, 3600.0),
    Param('links.missing_share', 0.2,
          'a share of a vehicle\'s odometry missing above this (over links.window_s) is reported in degraded',
          0.0, 1.0),
)


def _ns(seconds: float) -> int:
    return int(round(seconds * _NS_PER_S))


def horizon_key(horizon_s: float) -> str:
    """``'1.0'`` for 1.0 s, ``'0.5'`` for 0.5 s, ``'0.25'`` for 0.25 s (diagnostics key suffix)."""
    s = f'{horizon_s:g}'
    return s if '.' in s or 'e' in s else f'{s}.0'


def grid_checksum(spec: GridSpec, cells: NDArray[np.int8]) -> str:
    """sha256 hex digest of a grid's geometry and its int8 cells (height, width), row-major."""
    h = hashlib.sha256()
    h.update(repr((float(spec.origin_x), float(spec.origin_y), float(spec.resolution),
                   int(spec.width), int(spec.height))).encode())
    h.update(np.ascontiguousarray(cells, dtype=np.int8).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class TwinTopics:
    """Topic names; per-vehicle ones as templates with ``{v}``."""

    grid: str
    odom: str
    time_reference: str
    radar_targets: str
    predicted_grid: str
    warnings: str
    advisory: str
    markers: str

    def for_vehicle(self, template: str, vehicle_id: str) -> str:
        return template.replace('{v}', vehicle_id)


@dataclass(frozen=True)
class TwinNodeConfig:
    """The node's validated settings (see PARAMS for each field's meaning; times in ns)."""

    vehicles: tuple[str, ...]
    lengths_m: tuple[float, ...]
    widths_m: tuple[float, ...]
    rear_overhangs_m: tuple[float, ...]
    min_cycle_period_ns: int
    stale_grid_ns: int
    gap_factor: float
    future_tolerance_ns: int
    restart_grids: int
    stale_odom_ns: int
    odom_max_age_ns: int
    accel_window_ns: int
    radar_max_age_ns: int
    radar_max_late_ns: int
    use_radar: bool
    self_check: bool
    publish_markers: bool
    twin: TwinConfig
    clock: ClockFitConfig
    map_frame: str
    topics: TwinTopics
    state_depth: int
    output_depth: int
    diagnostics_period_s: float
    links_window_ns: int = 2 * _NS_PER_S
    links_late_ns: int = 250_000_000
    links_missing_share: float = 0.2


def _enum(cls: type, name: str, value: str) -> Any:
    try:
        return cls(value)
    except ValueError as exc:
        raise ConfigError(f'{name} must be one of {[m.value for m in cls]}, got {value!r}') from exc


def config_from_params(values: dict[str, Any]) -> TwinNodeConfig:
    """The validated TwinNodeConfig from declared parameter values. Raises ConfigError naming the bad value."""
    vehicles = tuple(str(v) for v in values['vehicles'])
    if not vehicles or any(not v or '/' in v for v in vehicles) or len(set(vehicles)) != len(vehicles):
        raise ConfigError(f'vehicles must be distinct non-empty ids without "/", got {list(vehicles)}')
    sizes = {}
    for name in ('vehicle_lengths_m', 'vehicle_widths_m', 'vehicle_rear_overhangs_m'):
        seq = tuple(float(x) for x in values[name])
        positive = name != 'vehicle_rear_overhangs_m'
        if len(seq) != len(vehicles) or not all(math.isfinite(x) and (x > 0 if positive else x >= 0) for x in seq):
            kind = 'positive sizes' if positive else 'sizes >= 0'
            raise ConfigError(f'{name} must hold {len(vehicles)} {kind} (one per vehicle {list(vehicles)}), '
                              f'got {list(seq)}')
        sizes[name] = seq
    bad = [v for v, length, rear in zip(vehicles, sizes['vehicle_lengths_m'], sizes['vehicle_rear_overhangs_m'])
           if rear >= length]
    if bad:
        raise ConfigError(f'vehicle_rear_overhangs_m must be shorter than the vehicle length, not for {bad}')
    idm = IdmParams(**{f: values[f'idm.{f}'] for f in IdmParams.__dataclass_fields__})
    prediction = PredictionConfig(
        horizon_s=values['horizon_s'], dt_s=values['dt_s'],
        output_horizons_s=tuple(float(h) for h in values['output_horizons_s']), idm=idm,
        sigma0_m=values['prediction.sigma0_m'], sigma_growth_mps=values['prediction.sigma_growth_mps'],
        platoon_sigma_growth_mps=values['prediction.platoon_sigma_growth_mps'],
        obstacle_model=_enum(ObstacleModel, 'prediction.obstacle_model', values['prediction.obstacle_model']),
        lane_half_width_m=values['prediction.lane_half_width_m'], window_sigmas=values['prediction.window_sigmas'],
        leader_keeps_speed=values['prediction.leader_keeps_speed'],
        lateral_deadband_mps=values['prediction.lateral_deadband_mps'],
        lateral_sigmas=values['prediction.lateral_sigmas'],
        lateral_max_std_mps=values['prediction.lateral_max_std_mps'],
        max_lateral_shift_m=values['prediction.max_lateral_shift_m'])
    tracker = TrackerConfig(
        model=_enum(MotionModel, 'tracker.model', values['tracker.model']),
        **{f: values[f'tracker.{f}'] for f in TrackerConfig.__dataclass_fields__ if f != 'model'})
    conflicts = ConflictConfig(**{f: values[f'conflicts.{f}'] for f in ConflictConfig.__dataclass_fields__})
    twin = TwinConfig(tracker=tracker, prediction=prediction, conflicts=conflicts,
                      occupied_threshold=values['detection.occupied_threshold'],
                      min_cells=values['detection.min_cells'],
                      exclude_margin_m=values['detection.exclude_margin_m'],
                      exclude_trail_s=values['detection.exclude_trail_s'],
                      exclude_front_m=values['detection.exclude_front_m'],
                      merge_gap_m=values['detection.merge_gap_m'],
                      radar_radius_m=values['radar.radius_m'],
                      radar_max_los_angle_deg=values['radar.max_los_angle_deg'],
                      include_platoon_in_grids=values['detection.include_platoon_in_grids'])
    clock = ClockFitConfig(window_ns=_ns(values['clock.window_s']), min_samples=values['clock.min_samples'],
                           outlier_threshold_ns=max(1, _ns(values['clock.outlier_threshold_s'])),
                           max_drift_ppm=values['clock.max_drift_ppm'])
    topics = TwinTopics(**{f: values[f'topics.{f}'] for f in TwinTopics.__dataclass_fields__})
    for f in TwinTopics.__dataclass_fields__:
        name = getattr(topics, f)
        if not name:
            raise ConfigError(f'topics.{f} is empty: expected a topic name')
    for f in ('odom', 'time_reference', 'radar_targets', 'advisory'):
        if '{v}' not in getattr(topics, f):
            raise ConfigError(f'topics.{f} = {getattr(topics, f)!r} must contain {{v}} (the vehicle id)')
    return TwinNodeConfig(
        vehicles=vehicles, lengths_m=sizes['vehicle_lengths_m'], widths_m=sizes['vehicle_widths_m'],
        rear_overhangs_m=sizes['vehicle_rear_overhangs_m'],
        min_cycle_period_ns=_ns(1.0 / values['max_rate_hz']), stale_grid_ns=_ns(values['stale_grid_s']),
        gap_factor=values['gap_factor'], future_tolerance_ns=_ns(values['future_tolerance_s']),
        restart_grids=values['restart_grids'], stale_odom_ns=_ns(values['stale_odom_s']),
        odom_max_age_ns=_ns(values['odom_max_age_s']), accel_window_ns=_ns(values['accel_window_s']),
        radar_max_age_ns=_ns(values['radar_max_age_s']), radar_max_late_ns=_ns(values['radar_max_late_s']),
        use_radar=values['use_radar'],
        self_check=values['self_check'], publish_markers=values['publish_markers'], twin=twin, clock=clock,
        map_frame=values['frames.map'], topics=topics, state_depth=values['qos.state_depth'],
        output_depth=values['qos.output_depth'], diagnostics_period_s=values['diagnostics.period_s'],
        links_window_ns=_ns(values['links.window_s']), links_late_ns=_ns(values['links.late_s']),
        links_missing_share=float(values['links.missing_share']))


class _VehicleInput:
    """What the twin knows of one vehicle: its clock fit, recent odometry, latest radar targets."""

    def __init__(self, clock: ClockFitConfig, links_window_ns: int = 2 * _NS_PER_S) -> None:
        self.clock = ClockEstimator(clock)
        self.links_window_ns = links_window_ns
        self.odom_age_ns: int | None = None        # at the last cycle's grid stamp
        self.clock_known = False
        self.forget_streams()

    def forget_streams(self) -> None:
        """Drop the odometry, the radar targets and the link statistics (a replay restarted: arrival
        times went back); the clock fit stays."""
        # arrival - stamp (common time), missing share, reordering of what reaches the twin
        self.odom_link = LinkMonitor(self.links_window_ns)
        self.radar_link = LinkMonitor(self.links_window_ns)
        # (stamp_vehicle_ns, x, y, yaw, speed) in arrival order, stamps increasing
        self.odom: deque[tuple[int, float, float, float, float]] = deque(maxlen=64)
        self.radar_stamp_ns: int | None = None
        self.radar_xyv: NDArray[np.float64] = np.zeros((0, 3))

    def to_common(self, stamps_vehicle_ns: NDArray[np.int64]) -> NDArray[np.int64]:
        """Vehicle stamps in common time; unchanged (clock taken as common) before any time reference."""
        if self.clock.n_samples == 0:
            return stamps_vehicle_ns
        return np.asarray(self.clock.to_common(stamps_vehicle_ns), dtype=np.int64)


@dataclass(frozen=True)
class _Pending:
    """A predicted grid waiting for the mirrored grid at its target stamp."""

    horizon_s: float
    spec: GridSpec
    percent: NDArray[np.int8]


def _overlap(a: GridSpec, b: GridSpec) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Slices of ``a`` and of ``b`` over their common cells (same lattice), or None when disjoint."""
    dx, dy = a.lattice_offset(b)       # b's cell (0, 0) in a
    x0, x1 = max(0, dx), min(a.width, dx + b.width)
    y0, y1 = max(0, dy), min(a.height, dy + b.height)
    if x0 >= x1 or y0 >= y1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - dy, y1 - dy), slice(x0 - dx, x1 - dx))


def _yaw(quat_wxyz: NDArray[np.float64]) -> float:
    w, x, y, z = (float(v) for v in quat_wxyz)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


class TwinNode(SetupNode):
    """See the module docstring. ``kwargs`` go to ``rclpy.node.Node`` (context, namespace,
    parameter_overrides, cli_args, ...), so the in-process bringup can compose it."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        self.cfg = config_from_params(declare(self, PARAMS))
        cfg = self.cfg
        self.core = TwinCore(cfg.twin)
        self.drops = DropCounter()
        self.vehicles = {v: _VehicleInput(cfg.clock, cfg.links_window_ns) for v in cfg.vehicles}
        # mirror
        self._mirror_spec: GridSpec | None = None
        self._mirror_cells: NDArray[np.int8] | None = None
        self._mirror_stamp_ns: int | None = None
        self._last_arrival_ns: int | None = None
        self._restart_run: list[int] = []      # stamps of consecutive stale grids (a replay restart if enough)
        self.restarts = 0
        self._intervals_ns: deque[int] = deque(maxlen=_PERIOD_WINDOW)
        self.grids_received = 0
        self.gaps = 0
        self.max_gap_s = 0.0
        self.grid_rate = RateMeter(max(2.0 * cfg.diagnostics_period_s, 1.0))
        # cycles
        self._last_cycle_stamp_ns: int | None = None
        self.cycles = 0
        self.cycles_throttled = 0
        self.cycles_held = 0              # grids without any odometry since the last cycle
        self.warnings_withheld = 0        # cycles whose conflicts were dropped: a vehicle's clock unknown
        self._odom_received = 0
        self._odom_at_last_cycle = 0
        self.last_result: TwinResult | None = None
        self.last_step_ms = math.nan
        self.last_cycle_ms = math.nan
        self._step_ms: deque[float] = deque(maxlen=_PERIOD_WINDOW)
        self.cycle_ms = LatencyStats()
        self.degraded: list[str] = []
        # self-check
        self._pending: dict[int, list[_Pending]] = {}
        self._scores: dict[float, dict[str, deque[float]]] = {
            h: {'iou': deque(maxlen=_SELF_CHECK_WINDOW), 'brier': deque(maxlen=_SELF_CHECK_WINDOW)}
            for h in cfg.twin.prediction.output_horizons_s}
        self.self_check_missed = 0
        self._drops_reported = 0

        t, out_qos = cfg.topics, evidence_qos(cfg.output_depth)
        self.predicted_pub = self.create_publisher(OccupancyGrid, t.predicted_grid, out_qos)
        self.warnings_pub = self.create_publisher(DiagnosticArray, t.warnings, out_qos)
        self.markers_pub = self.create_publisher(MarkerArray, t.markers, out_qos)
        self.advisory_pubs = {v: self.create_publisher(Path, t.for_vehicle(t.advisory, v), out_qos)
                              for v in cfg.vehicles}
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', diagnostics_qos())
        self.create_subscription(OccupancyGrid, t.grid, self._guard('grid', self._on_grid), latched_qos())
        sq = state_qos(cfg.state_depth)
        for v in cfg.vehicles:
            self.create_subscription(Odometry, t.for_vehicle(t.odom, v), self._guard('odom', self._odom_cb(v)), sq)
            self.create_subscription(TimeReference, t.for_vehicle(t.time_reference, v),
                                     self._guard('time_reference', self._time_ref_cb(v)), sq)
            if cfg.use_radar:
                self.create_subscription(PointCloud2, t.for_vehicle(t.radar_targets, v),
                                         self._guard('radar', self._radar_cb(v)), evidence_qos(cfg.state_depth))
        self.diag_timer = self.create_timer(cfg.diagnostics_period_s,
                                            self._guard('diagnostics', self._publish_diagnostics))
        p = cfg.twin.prediction
        self.get_logger().info(
            f'twin: platoon {list(cfg.vehicles)}, grid {t.grid}, horizon {p.horizon_s} s at {p.dt_s} s, '
            f'outputs {list(p.output_horizons_s)} s, at most {1e9 / cfg.min_cycle_period_ns:g} cycles/s')

    # ------------------------------------------------------------- helpers --

    def now_ns(self) -> int:
        """Node clock (sim time when use_sim_time is set), nanoseconds."""
        return int(self.get_clock().now().nanoseconds)

    def _drop(self, cause: str, detail: str) -> None:
        self.drops.count(cause, detail, self.get_logger())

    def _guard(self, source: str, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap a callback so bad input is counted and logged, never raised into the executor."""

        def wrapped(*args: Any) -> None:
            try:
                fn(*args)
            except MessageFormatError as exc:
                self._drop(f'{source}_format', str(exc))
            except CooperativeFusionError as exc:
                self._drop(f'{source}_{type(exc).__name__}', str(exc))
            except Exception as exc:  # a bug, but one bad message must not stop the twin
                self._drop(f'{source}_internal', f'{type(exc).__name__}: {exc}')

        return wrapped

    def _frame_ok(self, source: str, frame_id: str) -> bool:
        if frame_id != self.cfg.map_frame:
            self._drop(f'{source}_wrong_frame', f'{source} frame_id {frame_id!r}, expected {self.cfg.map_frame!r}')
            return False
        return True

    def mirror_checksum(self) -> str | None:
        """:func:`grid_checksum` of the mirrored grid, None before the first one."""
        if self._mirror_spec is None or self._mirror_cells is None:
            return None
        return grid_checksum(self._mirror_spec, self._mirror_cells)

    @property
    def mirror(self) -> tuple[GridSpec, NDArray[np.int8], int] | None:
        """The mirrored grid (spec, cells (H, W) int8, stamp ns), None before the first one."""
        if self._mirror_spec is None or self._mirror_cells is None or self._mirror_stamp_ns is None:
            return None
        return self._mirror_spec, self._mirror_cells, self._mirror_stamp_ns

    def median_period_ns(self) -> int | None:
        """Median grid inter-arrival (node clock) over recent grids, None with fewer than two grids."""
        return int(statistics.median(self._intervals_ns)) if self._intervals_ns else None

    # ----------------------------------------------------------- callbacks --

    def _odom_cb(self, vehicle_id: str) -> Callable[[Odometry], None]:
        def on_odom(msg: Odometry) -> None:
            if not self._frame_ok('odom', msg.header.frame_id):
                return
            pose = odometry_to_pose(msg)
            if not covariance_is_psd(pose.covariance):
                self._drop('odom_bad_covariance', f'{vehicle_id} odometry pose covariance is not symmetric '
                                                  f'positive semi-definite')
                return
            vin = self.vehicles[vehicle_id]
            if vin.clock.n_samples:
                now = self.now_ns()
                common = int(vin.to_common(np.array([pose.stamp_ns], np.int64))[0])
                ahead = common - now
                if ahead > self.cfg.future_tolerance_ns:
                    self._drop('odom_future', f'{vehicle_id} odometry is {ahead / 1e9:.3g} s ahead of the node '
                                              f'clock (tolerance {self.cfg.future_tolerance_ns / 1e9:g} s)')
                    return
                # Only with a known clock: the lateness of a vehicle stamp taken as common time would be
                # its clock offset. An out-of-order message below still counts as received (not missing).
                vin.odom_link.add(common, now)
            odom = vin.odom
            if odom and pose.stamp_ns <= odom[-1][0]:
                self._drop('odom_out_of_order', f'{vehicle_id} odometry at {pose.stamp_ns} ns is not newer '
                                                f'than {odom[-1][0]} ns')
                return
            odom.append((pose.stamp_ns, float(pose.position[0]), float(pose.position[1]), _yaw(pose.quat_wxyz),
                         float(pose.linear_velocity[0])))
            self._odom_received += 1
        return on_odom

    def _time_ref_cb(self, vehicle_id: str) -> Callable[[TimeReference], None]:
        def on_time_reference(msg: TimeReference) -> None:
            vehicle_ns, common_ns = time_reference_to_ns(msg)
            if not self.vehicles[vehicle_id].clock.add(vehicle_ns, common_ns):
                self._drop('time_reference_outlier', f'{vehicle_id} pair ({vehicle_ns}, {common_ns}) ns is off '
                                                     f'the clock fit by more than the outlier threshold')
        return on_time_reference

    def _radar_cb(self, vehicle_id: str) -> Callable[[PointCloud2], None]:
        def on_radar(msg: PointCloud2) -> None:
            if not self._frame_ok('radar', msg.header.frame_id):
                return
            points, _ = cloud_to_array(msg, required=('x', 'y', 'velocity'))
            vin = self.vehicles[vehicle_id]
            stamp_ns, now = stamp_to_ns(msg.header.stamp), self.now_ns()
            ahead = stamp_ns - now
            if ahead > self.cfg.future_tolerance_ns:
                self._drop('radar_future', f'{vehicle_id} radar targets are {ahead / 1e9:.3g} s ahead of the node '
                                           f'clock (tolerance {self.cfg.future_tolerance_ns / 1e9:g} s)')
                return
            vin.radar_link.add(stamp_ns, now)       # out-of-order targets below still arrived (not missing)
            if vin.radar_stamp_ns is not None and stamp_ns < vin.radar_stamp_ns:
                self._drop('radar_out_of_order', f'{vehicle_id} radar targets at {stamp_ns} ns are older than '
                                                 f'the latest at {vin.radar_stamp_ns} ns')
                return
            vin.radar_stamp_ns = stamp_ns
            vin.radar_xyv = np.column_stack([points['x'], points['y'], points['velocity']]).astype(np.float64)
        return on_radar

    def _on_grid(self, msg: OccupancyGrid) -> None:
        """Validate the grid (frame, format, stamp) before it touches any state; then mirror it and cycle."""
        now = self.now_ns()
        if not self._frame_ok('grid', msg.header.frame_id):
            return
        spec, view = grid_from_msg(msg)          # MessageFormatError: counted as grid_format by the guard
        stamp_ns = stamp_to_ns(msg.header.stamp)
        if stamp_ns - now > self.cfg.future_tolerance_ns:
            self._drop('grid_future', f'grid at {stamp_ns} ns is {(stamp_ns - now) / 1e9:.3g} s ahead of the node '
                                      f'clock (tolerance {self.cfg.future_tolerance_ns / 1e9:g} s)')
            return
        latest, last = self._mirror_stamp_ns, self._last_cycle_stamp_ns
        if latest is not None:
            if stamp_ns < latest - _RESTART_NS:
                if not self._restart_confirmed(stamp_ns):
                    self._drop('grid_stale', f'grid at {stamp_ns} ns is {(latest - stamp_ns) / 1e9:.1f} s before '
                                             f'the latest; {self.cfg.restart_grids} such grids in a row restart '
                                             f'the twin')
                    return
                self.get_logger().info(f'grid stamp went back {(latest - stamp_ns) / 1e9:.1f} s for '
                                       f'{self.cfg.restart_grids} grids: restarting the tracker')
                self._restart()
                last = None
            elif stamp_ns < latest or (last is not None and stamp_ns <= last):
                self._drop('grid_out_of_order', f'grid at {stamp_ns} ns is older than the latest at {latest} ns '
                                                f'or not newer than the last cycle')
                return
        self._restart_run.clear()
        cells = view.copy()      # the mirror owns its cells: an in-process publisher may reuse its message
        self._mirror_spec, self._mirror_cells, self._mirror_stamp_ns = spec, cells, stamp_ns
        self.grids_received += 1
        self.grid_rate.tick(now)
        self._note_arrival(now)
        if self.cfg.self_check:
            self._self_check(spec, cells, stamp_ns)
        if last is not None:
            if stamp_ns - last < 0.9 * self.cfg.min_cycle_period_ns:
                self.cycles_throttled += 1
                return
            if self._odom_received == self._odom_at_last_cycle:
                # No vehicle reported since the last cycle: the platoon would only be extrapolated
                # and the grid holds no newer evidence of it either (its cells freeze while the
                # vehicles drive on: stationary ghosts in their lane). Mirror, but do not cycle.
                self.cycles_held += 1
                return
        self._cycle(spec, cells, stamp_ns)

    def _restart_confirmed(self, stamp_ns: int) -> bool:
        """Note a stale grid; True when it is the ``restart_grids``-th in a row, each newer than the one before."""
        run = self._restart_run
        if run and not (run[-1] < stamp_ns <= run[-1] + _RESTART_NS):
            run.clear()
        run.append(stamp_ns)
        return len(run) >= self.cfg.restart_grids

    def _restart(self) -> None:
        """A replay restarted: forget tracks, pending self-checks, the mirror, odometry and radar."""
        self.core = TwinCore(self.cfg.twin)
        self._pending.clear()
        self._restart_run.clear()
        self._mirror_spec = self._mirror_cells = self._mirror_stamp_ns = None
        self._last_cycle_stamp_ns = None
        for vin in self.vehicles.values():
            vin.forget_streams()
        self.restarts += 1

    def _note_arrival(self, now_ns: int) -> None:
        """Inter-arrival bookkeeping; an interval above gap_factor x the median period is a gap."""
        if self._last_arrival_ns is not None:
            dt = now_ns - self._last_arrival_ns
            med = self.median_period_ns()
            if med is not None and len(self._intervals_ns) >= 3 and dt > self.cfg.gap_factor * med:
                self.gaps += 1
                self.max_gap_s = max(self.max_gap_s, dt / _NS_PER_S)
            if dt > 0:
                self._intervals_ns.append(dt)
        self._last_arrival_ns = now_ns

    # --------------------------------------------------------------- cycle --

    def platoon_at(self, stamp_ns: int) -> PlatoonState:
        """The platoon at ``stamp_ns`` (common time) from odometry.

        Per vehicle: the odometry sample nearest the stamp (its vehicle stamp mapped
        to common time), extrapolated along its heading at its speed, and moved from
        base_link to the centre of the vehicle's box (``length / 2 - rear overhang``
        ahead along the heading: the core works on box centres); acceleration
        from the speed change over at least ``accel_window_s``. Vehicles without
        odometry, or with odometry older than ``odom_max_age_s``, are left out;
        ``self.degraded`` says why, and which are stale or have an unknown clock.
        """
        cfg = self.cfg
        rows: list[tuple[str, float, float, float, float, float, float, float]] = []
        degraded: list[str] = []
        for i, v in enumerate(cfg.vehicles):
            vin = self.vehicles[v]
            if not vin.odom:
                vin.odom_age_ns = None
                degraded.append(f'{v}: no odometry')
                continue
            if vin.clock.n_samples == 0:
                degraded.append(f'{v}: clock unknown (no time reference)')
            samples = np.array([s[0] for s in vin.odom], dtype=np.int64)
            common = vin.to_common(samples)
            k = int(np.argmin(np.abs(common - stamp_ns)))
            age = int(stamp_ns - common[k])
            vin.odom_age_ns = age
            if age > cfg.odom_max_age_ns:
                degraded.append(f'{v}: odometry {age / 1e9:.2f} s old, left out')
                continue
            if age > cfg.stale_odom_ns:
                degraded.append(f'{v}: odometry stale ({age / 1e9:.2f} s)')
            degraded.extend(self.link_degraded(v))
            _, x, y, yaw, speed = vin.odom[k]
            older = np.nonzero(common <= common[k] - cfg.accel_window_ns)[0]
            accel = 0.0
            if older.size:
                j = int(older[-1])
                accel = (speed - vin.odom[j][4]) / ((common[k] - common[j]) / _NS_PER_S)
            ahead = speed * age / _NS_PER_S + 0.5 * cfg.lengths_m[i] - cfg.rear_overhangs_m[i]
            rows.append((v, x + ahead * math.cos(yaw), y + ahead * math.sin(yaw), max(speed, 0.0), yaw,
                         cfg.lengths_m[i], cfg.widths_m[i], accel))
        self.degraded = degraded
        if not rows:
            z = np.zeros(0)
            return PlatoonState((), z, z, z, z, z, z, np.zeros(0, np.int64), z)
        cols = list(zip(*rows))
        return PlatoonState(tuple(cols[0]), np.array(cols[1]), np.array(cols[2]), np.array(cols[3]),
                            np.array(cols[4]), np.array(cols[5]), np.array(cols[6]), np.arange(len(rows)),
                            np.array(cols[7]))

    def link_degraded(self, vehicle_id: str) -> list[str]:
        """What the twin measures wrong with the vehicle's links now: odometry or radar arriving late
        (median arrival - stamp above ``links.late_s``), odometry missing (share above
        ``links.missing_share``); e.g. ``['v2: odometry late 0.31 s', 'v2: 28 % of odometry missing']``."""
        cfg, vin, now = self.cfg, self.vehicles[vehicle_id], self.now_ns()
        out = []
        late = vin.odom_link.latency_ns(now)
        if late is not None and late > cfg.links_late_ns:
            out.append(f'{vehicle_id}: odometry late {late / 1e9:.2f} s')
        missing = vin.odom_link.missing_share(now)
        if math.isfinite(missing) and missing > cfg.links_missing_share:
            out.append(f'{vehicle_id}: {100.0 * missing:.0f} % of odometry missing')
        late = vin.radar_link.latency_ns(now)
        if cfg.use_radar and late is not None and late > cfg.links_late_ns:
            unused = ('' if late <= cfg.radar_max_age_ns else ' (beyond radar_max_age_s: moved to the grid time)'
                      if late <= cfg.radar_max_late_ns else ' (beyond radar_max_late_s: unused)')
            out.append(f'{vehicle_id}: radar late {late / 1e9:.2f} s{unused}')
        return out

    def radar_at(self, stamp_ns: int, platoon: PlatoonState
                 ) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
        """Radar targets (M, 3) x, y, v_radial at the stamp, and (M, 2) sensor positions (each vehicle's
        box centre, where it was when its radar saw them).

        Each vehicle's latest targets within ``radar_max_age_s`` of the stamp are used as they are; up
        to ``radar_max_late_s`` (a slow link) they are moved to the stamp along the road at their speed
        (:func:`radar_to_stamp`), beyond that left out.
        """
        cfg = self.cfg
        xyv, sensor = [], []
        for v, vin in self.vehicles.items():
            if vin.radar_stamp_ns is None or v not in platoon.ids or not len(vin.radar_xyv):
                continue
            dt_ns = stamp_ns - vin.radar_stamp_ns
            if abs(dt_ns) > max(cfg.radar_max_age_ns, cfg.radar_max_late_ns):
                continue
            i = platoon.ids.index(v)
            here = np.array([platoon.x[i], platoon.y[i]])
            if abs(dt_ns) <= cfg.radar_max_age_ns:
                xyv.append(vin.radar_xyv)
                sensor.append(np.broadcast_to(here, (len(vin.radar_xyv), 2)))
                continue
            dt_s = dt_ns / _NS_PER_S
            heading = np.array([math.cos(platoon.heading[i]), math.sin(platoon.heading[i])])
            moved, moved_sensor = radar_to_stamp(vin.radar_xyv, here - platoon.speed[i] * dt_s * heading, dt_s,
                                                 cfg.twin.radar_max_los_angle_deg)
            xyv.append(moved)
            sensor.append(moved_sensor)
        if not xyv:
            return None, None
        return np.concatenate(xyv), np.concatenate(sensor)

    def run_cycle(self, spec: GridSpec, cells: NDArray[np.int8], stamp_ns: int) -> TwinResult:
        """One twin step on a grid (no publishing); sets last_step_ms. Raises the core's errors."""
        platoon = self.platoon_at(stamp_ns)
        radar_xyv, radar_xy = self.radar_at(stamp_ns, platoon) if self.cfg.use_radar else (None, None)
        t0 = time.perf_counter()
        result = self.core.step(cells, spec, stamp_ns, platoon, radar_xyv, radar_xy)
        self.last_step_ms = 1e3 * (time.perf_counter() - t0)
        self._step_ms.append(self.last_step_ms)
        return result

    def _cycle(self, spec: GridSpec, cells: NDArray[np.int8], stamp_ns: int) -> None:
        t0 = time.perf_counter()
        try:
            result = self.run_cycle(spec, cells, stamp_ns)
        except SyncError as exc:
            self._drop('cycle_SyncError', str(exc))
            return
        unsynced = [v for v in result.rollout.platoon.ids if self.vehicles[v].clock.n_samples == 0]
        if unsynced and result.conflicts:
            # Odometry stamps of a vehicle without a time reference are taken as common time: its
            # box can be off by its clock offset times its speed (5 m for 0.2 s at 25 m/s), its
            # own cells then become obstacles. Predict, but do not warn on such a platoon.
            self.warnings_withheld += 1
            result = replace(result, conflicts=[], advisories={})
        self._last_cycle_stamp_ns = stamp_ns
        self._odom_at_last_cycle = self._odom_received
        self.last_result = result
        self.publish_result(result, spec)
        self.last_cycle_ms = 1e3 * (time.perf_counter() - t0)
        self.cycle_ms.add(self.last_cycle_ms)
        self.cycles += 1

    def publish_result(self, result: TwinResult, spec: GridSpec) -> None:
        """Predicted grids, warnings (always), advisories of warned vehicles, markers; queue self-checks."""
        cfg, stamp = self.cfg, result.stamp_ns
        for h, prob in result.grids.items():
            percent = np.rint(np.float32(100.0) * prob).astype(np.int8)
            target = stamp + _ns(h)
            self.predicted_pub.publish(grid_to_msg(spec, percent, target, cfg.map_frame))
            if cfg.self_check:
                self._pending.setdefault(target, []).append(_Pending(h, spec, percent))
        self.warnings_pub.publish(make_array(stamp, [self._warning(c, result.advisories.get(c.vehicle_id))
                                                     for c in result.conflicts]))
        for v, adv in result.advisories.items():
            pub = self.advisory_pubs.get(v)
            if pub is not None:
                pub.publish(advisory_to_path(self.advisory_of_base_link(adv), stamp, cfg.map_frame))
        if cfg.publish_markers:
            self.markers_pub.publish(twin_markers(result.tracks, result.rollout, result.conflicts,
                                                  cfg.twin.prediction.output_horizons_s, stamp, cfg.map_frame))

    def advisory_of_base_link(self, adv: Advisory) -> Advisory:
        """The advisory (box centres in core) as poses of the vehicle's base_link, like its odometry."""
        i = self.cfg.vehicles.index(adv.vehicle_id)
        back = 0.5 * self.cfg.lengths_m[i] - self.cfg.rear_overhangs_m[i]
        return replace(adv, x=adv.x - back * np.cos(adv.yaw), y=adv.y - back * np.sin(adv.yaw))

    @staticmethod
    def _warning(c: Conflict, adv: Advisory | None) -> DiagnosticStatus:
        values: dict[str, object] = {'ttc_s': c.ttc_s, 'distance_m': c.distance_m, 'x': c.x, 'y': c.y}
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
        return make_status(c.vehicle_id, Level(int(c.level)), message, values, hardware_id=c.vehicle_id)

    # ---------------------------------------------------------- self-check --

    def _self_check(self, spec: GridSpec, cells: NDArray[np.int8], stamp_ns: int) -> None:
        """Score pending predictions whose target is at most half a period before ``stamp_ns``."""
        if not self._pending:
            return
        period = self.median_period_ns() or self.cfg.min_cycle_period_ns
        half = period // 2
        for target in sorted(self._pending):
            if target > stamp_ns:
                break
            entries = self._pending.pop(target)
            if stamp_ns - target > half:
                self.self_check_missed += len(entries)
                continue
            for e in entries:
                try:
                    ov = _overlap(spec, e.spec) if e.spec != spec else ((slice(None),) * 2, (slice(None),) * 2)
                except ConfigError:
                    ov = None
                if ov is None:
                    self.self_check_missed += 1
                    continue
                obs, pred = cells[ov[0]], e.percent[ov[1]].astype(np.float32) / np.float32(100.0)
                scores = self._scores.setdefault(e.horizon_s, {'iou': deque(maxlen=_SELF_CHECK_WINDOW),
                                                               'brier': deque(maxlen=_SELF_CHECK_WINDOW)})
                scores['iou'].append(iou(pred, obs))
                scores['brier'].append(brier(pred, obs))

    def self_check_values(self) -> dict[str, float | int]:
        """``self_check.iou_<h>s`` / ``self_check.brier_<h>s`` (mean of recent finite scores, NaN if none),
        ``self_check.count_<h>s`` and ``self_check.missed``."""
        out: dict[str, float | int] = {}
        for h, scores in sorted(self._scores.items()):
            key = horizon_key(h)
            for name in ('iou', 'brier'):
                finite = [s for s in scores[name] if math.isfinite(s)]
                out[f'self_check.{name}_{key}s'] = float(np.mean(finite)) if finite else math.nan
            out[f'self_check.count_{key}s'] = len(scores['brier'])
        out['self_check.missed'] = self.self_check_missed
        return out

    # --------------------------------------------------------- diagnostics --

    def diagnostics_values(self) -> dict[str, object]:
        """The node's health as /diagnostics carries it (make_status formats the values).

        grid.* : mirror rate, age (node clock - stamp), staleness, gaps, size; cycles,
        cycles_throttled and cycles_held (grids with no odometry since the last cycle); restarts
        (replay restarts: ``restart_grids`` grids in a row stamped over 5 s before the latest);
        warnings_withheld (cycles whose conflicts were dropped while a vehicle's clock was unknown);
        tracks and conflicts of the last cycle; step_ms (TwinCore.step),
        cycle_ms.* (step + publishing); twin_speedup = horizon_s / median step time
        (predicted seconds per wall second); vehicle.<v>.* odometry age and clock fit, and the links
        as received: odom_late_s / radar_late_s (median arrival - stamp over links.window_s),
        odom_missing_share, odom_reordered, odom_duplicates;
        self_check.*; degraded (which inputs); drops.<cause> / drops.total.
        """
        cfg, now = self.cfg, self.now_ns()
        values: dict[str, object] = {'grid.received': self.grids_received,
                                     'grid.rate_hz': self.grid_rate.rate_hz(now)}
        if self._mirror_stamp_ns is not None and self._mirror_spec is not None:
            age = (now - self._mirror_stamp_ns) / _NS_PER_S
            values.update({'grid.age_s': age, 'grid.stale': age > cfg.stale_grid_ns / _NS_PER_S,
                           'grid.width': self._mirror_spec.width, 'grid.height': self._mirror_spec.height})
        else:
            values.update({'grid.age_s': math.nan, 'grid.stale': True})
        med = self.median_period_ns()
        values.update({'grid.period_s': math.nan if med is None else med / _NS_PER_S, 'grid.gaps': self.gaps,
                       'grid.max_gap_s': self.max_gap_s, 'cycles': self.cycles,
                       'cycles_throttled': self.cycles_throttled, 'cycles_held': self.cycles_held,
                       'warnings_withheld': self.warnings_withheld, 'restarts': self.restarts})
        r = self.last_result
        values['tracks'] = 0 if r is None else len(r.tracks)
        values['conflicts'] = 0 if r is None else len(r.conflicts)
        values['step_ms'] = self.last_step_ms
        values.update(self.cycle_ms.as_values('cycle_ms.'))
        step = statistics.median(self._step_ms) if self._step_ms else math.nan
        values['twin_speedup'] = cfg.twin.prediction.horizon_s * 1e3 / step if step > 0 else math.nan
        for v, vin in self.vehicles.items():
            values[f'vehicle.{v}.odom_age_s'] = math.nan if vin.odom_age_ns is None else vin.odom_age_ns / _NS_PER_S
            values[f'vehicle.{v}.clock_samples'] = vin.clock.n_samples
            values[f'vehicle.{v}.clock_offset_ms'] = vin.clock.offset_ns / 1e6 if vin.clock.n_samples else math.nan
            values[f'vehicle.{v}.clock_drift_ppm'] = vin.clock.drift_ppm
            late = vin.odom_link.latency_ns(now)
            values[f'vehicle.{v}.odom_late_s'] = math.nan if late is None else late / _NS_PER_S
            values[f'vehicle.{v}.odom_missing_share'] = vin.odom_link.missing_share(now)
            values[f'vehicle.{v}.odom_reordered'] = vin.odom_link.reordered
            values[f'vehicle.{v}.odom_duplicates'] = vin.odom_link.duplicates
            late = vin.radar_link.latency_ns(now)
            values[f'vehicle.{v}.radar_late_s'] = math.nan if late is None else late / _NS_PER_S
        values.update(self.self_check_values())
        values['degraded'] = '; '.join(self.current_degraded()) or 'none'
        values.update(self.drops.as_values('drops.'))
        return values

    def current_degraded(self) -> list[str]:
        """Inputs that are missing or stale now: the grid, then each vehicle (from the last cycle)."""
        out: list[str] = []
        if self._mirror_stamp_ns is None:
            out.append('grid: none received')
        elif self.now_ns() - self._mirror_stamp_ns > self.cfg.stale_grid_ns:
            out.append(f'grid: stale ({(self.now_ns() - self._mirror_stamp_ns) / 1e9:.2f} s old)')
        return out + self.degraded

    def _publish_diagnostics(self) -> None:
        values = self.diagnostics_values()
        total = self.drops.total
        degraded = self.current_degraded()
        if self.grids_received == 0:
            level, message = Level.STALE, 'no grid yet'
        elif degraded:
            level, message = Level.WARN, 'degraded: ' + '; '.join(degraded)
        elif total > self._drops_reported:
            level, message = Level.WARN, f'{total - self._drops_reported} input(s) dropped since the last report'
        else:
            level, message = Level.OK, f'{self.cycles} cycles, {values["tracks"]} tracks'
        self._drops_reported = total
        self.diag_pub.publish(make_array(self.now_ns(), [make_status(NODE_NAME, level, message, values)]))


def create_node(**kwargs: Any) -> TwinNode:
    """A TwinNode for in-process composition; ``kwargs`` go to ``rclpy.node.Node``."""
    return TwinNode(**kwargs)


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(TwinNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
