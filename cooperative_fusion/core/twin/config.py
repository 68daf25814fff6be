"""The twin node's settings: its parameter table and the parameter -> config mapping.

:data:`PARAMETERS` lists every parameter but the topic and frame names (the node
declares those, with defaults from ``ros/names.py``); :func:`config_from_params`
turns a plain ``{dotted.name: value}`` mapping of all of them into a validated
:class:`TwinNodeConfig`. :func:`twin_config_from_params` is the part that builds
the core :class:`TwinConfig`; the evaluation reads a twin parameter file through it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

from ..config_values import config_from_values
from ..errors import ConfigError
from ..platoon import PlatoonConfig
from ..road import RoadConfig
from ..timebase import ClockFitConfig
from .conflicts import ConflictConfig
from .idm import IdmParams
from .prediction import PredictionConfig
from .tracking import TrackerConfig
from .twin_core import TwinConfig

_NS_PER_S = 1_000_000_000


class ParamRow(NamedTuple):
    """One parameter: name (dotted for nesting), default, description, optional numeric range
    (the fields of ``ros.params.Param``)."""

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None


_D_TRACKER = TrackerConfig()
_D_PRED = PredictionConfig()
#: The platoon's own car-following controller (the default scenario's CACC-like IDM: 15 m gaps at 25 m/s).
_D_IDM = IdmParams(v0_mps=30.0, time_headway_s=0.35)
_D_CONF = ConflictConfig()
_D_TWIN = TwinConfig()
_D_CLOCK = ClockFitConfig()
_D_ROAD = RoadConfig()

#: Every parameter of the twin but its topic and frame names (the node adds those), in one place;
#: config/twin.yaml documents each row.
PARAMETERS: tuple[ParamRow, ...] = (
    # platoon
    ParamRow('vehicles', ['v1', 'v2', 'v3', 'v4'], 'platoon vehicle ids in platoon order (leader first)'),
    ParamRow('vehicle_lengths_m', [4.5, 12.0, 4.5, 4.5], 'length of each vehicle of `vehicles`, metres'),
    ParamRow('vehicle_widths_m', [1.8, 2.5, 1.8, 1.8], 'width of each vehicle of `vehicles`, metres'),
    ParamRow('vehicle_rear_overhangs_m', [1.0, 2.5, 1.0, 1.0],
             'rear face to base_link (the odometry origin) of each vehicle of `vehicles`, metres'),
    # cycle and freshness
    ParamRow('max_rate_hz', 10.0, 'at most this many twin cycles per second of grid time', 0.1, 1000.0),
    ParamRow('stale_grid_s', 0.5, 'a grid older than this (node clock - stamp) is stale: WARN, seconds', 0.001, 3600.0),
    ParamRow('gap_factor', 2.5, 'a grid inter-arrival above this times the median period is a gap', 1.0, 100.0),
    ParamRow('future_tolerance_s', 2.0,
             'a grid, odometry (clock known) or radar stamp further than this ahead of the node clock is dropped, '
             'seconds', 0.001, 3600.0),
    ParamRow('restart_grids', 3,
             'a grid stamped over 5 s before the latest is dropped as stale unless this many such grids in a row, '
             'each newer than the one before, confirm a replay restart (the tracker starts afresh)', 1, 1000),
    ParamRow('stale_odom_s', 0.5, 'odometry older than this at the grid stamp is stale: WARN, seconds',
             0.001, 3600.0),
    ParamRow('odom_max_age_s', 5.0, 'odometry older than this at the grid stamp leaves the vehicle out, seconds',
             0.001, 3600.0),
    ParamRow('accel_window_s', 0.3, 'acceleration = speed difference over at least this much odometry, seconds',
             0.01, 10.0),
    ParamRow('radar_max_age_s', 0.2, 'radar targets within this of the grid stamp are used as they are, seconds',
             0.0, 10.0),
    ParamRow('radar_max_late_s', 1.0, 'radar targets further than radar_max_age_s from the grid stamp, up to this, are '
             'moved to it along the road at their speed (line of sight within radar.max_los_angle_deg of the road); '
             'further ones are not used, seconds', 0.0, 10.0),
    ParamRow('use_radar', True, 'use radar targets as velocity hints for new detections'),
    ParamRow('self_check', True, 'score predicted grids against the mirrored grid at their target time'),
    ParamRow('publish_markers', True, 'publish /twin/markers'),
    # prediction
    ParamRow('horizon_s', 6.0,
             'rollout length, seconds (covers conflicts.ttc_warn_s: a warning\'s contact lies inside it)', 0.01, 60.0),
    ParamRow('dt_s', _D_PRED.dt_s, 'rollout step, seconds', 0.001, 10.0),
    ParamRow('output_horizons_s', list(_D_PRED.output_horizons_s),
             'horizons of the predicted grids, seconds (multiples of dt_s, <= horizon_s)'),
    ParamRow('prediction.sigma0_m', _D_PRED.sigma0_m, 'predicted footprint blur at horizon 0, metres', 0.001, 100.0),
    ParamRow('prediction.sigma_growth_mps', _D_PRED.sigma_growth_mps, 'blur growth per second of horizon, m/s',
             0.0, 100.0),
    ParamRow('prediction.platoon_sigma_growth_mps', _D_PRED.platoon_sigma_growth_mps,
             'blur growth of the platoon vehicles per second of horizon, m/s', 0.0, 100.0),
    ParamRow('prediction.obstacle_model', _D_PRED.obstacle_model.value, 'obstacle motion in the rollout: cv or ctrv'),
    ParamRow('prediction.lane_half_width_m', _D_PRED.lane_half_width_m,
             'rollout: an obstacle this close to a lane centre line is followed, metres', 0.01, 100.0),
    ParamRow('prediction.window_sigmas', _D_PRED.window_sigmas, 'raster window past each box, in sigmas', 0.5, 20.0),
    ParamRow('prediction.lateral_deadband_mps', _D_PRED.lateral_deadband_mps,
             'obstacles slower than this across the road keep their lane in the rollout, m/s', 0.0, 100.0),
    ParamRow('prediction.lateral_sigmas', _D_PRED.lateral_sigmas,
             '... or than this many of the track\'s own vy std', 0.0, 100.0),
    ParamRow('prediction.lateral_max_std_mps', _D_PRED.lateral_max_std_mps,
             '... and only tracks whose vy std is at most this (and seen in the latest grid) move across the road, '
             'm/s', 0.0, 100.0),
    ParamRow('prediction.max_lateral_shift_m', _D_PRED.max_lateral_shift_m,
             'an obstacle moves across the road by at most this in the rollout (one lane change), metres',
             0.01, 100.0),
    ParamRow('prediction.leader_keeps_speed', _D_PRED.leader_keeps_speed,
             'the platoon leader cruises at its current speed on a free road (followers use idm.v0_mps)'),
    ParamRow('idm.v0_mps', _D_IDM.v0_mps, 'IDM desired speed, m/s', 0.01, 100.0),
    ParamRow('idm.time_headway_s', _D_IDM.time_headway_s, 'IDM desired time gap, seconds', 0.0, 10.0),
    ParamRow('idm.a_max', _D_IDM.a_max, 'IDM maximum acceleration, m/s^2', 0.01, 20.0),
    ParamRow('idm.b_comf', _D_IDM.b_comf, 'IDM comfortable deceleration, m/s^2', 0.01, 20.0),
    ParamRow('idm.s0_m', _D_IDM.s0_m, 'IDM jam distance, metres', 0.0, 100.0),
    ParamRow('idm.delta', _D_IDM.delta, 'IDM acceleration exponent', 0.1, 20.0),
    # detection on the grid
    ParamRow('detection.occupied_threshold', _D_TWIN.occupied_threshold, 'a cell is occupied at this percent or more',
             1, 100),
    ParamRow('detection.min_cells', _D_TWIN.min_cells, 'smaller occupied components are noise, cells', 1, 100000),
    ParamRow('detection.exclude_margin_m', _D_TWIN.exclude_margin_m,
             'platoon footprints grow by this before their cells are cleared, metres', 0.0, 10.0),
    ParamRow('detection.exclude_trail_s', 0.2,
             'platoon footprints also reach back over the distance driven in this long (grid latency), seconds',
             0.0, 10.0),
    ParamRow('detection.exclude_front_m', 1.5,
             'platoon footprints also reach this far ahead of each front (own near-field returns), metres', 0.0, 10.0),
    ParamRow('detection.merge_gap_m', 1.0,
             'occupied components at most this far apart are one object (pieces of one car), metres', 0.0, 10.0),
    ParamRow('detection.merge_gap_across_m', 0.4,
             '... but at most this far apart across the road (cars in adjacent lanes are drawn under 1 m apart), '
             'metres', 0.0, 10.0),
    ParamRow('detection.box_centre', False,
             'a detection lies at the centre of the box its cells span, not at their mean (true: the predicted grids '
             'fit better, but cut-in warnings come 0.4-0.5 s later; see docs/twin.md, fifth pass)'),
    ParamRow('detection.road_axes', True,
             'a detection\'s box is spanned along and across the road, not along its cells\' principal axes (a car '
             'seen in part has them 0.3 rad or more off its heading: a box wider and longer than its cells)'),
    ParamRow('detection.pieces_move_together', True,
             'a track whose box comes within piece_gap_m along the road of that of a track with more detections '
             '(centres within piece_across_m across it) is a piece of that object and moves at its along-road speed '
             'in the rollout (false: each track at its own)'),
    ParamRow('detection.piece_gap_m', 1.0, '... this close along the road (overlapping: any), metres', 0.0, 10.0),
    ParamRow('detection.piece_across_m', 1.0, '... centres at most this far apart across the road, metres', 0.0, 10.0),
    ParamRow('detection.include_platoon_in_grids', _D_TWIN.include_platoon_in_grids,
             'draw the platoon vehicles in the predicted grids'),
    ParamRow('radar.radius_m', _D_TWIN.radar_radius_m, 'a radar target hints a detection within this, metres',
             0.01, 100.0),
    ParamRow('radar.max_los_angle_deg', _D_TWIN.radar_max_los_angle_deg,
             'radial speed is used only where line of sight and road are within this, degrees', 0.1, 89.0),
    # tracker
    ParamRow('tracker.model', _D_TRACKER.model.value, 'Kalman motion model: cv or ca'),
    ParamRow('tracker.process_noise_accel', 3.0,
             'white acceleration std (cv, m/s^2) or jerk std (ca, m/s^3)', 1e-6, 100.0),
    ParamRow('tracker.meas_noise_m', _D_TRACKER.meas_noise_m, 'detection centroid std, metres', 1e-6, 100.0),
    ParamRow('tracker.meas_noise_vel_mps', _D_TRACKER.meas_noise_vel_mps, 'radar velocity hint std, m/s',
             1e-6, 100.0),
    ParamRow('tracker.gate_chi2', _D_TRACKER.gate_chi2, 'Mahalanobis gate (2 dof; 9.21 = 99 %)', 0.01, 1000.0),
    ParamRow('tracker.confirm_hits', _D_TRACKER.confirm_hits, 'hits that confirm a track ...', 1, 100),
    ParamRow('tracker.confirm_window', _D_TRACKER.confirm_window, '... within this many first frames', 1, 100),
    ParamRow('tracker.max_misses', _D_TRACKER.max_misses, 'consecutive misses that delete a confirmed track', 1, 1000),
    ParamRow('tracker.init_velocity_std_mps', _D_TRACKER.init_velocity_std_mps, 'new track velocity std, m/s',
             1e-6, 1000.0),
    ParamRow('tracker.init_accel_std_mps2', _D_TRACKER.init_accel_std_mps2, 'new track acceleration std (ca), m/s^2',
             1e-6, 1000.0),
    ParamRow('tracker.size_smoothing', _D_TRACKER.size_smoothing, 'weight of a new detection in a track\'s size',
             0.0, 1.0),
    ParamRow('tracker.spawn_radius_m', 5.0, 'a new track without a radar hint this close to a confirmed track starts '
             'at its velocity (a new piece of a car seen in pieces), not at rest (0: at rest), metres', 0.0, 100.0),
    ParamRow('tracker.merge_tracks', False, 'a detection holding several tracks is one object seen whole: the track '
             'with the most hits takes it, moved onto it with its velocity kept, the others coast (and a track '
             'whose box holds another detection besides its own is moved onto its own the same way)'),
    ParamRow('tracker.extent_noise', False, 'in the Kalman update, a detection whose extent along map x or y '
             'differs from its track\'s adds the centroid shift that difference allows to its measurement noise '
             '(difference^2 / 12; the gate keeps meas_noise_m): a piece seen larger or smaller is not read as '
             'motion (false: meas_noise_m alone)'),
    # conflicts and advice
    ParamRow('conflicts.ttc_warn_s', _D_CONF.ttc_warn_s, 'WARN below this time to collision, seconds', 0.01, 100.0),
    ParamRow('conflicts.ttc_error_s', _D_CONF.ttc_error_s, 'ERROR below this time to collision, seconds', 0.01, 100.0),
    ParamRow('conflicts.gap_warn_m', _D_CONF.gap_warn_m, 'WARN below this gap to a closing actor in the path, metres',
             0.0, 1000.0),
    ParamRow('conflicts.gap_error_m', _D_CONF.gap_error_m, 'ERROR below this gap, metres', 0.0, 1000.0),
    ParamRow('conflicts.comfortable_decel_mps2', _D_CONF.comfortable_decel_mps2,
             'ERROR when keeping the safe gap needs more than this, m/s^2', 0.01, 20.0),
    ParamRow('conflicts.max_decel_mps2', _D_CONF.max_decel_mps2,
             'strongest advised deceleration, and the braking limit of every vehicle in the rollout, m/s^2',
             0.01, 20.0),
    ParamRow('conflicts.safe_gap_m', _D_CONF.safe_gap_m, 'advisories end this far behind the other actor, metres',
             0.0, 1000.0),
    ParamRow('conflicts.lane_half_width_m', _D_CONF.lane_half_width_m,
             'an actor this close to a lane centre line is in the path, metres', 0.01, 100.0),
    ParamRow('conflicts.min_closing_speed_mps', _D_CONF.min_closing_speed_mps,
             'slower closing is not closing, m/s', 1e-6, 100.0),
    ParamRow('conflicts.propagate_to_followers', _D_CONF.propagate_to_followers,
             'a follower inherits at least WARN from its predecessor\'s conflict'),
    ParamRow('conflicts.propagate_max_ttc_s', _D_CONF.propagate_max_ttc_s,
             '... when the follower\'s own TTC to that obstacle is below this, seconds', 0.01, 1000.0),
    ParamRow('conflicts.min_track_hits', 8, 'a track raises conflicts only after this many detections (more than '
             'the grids a single radar false alarm stays occupied: about 6)', 1, 1000),
    ParamRow('conflicts.max_track_misses', 0, '... and only while it missed at most this many grids in a row '
             '(a coasting track is extrapolated, not seen)', 0, 1000),
    ParamRow('conflicts.known_velocity_hits', 4, '... or after this many when its along-road velocity is known '
             '(0: only min_track_hits)', 0, 1000),
    ParamRow('conflicts.known_velocity_std_mps', _D_CONF.known_velocity_std_mps,
             '... to this 1-sigma std (tracker covariance), m/s', 1e-6, 100.0),
    ParamRow('conflicts.predecessor_reacts', _D_CONF.predecessor_reacts,
             'judge the platoon predecessor in the IDM rollout, where the follower\'s controller reacts '
             '(else: no reaction, like obstacles)'),
    ParamRow('conflicts.closing_sigmas', 3.0, 'an obstacle closes only faster than this many stds of its tracked '
             'speed (0: only min_closing_speed_mps)', 0.0, 100.0),
    ParamRow('conflicts.own_body_speed_tol_mps', _D_CONF.own_body_speed_tol_mps,
             'an obstacle overlapping a platoon vehicle and this close to its speed is that vehicle, m/s', 0.0, 100.0),
    ParamRow('conflicts.advisory_dt_s', _D_CONF.advisory_dt_s, 'shortest spacing of the braking poses of an '
             'advisory, seconds', 0.001, 10.0),
    ParamRow('conflicts.advisory_hold_s', _D_CONF.advisory_hold_s,
             'advisory continues this long after braking, seconds', 0.0, 60.0),
    ParamRow('conflicts.advisory_max_poses', _D_CONF.advisory_max_poses,
             'most poses per advisory (12 keep a nav_msgs/Path under 1,200 bytes)', 4, 1000),
    # the road, fitted to the platoon's own path (core.road)
    ParamRow('road.history_m', _D_ROAD.history_m,
             'platoon path kept behind the leader for the road fit, metres', 1.0, 10000.0),
    ParamRow('road.history_s', _D_ROAD.history_s, '... and at most this old, seconds', 0.1, 3600.0),
    ParamRow('road.min_points', _D_ROAD.min_points,
             'fewer path points give a straight road along the leader\'s heading', 3, 100000),
    ParamRow('road.min_length_m', _D_ROAD.min_length_m, '... as does a path shorter than this, metres', 0.1, 10000.0),
    ParamRow('road.sample_spacing_m', _D_ROAD.sample_spacing_m,
             'a vehicle\'s path point is kept once it moved this far (a stopped platoon keeps its road), metres',
             0.01, 1000.0),
    ParamRow('road.max_curvature_per_m', _D_ROAD.max_curvature_per_m,
             'a fit curving more sharply than this is refused (the last road is kept), 1/m', 1e-6, 1.0),
    ParamRow('road.weight_length_m', _D_ROAD.weight_length_m,
             'path points this far behind the leader weigh 1/e in the fit, metres', 1.0, 100000.0),
    ParamRow('road.outlier_m', _D_ROAD.outlier_m,
             'path points further than this from the fit are left out (a member in another lane), metres',
             0.01, 100.0),
    ParamRow('road.curvature_sigmas', _D_ROAD.curvature_sigmas,
             'the road is curved only where the fitted curvature exceeds this many standard errors', 0.0, 100.0),
    ParamRow('road.axis_snap_heading_deg', math.degrees(_D_ROAD.axis_snap_heading_rad),
             'a fitted road within this heading of map x ...', 0.0, 10.0),
    ParamRow('road.axis_snap_curvature_per_m', _D_ROAD.axis_snap_curvature_per_m,
             '... and this curvature, 1/m ...', 0.0, 1.0),
    ParamRow('road.axis_snap_offset_m', _D_ROAD.axis_snap_offset_m,
             '... and this offset from the origin is taken as the map x axis itself (road = map coordinates), '
             'metres', 0.0, 100.0),
    # clocks
    ParamRow('clock.window_s', _D_CLOCK.window_ns / _NS_PER_S, 'time-reference pairs kept for the clock fit, seconds',
             0.001, 3600.0),
    ParamRow('clock.min_samples', _D_CLOCK.min_samples, 'pairs before offset and drift are fitted', 2, 10000),
    ParamRow('clock.outlier_threshold_s', _D_CLOCK.outlier_threshold_ns / _NS_PER_S,
             'a pair off the fit by more than this is an outlier, seconds', 1e-9, 10.0),
    ParamRow('clock.max_drift_ppm', _D_CLOCK.max_drift_ppm, 'bound on the fitted clock drift, ppm', 0.001, 1e6),
    # qos / diagnostics
    ParamRow('qos.state_depth', 50, 'queue depth of odometry, time reference and radar subscriptions', 1, 10000),
    ParamRow('qos.output_depth', 10, 'queue depth of the output publishers', 1, 1000),
    ParamRow('diagnostics.period_s', 1.0, 'period of /diagnostics, seconds', 0.01, 3600.0),
    # link quality of each vehicle's odometry and radar as the twin receives them (core.link)
    ParamRow('links.window_s', 2.0, 'arrival-time window of the per-vehicle link statistics, seconds', 0.01, 3600.0),
    ParamRow('links.late_s', 0.25,
             'odometry or radar arriving later than this (median arrival - stamp) is reported in degraded, seconds',
             0.0, 3600.0),
    ParamRow('links.missing_share', 0.2,
             'a share of a vehicle\'s odometry missing above this (over links.window_s) is reported in degraded',
             0.0, 1.0),
)




def _ns(seconds: float) -> int:
    return int(round(seconds * _NS_PER_S))


def with_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` completed with the defaults of :data:`PARAMETERS`; an int where the default is a float
    becomes a float (as a declared ROS parameter does)."""
    out = dict(values)
    for row in PARAMETERS:
        value = out.setdefault(row.name, row.default)
        if isinstance(row.default, float) and isinstance(value, int) and not isinstance(value, bool):
            out[row.name] = float(value)
    return out


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
    """The node's validated settings (see PARAMETERS for each field's meaning; times in ns)."""

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

    @property
    def platoon(self) -> PlatoonConfig:
        """The platoon and how its odometry is used (core.platoon)."""
        return PlatoonConfig(self.vehicles, self.lengths_m, self.widths_m, self.rear_overhangs_m,
                             stale_odom_ns=self.stale_odom_ns, odom_max_age_ns=self.odom_max_age_ns,
                             accel_window_ns=self.accel_window_ns, future_tolerance_ns=self.future_tolerance_ns,
                             clock=self.clock, links_window_ns=self.links_window_ns,
                             links_late_ns=self.links_late_ns, links_missing_share=self.links_missing_share)


