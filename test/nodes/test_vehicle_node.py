"""The vehicle node in a real rclpy graph: sensors in, evidence grid / radar targets / diagnostics out."""
from __future__ import annotations

import array
import math
from pathlib import Path

import numpy as np
import params_file
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from numpy.testing import assert_allclose, assert_array_equal
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, TimeReference

from cooperative_fusion.core import se3
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.core.vehicle.pipeline import GridMode
from cooperative_fusion.app.lockstep import LockstepRunner, published_message
from cooperative_fusion.nodes.vehicle_node import PARAMS, VehicleNode, config_from_params, topics_from_params
from cooperative_fusion.ros.grid import grid_from_msg
from cooperative_fusion.ros.image import array_to_depth_image, k_to_camera_info
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.pointcloud import array_to_cloud, cloud_to_array, from_columns
from cooperative_fusion.ros.qos import diagnostics_qos, evidence_qos, sensor_qos, state_qos
from cooperative_fusion.ros.time import make_time_reference

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'vehicle.yaml'
X0, Y0, YAW = 100.0, 2.0, 0.1
T0 = 1_000_000_000_000            # vehicle clock, ns
FACE_AHEAD_M, FACE_HALF_M = 20.0, 1.0
K = np.array([[80.0, 0.0, 79.5], [0.0, 80.0, 59.5], [0.0, 0.0, 1.0]])
HEADING = np.array([math.cos(YAW), math.sin(YAW)])
ACROSS = np.array([-math.sin(YAW), math.cos(YAW)])
FACE_C = np.array([X0, Y0]) + FACE_AHEAD_M * HEADING        # the box face, fixed in map


def base2map_at(t_ns: int, speed: float) -> np.ndarray:
    d = speed * (t_ns - T0) * 1e-9
    return se3.from_xy_yaw(X0 + d * HEADING[0], Y0 + d * HEADING[1], YAW)


def odom(t_ns: int, speed: float, vid: str) -> Odometry:
    b2m = base2map_at(t_ns, speed)
    pos, q = se3.to_translation_quat(b2m)
    cov = np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-3])
    return pose_to_odometry(PoseSample(t_ns, pos, q, cov, np.array([speed, 0.0, 0.0])), 'map', f'{vid}/base_link')


def lidar_points(sensor2map: np.ndarray) -> np.ndarray:
    """Structured cloud in the sensor frame: a fan of beams, ground rings 3..17 m, the face where a beam meets it."""
    origin = sensor2map[:2, 3]
    az = se3.yaw_of(sensor2map) + np.radians(np.arange(-15.0, 15.0001, 0.1))
    dirs = np.stack([np.cos(az), np.sin(az)], axis=1)
    rng = ((FACE_C - origin) @ HEADING) / (dirs @ HEADING)
    hit = origin + rng[:, None] * dirs
    hit = hit[np.abs((hit - FACE_C) @ ACROSS) <= FACE_HALF_M]
    face = [np.column_stack([hit, np.full(len(hit), z)]) for z in (0.6, 1.0, 1.4, 1.8)]
    ground = [np.column_stack([origin + r * dirs, np.zeros(len(dirs))]) for r in np.arange(3.0, 17.5, 1.0)]
    p = se3.apply(se3.invert(sensor2map), np.vstack(face + ground))
    return from_columns({'x': p[:, 0], 'y': p[:, 1], 'z': p[:, 2], 'intensity': np.ones(len(p))})


def depth_image(cam2map: np.ndarray, width: int = 160, height: int = 120) -> np.ndarray:
    """Depth (H, W) of the face (0..2 m high) and the road z = 0, NaN elsewhere."""
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(u.shape)], axis=-1) @ cam2map[:3, :3].T
    o = cam2map[:3, 3]
    n = np.array([*HEADING, 0.0])
    with np.errstate(divide='ignore', invalid='ignore'):
        t_face = ((np.array([*FACE_C, 0.0]) - o) @ n) / (rays @ n)
        p = o + t_face[..., None] * rays
        on_face = (t_face > 0) & (np.abs((p[..., :2] - FACE_C) @ ACROSS) <= FACE_HALF_M) & (p[..., 2] >= 0) \
            & (p[..., 2] <= 2.0)
        t_ground = -o[2] / rays[..., 2]
    return np.where(on_face, t_face, np.where(t_ground > 0, t_ground, np.nan)).astype(np.float32)


