from __future__ import annotations

import numpy as np
import pytest
import transforms3d
from numpy.testing import assert_allclose
from scipy.spatial.transform import Rotation, Slerp

from cooperative_fusion.core.errors import ConfigError, FrameError
from cooperative_fusion.core.vehicle.pose_buffer import PoseBuffer, PoseBufferConfig, slerp_many
from cooperative_fusion.core.se3 import yaw_of
from cooperative_fusion.core.types import PoseSample

EPOCH = 1_700_000_000_000_000_000
MS = 1_000_000


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def straight_yawing(stamps_ns, v=30.0, yaw_rate=0.5, twist=True):
    """Samples of a vehicle moving along x at v m/s while yawing at yaw_rate rad/s (a skid)."""
    out = []
    for s in stamps_ns:
        t = (s - EPOCH) * 1e-9
        yaw = yaw_rate * t
        lin = np.array([v * np.cos(yaw), -v * np.sin(yaw), 0.0]) if twist else np.zeros(3)
        out.append(PoseSample(int(s), np.array([v * t, 0.0, 0.0]), yaw_quat(yaw),
                              linear_velocity=lin, angular_velocity=np.array([0.0, 0.0, yaw_rate])))
    return out


def filled(stamps_ns, **kw) -> PoseBuffer:
    buf = PoseBuffer()
    for s in straight_yawing(stamps_ns, **kw):
        buf.insert(s)
    return buf


def test_interpolation_is_exact_for_straight_motion_at_constant_yaw_rate():
    buf = filled(EPOCH + np.arange(0, 1000, 20) * MS)
    q = EPOCH + np.array([5, 333, 517, 979]) * MS + 123
    poses = buf.lookup_many(q)
    t = (q - EPOCH) * 1e-9
    assert_allclose(poses[:, 0, 3], 30.0 * t, atol=1e-9)
    assert_allclose(poses[:, 1:3, 3], 0.0, atol=1e-12)
    assert_allclose([yaw_of(p) for p in poses], 0.5 * t, atol=1e-12)
    assert_allclose(poses[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (4, 1)))
    for k, s in enumerate(q):
        assert_allclose(buf.lookup(int(s)), poses[k], atol=1e-12)


def test_slerp_matches_scipy_and_takes_the_short_way():
    rng = np.random.default_rng(0)
    q0 = transforms3d.quaternions.mat2quat(Rotation.random(random_state=1).as_matrix())
    rots = Rotation.random(50, random_state=2).as_quat()          # (x, y, z, w)
    q1 = rots[:, [3, 0, 1, 2]]
    q1[::2] *= -1.0                                                # mixed hemispheres
    u = rng.uniform(0, 1, 50)
    got = slerp_many(np.tile(q0, (50, 1)), q1, u)
    for k in range(50):
        ref = Slerp([0.0, 1.0], Rotation.from_quat([q0[[1, 2, 3, 0]], q1[k, [1, 2, 3, 0]]]))([u[k]])
        assert_allclose(transforms3d.quaternions.quat2mat(got[k]), ref.as_matrix()[0], atol=1e-9)


def test_sign_flipped_quaternion_interpolates_on_short_arc():
    buf = PoseBuffer()
    buf.insert(PoseSample(0, np.zeros(3), yaw_quat(0.1)))
    buf.insert(PoseSample(100 * MS, np.zeros(3), -yaw_quat(0.3)))   # same rotation as yaw 0.3
    assert_allclose(yaw_of(buf.lookup(50 * MS)), 0.2, atol=1e-12)


def test_out_of_order_inserts_equal_sorted_and_equal_stamp_replaces():
    stamps = EPOCH + np.arange(0, 500, 10) * MS
    samples = straight_yawing(stamps)
    order = np.random.default_rng(0).permutation(len(samples))
    a, b = PoseBuffer(), PoseBuffer()
    for s in samples:
        a.insert(s)
    for k in order:
        b.insert(samples[k])
    q = EPOCH + np.arange(0, 490, 7) * MS
    assert_allclose(a.lookup_many(q), b.lookup_many(q), atol=0)
    assert len(b) == 50 and b.span() == (int(stamps[0]), int(stamps[-1]))
    b.insert(PoseSample(int(stamps[10]), np.array([99.0, 0, 0]), yaw_quat(0.0)))
    assert len(b) == 50
    assert_allclose(b.lookup(int(stamps[10]))[0, 3], 99.0)


