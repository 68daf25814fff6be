"""Fusion node: every vehicle's per-cycle evidence grid -> one common occupancy grid.

Subscribes, for each configured vehicle ``<v>`` (parameter ``vehicles``):
``/<v>/evidence_grid`` (nav_msgs/OccupancyGrid in ``map``, stamped in common
time; cells are percent, -1 unknown) and ``/<v>/odom`` (nav_msgs/Odometry: only
the latest position, heading and xy pose covariance are used, so its
vehicle-clock stamp does not matter), and with ``dynamic.enabled``
``/<v>/radar/targets`` (PointCloud2 in ``map``, x, y, velocity). Publishes the posterior as
nav_msgs/OccupancyGrid on ``topics.output`` (default ``/cooperative/grid``,
RELIABLE + TRANSIENT_LOCAL depth 1, so a late joiner gets the latest grid at
once) and its health on ``/diagnostics``.

The node is thin; the maths is :class:`~cooperative_fusion.core.fusion.common_grid.CommonGrid`
(Bayesian log-odds, decay, pose blur and weight, fresh-free-wins) and
:func:`~cooperative_fusion.core.fusion.coregistration.estimate_offset`:

* evidence callback: frame check, ``grid_from_msg`` -> ``percent_to_logodds``,
  the vehicle's co-registration correction (if any) applied to the grid (about
  the vehicle's odometry position at the evidence stamp), then
  the cross-vehicle consistency check (``consistency.*``,
  :class:`~cooperative_fusion.core.fusion.consistency.ConsistencyChecker`: cells that
  contradict two or more other vehicles' evidence of about the same time are
  scaled down, the vehicle's consistency score is updated; free road within
  ``consistency.max_speed_mps`` times the two stamps' difference along the
  vehicle's heading of an occupied cell is not compared), then
  with ``dynamic.enabled`` the moving components go to the dynamic layer
  (:class:`~cooperative_fusion.core.fusion.dynamic.DynamicLayer`: connected
  components, along-road speed from the same vehicle's ``/<v>/radar/targets``
  or from tracking its previous components; moving ones are kept as objects,
  not fused), then ``CommonGrid.integrate(..., now_ns=common now,
  pose_cov_xy)`` of the rest; a drop is counted per vehicle and cause and
  logged once per cause (throttled); with ``publish_on_evidence`` an accepted
  message is followed by a publish (no sooner than ``publish_min_interval_s``
  after the previous one), so fresh evidence does not wait for the timer;
* publish timer (``publish_rate_hz``, node clock, so sim time and the
  lock-step runner work): in ``follow_platoon`` mode recentre the window on the
  platoon centroid (+ ``forward_offset_m`` along the mean heading) when it has
  moved by a cell or more, ``advance(now)``, publish ``posterior_percent()``
  with the moving objects drawn where they are at ``now`` (moved by
  ``v·(now - stamp)``) and the members' bodies, stamped ``now``, record
  ``publish - sensor stamp`` latencies;
* co-registration timer (``coregistration.period_s``): all vehicles' static
  cells (occupied, p >= 0.65) registered together
  (:func:`~cooperative_fusion.core.fusion.coregistration.register_platoon`: each against
  the others' moved by their latest estimates, ``coregistration.sweeps`` times,
  then the platoon's median correction removed, so the majority defines
  ``map``); each point turns about the vehicle's odometry position at its stamp
  (a pose error travels with the vehicle); only static structure is
  registered: with ``coregistration.static_min_age_s`` > 0, a vehicle's cells
  that its own evidence at least that much older also holds (within
  ``coregistration.static_tolerance_m``, :func:`~cooperative_fusion.core.fusion.coregistration.persistent_points`),
  so moving traffic, seen at different stamps by different vehicles, does not
  pull the estimate; the static cells of each vehicle's evidence over the last
  ``coregistration.accumulate_s`` are registered together (a post stays put in
  ``map``: the leader sees it far ahead, the followers a second or two later);
  an accepted estimate is blended into the vehicle's correction by an
  exponential average (``coregistration.smoothing``) so it never jumps;
* discovery timer: ``/<id>/evidence_grid`` topics of ids not in ``vehicles`` are
  not subscribed and are reported in ``/diagnostics`` as ignored.

Applying a correction (:func:`warp_evidence`): the evidence grid is resampled
through the correction with nearest-cell lookup (``scipy.ndimage.affine_transform``
order 0) on log-odds and on the known mask, onto the same lattice with a margin
for the shift. Values are never mixed: a one-cell occupied wall keeps its full
log-odds instead of smearing into two half-confident cells (what bilinear
resampling would do); the price is a position error of at most half a cell, the
lattice's own quantisation.

Where it runs: nothing here assumes the edge. A vehicle runs its own copy (its
own common grid from the V2V evidence it hears), typically with ``-r
__ns:=/v1`` and ``-p topics.output:=/v1/cooperative/grid``. "Now" is the node
clock taken as common time (the edge, sim time, a GNSS-disciplined clock); when
the node clock is a vehicle clock, set ``time_reference_topic`` to that
vehicle's ``/<v>/time_reference`` and the clock is mapped to common time with
:class:`~cooperative_fusion.core.timebase.ClockEstimator`.

Run: ``fusion_node --ros-args --params-file config/fusion.yaml``.
"""
from __future__ import annotations

import math
import re
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from numpy.typing import NDArray
from scipy import ndimage
from sensor_msgs.msg import PointCloud2, TimeReference

from ..core.fusion.consistency import ConsistencyChecker, ConsistencyConfig
from ..core.fusion.coregistration import CoregConfig, CoregResult, occupied_points, persistent_points, register_platoon
from ..core.errors import ConfigError, CooperativeFusionError, MessageFormatError
from ..core.fusion.dynamic import DynamicConfig, DynamicLayer, RadarTargets
from ..core.fusion.common_grid import (CommonGrid, DropCause, Footprint, FusionConfig, draw_members, drop_member_hits,
                           member_box_mask, resample_to_resolution)
from ..core.grid import GridSpec, percent_to_logodds
from ..core.link import LinkMonitor, age_limit_ns
from ..core.timebase import ClockEstimator
from ..ros.diagnostics import DropCounter, LatencyStats, Level, RateMeter, make_array, make_status
from ..ros.grid import grid_from_msg, grid_to_msg
from ..ros.odometry import covariance_is_psd, odometry_to_pose
from ..ros.params import Param, declare
from ..ros.pointcloud import cloud_to_array
from ..ros.qos import diagnostics_qos, evidence_qos, latched_qos, state_qos
from ..ros.time import stamp_to_ns, time_reference_to_ns
from .entry import SetupNode, spin_node

NODE_NAME = 'fusion_node'
_NS_PER_S = 1_000_000_000
_EVIDENCE_TOPIC = re.compile(r'^/([^/]+)/evidence_grid$')
_VEHICLE_ID = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')

#: Drop causes the node adds to core's DropCause values (the diagnostics keys ``drops.<cause>``).
MALFORMED = 'malformed'            # OccupancyGrid whose layout does not match its fields
FRAME = 'frame'                    # evidence or odometry not in the fusion frame
BAD_COVARIANCE = 'bad_covariance'  # odometry xy covariance non-finite or not PSD (pose and last good cov kept)
MALFORMED_ODOM = 'malformed_odom'  # odometry with a non-finite position / orientation / twist
DUPLICATE = 'duplicate'            # evidence with the stamp of one already fused (a re-delivery)
MALFORMED_RADAR = 'malformed_radar'  # radar targets without x, y, velocity or not in the fusion frame
INTERNAL = 'internal'              # a bug: an unexpected exception in a callback
VEHICLE_CAUSES: tuple[str, ...] = (*(c.value for c in DropCause if c is not DropCause.UNKNOWN_VEHICLE),
                                   MALFORMED, FRAME, BAD_COVARIANCE, MALFORMED_ODOM, DUPLICATE, MALFORMED_RADAR)

