from __future__ import annotations

import math

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.se3 import from_xyz_rpy
from cooperative_fusion.sim.scenario import CameraConfig, LidarConfig, MountPose, RadarConfig
from cooperative_fusion.sim.sensors import (HIT_GROUND, HIT_NONE, LIDAR_DTYPE, RADAR_DTYPE, BoxSet, DepthCameraModel,
                                            LidarModel, RadarModel, raycast)
from cooperative_fusion.sim.world import OPTICAL2BODY

MOUNT = MountPose((0.0, 0.0, 0.0))


def boxes(*specs):
    """specs: (id, kind, cx, cy, length, width, height, yaw, vx)."""
    return BoxSet(tuple(s[0] for s in specs), tuple(s[1] for s in specs),
                  np.array([[s[2], s[3], s[6] / 2] for s in specs], dtype=float).reshape(-1, 3),
                  np.array([[s[4] / 2, s[5] / 2, s[6] / 2] for s in specs], dtype=float).reshape(-1, 3),
                  np.array([s[7] for s in specs], dtype=float),
                  np.array([[s[8], 0.0, 0.0] for s in specs], dtype=float).reshape(-1, 3))


def test_raycast_box_ground_and_occlusion():
    world = boxes(('near', 'truck', 10.0, 0.0, 4.0, 2.0, 4.0, 0.0, 0.0),
                  ('far', 'car', 30.0, 0.0, 4.0, 2.0, 2.0, 0.0, 0.0),
                  ('rot', 'car', 0.0, 20.0, 2.0 * math.sqrt(2), 2.0 * math.sqrt(2), 2.0, math.pi / 4, 0.0))
    origin = np.array([0.0, 0.0, 1.0])
    dirs = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 0, 1.0], [0, 1.0, 0], [-1.0, 0, 0]])
    h = raycast(origin, dirs, world)
    assert_array_equal(h.hit, [0, HIT_GROUND, HIT_NONE, 2, HIT_NONE])
    # Box 'near' spans x 8..12; 'far' behind it is occluded; the rotated square's corner is at y = 18.
    assert_allclose(h.ranges[:2], [8.0, 1.0])
    assert_allclose(h.ranges[3], 18.0)
    assert_allclose(h.cos_incidence[:2], [1.0, 1.0])
    # A ray starting inside a box does not hit it.
    h_in = raycast(np.array([10.0, 0.0, 1.0]), np.array([[1.0, 0.0, 0.0]]), world, ground_z=None)
    assert_array_equal(h_in.hit, [1])
    assert_allclose(h_in.ranges, [18.0])


def test_lidar_points_lie_on_surfaces_in_sensor_frame():
    cfg = LidarConfig(mount=MOUNT, range_noise_m=0.01, dropout_prob=0.0)
    lidar = LidarModel(cfg)
    world = boxes(('car', 'car', 20.0, 3.0, 4.5, 1.8, 1.5, 0.3, 0.0))
    sensor2map = from_xyz_rpy((2.0, 1.0, 1.8), (0.0, 0.0, 0.1))
    pts, hit = lidar.scan(sensor2map, np.zeros(3), world, np.random.default_rng(0))
    assert pts.dtype == LIDAR_DTYPE
    xyz = np.stack([pts['x'], pts['y'], pts['z']], axis=1).astype(float)
    p_map = xyz @ sensor2map[:3, :3].T + sensor2map[:3, 3]
    ground = hit == HIT_GROUND
    on_car = hit == 0
    assert on_car.sum() > 50
    assert np.abs(p_map[ground, 2]).max() < 0.06
    # Car points: in the box frame, on the surface within the noise.
    c, s = math.cos(0.3), math.sin(0.3)
    rel = p_map[on_car] - world.centers[0]
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], axis=1)
    excess = np.abs(local) - world.half_sizes[0]
    assert np.abs(excess.max(axis=1)).max() < 0.06
    assert (pts['t'] >= 0).all() and (pts['t'] < 0.1).all()
    assert np.median(pts['intensity'][on_car]) > 5 * np.median(pts['intensity'][ground])
    assert pts['intensity'].max() <= 255.0 * 0.5 + 1e-3


