"""benchmarks/ab_fusion.py: two checkouts' fusion cores side by side (structure and equality, not speed)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from script_module import load_benchmark

REPO = Path(__file__).resolve().parents[2]


bench = load_benchmark('ab_fusion')


def test_a_checkout_against_itself_publishes_the_same_grids(capsys):
    versions = bench.load_versions(str(REPO))
    assert versions['other']['cooperative'].__name__.startswith(bench.OTHER)
    assert versions['this']['cooperative'] is not versions['other']['cooperative']
    bench.synthetic(versions, [2], cycles=2)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r'ab_2_evidence_ms=[0-9.]+/[0-9.]+ mismatches=0', last)


def test_a_directory_without_the_package_is_refused(tmp_path):
    with pytest.raises(SystemExit, match='no cooperative_fusion package'):
        bench.load_versions(str(tmp_path))
