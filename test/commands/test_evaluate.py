"""evaluate checks its outputs before any work: a one-line error and exit 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cooperative_fusion import cli
from cooperative_fusion.commands import evaluate as evaluate_command


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the evaluation starts."""
    def fail(*args, **kwargs):
        raise AssertionError('evaluation started before the outputs were checked')
    monkeypatch.setattr(evaluate_command, 'evaluate', fail)


def _run(tmp_path: Path, report: Path, plots: Path | None, capsys) -> tuple[int, str]:
    # the bags do not exist: an output error must come first
    argv = ['evaluate', '--truth', str(tmp_path / 'no_truth'), '--result', str(tmp_path / 'no_result'),
            '--report', str(report)]
    if plots is not None:
        argv += ['--plots', str(plots)]
    rc = cli.main(argv)
    return rc, capsys.readouterr().err


def _a_file(tmp_path: Path) -> Path:
    f = tmp_path / 'a_file'
    f.write_text('x')
    return f


@pytest.mark.parametrize('case, expected', [
    ('plots_is_a_file', '{f}: exists and is not a directory (--plots)'),
    ('plots_under_a_file', '{f}/plots: cannot be created, {f} is not a directory (--plots)'),
    ('plots_deep_under_a_file', '{f}/a/b: cannot be created, {f} is not a directory (--plots)'),
    ('report_under_a_file', '{f}/r.json: cannot be created, {f} is not a directory (--report)'),
    ('report_is_a_directory', '{d}: is a directory (--report)'),
])
def test_unwritable_outputs_fail_fast(tmp_path: Path, capsys, no_work, case: str, expected: str) -> None:
    f = _a_file(tmp_path)
    d = tmp_path / 'a_dir'
    d.mkdir()
    report, plots = {
        'plots_is_a_file': (tmp_path / 'r.json', f),
        'plots_under_a_file': (tmp_path / 'r.json', f / 'plots'),
        'plots_deep_under_a_file': (tmp_path / 'r.json', f / 'a' / 'b'),
        'report_under_a_file': (f / 'r.json', None),
        'report_is_a_directory': (d, None),
    }[case]
    rc, err = _run(tmp_path, report, plots, capsys)
    assert rc == 2
    assert err == f'cooperative-fusion evaluate: error: {expected.format(f=f, d=d)}\n'


def test_read_only_directory(tmp_path: Path, capsys, no_work) -> None:
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip('a read-only directory is writable for this user (root)')
        rc, err = _run(tmp_path, tmp_path / 'r.json', ro / 'plots', capsys)
        assert rc == 2
        assert err == f'cooperative-fusion evaluate: error: {ro}/plots: cannot be created, {ro} is not writable (--plots)\n'
    finally:
        ro.chmod(0o755)


def test_read_only_file_system(tmp_path: Path, capsys, no_work) -> None:
    # the reported case (errno 30 after the work); root can mount a read-only tmpfs
    ro = tmp_path / 'ro'
    ro.mkdir()
    if os.geteuid() != 0 or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', str(ro)],
                                           capture_output=True).returncode != 0:
        pytest.skip('cannot mount a read-only file system here')
    try:
        rc, err = _run(tmp_path, tmp_path / 'r.json', ro, capsys)
        assert rc == 2
        assert err == f'cooperative-fusion evaluate: error: {ro}: not writable (--plots)\n'
        rc, err = _run(tmp_path, ro / 'r.json', None, capsys)
        assert rc == 2
        assert err == f'cooperative-fusion evaluate: error: {ro}/r.json: cannot be created, {ro} is not writable (--report)\n'
    finally:
        subprocess.run(['umount', str(ro)], check=True)


def test_writable_outputs_pass_the_check(tmp_path: Path, capsys) -> None:
    # the check passes, then the missing truth bag is the error
    rc, err = _run(tmp_path, tmp_path / 'new' / 'r.json', tmp_path / 'new' / 'plots', capsys)
    assert rc == 2
    assert err == f'cooperative-fusion evaluate: error: {tmp_path}/no_truth: no such bag (path does not exist)\n'
    assert not (tmp_path / 'new').exists()          # nothing created by the check
