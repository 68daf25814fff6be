"""Per-vehicle perception node: lidar, radar, depth camera and odometry -> this cycle's evidence grid.

Subscribes (topics default to DESIGN.md's names under ``/<vehicle_id>``):
``lidar/points``, ``radar/points``, ``camera/depth/image``,
``camera/depth/camera_info``, ``odom``. Publishes ``evidence_grid``
(nav_msgs/OccupancyGrid, ``map``), ``radar/targets`` (PointCloud2 in ``map``,
ego motion removed from the radial velocity) and ``/diagnostics``.

The node is thin: callbacks convert messages with the ``ros/`` adapters, odometry
fills a :class:`PoseBuffer`, sensor payloads go into an
:class:`ApproximateTimeSync`, and every completed set runs through
:class:`~cooperative_fusion.core.vehicle.pipeline.VehiclePipeline`. Bad input
never kills it: each drop is logged (first of a cause, then throttled) and
counted in ``/diagnostics``.

Drop causes (``drops.<cause>`` in /diagnostics): ``<stream>_format`` (malformed
message), ``<stream>_wrong_frame`` / ``odom_child_wrong_frame`` (unexpected
frame_id), ``<stream>_stamp_future`` / ``odom_stamp_future`` (stamped over a minute ahead of
the node clock), ``odom_covariance`` (not PSD), ``odom_frame`` (pose rejected by the
buffer), ``camera_no_info`` / ``camera_size`` (no or mismatching CameraInfo),
``sync_late`` / ``sync_out_of_order`` / ``sync_queue_overflow`` /
``sync_unmatched`` / ``sync_stale`` (the synchroniser's drops), ``set_no_pose``
(no pose at a set's stamp: the whole cycle is lost), ``<stream>_no_pose`` (one
member without a pose: the cycle goes on without it), ``<source>_internal``
(an unexpected exception: a bug, logged and survived).

Run: ``vehicle_node --ros-args -r __ns:=/v1 --params-file config/vehicle.yaml``
(the vehicle id then comes from the namespace) or ``-p vehicle_id:=v1``.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, TimeReference

from ..core.errors import ConfigError, CooperativeFusionError, FrameError, MessageFormatError
from ..core.grid import logodds_to_percent
from ..core.vehicle.ground import GroundConfig
from ..core.vehicle.pose_buffer import PoseBuffer, PoseBufferConfig
from ..core.vehicle.pose_wait import PoseWait, PoseWaitConfig, Release
from ..core.vehicle.sensor_models import SensorModel
from ..core.vehicle.share import EvidenceSharer, ShareConfig
from ..core.vehicle.sync import ApproximateTimeSync, SyncConfig, SyncSet
from ..core.timebase import ClockEstimator, ClockFitConfig
from ..core.vehicle.pipeline import (STREAMS, set_pose_horizon_ns, CycleResult, DepthFrame, FrameConfig, LidarScan, PipelineConfig,
                                     QosConfig, RadarScan, TopicConfig, VehicleConfig, VehiclePipeline,
                                     WindowConfig)
from ..ros.diagnostics import DropCounter, LatencyStats, Level, RateMeter, make_array, make_status
from ..ros.grid import grid_to_msg
from ..ros.image import camera_info_to_k, depth_image_to_array
from ..ros.odometry import covariance_is_psd, odometry_to_pose
from ..ros.params import Param, declare
from ..ros.pointcloud import array_to_cloud, cloud_to_array, xyz
from ..ros.qos import diagnostics_qos, evidence_qos, sensor_qos, state_qos
from ..ros.time import stamp_to_ns, time_reference_to_ns
from .entry import SetupNode, spin_node

NODE_NAME = 'vehicle_node'
_NS_PER_S = 1_000_000_000
#: An input stamped further than this ahead of the node clock is dropped (``<stream>_stamp_future``):
#: one message from a broken clock (year 2100) would otherwise become its stream's newest stamp and
#: make every later message late, or empty the pose buffer. Vehicle clocks are within seconds of
#: the node clock (on the vehicle it is the same clock; in a replay, the bag's log time).
STAMP_FUTURE_TOLERANCE_NS = 60 * _NS_PER_S

#: Every parameter of the node, in one place. Empty topic / frame names are
#: derived from the vehicle id (DESIGN.md's names); config/vehicle.yaml documents each row.
PARAMS: tuple[Param, ...] = (
    Param('vehicle_id', '', 'vehicle id (v1, v2, ...); empty = the node namespace without its slash'),
    # topics
    Param('topics.lidar', '', 'lidar PointCloud2 input; empty = /<vehicle_id>/lidar/points'),
    Param('topics.radar', '', 'radar PointCloud2 input; empty = /<vehicle_id>/radar/points'),
    Param('topics.camera', '', 'depth Image input; empty = /<vehicle_id>/camera/depth/image'),
    Param('topics.camera_info', '', 'CameraInfo input; empty = /<vehicle_id>/camera/depth/camera_info'),
    Param('topics.odom', '', 'Odometry input (map -> base_link); empty = /<vehicle_id>/odom'),
    Param('topics.time_reference', '',
          'TimeReference input (vehicle clock -> common time); empty = /<vehicle_id>/time_reference'),
    Param('topics.evidence_grid', '', 'OccupancyGrid output; empty = /<vehicle_id>/evidence_grid'),
    Param('topics.radar_targets', '', 'PointCloud2 output in map; empty = /<vehicle_id>/radar/targets'),
    # frames
    Param('frames.map', 'map', 'shared frame of odometry and of every output'),
    Param('frames.base_link', '', 'vehicle body frame (odometry child); empty = <vehicle_id>/base_link'),
    Param('frames.lidar', '', 'frame_id expected on lidar clouds; empty = <vehicle_id>/lidar'),
    Param('frames.radar', '', 'frame_id expected on radar clouds; empty = <vehicle_id>/radar'),
    Param('frames.camera_optical', '', 'frame_id expected on depth images; empty = <vehicle_id>/camera_optical'),
    # extrinsics: sensor -> base_link
    # defaults: the car of config/scenarios (sim.world.sensor_extrinsics gives any vehicle's)
    Param('extrinsics.lidar', [1.2, 0.0, 1.9, 0.0, 0.0, 0.0],
          'lidar pose in base_link [x, y, z, roll, pitch, yaw], metres and radians'),
    Param('extrinsics.radar', [3.4, 0.0, 0.5, 0.0, 0.0, 0.0],
          'radar pose in base_link [x, y, z, roll, pitch, yaw], metres and radians'),
    Param('extrinsics.camera_optical', [1.8, 0.0, 1.4, -math.pi / 2, 0.0, -math.pi / 2],
          'camera optical frame (z forward, x right, y down) in base_link [x, y, z, roll, pitch, yaw]'),
    # grid window
    Param('grid.mode', 'rolling', 'rolling: window moves with the vehicle; fixed: window at fixed_origin'),
    Param('grid.size_x_m', 100.0, 'window extent along map x, metres', 1.0, 2000.0),
    Param('grid.size_y_m', 40.0, 'window extent along map y, metres', 1.0, 2000.0),
    Param('grid.resolution_m', 0.2, 'cell size, metres (must match the fusion grid)', 0.01, 10.0),
    Param('grid.forward_offset_m', 30.0, 'rolling: window centre this far ahead of base_link, metres',
          -1000.0, 1000.0),
    Param('grid.fixed_origin_x_m', 0.0, 'fixed: lower-left corner x in map, metres, on the lattice'),
    Param('grid.fixed_origin_y_m', 0.0, 'fixed: lower-left corner y in map, metres, on the lattice'),
    # sync
    Param('sync.streams', list(STREAMS), 'enabled sensor streams (subset of lidar, radar, camera)'),
    Param('sync.reference', 'lidar', 'stream whose stamps define the sets'),
    Param('sync.slop_s', 0.05, 'largest spread (max stamp - min stamp) of a set, seconds', 0.0, 10.0),
    Param('sync.queue_size', 20, 'messages kept per stream while waiting for partners '
          '(at least rate x stream_timeout_s of the fastest stream)', 1, 1000),
    Param('sync.stream_timeout_s', 0.5, 'a stream silent this long (node clock) is left out of sets, seconds',
          0.001, 60.0),
    Param('sync.late_horizon_s', 0.3, 'a message this far behind its stream\'s newest stamp is dropped, seconds',
          0.001, 60.0),
    Param('sync.poll_period_s', 0.05, 'period of the timer that releases sets with missing members, seconds',
          0.001, 10.0),
    # pose buffer
    Param('pose_buffer.max_age_s', 2.0, 'odometry history kept, seconds', 0.01, 600.0),
    Param('pose_buffer.wait_s', 0.3, 'a sync set waits for odometry to cover its stamps (odometry may arrive after '
          'the sensors) until the sensors have moved this far on, by their stamps, without new odometry; then it is '
          'processed with the poses there are, seconds. Timed on the sensor stamps, not the node clock, so a node '
          'that falls behind its input queues does not give up on odometry already queued', 0.0, 10.0),
    Param('pose_buffer.max_wait_s', 2.0, 'longest a sync set waits for odometry on the node clock, whatever the '
          'sensors do (when they stop too, or odometry keeps coming without covering the set), seconds',
          0.0, 60.0),
    Param('pose_buffer.extrapolation_margin_s', 0.1,
          'lookups up to this far past the newest pose extrapolate, seconds', 0.0, 10.0),
    # sensor models
    Param('lidar.p_hit', 0.85, 'lidar inverse model: occupancy probability at a return', 0.5, 1.0),
    Param('lidar.p_miss', 0.35, 'lidar inverse model: occupancy probability where a beam passed', 0.0, 0.5),
    Param('lidar.min_range_m', 1.0, 'lidar blind zone, metres', 0.0, 1000.0),
    Param('lidar.max_range_m', 100.0, 'lidar max trusted range, metres', 0.1, 1000.0),
    Param('lidar.azimuth_resolution_deg', 0.6,
          'lidar polar-sweep bin width, degrees; at least the azimuth step (0.6 for the simulated lidar)', 0.01, 180.0),
    Param('radar.p_hit', 0.65, 'radar inverse model: occupancy probability at a detection', 0.5, 1.0),
    Param('radar.p_miss', 0.45, 'radar inverse model p_miss (radar gives no free evidence)', 0.0, 0.5),
    Param('radar.min_range_m', 0.5, 'radar blind zone, metres', 0.0, 1000.0),
    Param('radar.max_range_m', 150.0, 'radar max trusted range, metres', 0.1, 1000.0),
    Param('radar.sigma_m', 0.5, 'radar 1-sigma position error, metres', 0.0, 20.0),
    Param('camera.p_hit', 0.75, 'depth camera inverse model: occupancy probability at a return', 0.5, 1.0),
    Param('camera.p_miss', 0.40, 'depth camera inverse model: occupancy probability where a ray passed',
          0.0, 0.5),
    Param('camera.min_range_m', 0.3, 'depth camera blind zone, metres', 0.0, 1000.0),
    Param('camera.max_range_m', 40.0, 'depth camera max trusted range, metres', 0.1, 1000.0),
    Param('camera.azimuth_resolution_deg', 0.75, 'depth camera polar-sweep bin width, degrees', 0.01, 180.0),
    Param('camera.hfov_deg', 90.0, 'cap on the horizontal field of view, degrees (intrinsics decide when narrower)',
          1.0, 179.0),
    Param('camera.stride', 1, 'use every n-th depth pixel along rows and columns', 1, 64),
    # ground removal
    Param('ground.mode', 'height_band', 'height_band: road at ground.z_m; ransac: fit the road plane'),
    Param('ground.z_m', 0.0, 'road height in map, metres'),
    Param('ground.min_obstacle_height_m', 0.3, 'nearer the road than this is ground, metres', 0.0, 10.0),
    Param('ground.max_obstacle_height_m', 3.0, 'higher than this is overhang and ignored, metres', 0.0, 100.0),
    Param('ground.ransac_distance_m', 0.15, 'RANSAC inlier distance, metres', 0.001, 10.0),
    Param('ground.ransac_iterations', 100, 'RANSAC iterations', 1, 100000),
    # common timebase
    Param('timebase.enabled', True, 'map output stamps from the vehicle clock to common time with a robust fit '
          'of the TimeReference stream; false = the vehicle clock already is common time'),
    Param('timebase.window_s', 30.0, 'sliding window of the clock fit, seconds', 1.0, 3600.0),
    Param('timebase.outlier_threshold_ms', 5.0, 'TimeReference pairs further than this from the fit are '
          'rejected as outliers, milliseconds', 0.01, 10000.0),
    Param('output_stamp_offset_s', 0.05, 'added to the reference (lidar) stamp on outputs: the moment the '
          'cycle describes. A deskewed sweep puts static things right whatever the stamp; moving things sit '
          'where they were when the beam passed them, so use the time the lidar looks ahead (half a period '
          'for a sweep that starts behind the vehicle, as the simulated lidar does)', -1.0, 1.0),
    # what is shared of each cycle's evidence (core/share.py): V2V bandwidth
    Param('share.resolution_m', 0.4, 'cell size of the published evidence, metres: a whole multiple of '
          'grid.resolution_m (k x k blocks of the global lattice become one cell; a block with a confident '
          'occupied cell takes its maximum, else the mean of its known cells)', 0.01, 10.0),
    Param('share.period_cycles', 1, 'publish every N-th cycle the sum of the evidence of the N cycles since the '
          'last share (each cycle sent once; moving objects smear over the N cycles)', 1, 100),
    Param('share.crop', 'known', 'none: the whole window; known: the bounding box of the known cells; corridor: '
          'cells within share.corridor_half_width_m of the vehicle\'s map y (straight road along map x), '
          'then their known bounding box'),
    Param('share.corridor_half_width_m', 10.0, 'corridor crop: half width of the band around the vehicle\'s y, '
          'metres', 0.1, 1000.0),
    Param('share.occupied_logodds', 0.4, 'downsampling: a block with a cell at or above this log-odds '
          '(0.4 = p 0.6) takes the block maximum (occupied wins)', 0.01, 10.0),
    # motion
    Param('deskew', True, 'per-point motion compensation when a lidar cloud has a t field (seconds after stamp)'),
    # qos / diagnostics
    Param('qos.sensor_depth', 20, 'queue depth of lidar, radar, camera subscriptions: at least sync.queue_size\'s '
          'worth of the fastest stream, so a node that falls behind (a busy CPU) finds the partners its sync '
          'waits for still queued; a partner overwritten in the queue costs the whole cycle', 1, 1000),
    Param('qos.state_depth', 50, 'queue depth of odometry and camera_info subscriptions', 1, 10000),
    Param('qos.output_depth', 10, 'queue depth of the evidence and radar target publishers', 1, 1000),
    Param('diagnostics.period_s', 1.0, 'period of /diagnostics, seconds', 0.01, 3600.0),
)


def _ns(seconds: float) -> int:
    return int(round(seconds * _NS_PER_S))


def config_from_params(values: dict[str, Any], namespace: str = '/') -> VehicleConfig:
    """The validated VehicleConfig from declared parameter values (``{name: value}``).

    Raises ConfigError naming the first unusable value.
    """
    v = str(values['vehicle_id']) or namespace.strip('/')
    if not v:
        raise ConfigError('vehicle_id is empty and the node has no namespace: set -p vehicle_id:=v1 '
                          'or -r __ns:=/v1')
    default_topics = TopicConfig.for_vehicle(v)
    topics = TopicConfig(**{f: values[f'topics.{f}'] or getattr(default_topics, f)
                            for f in TopicConfig.__dataclass_fields__})
    default_frames = FrameConfig.for_vehicle(v)
    frames = FrameConfig(**{f: values[f'frames.{f}'] or getattr(default_frames, f)
                            for f in FrameConfig.__dataclass_fields__})
    window = WindowConfig(mode=values['grid.mode'], size_x_m=values['grid.size_x_m'],
                          size_y_m=values['grid.size_y_m'], resolution_m=values['grid.resolution_m'],
                          forward_offset_m=values['grid.forward_offset_m'],
                          fixed_origin_x_m=values['grid.fixed_origin_x_m'],
                          fixed_origin_y_m=values['grid.fixed_origin_y_m'])

    def model(s: str, az_deg: float) -> SensorModel:
        return SensorModel(p_hit=values[f'{s}.p_hit'], p_miss=values[f'{s}.p_miss'],
                           max_range_m=values[f'{s}.max_range_m'], min_range_m=values[f'{s}.min_range_m'],
                           azimuth_resolution_rad=math.radians(az_deg))

    ground = GroundConfig(mode=values['ground.mode'], ground_z_m=values['ground.z_m'],
                          min_obstacle_height_m=values['ground.min_obstacle_height_m'],
                          max_obstacle_height_m=values['ground.max_obstacle_height_m'],
                          ransac_distance_m=values['ground.ransac_distance_m'],
                          ransac_iterations=values['ground.ransac_iterations'])
    pipeline = PipelineConfig(
        window=window, lidar_extrinsic=values['extrinsics.lidar'], radar_extrinsic=values['extrinsics.radar'],
        camera_extrinsic=values['extrinsics.camera_optical'],
        lidar_model=model('lidar', values['lidar.azimuth_resolution_deg']),
        # the radar model's bins are unused (no polar sweep for radar)
        radar_model=model('radar', 1.0),
        camera_model=model('camera', values['camera.azimuth_resolution_deg']),
        radar_sigma_m=values['radar.sigma_m'], camera_hfov_rad=math.radians(values['camera.hfov_deg']),
        camera_stride=values['camera.stride'], ground=ground, deskew=values['deskew'],
        enabled=tuple(values['sync.streams']))
    return VehicleConfig(
        vehicle_id=v, topics=topics, frames=frames, pipeline=pipeline,
        qos=QosConfig(values['qos.sensor_depth'], values['qos.state_depth'], values['qos.output_depth']),
        sync_reference=values['sync.reference'], sync_slop_ns=_ns(values['sync.slop_s']),
        sync_queue_size=values['sync.queue_size'], sync_stream_timeout_ns=_ns(values['sync.stream_timeout_s']),
        sync_late_horizon_ns=_ns(values['sync.late_horizon_s']), sync_poll_period_s=values['sync.poll_period_s'],
        pose_max_age_ns=_ns(values['pose_buffer.max_age_s']),
        pose_extrapolation_margin_ns=_ns(values['pose_buffer.extrapolation_margin_s']),
        pose_wait_ns=_ns(values['pose_buffer.wait_s']),
        pose_max_wait_ns=_ns(values['pose_buffer.max_wait_s']),
        diagnostics_period_s=values['diagnostics.period_s'],
        timebase_enabled=values['timebase.enabled'], timebase_window_ns=_ns(values['timebase.window_s']),
        timebase_outlier_ns=_ns(values['timebase.outlier_threshold_ms'] / 1e3),
        output_stamp_offset_ns=_ns(values['output_stamp_offset_s']),
        share=ShareConfig(resolution_m=values['share.resolution_m'], period_cycles=values['share.period_cycles'],
                          crop=values['share.crop'], corridor_half_width_m=values['share.corridor_half_width_m'],
                          occupied_logodds=values['share.occupied_logodds']))


class VehicleNode(SetupNode):
    """See the module docstring. ``kwargs`` go to ``rclpy.node.Node`` (context, namespace,
    parameter_overrides, cli_args, ...), so the in-process bringup can compose it."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        self.cfg = config_from_params(declare(self, PARAMS), self.get_namespace())
        cfg = self.cfg
        self.pipeline = VehiclePipeline(cfg.pipeline)
        self.sharer = EvidenceSharer(cfg.share, cfg.pipeline.window.resolution_m)
        self.shares = 0
        self.poses = PoseBuffer(PoseBufferConfig(max_age_ns=cfg.pose_max_age_ns,
                                                 extrapolation_margin_ns=cfg.pose_extrapolation_margin_ns))
        streams = cfg.pipeline.enabled
        self.sync = ApproximateTimeSync(SyncConfig(
            streams=streams, reference=cfg.sync_reference, slop_ns=cfg.sync_slop_ns,
            queue_size=cfg.sync_queue_size, stream_timeout_ns=cfg.sync_stream_timeout_ns,
            late_horizon_ns=cfg.sync_late_horizon_ns))
        self.drops = DropCounter()
        window_s = max(2.0 * cfg.diagnostics_period_s, 1.0)
        self.input_rates = {s: RateMeter(window_s) for s in (*streams, 'odom')}
        self.set_rate = RateMeter(window_s)
        self.processing_ms = LatencyStats()
        self.cycles = 0
        # sync sets waiting for odometry to cover their stamps, timed on the sensor stamps
        self._waiting: PoseWait[SyncSet] = PoseWait(PoseWaitConfig(wait_ns=cfg.pose_wait_ns,
                                                                   max_wait_ns=cfg.pose_max_wait_ns))
        self.sets_waited = 0
        self.sets_released = {r: 0 for r in Release if r is not Release.COVERED}
        self._drops_reported = 0
        self._K: np.ndarray | None = None
        self.clock_fit = ClockEstimator(ClockFitConfig(window_ns=cfg.timebase_window_ns,
                                                       outlier_threshold_ns=cfg.timebase_outlier_ns))
        self._info_shape: tuple[int, int] | None = None

        t = cfg.topics
        self.grid_pub = self.create_publisher(OccupancyGrid, t.evidence_grid, evidence_qos(cfg.qos.output_depth))
        self.targets_pub = (self.create_publisher(PointCloud2, t.radar_targets, evidence_qos(cfg.qos.output_depth))
                            if 'radar' in streams else None)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', diagnostics_qos())
        sq, st = sensor_qos(cfg.qos.sensor_depth), state_qos(cfg.qos.state_depth)
        self.create_subscription(Odometry, t.odom, self._guard('odom', self._on_odom), st)
        if cfg.timebase_enabled:
            self.create_subscription(TimeReference, t.time_reference,
                                     self._guard('time_reference', self._on_time_reference), st)
        if 'lidar' in streams:
            self.create_subscription(PointCloud2, t.lidar, self._guard('lidar', self._on_lidar), sq)
        if 'radar' in streams:
            self.create_subscription(PointCloud2, t.radar, self._guard('radar', self._on_radar), sq)
        if 'camera' in streams:
            self.create_subscription(Image, t.camera, self._guard('camera', self._on_depth), sq)
            self.create_subscription(CameraInfo, t.camera_info, self._guard('camera_info', self._on_camera_info), st)
        self.poll_timer = self.create_timer(cfg.sync_poll_period_s, self._guard('poll', self._on_poll))
        self.diag_timer = self.create_timer(cfg.diagnostics_period_s,
                                            self._guard('diagnostics', self._publish_diagnostics))
        self.get_logger().info(
            f'vehicle {cfg.vehicle_id}: streams {list(streams)} (reference {cfg.sync_reference}), '
            f'grid {cfg.pipeline.window.mode.value} {cfg.pipeline.window.size_x_m}x{cfg.pipeline.window.size_y_m} m '
            f'at {cfg.pipeline.window.resolution_m} m -> {t.evidence_grid} at {cfg.share.resolution_m} m every '
            f'{cfg.share.period_cycles} cycle(s), crop {cfg.share.crop.value}')

    # ------------------------------------------------------------- helpers --

    def now_ns(self) -> int:
        """Node clock (sim time when use_sim_time is set), nanoseconds."""
        return int(self.get_clock().now().nanoseconds)

    def to_output_stamp(self, stamp_vehicle_ns: int) -> int | None:
        """Vehicle-clock stamp -> common-time stamp of the published outputs.

        Adds ``output_stamp_offset_s`` and maps through the clock fit of the
        TimeReference stream. Returns None while no time reference has arrived
        (the caller drops the cycle and counts it: a stamp in the wrong clock
        would be fused at the wrong time). With ``timebase.enabled`` false the
        vehicle clock is taken as common time.
        """
        stamp = int(stamp_vehicle_ns) + self.cfg.output_stamp_offset_ns
        if not self.cfg.timebase_enabled:
            return stamp
        if self.clock_fit.n_samples == 0:
            return None
        return int(self.clock_fit.to_common(stamp))

    def _drop(self, cause: str, detail: str) -> None:
        self.drops.count(cause, detail, self.get_logger())

    def _guard(self, source: str, fn: Callable[[Any], None] | Callable[[], None]) -> Callable[..., None]:
        """Wrap a callback so bad input is counted and logged, never raised into the executor."""

        def wrapped(*args: Any) -> None:
            try:
                fn(*args)
            except MessageFormatError as exc:
                self._drop(f'{source}_format', str(exc))
            except FrameError as exc:
                self._drop(f'{source}_frame', str(exc))
            except CooperativeFusionError as exc:
                self._drop(f'{source}_{type(exc).__name__}', str(exc))
            except Exception as exc:  # a bug, but one bad message must not stop the vehicle's perception
                self._drop(f'{source}_internal', f'{type(exc).__name__}: {exc}')

        return wrapped

    def _check_stamp(self, stream: str, stamp_ns: int) -> bool:
        now = self.now_ns()
        if now > 0 and stamp_ns > now + STAMP_FUTURE_TOLERANCE_NS:   # 0: sim time not started yet
            self._drop(f'{stream}_stamp_future', f'{stream} stamp {stamp_ns} ns is more than '
                                                 f'{STAMP_FUTURE_TOLERANCE_NS / _NS_PER_S:g} s ahead of the node '
                                                 f'clock ({now} ns)')
            return False
        return True

    def _check_frame(self, stream: str, frame_id: str, expected: str) -> bool:
        if frame_id != expected:
            self._drop(f'{stream}_wrong_frame', f'{stream} frame_id {frame_id!r}, expected {expected!r}')
            return False
        return True

    # ----------------------------------------------------------- callbacks --

    def _on_odom(self, msg: Odometry) -> None:
        self.input_rates['odom'].tick(self.now_ns())
        if not (self._check_frame('odom', msg.header.frame_id, self.cfg.frames.map)
                and self._check_frame('odom_child', msg.child_frame_id, self.cfg.frames.base_link)):
            return
        pose = odometry_to_pose(msg)
        if not self._check_stamp('odom', pose.stamp_ns):
            return
        if not covariance_is_psd(pose.covariance):
            self._drop('odom_covariance', f'odometry at {pose.stamp_ns} ns has a covariance that is not '
                                          f'positive semi-definite')
            return
        newest = self._newest_pose_ns()
        self.poses.insert(pose)
        if newest is None or pose.stamp_ns > newest:
            self._waiting.odometry()
        self._release_waiting()

    def _on_time_reference(self, msg: TimeReference) -> None:
        stamp_vehicle_ns, common_ns = time_reference_to_ns(msg)
        if not self.clock_fit.add(stamp_vehicle_ns, common_ns):
            self._drop('time_reference_outlier', f'time reference {stamp_vehicle_ns} ns -> {common_ns} ns is '
                                                 f'off the clock fit by more than the outlier threshold')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if not self._check_frame('camera_info', msg.header.frame_id, self.cfg.frames.camera_optical):
            return
        if msg.width == 0 or msg.height == 0:
            raise MessageFormatError(f'camera_info size is {msg.width}x{msg.height}: expected the image size')
        self._K = camera_info_to_k(msg)
        self._info_shape = (int(msg.height), int(msg.width))

    def _on_lidar(self, msg: PointCloud2) -> None:
        self.input_rates['lidar'].tick(self.now_ns())
        if not self._check_frame('lidar', msg.header.frame_id, self.cfg.frames.lidar):
            return
        if not self._check_stamp('lidar', stamp_to_ns(msg.header.stamp)):
            return
        points, _ = cloud_to_array(msg)
        t_offset = None
        if 't' in (points.dtype.names or ()):
            t_offset = np.asarray(points['t'], dtype=np.float64)
        scan = LidarScan(stamp_to_ns(msg.header.stamp), xyz(points), t_offset)
        self._add('lidar', scan.stamp_vehicle_ns, scan)

    def _on_radar(self, msg: PointCloud2) -> None:
        self.input_rates['radar'].tick(self.now_ns())
        if not self._check_frame('radar', msg.header.frame_id, self.cfg.frames.radar):
            return
        if not self._check_stamp('radar', stamp_to_ns(msg.header.stamp)):
            return
        points, _ = cloud_to_array(msg, required=('x', 'y', 'z', 'velocity', 'rcs'))
        scan = RadarScan(stamp_to_ns(msg.header.stamp), xyz(points),
                         np.asarray(points['velocity'], dtype=np.float64), np.asarray(points['rcs'], dtype=np.float64))
        self._add('radar', scan.stamp_vehicle_ns, scan)

    def _on_depth(self, msg: Image) -> None:
        self.input_rates['camera'].tick(self.now_ns())
        if not self._check_frame('camera', msg.header.frame_id, self.cfg.frames.camera_optical):
            return
        if not self._check_stamp('camera', stamp_to_ns(msg.header.stamp)):
            return
        if self._K is None:
            self._drop('camera_no_info', f'depth image before any CameraInfo on {self.cfg.topics.camera_info}')
            return
        depth = depth_image_to_array(msg)
        if depth.shape != self._info_shape:
            self._drop('camera_size', f'depth image {depth.shape[1]}x{depth.shape[0]} does not match '
                                      f'CameraInfo {self._info_shape[1]}x{self._info_shape[0]}')
            return
        frame = DepthFrame(stamp_to_ns(msg.header.stamp), depth, self._K)
        self._add('camera', frame.stamp_vehicle_ns, frame)

    def _add(self, stream: str, stamp_vehicle_ns: int, payload: Any) -> None:
        self._waiting.sensor(stamp_vehicle_ns)
        before = self.sync.stats
        sets = self.sync.add(stream, stamp_vehicle_ns, payload, self.now_ns())
        self._count_sync_drops(before, f'{stream} message at {stamp_vehicle_ns} ns')
        for sset in sets:
            self._submit(sset)
        self._release_waiting()    # sensor time moved on: sets may have waited long enough

    def _on_poll(self) -> None:
        before = self.sync.stats
        sets = self.sync.poll(self.now_ns())
        self._count_sync_drops(before, 'stream timeout')
        for sset in sets:
            self._submit(sset)
        self._release_waiting()

    def _newest_pose_ns(self) -> int | None:
        try:
            return self.poses.span()[1]
        except FrameError:      # no odometry yet
            return None

    def _submit(self, sset: SyncSet) -> None:
        """Process a sync set once odometry covers its stamps (core.vehicle.pose_wait: or odometry went silent).

        Odometry and sensors travel on different topics; a set whose newest stamp (or deskewed
        sweep end) lies after the newest pose would otherwise be extrapolated or dropped. Sets
        keep their order: one waiting set holds the ones behind it.
        """
        members = {name: payload for name, (_, payload) in sset.members.items()}
        horizon = set_pose_horizon_ns(members, self.cfg.pipeline.deskew)
        self._waiting.push(sset, horizon, self.now_ns())
        self._release_waiting()

    def _release_waiting(self) -> None:
        for released in self._waiting.release(self._newest_pose_ns(), self.now_ns()):
            if released.reason is Release.COVERED:
                if released.waited:
                    self.sets_waited += 1
            else:
                self.sets_released[released.reason] += 1
            self._process(released.payload)

    def _count_sync_drops(self, before: dict[str, int], detail: str) -> None:
        """Log and count the messages the synchroniser dropped in the last call (late, stale, ...)."""
        for key, n in self.sync.stats.items():
            if key.startswith('dropped.') and n > before.get(key, 0):
                for _ in range(n - before.get(key, 0)):
                    self._drop(f'sync_{key[len("dropped."):]}', detail)

    # --------------------------------------------------------------- cycle --

    def process_set(self, sset: SyncSet) -> CycleResult:
        """Run one sync set through the pipeline (no publishing). Raises the pipeline's errors."""
        members = {name: payload for name, (_, payload) in sset.members.items()}
        return self.pipeline.process(sset.stamp_ns, self.poses, lidar=members.get('lidar'),
                                     radar=members.get('radar'), camera=members.get('camera'))

    def _process(self, sset: SyncSet) -> None:
        self.set_rate.tick(self.now_ns())
        t0 = time.perf_counter()
        try:
            result = self.process_set(sset)
        except FrameError as exc:
            self._drop('set_no_pose', str(exc))
            return
        except CooperativeFusionError as exc:
            self._drop(f'set_{type(exc).__name__}', str(exc))
            return
        for name, reason in result.skipped.items():
            self._drop(f'{name}_no_pose', reason)
        stamp_ns = self.to_output_stamp(result.stamp_vehicle_ns)
        if stamp_ns is None:
            self._drop('no_timebase', f'no time reference on {self.cfg.topics.time_reference} yet: cannot map '
                                      f'the cycle at {result.stamp_vehicle_ns} ns (vehicle clock) to common time')
            return
        shared = self.sharer.add(result.spec, result.logodds, result.known, result.stamp_vehicle_ns,
                                 float(self.poses.lookup(result.stamp_vehicle_ns)[1, 3]))
        if shared is not None:
            cells = (result.cells if shared.spec == result.spec and shared.cycles == 1
                     else logodds_to_percent(shared.logodds, shared.known))
            self.grid_pub.publish(grid_to_msg(shared.spec, cells, stamp_ns, self.cfg.frames.map))
            self.shares += 1
        if result.radar_targets is not None and self.targets_pub is not None:
            self.targets_pub.publish(array_to_cloud(result.radar_targets, stamp_ns, self.cfg.frames.map))
        self.processing_ms.add(1e3 * (time.perf_counter() - t0))
        self.cycles += 1

    # --------------------------------------------------------- diagnostics --

    def diagnostics_values(self) -> dict[str, object]:
        """The node's health as /diagnostics carries it (make_status formats the values).

        rate_hz.<stream> : input messages per second (node clock); set_rate_hz : sync sets
        per second; cycles : evidence cycles processed; shares : evidence grids published
        (one per share.period_cycles cycles); sync.* : the synchroniser's counters
        (sync.gaps.<stream> silences, sync.missing.<stream> sets without it, ...);
        sets_waiting_for_pose / sets_waited_for_pose : sync sets waiting for odometry now / that
        waited and got it; sets_released_odometry_silent / sets_released_max_wait : sets that went on
        without covering odometry (core.vehicle.pose_wait; then extrapolated or dropped as set_no_pose);
        drops.<cause> / drops.total : inputs dropped, by cause;
        processing_ms.p50 / .p95 / .count : pipeline + publish time per set (wall clock);
        pose_buffer_span_s : odometry history held.
        """
        now = self.now_ns()
        values: dict[str, object] = {}
        for name, meter in self.input_rates.items():
            values[f'rate_hz.{name}'] = meter.rate_hz(now)
        values['set_rate_hz'] = self.set_rate.rate_hz(now)
        values['cycles'] = self.cycles
        values['sets_waiting_for_pose'] = len(self._waiting)
        values['sets_waited_for_pose'] = self.sets_waited
        for reason, n in self.sets_released.items():   # went on without covering odometry (set_no_pose if too far)
            values[f'sets_released_{reason.value}'] = n
        values['shares'] = self.shares
        values.update({f'sync.{k}': v for k, v in self.sync.stats.items()})
        values.update(self.drops.as_values('drops.'))
        values.update(self.processing_ms.as_values('processing_ms.'))
        if self.cfg.timebase_enabled:
            values['timebase.samples'] = self.clock_fit.n_samples
            if self.clock_fit.n_samples:
                values['timebase.offset_ms'] = self.clock_fit.offset_ns / 1e6
                values['timebase.drift_ppm'] = self.clock_fit.drift_ppm
                values['timebase.residual_ms'] = self.clock_fit.residual_ns / 1e6
        try:
            first, last = self.poses.span()
            values['pose_buffer_span_s'] = (last - first) / _NS_PER_S
        except FrameError:  # empty buffer
            values['pose_buffer_span_s'] = 0.0
        return values

    def _publish_diagnostics(self) -> None:
        values = self.diagnostics_values()
        total = self.drops.total
        if self.cycles == 0:
            level, message = Level.STALE, 'no evidence cycle yet'
        elif total > self._drops_reported:
            level, message = Level.WARN, f'{total - self._drops_reported} input(s) dropped since the last report'
        else:
            level, message = Level.OK, f'{self.cycles} cycles'
        self._drops_reported = total
        status = make_status(f'{NODE_NAME}: {self.cfg.vehicle_id}', level, message, values,
                             hardware_id=self.cfg.vehicle_id)
        self.diag_pub.publish(make_array(self.now_ns(), [status]))


def create_node(**kwargs: Any) -> VehicleNode:
    """A VehicleNode for in-process composition; ``kwargs`` go to ``rclpy.node.Node``."""
    return VehicleNode(**kwargs)


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(VehicleNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