#: Every parameter of the node, in one place; config/fusion.yaml documents each row.
PARAMS: tuple[Param, ...] = (
    Param('vehicles', ['v1', 'v2', 'v3', 'v4'], 'ids of the vehicles whose evidence is fused'),
    Param('vehicle_weights', [1.0, 1.0, 1.0, 1.0], 'reliability weight in (0, 1] per vehicle, parallel to vehicles'),
    Param('frame_id', 'map', 'fusion frame: evidence in another frame is dropped; frame of the output'),
    Param('topics.output', '/cooperative/grid', 'OccupancyGrid output (latched: TRANSIENT_LOCAL, depth 1)'),
    Param('time_reference_topic', '',
          'TimeReference mapping the node clock to common time; empty = the node clock is common time'),
    Param('publish_rate_hz', 10.0, 'fusion cycles (decay + publish) per second, node clock', 0.01, 1000.0),
    Param('publish_on_evidence', True,
          'also publish right after fusing evidence (no sooner than publish_min_interval_s after the last)'),
    Param('publish_min_interval_s', 0.02, 'publish_on_evidence: shortest time between two grids, seconds',
          0.0, 3600.0),
    # grid window
    Param('grid.mode', 'follow_platoon', 'follow_platoon: window around the platoon centroid; fixed: at fixed_origin'),
    Param('grid.size_x_m', 240.0, 'window extent along map x, metres', 1.0, 5000.0),
    Param('grid.size_y_m', 30.0, 'window extent along map y, metres', 1.0, 5000.0),
    Param('grid.resolution_m', 0.2, 'cell size, metres (evidence at an integer multiple/fraction is resampled)',
          0.01, 10.0),
    Param('grid.forward_offset_m', 40.0, 'follow_platoon: window centre this far ahead of the centroid, metres',
          -5000.0, 5000.0),
    Param('grid.fixed_origin_x_m', 0.0, 'fixed: lower-left corner x in map, metres, on the lattice'),
    Param('grid.fixed_origin_y_m', 0.0, 'fixed: lower-left corner y in map, metres, on the lattice'),
    # fusion (core.fusion.common_grid.FusionConfig)
    Param('fusion.clamp_min', -2.0, 'lower log-odds bound after every update', -100.0, 0.0),
    Param('fusion.clamp_max', 3.5, 'upper log-odds bound after every update', 0.0, 100.0),
    Param('fusion.half_life_s', 2.0, 'decay of log-odds towards unknown, seconds', 0.001, 3600.0),
    Param('fusion.max_age_s', 0.5, 'evidence older than now - max_age (plus the vehicle\'s link latency '
          'allowance, see link.*) is dropped (too_old), seconds', 0.0, 3600.0),
    Param('fusion.future_tolerance_s', 0.05, 'evidence stamped after now + this is dropped (future), seconds',
          0.0, 3600.0),
    Param('fusion.vehicle_timeout_s', 2.0, 'a vehicle without accepted evidence this long is flagged dropped, s',
          0.0, 3600.0),
    Param('fusion.pose_sigma_min_m', 0.05, 'blur evidence only when the pose sigma beyond a cell reaches this, m',
          0.0, 100.0),
    Param('fusion.pose_sigma_ref_m', 0.5, 'pose sigma at which a vehicle\'s weight is halved, metres', 0.001, 100.0),
    Param('fusion.max_blur_sigma_m', 1.0, 'cap on the pose blur sigma, metres', 0.001, 100.0),
    Param('fusion.confident_logodds', 0.4, '|weighted evidence| from which it counts as confident', 0.001, 100.0),
    Param('fusion.free_reset_logodds', 0.0, 'occupied cells are lowered to this by fresh confident free evidence',
          -100.0, 100.0),
    Param('fusion.free_wins_after_s', 0.05, 'occupied evidence this much older than free evidence is reset, s',
          0.0, 3600.0),
    Param('fusion.unknown_logodds', 0.05, '|L| below this is published unknown (-1)', 0.0001, 100.0),
    # platoon members' own bodies (core.fusion.common_grid.Footprint), lists parallel to footprints.vehicles
    Param('footprints.enabled', True,
          'draw each member\'s body (odometry pose + speed, at publish time) and drop evidence hits on it'),
    Param('footprints.vehicles', ['v1', 'v2', 'v3', 'v4'],
          'ids whose body is known (fused vehicles not listed get none); the lists below are parallel'),
    Param('footprints.length_m', [4.5, 12.0, 4.5, 4.5], 'body length per footprints.vehicles entry, metres'),
    Param('footprints.width_m', [1.8, 2.5, 1.8, 1.8], 'body width per footprints.vehicles entry, metres'),
    Param('footprints.rear_overhang_m', [1.0, 2.5, 1.0, 1.0],
          'rear face behind base_link per footprints.vehicles entry, metres'),
    Param('footprints.margin_m', 0.4, 'evidence hits this close to a member\'s body (any side) are dropped, m',
          0.0, 100.0),
    Param('footprints.margin_behind_m', 1.6,
          'extra margin behind a member\'s body: hits of sensors sampled before the cycle stamp, metres',
          0.0, 100.0),
    # moving objects (core.fusion.dynamic.DynamicConfig)
    Param('dynamic.enabled', True,
          'moving components of the evidence kept as objects and drawn at publish time, not fused as static'),
    Param('dynamic.occupied_logodds', 0.4, 'evidence log-odds from which a cell belongs to a component',
          0.001, 100.0),
    Param('dynamic.merge_gap_m', 0.4, 'occupied cells at most this far apart are one component, metres', 0.0, 100.0),
    Param('dynamic.min_cells', 3, 'smaller components stay static', 1, 1_000_000),
    Param('dynamic.max_length_m', 20.0, 'components longer than this along the road stay static, metres',
          0.01, 10000.0),
    Param('dynamic.radar_radius_m', 2.0, 'a radar target joins the component with the nearest cell within this, m',
          0.01, 100.0),
    Param('dynamic.radar_max_dt_s', 0.15, 'radar targets stamped further than this from the evidence are unused, s',
          0.0, 10.0),
    Param('dynamic.max_los_angle_deg', 25.0, 'radar speed v_r/cos(a) only where line of sight and road are '
          'within this, degrees', 0.1, 89.9),
    Param('dynamic.min_speed_mps', 3.0, 'along-road speed from which a component is moving, m/s', 0.01, 1000.0),
    Param('dynamic.max_speed_mps', 50.0, 'tracking gate along the road: max_speed_mps x dt, m/s', 0.01, 1000.0),
    Param('dynamic.track_lateral_gate_m', 1.0, 'tracking gate across the road, metres', 0.01, 100.0),
    Param('dynamic.track_smoothing', 0.5, 'weight of a new tracking speed in a component\'s speed', 0.01, 1.0),
    Param('dynamic.max_age_s', 0.3, 'a moving object not renewed for this long expires (plus the vehicle\'s '
          'link latency allowance, see link.*), seconds', 0.0, 10.0),
    Param('dynamic.duplicate_radius_m', 1.0,
          'an object with half its cells this close to a newer object\'s is not drawn, metres', 0.0, 100.0),
    Param('dynamic.member_margin_m', 1.5,
          'components this much beyond the footprint margins of a member (along its heading) stay static, m',
          0.0, 100.0),
    # co-registration (core.fusion.coregistration.CoregConfig)
    Param('coregistration.enabled', True, 'estimate and apply per-vehicle pose corrections (docs/quality.md: a '
          '0.5 m / 1 deg biased vehicle corrected on the landmark scene, no change without roadside structure)'),
    Param('coregistration.period_s', 1.0, 'period of the estimate, seconds (node clock)', 0.01, 3600.0),
    Param('coregistration.smoothing', 0.5, 'weight of a new accepted estimate in the running correction', 0.01, 1.0),
    Param('coregistration.min_points', 10, 'occupied points needed on each side and as matches', 3, 1_000_000),
    Param('coregistration.max_correspondence_m', 2.0, 'ICP match radius, metres', 0.01, 100.0),
    Param('coregistration.min_fitness', 0.5, 'fraction of the vehicle\'s points matched, to accept', 0.0, 1.0),
    Param('coregistration.max_rmse_m', 0.35, 'RMS distance of the matches, to accept, metres', 0.001, 100.0),
    Param('coregistration.max_correction_m', 2.0, 'largest translation accepted, metres', 0.001, 100.0),
    Param('coregistration.max_correction_deg', 5.0, 'largest rotation accepted, degrees', 0.001, 180.0),
    Param('coregistration.min_constraint', 0.02, 'smallest eigenvalue of the normalised information matrix',
          0.0, 100.0),
    Param('coregistration.max_iterations', 50, 'ICP iterations', 1, 10_000),
    Param('coregistration.normal_radius_m', 1.0, 'neighbours of a reference cell for its line normal; a cell '
          'without a line around it (post, corner) is matched point-to-point, metres', 0.01, 100.0),
    Param('coregistration.static_min_age_s', 0.5, 'register only cells the vehicle\'s own evidence at least '
          'this much older also holds (static structure); 0 = all occupied cells, seconds', 0.0, 60.0),
    Param('coregistration.static_tolerance_m', 0.3, 'static_min_age_s: a cell counts as held within this, metres',
          0.0, 100.0),
    Param('coregistration.accumulate_s', 2.0, 'register the union of each vehicle\'s static cells over its '
          'evidence of the last accumulate_s (static structure stays put in map); 0 = latest evidence only, seconds',
          0.0, 60.0),
    Param('coregistration.sweeps', 3, 'per round, times every vehicle is registered against the others\' evidence '
          'moved by their latest estimates, before the platoon median correction is removed', 1, 100),
    # cross-vehicle consistency (core.fusion.consistency.ConsistencyConfig)
    Param('consistency.enabled', True,
          'down-weight evidence cells that contradict min_witnesses other vehicles; score and flag each source'),
    Param('consistency.confident_logodds', 0.4, '|evidence log-odds| from which a cell is confident free/occupied',
          0.001, 100.0),
    Param('consistency.min_witnesses', 2, 'other vehicles that must agree against a vehicle for a conflict', 1, 100),
    Param('consistency.max_age_s', 0.2, 'others\' evidence further than this from the stamp is not compared, s',
          0.0, 3600.0),
    Param('consistency.conflict_weight', 0.1, 'factor on a vehicle\'s log-odds in its conflicting cells', 0.0, 1.0),
    Param('consistency.score_smoothing', 0.3, 'weight of a new sample in the consistency score average', 0.001, 1.0),
    Param('consistency.flag_below', 0.8, 'a vehicle whose consistency score is below this is flagged (WARN)',
          0.0, 1.0),
    Param('consistency.motion_margin_m', 0.2,
          'an occupied cell this close keeps a cell out of "free" (moved or misregistered faces), metres',
          0.0, 100.0),
    Param('consistency.max_speed_mps', 30.0,
          'bound on object speed along the road: free cells within max_speed x |stamp difference| of the same '
          'vehicle\'s occupied cells are not compared (swept by what may have moved), m/s', 0.0, 1000.0),
    Param('consistency.score_min_area_m2', 2.0,
          'conflict components smaller than this are down-weighted but left out of the score (sensor clutter), '
          'square metres', 0.0, 10000.0),
    Param('consistency.min_cells', 10, 'compared cells needed for a consistency score sample', 1, 1_000_000),
    # link latency (core.link): a slow link's evidence is not dead on arrival
    Param('link.latency_allowance_max_s', 0.5,
          'a vehicle\'s evidence (fusion.max_age_s) and moving objects (dynamic.max_age_s) may be older by its '
          'measured link latency (median arrival - stamp over link.window_s) beyond link.nominal_latency_s, at '
          'most this; 0 = fixed limits, seconds', 0.0, 60.0),
    Param('link.nominal_latency_s', 0.1,
          'latency the fixed age limits already allow for (the vehicles\' own pipeline: scan end, sync); only '
          'the excess is added, seconds', 0.0, 60.0),
    Param('link.window_s', 2.0, 'arrival-time window of the per-vehicle link statistics, seconds', 0.01, 3600.0),
    Param('link.min_samples', 5, 'evidence messages in the window before a latency is measured (and added)', 1, 64),
    # graph, queues, diagnostics
    Param('discovery_period_s', 3.0, 'period of the scan for evidence topics of unconfigured ids, seconds',
          0.01, 3600.0),
    Param('qos.evidence_depth', 10, 'queue depth of each evidence subscription', 1, 1000),
    Param('qos.odom_depth', 10, 'queue depth of each odometry subscription (only the latest is used)', 1, 10000),
    Param('diagnostics.period_s', 1.0, 'period of /diagnostics, seconds', 0.01, 3600.0),
)