class Sensors(Node):
    """Publishes one vehicle's inputs and records its outputs."""

    def __init__(self, ctx, vid: str) -> None:
        super().__init__(f'sensors_{vid}', context=ctx)
        self.vid = vid
        self.pub = {
            'lidar': self.create_publisher(PointCloud2, f'/{vid}/lidar/points', sensor_qos()),
            'radar': self.create_publisher(PointCloud2, f'/{vid}/radar/points', sensor_qos()),
            'camera': self.create_publisher(Image, f'/{vid}/camera/depth/image', sensor_qos()),
            'info': self.create_publisher(CameraInfo, f'/{vid}/camera/depth/camera_info', state_qos()),
            'odom': self.create_publisher(Odometry, f'/{vid}/odom', state_qos()),
            'tref': self.create_publisher(TimeReference, f'/{vid}/time_reference', state_qos()),
        }
        self.grids: list[OccupancyGrid] = []
        self.targets: list[PointCloud2] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.create_subscription(OccupancyGrid, f'/{vid}/evidence_grid', self.grids.append, evidence_qos())
        self.create_subscription(PointCloud2, f'/{vid}/radar/targets', self.targets.append, evidence_qos())
        self.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, diagnostics_qos())

    def connected(self) -> bool:
        # the time reference is subscribed only with the common timebase on
        return all(p.get_subscription_count() > 0 for k, p in self.pub.items() if k != 'tref')

    def latest_values(self) -> dict[str, str]:
        for arr in reversed(self.diagnostics):
            for st in arr.status:
                if st.hardware_id == self.vid:
                    return {kv.key: kv.value for kv in st.values}
        return {}


def make_vehicle(ctx, vid: str, **overrides) -> VehicleNode:
    # A long stream timeout keeps wall-clock pauses of a busy test machine from making streams silent.
    # Stamps pass through unless a test turns the common timebase on (test_output_stamps_in_common_time).
    params = [Parameter('vehicle_id', value=vid), Parameter('diagnostics.period_s', value=0.2),
              Parameter('sync.poll_period_s', value=0.02), Parameter('sync.stream_timeout_s', value=30.0),
              Parameter('timebase.enabled', value=False), Parameter('output_stamp_offset_s', value=0.0)]
    params += [Parameter(k, value=v) for k, v in overrides.items()]
    return VehicleNode(context=ctx, parameter_overrides=params)


@pytest.fixture
def graph(ros_context, executor, spin):
    def build(vid: str, **overrides):
        vehicle = make_vehicle(ros_context, vid, **overrides)
        sensors = Sensors(ros_context, vid)
        executor.add_node(vehicle)
        executor.add_node(sensors)
        assert spin(executor, sensors.connected), 'publishers never matched the vehicle node'
        return vehicle, sensors
    return build


def publish_cycle(sensors: Sensors, vehicle: VehicleNode, t_ns: int, speed: float,
                  radar_map: np.ndarray, radar_v_map: np.ndarray) -> None:
    """Lidar at t, radar 10 ms before, camera 10 ms after, each seen from the vehicle's pose at its own stamp."""
    lidar2map = base2map_at(t_ns, speed) @ vehicle.core.pipeline.lidar2base
    sensors.pub['lidar'].publish(array_to_cloud(lidar_points(lidar2map), t_ns, f'{sensors.vid}/lidar'))
    t_r = t_ns - 10_000_000
    radar2map = base2map_at(t_r, speed) @ vehicle.core.pipeline.radar2base
    u = radar_map - radar2map[:3, 3]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v_ego = np.array([speed * HEADING[0], speed * HEADING[1], 0.0])
    measured = np.sum((radar_v_map - v_ego) * u, axis=1)        # relative, + away
    p = se3.apply(se3.invert(radar2map), radar_map)
    radar = from_columns({'x': p[:, 0], 'y': p[:, 1], 'z': p[:, 2], 'velocity': measured,
                          'rcs': np.full(len(p), 10.0)})
    sensors.pub['radar'].publish(array_to_cloud(radar, t_r, f'{sensors.vid}/radar'))
    t_c = t_ns + 10_000_000
    cam2map = base2map_at(t_c, speed) @ vehicle.core.pipeline.camera2base
    sensors.pub['camera'].publish(array_to_depth_image(depth_image(cam2map), t_c, f'{sensors.vid}/camera_optical'))


