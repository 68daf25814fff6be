"""The inputs subscribed raw (issue 12): the vehicle node's lidar, the fusion node's evidence grids,
the twin node's common grid, every node's odometry, the fusion node's radar targets, the vehicle node's
radar and depth image.

Their callbacks take the serialized CDR bytes (live) or the message object (the
lock-step runner); both must reach the core with the same values, and bad
bytes must be a counted drop.
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from rclpy.parameter import Parameter

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.nodes.fusion_node import FusionNode
from cooperative_fusion.nodes.twin_node import TwinNode
from cooperative_fusion.nodes.vehicle_node import VehicleNode
from cooperative_fusion.ros.cdr import serialize_cdr
from cooperative_fusion.ros.grid import grid_to_msg
from cooperative_fusion.ros.image import array_to_depth_image, k_to_camera_info
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.pointcloud import array_to_cloud, from_columns

T0 = 1_700_000_000_000_000_000


def subscription(node, topic: str):
    subs = [s for s in node.subscriptions if s.topic_name == topic]
    assert len(subs) == 1, [s.topic_name for s in node.subscriptions]
    return subs[0]


@pytest.fixture
def vehicle(ros_context):
    node = VehicleNode(context=ros_context, parameter_overrides=[
        Parameter('vehicle_id', value='v1'), Parameter('timebase.enabled', value=False)])
    yield node
    node.destroy_node()


@pytest.fixture
def fusion(ros_context):
    node = FusionNode(context=ros_context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {'vehicles': ['v1', 'v2'], 'vehicle_weights': [1.0, 1.0]}.items()])
    yield node
    node.destroy_node()


def lidar_cloud(stamp_ns: int, frame: str = 'v1/lidar'):
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(3, 257)) * 20.0
    t = np.linspace(0.0, 0.1, 257)
    return array_to_cloud(from_columns({'x': x, 'y': y, 'z': z, 't': t, 'intensity': rng.random(257)}),
                          stamp_ns, frame)


def test_vehicle_lidar_bytes_and_message_reach_the_core_alike(vehicle, monkeypatch):
    sub = subscription(vehicle, '/v1/lidar/points')
    assert sub.raw
    scans = []
    monkeypatch.setattr(vehicle.core, 'sensor', lambda stream, scan, now: scans.append((stream, scan)) or
                        type(vehicle.core).sensor.__get__(vehicle.core)(stream, scan, now))
    msg = lidar_cloud(T0)
    sub.callback(msg)
    sub.callback(serialize_cdr(msg))
    assert not vehicle.drops.counts, vehicle.drops.counts
    (s1, a), (s2, b) = scans
    assert s1 == s2 == 'lidar' and a.stamp_vehicle_ns == b.stamp_vehicle_ns == T0
    assert_array_equal(a.points, b.points)
    assert_array_equal(a.t_offset_s, b.t_offset_s)
    assert a.points.shape == (257, 3)


def test_vehicle_lidar_bad_bytes_are_counted_drops(vehicle):
    sub = subscription(vehicle, '/v1/lidar/points')
    raw = serialize_cdr(lidar_cloud(T0))
    sub.callback(raw[:len(raw) // 2])
    sub.callback(b'\x00\x01\x00\x00' + bytes(3))
    sub.callback(serialize_cdr(lidar_cloud(T0, frame='v2/lidar')))   # decoded frame_id is checked
    assert vehicle.drops.counts == {'lidar.malformed': 2, 'lidar.frame': 1}
    assert vehicle.context.ok()


def test_fusion_evidence_bytes_and_message_reach_the_core_alike(fusion, monkeypatch):
    sub = subscription(fusion, '/v1/evidence_grid')
    assert sub.raw
    calls = []
    monkeypatch.setattr(fusion.core, 'add', lambda *args: calls.append(args) or
                        type(fusion.core).add.__get__(fusion.core)(*args))
    spec = GridSpec(10.0, -4.0, 0.2, 37, 11)
    cells = np.random.default_rng(1).integers(-1, 101, spec.shape).astype(np.int8)
    msg = grid_to_msg(spec, cells, T0, 'map')
    sub.callback(msg)
    sub.callback(serialize_cdr(msg))
    assert len(calls) == 2, fusion.drops.counts
    (v1, spec1, lo1, known1, stamp1, _), (v2, spec2, lo2, known2, stamp2, _) = calls
    assert v1 == v2 == 'v1' and spec1 == spec2 == spec and stamp1 == stamp2 == T0
    assert_array_equal(lo1, lo2)
    assert_array_equal(known1, known2)
    assert known1.sum() == (cells >= 0).sum()


def test_fusion_evidence_bad_bytes_are_counted_drops(fusion):
    sub = subscription(fusion, '/v2/evidence_grid')
    raw = serialize_cdr(grid_to_msg(GridSpec(0.0, 0.0, 0.2, 5, 3), np.zeros((3, 5), np.int8), T0))
    sub.callback(raw[:-1])
    sub.callback(b'garbage')
    assert fusion.drops.counts == {'v2.malformed': 2}
    assert fusion.received['v2'] == 2
    assert fusion.context.ok()


@pytest.fixture
def twin(ros_context):
    node = TwinNode(context=ros_context)
    yield node
    node.destroy_node()


def test_twin_common_grid_bytes_and_message_reach_the_core_alike(twin, monkeypatch):
    sub = subscription(twin, '/cooperative/grid')
    assert sub.raw
    calls = []
    monkeypatch.setattr(twin.edge, 'on_grid', lambda spec, cells, stamp, now: calls.append(
        (spec, np.array(cells), stamp)) or type(twin.edge).on_grid.__get__(twin.edge)(spec, cells, stamp, now))
    spec = GridSpec(-20.0, -8.0, 0.2, 53, 17)
    cells = np.random.default_rng(2).integers(-1, 101, spec.shape).astype(np.int8)
    sub.callback(grid_to_msg(spec, cells, T0, 'map'))
    sub.callback(serialize_cdr(grid_to_msg(spec, cells, T0 + 100_000_000, 'map')))
    assert len(calls) == 2, twin.drops.counts
    (spec1, cells1, stamp1), (spec2, cells2, stamp2) = calls
    assert spec1 == spec2 == spec and (stamp1, stamp2) == (T0, T0 + 100_000_000)
    assert_array_equal(cells1, cells)
    assert_array_equal(cells2, cells)


def test_twin_common_grid_bad_bytes_are_counted_drops(twin):
    sub = subscription(twin, '/cooperative/grid')
    raw = serialize_cdr(grid_to_msg(GridSpec(0.0, 0.0, 0.2, 5, 3), np.zeros((3, 5), np.int8), T0))
    sub.callback(raw[:20])
    sub.callback(serialize_cdr(grid_to_msg(GridSpec(0.0, 0.0, 0.2, 5, 3), np.zeros((3, 5), np.int8), T0, 'odom')))
    assert twin.drops.counts.get('grid.malformed') == 1, twin.drops.counts
    assert sum(v for k, v in twin.drops.counts.items() if k.startswith('grid.')) == 2, twin.drops.counts
    assert twin.context.ok()


def odometry(stamp_ns: int, x: float, frame: str = 'map', child: str = 'v1/base_link'):
    """An Odometry at (x, 2) m, yawed 0.3 rad, 20 m/s forward, a small positive-definite covariance."""
    cov = np.diag([0.04, 0.02, 0.01, 0.001, 0.001, 0.002])
    cov[0, 1] = cov[1, 0] = 0.005
    pose = PoseSample(stamp_ns, np.array([x, 2.0, 0.0]), np.array([np.cos(0.15), 0.0, 0.0, np.sin(0.15)]), cov,
                      np.array([20.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.01]))
    return pose_to_odometry(pose, frame, child)


def test_fusion_odometry_bytes_and_message_reach_the_core_alike(fusion, monkeypatch):
    sub = subscription(fusion, '/v1/odom')
    assert sub.raw
    calls = []
    monkeypatch.setattr(fusion.core, 'add_odometry', lambda *args: calls.append(args))
    sub.callback(odometry(T0, 5.0))
    sub.callback(serialize_cdr(odometry(T0, 5.0)))
    assert not fusion.drops.counts, fusion.drops.counts
    (a, b) = calls
    assert a[0] == b[0] == 'v1' and a[3] == b[3] == 20.0 and a[5] == b[5] == T0
    for k in (1, 2, 4):
        assert_array_equal(a[k], b[k])
    assert_array_equal(b[4], [[0.04, 0.005], [0.005, 0.02]])


def test_fusion_odometry_bad_bytes_are_counted_drops(fusion):
    sub = subscription(fusion, '/v2/odom')
    raw = serialize_cdr(odometry(T0, 5.0, child='v2/base_link'))
    sub.callback(raw[:-9])
    sub.callback(b'garbage')
    sub.callback(serialize_cdr(odometry(T0, 5.0, frame='odom', child='v2/base_link')))
    assert fusion.drops.counts == {'v2.malformed_odom': 2, 'v2.frame': 1}
    assert fusion.context.ok()


def test_twin_odometry_bytes_and_message_reach_the_core_alike(twin, monkeypatch):
    sub = subscription(twin, '/v1/odom')
    assert sub.raw
    samples = []
    monkeypatch.setattr(twin.edge, 'add_odometry', lambda vid, sample, now: samples.append((vid, sample)))
    sub.callback(odometry(T0, 7.0))
    sub.callback(serialize_cdr(odometry(T0, 7.0)))
    sub.callback(serialize_cdr(odometry(T0, 7.0))[:40])
    assert twin.drops.counts == {'odom.malformed': 1}, twin.drops.counts
    (v1, a), (v2, b) = samples
    assert v1 == v2 == 'v1' and a == b


def test_vehicle_odometry_bytes_and_message_reach_the_core_alike(vehicle, monkeypatch):
    sub = subscription(vehicle, '/v1/odom')
    assert sub.raw
    poses = []
    monkeypatch.setattr(vehicle.core, 'odometry', lambda pose, now: poses.append(pose) or
                        type(vehicle.core).odometry.__get__(vehicle.core)(pose, now))
    sub.callback(odometry(T0, 1.0))
    sub.callback(serialize_cdr(odometry(T0 + 20_000_000, 1.5)))
    sub.callback(b'\x00\x01\x00\x00' + bytes(3))
    assert vehicle.drops.counts == {'odom.malformed': 1}, vehicle.drops.counts
    a, b = poses
    assert (a.stamp_ns, b.stamp_ns) == (T0, T0 + 20_000_000)
    assert_array_equal(b.position, [1.5, 2.0, 0.0])
    assert_array_equal(a.quat_wxyz, b.quat_wxyz)
    assert_array_equal(a.covariance, b.covariance)


def test_fusion_radar_targets_bytes_and_message_reach_the_core_alike(fusion, monkeypatch):
    sub = subscription(fusion, '/v1/radar/targets')
    assert sub.raw
    calls = []
    monkeypatch.setattr(fusion.core, 'add_radar', lambda *args: calls.append(args))
    cols = {'x': np.array([10.0, 20.5]), 'y': np.array([1.0, -2.0]), 'z': np.zeros(2),
            'velocity': np.array([-3.0, 0.5]), 'rcs': np.array([5.0, 9.0])}
    msg = array_to_cloud(from_columns(cols), T0, 'map')
    sub.callback(msg)
    sub.callback(serialize_cdr(msg))
    sub.callback(serialize_cdr(msg)[:30])
    sub.callback(serialize_cdr(array_to_cloud(from_columns(cols), T0, 'v1/radar')))
    assert fusion.drops.counts == {'v1.malformed_radar': 2}, fusion.drops.counts
    (v1, stamp1, a), (v2, stamp2, b) = calls
    assert v1 == v2 == 'v1' and stamp1 == stamp2 == T0
    assert_array_equal(a, b)
    assert_array_equal(a, [[10.0, 1.0, -3.0], [20.5, -2.0, 0.5]])


def test_vehicle_radar_and_depth_bytes_and_messages_reach_the_core_alike(vehicle, monkeypatch):
    radar, camera = subscription(vehicle, '/v1/radar/points'), subscription(vehicle, '/v1/camera/depth/image')
    assert radar.raw and camera.raw
    scans, frames = [], []
    monkeypatch.setattr(vehicle.core, 'sensor', lambda stream, scan, now: scans.append((stream, scan)) or
                        type(vehicle.core).sensor.__get__(vehicle.core)(stream, scan, now))
    monkeypatch.setattr(vehicle.core, 'depth', lambda stamp, depth, now: frames.append((stamp, depth)) or
                        type(vehicle.core).depth.__get__(vehicle.core)(stamp, depth, now))
    cols = {'x': np.array([30.0, 12.5]), 'y': np.array([-1.0, 2.0]), 'z': np.array([0.5, 0.25]),
            'velocity': np.array([-4.0, 0.0]), 'rcs': np.array([10.0, 3.0])}
    cloud = array_to_cloud(from_columns(cols), T0, 'v1/radar')
    radar.callback(cloud)
    radar.callback(serialize_cdr(cloud))
    depth = np.full((6, 8), 12.5, np.float32)
    depth[2, 3] = np.nan
    image = array_to_depth_image(depth, T0, 'v1/camera_optical', '16UC1')
    K = np.array([[4.0, 0.0, 4.0], [0.0, 4.0, 3.0], [0.0, 0.0, 1.0]])
    subscription(vehicle, '/v1/camera/depth/camera_info').callback(k_to_camera_info(K, 8, 6, T0, 'v1/camera_optical'))
    camera.callback(image)
    camera.callback(serialize_cdr(image))
    radar.callback(serialize_cdr(cloud)[:-3])
    camera.callback(serialize_cdr(image)[:25])
    assert {k: v for k, v in vehicle.drops.counts.items() if k.endswith('.malformed')} == \
        {'radar.malformed': 1, 'camera.malformed': 1}, vehicle.drops.counts
    (s1, a), (s2, b) = [(stream, scan) for stream, scan in scans if stream == 'radar']
    assert s1 == s2 == 'radar' and a.stamp_vehicle_ns == b.stamp_vehicle_ns == T0
    assert_array_equal(a.points, b.points)
    assert_array_equal(a.velocity, [-4.0, 0.0])
    assert_array_equal(b.velocity, [-4.0, 0.0])
    assert_array_equal(b.rcs, [10.0, 3.0])
    (t1, d1), (t2, d2) = frames
    assert t1 == t2 == T0
    assert_array_equal(d1, d2)
    assert np.isnan(d2[2, 3]) and d2[0, 0] == np.float32(12500) * np.float32(1e-3)     # 16UC1 millimetres