def twin_config_from_params(values: Mapping[str, Any]) -> TwinConfig:
    """The core TwinConfig (tracker, prediction, conflicts, detection) from parameter values, each config's
    fields by name from its prefix (``tracker.``, ``prediction.``, ``idm.``, ``conflicts.``, ``detection.``)."""
    prediction = config_from_values(
        PredictionConfig, values, 'prediction.', horizon_s=values['horizon_s'], dt_s=values['dt_s'],
        output_horizons_s=tuple(float(h) for h in values['output_horizons_s']),
        idm=config_from_values(IdmParams, values, 'idm.'), max_decel_mps2=values['conflicts.max_decel_mps2'])
    return config_from_values(
        TwinConfig, values, 'detection.', tracker=config_from_values(TrackerConfig, values, 'tracker.'),
        prediction=prediction, conflicts=config_from_values(ConflictConfig, values, 'conflicts.'),
        road=config_from_values(RoadConfig, values, 'road.'),
        radar_radius_m=values['radar.radius_m'], radar_max_los_angle_deg=values['radar.max_los_angle_deg'])


def config_from_params(values: Mapping[str, Any]) -> TwinNodeConfig:
    """The validated TwinNodeConfig from the value of every parameter (:data:`PARAMETERS`, ``frames.map`` and
    ``topics.*``). Raises ConfigError naming the bad value."""
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
    twin = twin_config_from_params(values)
    clock = config_from_values(ClockFitConfig, values, 'clock.')
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
