"""core.vehicle.vehicle_core: the output stamp offset is at most about half the lidar's measured sweep period."""
from __future__ import annotations

import pytest

from test_vehicle_core import MS, T0, feed_odometry, make_core, wall


@pytest.mark.parametrize('period_ms, offset_ms, expected_ms', [
    (100, 50, [50, 50, 50, 50]),          # 10 Hz, the shared default: as configured
    (50, 50, [50, 25, 25, 25]),           # 20 Hz with the 10 Hz offset: half its sweep once measured
    (50, 25, [25, 25, 25, 25]),           # 20 Hz, set right
    (50, 0, [0, 0, 0, 0]),                # an instantaneous sweep (Gazebo): 0
    (300, 50, [50, 50, 50, 50]),          # no sweep period in 20-200 ms: as configured
])
def test_evidence_is_stamped_half_a_measured_sweep_in(period_ms, offset_ms, expected_ms):
    core = make_core(output_stamp_offset_ns=offset_ms * MS)
    feed_odometry(core, T0 - 500 * MS, T0 + 4 * period_ms * MS)
    stamps = []
    for k in range(4):
        t = T0 + k * period_ms * MS
        step = core.sensor('lidar', wall(core, t), now_ns=t)
        stamps += [e.stamp_ns - t for e in step.evidence]
    assert stamps == [e * MS for e in expected_ms]
