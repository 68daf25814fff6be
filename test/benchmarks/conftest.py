"""Fixtures of the benchmarks' tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from processes import simulate_bag


@pytest.fixture(scope='session')
def recorded_run(tmp_path_factory) -> tuple[Path, Path]:
    """A 2 s simulated scenario bag (seed 3) and its lock-step result bag: (scenario, result)."""
    from cooperative_fusion.app.bringup import run_bag_lockstep

    tmp = tmp_path_factory.mktemp('recorded_run')
    scenario = simulate_bag(tmp / 'scenario', seed=3, duration_s=2.0)
    run_bag_lockstep(None, scenario, tmp / 'result', progress=False, quiet=True)
    return scenario, tmp / 'result'
