"""End to end: simulate a short highway_occlusion bag, run vehicles + fusion (lock-step), evaluate.

The scenario is config/scenarios/highway_occlusion.yaml with the platoon and the
traffic moved 260 m up the road, so that within 4 simulated seconds the stopped
car (hazard h1) is inside the evaluation ROI, seen by the leader and hidden
from v3 and v4 behind the truck, and the leader v1 is hidden from v3 all along.
The twin is off (it does not change the common grid). Asserts the see-through
gain that the cooperative grid exists for.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from cooperative_fusion.evaluation.report import evaluate
from cooperative_fusion.app.bringup import run_bag_lockstep
from cooperative_fusion.commands import simulate as simulate_cmd

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'config'
SHIFT_M = 260.0
DURATION_S = 4.0


@pytest.fixture(scope='module')
def e2e_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp('e2e')
    scenario = yaml.safe_load((CONFIG / 'scenarios' / 'highway_occlusion.yaml').read_text())
    scenario['name'] = 'highway_occlusion_e2e'
    scenario['duration_s'] = DURATION_S
    scenario['platoon']['x_m'] += SHIFT_M
    for t in scenario['traffic']:
        t['x_m'] += SHIFT_M
    scenario_path = tmp / 'scenario.yaml'
    scenario_path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    bag = tmp / 'truth.bag'
    parser = argparse.ArgumentParser()
    simulate_cmd.add_arguments(parser)
    assert simulate_cmd.run(parser.parse_args(['--scenario', str(scenario_path), '--out', str(bag), '--quiet'])) == 0

    platoon = yaml.safe_load((CONFIG / 'platoon.yaml').read_text())
    platoon['run']['twin'] = False
    for section in [*platoon['vehicles'], platoon['fusion'], platoon['twin']]:
        section['params'] = [str(CONFIG / p) for p in section['params']]
    platoon['record'] = {'topics': ['/<v>/evidence_grid', '/<v>/radar/targets', '/cooperative/grid']}
    config_path = tmp / 'platoon.yaml'
    config_path.write_text(yaml.safe_dump(platoon, sort_keys=False))
    result = tmp / 'result.bag'
    run_bag_lockstep(config_path, bag, result, progress=False)
    return evaluate(bag, result)


def test_common_grid_lets_v3_and_v4_see_past_the_truck(e2e_report: dict):
    coop = e2e_report['see_through_recall']
    ego = e2e_report['ego_only_see_through_recall']
    for vid in ('v3', 'v4'):
        assert coop[vid] is not None and ego[vid] is not None, (vid, coop, ego)
        # Ego-only, the hidden objects stay hidden; fused, most of them show.
        assert ego[vid] <= 0.3, (vid, ego)
        assert coop[vid] >= 0.45, (vid, coop)
        assert coop[vid] - ego[vid] >= 0.35, (vid, coop, ego)


def test_common_grid_is_precise_and_beats_every_ego_grid(e2e_report: dict):
    assert e2e_report['occupied_precision'] >= 0.85, e2e_report['occupied_precision']
    ego_recall = e2e_report['ego_only_object_recall']
    best_ego = max(v for k, v in ego_recall.items() if k != 'mean' and v is not None)
    assert e2e_report['object_recall'] >= best_ego + 0.2, (e2e_report['object_recall'], ego_recall)
