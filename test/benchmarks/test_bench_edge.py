"""benchmarks/bench_edge.py: the synthetic vehicles, the edge's command lines, the core-work timing (structure,
not speed)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    sys.path.insert(0, str(REPO / 'benchmarks'))
    spec = importlib.util.spec_from_file_location('bench_edge', REPO / 'benchmarks' / 'bench_edge.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_vehicles_drive_in_rows_of_four_lanes():
    assert bench.vehicle_xy(0, 0.0) == (100.0, bench.LANES_Y[0])
    assert bench.vehicle_xy(5, 2.0) == (100.0 + 50.0 - 20.0, bench.LANES_Y[1])
    assert bench.vehicle_ids(3) == ['v1', 'v2', 'v3']


def test_evidence_is_a_cropped_window_like_a_vehicle_shares_and_its_traffic_moves():
    ox, oy, cells = bench.evidence_cells(100.0, 0.0)
    assert cells.shape == (100, 205) and cells.dtype == np.int8
    assert ox == 80.0 and oy == -20.0
    assert 0.8 < (cells >= 0).mean() < 0.95
    assert (cells == bench.OCC).sum() > 2 * 205                  # both rails, some traffic
    _, _, later = bench.evidence_cells(100.0, 0.5)
    assert (later != cells).any()


def test_the_edge_runs_one_fusion_or_shards_and_a_combiner(tmp_path):
    platoon = bench.write_platoon(6, tmp_path, dynamic=False)
    one = bench.edge_commands(platoon, 1)
    assert list(one) == ['fusion_node', 'twin_node']
    two = bench.edge_commands(platoon, 2)
    assert list(two) == ['fusion_shard_0', 'fusion_shard_1', 'fusion_combiner', 'twin_node']
    assert two['fusion_shard_1'][-6:] == ['-r', '__node:=fusion_shard_1', '-p', 'shard.index:=1', '-p',
                                          'shard.count:=2']
    assert two['fusion_combiner'][:3] == [sys.executable, '-m', 'cooperative_fusion.nodes.fusion_combiner']
    assert two['fusion_combiner'][-2:] == ['-p', 'shard.count:=2']
    assert "vehicles:=['v1', 'v2', 'v3', 'v4', 'v5', 'v6']" in ' '.join(one['fusion_node'])


def test_core_cost_times_each_process_of_the_configuration():
    assert list(bench.core_cost(3, 1, seconds=0.3)) == ['fusion_node']
    cost = bench.core_cost(3, 2, seconds=0.3)
    assert list(cost) == ['fusion_combiner', 'fusion_shard_0', 'fusion_shard_1']
    assert all(c > 0 for c in cost.values())
