"""Per-vehicle perception node: lidar, radar, depth camera and odometry -> this cycle's evidence grid.

Subscribes (topics default to DESIGN.md's names under ``/<vehicle_id>``):
``lidar/points``, ``radar/points``, ``camera/depth/image``,
``camera/depth/camera_info``, ``odom``, ``time_reference``. Publishes ``evidence_grid``
(nav_msgs/OccupancyGrid, ``map``), ``radar/targets`` (PointCloud2 in ``map``,
ego motion removed from the radial velocity) and ``/diagnostics``. Callbacks
convert messages with the ``ros/`` adapters and hand them to
:class:`~cooperative_fusion.core.vehicle.vehicle_core.VehicleCore`; drops are
counted by the scaffold (``ros/node.py``): ``drops.<source>.<cause>`` with source
a stream, ``odom``, ``camera_info``, ``time_reference``, ``sync`` (the synchroniser)
or ``set`` (a whole cycle lost: ``no_pose``, ``no_timebase``). The lidar, radar, depth image and odometry
inputs are subscribed raw (their CDR bytes decoded by ``ros/cdr_decode.py``, no rclpy message built; the
lock-step runner's message objects are taken as well): bytes that are no such message count as
``<source>.malformed``.

Run: ``vehicle_node --ros-args -r __ns:=/v1 --params-file config/vehicle.yaml``
(the vehicle id then comes from the namespace) or ``-p vehicle_id:=v1``.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, TimeReference

from ..core.config_values import config_from_values, seconds_to_ns
from ..core.errors import ConfigError
from ..core.timebase import ClockFitConfig
from ..core.vehicle_defaults import (LIDAR_EXTRINSIC, MOVING_AZIMUTH_SIGMA_DEG, MOVING_MIN_SPEED_MPS, MOVING_RADIUS_M,
                                     MOVING_RANGE_SIGMA_M)
from ..core.vehicle.ground import GroundConfig
from ..core.vehicle.pipeline import STREAMS, LidarScan, PipelineConfig, RadarScan, WindowConfig
from ..core.vehicle.pose_buffer import PoseBufferConfig
from ..core.vehicle.pose_wait import PoseWaitConfig
from ..core.vehicle.sensor_models import SensorModel
from ..core.vehicle.share import ShareConfig
from ..core.vehicle.sync import SyncConfig
from ..core.vehicle.vehicle_core import FrameConfig, Step, VehicleConfig, VehicleCore
from ..ros import names
from ..ros.cdr_decode import as_image, as_odometry, as_point_cloud2
from ..ros.diagnostics import LatencyStats, Level, RateMeter
from ..ros.grid import grid_to_msg
from ..ros.image import camera_info_to_k, depth_image_to_array
from ..ros.node import BaseNode, spin_node, vehicle_id_or_namespace
from ..ros.odometry import odometry_to_pose
from ..ros.params import Param
from ..ros.pointcloud import array_to_cloud, cloud_to_array, xyz
from ..ros.qos import evidence_qos, sensor_qos, state_qos
from ..ros.time import stamp_to_ns, time_reference_to_ns

NODE_NAME = 'vehicle_node'

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
    Param('extrinsics.lidar', list(LIDAR_EXTRINSIC),
          'lidar pose in base_link [x, y, z, roll, pitch, yaw], metres and radians'),
    Param('extrinsics.radar', [3.4, 0.0, 0.5, 0.0, 0.0, 0.0],
          'radar pose in base_link [x, y, z, roll, pitch, yaw], metres and radians'),
    Param('extrinsics.camera_optical', [1.8, 0.0, 1.4, -math.pi / 2, 0.0, -math.pi / 2],
          'camera optical frame (z forward, x right, y down) in base_link [x, y, z, roll, pitch, yaw]'),
    # grid window
    Param('grid.mode', 'rolling', 'rolling: window moves with the vehicle; fixed: window at fixed_origin'),
    Param('grid.size_x_m', 150.0, 'window extent along its x (map x when not turned), metres', 1.0, 2000.0),
    Param('grid.size_y_m', 40.0, 'window extent along its y (map y when not turned), metres', 1.0, 2000.0),
    Param('grid.resolution_m', 0.2, 'cell size, metres (must match the fusion grid)', 0.01, 10.0),
    Param('grid.forward_offset_m', 55.0, 'rolling: window centre this far ahead of base_link, metres',
          -1000.0, 1000.0),
    Param('grid.fixed_origin_x_m', 0.0, 'fixed: lower-left corner x in map, metres, on the lattice'),
    Param('grid.fixed_origin_y_m', 0.0, 'fixed: lower-left corner y in map, metres, on the lattice'),
    Param('grid.yaw_step_deg', 2.0, 'rolling: the window turns with the heading in steps of this many degrees '
          '(0: axis-aligned in map)', 0.0, 90.0),
    Param('grid.yaw_hysteresis_deg', 0.5, 'rolling: the window turns only when the heading is half a step plus '
          'this from its yaw, degrees', 0.0, 45.0),
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
    *(Param(f'sync.min_interval.{stream}_s', bound, f'{stream} stamps are at least this far apart (a rate bound, '
            f'message_filters\' inter-message lower bound): a set goes out without waiting for the next {stream} '
            f'message when that cannot beat it; 0 = no bound (wait), seconds', 0.0, 10.0)
      for stream, bound in (('lidar', 0.05), ('radar', 0.025), ('camera', 0.033))),
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
    Param('pose_buffer.extrapolate_s', 0.0, 'a sync set goes on once odometry reaches this close to its last '
          'stamp (deskew: its sweep\'s end) and the newest pose\'s twist carries it the rest of the way, instead '
          'of waiting for odometry after it; at most extrapolation_margin_s; 0 = wait, seconds', 0.0, 10.0),
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
    Param('radar.sigma_m', 0.5, 'spread of a radar detection every way: of a standing one when range_sigma_m and '
          'azimuth_sigma_deg are 0, of a moving one when moving_range_sigma_m and moving_azimuth_sigma_deg are 0, '
          'metres', 0.0, 20.0),
    Param('radar.range_sigma_m', 0.0, 'radar 1-sigma range error: a standing detection\'s spread along the line '
          'of sight (0 with azimuth_sigma_deg 0: sigma_m every way), metres', 0.0, 20.0),
    Param('radar.azimuth_sigma_deg', 0.0, 'radar 1-sigma azimuth error: a standing detection\'s spread across the '
          'line of sight is its range times this (0 with range_sigma_m 0: sigma_m every way), degrees', 0.0, 30.0),
    Param('radar.moving_range_sigma_m', MOVING_RANGE_SIGMA_M, 'a moving detection\'s spread along the line of sight (its own '
          'ellipse, out to 1 % of its peak; 0 with moving_azimuth_sigma_deg 0: the disc of sigma_m), metres',
          0.0, 20.0),
    Param('radar.moving_azimuth_sigma_deg', MOVING_AZIMUTH_SIGMA_DEG, 'a moving detection\'s spread across the line of sight is its '
          'range times this (0 with moving_range_sigma_m 0: the disc of sigma_m), degrees', 0.0, 30.0),
    Param('radar.moving_min_speed_mps', MOVING_MIN_SPEED_MPS, 'radar returns at least this fast (radial, ego '
          'motion removed) move the hits near them to the cycle\'s output stamp (the fusion takes it from the '
          'platoon config: dynamic.moved_min_speed_mps), m/s', 0.0, 1000.0),
    Param('radar.moving_radius_m', MOVING_RADIUS_M, 'a lidar, camera or radar hit within this of a moving radar '
          'return moves with it to the output stamp (0: only the radar\'s own returns; the fusion takes it from '
          'the platoon config: dynamic.moved_radius_m), metres', 0.0, 100.0),
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


@dataclass(frozen=True)
class TopicConfig:
    """Absolute topic names of one vehicle's inputs and outputs."""

    lidar: str
    radar: str
    camera: str
    camera_info: str
    odom: str
    time_reference: str
    evidence_grid: str
    radar_targets: str