class WindowMode(str, Enum):
    """How the common window is placed."""

    FOLLOW_PLATOON = 'follow_platoon'
    FIXED = 'fixed'


@dataclass(frozen=True)
class FusionNodeConfig:
    """Validated node configuration (built once from the parameters by :func:`config_from_params`).

    vehicles : configured ids, in order; fusion : core config (its spec is the initial window)
    window_mode, size_x_m, size_y_m, resolution_m, forward_offset_m : window placement, metres
    coreg : ICP gates; coreg_enabled, coreg_period_s (s), coreg_smoothing (0..1]
    coreg_static_min_age_ns, coreg_static_tolerance_m : the static-structure filter (0 ns = off), ns / metres
    coreg_accumulate_ns : static cells of the evidence this far back are registered too (0 = latest only), ns
    coreg_sweeps : registration sweeps per round (core.fusion.coregistration.register_platoon)
    latency_allowance_max_ns : cap on the measured link latency added to the age limits, ns (0 = fixed limits)
    nominal_latency_ns : latency the fixed age limits already allow for (only the excess is added), ns
    link_window_ns : arrival-time window of the per-vehicle link statistics, ns; link_min_samples : messages
        in it before a latency is measured
    publish_period_s, discovery_period_s, diagnostics_period_s : timer periods, seconds
    frame_id, output_topic, time_reference_topic : names; evidence_depth, odom_depth : queue depths
    """

    vehicles: tuple[str, ...]
    fusion: FusionConfig
    window_mode: WindowMode
    size_x_m: float
    size_y_m: float
    resolution_m: float
    forward_offset_m: float
    coreg: CoregConfig
    coreg_enabled: bool
    coreg_period_s: float
    coreg_smoothing: float
    publish_period_s: float
    discovery_period_s: float
    diagnostics_period_s: float
    frame_id: str
    output_topic: str
    time_reference_topic: str
    evidence_depth: int
    odom_depth: int
    footprints: Mapping[str, Footprint] | None = None
    footprint_margin_m: float = 0.4
    footprint_margin_behind_m: float = 1.6
    dynamic: DynamicConfig | None = None
    dynamic_member_margin_m: float = 1.5
    publish_min_interval_ns: int | None = 20_000_000
    coreg_static_min_age_ns: int = 500_000_000
    coreg_static_tolerance_m: float = 0.3
    coreg_accumulate_ns: int = 0
    coreg_sweeps: int = 3
    latency_allowance_max_ns: int = 500_000_000
    nominal_latency_ns: int = 100_000_000
    link_window_ns: int = 2_000_000_000
    link_min_samples: int = 5


def _ns(seconds: float) -> int:
    return int(round(seconds * _NS_PER_S))


def _on_lattice(value: float, resolution: float) -> bool:
    k = value / resolution
    return abs(k - round(k)) < 1e-6


