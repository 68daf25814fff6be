"""A platoon follower with its own speed_profile (scripted instead of IDM), and truck_brakes.yaml built on it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.sim.scenario import load_scenario, scenario_from_dict
from cooperative_fusion.sim.world import PHYSICS_DT_NS, _Kinematics

SCENARIOS = Path(__file__).resolve().parents[2] / 'config' / 'scenarios'


def _drive(scn, seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, s, v) of every mover, sampled every physics step."""
    kin = _Kinematics(scn)
    t, s, v = [], [], []
    for _ in range(int(round(seconds / (PHYSICS_DT_NS * 1e-9)))):
        t.append(kin.t), s.append(kin.s.copy()), v.append(kin.v.copy())
        kin.step()
    return np.array(t), np.array(s), np.array(v)


def test_truck_brakes_scenario_scripts_the_truck_at_6_mps2_and_its_followers_stop_short():
    scn = load_scenario(SCENARIOS / 'truck_brakes.yaml')
    assert scn.vehicle_ids == ('v1', 'v2', 'v3', 'v4') and scn.hazards == ()
    truck = scn.platoon.vehicles[1]
    assert truck.speed_profile == ((0.0, 25.0), (5.5, 25.0), (8.0, 10.0), (12.0, 10.0))
    assert all(v.speed_profile is None for v in scn.platoon.vehicles[2:])
    t, s, v = _drive(scn, scn.duration_s)
    acc = np.diff(v[:, 1]) / np.diff(t)
    braking = (t[1:] > 5.52) & (t[1:] < 7.98)
    assert np.allclose(acc[braking], -6.0) and np.allclose(acc[t[1:] < 5.49], 0.0)
    assert v[-1, 1] == pytest.approx(10.0) and v[-1, 0] == pytest.approx(25.0)
    # v3 and v4 (IDM) brake behind the truck and keep clear of it; nobody touches c1, which merged in front of it.
    kin = _Kinematics(scn)
    front, rear = kin.front, kin.rear
    gap_truck_c1 = (s[:, 4] - rear[4]) - (s[:, 1] + front[1])
    gap_v3_truck = (s[:, 1] - rear[1]) - (s[:, 2] + front[2])
    gap_v4_v3 = (s[:, 2] - rear[2]) - (s[:, 3] + front[3])
    assert gap_truck_c1.min() == pytest.approx(9.75, abs=0.1)
    assert gap_v3_truck.min() > 5.0 and gap_v4_v3.min() > 5.0
    assert v[:, 2].min() > 9.0


def test_a_follower_profile_is_validated_and_refused_for_the_leader():
    raw = yaml.safe_load((SCENARIOS / 'truck_brakes.yaml').read_text())
    raw['platoon']['vehicles'][0]['speed_profile'] = [[0.0, 25.0]]
    with pytest.raises(ConfigError, match=r'vehicles\[0\]\.speed_profile.*no per-vehicle profile for the leader'):
        scenario_from_dict(raw, 'bad.yaml')
    raw = yaml.safe_load((SCENARIOS / 'truck_brakes.yaml').read_text())
    raw['platoon']['vehicles'][1]['speed_profile'] = [[0.0, 25.0], [0.0, 20.0]]
    with pytest.raises(ConfigError, match=r'vehicles\[1\]\.speed_profile\[1\].*increasing'):
        scenario_from_dict(raw, 'bad.yaml')
