"""simulate / demo --closed-loop [--mode]: the flags parse, and misuse is a one-line error with exit 2."""
from __future__ import annotations

import pytest

from cooperative_fusion import cli


def _parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def test_flags_parse() -> None:
    args = _parse('simulate', '--out', 'b', '--closed-loop', '--mode', 'ego', '--faults', 'f.yaml', '--config', 'p.yaml')
    assert (args.closed_loop, args.mode, str(args.faults), str(args.config)) == (True, 'ego', 'f.yaml', 'p.yaml')
    args = _parse('simulate', '--out', 'b')
    assert (args.closed_loop, args.mode, args.faults, args.config) == (False, None, None, None)
    args = _parse('demo', '--closed-loop', '--mode', 'cooperative')
    assert (args.closed_loop, args.mode) == (True, 'cooperative')
    assert _parse('demo').closed_loop is False


@pytest.mark.parametrize('argv, message', [
    (['simulate', '--out', '{tmp}/b', '--mode', 'ego'], '--mode needs --closed-loop'),
    (['simulate', '--out', '{tmp}/b', '--faults', 'config/faults/lossy.yaml'], '--faults needs --closed-loop'),
    (['simulate', '--out', '{tmp}/b', '--config', 'config/platoon.yaml'], '--config needs --closed-loop'),
    (['simulate', '--out', '{tmp}/b', '--closed-loop', '--mode', 'fast'],
     "--mode 'fast': expected one of ego, cooperative, cooperative+advisory"),
    (['demo', '--out', '{tmp}/d', '--mode', 'ego'], '--mode needs --closed-loop'),
    (['demo', '--out', '{tmp}/d', '--closed-loop', '--mode', 'fast'],
     "--mode 'fast': expected one of ego, cooperative, cooperative+advisory"),
])
def test_misuse_is_one_line_exit_2(argv, message, tmp_path, capsys) -> None:
    argv = [a.replace('{tmp}', str(tmp_path)) for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == f'cooperative-fusion {argv[0]}: error: {message}\n'
    assert list(tmp_path.iterdir()) == []            # nothing written
