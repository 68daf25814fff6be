from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core import se3
from cooperative_fusion.core.errors import ConfigError, FrameError
from cooperative_fusion.core.vehicle.extrinsics import extrinsic_from_params
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.pose_buffer import PoseBuffer, PoseBufferConfig
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.core.vehicle.pipeline import (DepthFrame, GridMode, LidarScan, PipelineConfig, RadarScan,
                                                      VehiclePipeline, WindowConfig, radar_targets, window_spec)

X0, Y0, YAW = 100.0, 2.0, 0.1
T_REF = 50_000_000_000           # vehicle clock, ns
BOX_AHEAD_M = 20.0               # front face of the box, metres ahead of base_link at T_REF
BOX_HALF_WIDTH_M = 1.0
BOX_TOP_M = 2.0


def make_poses(speed: float) -> PoseBuffer:
    """Vehicle along heading YAW at ``speed`` m/s, at (X0, Y0) at T_REF; samples every 10 ms."""
    buf = PoseBuffer(PoseBufferConfig(max_age_ns=5_000_000_000, extrapolation_margin_ns=50_000_000))
    q = np.array([math.cos(YAW / 2), 0.0, 0.0, math.sin(YAW / 2)])
    for k in range(-100, 11):
        t = T_REF + k * 10_000_000
        d = speed * k * 0.01
        buf.insert(PoseSample(t, np.array([X0 + d * math.cos(YAW), Y0 + d * math.sin(YAW), 0.0]), q,
                              linear_velocity=np.array([speed, 0.0, 0.0])))
    return buf


def box_in_map() -> np.ndarray:
    """Centre (2,) of the box face in map: BOX_AHEAD_M ahead of base_link at T_REF, across the heading."""
    c, s = math.cos(YAW), math.sin(YAW)
    return np.array([X0 + BOX_AHEAD_M * c, Y0 + BOX_AHEAD_M * s])


def lidar_scan(poses: PoseBuffer, stamp_ns: int, lidar2base: np.ndarray) -> np.ndarray:
    """Lidar points (N, 3) in the sensor frame at ``stamp_ns``: a fan of beams over the road and the box face.

    The box face is the segment across the heading at BOX_AHEAD_M ahead of the T_REF pose,
    fixed in map. Each beam (0.1 deg apart, +-15 deg) returns ground rings at 3..17 m and,
    if it meets the face, the face at heights 0.6..1.8 m.
    """
    lidar2map = poses.lookup(stamp_ns) @ lidar2base
    face_c = box_in_map()
    normal = np.array([math.cos(YAW), math.sin(YAW)])     # face normal, pointing away from the vehicle
    along = np.array([-math.sin(YAW), math.cos(YAW)])
    origin = lidar2map[:2, 3]
    heading = se3.yaw_of(lidar2map)
    az = heading + np.radians(np.arange(-15.0, 15.0001, 0.1))
    dirs = np.stack([np.cos(az), np.sin(az)], axis=1)
    rng = ((face_c - origin) @ normal) / (dirs @ normal)   # range to the face's line along each beam
    hit_xy = origin + rng[:, None] * dirs
    on_face = np.abs((hit_xy - face_c) @ along) <= BOX_HALF_WIDTH_M
    pts = []
    for z in (0.6, 1.0, 1.4, 1.8):   # a few rings of heights, vectorised over beams
        xy = hit_xy[on_face]
        pts.append(np.column_stack([xy, np.full(len(xy), z)]))
    for r in np.arange(3.0, 17.5, 1.0):
        xy = origin + r * dirs
        pts.append(np.column_stack([xy, np.zeros(len(xy))]))
    points_map = np.vstack(pts)
    return se3.apply(se3.invert(lidar2map), points_map).astype(np.float32)