@dataclass(frozen=True)
class QosConfig:
    """Queue depths of the node's subscriptions and publishers."""

    sensor_depth: int
    state_depth: int
    output_depth: int


#: TopicConfig field -> DESIGN.md's name under /<vehicle_id>
_TOPICS = {'lidar': names.LIDAR, 'radar': names.RADAR, 'camera': names.DEPTH_IMAGE, 'camera_info': names.CAMERA_INFO,
           'odom': names.ODOM, 'time_reference': names.TIME_REFERENCE, 'evidence_grid': names.EVIDENCE_GRID,
           'radar_targets': names.RADAR_TARGETS}
#: PipelineConfig field -> parameter, where they differ
_PIPELINE_NAMES = {'lidar_extrinsic': 'extrinsics.lidar', 'radar_extrinsic': 'extrinsics.radar',
                   'camera_extrinsic': 'extrinsics.camera_optical', 'radar_sigma_m': 'radar.sigma_m',
                   'radar_range_sigma_m': 'radar.range_sigma_m', 'radar_azimuth_sigma_rad': 'radar.azimuth_sigma_deg',
                   'radar_moving_range_sigma_m': 'radar.moving_range_sigma_m',
                   'radar_moving_azimuth_sigma_rad': 'radar.moving_azimuth_sigma_deg',
                   'moving_min_speed_mps': 'radar.moving_min_speed_mps', 'moving_radius_m': 'radar.moving_radius_m',
                   'camera_hfov_rad': 'camera.hfov_deg', 'camera_stride': 'camera.stride', 'enabled': 'sync.streams'}


