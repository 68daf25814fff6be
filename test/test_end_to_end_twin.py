"""Issue 5 item 9, end to end: simulated bag -> vehicles -> fusion -> twin (lock-step) -> evaluate.

The default scenario is shortened, not faked: the stopped car of
``highway_occlusion.yaml`` is moved closer (the road is straight and uniform,
so this is the same encounter seen earlier) and the bag is cut to 5 s, so the
whole chain runs in seconds. v1 sees the car; v3 and v4, behind the truck, do
not. The twin must warn v3 and v4 before they would reach it, about that car;
on the clear highway it must warn nobody.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from cooperative_fusion.evaluation.report import evaluate
from cooperative_fusion.app.bringup import run_bag_lockstep
from cooperative_fusion.ros.bag import BagReader
from cooperative_fusion.ros.grid import grid_from_msg
from cooperative_fusion.sim.bag_writer import write_simulation
from cooperative_fusion.sim.scenario import scenario_from_dict
from cooperative_fusion.sim.world import Simulation

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / 'config' / 'scenarios'
PLATOON = ROOT / 'config' / 'platoon.yaml'
DURATION_S = 5.0
#: Seconds after the start at which the leader's front would reach the stopped car (15 s in the full scenario).
LEADER_MEETS_S = 5.5
SPEED_MPS, LEADER_FRONT_M = 25.0, 3.5          # the scenario's platoon speed and leader front at t = 0
CAR_LENGTH_M, CAR_WIDTH_M = 4.5, 1.8
OCCUPIED_PERCENT = 65                           # the twin's detection threshold (config/twin.yaml)


def _simulate(tmp_path: Path, name: str, hazard_x_m: float | None) -> Path:
    raw = yaml.safe_load((SCENARIOS / f'{name}.yaml').read_text())
    if hazard_x_m is not None:
        (hazard,) = raw['hazards']
        hazard['x_m'] = hazard_x_m
    bag = tmp_path / f'{name}.bag'
    sim = Simulation(scenario_from_dict(raw, f'{name}.yaml (hazard moved)'))
    write_simulation(sim.events(duration_s=DURATION_S), bag, progress=False, total_s=DURATION_S)
    return bag


def _run(tmp_path: Path, bag: Path) -> tuple[Path, dict]:
    result = tmp_path / f'{bag.stem}_result'
    run_bag_lockstep(PLATOON, bag, result, progress=False)
    return result, evaluate(bag, result)


def _warnings(result: Path) -> list[tuple[int, str, dict[str, str]]]:
    """(log time ns, vehicle id, values) of every status on /twin/warnings."""
    out = []
    with BagReader(result) as reader:
        for _, msgtype, log_ns, raw in reader.messages(['/twin/warnings']):
            msg = BagReader.deserialize(msgtype, raw)
            out += [(log_ns, s.name, {kv.key: kv.value for kv in s.values}) for s in msg.status]
    return out


def _max_evidence_on(result: Path, vehicle: str, x0: float, x1: float, y0: float, y1: float,
                     until_ns: int) -> int:
    """Highest cell (percent) of the vehicle's own evidence grids inside the box, up to ``until_ns``."""
    best = -1
    with BagReader(result) as reader:
        for _, msgtype, log_ns, raw in reader.messages([f'/{vehicle}/evidence_grid']):
            if log_ns > until_ns:
                break
            spec, cells = grid_from_msg(BagReader.deserialize(msgtype, raw))
            xs, ys = spec.cell_centers()
            box = cells[np.ix_((ys >= y0) & (ys <= y1), (xs >= x0) & (xs <= x1))]
            if box.size:
                best = max(best, int(box.max()))
    return best


def test_twin_warns_the_occluded_followers_of_the_stopped_car_in_time(tmp_path):
    car_rear = LEADER_FRONT_M + SPEED_MPS * LEADER_MEETS_S
    bag = _simulate(tmp_path, 'highway_occlusion', car_rear)
    result, report = _run(tmp_path, bag)

    meeting = report['meeting_time_s']
    assert meeting['v1'] == pytest.approx(LEADER_MEETS_S)
    assert DURATION_S < meeting['v3'] < meeting['v4']          # the followers are still on their way at the end
    lead = report['warning_lead_time_s']
    assert lead['v3'] is not None and lead['v3'] > 0.0
    assert lead['v4'] is not None and lead['v4'] > 0.0

    # The first warnings of v3 and v4 are about the stopped car: a track there, closing on it.
    warnings = _warnings(result)
    for vid in ('v3', 'v4'):
        t_first, _, values = min(w for w in warnings if w[1] == vid)
        assert values.get('predecessor') is None, (vid, values)
        assert float(values['x']) == pytest.approx(car_rear, abs=6.0), (vid, values)
        assert float(values['ttc_s']) > 0.0 and float(values['distance_m']) > 50.0, (vid, values)
        # ... which their own sensors never showed up to then: it is seen through the common grid.
        seen = _max_evidence_on(result, vid, car_rear, car_rear + CAR_LENGTH_M, -CAR_WIDTH_M / 2,
                                CAR_WIDTH_M / 2, t_first)
        assert seen < OCCUPIED_PERCENT, (vid, seen)
    # v1 sees the car itself.
    assert _max_evidence_on(result, 'v1', car_rear, car_rear + CAR_LENGTH_M, -CAR_WIDTH_M / 2, CAR_WIDTH_M / 2,
                            warnings[-1][0]) >= OCCUPIED_PERCENT
    assert report['false_warnings']['total'] == 0, report['false_warning_episodes']
    # ... and each of their warnings names the car: its obstacle position lies on it.
    for vid in ('v3', 'v4'):
        first = min(w for w in warnings if w[1] == vid)[2]
        assert first['object'].startswith('track_')
        assert car_rear - 2.0 <= float(first['obstacle_x']) <= car_rear + CAR_LENGTH_M + 2.0, first
    assert report['twin_speedup'] is not None and report['twin_speedup'] > 0.0


def test_twin_warns_nobody_on_the_clear_highway(tmp_path):
    bag = _simulate(tmp_path, 'highway_clear', None)
    result, report = _run(tmp_path, bag)
    assert report['meeting_time_s'] == {'v1': None, 'v2': None, 'v3': None, 'v4': None}
    assert report['false_warnings']['total'] == 0 and report['missed_warnings']['total'] == 0
    assert _warnings(result) == []
    # The twin did run: it published predicted grids that were scored against the truth.
    assert report['prediction_samples']['1.0'] > 10
    assert report['prediction_iou']['1.0'] > 0.0
