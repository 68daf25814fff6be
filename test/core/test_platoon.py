"""The platoon's state at a common-time stamp from hand-made odometry with clock offsets (no ROS)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.drops import DroppedInput
from cooperative_fusion.core.errors import ConfigError, SyncError
from cooperative_fusion.core.platoon import (Degradation, DegradedCause, OdomSample, Platoon, PlatoonConfig)
from cooperative_fusion.core.types import PoseSample

MS = 1_000_000
S = 1_000_000_000
T0 = 100 * S                                   # common time of the first odometry sample
OFFSET = {'v1': 800 * MS, 'v2': -400 * MS}      # vehicle clock - common time
CFG = PlatoonConfig(('v1', 'v2', 'v3'), (4.5, 12.0, 4.5), (1.8, 2.5, 1.8), (1.0, 2.5, 1.0))


def synced(platoon: Platoon, vehicle_ids=('v1', 'v2')) -> None:
    """Three time references per vehicle, before T0."""
    for k in range(3):
        common = T0 - (3 - k) * 100 * MS
        for v in vehicle_ids:
            platoon.add_time_reference(v, common + OFFSET[v], common)


def drive(platoon: Platoon, v: str, x0: float, speeds: list[float], period_ns: int = 100 * MS) -> None:
    """Odometry of ``v`` along +x from ``x0`` (base_link at T0), one sample per period, arriving on time."""
    x = x0
    for k, speed in enumerate(speeds):
        t = T0 + k * period_ns
        platoon.add_odometry(v, OdomSample(t + OFFSET.get(v, 0), x, 0.5, 0.0, speed), t)
        x += speed * period_ns / S


def test_state_maps_vehicle_stamps_through_the_clock_and_extrapolates_to_the_box_centre():
    platoon = Platoon(CFG)
    synced(platoon)
    drive(platoon, 'v1', 50.0, [20.0, 21.0, 22.0, 23.0, 24.0])      # +10 m/s^2, last sample at T0 + 0.4 s
    drive(platoon, 'v2', 30.0, [25.0] * 5)
    stamp = T0 + 450 * MS
    snap = platoon.state_at(stamp, stamp)
    assert snap.ids == ('v1', 'v2') and snap.stamp_ns == stamp
    # v1's last sample: x = 50 + 0.1 * (20 + 21 + 22 + 23) = 58.6 at T0 + 0.4 s (common), 24 m/s;
    # 50 ms later and 0.5 * 4.5 - 1.0 m ahead of base_link.
    assert snap.ages_ns == {'v1': 50 * MS, 'v2': 50 * MS}
    assert_allclose(snap.x, [58.6 + 24.0 * 0.05 + 1.25, 40.0 + 25.0 * 0.05 + 3.5])
    assert_allclose(snap.y, [0.5, 0.5])
    assert_allclose(snap.speed, [24.0, 25.0])
    # speed change over the newest sample at least accel_window (0.3 s) older: (24 - 21) / 0.3 s
    assert_allclose(snap.accel, [10.0, 0.0])
    assert_allclose(snap.length, [4.5, 12.0])
    assert_allclose(snap.width, [1.8, 2.5])
    # v3 never reported: left out, and said so
    assert snap.degraded == (Degradation('v3', DegradedCause.NO_ODOMETRY),)
    assert [str(d) for d in snap.degraded] == ['v3: no odometry']


def test_heading_and_a_sample_after_the_stamp_extrapolate_backwards():
    platoon = Platoon(CFG)
    synced(platoon, ('v1',))
    yaw = math.pi / 2                                                  # driving along +y
    platoon.add_odometry('v1', OdomSample(T0 + OFFSET['v1'], 10.0, 20.0, yaw, 10.0), T0)
    snap = platoon.state_at(T0 - 100 * MS, T0)
    assert snap.ages_ns['v1'] == -100 * MS
    assert_allclose([snap.x[0], snap.y[0], snap.heading[0]], [10.0, 20.0 - 1.0 + 1.25, yaw], atol=1e-12)


def test_without_a_time_reference_vehicle_stamps_are_taken_as_common_time():
    platoon = Platoon(CFG)
    platoon.add_odometry('v1', OdomSample(T0 + OFFSET['v1'], 0.0, 0.0, 0.0, 20.0), T0)
    snap = platoon.state_at(T0 + OFFSET['v1'], T0)
    assert_allclose(snap.x, [1.25])                                    # age 0: as if the clock were common
    assert [str(d) for d in snap.degraded] == ['v1: clock unknown (no time reference)', 'v2: no odometry',
                                              'v3: no odometry']
    assert not platoon.vehicles['v1'].clock_known


def test_stale_and_too_old_odometry_are_degraded_and_too_old_is_left_out():
    platoon = Platoon(CFG)
    synced(platoon)
    drive(platoon, 'v1', 0.0, [20.0])
    drive(platoon, 'v2', 0.0, [20.0])
    platoon.add_odometry('v2', OdomSample(T0 + 4 * S + OFFSET['v2'], 80.0, 0.0, 0.0, 20.0), T0 + 4 * S)
    snap = platoon.state_at(T0 + 5 * S + 600 * MS, T0 + 5 * S + 600 * MS)
    # v1: 5.6 s old (> odom_max_age 5 s): left out; v2: 1.6 s old (> stale 0.5 s): kept, stale.
    assert snap.ids == ('v2',)
    assert snap.degraded[:2] == (Degradation('v1', DegradedCause.ODOMETRY_TOO_OLD, 5.6),
                                 Degradation('v2', DegradedCause.ODOMETRY_STALE, 1.6))
    assert [str(d) for d in snap.degraded] == ['v1: odometry 5.60 s old, left out', 'v2: odometry stale (1.60 s)',
                                              'v3: no odometry']
    assert snap.ages_ns == {'v1': 5600 * MS, 'v2': 1600 * MS}
    assert_allclose(snap.x, [80.0 + 20.0 * 1.6 + 3.5])


def test_an_empty_platoon_has_empty_arrays():
    snap = Platoon(CFG).state_at(T0, T0)
    assert snap.ids == () and snap.x.shape == (0,) and snap.accel.shape == (0,) and snap.ages_ns == {}
    assert len(snap.degraded) == 3


def test_future_out_of_order_and_outlier_inputs_are_refused_by_cause():
    platoon = Platoon(CFG)
    synced(platoon)
    drive(platoon, 'v1', 0.0, [20.0, 20.0])
    with pytest.raises(DroppedInput, match=r'v1 odometry is 3 s ahead of the node clock \(tolerance 2 s\)') as e:
        platoon.add_odometry('v1', OdomSample(T0 + 3 * S + OFFSET['v1'], 0.0, 0.0, 0.0, 20.0), T0)
    assert e.value.cause == 'future'
    with pytest.raises(DroppedInput, match=r'not newer than') as e:
        platoon.add_odometry('v1', OdomSample(T0 + 100 * MS + OFFSET['v1'], 0.0, 0.0, 0.0, 20.0), T0 + S)
    assert e.value.cause == 'out_of_order'
    assert len(platoon.vehicles['v1'].odom) == 2 and platoon.received == 2
    assert platoon.vehicles['v1'].link.received == 3           # the out-of-order one still arrived
    with pytest.raises(DroppedInput, match=r'off the clock fit') as e:
        platoon.add_time_reference('v1', T0 + OFFSET['v1'], T0 + 10 * S)
    assert e.value.cause == 'outlier'
    with pytest.raises(SyncError, match='non-negative integer'):
        platoon.add_time_reference('v1', -1, T0)


def test_late_and_lossy_odometry_links_are_degraded():
    platoon = Platoon(CFG)
    synced(platoon)
    period = 20 * MS
    for k in range(60):
        t = T0 + k * period
        platoon.add_odometry('v1', OdomSample(t + OFFSET['v1'], 0.0, 0.0, 0.0, 20.0), t)
        if k % 4 != 1:                                                 # a quarter lost, 350 ms late
            platoon.add_odometry('v2', OdomSample(t + OFFSET['v2'], 0.0, 0.0, 0.0, 20.0), t + 350 * MS)
    now = T0 + 60 * period + 350 * MS
    assert platoon.link_degraded('v1', now) == []
    got = platoon.link_degraded('v2', now)
    assert [d.cause for d in got] == [DegradedCause.ODOMETRY_LATE, DegradedCause.ODOMETRY_MISSING]
    assert got[0].value == pytest.approx(0.35) and got[1].value == pytest.approx(0.25, abs=0.02)
    assert [str(d) for d in got] == ['v2: odometry late 0.35 s', 'v2: 25 % of odometry missing']


def test_forget_streams_keeps_the_clock_fit():
    platoon = Platoon(CFG)
    synced(platoon)
    drive(platoon, 'v1', 0.0, [20.0, 20.0])
    platoon.forget_streams()
    assert not platoon.vehicles['v1'].odom and platoon.vehicles['v1'].link.received == 0
    assert platoon.vehicles['v1'].clock.n_samples == 3
    platoon.add_odometry('v1', OdomSample(T0 + OFFSET['v1'], 0.0, 0.0, 0.0, 20.0), T0)   # older: fine now


def test_odom_sample_from_a_pose():
    yaw = 0.3
    pose = PoseSample(7, np.array([1.0, 2.0, 3.0]), np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]),
                      linear_velocity=np.array([12.5, 0.1, 0.0]))
    s = OdomSample.from_pose(pose)
    assert s.stamp_vehicle_ns == 7 and (s.x, s.y, s.speed) == (1.0, 2.0, 12.5)
    assert s.yaw == pytest.approx(yaw)


def test_base_to_centre():
    assert CFG.base_to_centre_m('v2') == pytest.approx(3.5)


def test_config_needs_one_size_per_vehicle():
    with pytest.raises(ConfigError, match=r"widths_m must hold one value per vehicle \['v1', 'v2'\], got \[1.8\]"):
        PlatoonConfig(('v1', 'v2'), (4.5, 4.5), (1.8,), (1.0, 1.0))