def test_old_samples_are_pruned():
    buf = PoseBuffer(PoseBufferConfig(max_age_ns=1_000 * MS))
    for s in straight_yawing(EPOCH + np.arange(0, 3000, 100) * MS):
        buf.insert(s)
    assert buf.span() == (EPOCH + 1900 * MS, EPOCH + 2900 * MS)
    assert len(buf) == 11
    buf.insert(straight_yawing([EPOCH + 100 * MS])[0])   # arrives too old: pruned at once
    assert len(buf) == 11


def test_extrapolation_within_margin_is_constant_velocity():
    buf = filled(EPOCH + np.arange(0, 200, 20) * MS)          # newest at 180 ms
    after = buf.lookup(EPOCH + 220 * MS)
    before = buf.lookup(EPOCH - 30 * MS)
    assert_allclose(after[0, 3], 30.0 * 0.22, atol=1e-9)
    assert_allclose(yaw_of(after), 0.5 * 0.22, atol=1e-12)
    assert_allclose(before[0, 3], -30.0 * 0.03, atol=1e-9)
    assert_allclose(yaw_of(before), -0.5 * 0.03, atol=1e-12)


def test_lookup_outside_margin_says_how_far():
    buf = PoseBuffer()
    newest = 12_225_678_900
    for s in (newest - 100 * MS, newest):
        buf.insert(PoseSample(s, np.zeros(3), yaw_quat(0.0)))
    with pytest.raises(FrameError, match=r'^lookup at 12\.345678900 s is 0\.120 s after the newest pose at '
                                         r'12\.225678900 s \(margin 0\.050 s\)$'):
        buf.lookup(12_345_678_900)
    with pytest.raises(FrameError, match=r'lookup at 12\.025678900 s is 0\.100 s before the oldest pose at '
                                         r'12\.125678900 s \(margin 0\.050 s\)'):
        buf.lookup_many(np.array([newest, newest - 200 * MS]))
    buf.lookup(newest + 50 * MS)       # exactly at the margin is allowed


def test_empty_buffer():
    buf = PoseBuffer()
    for call in (lambda: buf.lookup(0), buf.span, lambda: buf.velocity(0),
                 lambda: buf.lookup_many(np.array([], dtype=np.int64))):
        with pytest.raises(FrameError, match='^pose buffer is empty$'):
            call()


@pytest.mark.parametrize('quat', [[0.0, 0.0, 0.0, 0.0], [np.nan, 0.0, 0.0, 1.0], [1.0, 0.0, np.inf, 0.0]])
def test_bad_quaternion_is_a_frame_error(quat):
    buf = PoseBuffer()
    with pytest.raises(FrameError, match=r'pose at 1\.500000000 s: quaternion must be finite and non-zero'):
        buf.insert(PoseSample(1_500_000_000, np.zeros(3), np.array(quat)))
    assert len(buf) == 0


def test_non_finite_position_is_a_frame_error():
    with pytest.raises(FrameError, match=r'position must be 3 finite numbers, got \[0\.0, nan, 0\.0\]'):
        PoseBuffer().insert(PoseSample(0, np.array([0.0, np.nan, 0.0]), yaw_quat(0.0)))


def test_unnormalised_quaternion_is_normalised():
    buf = PoseBuffer()
    buf.insert(PoseSample(0, np.zeros(3), 3.0 * yaw_quat(0.4)))
    r = buf.lookup(0)[:3, :3]
    assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert_allclose(yaw_of(buf.lookup(0)), 0.4, atol=1e-12)


def test_velocity_rotates_twist_into_map():
    buf = filled(EPOCH + np.arange(0, 1000, 20) * MS)
    for ms in (10, 500, 977):
        assert_allclose(buf.velocity(EPOCH + ms * MS), [30.0, 0.0, 0.0], atol=1e-6)


def test_velocity_falls_back_to_finite_differences_without_twist():
    buf = PoseBuffer()
    buf.insert(PoseSample(0, np.array([0.0, 0.0, 0.0]), yaw_quat(np.pi / 2)))
    buf.insert(PoseSample(100 * MS, np.array([0.0, 2.0, 0.0]), yaw_quat(np.pi / 2)))
    assert_allclose(buf.velocity(40 * MS), [0.0, 20.0, 0.0], atol=1e-12)
    buf.insert(PoseSample(200 * MS, np.array([0.0, 4.0, 0.0]), yaw_quat(np.pi / 2),
                          linear_velocity=np.array([7.0, 0.0, 0.0])))
    assert_allclose(buf.velocity(200 * MS), [0.0, 7.0, 0.0], atol=1e-12)