def config_from_params(values: Mapping[str, Any]) -> FusionNodeConfig:
    """The validated FusionNodeConfig from declared parameter values (``{name: value}``).

    Raises ConfigError naming the first unusable value.
    """
    vehicles = tuple(str(v) for v in values['vehicles'])
    weights = [float(w) for w in values['vehicle_weights']]
    if not vehicles:
        raise ConfigError('vehicles is empty: expected at least one vehicle id')
    for vid in vehicles:
        if not _VEHICLE_ID.match(vid):
            raise ConfigError(f'vehicle id {vid!r} is not a ROS name token: expected a letter then letters, '
                              f'digits or _')
    if len(set(vehicles)) != len(vehicles):
        raise ConfigError(f'vehicles {list(vehicles)} has duplicates')
    if len(weights) != len(vehicles):
        raise ConfigError(f'vehicle_weights has {len(weights)} values for {len(vehicles)} vehicles '
                          f'{list(vehicles)}: expected one weight per vehicle')
    try:
        mode = WindowMode(values['grid.mode'])
    except ValueError:
        raise ConfigError(f"grid.mode {values['grid.mode']!r}: expected one of "
                          f"{', '.join(m.value for m in WindowMode)}") from None
    res = float(values['grid.resolution_m'])
    size_x, size_y = float(values['grid.size_x_m']), float(values['grid.size_y_m'])
    if mode is WindowMode.FIXED:
        ox, oy = float(values['grid.fixed_origin_x_m']), float(values['grid.fixed_origin_y_m'])
        if not (_on_lattice(ox, res) and _on_lattice(oy, res)):
            raise ConfigError(f'grid.fixed_origin ({ox}, {oy}) m is not a multiple of grid.resolution_m {res} m')
        spec = GridSpec(ox, oy, res, max(1, int(round(size_x / res))), max(1, int(round(size_y / res))))
    else:
        spec = GridSpec.centered(0.0, 0.0, size_x, size_y, res)
    fusion = FusionConfig(
        spec=spec, vehicle_weights=dict(zip(vehicles, weights)),
        clamp_min=values['fusion.clamp_min'], clamp_max=values['fusion.clamp_max'],
        half_life_s=values['fusion.half_life_s'], max_age_ns=_ns(values['fusion.max_age_s']),
        future_tolerance_ns=_ns(values['fusion.future_tolerance_s']),
        vehicle_timeout_ns=_ns(values['fusion.vehicle_timeout_s']),
        pose_sigma_min_m=values['fusion.pose_sigma_min_m'], pose_sigma_ref_m=values['fusion.pose_sigma_ref_m'],
        max_blur_sigma_m=values['fusion.max_blur_sigma_m'], confident_logodds=values['fusion.confident_logodds'],
        free_reset_logodds=values['fusion.free_reset_logodds'],
        free_wins_after_ns=_ns(values['fusion.free_wins_after_s']),
        unknown_logodds=values['fusion.unknown_logodds'])
    coreg = CoregConfig(
        min_points=values['coregistration.min_points'],
        max_correspondence_m=values['coregistration.max_correspondence_m'],
        min_fitness=values['coregistration.min_fitness'], max_rmse_m=values['coregistration.max_rmse_m'],
        max_correction_m=values['coregistration.max_correction_m'],
        max_correction_deg=values['coregistration.max_correction_deg'],
        min_constraint=values['coregistration.min_constraint'],
        max_iterations=values['coregistration.max_iterations'],
        normal_radius_m=values['coregistration.normal_radius_m'])
    footprints = None
    if bool(values['footprints.enabled']):
        ids = [str(v) for v in values['footprints.vehicles']]
        dims = {k: [float(v) for v in values[f'footprints.{k}']] for k in ('length_m', 'width_m', 'rear_overhang_m')}
        for k, v in dims.items():
            if len(v) != len(ids):
                raise ConfigError(f'footprints.{k} has {len(v)} values for {len(ids)} footprints.vehicles '
                                  f'{ids}: expected one per entry')
        footprints = {vid: Footprint(dims['length_m'][i], dims['width_m'][i], dims['rear_overhang_m'][i])
                      for i, vid in enumerate(ids) if vid in vehicles}
    dynamic = None
    if bool(values['dynamic.enabled']):
        dynamic = DynamicConfig(
            occupied_logodds=float(values['dynamic.occupied_logodds']),
            merge_gap_m=float(values['dynamic.merge_gap_m']), min_cells=int(values['dynamic.min_cells']),
            max_length_m=float(values['dynamic.max_length_m']),
            radar_radius_m=float(values['dynamic.radar_radius_m']),
            radar_max_dt_ns=_ns(values['dynamic.radar_max_dt_s']),
            max_los_angle_deg=float(values['dynamic.max_los_angle_deg']),
            min_speed_mps=float(values['dynamic.min_speed_mps']),
            max_speed_mps=float(values['dynamic.max_speed_mps']),
            track_lateral_gate_m=float(values['dynamic.track_lateral_gate_m']),
            track_smoothing=float(values['dynamic.track_smoothing']), max_age_ns=_ns(values['dynamic.max_age_s']),
            duplicate_radius_m=float(values['dynamic.duplicate_radius_m']))
    output = str(values['topics.output'])
    if not output:
        raise ConfigError('topics.output is empty: expected a topic name such as /cooperative/grid')
    if not str(values['frame_id']):
        raise ConfigError('frame_id is empty: expected the fusion frame, e.g. map')
    return FusionNodeConfig(
        vehicles=vehicles, fusion=fusion, window_mode=mode, size_x_m=size_x, size_y_m=size_y, resolution_m=res,
        forward_offset_m=float(values['grid.forward_offset_m']), coreg=coreg,
        coreg_enabled=bool(values['coregistration.enabled']),
        coreg_period_s=float(values['coregistration.period_s']),
        coreg_smoothing=float(values['coregistration.smoothing']),
        coreg_static_min_age_ns=_ns(values['coregistration.static_min_age_s']),
        coreg_static_tolerance_m=float(values['coregistration.static_tolerance_m']),
        coreg_accumulate_ns=_ns(values['coregistration.accumulate_s']),
        coreg_sweeps=int(values['coregistration.sweeps']),
        latency_allowance_max_ns=_ns(values['link.latency_allowance_max_s']),
        nominal_latency_ns=_ns(values['link.nominal_latency_s']),
        link_window_ns=_ns(values['link.window_s']), link_min_samples=int(values['link.min_samples']),
        publish_period_s=1.0 / float(values['publish_rate_hz']),
        discovery_period_s=float(values['discovery_period_s']),
        diagnostics_period_s=float(values['diagnostics.period_s']),
        frame_id=str(values['frame_id']), output_topic=output,
        time_reference_topic=str(values['time_reference_topic']),
        evidence_depth=int(values['qos.evidence_depth']), odom_depth=int(values['qos.odom_depth']),
        footprints=footprints, footprint_margin_m=float(values['footprints.margin_m']),
        footprint_margin_behind_m=float(values['footprints.margin_behind_m']), dynamic=dynamic,
        dynamic_member_margin_m=float(values['dynamic.member_margin_m']),
        publish_min_interval_ns=(_ns(values['publish_min_interval_s']) if bool(values['publish_on_evidence'])
                                 else None))


# ------------------------------------------------------------------ pure helpers --
# No rclpy below this line until the node class: candidates for core/coregistration.py.


@dataclass(frozen=True)
class Correction:
    """A vehicle's pose correction ``p -> R(dyaw)·(p - pivot) + pivot + (dx, dy)`` (core.fusion.coregistration's form).

    dx, dy : metres; dyaw : radians. A pose error travels with the vehicle (its odometry is off by the
    same offset and heading wherever it is), so the correction does too: it turns about the vehicle's
    position at the stamp of whatever it corrects (:meth:`at`); ``pivot`` (x, y) metres in ``map`` is
    where the latest estimate was made, for /diagnostics.
    """

    dx: float = 0.0
    dy: float = 0.0
    dyaw: float = 0.0
    pivot: tuple[float, float] = (0.0, 0.0)

    @property
    def is_identity(self) -> bool:
        return self.dx == 0.0 and self.dy == 0.0 and self.dyaw == 0.0

    def at(self, pivot: tuple[float, float] | NDArray[np.floating]) -> 'Correction':
        """The same correction turning about ``pivot`` (the vehicle's position at a given stamp)."""
        return Correction(self.dx, self.dy, self.dyaw, (float(pivot[0]), float(pivot[1])))

    def blend(self, estimate: CoregResult, alpha: float) -> 'Correction':
        """Exponential average towards ``estimate`` (weight ``alpha``), component by component.

        Estimates are absolute (raw evidence against the reference), so the
        average converges to the estimate instead of integrating it.
        """
        return Correction(self.dx + alpha * (estimate.dx - self.dx), self.dy + alpha * (estimate.dy - self.dy),
                          self.dyaw + alpha * (estimate.dyaw - self.dyaw), estimate.pivot)

    def as_result(self) -> CoregResult:
        return CoregResult(self.dx, self.dy, self.dyaw, 1.0, 0.0, True, 'ok', self.pivot)


def warp_evidence(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_], corr: Correction
                  ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """The evidence grid moved through ``corr``, nearest-cell resampled onto the same lattice.

    spec : evidence geometry; logodds : (height, width) float32; known : (height, width) bool
    Returns a spec grown by a margin that holds the moved cells, and its
    (height', width') log-odds and known mask. A corrected cell takes the value
    of the source cell its centre maps back into (order 0: values never mix).
    """
    if corr.is_identity:
        return spec, logodds, known
    res = spec.resolution
    c = np.asarray(corr.pivot, dtype=np.float64)
    t = np.array([corr.dx, corr.dy])
    corners = np.array([[spec.origin_x, spec.origin_y], [spec.origin_x + spec.size_x, spec.origin_y],
                        [spec.origin_x, spec.origin_y + spec.size_y],
                        [spec.origin_x + spec.size_x, spec.origin_y + spec.size_y]])
    reach = float(np.hypot(*t)) + abs(corr.dyaw) * float(np.max(np.hypot(*(corners - c).T)))
    m = int(math.ceil(reach / res)) + 1
    out = GridSpec(spec.origin_x - m * res, spec.origin_y - m * res, res, spec.width + 2 * m, spec.height + 2 * m)
    # Output cell index i (x, y) -> centre q -> source point p = R(-dyaw)(q - c - t) + c -> source index.
    cs, sn = math.cos(-corr.dyaw), math.sin(-corr.dyaw)
    r_inv = np.array([[cs, -sn], [sn, cs]])
    o_in = np.array([spec.origin_x, spec.origin_y])
    o_out = np.array([out.origin_x, out.origin_y])
    offset_xy = (r_inv @ (o_out + 0.5 * res - c - t) + c - o_in) / res - 0.5
    # Arrays are [iy, ix]: swap both the matrix axes and the offset.
    matrix = r_inv[::-1, ::-1]
    offset = offset_xy[::-1]
    # One pass: unknown travels as NaN (order 0 copies values, so NaN never spreads).
    lin = ndimage.affine_transform(np.where(known, logodds, np.nan).astype(np.float32), matrix, offset,
                                   output_shape=out.shape, order=0, mode='constant', cval=np.nan)
    kin = ~np.isnan(lin)
    return out, np.where(kin, lin, 0.0).astype(np.float32), kin


def mask_on(src: GridSpec, mask: NDArray[np.bool_], dst: GridSpec) -> NDArray[np.bool_]:
    """``mask`` (src.height, src.width) read at the centre of every cell of ``dst``: (dst.height, dst.width);
    False outside ``src``. Carries a per-cell flag onto another resolution or lattice."""
    ix = np.floor((dst.origin_x + (np.arange(dst.width) + 0.5) * dst.resolution - src.origin_x)
                  / src.resolution).astype(np.int64)
    iy = np.floor((dst.origin_y + (np.arange(dst.height) + 0.5) * dst.resolution - src.origin_y)
                  / src.resolution).astype(np.int64)
    okx, oky = (ix >= 0) & (ix < src.width), (iy >= 0) & (iy < src.height)
    out = np.asarray(mask, dtype=bool)[np.clip(iy, 0, src.height - 1)[:, None], np.clip(ix, 0, src.width - 1)[None, :]]
    return out & oky[:, None] & okx[None, :]


