"""The scenarios of issue 13's set (platoon_mixed, dense_traffic, cut_in_close): each loads, simulates 1 s
with every sensor at its configured rate, and has in its truth what its header claims."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.app.platoon import load_platoon_config
from cooperative_fusion.sim.events import EventKind
from cooperative_fusion.sim.gazebo import vehicle_extrinsics
from cooperative_fusion.sim.scenario import HazardKind, load_scenario, scenario_platoon_config
from cooperative_fusion.sim.world import PHYSICS_DT_NS, Simulation, _Kinematics, sensor_extrinsics

SCENARIOS = Path(__file__).resolve().parents[2] / 'config' / 'scenarios'
NEW = ('platoon_mixed', 'dense_traffic', 'cut_in_close')


def _one_second(name: str) -> tuple[Counter, dict[str, dict]]:
    """Messages per topic and the truth boxes by id (first /truth/objects) of a 1 s simulation."""
    counts: Counter = Counter()
    boxes: dict[str, dict] = {}
    for ev in Simulation(load_scenario(SCENARIOS / f'{name}.yaml')).events(duration_s=1.0):
        counts[ev.topic] += 1
        if ev.kind is EventKind.TRUTH_OBJECTS and not boxes:
            boxes = {b['id']: b for b in ev.data['boxes']}
    return counts, boxes


@pytest.fixture(scope='module')
def simulated() -> dict[str, tuple[Counter, dict[str, dict]]]:
    return {name: _one_second(name) for name in NEW}


def _run(name: str):
    """(scenario, kinematics states every 0.1 s: list of (t, s, v, lanes))."""
    scn = load_scenario(SCENARIOS / f'{name}.yaml')
    kin = _Kinematics(scn)
    states = []
    steps_per_tick = int(round(0.1e9 / PHYSICS_DT_NS))
    for k in range(int(round(scn.duration_s / (PHYSICS_DT_NS * 1e-9))) + 1):
        if k % steps_per_tick == 0:
            states.append((kin.t, kin.s.copy(), kin.v.copy(), kin.lanes(kin.t).copy()))
        kin.step()
    return scn, kin, states


@pytest.mark.parametrize('name', NEW)
def test_new_scenario_simulates_every_sensor_at_its_rate(simulated, name):
    scn = load_scenario(SCENARIOS / f'{name}.yaml')
    assert scn.name == name and scn.duration_s <= 20.0
    counts, boxes = simulated[name]
    for v in scn.platoon.vehicles:
        for topic, rate in ((f'/{v.id}/lidar/points', v.sensors.lidar.rate_hz),
                            (f'/{v.id}/radar/points', v.sensors.radar.rate_hz),
                            (f'/{v.id}/camera/depth/image', v.sensors.camera.rate_hz)):
            assert abs(counts[topic] - rate) <= 1, (topic, counts[topic], rate)
        assert counts[f'/truth/odom/{v.id}'] > 0
    # every platoon member, traffic vehicle and hazard is a truth box
    ids = set(scn.vehicle_ids) | {t.id for t in scn.traffic} | {h.id for h in scn.hazards}
    assert set(boxes) == ids


def test_platoon_mixed_is_another_platoon_with_a_hidden_hazard_and_low_debris(simulated):
    scn = load_scenario(SCENARIOS / 'platoon_mixed.yaml')
    assert scn.vehicle_ids == ('lead', 'van', 'car_a', 'car_b', 'hgv', 'tail')
    assert [v.type.value for v in scn.platoon.vehicles] == ['car', 'truck', 'car', 'car', 'truck', 'car']
    # the van behind the leader is taller than the leader's lidar and the stopped car: it hides the hazard
    van = scn.platoon.vehicles[1].dimensions
    assert van.height_m > scn.platoon.vehicles[2].sensors.lidar.mount.xyz_m[2] > 1.5
    lidars = [v.sensors.lidar for v in scn.platoon.vehicles]
    assert {lidar.beams for lidar in lidars} == {16, 32, 64, 128}
    assert {lidar.rate_hz for lidar in lidars} == {10.0, 20.0}
    assert {v.sensors.radar.rate_hz for v in scn.platoon.vehicles} == {10.0, 15.0, 20.0}
    assert {v.sensors.camera.rate_hz for v in scn.platoon.vehicles} == {10.0, 15.0, 20.0, 30.0}
    assert len({lidar.mount.xyz_m for lidar in lidars}) == 6
    assert max(abs(v.clock.offset_ms) for v in scn.platoon.vehicles) == 350.0
    _, boxes = simulated['platoon_mixed']
    stopped, debris = boxes['h1'], boxes['d1']
    assert stopped['kind'] == HazardKind.STOPPED_CAR.value and debris['kind'] == HazardKind.DEBRIS.value
    assert stopped['center'][1] == pytest.approx(0.0)                        # the platoon's lane
    assert debris['center'][1] == pytest.approx(scn.road.lane_width_m)       # the next lane
    assert_allclose(debris['size'], [0.8, 0.6, 0.3])
    # nobody reacts: every member would reach the stopped car, in platoon order, within the run
    meeting = Simulation(scn).meeting_times_ns()
    times = [meeting[v] for v in scn.vehicle_ids]
    assert all(t is not None for t in times) and times == sorted(times)
    assert (times[0] - scn.start_time_s * 1e9) * 1e-9 == pytest.approx(12.0, abs=0.01)


def test_platoon_mixed_ships_its_platoon_config():
    path = SCENARIOS / 'platoon_mixed.yaml'
    scn = load_scenario(path)
    config_path = scenario_platoon_config(path)
    assert config_path == SCENARIOS / 'platoon_mixed' / 'platoon.yaml'
    cfg = load_platoon_config(config_path)
    assert cfg.vehicles == scn.vehicle_ids
    for member, v in zip(cfg.platoon, scn.platoon.vehicles):
        d = v.dimensions
        assert (member.body.length_m, member.body.width_m, member.body.rear_overhang_m) == (
            d.length_m, d.width_m, d.rear_overhang_m)
    extrinsics = vehicle_extrinsics(config_path)
    for member in cfg.platoon:            # ROS parameter lists are of one type: every number written as a float
        own = yaml.safe_load(member.params[-1].read_text())[f'/{member.id}/vehicle_node']['ros__parameters']
        assert all(isinstance(x, float) for six in own['extrinsics'].values() for x in six), member.id
    for vid in scn.vehicle_ids:
        for sensor, six in sensor_extrinsics(scn, vid).items():
            assert_allclose(extrinsics[vid][sensor], six, atol=1e-9, err_msg=f'{vid} {sensor}')
    # the scenarios on the default platoon ship none
    assert scenario_platoon_config(SCENARIOS / 'dense_traffic.yaml') is None
    assert scenario_platoon_config(SCENARIOS / 'highway_occlusion.yaml') is None


def test_dense_traffic_overtakes_in_both_next_lanes_with_a_motorbike(simulated):
    scn, kin, states = _run('dense_traffic')
    n = kin.n_platoon
    assert scn.hazards == () and scn.platoon.lane == 1
    _, boxes = simulated['dense_traffic']
    assert_allclose(boxes['m1']['size'], [2.2, 0.8, 1.4])
    (_, s0, _, lanes0), (_, s1, _, _) = states[0], states[-1]
    assert set(lanes0[n:]) == {0, 2}
    for lane in (0, 2):
        movers = [i for i in range(n, len(s0)) if lanes0[i] == lane]
        # someone starts behind the leader and ends ahead of it: overtaking, in this lane
        assert any(s0[i] < s0[0] and s1[i] > s1[0] for i in movers), lane
    m1 = n + [t.id for t in scn.traffic].index('m1')
    assert sum(s0[m1] < s0[j] and s1[m1] > s1[j] for j in range(n)) >= 2      # the motorbike passes members
    # nobody runs into anybody: the traffic in a lane keeps apart, the platoon holds its gaps
    for _, s, _, lanes in states:
        for i in range(len(s)):
            for j in range(len(s)):
                if i != j and lanes[i] == lanes[j] and s[j] > s[i]:
                    assert (s[j] - kin.rear[j]) - (s[i] + kin.front[i]) > 5.0


def test_cut_in_close_cuts_in_25_m_ahead_of_the_truck(simulated):
    scn, kin, states = _run('cut_in_close')
    n = kin.n_platoon
    c1 = n + [t.id for t in scn.traffic].index('c1')
    truck = scn.vehicle_ids.index('v2')
    at = {round(t, 1): (s, v, lanes) for t, s, v, lanes in states}
    s5, _, lanes5 = at[5.0]
    s6, v6, _ = at[6.0]
    assert lanes5[c1] == 1 and at[6.1][2][c1] == 0             # in the platoon's lane from half-way, t = 6 s
    gap6 = (s6[c1] - kin.rear[c1]) - (s6[truck] + kin.front[truck])
    assert gap6 == pytest.approx(25.0, abs=0.1)
    assert v6[truck] - v6[c1] > 5.0                           # closing: a conflict if nobody braked
    assert s6[c1] < s6[0]                                      # between v1 and the truck
    _, boxes = simulated['cut_in_close']
    assert boxes['c1']['kind'] == 'car'