def face_cells(spec: GridSpec, half_m: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """(ix, iy) of cells on the box face line within ``half_m`` of its centre."""
    along = np.array([-math.sin(YAW), math.cos(YAW)])
    s = np.linspace(-half_m, half_m, 9)
    xy = box_in_map() + s[:, None] * along
    # a hair behind the face, so the cell is the one the returns fall in
    xy = xy + 0.01 * np.array([math.cos(YAW), math.sin(YAW)])
    return spec.world_to_cell(xy)


def before_cells(spec: GridSpec, lo: float = 4.0, hi: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """(ix, iy) of cells on the centre line between the vehicle and the box."""
    r = np.arange(lo, hi, 0.5)
    xy = np.array([X0, Y0]) + r[:, None] * np.array([math.cos(YAW), math.sin(YAW)])
    return spec.world_to_cell(xy)


def lidar_only(**kw) -> VehiclePipeline:
    return VehiclePipeline(PipelineConfig(enabled=('lidar',), deskew=False, **kw))


def test_static_box_occupied_and_space_before_free():
    poses = make_poses(speed=0.0)
    pipe = lidar_only()
    scan = LidarScan(T_REF, lidar_scan(poses, T_REF, pipe.lidar2base))
    res = pipe.process(T_REF, poses, lidar=scan)
    assert res.used == ('lidar',)
    ix, iy = face_cells(res.spec)
    assert res.spec.in_bounds(ix, iy).all()
    assert_array_equal(res.cells[iy, ix], 85)           # round(100 * p_hit)
    ix, iy = before_cells(res.spec)
    assert_array_equal(res.cells[iy, ix], 35)           # round(100 * p_miss)
    # behind the box: no evidence
    ix, iy = before_cells(res.spec, 22.0, 30.0)
    assert_array_equal(res.cells[iy, ix], -1)


def test_rolling_window_ahead_of_vehicle_on_lattice():
    cfg = WindowConfig(size_x_m=100.0, size_y_m=40.0, resolution_m=0.2, forward_offset_m=30.0)
    spec = window_spec(cfg, se3.from_xy_yaw(X0, Y0, YAW))
    assert spec.shape == (200, 500)
    cx = spec.origin_x + spec.size_x / 2
    cy = spec.origin_y + spec.size_y / 2
    assert_allclose([cx, cy], [X0 + 30 * math.cos(YAW), Y0 + 30 * math.sin(YAW)], atol=0.2)
    assert_allclose(np.array([spec.origin_x, spec.origin_y]) / 0.2,
                    np.round(np.array([spec.origin_x, spec.origin_y]) / 0.2), atol=1e-9)


def test_fixed_window_and_off_lattice_origin():
    cfg = WindowConfig(mode='fixed', size_x_m=50.0, size_y_m=20.0, resolution_m=0.5,
                       fixed_origin_x_m=80.0, fixed_origin_y_m=-10.0)
    assert cfg.mode is GridMode.FIXED
    spec = window_spec(cfg, se3.from_xy_yaw(X0, Y0, YAW))
    assert (spec.origin_x, spec.origin_y, spec.width, spec.height) == (80.0, -10.0, 100, 40)
    with pytest.raises(ConfigError, match='fixed_origin_x_m = 80.1 is off the lattice'):
        WindowConfig(mode='fixed', resolution_m=0.5, fixed_origin_x_m=80.1)
    with pytest.raises(ConfigError, match="grid mode must be one of rolling, fixed, got 'spiral'"):
        WindowConfig(mode='spiral')


def test_moving_vehicle_motion_compensation_puts_box_edge_in_right_cell():
    speed = 30.0
    poses = make_poses(speed)
    pipe = lidar_only()
    t_lidar = T_REF - 40_000_000       # 40 ms before the reference: the vehicle was 1.2 m behind
    points = lidar_scan(poses, t_lidar, pipe.lidar2base)
    res = pipe.process(T_REF, poses, lidar=LidarScan(t_lidar, points))
    ix, iy = face_cells(res.spec)
    assert_array_equal(res.cells[iy, ix], 85)
    # The nearest occupied cell along the centre line is the face's cell, not 6 cells (1.2 m) off.
    line_ix, line_iy = before_cells(res.spec, 10.0, 30.0)
    occupied = np.flatnonzero(res.cells[line_iy, line_ix] == 85)
    face_ix, _ = res.spec.world_to_cell(box_in_map()[None, :] + 0.01)
    assert line_ix[occupied[0]] == face_ix[0]
    # Sanity of the test itself: placing the scan with the reference pose would miss by ~6 cells.
    wrong = se3.apply(poses.lookup(T_REF) @ pipe.lidar2base, points)
    wrong_face = wrong[wrong[:, 2] > 0.5]
    wrong_ix, _ = res.spec.world_to_cell(wrong_face[:, :2])
    assert wrong_ix.min() >= face_ix[0] + 5


def test_deskew_uses_per_point_time_offsets():
    speed = 30.0
    poses = make_poses(speed)
    pipe = VehiclePipeline(PipelineConfig(enabled=('lidar',), deskew=True))
    # Two halves of a sweep captured 50 ms apart; stamped at the first.
    t0 = T_REF - 60_000_000
    a = lidar_scan(poses, t0, pipe.lidar2base)
    b = lidar_scan(poses, t0 + 50_000_000, pipe.lidar2base)
    pts = np.vstack([a, b])
    t_off = np.concatenate([np.zeros(len(a)), np.full(len(b), 0.05)])
    res = pipe.process(T_REF, poses, lidar=LidarScan(t0, pts, t_off))
    ix, iy = face_cells(res.spec)
    assert_array_equal(res.cells[iy, ix], 85)
    ix, iy = before_cells(res.spec)
    assert_array_equal(res.cells[iy, ix], 35)
    # Without the offsets, the second half smears the face 1.5 m towards the vehicle.
    smeared = pipe.process(T_REF, poses, lidar=LidarScan(t0, pts))
    line_ix, line_iy = before_cells(res.spec, 10.0, 30.0)
    first_occ = lambda r: line_ix[np.flatnonzero(r.cells[line_iy, line_ix] == 85)[0]]  # noqa: E731
    assert first_occ(smeared) <= first_occ(res) - 6


def test_radar_targets_remove_ego_motion():
    rng = np.random.default_rng(0)
    speed = 30.0
    poses = make_poses(speed)
    pipe = VehiclePipeline(PipelineConfig(enabled=('radar',)))
    radar2map = poses.lookup(T_REF) @ pipe.radar2base
    # Targets in map: stationary ones, and one driving ahead at 25 m/s along the heading.
    targets_map = np.column_stack([X0 + rng.uniform(15, 60, 6), Y0 + rng.uniform(-4, 4, 6), np.full(6, 0.8)])
    v_target = np.zeros((6, 3))
    v_target[0] = [25 * math.cos(YAW), 25 * math.sin(YAW), 0.0]
    v_ego = np.array([speed * math.cos(YAW), speed * math.sin(YAW), 0.0])
    los = targets_map - radar2map[:3, 3]
    u = los / np.linalg.norm(los, axis=1, keepdims=True)
    v_true = np.sum(v_target * u, axis=1)
    measured = np.sum((v_target - v_ego) * u, axis=1)      # + away, relative to the moving radar
    pts = se3.apply(se3.invert(radar2map), targets_map)
    scan = RadarScan(T_REF, pts, measured, np.arange(6.0))
    res = pipe.process(T_REF, poses, radar=scan)
    out = res.radar_targets
    assert out.dtype.names == ('x', 'y', 'z', 'velocity', 'rcs')
    assert_allclose(np.column_stack([out['x'], out['y'], out['z']]), targets_map, atol=1e-3)
    assert_allclose(out['velocity'], v_true, atol=1e-3)
    assert_allclose(out['velocity'][1:], 0.0, atol=1e-3)
    assert_allclose(out['rcs'], np.arange(6.0))
    # the radar layer marks its detections occupied
    ix, iy = res.spec.world_to_cell(targets_map[:, :2])
    inside = res.spec.in_bounds(ix, iy)
    assert (res.cells[iy[inside], ix[inside]] > 50).all()


def test_radar_targets_sign_convention():
    # Ego drives at 10 m/s straight at a stationary target: measured -10 (approaching), world 0.
    out = radar_targets(np.array([[20.0, 0.0, 0.0]]), np.array([-10.0]), np.array([1.0]),
                        np.zeros(3), np.array([10.0, 0.0, 0.0]))
    assert_allclose(out['velocity'], [0.0], atol=1e-9)
    # A target receding at 5 m/s seen from a parked radar: + away.
    out = radar_targets(np.array([[0.0, 20.0, 0.0]]), np.array([5.0]), np.array([1.0]), np.zeros(3), np.zeros(3))
    assert_allclose(out['velocity'], [5.0])


def depth_image(poses: PoseBuffer, stamp_ns: int, camera2base: np.ndarray, K: np.ndarray,
                width: int = 160, height: int = 120) -> np.ndarray:
    """Depth (H, W) float32 of the box face (a vertical plane patch) and the road plane z = 0; NaN elsewhere."""
    cam2map = poses.lookup(stamp_ns) @ camera2base
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], axis=-1)
    rays = rays_cam @ cam2map[:3, :3].T                  # map directions for depth z = 1
    o = cam2map[:3, 3]
    n = np.array([math.cos(YAW), math.sin(YAW), 0.0])
    along = np.array([-math.sin(YAW), math.cos(YAW), 0.0])
    face_c = np.append(box_in_map(), 0.0)
    with np.errstate(divide='ignore', invalid='ignore'):
        t_face = ((face_c - o) @ n) / (rays @ n)
        p = o + t_face[..., None] * rays
        on_face = (t_face > 0) & (np.abs((p - face_c) @ along) <= BOX_HALF_WIDTH_M) & (p[..., 2] >= 0.0) \
            & (p[..., 2] <= BOX_TOP_M)
        t_ground = -o[2] / rays[..., 2]
    depth = np.where(on_face, t_face, np.where(t_ground > 0, t_ground, np.nan))
    return depth.astype(np.float32)


