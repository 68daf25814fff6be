"""config/scenarios/platoon_speed_cycle.yaml: the platoon speeds up and slows down together and holds its gaps."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cooperative_fusion.sim.scenario import load_scenario
from cooperative_fusion.sim.world import PHYSICS_DT_NS, _Kinematics

SCENARIO = Path(__file__).resolve().parents[2] / 'config' / 'scenarios' / 'platoon_speed_cycle.yaml'


def test_leader_cycles_at_1_5_mps2_followers_hold_their_gaps_traffic_overtakes():
    scn = load_scenario(SCENARIO)
    assert scn.hazards == () and scn.vehicle_ids == ('v1', 'v2', 'v3', 'v4')
    assert {abs(v.clock.offset_ms) for v in scn.platoon.vehicles} <= {250.0, 300.0}
    assert {abs(v.clock.drift_ppm) for v in scn.platoon.vehicles} == {50.0}
    kin = _Kinematics(scn)
    dt = PHYSICS_DT_NS * 1e-9
    n = kin.n_platoon
    t, v, gaps, traffic_s = [], [], [], []
    for _ in range(int(round(scn.duration_s / dt))):
        t.append(kin.t)
        v.append(kin.v[:n].copy())
        gaps.append((kin.s[:n - 1] - kin.rear[:n - 1]) - (kin.s[1:n] + kin.front[1:n]))
        traffic_s.append(kin.s[n:].copy())
        kin.step()
    t, v, gaps, traffic_s = map(np.array, (t, v, gaps, traffic_s))
    lead_acc = np.diff(v[:, 0]) / dt
    assert abs(lead_acc.max() - 1.5) < 1e-6
    assert abs(lead_acc.min() + 1.5) < 1e-6
    assert v[:, 0].min() == 22.0 and v[:, 0].max() == 28.0
    # Followers brake no harder than the leader, and the gaps stay between 13 and 23 m (IDM, 0.35 s headway).
    acc = np.diff(v, axis=0) / dt
    assert acc[:, 1:].min() > -1.6
    assert 13.0 < gaps.min() and gaps.max() < 23.0
    # In lane 1, t3 overtakes the whole platoon and the truck t2 its rear half.
    lanes = kin.lanes(kin.t)
    assert list(lanes[n:]) == [2, 1, 1]
    assert (traffic_s[0, 1:] < kin.s[n - 1] + 60.0).all()
    assert traffic_s[-1, 2] > kin.s[0] and traffic_s[-1, 1] > kin.s[2]
