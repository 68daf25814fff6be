"""benchmarks/node_alone.py through the --live modes of bench_fusion.py and bench_twin.py: each node as its own
process on a short recorded run, fed over DDS (that it runs and measures, not how fast)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _live(bench: str, scenario: Path, result: Path) -> dict[str, str]:
    out = subprocess.run([sys.executable, str(REPO / 'benchmarks' / bench), '--replay', str(result),
                          '--scenario', str(scenario), '--live'], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return dict(kv.split('=', 1) for kv in out.stdout.strip().splitlines()[-1].split())


def test_the_fusion_node_alone_fuses_the_recorded_evidence_and_its_cpu_is_measured(recorded_run):
    scenario, result = recorded_run
    values = _live('bench_fusion.py', scenario, result)
    assert float(values['live_cores']) > 0 and float(values['idle_cores']) >= 0
    assert int(values['grids']) >= 1            # common grids heard by the listener during the replay


def test_the_twin_node_alone_cycles_on_the_recorded_grids_and_its_cpu_is_measured(recorded_run):
    scenario, result = recorded_run
    values = _live('bench_twin.py', scenario, result)
    assert float(values['live_cores']) > 0
    assert int(values['cycles']) >= 1