def test_camera_sees_box_and_free_road():
    poses = make_poses(0.0)
    pipe = VehiclePipeline(PipelineConfig(enabled=('camera',)))
    K = np.array([[80.0, 0, 79.5], [0, 80.0, 59.5], [0, 0, 1]])
    depth = depth_image(poses, T_REF, pipe.camera2base, K)
    assert np.isfinite(depth).mean() > 0.4
    res = pipe.process(T_REF, poses, camera=DepthFrame(T_REF, depth, K))
    assert res.used == ('camera',)
    # pixel columns are 0.56 deg (18 cm at the face) apart: the slanted face line is hit
    # in every cell of its middle, not necessarily in the corner cells at its ends
    ix, iy = face_cells(res.spec, 0.5)
    assert_array_equal(res.cells[iy, ix], 75)
    # the camera is 1.5 m ahead of base_link; its ground returns start a few metres out
    ix, iy = before_cells(res.spec, 8.0, 16.0)
    assert_array_equal(res.cells[iy, ix], 40)


def test_all_sensors_combine():
    poses = make_poses(0.0)
    pipe = VehiclePipeline(PipelineConfig())
    K = np.array([[80.0, 0, 79.5], [0, 80.0, 59.5], [0, 0, 1]])
    lidar = LidarScan(T_REF, lidar_scan(poses, T_REF, pipe.lidar2base))
    camera = DepthFrame(T_REF, depth_image(poses, T_REF, pipe.camera2base, K), K)
    face = np.append(box_in_map(), 1.0)[None, :]
    radar = RadarScan(T_REF, se3.apply(se3.invert(poses.lookup(T_REF) @ pipe.radar2base), face),
                      np.zeros(1), np.ones(1))
    res = pipe.process(T_REF, poses, lidar=lidar, radar=radar, camera=camera)
    assert res.used == ('lidar', 'radar', 'camera')
    ix, iy = face_cells(res.spec)
    assert (res.cells[iy, ix] > 85).all()          # lidar + camera (+ radar near the centre) agree
    ix, iy = before_cells(res.spec, 8.0, 16.0)
    assert (res.cells[iy, ix] < 35).all()          # lidar and camera free add up
    expected = np.rint(100 / (1 + np.exp(-res.logodds))).astype(np.int8)
    assert_array_equal(res.cells[res.known], expected[res.known])
    assert (res.cells[~res.known] == -1).all()