def test_lidar_sweep_sees_moving_box_where_it_is_at_the_ray_time():
    """A scan takes 0.1 s; a box crossing behind the sensor is hit where it is when the ray fires."""
    lidar = LidarModel(LidarConfig(mount=MOUNT, range_noise_m=0.0, dropout_prob=0.0))
    world = boxes(('car', 'car', 15.0, 0.0, 4.0, 2.0, 3.0, 0.0, 20.0))
    sensor2map = from_xyz_rpy((0.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    pts, hit = lidar.scan(sensor2map, np.zeros(3), world, np.random.default_rng(0))
    sel = hit == 0
    # Ahead (azimuth ~0) is swept at t ~ 0.05 s: the rear face is at 13 + 20·t.
    x_expected = 13.0 + 20.0 * pts['t'][sel].astype(float)
    rear = np.abs(pts['x'][sel] - x_expected) < 0.02
    assert rear.sum() > 20


def test_lidar_deterministic_and_dropout():
    cfg = LidarConfig(mount=MOUNT, dropout_prob=0.5)
    lidar = LidarModel(cfg)
    world = boxes(('car', 'car', 10.0, 0.0, 4.5, 1.8, 1.5, 0.0, 0.0))
    pose = from_xyz_rpy((0.0, 0.0, 1.8), (0.0, 0.0, 0.0))
    a, _ = lidar.scan(pose, np.zeros(3), world, np.random.default_rng(3))
    b, _ = lidar.scan(pose, np.zeros(3), world, np.random.default_rng(3))
    full, _ = LidarModel(LidarConfig(mount=MOUNT, dropout_prob=0.0)).scan(pose, np.zeros(3), world,
                                                                          np.random.default_rng(3))
    assert_array_equal(a, b)
    assert_allclose(a.size / full.size, 0.5, atol=0.03)


def test_radar_radial_velocity_sign_and_clutter():
    radar = RadarModel(RadarConfig(mount=MOUNT, false_alarm_rate=0.0, detection_prob=1.0, velocity_noise_mps=0.0,
                                   range_noise_m=0.0, azimuth_noise_deg=0.0))
    # Sensor moves at 25 m/s; a stopped car ahead closes at 25 m/s (negative: approaching).
    world = boxes(('stopped', 'stopped_car', 60.0, 0.0, 4.5, 1.8, 1.5, 0.0, 0.0),
                  ('faster', 'car', 30.0, 3.5, 4.5, 1.8, 1.5, 0.0, 30.0))
    pose = from_xyz_rpy((0.0, 0.0, 0.5), (0.0, 0.0, 0.0))
    pts, box = radar.scan(pose, np.array([25.0, 0.0, 0.0]), world, np.random.default_rng(0))
    assert pts.dtype == RADAR_DTYPE
    stopped, faster = box == 0, box == 1
    assert 1 <= stopped.sum() <= radar.max_per_object and 1 <= faster.sum() <= radar.max_per_object
    rng_ = np.hypot(pts['x'], pts['y'])
    cos_az = pts['x'] / rng_
    assert_allclose(pts['velocity'][stopped], -25.0 * cos_az[stopped], rtol=1e-5)
    assert (pts['velocity'][faster] > 0).all()
    assert_allclose(pts['x'][stopped].min(), 57.75, atol=0.05)
    cluttered = RadarModel(RadarConfig(mount=MOUNT, false_alarm_rate=5.0))
    n = [np.sum(cluttered.scan(pose, np.zeros(3), boxes(), np.random.default_rng(k))[1] == HIT_NONE)
         for k in range(200)]
    assert_allclose(np.mean(n), 5.0, atol=0.5)


def test_depth_camera_wall_and_intrinsics():
    cam = DepthCameraModel(CameraConfig(mount=MOUNT, width=160, height=120, hfov_deg=90.0, depth_noise_m=0.0,
                                        dropout_prob=0.0))
    assert_allclose(cam.K, [[80.0, 0, 79.5], [0, 80.0, 59.5], [0, 0, 1]])
    # A wall 10 m ahead, taller and wider than the view; camera at 1.5 m looking along +x.
    world = boxes(('wall', 'truck', 12.0, 0.0, 4.0, 60.0, 40.0, 0.0, 0.0))
    optical2map = from_xyz_rpy((0.0, 0.0, 1.5), (0.0, 0.0, 0.0)) @ OPTICAL2BODY
    depth, hit = cam.render(optical2map, world, np.random.default_rng(0))
    assert depth.dtype == np.float32 and depth.shape == (120, 160)
    # Rows at or above the horizon see the wall; z-depth of a fronto-parallel wall is constant.
    assert (hit[:60] == 0).all()
    assert_allclose(depth[:60], 10.0, atol=1e-4)
    # The bottom rows see the ground before the wall: depth 1.5 m · fy / (v - cy).
    assert (hit[-1] == HIT_GROUND).all()
    assert_allclose(depth[-1], 1.5 * 80.0 / (119 - 59.5), rtol=1e-5)
    # Without the wall the lower half sees the ground; the upper half has no return (NaN).
    depth2, hit2 = cam.render(optical2map, boxes(), np.random.default_rng(0))
    assert np.isnan(depth2[:60]).all()
    v = 100
    assert_allclose(depth2[v, 80], 1.5 * 80.0 / (v - 59.5), rtol=1e-5)


def test_own_body_occludes_but_returns_nothing():
    """A lidar 0.15 m above its own truck roof: the roof hides the road around it, and no roof points."""
    lidar = LidarModel(LidarConfig(mount=MOUNT, dropout_prob=0.0, range_noise_m=0.0))
    mount = from_xyz_rpy((4.5, 0.0, 3.95), (0.0, 0.0, 0.0))          # sensor2base
    centre, half = np.array([0.0, 0.0, 1.9]), np.array([6.0, 1.25, 1.9])
    free, _ = lidar.scan(mount, np.zeros(3), boxes(), np.random.default_rng(0))
    lidar.occlude_with_own_body(mount, centre, half)
    pts, hit = lidar.scan(mount, np.zeros(3), boxes(), np.random.default_rng(0))
    ground_range = np.hypot(pts['x'], pts['y'])[hit == HIT_GROUND]
    # The roof edge nearest the sensor is 1.25 m to the side: beams steeper than atan(0.15 / 1.25) = 6.8°
    # down end on the roof, so the ground is first seen at 3.95 m / tan(6.8°) = 33 m.
    assert ground_range.min() > 3.95 / math.tan(math.radians(6.9))
    assert pts.size < 0.5 * free.size
    cam = DepthCameraModel(CameraConfig(mount=MOUNT, depth_noise_m=0.0, dropout_prob=0.0))
    cam_mount = from_xyz_rpy((5.9, 0.0, 3.95), (0.0, math.radians(30), 0.0)) @ OPTICAL2BODY
    cam.occlude_with_own_body(cam_mount, centre, half)
    depth, _ = cam.render(cam_mount, boxes(), np.random.default_rng(0))
    assert np.isnan(depth[-1]).all()              # the bottom row looks at the own roof: masked
    assert np.isfinite(depth[60]).mean() > 0.9    # the middle row sees the road ahead
    # A sensor inside its own box (a bumper radar) is not blocked by it.
    radar = RadarModel(RadarConfig(mount=MOUNT))
    radar.occlude_with_own_body(from_xyz_rpy((5.9, 0.0, 0.5), (0.0, 0.0, 0.0)), centre, half)
    assert not radar.blocked.any()