def quat_wxyz_yaw(q: NDArray[np.floating]) -> float:
    """Yaw (rad) of a unit quaternion (w, x, y, z)."""
    w, x, y, z = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def platoon_center(positions: Sequence[NDArray[np.floating]], yaws: Sequence[float], forward_offset_m: float
                   ) -> NDArray[np.float64]:
    """Centroid of the vehicle positions (N, 2), moved ``forward_offset_m`` along the mean heading."""
    p = np.mean(np.asarray(positions, dtype=np.float64).reshape(-1, 2), axis=0)
    h = np.array([np.mean(np.cos(yaws)), np.mean(np.sin(yaws))])
    n = float(np.hypot(*h))
    return p + (forward_offset_m * h / n if n > 1e-6 else 0.0)


def consistency_from_params(values: Mapping[str, Any]) -> ConsistencyConfig | None:
    """The consistency check's config from declared parameter values; None when it is disabled."""
    if not bool(values['consistency.enabled']):
        return None
    return ConsistencyConfig(
        confident_logodds=float(values['consistency.confident_logodds']),
        min_witnesses=int(values['consistency.min_witnesses']), max_age_ns=_ns(values['consistency.max_age_s']),
        conflict_weight=float(values['consistency.conflict_weight']),
        score_smoothing=float(values['consistency.score_smoothing']),
        flag_below=float(values['consistency.flag_below']),
        motion_margin_m=float(values['consistency.motion_margin_m']),
        max_speed_mps=float(values['consistency.max_speed_mps']),
        score_min_area_m2=float(values['consistency.score_min_area_m2']),
        min_cells=int(values['consistency.min_cells']))


@dataclass
class _Evidence:
    spec: GridSpec
    logodds: NDArray[np.float32]
    known: NDArray[np.bool_]
    stamp_ns: int


@dataclass
class _VehicleState:
    """What the node keeps per configured vehicle (odometry, latest evidence, correction, drops)."""

    drops: DropCounter
    position: NDArray[np.float64] | None = None
    yaw: float = 0.0
    speed: float = 0.0
    pose_ns: int | None = None
    cov_xy: NDArray[np.float64] | None = None
    evidence: _Evidence | None = None
    correction: Correction = Correction()
    coreg_last: CoregResult | None = None
    coreg_updates: int = 0
    coreg_static_points: int = 0
    # (stamp ns, occupied points (N, 2) m) of recent evidence, uncorrected: the static-structure filter
    coreg_history: deque[tuple[int, NDArray[np.float64]]] = field(default_factory=deque)
    # (stamp ns, static points (N, 2) m, odometry position (2,) m at the stamp) of recent evidence,
    # uncorrected: accumulated for registration
    coreg_static: deque[tuple[int, NDArray[np.float64], NDArray[np.float64]]] = field(default_factory=deque)
    received: int = 0
    fused_stamps: deque[int] = field(default_factory=lambda: deque(maxlen=64))   # recent accepted, ns
    radar: deque[tuple[int, NDArray[np.float64]]] = field(default_factory=lambda: deque(maxlen=8))  # (stamp, xyv)
    # the vehicle's clock -> common time, from /<v>/time_reference: odometry stamps are in the vehicle clock
    clock: ClockEstimator = field(default_factory=ClockEstimator)
    # latency, loss, reordering of the evidence stream as it arrives (set up with the node's link.window_s)
    link: LinkMonitor = field(default_factory=LinkMonitor)


# ---------------------------------------------------------------------- node --

