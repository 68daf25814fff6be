from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError, FrameError, MessageFormatError
from cooperative_fusion.core.vehicle.extrinsics import extrinsic_from_params
from cooperative_fusion.core.vehicle.motion import compensate, deskew, points_to_map, to_reference_base
from cooperative_fusion.core.vehicle.pose_buffer import PoseBuffer
from cooperative_fusion.core.se3 import apply, from_xy_yaw, invert
from cooperative_fusion.core.types import PoseSample

EPOCH = 1_700_000_000_000_000_000
MS = 1_000_000
LIDAR2BASE = extrinsic_from_params('lidar', [1.2, 0.1, 1.9, 0.01, -0.02, 0.05])


def true_pose(t_s, v=30.0, yaw_rate=0.5):
    """base2map of a vehicle on a circle at v m/s turning at yaw_rate rad/s (straight if 0)."""
    t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
    yaw = yaw_rate * t
    if yaw_rate == 0.0:
        x, y = v * t, np.zeros_like(t)
    else:
        x, y = v / yaw_rate * np.sin(yaw), v / yaw_rate * (1.0 - np.cos(yaw))
    return np.stack([from_xy_yaw(a, b, c) for a, b, c in zip(x, y, yaw)])


def odom_buffer(v=30.0, yaw_rate=0.5, rate_hz=50.0, duration_s=2.0) -> PoseBuffer:
    buf = PoseBuffer()
    for k in range(int(duration_s * rate_hz) + 1):
        stamp = EPOCH + int(round(k * 1e9 / rate_hz))
        yaw = yaw_rate * k / rate_hz
        pose = true_pose(k / rate_hz, v, yaw_rate)[0]
        buf.insert(PoseSample(stamp, pose[:3, 3], np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]),
                              linear_velocity=np.array([v, 0.0, 0.0]),
                              angular_velocity=np.array([0.0, 0.0, yaw_rate])))
    return buf


def observe(points_map, t_s, v=30.0, yaw_rate=0.5):
    """What the lidar sees of map points, each at its own time t_s (scalar or (N,))."""
    t = np.broadcast_to(np.asarray(t_s, dtype=np.float64), (points_map.shape[0],))
    map2sensor = invert_many(true_pose(t, v, yaw_rate) @ LIDAR2BASE)
    return np.einsum('nij,nj->ni', map2sensor[:, :3, :3], points_map) + map2sensor[:, :3, 3]


def invert_many(t):
    return np.stack([invert(m) for m in t])


@pytest.mark.parametrize('yaw_rate', [0.0, 0.3])
def test_scan_40_ms_before_reference_at_30_m_s(yaw_rate):
    rng = np.random.default_rng(0)
    targets = np.column_stack([rng.uniform(20, 60, 200), rng.uniform(-8, 8, 200), rng.uniform(0, 2, 200)])
    t_ref = 1.0073                               # off the 20 ms odometry grid
    t_scan = t_ref - 0.040
    buf = odom_buffer(yaw_rate=yaw_rate)
    scan = observe(targets, t_scan, yaw_rate=yaw_rate).astype(np.float32)
    naive = points_to_map(scan, LIDAR2BASE, buf.lookup(EPOCH + int(round(t_ref * 1e9))))
    compensated = compensate(scan, LIDAR2BASE, buf, EPOCH + int(round(t_scan * 1e9)))
    naive_err = np.linalg.norm(naive - targets, axis=1)
    err = np.linalg.norm(compensated - targets, axis=1)
    if yaw_rate == 0.0:
        assert_allclose(naive_err, 1.2, atol=1e-3)   # 30 m/s · 40 ms
    else:
        assert naive_err.min() > 1.0
    assert err.max() < 0.01


def test_to_reference_base_round_trip_and_consistency():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-30, 30, (100, 3))
    buf = odom_buffer()
    stamp, ref = EPOCH + 613 * MS, EPOCH + 651 * MS
    in_ref_base = to_reference_base(pts, LIDAR2BASE, buf, stamp, ref)
    assert_allclose(apply(buf.lookup(ref), in_ref_base), compensate(pts, LIDAR2BASE, buf, stamp), atol=1e-9)
    back = to_reference_base(in_ref_base, np.eye(4), buf, ref, stamp)
    assert_allclose(apply(invert(LIDAR2BASE), back), pts, atol=1e-9)
    assert_allclose(to_reference_base(pts, LIDAR2BASE, buf, ref, ref), apply(LIDAR2BASE, pts), atol=1e-12)
    # against the analytic trajectory: the vehicle moved 1.14 m and turned 0.019 rad in between
    expected = apply(invert(true_pose(0.651)[0]) @ true_pose(0.613)[0] @ LIDAR2BASE, pts)
    assert_allclose(in_ref_base, expected, atol=1e-3)
    assert np.linalg.norm(in_ref_base - apply(LIDAR2BASE, pts), axis=1).min() > 0.5