def config_from_params(values: Mapping[str, Any], namespace: str = '/') -> VehicleConfig:
    """The validated VehicleConfig from declared parameter values (``{name: value}``).

    Raises ConfigError naming the first unusable value.
    """
    v = vehicle_id_or_namespace(values['vehicle_id'], namespace)
    frames = config_from_values(FrameConfig, values, 'frames.', fallback={
        'map': names.MAP_FRAME, **{f: names.vehicle_frame(v, f) for f in ('base_link', 'lidar', 'radar',
                                                                             'camera_optical')}})

    def model(sensor: str, *ignore: str) -> SensorModel:
        return config_from_values(SensorModel, values, f'{sensor}.', ignore=ignore)

    pipeline = config_from_values(
        PipelineConfig, values, names=_PIPELINE_NAMES, window=config_from_values(WindowConfig, values, 'grid.'),
        lidar_model=model('lidar'),
        radar_model=model('radar', 'sigma_m', 'range_sigma_m', 'azimuth_sigma_deg', 'moving_range_sigma_m',
                          'moving_azimuth_sigma_deg', 'moving_min_speed_mps', 'moving_radius_m'),
        camera_model=model('camera', 'hfov_deg', 'stride'),
        ground=config_from_values(GroundConfig, values, 'ground.', names={'ground_z_m': 'z_m'}))
    if values['pose_buffer.extrapolate_s'] > values['pose_buffer.extrapolation_margin_s']:
        raise ConfigError(f"pose_buffer.extrapolate_s {values['pose_buffer.extrapolate_s']!r} is beyond "
                          f"pose_buffer.extrapolation_margin_s {values['pose_buffer.extrapolation_margin_s']!r}: "
                          f"the pose buffer would refuse the lookups")
    timebase = (config_from_values(ClockFitConfig, values, 'timebase.', ignore=('enabled',))
                if values['timebase.enabled'] else None)
    return config_from_values(
        VehicleConfig, values, vehicle_id=v, frames=frames, pipeline=pipeline,
        sync=config_from_values(SyncConfig, values, 'sync.',
                                ignore=('poll_period_s', *(f'min_interval.{s}_s' for s in STREAMS)),
                                min_intervals_ns={s: seconds_to_ns(values[f'sync.min_interval.{s}_s'])
                                                  for s in values['sync.streams'] if s in STREAMS}),
        pose_buffer=config_from_values(PoseBufferConfig, values, 'pose_buffer.',
                                       ignore=('wait_s', 'max_wait_s', 'extrapolate_s')),
        pose_wait=config_from_values(PoseWaitConfig, values, 'pose_buffer.',
                                     ignore=('max_age_s', 'extrapolation_margin_s')),
        timebase=timebase, share=config_from_values(ShareConfig, values, 'share.'))