class FusionNode(SetupNode):
    """See the module docstring. ``kwargs`` go to ``rclpy.node.Node`` (context, namespace,
    parameter_overrides, cli_args, ...), so the in-process bringup can compose it."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        values = declare(self, PARAMS)
        self.cfg = config_from_params(values)
        consistency = consistency_from_params(values)
        self.consistency = ConsistencyChecker(consistency) if consistency is not None else None
        cfg = self.cfg
        self.grid = CommonGrid(cfg.fusion)
        # A member's body is as certain as the grid allows: the upper clamp.
        self._body_percent = int(round(100.0 / (1.0 + math.exp(-cfg.fusion.clamp_max))))
        self._placed = cfg.window_mode is WindowMode.FIXED
        self._window_center: NDArray[np.float64] | None = None
        self.vehicles = {v: _VehicleState(DropCounter(), link=LinkMonitor(cfg.link_window_ns,
                                                                       min_samples=cfg.link_min_samples))
                         for v in cfg.vehicles}
        self.node_drops = DropCounter()
        self.ignored: set[str] = set()
        self.latency = LatencyStats()
        self.cycle_ms = LatencyStats()
        self.integrate_ms = LatencyStats()
        self.coreg_ms = LatencyStats()
        self.publish_rate = RateMeter(max(5.0 * cfg.publish_period_s, 1.0))
        self.published = 0
        self._last_publish_ns: int | None = None
        self.dynamic = DynamicLayer(cfg.dynamic) if cfg.dynamic is not None else None
        self.clock_map: ClockEstimator | None = None

        self.grid_pub = self.create_publisher(OccupancyGrid, cfg.output_topic, latched_qos(1))
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', diagnostics_qos())
        for vid in cfg.vehicles:
            self.create_subscription(OccupancyGrid, f'/{vid}/evidence_grid',
                                     self._guard(vid, lambda m, v=vid: self._on_evidence(v, m)),
                                     evidence_qos(cfg.evidence_depth))
            self.create_subscription(Odometry, f'/{vid}/odom', self._guard(vid, lambda m, v=vid: self._on_odom(v, m)),
                                     state_qos(cfg.odom_depth))
            self.create_subscription(TimeReference, f'/{vid}/time_reference',
                                     self._guard(vid, lambda m, v=vid: self._on_vehicle_time_reference(v, m)),
                                     state_qos(cfg.odom_depth))
            if cfg.dynamic is not None:
                self.create_subscription(PointCloud2, f'/{vid}/radar/targets',
                                         self._guard(vid, lambda m, v=vid: self._on_radar(v, m)),
                                         evidence_qos(cfg.evidence_depth))
        if cfg.time_reference_topic:
            self.clock_map = ClockEstimator()
            self.create_subscription(TimeReference, cfg.time_reference_topic,
                                     self._guard(None, self._on_time_reference), state_qos())
        self.publish_timer = self.create_timer(cfg.publish_period_s, self._guard(None, self._on_publish))
        self.coreg_timer = (self.create_timer(cfg.coreg_period_s, self._guard(None, self._on_coregistration))
                            if cfg.coreg_enabled else None)
        self.discovery_timer = self.create_timer(cfg.discovery_period_s, self._guard(None, self._on_discovery))
        self.diag_timer = self.create_timer(cfg.diagnostics_period_s, self._guard(None, self._publish_diagnostics))
        spec = cfg.fusion.spec
        self.get_logger().info(
            f'fusing {list(cfg.vehicles)} into {cfg.output_topic}: {cfg.window_mode.value} window '
            f'{spec.size_x:g}x{spec.size_y:g} m at {spec.resolution:g} m in {cfg.frame_id!r}, '
            f'co-registration {"on" if cfg.coreg_enabled else "off"}')

    # ------------------------------------------------------------- helpers --

    def now_ns(self) -> int:
        """Common time now, ns: the node clock (sim time when use_sim_time is set), mapped through
        ``time_reference_topic`` when one is configured and has been heard."""
        now = int(self.get_clock().now().nanoseconds)
        if self.clock_map is not None and self.clock_map.n_samples > 0:
            return int(self.clock_map.to_common(now))
        return now

    def _with_link_allowance(self, base_ns: int, st: _VehicleState, now_ns: int) -> int:
        """``base_ns`` + the vehicle's evidence latency (median arrival - stamp over link.window_s)
        beyond link.nominal_latency_s, capped by link.latency_allowance_max_s, ns."""
        return age_limit_ns(base_ns, st.link.latency_ns(now_ns), self.cfg.latency_allowance_max_ns,
                            self.cfg.nominal_latency_ns)

    def evidence_max_age_ns(self, st: _VehicleState, now_ns: int) -> int:
        """Age limit of the vehicle's evidence: fusion.max_age_s with its link allowance, ns."""
        return self._with_link_allowance(self.cfg.fusion.max_age_ns, st, now_ns)

    def object_max_age_ns(self, st: _VehicleState, now_ns: int) -> int | None:
        """Age limit of the vehicle's moving objects: dynamic.max_age_s with its link allowance, ns."""
        if self.cfg.dynamic is None:
            return None
        return self._with_link_allowance(self.cfg.dynamic.max_age_ns, st, now_ns)

    def _drop(self, vid: str | None, cause: str, detail: str) -> None:
        if vid in self.vehicles:
            self.vehicles[vid].drops.count(cause, f'{vid}: {detail}', self.get_logger())
        else:
            self.node_drops.count(cause, detail, self.get_logger())

    def _guard(self, vid: str | None, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap a callback so nothing it raises reaches the executor: count and log, go on."""

        def wrapped(*args: Any) -> None:
            try:
                fn(*args)
            except CooperativeFusionError as exc:
                self._drop(vid, f'{INTERNAL}_{type(exc).__name__}', str(exc))
            except Exception as exc:  # a bug, but one bad message must not stop the fusion
                self._drop(vid, INTERNAL, f'{type(exc).__name__}: {exc}')

        return wrapped

    # ----------------------------------------------------------- callbacks --

    def _on_vehicle_time_reference(self, vid: str, msg: TimeReference) -> None:
        # (stamp_vehicle_ns, common_ns); an outlier is rejected by the fit and shows as clock.rejected
        self.vehicles[vid].clock.add(*time_reference_to_ns(msg))

    def _on_time_reference(self, msg: TimeReference) -> None:
        if self.clock_map is not None:
            self.clock_map.add(*time_reference_to_ns(msg))   # (stamp_vehicle_ns, common_ns)

    def _on_odom(self, vid: str, msg: Odometry) -> None:
        st = self.vehicles[vid]
        if msg.header.frame_id != self.cfg.frame_id:
            self._drop(vid, FRAME, f'odometry in frame {msg.header.frame_id!r}: expected the fusion frame '
                                   f'{self.cfg.frame_id!r}')
            return
        cov_xy = np.array(msg.pose.covariance, dtype=np.float64).reshape(6, 6)[:2, :2]
        bad_cov = not covariance_is_psd(cov_xy)
        if bad_cov:
            msg.pose.covariance = [0.0] * 36
        try:
            pose = odometry_to_pose(msg)
        except MessageFormatError as exc:
            self._drop(vid, MALFORMED_ODOM, str(exc))
            return
        if bad_cov:
            # Keep the last good covariance: none at all would fuse the vehicle unblurred at full weight.
            self._drop(vid, BAD_COVARIANCE, f'odometry xy covariance {cov_xy.ravel().tolist()} is not finite '
                                            f'and positive semi-definite: keeping the pose and the last good '
                                            f'covariance')
            cov_xy = st.cov_xy
        st.position = pose.position[:2].copy()
        st.yaw = quat_wxyz_yaw(pose.quat_wxyz)
        st.speed = float(msg.twist.twist.linear.x) if math.isfinite(msg.twist.twist.linear.x) else 0.0
        # The stamp is in the vehicle clock: through the vehicle's clock fit it says when the pose was
        # true, however late the message came (a delayed link); until a time reference has been heard,
        # the receive time stands in for it. Never later than now.
        now = self.now_ns()
        st.pose_ns = min(int(st.clock.to_common(pose.stamp_ns)), now) if st.clock.n_samples else now
        st.cov_xy = cov_xy

    def _on_evidence(self, vid: str, msg: OccupancyGrid) -> None:
        st = self.vehicles[vid]
        st.received += 1
        if msg.header.frame_id != self.cfg.frame_id:
            self._drop(vid, FRAME, f'evidence grid in frame {msg.header.frame_id!r}: expected the fusion frame '
                                   f'{self.cfg.frame_id!r}')
            return
        try:
            spec, cells = grid_from_msg(msg)
        except MessageFormatError as exc:
            self._drop(vid, MALFORMED, str(exc))
            return
        logodds, known = percent_to_logodds(cells)
        stamp_ns = stamp_to_ns(msg.header.stamp)
        arrival = self.now_ns()
        if stamp_ns - arrival <= self.cfg.fusion.future_tolerance_ns:
            st.link.add(stamp_ns, arrival)      # a stamp from the future says nothing about the link
        if stamp_ns in st.fused_stamps:
            self._drop(vid, DUPLICATE, f'evidence at {stamp_ns} ns was fused already: fusing it twice would '
                                       f'count it twice')
            return
        st.evidence = _Evidence(spec, logodds, known, stamp_ns)
        self._remember_for_coregistration(st)
        placing = not self._placed
        if placing:
            # follow_platoon before any odometry: start the window on the first evidence.
            self._place(np.array([spec.origin_x + 0.5 * spec.size_x, spec.origin_y + 0.5 * spec.size_y]))
        t0 = time.perf_counter()
        # What the consistency check compares: the evidence on its own lattice (the others' are on theirs).
        checked = None
        if not st.correction.is_identity:
            # About where the vehicle was at the stamp (the pose error travels with it).
            at = self._odom_at(st, stamp_ns)
            corr = st.correction.at(at[:2]) if at is not None else st.correction
            fine = self._fine(spec, logodds, known)
            if fine is not None:
                # Nearest-cell warping on a 0.4 m lattice would move the evidence by whole 0.4 m cells (a
                # 0.25 m correction by 0.4 m): warp on the common lattice; check the coarse warp.
                if self.consistency is not None:
                    checked = warp_evidence(spec, logodds, known, corr)
                spec, logodds, known = fine
            spec, logodds, known = warp_evidence(spec, logodds, known, corr)
        if self.cfg.footprints is not None:
            # The members' bodies are drawn at publish time; their faces seen at this stamp would lag.
            members = self.member_poses(stamp_ns)
            logodds, known, _ = drop_member_hits(spec, logodds, known, members, self.cfg.footprint_margin_m,
                                                 self.cfg.footprint_margin_behind_m)
            if checked is not None:
                checked = (checked[0], *drop_member_hits(*checked, members, self.cfg.footprint_margin_m,
                                                         self.cfg.footprint_margin_behind_m)[:2])
        if self.consistency is not None:
            # Cells contradicting two or more other vehicles are scaled down (the per-cell weight); free
            # road swept by what may have moved between two vehicles' stamps (along the vehicle's heading)
            # is not compared.
            pose = self._pose_at(vid, st, stamp_ns)
            heading = pose[2] if pose is not None else 0.0
            if checked is None:
                logodds = self.consistency.check(vid, spec, logodds, known, stamp_ns, heading).logodds
            else:
                conflict = self.consistency.check(vid, *checked, stamp_ns, heading).conflict
                weight = self.consistency.config.conflict_weight
                logodds = np.where(mask_on(checked[0], conflict, spec), logodds * np.float32(weight),
                                   logodds).astype(np.float32)
        now = self.now_ns()
        max_age_ns = self.evidence_max_age_ns(st, now)
        if self.dynamic is not None:
            spec, logodds, known = self._split_moving(vid, st, spec, logodds, known, stamp_ns, now, max_age_ns)
        result = self.grid.integrate(vid, spec, logodds, known, stamp_ns, now, st.cov_xy, max_age_ns=max_age_ns)
        self.integrate_ms.add(1e3 * (time.perf_counter() - t0))
        if result.accepted:
            st.fused_stamps.append(stamp_ns)
            min_gap = self.cfg.publish_min_interval_ns
            if min_gap is not None and (self._last_publish_ns is None or now - self._last_publish_ns >= min_gap):
                self._publish(now)
            return
        if placing:
            self._placed = False      # rejected evidence must not place the window: the next input does
        if result.cause is not None:
            self._drop(vid, result.cause.value, result.reason)

    def _fine(self, spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_]
              ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]] | None:
        """The evidence repeated onto the common resolution when it is coarser (a whole multiple), else None."""
        if spec.resolution <= self.grid.spec.resolution * (1.0 + 1e-6) or np.shape(logodds) != spec.shape \
                or np.shape(known) != spec.shape:
            return None
        try:
            return resample_to_resolution(spec, logodds, known, self.grid.spec.resolution, self.grid.spec)
        except ConfigError:
            return None          # not a whole multiple: integrate drops it with its cause

    def _split_moving(self, vid: str, st: _VehicleState, spec: GridSpec, logodds: NDArray[np.float32],
                      known: NDArray[np.bool_], stamp_ns: int, now_ns: int, max_age_ns: int
                      ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
        """The static part of the evidence (on the common resolution); its moving components go to the
        dynamic layer. Evidence that integrate will drop (older than ``max_age_ns``, future, bad shape or
        geometry) is returned unchanged, so it is dropped with its cause and leaves no object."""
        fcfg = self.cfg.fusion
        if now_ns - stamp_ns > max_age_ns \
                or stamp_ns - now_ns > fcfg.future_tolerance_ns \
                or np.shape(logodds) != spec.shape or np.shape(known) != spec.shape:
            return spec, logodds, known
        try:
            r_spec, r_l, r_k = resample_to_resolution(spec, logodds, known, self.grid.spec.resolution,
                                                      self.grid.spec)
            self.grid.spec.lattice_offset(r_spec)
        except ConfigError:
            return spec, logodds, known
        pose = self._pose_at(vid, st, stamp_ns)
        heading = pose[2] if pose is not None else 0.0
        radar = None
        if pose is not None and st.radar:
            r_stamp, xyv = min(st.radar, key=lambda item: abs(item[0] - stamp_ns))
            fp = self.cfg.footprints.get(vid) if self.cfg.footprints is not None else None
            # The radar sits at the front of the body (config/scenarios: 3.4 of 3.5 m, 9.55 of 9.5 m).
            front = fp.length_m - fp.rear_overhang_m if fp is not None else 0.0
            sensor = np.array([pose[0] + front * math.cos(heading), pose[1] + front * math.sin(heading)])
            radar = RadarTargets(r_stamp, xyv, sensor)
        zone = None
        members = self.member_poses(stamp_ns)
        if members:
            # Around each member's body (footprint margins + member_margin_m ahead and behind) a component
            # is a face of the member the margins missed (sensor timing): fused static, never an object.
            m = self.cfg.dynamic_member_margin_m
            zone = np.zeros(r_spec.shape, dtype=bool)
            for x, y, yaw, fp in members:
                grown = Footprint(fp.length_m + 2.0 * m, fp.width_m, fp.rear_overhang_m + m)
                zone |= member_box_mask(r_spec, x, y, yaw, grown, self.cfg.footprint_margin_m,
                                        self.cfg.footprint_margin_behind_m)
        split = self.dynamic.split(vid, r_spec, r_l, r_k, stamp_ns, heading, radar,
                                   self.cfg.fusion.vehicle_weights.get(vid, 1.0), zone,
                                   max_age_ns=self.object_max_age_ns(st, now_ns))
        return split.spec, split.logodds, split.known

    def _on_radar(self, vid: str, msg: PointCloud2) -> None:
        st = self.vehicles[vid]
        if msg.header.frame_id != self.cfg.frame_id:
            self._drop(vid, MALFORMED_RADAR, f'radar targets in frame {msg.header.frame_id!r}: expected the fusion '
                                             f'frame {self.cfg.frame_id!r}')
            return
        try:
            points, _ = cloud_to_array(msg, required=('x', 'y', 'velocity'))
        except MessageFormatError as exc:
            self._drop(vid, MALFORMED_RADAR, str(exc))
            return
        xyv = np.stack([points['x'], points['y'], points['velocity']], axis=1).astype(np.float64)
        st.radar.append((stamp_to_ns(msg.header.stamp), xyv))

    def _odom_at(self, st: _VehicleState, t_ns: int) -> tuple[float, float, float] | None:
        """(x, y, yaw) of the vehicle's odometry at common time ``t_ns`` (its latest pose moved at its speed),
        uncorrected; None without odometry or when it is older than the vehicle timeout."""
        if st.position is None or st.pose_ns is None or abs(t_ns - st.pose_ns) > self.cfg.fusion.vehicle_timeout_ns:
            return None
        dt = (t_ns - st.pose_ns) * 1e-9
        xy = st.position + st.speed * dt * np.array([math.cos(st.yaw), math.sin(st.yaw)])
        return float(xy[0]), float(xy[1]), st.yaw

    def _pose_at(self, vid: str, st: _VehicleState, t_ns: int) -> tuple[float, float, float] | None:
        """(x, y, yaw) of ``vid`` at common time ``t_ns``: its odometry there (:meth:`_odom_at`) through its
        co-registration correction (about itself: an offset and a heading change); None without odometry
        or when it is older than the vehicle timeout."""
        pose = self._odom_at(st, t_ns)
        if pose is None:
            return None
        c = st.correction
        return pose[0] + c.dx, pose[1] + c.dy, pose[2] + c.dyaw

    def member_poses(self, t_ns: int) -> list[tuple[float, float, float, Footprint]]:
        """(x, y, yaw, footprint) of every member with odometry, its latest pose moved at its odometry
        speed to common time ``t_ns`` and through its co-registration correction; members whose pose is
        older than ``fusion.vehicle_timeout_s`` are left out."""
        out = []
        if self.cfg.footprints is None:
            return out
        for vid, st in self.vehicles.items():
            fp = self.cfg.footprints.get(vid)
            pose = self._pose_at(vid, st, t_ns) if fp is not None else None
            if pose is not None:
                out.append((*pose, fp))
        return out

    def _place(self, center: NDArray[np.float64]) -> None:
        """Recentre the window on ``center`` (x, y) when it moved by a cell or more."""
        cfg = self.cfg
        if self._window_center is not None and self._placed and \
                float(np.max(np.abs(center - self._window_center))) < cfg.resolution_m:
            return
        spec = GridSpec.centered(float(center[0]), float(center[1]), cfg.size_x_m, cfg.size_y_m, cfg.resolution_m)
        if spec != self.grid.spec:
            self.grid.recenter(spec)
        self._window_center = np.asarray(center, dtype=np.float64).copy()
        self._placed = True

    def _on_publish(self) -> None:
        self._publish(self.now_ns())

    def _publish(self, now: int) -> None:
        """One fusion cycle at common time ``now``: place the window, decay, draw, publish."""
        t0 = time.perf_counter()
        if self.cfg.window_mode is WindowMode.FOLLOW_PLATOON:
            known = [st for st in self.vehicles.values() if st.position is not None]
            if known:
                self._place(platoon_center([st.position for st in known], [st.yaw for st in known],
                                           self.cfg.forward_offset_m))
        self.grid.advance(now)
        cells = self.grid.posterior_percent()
        if self.dynamic is not None:
            cells = self.dynamic.draw(self.grid.spec, cells, now)
        if self.cfg.footprints is not None:
            cells = draw_members(self.grid.spec, cells, self.member_poses(now), self._body_percent)
        self.grid_pub.publish(grid_to_msg(self.grid.spec, cells, now, self.cfg.frame_id))
        for ms in self.grid.latency_ms(now):
            self.latency.add(float(ms))
        self.publish_rate.tick(now)
        self.published += 1
        self._last_publish_ns = now
        self.cycle_ms.add(1e3 * (time.perf_counter() - t0))

    def _remember_for_coregistration(self, st: _VehicleState) -> None:
        """Keep the occupied cells of the vehicle's latest evidence for the static-structure filter
        (as long as the filter may still need them: static_min_age + a vehicle timeout) and its static
        cells for accumulation (accumulate_s; the latest only when 0)."""
        cfg = self.cfg
        if not cfg.coreg_enabled or st.evidence is None:
            return
        ev = st.evidence
        points = occupied_points(ev.spec, logodds=ev.logodds, known=ev.known)
        static = self._static_points(st, points, ev.stamp_ns)
        if cfg.coreg_static_min_age_ns > 0:
            st.coreg_history.append((ev.stamp_ns, points))
            keep = cfg.coreg_static_min_age_ns + cfg.fusion.vehicle_timeout_ns
            while st.coreg_history and ev.stamp_ns - st.coreg_history[0][0] > keep:
                st.coreg_history.popleft()
        if static is not None:
            # Where the vehicle was: its correction turns these points about there (NaN: no odometry yet,
            # the points are not registered).
            at = self._odom_at(st, ev.stamp_ns)
            st.coreg_static.append((ev.stamp_ns, static, np.array(at[:2] if at is not None else (math.nan,) * 2)))
        while st.coreg_static and ev.stamp_ns - st.coreg_static[0][0] > cfg.coreg_accumulate_ns:
            st.coreg_static.popleft()

    def _accumulated_static(self, st: _VehicleState) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """The union (N, 2), metres, of the vehicle's static cells over its evidence of the last accumulate_s
        (one point per cell, oldest evidence first) and, per point, the vehicle's odometry position (N, 2)
        at the stamp of the newest evidence holding it; None before any evidence has static cells."""
        if not st.coreg_static:
            return None
        points = np.concatenate([p for _t, p, _c in st.coreg_static])
        pivots = np.concatenate([np.broadcast_to(c, p.shape) for _t, p, c in st.coreg_static])
        # Newest first into unique: each cell keeps its newest sighting.
        q = 0.01 * self.cfg.resolution_m
        _, first = np.unique(np.round(points[::-1] / q).astype(np.int64), axis=0, return_index=True)
        keep = len(points) - 1 - np.sort(first)[::-1]
        return points[keep], pivots[keep]

    def _static_points(self, st: _VehicleState, points: NDArray[np.float64], stamp_ns: int
                       ) -> NDArray[np.float64] | None:
        """The points of the evidence at ``stamp_ns`` that the vehicle's evidence at least
        ``static_min_age`` older also holds; all of them when the filter is off; None while no evidence
        is that old yet."""
        min_age = self.cfg.coreg_static_min_age_ns
        if min_age <= 0:
            return points
        earlier = [p for t, p in st.coreg_history if stamp_ns - t >= min_age]
        if not earlier:
            return None
        return persistent_points(points, earlier[-1], self.cfg.coreg_static_tolerance_m)

    def _on_coregistration(self) -> None:
        """One co-registration round: all fresh vehicles' static structure at once
        (:func:`~cooperative_fusion.core.fusion.coregistration.register_platoon`)."""
        t0 = time.perf_counter()
        now = self.now_ns()
        timeout = self.cfg.fusion.vehicle_timeout_ns
        points: dict[str, NDArray[np.float64]] = {}
        pivots: dict[str, NDArray[np.float64]] = {}
        for vid, st in self.vehicles.items():
            ev = st.evidence
            if ev is not None and now - ev.stamp_ns <= timeout:
                static = self._accumulated_static(st)
                if static is not None:
                    points[vid], pivots[vid] = static
                    st.coreg_static_points = len(static[0])
        if len(points) < 2:
            return
        # Each vehicle against the others' evidence moved by their estimates of this round, then the
        # platoon's median correction removed: registering to evidence as received pulled honest vehicles
        # towards a biased one (v2 +0.6-0.9 m towards a 0.5 m biased v1 on highway_occlusion_landmarks),
        # and registering to corrected evidence without an anchor let all corrections drift together.
        current = {vid: self.vehicles[vid].correction.as_result() for vid in points}
        results = register_platoon(points, pivots, current, self.cfg.coreg, self.cfg.coreg_sweeps)
        for vid, result in results.items():
            st = self.vehicles[vid]
            st.coreg_last = result
            if result.accepted:
                st.correction = st.correction.blend(result, self.cfg.coreg_smoothing)
                st.coreg_updates += 1
        self.coreg_ms.add(1e3 * (time.perf_counter() - t0))

    def _on_discovery(self) -> None:
        for name, _types in self.get_topic_names_and_types():
            m = _EVIDENCE_TOPIC.match(name)
            if m is None or m.group(1) in self.vehicles or m.group(1) in self.ignored:
                continue
            self.ignored.add(m.group(1))
            self.get_logger().warning(
                f'evidence topic {name} of vehicle {m.group(1)!r} ignored: not in vehicles {list(self.vehicles)}')

    # --------------------------------------------------------- diagnostics --

    def node_values(self, now_ns: int) -> dict[str, object]:
        """The node-level status values.

        publish_rate_hz : grids published per second (node clock); published : count;
        grid.* : window geometry; latency_ms.* : sensor stamp -> publish, common time;
        cycle_ms.*, integrate_ms.*, coreg_ms.* : wall time per publish cycle / evidence message /
        co-registration round; ignored_vehicles.count / .ids : unconfigured evidence publishers;
        dynamic.objects : moving objects drawn now, dynamic.moving_total : moving components so far.
        """
        spec = self.grid.spec
        values: dict[str, object] = {
            'publish_rate_hz': self.publish_rate.rate_hz(now_ns), 'published': self.published,
            'grid.width': spec.width, 'grid.height': spec.height, 'grid.resolution_m': spec.resolution,
            'grid.origin_x': spec.origin_x, 'grid.origin_y': spec.origin_y}
        values.update(self.latency.as_values('latency_ms.'))
        values.update(self.cycle_ms.as_values('cycle_ms.'))
        values.update(self.integrate_ms.as_values('integrate_ms.'))
        values.update(self.coreg_ms.as_values('coreg_ms.'))
        if self.dynamic is not None:
            values['dynamic.objects'] = len(self.dynamic.objects(now_ns))
            values['dynamic.moving_total'] = self.dynamic.moving_total
        values['ignored_vehicles.count'] = len(self.ignored)
        values['ignored_vehicles.ids'] = ','.join(sorted(self.ignored))
        values.update(self.node_drops.as_values('drops.'))
        return values

    def vehicle_values(self, vid: str, now_ns: int) -> tuple[Level, str, dict[str, object]]:
        """Level, message and values of one vehicle's status.

        state : active / dropped (silent longer than the timeout: WARN) / never_seen (STALE);
        last_seen_age_s; accepted; rejoins; received; weight; drops.<cause> / drops.total;
        coreg.dx, coreg.dy (m), coreg.dyaw_deg : the correction applied, about coreg.pivot_x/_y;
        coreg.fitness, coreg.rmse (m), coreg.accepted, coreg.reason : the latest estimate;
        coreg.updates : accepted estimates so far; coreg.static_points : static cells registered last;
        link.latency_ms / link.latency_p95_ms : evidence arrival - stamp (median / p95 over link.window_s),
        link.missing_share : share of the evidence stream missing over the window, link.reordered /
        link.duplicates : counts so far, link.evidence_max_age_s / link.object_max_age_s : the age limits
        in force (fusion.max_age_s / dynamic.max_age_s + the latency beyond link.nominal_latency_s, capped);
        consistency.score (1 = agrees with the others),
        consistency.conflict_cells (latest message), consistency.conflict_cells_total, consistency.flagged
        (score below consistency.flag_below: WARN, unless the vehicle is already dropped).
        """
        st = self.vehicles[vid]
        book = self.grid.vehicles_status(now_ns)[vid]
        if book.last_seen_ns is None:
            level, state, message = Level.STALE, 'never_seen', 'no evidence fused yet'
        elif book.active:
            level, state, message = Level.OK, 'active', f'{book.accepted} grids fused'
        else:
            level, state = Level.WARN, 'dropped'
            message = f'silent for {(now_ns - book.last_seen_ns) / 1e9:.1f} s: dropped from the fusion'
        cons = self.consistency.status(vid) if self.consistency is not None else None
        if cons is not None and cons.flagged and level is not Level.WARN:
            level = Level.WARN
            message = (f'inconsistent: score {cons.score:.2f} < {self.consistency.config.flag_below:g}, '
                       f'{cons.last_conflict_cells} cells contradict the others')
        counts = st.drops.counts
        values: dict[str, object] = {
            'state': state,
            'last_seen_age_s': math.nan if book.last_seen_ns is None else (now_ns - book.last_seen_ns) / 1e9,
            'accepted': book.accepted, 'rejoins': book.rejoins, 'received': st.received, 'weight': book.weight}
        for cause in sorted(set(VEHICLE_CAUSES) | set(counts)):
            values[f'drops.{cause}'] = counts.get(cause, 0)
        values['drops.total'] = st.drops.total
        lat = st.link.latency_ns(now_ns)
        values.update({'link.latency_ms': math.nan if lat is None else lat / 1e6,
                       'link.latency_p95_ms': (math.nan if lat is None
                                               else st.link.latency_ns(now_ns, 0.95) / 1e6),
                       'link.missing_share': st.link.missing_share(now_ns),
                       'link.reordered': st.link.reordered, 'link.duplicates': st.link.duplicates,
                       'link.evidence_max_age_s': self.evidence_max_age_ns(st, now_ns) / 1e9})
        obj_age = self.object_max_age_ns(st, now_ns)
        if obj_age is not None:
            values['link.object_max_age_s'] = obj_age / 1e9
        values.update({'clock.samples': st.clock.n_samples, 'clock.rejected': st.clock.n_rejected,
                       'clock.offset_ms': st.clock.offset_ns / 1e6 if st.clock.n_samples else math.nan})
        corr = st.correction
        values.update({'coreg.dx': corr.dx, 'coreg.dy': corr.dy, 'coreg.dyaw_deg': math.degrees(corr.dyaw),
                       'coreg.pivot_x': corr.pivot[0], 'coreg.pivot_y': corr.pivot[1],
                       'coreg.updates': st.coreg_updates, 'coreg.static_points': st.coreg_static_points})
        last = st.coreg_last
        values.update({'coreg.fitness': math.nan if last is None else last.fitness,
                       'coreg.rmse': math.nan if last is None else last.rmse,
                       'coreg.accepted': False if last is None else last.accepted,
                       'coreg.reason': 'not run' if last is None else last.reason})
        if cons is not None:
            values.update({'consistency.score': cons.score, 'consistency.conflict_cells': cons.last_conflict_cells,
                           'consistency.conflict_cells_total': cons.total_conflict_cells,
                           'consistency.flagged': cons.flagged})
        return level, message, values

    def _publish_diagnostics(self) -> None:
        now = self.now_ns()
        hw = self.get_fully_qualified_name()
        statuses = []
        dropped = []
        for vid in self.vehicles:
            level, message, values = self.vehicle_values(vid, now)
            if values['state'] == 'dropped':
                dropped.append(vid)
            statuses.append(make_status(f'{NODE_NAME}: {vid}', level, message, values, hardware_id=vid))
        node_values = self.node_values(now)
        if dropped:
            level, message = Level.WARN, f'vehicles dropped: {", ".join(dropped)}'
        elif self.published == 0:
            level, message = Level.STALE, 'no grid published yet'
        else:
            level, message = Level.OK, f'{self.published} grids published'
        if self.ignored:
            message += f'; ignoring unconfigured {", ".join(sorted(self.ignored))}'
        statuses.insert(0, make_status(NODE_NAME, level, message, node_values, hardware_id=hw))
        self.diag_pub.publish(make_array(now, statuses))


def create_node(**kwargs: Any) -> FusionNode:
    """A FusionNode for in-process composition; ``kwargs`` go to ``rclpy.node.Node``."""
    return FusionNode(**kwargs)


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(FusionNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
