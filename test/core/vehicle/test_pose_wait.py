"""core.vehicle.pose_wait: sets wait for odometry on the sensor stamps, not on the holder's clock."""
from __future__ import annotations

import pytest

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.vehicle.pose_wait import PoseWait, PoseWaitConfig, Release

MS = 1_000_000
WAIT = PoseWaitConfig(wait_ns=300 * MS, max_wait_ns=2_000 * MS)


def test_a_clock_that_runs_ahead_of_queued_odometry_does_not_end_the_wait():
    """The flaky live run: the node falls behind its input queues, /clock does not. 0.9 s of node clock pass
    (three times wait_ns) while the odometry the set needs is still queued; then it is handled and covers
    the set. Timed on the node clock the set was given up (set_no_pose); timed on the sensors it waits."""
    gate: PoseWait[str] = PoseWait(WAIT)
    gate.sensor(1_000 * MS)                          # the sweep [1.0 s, 1.1 s]
    gate.push('sweep', horizon_ns=1_100 * MS, now_ns=10_000 * MS)
    assert gate.release(newest_pose_ns=900 * MS, now_ns=10_900 * MS) == []     # the node clock ran on
    assert len(gate) == 1
    (out,) = gate.release(newest_pose_ns=1_120 * MS, now_ns=10_950 * MS)        # the queued odometry, at last
    assert (out.payload, out.reason, out.waited) == ('sweep', Release.COVERED, True)


def test_odometry_that_keeps_coming_keeps_the_set_waiting_and_silent_odometry_lets_it_go():
    gate: PoseWait[str] = PoseWait(WAIT)
    gate.sensor(1_000 * MS)
    gate.push('a', 1_100 * MS, now_ns=0)
    for k in range(1, 6):                          # sensors move 0.5 s on, odometry (late) keeps advancing
        gate.sensor((1_000 + 100 * k) * MS)
        gate.odometry()
        assert gate.release(900 * MS + k * MS, now_ns=k * 100 * MS) == []
    gate.sensor(1_700 * MS)                        # 0.2 s of sensor data since the last odometry: still waiting
    assert gate.release(910 * MS, now_ns=700 * MS) == []
    gate.sensor(1_800 * MS)                        # 0.3 s: odometry is silent, go on with the poses there are
    (out,) = gate.release(910 * MS, now_ns=800 * MS)
    assert (out.payload, out.reason) == ('a', Release.ODOMETRY_SILENT)


def test_a_set_leaves_at_once_when_covered_and_without_waiting_when_wait_is_zero():
    gate: PoseWait[int] = PoseWait(WAIT)
    gate.sensor(0)
    gate.push(1, 100 * MS, now_ns=5)
    (out,) = gate.release(100 * MS, now_ns=5)
    assert (out.reason, out.waited) == (Release.COVERED, False)
    nowait: PoseWait[int] = PoseWait(PoseWaitConfig(wait_ns=0))
    nowait.push(2, 100 * MS, now_ns=5)                # no sensor yet, no odometry: goes on at once
    (out,) = nowait.release(None, now_ns=5)
    assert out.reason is Release.ODOMETRY_SILENT


def test_max_wait_on_the_holder_clock_bounds_the_wait_and_sets_keep_their_order():
    gate: PoseWait[str] = PoseWait(WAIT)
    gate.sensor(1_000 * MS)
    gate.push('first', 1_100 * MS, now_ns=0)
    gate.push('second', 1_050 * MS, now_ns=0)         # covered, but behind a waiting set
    assert gate.release(1_060 * MS, now_ns=1_000 * MS) == []    # sensors stopped: no sensor time passes
    out = gate.release(1_060 * MS, now_ns=2_000 * MS)
    assert [(o.payload, o.reason) for o in out] == [('first', Release.MAX_WAIT), ('second', Release.COVERED)]
    assert len(gate) == 0


def test_config_is_validated():
    with pytest.raises(ConfigError, match=r'wait_ns must be >= 0, got -1'):
        PoseWaitConfig(wait_ns=-1)
    with pytest.raises(ConfigError, match=r'max_wait_ns must be >= 0, got -5'):
        PoseWaitConfig(max_wait_ns=-5)


def test_with_extrapolate_ns_odometry_that_close_to_the_horizon_covers_the_set():
    gate: PoseWait[str] = PoseWait(PoseWaitConfig(wait_ns=300 * MS, max_wait_ns=2_000 * MS, extrapolate_ns=20 * MS))
    gate.sensor(1_000 * MS)
    gate.push('sweep', horizon_ns=1_100 * MS, now_ns=0)
    assert gate.release(newest_pose_ns=1_079 * MS, now_ns=0) == []
    (out,) = gate.release(newest_pose_ns=1_080 * MS, now_ns=0)                  # 20 ms short: extrapolated
    assert (out.payload, out.reason, out.waited) == ('sweep', Release.COVERED, False)
    with pytest.raises(ConfigError, match='extrapolate_ns must be >= 0'):
        PoseWaitConfig(extrapolate_ns=-1)