def test_deskew_reproduces_a_static_wall_seen_from_a_moving_yawing_vehicle():
    rng = np.random.default_rng(0)
    n = 20_000
    wall = np.column_stack([rng.uniform(10, 50, n), np.full(n, 12.0), rng.uniform(0, 3, n)])
    stamp_s = 0.8
    t_off = rng.uniform(0.0, 0.1, n).astype(np.float32)          # a 100 ms sweep
    scan = observe(wall, stamp_s + t_off.astype(np.float64)).astype(np.float32)
    buf = odom_buffer(yaw_rate=0.5)
    stamp_ns = EPOCH + int(stamp_s * 1e9)
    out = deskew(scan, t_off, LIDAR2BASE, buf, stamp_ns)
    err = np.linalg.norm(out - wall, axis=1)
    assert err.max() < 0.02
    skewed = compensate(scan, LIDAR2BASE, buf, stamp_ns)          # whole scan at the header stamp
    assert np.percentile(np.linalg.norm(skewed - wall, axis=1), 90) > 1.0


def test_deskew_bins_agree_with_per_point_compensation():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-40, 40, (60, 3))
    t_off = rng.uniform(-0.05, 0.05, 60)
    buf = odom_buffer()
    stamp = EPOCH + 900 * MS
    ref = np.stack([compensate(pts[i:i + 1], LIDAR2BASE, buf, stamp + int(round(t_off[i] * 1e9)))[0]
                    for i in range(60)])
    assert_allclose(deskew(pts, t_off, LIDAR2BASE, buf, stamp, bin_s=1e-9), ref, atol=1e-6)
    coarse = deskew(pts, t_off, LIDAR2BASE, buf, stamp)         # 0.5 ms bins
    worst = 30.0 * 0.25e-3 + 0.5 * 60.0 * 0.25e-3               # v·bin/2 + yaw_rate·range·bin/2
    assert np.abs(coarse - ref).max() < worst
    assert np.abs(coarse - ref).max() > 1e-4                     # binning does change the result


def test_deskew_validation():
    buf = odom_buffer()
    pts = np.zeros((5, 3))
    with pytest.raises(MessageFormatError, match=r't_offset_s must have shape \(5,\) to match the points, got \(4,\)'):
        deskew(pts, np.zeros(4), LIDAR2BASE, buf, EPOCH)
    with pytest.raises(MessageFormatError, match='point time offsets must be finite, got nan'):
        deskew(pts, np.array([0, 0, np.nan, 0, 0]), LIDAR2BASE, buf, EPOCH)
    with pytest.raises(ConfigError, match='bin_s must be a positive number of seconds, got 0'):
        deskew(pts, np.zeros(5), LIDAR2BASE, buf, EPOCH, bin_s=0)
    with pytest.raises(MessageFormatError, match=r'points must have shape \(N, 3\), got \(5, 4\)'):
        deskew(np.zeros((5, 4)), np.zeros(5), LIDAR2BASE, buf, EPOCH)
    with pytest.raises(FrameError, match=r'sensor2base must be a finite 4×4 transform, got shape \(3, 3\)'):
        compensate(pts, np.eye(3), buf, EPOCH)
    with pytest.raises(FrameError, match=r'is 0\.150 s after the newest pose'):
        deskew(pts, np.array([0, 0, 0, 0, 0.2]), LIDAR2BASE, buf, EPOCH + 1950 * MS)
    assert deskew(np.zeros((0, 3)), np.zeros(0, np.float32), LIDAR2BASE, buf, EPOCH).shape == (0, 3)


def test_deskew_in_chunks_equals_one_gather_over_all_points_bit_for_bit():
    buf = odom_buffer()
    rng = np.random.default_rng(3)
    n = 20_000                                    # more than two chunks
    pts = rng.normal(0.0, 30.0, (n, 3)).astype(np.float32)
    t = rng.uniform(-0.02, 0.1, n).astype(np.float32)
    lidar2base = extrinsic_from_params('lidar', [1.2, 0.0, 1.9, 0.0, 0.0, 0.1])
    stamp = EPOCH + 500_000_000
    got = deskew(pts, t, lidar2base, buf, stamp)
    bins = np.rint(t.astype(np.float64) * (1e9 / 500_000)).astype(np.int64)
    uniq, inverse = np.unique(bins, return_inverse=True)
    rows = (buf.lookup_many(stamp + uniq * 500_000) @ lidar2base)[:, :3, :].reshape(-1, 12)[inverse]
    x, y, z = (pts[:, j].astype(np.float64) for j in range(3))
    want = np.column_stack([rows[:, 4 * i] * x + rows[:, 4 * i + 1] * y + rows[:, 4 * i + 2] * z + rows[:, 4 * i + 3]
                            for i in range(3)])
    assert got.tobytes() == want.tobytes()