def test_single_sample_extrapolates_with_its_twist():
    buf = PoseBuffer()
    buf.insert(PoseSample(EPOCH, np.array([1.0, 2.0, 0.0]), yaw_quat(np.pi / 2),
                          linear_velocity=np.array([10.0, 0.0, 0.0]),
                          angular_velocity=np.array([0.0, 0.0, 0.2])))
    p = buf.lookup(EPOCH + 50 * MS)
    assert_allclose(p[:3, 3], [1.0, 2.5, 0.0], atol=1e-12)
    assert_allclose(yaw_of(p), np.pi / 2 + 0.01, atol=1e-12)
    assert_allclose(buf.velocity(EPOCH), [0.0, 10.0, 0.0], atol=1e-12)


def test_config_validation():
    with pytest.raises(ConfigError, match='max_age_ns must be positive, got 0'):
        PoseBufferConfig(max_age_ns=0)
    with pytest.raises(ConfigError, match='extrapolation_margin_ns must be >= 0, got -1'):
        PoseBufferConfig(extrapolation_margin_ns=-1)


@pytest.mark.parametrize('twist', [True, False])
def test_angular_and_sensor_velocity(twist):
    buf = PoseBuffer()
    for s in straight_yawing(EPOCH + np.arange(0, 1000, 20) * MS):
        # without twist, both velocities come from finite differences
        buf.insert(s if twist else PoseSample(s.stamp_ns, s.position, s.quat_wxyz))
    stamp = EPOCH + 503 * MS
    assert_allclose(buf.angular_velocity(stamp), [0.0, 0.0, 0.5], atol=1e-9)
    yaw = 0.5 * 0.503
    radar2base = np.eye(4)
    radar2base[:3, 3] = (3.6, 0.0, 0.5)
    lever_map = np.array([3.6 * np.cos(yaw), 3.6 * np.sin(yaw), 0.5])
    expected = np.array([30.0, 0.0, 0.0]) + np.cross([0.0, 0.0, 0.5], lever_map)
    assert_allclose(buf.sensor_velocity(stamp, radar2base), expected, atol=1e-6)
    assert np.linalg.norm(expected[:2] - [30.0, 0.0]) == pytest.approx(1.8)


def test_a_remembered_lookup_is_a_copy_and_an_insert_forgets_it():
    buf = PoseBuffer()
    for i, x in enumerate((0.0, 1.0, 3.0)):
        buf.insert(PoseSample(i * 100 * MS, np.array([x, 0.0, 0.0]), yaw_quat(0.0)))
    first = buf.lookup(150 * MS)
    first[0, 3] = 99.0                          # the caller's copy: the buffer's answer stays
    assert_allclose(buf.lookup(150 * MS)[0, 3], 2.0)
    buf.insert(PoseSample(200 * MS, np.array([5.0, 0.0, 0.0]), yaw_quat(0.0)))   # corrects the sample at 0.2 s
    assert_allclose(buf.lookup(150 * MS)[0, 3], 3.0)
    assert_allclose(buf.lookup(150 * MS), buf.lookup_many(np.array([150 * MS]))[0])
    buf.clear()
    with pytest.raises(FrameError, match='empty'):
        buf.lookup(150 * MS)


def test_past_the_newest_pose_its_own_twist_extrapolates_not_the_last_two_poses():
    """Two samples 20 ms apart at 25 m/s, the newest 5 cm ahead of where it was (white odometry noise):
    its twist carries that 5 cm error 20 ms on; the two poses' difference would double it (10 cm)."""
    buf = PoseBuffer()
    for t_ms, x in ((0, 0.0), (20, 0.5 + 0.05)):
        buf.insert(PoseSample(EPOCH + t_ms * MS, np.array([x, 0.0, 0.0]), yaw_quat(0.0),
                              linear_velocity=np.array([25.0, 0.0, 0.0]), angular_velocity=np.zeros(3)))
    assert_allclose(buf.lookup(EPOCH + 40 * MS)[0, 3], 1.0 + 0.05, atol=1e-12)
    assert_allclose(buf.lookup(EPOCH + 10 * MS)[0, 3], 0.275, atol=1e-12)     # between them: interpolated


def test_without_a_twist_past_the_newest_pose_the_last_two_extrapolate():
    buf = filled(EPOCH + np.arange(0, 100, 20) * MS, twist=False, yaw_rate=0.0)     # odometry without twist
    assert_allclose(buf.lookup(EPOCH + 100 * MS)[0, 3], 30.0 * 0.1, atol=1e-9)
