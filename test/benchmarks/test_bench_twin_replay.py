"""benchmarks/bench_twin.py --replay: the twin node alone on a recorded run (structure and determinism, not speed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _replay(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / 'benchmarks' / 'bench_twin.py'), *args],
                          capture_output=True, text=True, timeout=600)


def test_replay_reports_cpu_per_cycle_and_the_same_digest_twice(recorded_run):
    scenario, result = recorded_run
    lines = []
    for _ in range(2):
        out = _replay('--replay', str(result), '--scenario', str(scenario))
        assert out.returncode == 0, out.stderr
        lines.append(out.stdout.strip().splitlines()[-1])
    values = [dict(kv.split('=') for kv in line.split()) for line in lines]
    assert int(values[0]['cycles']) >= 10                 # ~10 Hz over 2 s of grids
    assert float(values[0]['replay_cores']) > 0 and float(values[0]['step_ms']) > 0
    assert values[0]['digest'] == values[1]['digest']     # the outputs are deterministic


def test_replay_refuses_a_bag_without_the_common_grid_and_flags_without_replay(recorded_run):
    scenario, _ = recorded_run
    out = _replay('--replay', str(scenario), '--scenario', str(scenario))
    assert out.returncode != 0 and 'no /cooperative/grid recorded' in (out.stdout + out.stderr)
    out = _replay('--live')
    assert out.returncode == 2 and 'go with --replay RESULT' in out.stderr
