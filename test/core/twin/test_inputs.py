"""The twin's inputs without ROS: platoon state for the core, late radar links, radar targets at a grid stamp."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.drops import DroppedInput
from cooperative_fusion.core.platoon import OdomSample, PlatoonConfig
from cooperative_fusion.core.twin.inputs import RadarInputConfig, TwinInputs
from cooperative_fusion.core.twin.prediction import PlatoonState

MS = 1_000_000
S = 1_000_000_000
T0 = 100 * S
PLATOON = PlatoonConfig(('v1', 'v2', 'v3'), (4.5, 12.0, 4.5), (1.8, 2.5, 1.8), (1.0, 2.5, 1.0))


def inputs(**radar) -> TwinInputs:
    return TwinInputs(PLATOON, RadarInputConfig(**radar))


def targets(twin: TwinInputs, v: str, stamp_ns: int, xyv, now_ns: int | None = None) -> None:
    xyv = np.asarray(xyv, dtype=np.float64)
    twin.add_radar(v, stamp_ns, xyv[:, 0], xyv[:, 1], xyv[:, 2], stamp_ns if now_ns is None else now_ns)


def test_late_radar_targets_are_moved_to_the_grid_stamp():
    """On a slow link (targets 0.35 s before the grid, beyond max_age 0.2 s) v2's radar targets are moved
    along the road at their speed to the grid stamp, not dropped; within 0.2 s they are used as they are;
    beyond max_late (1 s) they are left out."""
    twin = inputs()
    stamp = T0
    # v2 at x 50 driving 25 m/s; it saw a car 40 m ahead at 20 m/s (radial ~20) and a stopped car at 80 m.
    platoon = PlatoonState(('v2', 'v3'), np.array([50.0, 27.5]), np.zeros(2), np.full(2, 25.0), np.zeros(2),
                           np.array([12.0, 4.5]), np.array([2.5, 1.8]), np.arange(2))
    seen_from = np.array([50.0 - 25.0 * 0.35, 0.0])
    targets(twin, 'v2', stamp - 350 * MS, [[seen_from[0] + 40.0, 0.0, 20.0], [seen_from[0] + 80.0, 1.0, 0.0]])
    targets(twin, 'v3', stamp - 100 * MS, [[60.0, 0.0, 20.0]])
    targets(twin, 'v1', stamp, [[70.0, 0.0, 5.0]])                   # v1 is not in the platoon state
    xyv, sensor = twin.radar_at(stamp, platoon)
    assert_allclose(xyv[:, :2], [[seen_from[0] + 40.0 + 20.0 * 0.35, 0.0], [seen_from[0] + 80.0, 1.0],
                                 [60.0, 0.0]], atol=1e-6)
    # Each sensor position moves with its target (line of sight as measured): where v2 was at its stamp.
    assert_allclose(sensor[:2], [seen_from + [20.0 * 0.35, 0.0], seen_from], atol=1e-6)
    assert_allclose(sensor[2], [27.5, 0.0])
    twin.radar['v2'].stamp_ns = stamp - 1_500 * MS                       # 1.5 s: beyond max_late
    xyv, _ = twin.radar_at(stamp, platoon)
    assert_allclose(xyv, [[60.0, 0.0, 20.0]])
    twin.radar['v3'].stamp_ns = None
    assert twin.radar_at(stamp, platoon) == (None, None)


def test_radar_from_the_future_or_out_of_order_is_refused():
    twin = inputs()
    targets(twin, 'v1', T0, [[1.0, 2.0, 3.0]])
    with pytest.raises(DroppedInput, match=r'v1 radar targets are 2.5 s ahead of the node clock') as e:
        targets(twin, 'v1', T0 + 2_500 * MS, [[1.0, 2.0, 3.0]], now_ns=T0)
    assert e.value.cause == 'future'
    with pytest.raises(DroppedInput, match=r'older than the latest') as e:
        targets(twin, 'v1', T0 - MS, [[9.0, 9.0, 9.0]])
    assert e.value.cause == 'out_of_order'
    assert twin.radar['v1'].stamp_ns == T0 and twin.radar['v1'].link.received == 2
    assert_allclose(twin.radar['v1'].xyv, [[1.0, 2.0, 3.0]])


@pytest.mark.parametrize('late_ms, note', [(300, ' (beyond radar_max_age_s: moved to the grid time)'),
                                           (1_200, ' (beyond radar_max_late_s: unused)')])
def test_platoon_at_gives_box_centres_and_names_each_vehicles_degraded_inputs(late_ms, note):
    twin = inputs()
    for k in range(10):
        t = T0 + k * 50 * MS
        twin.platoon.add_odometry('v1', OdomSample(t, 40.0 + 1.25 * k, 0.0, 0.0, 25.0), t)
        twin.platoon.add_odometry('v2', OdomSample(t, 20.0 + 1.25 * k, 0.0, 0.0, 25.0), t)
        targets(twin, 'v2', t, [[60.0, 0.0, 20.0]], now_ns=t + late_ms * MS)
    stamp = T0 + 450 * MS
    state = twin.platoon_at(stamp, stamp + late_ms * MS)
    assert state.ids == ('v1', 'v2') and state.order.tolist() == [0, 1]
    assert_allclose(state.x, [40.0 + 1.25 * 9 + 1.25, 20.0 + 1.25 * 9 + 3.5])
    assert twin.odom_ages_ns == {'v1': 0, 'v2': 0, 'v3': None}
    assert [str(d) for d in twin.degraded] == [
        'v1: clock unknown (no time reference)', 'v2: clock unknown (no time reference)',
        f'v2: radar late {late_ms / 1000:.2f} s{note}', 'v3: no odometry']


def test_radar_lateness_is_not_degraded_when_radar_is_not_used():
    twin = inputs(use=False)
    for k in range(10):
        t = T0 + k * 50 * MS
        targets(twin, 'v2', t, [[60.0, 0.0, 20.0]], now_ns=t + 500 * MS)
    assert twin.link_degraded('v2', T0 + S) == []
    assert [str(d) for d in inputs().link_degraded('v2', T0)] == []


def test_forget_streams_drops_odometry_and_radar_but_keeps_clocks():
    twin = inputs()
    twin.platoon.add_time_reference('v1', T0 + 5 * MS, T0)
    twin.platoon.add_odometry('v1', OdomSample(T0, 0.0, 0.0, 0.0, 1.0), T0)
    targets(twin, 'v1', T0, [[1.0, 2.0, 3.0]])
    twin.forget_streams()
    assert not twin.platoon.vehicles['v1'].odom and twin.radar['v1'].stamp_ns is None
    assert twin.clock_known('v1') and not twin.clock_known('v2')
