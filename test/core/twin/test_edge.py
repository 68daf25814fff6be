"""EdgeTwin, the twin node's work without ROS: two vehicles closing on a stopped car."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.drops import DroppedInput
from cooperative_fusion.core.errors import SyncError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.platoon import OdomSample
from cooperative_fusion.core.twin.config import config_from_params, with_defaults
from cooperative_fusion.core.twin.conflicts import ConflictLevel
from cooperative_fusion.core.twin.edge import EdgeTwin, GridAction

MS = 1_000_000
S = 1_000_000_000
T0 = 50 * S
PERIOD = 100 * MS
SPEC = GridSpec(0.0, -8.0, 0.4, 250, 40)
OFFSET = {'v1': 800 * MS, 'v2': -400 * MS}
X0 = {'v1': 20.0, 'v2': 0.0}
SPEED, CAR_X, CAR_L, CAR_W = 25.0, 85.0, 4.4, 1.6
NAMES = {'frames.map': 'map', 'topics.grid': '/g', 'topics.odom': '/{v}/o', 'topics.time_reference': '/{v}/t',
         'topics.radar_targets': '/{v}/r', 'topics.predicted_grid': '/p', 'topics.warnings': '/w',
         'topics.advisory': '/{v}/a', 'topics.markers': '/m'}


def make_twin() -> EdgeTwin:
    return EdgeTwin(config_from_params(with_defaults({
        **NAMES, 'vehicles': ['v1', 'v2'], 'vehicle_lengths_m': [4.5, 4.5], 'vehicle_widths_m': [1.8, 1.8],
        'vehicle_rear_overhangs_m': [1.0, 1.0], 'horizon_s': 3.0, 'output_horizons_s': [0.5, 1.0],
        'conflicts.min_track_hits': 3})))


def cells() -> np.ndarray:
    out = np.zeros(SPEC.shape, np.int8)
    xs, ys = SPEC.cell_centers()
    out[np.ix_(np.abs(ys) <= CAR_W / 2, np.abs(xs - CAR_X) <= CAR_L / 2)] = 100
    return out


def sync(twin: EdgeTwin) -> None:
    for k in range(3):
        common = T0 - (3 - k) * PERIOD
        for v in OFFSET:
            twin.add_time_reference(v, common + OFFSET[v], common)


def odometry(twin: EdgeTwin, t: int) -> None:
    for v in OFFSET:
        x = X0[v] + SPEED * (t - T0) / S
        twin.add_odometry(v, OdomSample(t + OFFSET[v], x, 0.0, 0.0, SPEED), t + 5 * MS)


def run(twin: EdgeTwin, n: int) -> list:
    outs = []
    for k in range(n):
        t = T0 + k * PERIOD
        odometry(twin, t)
        action, back = twin.on_grid(SPEC, cells(), t, t + 30 * MS)
        assert (action, back) == (GridAction.CYCLE, None)
        outs.append(twin.cycle(t + 30 * MS))
    return outs


def test_cycles_warn_both_vehicles_and_advise_base_link_poses():
    twin = make_twin()
    sync(twin)
    outs = run(twin, 5)
    assert twin.cycles == 5 and [len(o.warnings) for o in outs] == [0, 0, 2, 2, 2]   # min_track_hits 3
    out, t = outs[-1], T0 + 4 * PERIOD
    assert [(g.horizon_s, g.target_ns) for g in out.predicted] == [(0.5, t + 500 * MS), (1.0, t + S)]
    assert all(g.percent.dtype == np.int8 and g.percent.shape == SPEC.shape for g in out.predicted)
    assert out.spec == SPEC and [w.vehicle_id for w in out.warnings] == ['v1', 'v2']
    v1 = out.warnings[0]
    front = X0['v1'] + SPEED * 0.4 + 3.5
    assert v1.level == ConflictLevel.ERROR and v1.values['distance_m'] == pytest.approx(CAR_X - CAR_L / 2 - front,
                                                                                          abs=0.5)
    assert v1.message.startswith(f"track_{v1.values['track_id']} ahead: gap ")
    adv = out.advisories['v1']
    # core advises box centres; the vehicle gets base_link poses, 1.25 m behind, starting where its odometry is
    assert_allclose(adv.x[0], X0['v1'] + SPEED * 0.4, atol=0.05)
    assert_allclose(adv.x - out.result.advisories['v1'].x, -1.25)
    assert twin.inputs.degraded == [] and twin.degraded(t) == []


def test_throttled_held_and_refused_grids_do_not_cycle():
    twin = make_twin()
    sync(twin)
    run(twin, 1)
    assert twin.on_grid(SPEC, cells(), T0 + 50 * MS, T0 + 60 * MS) == (GridAction.THROTTLED, None)
    assert twin.on_grid(SPEC, cells(), T0 + PERIOD, T0 + PERIOD) == (GridAction.HELD, None)   # no odometry since
    with pytest.raises(DroppedInput, match='not newer than the last cycle'):
        twin.on_grid(SPEC, cells(), T0, T0 + PERIOD)
    assert (twin.cycles, twin.cycles_throttled, twin.cycles_held, twin.mirror.received) == (1, 1, 1, 3)
    odometry(twin, T0 + 2 * PERIOD)
    assert twin.on_grid(SPEC, cells(), T0 + 2 * PERIOD, T0 + 2 * PERIOD)[0] is GridAction.CYCLE


def test_no_warnings_while_a_clock_is_unknown():
    twin = make_twin()
    outs = run(twin, 5)
    assert len(outs[-1].result.tracks) == 1
    assert all(o.warnings == [] and o.advisories == {} for o in outs) and twin.warnings_withheld == 3
    assert twin.degraded(T0) == ['v1: clock unknown (no time reference)', 'v2: clock unknown (no time reference)']


def test_three_old_grids_restart_the_tracker_and_forget_odometry():
    twin = make_twin()
    sync(twin)
    run(twin, 3)
    now = T0 + 3 * PERIOD
    old = T0 - 20 * S
    for k in range(2):
        with pytest.raises(DroppedInput, match='before the latest'):
            twin.on_grid(SPEC, cells(), old + k * PERIOD, now)
    action, back = twin.on_grid(SPEC, cells(), old + 2 * PERIOD, now)
    assert action is GridAction.CYCLE and back == T0 + 2 * PERIOD - (old + 2 * PERIOD)
    assert twin.restarts == 1 and twin.mirror.stamp_ns == old + 2 * PERIOD
    assert not twin.inputs.platoon.vehicles['v1'].odom and twin.inputs.clock_known('v1')
    out = twin.cycle(now)                         # no odometry: an empty platoon, a new tracker
    assert out.result.tracks == [] and out.result.rollout.platoon.ids == ()


def test_cycle_before_any_grid_is_a_sync_error():
    with pytest.raises(SyncError, match='no grid mirrored yet'):
        make_twin().cycle(T0)


def test_health_values():
    twin = make_twin()
    sync(twin)
    run(twin, 3)
    values = twin.health(T0 + 2 * PERIOD + 30 * MS, 10.0, {'cycle_ms.p50': 1.0})
    assert values['grid.received'] == 3 and values['grid.rate_hz'] == 10.0 and values['cycle_ms.p50'] == 1.0
    assert values['grid.age_s'] == pytest.approx(0.03) and values['grid.stale'] is False
    assert values['grid.period_s'] == pytest.approx(0.1) and values['cycles'] == 3 and values['tracks'] == 1
    assert values['vehicle.v1.odom_age_s'] == pytest.approx(-0.0) and values['vehicle.v1.clock_samples'] == 3
    assert values['vehicle.v2.clock_offset_ms'] == pytest.approx(400.0)
    assert values['twin_speedup'] > 0 and values['degraded'] == 'none'
    assert values['self_check.count_0.5s'] == 0 and values['self_check.missed'] == 0
    # The platoon drives along map x: the road is the map x axis itself.
    assert values['road.map_x'] is True and values['road.heading_deg'] == 0.0
    assert values['road.curvature_per_m'] == 0.0 and values['road.rejected_samples'] == 0
