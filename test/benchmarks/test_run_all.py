"""benchmarks/run_all.py: where the results go, and which benchmarks run."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location('run_all', REPO / 'benchmarks' / 'run_all.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run_all = _load()


def test_results_go_outside_the_tracked_tree_unless_asked(tmp_path):
    assert run_all.results_path(update=False, out=None) == REPO / 'build' / 'benchmarks' / 'results.md'
    assert run_all.results_path(update=True, out=None) == REPO / 'benchmarks' / 'results.md'
    assert run_all.results_path(update=False, out=tmp_path / 'r.md') == tmp_path / 'r.md'


def test_an_unknown_benchmark_name_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        run_all.main(['--only', 'bench_nope', '--out', '/dev/null'])
    assert exc.value.code == 2
    assert 'no such benchmark: bench_nope.py' in capsys.readouterr().err


def test_update_and_out_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        run_all.main(['--update', '--out', 'x.md'])
    assert 'not allowed with argument' in capsys.readouterr().err