def topics_from_params(values: Mapping[str, Any], vehicle_id: str) -> TopicConfig:
    """The topics: each ``topics.*`` parameter, or DESIGN.md's name under ``/<vehicle_id>`` when empty."""
    return config_from_values(TopicConfig, values, 'topics.',
                              fallback={f: names.vehicle_topic(vehicle_id, n) for f, n in _TOPICS.items()})


class VehicleNode(BaseNode):
    """See the module docstring. ``kwargs`` go to ``rclpy.node.Node`` (context, namespace,
    parameter_overrides, cli_args, ...), so the in-process bringup can compose it."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        values = self.declare_params(PARAMS)
        self.cfg = cfg = config_from_params(values, self.get_namespace())
        self.topics = t = topics_from_params(values, cfg.vehicle_id)
        qos = self.config(QosConfig, values, 'qos.')
        self.core = VehicleCore(cfg)
        streams = cfg.pipeline.enabled
        period_s = values['diagnostics.period_s']
        self.input_rates = {s: RateMeter.for_reports(period_s) for s in (*streams, 'odom')}
        self.set_rate = RateMeter.for_reports(period_s)
        self.processing_ms = LatencyStats()

        self.grid_pub = self.create_publisher(OccupancyGrid, t.evidence_grid, evidence_qos(qos.output_depth))
        self.targets_pub = (self.create_publisher(PointCloud2, t.radar_targets, evidence_qos(qos.output_depth))
                            if 'radar' in streams else None)
        sq, st = sensor_qos(qos.sensor_depth), state_qos(qos.state_depth)
        self.create_subscription(Odometry, t.odom, self.guard('odom', self._on_odom), st, raw=True)
        if cfg.timebase is not None:
            self.create_subscription(TimeReference, t.time_reference,
                                     self.guard('time_reference', self._on_time_reference), st)
        if 'lidar' in streams:
            # raw=True: the callback gets the CDR bytes and decodes only what it reads (ros/cdr_decode.py)
            self.create_subscription(PointCloud2, t.lidar, self.guard('lidar', self._on_lidar), sq, raw=True)
        if 'radar' in streams:
            self.create_subscription(PointCloud2, t.radar, self.guard('radar', self._on_radar), sq, raw=True)
        if 'camera' in streams:
            self.create_subscription(Image, t.camera, self.guard('camera', self._on_depth), sq, raw=True)
            self.create_subscription(CameraInfo, t.camera_info, self.guard('camera_info', self._on_camera_info), st)
        self.poll_timer = self.create_guarded_timer(values['sync.poll_period_s'], 'poll', self._on_poll)
        self.start_diagnostics(period_s, f'{NODE_NAME}: {cfg.vehicle_id}', hardware_id=cfg.vehicle_id)
        window = cfg.pipeline.window
        self.get_logger().info(
            f'vehicle {cfg.vehicle_id}: streams {list(streams)} (reference {cfg.sync.reference}), '
            f'grid {window.mode.value} {window.size_x_m}x{window.size_y_m} m at {window.resolution_m} m '
            f'-> {t.evidence_grid} at {cfg.share.resolution_m} m every {cfg.share.period_cycles} cycle(s), '
            f'crop {cfg.share.crop.value}')

    # ----------------------------------------------------------- callbacks --

    def _tick(self, stream: str) -> int:
        now = self.now_ns()
        self.input_rates[stream].tick(now)
        return now

    def _on_odom(self, raw: Odometry | bytes) -> None:
        now = self._tick('odom')
        msg = as_odometry(raw)           # bytes live, a message object from the lock-step runner
        self.core.check_odometry_frames(msg.header.frame_id, msg.child_frame_id)
        self._publish(self.core.odometry(odometry_to_pose(msg), now))

    def _on_time_reference(self, msg: TimeReference) -> None:
        self.core.time_reference(*time_reference_to_ns(msg))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.core.check_frame('camera_info', msg.header.frame_id)
        self.core.camera_info(camera_info_to_k(msg), msg.height, msg.width)

    def _on_lidar(self, raw: PointCloud2 | bytes) -> None:
        now = self._tick('lidar')
        msg = as_point_cloud2(raw)       # bytes live, a message object from the lock-step runner
        stamp = stamp_to_ns(msg.header.stamp)
        self.core.check_sensor('lidar', msg.header.frame_id, stamp, now)
        points, _ = cloud_to_array(msg)
        t_offset_s = points['t'] if 't' in (points.dtype.names or ()) else None
        self._publish(self.core.sensor('lidar', LidarScan(stamp, xyz(points), t_offset_s), now))

    def _on_radar(self, raw: PointCloud2 | bytes) -> None:
        now = self._tick('radar')
        msg = as_point_cloud2(raw)
        stamp = stamp_to_ns(msg.header.stamp)
        self.core.check_sensor('radar', msg.header.frame_id, stamp, now)
        points, _ = cloud_to_array(msg, required=('x', 'y', 'z', 'velocity', 'rcs'))
        self._publish(self.core.sensor('radar', RadarScan(stamp, xyz(points), points['velocity'], points['rcs']),
                                       now))

    def _on_depth(self, raw: Image | bytes) -> None:
        now = self._tick('camera')
        msg = as_image(raw)
        stamp = stamp_to_ns(msg.header.stamp)
        self.core.check_sensor('camera', msg.header.frame_id, stamp, now)
        self._publish(self.core.depth(stamp, depth_image_to_array(msg), now))

    def _on_poll(self) -> None:
        self._publish(self.core.poll(self.now_ns()))

    def _publish(self, step: Step) -> None:
        """Count what the core dropped, publish the evidence it produced."""
        if step.sets:               # most messages (odometry, radar) complete no set: no clock read then
            now = self.now_ns()
            for _ in range(step.sets):
                self.set_rate.tick(now)
        self.drop_all(step.drops)
        for evidence in step.evidence:
            t0 = time.perf_counter()
            if evidence.grid is not None:
                self.grid_pub.publish(grid_to_msg(evidence.grid.spec, evidence.grid.cells, evidence.stamp_ns,
                                                  self.cfg.frames.map))
            if evidence.radar_targets is not None and self.targets_pub is not None:
                self.targets_pub.publish(array_to_cloud(evidence.radar_targets, evidence.stamp_ns,
                                                        self.cfg.frames.map))
            self.processing_ms.add(evidence.elapsed_ms + 1e3 * (time.perf_counter() - t0))

    # --------------------------------------------------------- diagnostics --

    def diagnostics_values(self) -> dict[str, object]:
        """rate_hz.<stream> : input messages per second (node clock); set_rate_hz : sync sets per second;
        the core's counters (VehicleCore.stats: cycles, shares, sets_*, sync.*, timebase.*,
        pose_buffer_span_s); processing_ms.p50 / .p95 / .count : pipeline + publish time per cycle
        (wall clock). The scaffold adds drops.*.
        """
        now = self.now_ns()
        values: dict[str, object] = {f'rate_hz.{name}': meter.rate_hz(now) for name, meter in self.input_rates.items()}
        values['set_rate_hz'] = self.set_rate.rate_hz(now)
        values.update(self.core.stats())
        values.update(self.processing_ms.as_values('processing_ms.'))
        return values

    def diagnostics_summary(self, new_drops: int) -> tuple[Level, str]:
        """STALE before the first cycle, WARN after new drops, else OK."""
        if self.core.cycles == 0:
            return Level.STALE, 'no evidence cycle yet'
        if new_drops:
            return super().diagnostics_summary(new_drops)
        return Level.OK, f'{self.core.cycles} cycles'


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(VehicleNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
