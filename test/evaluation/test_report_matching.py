"""evaluate refuses a result bag that cannot be a run of the truth bag's scenario."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from std_msgs.msg import String

from cooperative_fusion import cli
from cooperative_fusion.core.errors import BagError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.evaluation.report import evaluate
from cooperative_fusion.ros.bag import BagWriter
from cooperative_fusion.ros.grid import grid_to_msg

MS = 1_000_000
SPEC = GridSpec(0.0, -5.0, 0.5, 20, 20)
TRUTH_STAMPS = [1000 * MS, 1100 * MS, 1200 * MS]


def write_truth(path: Path) -> None:
    meta = {'scenario': 'tiny', 'vehicle_ids': ['v1', 'v2']}
    with BagWriter(path) as bag:
        bag.write('/truth/scenario', String(data=json.dumps(meta)), 0)
        for t in TRUTH_STAMPS:
            bag.write('/truth/grid', grid_to_msg(SPEC, np.zeros(SPEC.shape, np.int8), t), t)


def write_result(path: Path, vehicles: tuple[str, ...], log_ns: list[int]) -> None:
    with BagWriter(path) as bag:
        for t in log_ns:
            bag.write('/cooperative/grid', grid_to_msg(SPEC, np.zeros(SPEC.shape, np.int8), t), t)
            for v in vehicles:
                bag.write(f'/{v}/evidence_grid', grid_to_msg(SPEC, np.full(SPEC.shape, -1, np.int8), t - 10 * MS), t)


@pytest.fixture(scope='module')
def truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('match') / 'truth'
    write_truth(path)
    return path


def test_a_result_of_the_same_scenario_is_accepted(truth: Path, tmp_path: Path) -> None:
    write_result(tmp_path / 'result', ('v2',), [950 * MS, 1050 * MS, 1150 * MS])   # a subset of the vehicles
    report = evaluate(truth, tmp_path / 'result', fusion_config=None)
    assert report['duration_s'] == pytest.approx(0.2) and report['vehicles'] == ['v1', 'v2']


def test_other_vehicle_ids_are_refused(truth: Path, tmp_path: Path) -> None:
    write_result(tmp_path / 'result', ('v1', 'v7'), [950 * MS, 1050 * MS])
    with pytest.raises(BagError, match=r'result: vehicles v1, v7 do not match the truth bag .*truth '
                                       r'\(vehicles v1, v2\): a result of another scenario\?'):
        evaluate(truth, tmp_path / 'result', fusion_config=None)


@pytest.mark.parametrize('log_ms', [[50, 900, 990], [1210, 5000]], ids=['before', 'after'])
def test_time_ranges_that_do_not_overlap_are_refused(truth: Path, tmp_path: Path, log_ms: list[int]) -> None:
    write_result(tmp_path / 'result', ('v1',), [t * MS for t in log_ms])
    with pytest.raises(BagError, match=rf'log times {log_ms[0] / 1000:.3f} \.\. {log_ms[-1] / 1000:.3f} s do not '
                                       r'overlap the truth of .*truth \(1\.000 \.\. 1\.200 s\)'):
        evaluate(truth, tmp_path / 'result', fusion_config=None)


def test_cli_refusal_is_one_line_with_exit_2(truth: Path, tmp_path: Path, capsys) -> None:
    write_result(tmp_path / 'result', ('v3',), [1000 * MS])
    rc = cli.main(['evaluate', '--truth', str(truth), '--result', str(tmp_path / 'result'),
                   '--report', str(tmp_path / 'r.json')])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count('\n') == 1 and err.startswith('cooperative-fusion evaluate: error: ')
    assert 'vehicles v3 do not match' in err
    assert not (tmp_path / 'r.json').exists()
