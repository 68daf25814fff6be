from __future__ import annotations

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from numpy.testing import assert_allclose
from rclpy.serialization import deserialize_message, serialize_message

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.ros.odometry import covariance_is_psd, odometry_to_pose, pose_to_odometry


def _pose() -> PoseSample:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    q = rng.normal(size=4)
    return PoseSample(stamp_ns=1_700_000_000_000_000_001, position=np.array([10.0, -3.0, 0.5]),
                      quat_wxyz=q / np.linalg.norm(q), covariance=a @ a.T,
                      linear_velocity=np.array([20.0, 0.1, 0.0]), angular_velocity=np.array([0.0, 0.0, 0.05]))


def test_round_trip():
    pose = _pose()
    msg = deserialize_message(serialize_message(pose_to_odometry(pose, 'map', 'v1/base_link')), Odometry)
    assert (msg.header.frame_id, msg.child_frame_id) == ('map', 'v1/base_link')
    o = msg.pose.pose.orientation
    assert_allclose([o.x, o.y, o.z, o.w], np.roll(pose.quat_wxyz, -1))  # ROS order on the wire
    back = odometry_to_pose(msg)
    assert back.stamp_ns == pose.stamp_ns
    for name in ('position', 'quat_wxyz', 'covariance', 'linear_velocity', 'angular_velocity'):
        assert_allclose(getattr(back, name), getattr(pose, name), err_msg=name)


def test_quaternion_normalised_and_reordered():
    msg = Odometry()
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = 0.0, 0.0, 2.0, 2.0
    assert_allclose(odometry_to_pose(msg).quat_wxyz, [np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)])


def test_covariance_layout_row_major():
    msg = Odometry()
    cov = np.zeros(36)
    cov[1] = 7.0   # row 0 (x), column 1 (y)
    msg.pose.covariance = cov
    assert odometry_to_pose(msg).covariance[0, 1] == 7.0


@pytest.mark.parametrize('field, match', [
    ('position', r'odometry position is not finite: \[nan, 0.0, 0.0\]'),
    ('orientation', r'odometry orientation is not finite'),
    ('covariance', r'odometry covariance is not finite'),
    ('twist', r'odometry twist.linear is not finite'),
    ('zero_quat', r'zero quaternion \(x, y, z, w\) = \(0.0, 0.0, 0.0, 0.0\)'),
])
def test_bad_odometry_raises(field, match):
    msg = Odometry()
    if field == 'position':
        msg.pose.pose.position.x = float('nan')
    elif field == 'orientation':
        msg.pose.pose.orientation.w = float('inf')
    elif field == 'covariance':
        cov = np.zeros(36)
        cov[35] = np.nan
        msg.pose.covariance = cov
    elif field == 'twist':
        msg.twist.twist.linear.y = float('inf')
    else:
        msg.pose.pose.orientation.w = 0.0
    with pytest.raises(MessageFormatError, match=match):
        odometry_to_pose(msg)


def test_covariance_is_psd():
    a = np.random.default_rng(0).normal(size=(6, 6))
    assert covariance_is_psd(a @ a.T)
    assert covariance_is_psd(np.zeros((6, 6)))
    assert covariance_is_psd(np.diag([0.1, 0.1, 1e6, 1e6, 1e6, 0.01]))
    assert not covariance_is_psd(np.diag([1.0, 1.0, 1.0, 1.0, 1.0, -0.1]))
    nonsym = np.eye(6)
    nonsym[0, 1] = 0.5
    assert not covariance_is_psd(nonsym)
    bad = np.eye(6)
    bad[2, 2] = np.nan
    assert not covariance_is_psd(bad)
    assert not covariance_is_psd(np.eye(3)[:2])


def _numpy_covariance_is_psd(cov: np.ndarray, tol: float = 1e-9) -> bool:
    """The check as it was, in numpy for any size (the reference of the small-matrix path and the diagonal
    shortcut)."""
    largest = float(np.abs(cov).max(initial=0.0))
    if not np.isfinite(largest):
        return False
    scale = tol * max(1.0, largest)
    if float(np.abs(cov - cov.T).max(initial=0.0)) > scale:
        return False
    if np.count_nonzero(cov) == np.count_nonzero(cov.diagonal()):
        return min(float(cov.diagonal().min(initial=0.0)), 0.0) >= -scale
    return bool(np.linalg.eigvalsh(0.5 * (cov + cov.T)).min(initial=0.0) >= -scale)


def test_covariances_are_judged_as_numpy_judged_them():
    rng = np.random.default_rng(1)
    answers = set()
    with np.errstate(all='ignore'):
        for _ in range(5000):
            n = int(rng.integers(0, 8))     # up to 3: plain floats; above: numpy, diagonal first
            a = rng.normal(size=(n, n)) * 10.0 ** int(rng.integers(-12, 300))
            kind = int(rng.integers(0, 5))
            cov = [a @ a.T, a, np.diag(rng.normal(size=n)), (a + a.T) / 2 - np.eye(n) * abs(a).max(initial=0.0),
                   np.diag(np.abs(rng.normal(size=n)))][kind]
            if n > 1 and rng.random() < 0.3:
                cov[0, 1] = rng.choice([-0.0, 1e-12, 1e-8, np.nan, np.inf, 1.7e308])
            expected = _numpy_covariance_is_psd(cov)
            assert covariance_is_psd(cov) == expected, cov
            answers.add(expected)
    assert answers == {True, False}


def test_huge_finite_values_are_not_taken_for_non_finite_ones():
    # Their sum overflows (the cheap screen trips); the field checks then find every value finite.
    # No warning either (numpy would warn of the overflow; pytest.ini may turn warnings into errors).
    msg = Odometry()
    msg.pose.pose.position.x = msg.pose.pose.position.y = 1e308
    msg.pose.pose.orientation.w = 1.0
    cov = np.zeros(36)
    cov[0] = cov[7] = 1.0
    msg.pose.covariance = cov
    pose = odometry_to_pose(msg)
    assert pose.position.tolist() == [1e308, 1e308, 0.0]
    assert pose.covariance[0, 0] == pose.covariance[1, 1] == 1.0
    assert pose.quat_wxyz.tolist() == [1.0, 0.0, 0.0, 0.0]