def test_member_without_pose_is_skipped_not_fatal():
    poses = make_poses(0.0)
    pipe = VehiclePipeline(PipelineConfig(enabled=('lidar', 'radar')))
    lidar = LidarScan(T_REF, lidar_scan(poses, T_REF, pipe.lidar2base))
    radar = RadarScan(T_REF + 5_000_000_000, np.array([[20.0, 0, 0]]), np.zeros(1), np.zeros(1))
    res = pipe.process(T_REF, poses, lidar=lidar, radar=radar)
    assert res.used == ('lidar',)
    assert 'after the newest pose' in res.skipped['radar']
    assert res.radar_targets is None
    with pytest.raises(FrameError, match='after the newest pose'):
        pipe.process(T_REF + 5_000_000_000, poses, lidar=lidar)


@pytest.mark.parametrize('kw, match', [
    (dict(lidar_extrinsic=(0.0, 0.0, 1.0)), r"parameter 'extrinsics.lidar': expected 6 numbers"),
    (dict(camera_stride=0), 'camera_stride must be an integer >= 1, got 0'),
    (dict(enabled=('lidar', 'sonar')), r"enabled streams must be a non-empty subset of .*'sonar'"),
    (dict(radar_sigma_m=-1.0), 'radar_sigma_m must be >= 0, got -1.0'),
    (dict(camera_hfov_rad=4.0), r'camera_hfov_rad must be in \(0, pi\)'),
])
def test_invalid_pipeline_config(kw, match):
    with pytest.raises(ConfigError, match=match):
        PipelineConfig(**kw)