def publish_odom(sensors: Sensors, t_from_ns: int, t_to_ns: int, speed: float, spin, executor) -> None:
    for t in range(t_from_ns, t_to_ns + 1, 50_000_000):
        sensors.pub['odom'].publish(odom(t, speed, sensors.vid))
        executor.spin_once(timeout_sec=0.0)


def cells_along(spec, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    xy = np.array([X0, Y0]) + np.arange(lo, hi, 0.5)[:, None] * HEADING
    return spec.world_to_cell(xy)


def face_cells(spec) -> tuple[np.ndarray, np.ndarray]:
    xy = FACE_C + np.linspace(-0.5, 0.5, 7)[:, None] * ACROSS + 0.01 * HEADING
    return spec.world_to_cell(xy)


def test_box_ahead_and_radar_targets_in_map(graph, executor, spin):
    speed = 10.0
    vehicle, sensors = graph('v1')
    publish_odom(sensors, T0 - 1_000_000_000, T0 + 200_000_000, speed, spin, executor)
    sensors.pub['info'].publish(k_to_camera_info(K, 160, 120, T0, 'v1/camera_optical'))
    assert spin(executor, lambda: len(vehicle.core.poses) == 25 and vehicle.core.K is not None)
    # A parked car 30 m ahead and 3 m left, and a car ahead driving at 25 m/s along the road.
    radar_map = np.array([[X0 + 30 * HEADING[0] - 3 * HEADING[1], Y0 + 30 * HEADING[1] + 3 * HEADING[0], 0.8],
                          [*(FACE_C + 0.0 * ACROSS), 1.0]])
    radar_v = np.array([[0.0, 0.0, 0.0], [25 * HEADING[0], 25 * HEADING[1], 0.0]])
    publish_cycle(sensors, vehicle, T0, speed, radar_map, radar_v)
    # approximate-time sync releases a set once the next messages prove it the best match
    publish_cycle(sensors, vehicle, T0 + 100_000_000, speed, radar_map, radar_v)
    assert spin(executor, lambda: sensors.grids and sensors.targets), \
        f'no evidence grid / radar targets: drops {vehicle.drops.counts}, sync {vehicle.core.sync.stats}'

    grid = sensors.grids[0]
    assert grid.header.frame_id == 'map'
    assert grid.header.stamp.sec * 10**9 + grid.header.stamp.nanosec == T0     # vehicle clock passes through
    spec, cells = grid_from_msg(grid)
    ix, iy = face_cells(spec)
    assert (cells[iy, ix] >= 85).all(), cells[iy, ix]
    ix, iy = cells_along(spec, 8.0, 16.0)
    assert (cells[iy, ix] < 35).all(), cells[iy, ix]       # lidar and camera free
    ix, iy = cells_along(spec, 23.0, 28.0)
    assert (cells[iy, ix] == -1).all()                      # hidden behind the box

    targets, _ = cloud_to_array(sensors.targets[0])
    assert sensors.targets[0].header.frame_id == 'map'
    assert_allclose(np.column_stack([targets['x'], targets['y'], targets['z']]), radar_map, atol=2e-3)
    los = radar_map - (base2map_at(T0 - 10_000_000, speed) @ vehicle.core.pipeline.radar2base)[:3, 3]
    los /= np.linalg.norm(los, axis=1, keepdims=True)
    # the parked car reads 0 (not -10 m/s); the leading car its own speed along the line of sight
    assert_allclose(targets['velocity'], [0.0, radar_v[1] @ los[1]], atol=1e-3)


def test_output_stamps_in_common_time(graph, executor, spin):
    """No time reference yet: the cycle is dropped (never published in the vehicle clock). Then the
    clock fit maps the stamp: vehicle clock 200 ms behind common time, plus the output offset."""
    offset_ns = 200_000_000
    vehicle, sensors = graph('v3', **{'timebase.enabled': True, 'output_stamp_offset_s': 0.05})
    publish_odom(sensors, T0 - 1_000_000_000, T0 + 300_000_000, 0.0, spin, executor)
    sensors.pub['info'].publish(k_to_camera_info(K, 160, 120, T0, 'v3/camera_optical'))
    assert spin(executor, lambda: vehicle.core.K is not None and len(vehicle.core.poses) > 20)
    none = np.zeros((0, 3))
    publish_cycle(sensors, vehicle, T0, 0.0, none, none)
    publish_cycle(sensors, vehicle, T0 + 100_000_000, 0.0, none, none)
    assert spin(executor, lambda: vehicle.drops.counts.get('set.no_timebase', 0) >= 1), vehicle.drops.counts
    assert not sensors.grids
    assert spin(executor, lambda: sensors.pub['tref'].get_subscription_count() > 0)
    for k in range(3):
        t = T0 - 2_000_000_000 + k * 1_000_000_000
        sensors.pub['tref'].publish(make_time_reference(t, t + offset_ns))
    assert spin(executor, lambda: vehicle.core.clock_fit.n_samples == 3)
    publish_cycle(sensors, vehicle, T0 + 200_000_000, 0.0, none, none)
    assert spin(executor, lambda: sensors.grids), vehicle.drops.counts
    stamp = sensors.grids[0].header.stamp.sec * 10**9 + sensors.grids[0].header.stamp.nanosec
    assert abs(stamp - (T0 + 100_000_000 + 50_000_000 + offset_ns)) < 1000


def test_malformed_cloud_is_dropped_counted_and_harmless(graph, executor, spin):
    vehicle, sensors = graph('v2')                  # parked: equal inputs give equal grids
    publish_odom(sensors, T0 - 500_000_000, T0 + 1_500_000_000, 0.0, spin, executor)
    sensors.pub['info'].publish(k_to_camera_info(K, 160, 120, T0, 'v2/camera_optical'))
    assert spin(executor, lambda: len(vehicle.core.poses) == 41 and vehicle.core.K is not None)
    radar_map = np.array([[X0 + 30 * HEADING[0], Y0 + 30 * HEADING[1], 0.8]])
    for t in (T0, T0 + 100_000_000):
        publish_cycle(sensors, vehicle, t, 0.0, radar_map, np.zeros((1, 3)))
    assert spin(executor, lambda: len(sensors.grids) == 1)

    bad = array_to_cloud(lidar_points(base2map_at(T0, 0.0) @ vehicle.core.pipeline.lidar2base),
                         T0 + 500_000_000, 'v2/lidar')
    bad.data = array.array('B', bytes(len(bad.data) - 7))        # wrong data length
    sensors.pub['lidar'].publish(bad)
    assert spin(executor, lambda: vehicle.drops.counts.get('lidar.malformed', 0) == 1)

    for t in (T0 + 1_000_000_000, T0 + 1_100_000_000):
        publish_cycle(sensors, vehicle, t, 0.0, radar_map, np.zeros((1, 3)))
    assert spin(executor, lambda: len(sensors.grids) == 3)
    stamps = [g.header.stamp.sec * 10**9 + g.header.stamp.nanosec for g in sensors.grids]
    assert stamps == [T0, T0 + 100_000_000, T0 + 1_000_000_000]
    first, second = grid_from_msg(sensors.grids[0]), grid_from_msg(sensors.grids[2])
    assert first[0] == second[0]
    assert_array_equal(first[1], second[1])
    assert (first[1] >= 0).sum() > 1000

    def reported() -> bool:
        values = sensors.latest_values()     # a report after the third cycle (diagnostics run on a timer)
        return values.get('drops.lidar.malformed') == '1' and values.get('cycles') == '3'
    assert spin(executor, reported), sensors.latest_values()
    values = sensors.latest_values()
    assert (values['drops.total'], values['drops.malformed'], values['drops.lidar.malformed']) == ('1', '1', '1')
    assert values['cycles'] == '3'
    assert values['sync.sets_partial'] == '0'
    assert float(values['processing_ms.p50']) > 0.0
    assert float(values['pose_buffer_span_s']) == pytest.approx(2.0)
    assert vehicle.context.ok()


def _sweep_ahead_of_its_odometry(ros_context, vid: str, wait_s: float):
    """A lidar-only vehicle fed odometry up to T0 - 200 ms, then the sweep stamped T0 (at T0 - 190 ms):
    the sweep is ahead of every pose it has. Returns (vehicle, runner, the grids it publishes)."""
    vehicle = make_vehicle(ros_context, vid, **{'sync.streams': ['lidar'], 'pose_buffer.wait_s': wait_s})
    out: list[OccupancyGrid] = []
    runner = LockstepRunner([vehicle], lambda topic, msg, t: out.append(msg) if topic.endswith('grid') else None,
                            publish_to_dds=False, start_ns=T0 - 1_000_000_000)
    for t in range(T0 - 1_000_000_000, T0 - 199_999_999, 20_000_000):
        runner.feed(f'/{vid}/odom', odom(t, 0.0, vid), t)
    b2m = base2map_at(T0, 0.0)
    runner.feed(f'/{vid}/lidar/points', array_to_cloud(lidar_points(b2m @ vehicle.core.pipeline.lidar2base), T0,
                                                        f'{vid}/lidar'), T0 - 190_000_000)
    return vehicle, runner, out


@pytest.mark.parametrize('wait_s', [0.3, 0.0])
def test_set_waits_for_odometry_that_arrives_after_the_sensor(ros_context, wait_s):
    """Odometry and sensors come on different topics: a lidar sweep that arrives before the odometry
    covering its stamp waits for it (pose_buffer.wait_s) instead of being dropped; with no wait the
    same input loses the cycle (set.no_pose)."""
    vehicle, runner, out = _sweep_ahead_of_its_odometry(ros_context, 'v6', wait_s)
    try:
        for t in range(T0 - 180_000_000, T0 + 40_000_001, 20_000_000):         # the rest comes late
            runner.feed('/v6/odom', odom(t, 0.0, 'v6'), T0 - 150_000_000)
        runner.advance_to(T0)
        if wait_s > 0:
            assert len(out) == 1 and vehicle.core.sets_waited == 1, vehicle.drops.counts
            assert not any(k.endswith('no_pose') for k in vehicle.drops.counts)
        else:
            assert out == [] and vehicle.drops.counts.get('set.no_pose') == 1, vehicle.drops.counts
    finally:
        vehicle.destroy_node()


def test_set_waits_for_queued_odometry_while_the_node_clock_runs_ahead(ros_context):
    """The flaky live run, reproduced deterministically: the node falls behind its input queues (its
    odometry is handled a second late) while /clock keeps coming, so the node clock runs 0.9 s (three
    times pose_buffer.wait_s) past the waiting sweep with no input at all. The wait is timed on the
    sensor stamps, so the sweep still waits and gets its real poses when the queued odometry is
    handled; timed on the node clock it was lost (set.no_pose)."""
    vehicle, runner, out = _sweep_ahead_of_its_odometry(ros_context, 'v7', 0.3)
    try:
        runner.advance_to(T0 + 700_000_000)      # 0.9 s of node clock, poll timer firing, no odometry handled
        assert out == [] and len(vehicle.core.waiting) == 1, vehicle.drops.counts
        for t in range(T0 - 180_000_000, T0 + 40_000_001, 20_000_000):         # the queued odometry, at last
            runner.feed('/v7/odom', odom(t, 0.0, 'v7'), T0 + 700_000_000)
        assert len(out) == 1 and vehicle.core.sets_waited == 1, vehicle.drops.counts
        assert not any(k.endswith('no_pose') for k in vehicle.drops.counts), vehicle.drops.counts
        values = vehicle.diagnostics_values()
        assert (values['sets_released_odometry_silent'], values['sets_released_max_wait']) == (0, 0)
        # odometry that never comes: after pose_buffer.max_wait_s on the node clock the set goes on (counted)
        b2m = base2map_at(T0, 0.0)
        runner.feed('/v7/lidar/points', array_to_cloud(lidar_points(b2m @ vehicle.core.pipeline.lidar2base),
                                                       T0 + 500_000_000, 'v7/lidar'), T0 + 800_000_000)
        runner.advance_to(T0 + 2_900_000_000)
        assert vehicle.diagnostics_values()['sets_released_max_wait'] == 1
        assert vehicle.drops.counts.get('set.no_pose') == 1, vehicle.drops.counts
    finally:
        vehicle.destroy_node()


def test_lockstep_run_is_deterministic_on_sim_time(ros_context):
    """Composed under the lock-step runner (``run --bag``): no DDS spinning, the same grid, odom of
    another vehicle's base_link dropped."""
    vehicle = make_vehicle(ros_context, 'v5', **{'sync.stream_timeout_s': 0.5})
    try:
        out: list[tuple[str, object, int]] = []
        runner = LockstepRunner([vehicle], lambda topic, msg, t: out.append((topic, msg, t)), publish_to_dds=False,
                                start_ns=T0 - 450_000_000)
        runner.feed('/v5/camera/depth/camera_info', k_to_camera_info(K, 160, 120, T0, 'v5/camera_optical'),
                    T0 - 450_000_000)
        for t in range(T0 - 450_000_000, T0 + 300_000_001, 50_000_000):
            runner.feed('/v5/odom', odom(t, 0.0, 'v5'), T0 - 450_000_000)
        runner.feed('/v5/odom', odom(T0 + 350_000_000, 0.0, 'v9'), T0 - 450_000_000)
        b2m = base2map_at(T0, 0.0)
        for t in (T0, T0 + 100_000_000):       # the camera frame comes in 40 ms after its stamp, the lidar 100 ms
            runner.feed('/v5/camera/depth/image', array_to_depth_image(
                depth_image(b2m @ vehicle.core.pipeline.camera2base), t, 'v5/camera_optical'), t + 40_000_000)
            runner.feed('/v5/lidar/points', array_to_cloud(lidar_points(b2m @ vehicle.core.pipeline.lidar2base), t,
                                                           'v5/lidar'), t + 100_000_000)
        runner.advance_to(T0 + 400_000_000)     # the radar fell silent at T0 + 0.05 s: sets go without it
        grids = [msg for topic, msg, _ in out if topic == '/v5/evidence_grid']
        # equal lidar and camera stamps: each set is provably the best match at once
        assert [g.header.stamp.sec * 10**9 + g.header.stamp.nanosec for g in grids] == [T0, T0 + 100_000_000]
        spec, cells = grid_from_msg(grids[0])
        assert_array_equal(grid_from_msg(grids[1])[1], cells)          # parked: the same evidence
        ix, iy = face_cells(spec)
        assert (cells[iy, ix] >= 85).all()
        ix, iy = cells_along(spec, 8.0, 16.0)
        assert (cells[iy, ix] < 35).all()
        assert vehicle.drops.counts == {'odom.frame': 1}
        assert len(vehicle.core.poses) == 16
        diag = [msg for topic, msg, _ in out if topic == '/diagnostics']
        assert [t for topic, _, t in out if topic == '/diagnostics'] == \
            [T0 + k * 200_000_000 + 150_000_000 for k in (-2, -1, 0, 1)]       # every 0.2 s of sim time
        values = {kv.key: kv.value for kv in diag[-1].status[0].values}
        assert values['sync.gaps.radar'] == '1' and values['sync.missing.radar'] == '2'
        assert values['cycles'] == '2' and values['drops.total'] == '1'
        assert values['drops.frame'] == values['drops.odom.frame'] == '1'
    finally:
        vehicle.destroy_node()


def test_lockstep_coarse_shared_evidence_is_fused_by_a_finer_fusion_node(ros_context):
    """share.resolution_m 0.4, period 2, crop known: one smaller grid per two cycles on the 0.4 m lattice,
    which the fusion node at 0.2 m accepts and fuses (face occupied, the road before it free)."""
    from cooperative_fusion.nodes.fusion_node import FusionNode

    vehicle = make_vehicle(ros_context, 'v5', **{'sync.stream_timeout_s': 0.5, 'share.resolution_m': 0.4,
                                                 'share.period_cycles': 2, 'share.crop': 'known'})
    fusion = FusionNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in {
        'vehicles': ['v5'], 'vehicle_weights': [1.0], 'footprints.enabled': False, 'grid.mode': 'fixed',
        'grid.size_x_m': 40.0, 'grid.size_y_m': 24.0, 'grid.fixed_origin_x_m': 100.0,
        'grid.fixed_origin_y_m': -8.0, 'publish_rate_hz': 10.0, 'fusion.max_age_s': 0.5}.items()])
    try:
        out: list[tuple[str, object, int]] = []
        runner = LockstepRunner([vehicle, fusion], lambda topic, msg, t: out.append((topic, published_message(msg), t)),
                                publish_to_dds=False, start_ns=T0 - 450_000_000)
        runner.feed('/v5/camera/depth/camera_info', k_to_camera_info(K, 160, 120, T0, 'v5/camera_optical'),
                    T0 - 450_000_000)
        for t in range(T0 - 450_000_000, T0 + 300_000_001, 50_000_000):
            runner.feed('/v5/odom', odom(t, 0.0, 'v5'), T0 - 450_000_000)
        b2m = base2map_at(T0, 0.0)
        for t in (T0, T0 + 100_000_000):
            runner.feed('/v5/camera/depth/image', array_to_depth_image(
                depth_image(b2m @ vehicle.core.pipeline.camera2base), t, 'v5/camera_optical'), t + 40_000_000)
            runner.feed('/v5/lidar/points', array_to_cloud(lidar_points(b2m @ vehicle.core.pipeline.lidar2base), t,
                                                           'v5/lidar'), t + 100_000_000)
        runner.advance_to(T0 + 400_000_000)
        grids = [msg for topic, msg, _ in out if topic == '/v5/evidence_grid']
        assert [g.header.stamp.sec * 10**9 + g.header.stamp.nanosec for g in grids] == [T0 + 100_000_000]
        spec, cells = grid_from_msg(grids[0])
        assert spec.resolution == pytest.approx(0.4)
        for origin in (spec.origin_x, spec.origin_y):
            assert origin / 0.4 == pytest.approx(round(origin / 0.4), abs=1e-4)
        assert cells.size < 100.0 * 40.0 / 0.4**2 / 2              # cropped to the known cells
        assert (cells >= 0).any(axis=0).all() and (cells >= 0).any(axis=1).all()   # no all-unknown edge
        ix, iy = face_cells(spec)
        assert (cells[iy, ix] >= 95).all(), cells[iy, ix]          # two cycles of lidar + camera hits summed
        assert vehicle.core.shares == 1 and vehicle.core.cycles == 2
        fused = [msg for topic, msg, _ in out if topic == '/cooperative/grid']
        fspec, fcells = grid_from_msg(fused[-1])
        assert fspec.resolution == pytest.approx(0.2)
        ix, iy = face_cells(fspec)
        assert (fcells[iy, ix] >= 65).all(), fcells[iy, ix]
        ix, iy = cells_along(fspec, 8.0, 16.0)
        assert (fcells[iy, ix].astype(int) < 40).all() and (fcells[iy, ix] >= 0).all(), fcells[iy, ix]
        assert not fusion.drops.counts, fusion.drops.counts
    finally:
        vehicle.destroy_node()
        fusion.destroy_node()


