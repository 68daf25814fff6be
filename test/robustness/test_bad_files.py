"""A bag, grid or scenario file that cannot be read gives a clear error naming the file and the
problem (exit code 2), never a bare traceback. Each command runs as a subprocess, as a user runs it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cooperative_fusion.cli import SUBCOMMANDS
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.ros.bag import BagWriter
from cooperative_fusion.ros.grid import grid_to_msg
from cooperative_fusion.ros.time import make_time_reference

SCENARIO = Path(__file__).resolve().parents[2] / 'config' / 'scenarios' / 'highway_clear.yaml'


def cli(command: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """``cooperative-fusion COMMAND ARGS``."""
    assert command in SUBCOMMANDS, command
    argv = [sys.executable, '-m', 'cooperative_fusion.cli', command]
    env = {**os.environ, 'ROS_DOMAIN_ID': '199', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    return subprocess.run([*argv, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def assert_clear_error(proc: subprocess.CompletedProcess, path: Path | str, problem: str) -> None:
    assert 'Traceback' not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    error = [line for line in proc.stderr.splitlines() if 'error' in line]
    assert error, proc.stderr
    assert str(path) in proc.stderr, proc.stderr
    assert problem in proc.stderr, proc.stderr


@pytest.fixture(scope='module')
def bags(tmp_path_factory) -> dict[str, Path]:
    """A small valid bag, and copies broken in the ways a disk or a copy breaks them."""
    root = tmp_path_factory.mktemp('bags')
    good = root / 'good'
    with BagWriter(good) as w:
        for k in range(20):
            t = 10**9 + k * 10**8
            w.write('/truth/grid', grid_to_msg(GridSpec(0.0, 0.0, 0.2, 50, 40), np.zeros((40, 50), np.int8), t), t)
            w.write('/v1/time_reference', make_time_reference(t, t), t)
    mcap = next(good.glob('*.mcap'))
    out = {'good': good}
    for name in ('truncated', 'garbage', 'zeroed'):
        bad = root / name
        shutil.copytree(good, bad)
        f = bad / mcap.name
        data = f.read_bytes()
        if name == 'truncated':
            f.write_bytes(data[:len(data) // 2])
        elif name == 'garbage':
            f.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
        else:
            f.write_bytes(bytes(len(data)))
        out[name] = bad
    notabag = root / 'notabag'
    notabag.mkdir()
    (notabag / 'readme.txt').write_text('not a bag\n')
    out['notabag'] = notabag
    return out


@pytest.mark.parametrize('broken', ['truncated', 'garbage', 'zeroed'])
def test_run_on_a_corrupt_mcap_names_the_bag(bags, broken, tmp_path):
    proc = cli('run', '--bag', bags[broken], '--quiet', cwd=tmp_path)
    assert_clear_error(proc, bags[broken], 'cannot read bag')


@pytest.mark.parametrize('broken', ['truncated', 'notabag'])
def test_replay_of_something_that_is_not_a_bag_names_it(bags, broken, tmp_path):
    proc = cli('replay', bags[broken], '--rate', '100', cwd=tmp_path)
    problem = 'not a rosbag2 directory (no metadata.yaml)' if broken == 'notabag' else 'cannot read bag'
    assert_clear_error(proc, bags[broken], problem)


def test_evaluate_with_a_missing_truth_bag_names_it(bags, tmp_path):
    proc = cli('evaluate', '--truth', '/nonexistent', '--result', bags['good'], '--report', tmp_path / 'r.json',
               cwd=tmp_path)
    assert_clear_error(proc, '/nonexistent', 'no such bag')
    assert not (tmp_path / 'r.json').exists()


def test_evaluate_with_a_corrupt_result_bag_names_it(bags, tmp_path):
    proc = cli('evaluate', '--truth', bags['good'], '--result', bags['garbage'], '--report', tmp_path / 'r.json',
               cwd=tmp_path)
    assert_clear_error(proc, bags['garbage'], 'cannot read bag')


def test_simulate_with_broken_yaml_names_the_file(tmp_path):
    bad = tmp_path / 'broken.yaml'
    bad.write_text('name: broken\nroad: [1, 2\n  lane_count: :\n')
    proc = cli('simulate', '--scenario', bad, '--out', tmp_path / 'out', '--quiet', cwd=tmp_path)
    assert_clear_error(proc, bad, 'not valid YAML')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('old, new, key', [
    ('duration_s: 20.0', 'duration_s: -3.0', 'duration_s'),
    ('  lane_count: 3', '  lane_count: many', 'lane_count'),
])
def test_simulate_with_a_bad_value_names_the_file_and_the_key(tmp_path, old, new, key):
    text = SCENARIO.read_text()
    assert old in text
    bad = tmp_path / 'bad_value.yaml'
    bad.write_text(text.replace(old, new, 1))
    proc = cli('simulate', '--scenario', bad, '--out', tmp_path / 'out', '--quiet', cwd=tmp_path)
    assert_clear_error(proc, bad, key)


def test_simulate_with_a_missing_scenario_names_it(tmp_path):
    missing = tmp_path / 'nope.yaml'
    proc = cli('simulate', '--scenario', missing, '--out', tmp_path / 'out', '--quiet', cwd=tmp_path)
    assert_clear_error(proc, missing, 'cannot read scenario file')