def test_extrinsics_from_config():
    pipe = VehiclePipeline(PipelineConfig(radar_extrinsic=(3.0, 0.5, 0.4, 0.0, 0.0, 0.2)))
    assert_allclose(pipe.radar2base, extrinsic_from_params('r', [3.0, 0.5, 0.4, 0.0, 0.0, 0.2]))
    # the default optical frame looks along base_link x
    assert_allclose(pipe.camera2base[:3, 2], [1.0, 0.0, 0.0], atol=1e-12)


def test_moving_face_drawn_at_the_cycle_stamp_with_the_radar_doppler():
    # The face drives away at 20 m/s (the vehicle stands still); lidar and radar saw it at T_REF, the cycle
    # describes T_REF + 50 ms: with draw_at the face is 1 m further, without it where the sensors saw it.
    poses = make_poses(0.0)
    pipe = VehiclePipeline(PipelineConfig(enabled=('lidar', 'radar'), deskew=False))
    lidar = LidarScan(T_REF, lidar_scan(poses, T_REF, pipe.lidar2base))
    face = np.append(box_in_map(), 1.0)[None, :]
    radar = RadarScan(T_REF, se3.apply(se3.invert(poses.lookup(T_REF) @ pipe.radar2base), face),
                      np.array([20.0]), np.ones(1))
    seen = pipe.process(T_REF, poses, lidar=lidar, radar=radar)
    moved = pipe.process(T_REF, poses, lidar=lidar, radar=radar, draw_at_vehicle_ns=T_REF + 50_000_000)
    ix, iy = face_cells(seen.spec, half_m=0.6)
    assert (seen.cells[iy, ix] > 80).all()
    assert (moved.cells[iy, ix] < 50).all()        # the beams now pass there: free
    step = 1.0 * np.array([math.cos(YAW), math.sin(YAW)])
    sp = moved.spec
    centres = np.stack([sp.origin_x + (ix + 0.5) * sp.resolution, sp.origin_y + (iy + 0.5) * sp.resolution], axis=1)
    jx, jy = sp.world_to_cell(centres + step)
    assert (moved.cells[jy, jx] > 80).all()