# ----------------------------------------------------------- parameters ---

def load_yaml_params() -> dict[str, object]:
    return params_file.load_yaml_params(CONFIG)


def yaml_lines() -> dict[str, str]:
    return params_file.yaml_lines(CONFIG)


def test_yaml_documents_every_parameter_with_its_default():
    flat = load_yaml_params()
    assert set(flat) == {p.name for p in PARAMS}
    lines = yaml_lines()
    assert set(lines) == set(flat)
    for p in PARAMS:
        if isinstance(p.default, float) or (isinstance(p.default, list) and isinstance(p.default[0], float)):
            assert flat[p.name] == pytest.approx(p.default), p.name
        else:
            assert flat[p.name] == p.default, p.name
        assert ' # ' in lines[p.name], f'{p.name} has no comment: {lines[p.name]!r}'
    # The file is a valid set of overrides for the node's config.
    cfg = config_from_params({**flat, 'vehicle_id': 'v7'})
    assert topics_from_params(flat, 'v7').lidar == '/v7/lidar/points' and cfg.frames.camera_optical == 'v7/camera_optical'
    assert cfg.pipeline.window.mode is GridMode.ROLLING


def test_config_from_namespace_and_bad_values():
    defaults = {p.name: p.default for p in PARAMS}
    cfg = config_from_params(defaults, namespace='/v3')
    assert cfg.vehicle_id == 'v3'
    topics = topics_from_params(defaults, 'v3')
    assert (topics.evidence_grid, topics.radar_targets) == ('/v3/evidence_grid', '/v3/radar/targets')
    assert topics_from_params({**defaults, 'topics.odom': '/v3/onboard/odom'}, 'v3').odom == '/v3/onboard/odom'
    assert (cfg.frames.map, cfg.frames.base_link) == ('map', 'v3/base_link')
    assert (cfg.sync.slop_ns, cfg.sync.stream_timeout_ns, cfg.pose_wait.wait_ns) == (50_000_000, 500_000_000, 300_000_000)
    assert cfg.timebase.outlier_threshold_ns == 5_000_000 and cfg.output_stamp_offset_ns == 50_000_000
    assert cfg.pipeline.camera_hfov_rad == pytest.approx(math.pi / 2) and cfg.pipeline.radar_sigma_m == 0.5
    assert cfg.pipeline.lidar_model.azimuth_resolution_rad == pytest.approx(math.radians(0.6))
    assert cfg.pipeline.ground.ground_z_m == 0.0 and cfg.pipeline.enabled == ('lidar', 'radar', 'camera')
    assert config_from_params({**defaults, 'timebase.enabled': False}, '/v3').timebase is None
    with pytest.raises(ConfigError, match='vehicle_id is empty and the node has no namespace'):
        config_from_params(defaults, namespace='/')
    with pytest.raises(ConfigError, match=r"reference stream 'camera' is not one of the streams \['lidar', 'radar'\]"):
        config_from_params({**defaults, 'sync.streams': ['lidar', 'radar'], 'sync.reference': 'camera'}, '/v1')
    with pytest.raises(ConfigError, match=r"parameter 'extrinsics.radar': expected 6 numbers"):
        config_from_params({**defaults, 'extrinsics.radar': [1.0, 2.0]}, '/v1')
    with pytest.raises(ConfigError, match="parameter 'ground.mode': expected one of height_band, ransac, got 'flat'"):
        config_from_params({**defaults, 'ground.mode': 'flat'}, '/v1')
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) lidar.p_hits: SensorModel has no such field"):
        config_from_params({**defaults, 'lidar.p_hits': 0.9}, '/v1')
    with pytest.raises(ConfigError, match="parameter 'share.period_cycles': expected int, got float 2.5"):
        config_from_params({**defaults, 'share.period_cycles': 2.5}, '/v1')


def test_sync_rate_bounds_and_pose_extrapolation_from_parameters():
    defaults = {p.name: p.default for p in PARAMS}
    cfg = config_from_params(defaults, '/v1')
    assert dict(cfg.sync.min_intervals_ns) == {'lidar': 50_000_000, 'radar': 25_000_000, 'camera': 33_000_000}
    assert cfg.pose_wait.extrapolate_ns == 0
    two = config_from_params({**defaults, 'sync.streams': ['lidar', 'radar'], 'pose_buffer.extrapolate_s': 0.02}, '/v1')
    assert dict(two.sync.min_intervals_ns) == {'lidar': 50_000_000, 'radar': 25_000_000}      # disabled camera: none
    assert two.pose_wait.extrapolate_ns == 20_000_000
    with pytest.raises(ConfigError, match='pose_buffer.extrapolate_s 0.2 is beyond pose_buffer.extrapolation_margin_s'):
        config_from_params({**defaults, 'pose_buffer.extrapolate_s': 0.2}, '/v1')


def test_node_rejects_out_of_range_parameter(ros_context):
    with pytest.raises(ConfigError, match="parameter 'grid.resolution_m'"):
        make_vehicle(ros_context, 'v4', **{'grid.resolution_m': -0.2})
