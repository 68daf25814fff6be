"""scripts/closed_loop_table.py: the mode table from canned reports, the runs it would make, reuse of reports."""
from __future__ import annotations

import json

import pytest
from script_module import load_script

clt = load_script('closed_loop_table')


def _report(mode: str, gap_v2: float, collision_v2: bool, decel_v2: float, seed: int = 7) -> dict:
    return {'scenario': 'highway_occlusion', 'seed': seed, 'vehicles': ['v1', 'v2'], 'duration_s': 20.0,
            'min_gap_m': {'v1': 12.5, 'v2': gap_v2}, 'min_ttc_s': {'v1': 3.25, 'v2': None},
            'max_decel_mps2': {'v1': 2.04, 'v2': decel_v2}, 'collision': {'v1': False, 'v2': collision_v2},
            'time_headway_s': {'v1': {'p5': 1.0, 'p50': 1.5, 'p95': 2.0}, 'v2': None},
            'false_warnings': {'v1': 0, 'v2': 1, 'total': 1}, 'demo': {'closed_loop': mode}}


def _write(work, scenario, variant, report):
    d = clt.run_dir(work, scenario, variant, report['demo']['closed_loop'])
    d.mkdir(parents=True)
    (d / 'report.json').write_text(json.dumps(report))


def test_table_has_modes_as_columns_and_outcomes_per_vehicle_as_rows():
    reports = {'ego': _report('ego', 0.0, True, 8.1), 'cooperative+advisory': _report('cooperative+advisory', 7.25,
                                                                                       False, 3.46)}
    lines = clt.outcome_table(reports)
    assert lines[0] == '| outcome | `ego` | `cooperative` | `cooperative+advisory` |'
    assert '| min gap (m), v2 | 0.00 | n/a | 7.25 |' in lines
    assert '| min gap (m), v1 | 12.50 | n/a | 12.50 |' in lines
    assert '| min ttc (s), v2 | n/a | n/a | n/a |' in lines
    assert '| max decel (m/s²), v2 | 8.1 | n/a | 3.5 |' in lines
    assert '| collision, v2 | **yes** | n/a | no |' in lines
    assert '| time headway p5 / p50 / p95 (s), v1 | 1.00 / 1.50 / 2.00 | n/a | 1.00 / 1.50 / 2.00 |' in lines
    assert '| false warning episodes (all vehicles) | 1 | n/a | 1 |' in lines
    assert len(lines) == 2 + 5 * 2 + 1
    assert clt.outcome_table({}) == []


def test_sections_and_document_from_the_reports_in_work(tmp_path):
    _write(tmp_path, 'highway_occlusion', 'none', _report('ego', 0.0, True, 8.1))
    _write(tmp_path, 'highway_occlusion', 'lossy', _report('cooperative', 3.0, False, 5.0))
    _write(tmp_path, 'cut_in', 'none', _report('ego', 1.0, False, 4.0, seed=8))          # another seed: not used
    sections = clt.collect(tmp_path, clt.SCENARIOS, list(clt.VARIANTS), clt.MODES, 7)
    assert [s[0] for s in sections] == ['### highway_occlusion, seed 7, no faults, 20 s',
                                        '### highway_occlusion, seed 7, faults `config/faults/lossy.yaml`, 20 s']
    doc = clt.document(sections, 'python scripts/closed_loop_table.py')
    assert doc.startswith('## Outcome by mode\n')
    assert '| collision, v2 | **yes** | n/a | n/a |' in doc and '| collision, v2 | n/a | no | n/a |' in doc
    assert 'cut_in' not in doc
    assert 'No closed-loop reports yet.' in clt.document([], 'x')


def test_a_report_of_another_mode_is_not_reused(tmp_path):
    _write(tmp_path, 'cut_in', 'none', _report('ego', 1.0, False, 4.0))
    assert clt.load_report(tmp_path, 'cut_in', 'none', 'ego', 7)['min_gap_m']['v2'] == 1.0
    # the directory of mode "cooperative" holding an ego report is not that mode's result
    (clt.run_dir(tmp_path, 'cut_in', 'none', 'ego')).rename(clt.run_dir(tmp_path, 'cut_in', 'none', 'cooperative'))
    assert clt.load_report(tmp_path, 'cut_in', 'none', 'cooperative', 7) is None


def test_demo_command_of_a_run(tmp_path):
    cmd = clt.demo_command(tmp_path, 'truck_brakes', 'lossy', 'cooperative+advisory', 7, None)
    assert cmd[1:6] == ['-m', 'cooperative_fusion.cli', 'demo', '--closed-loop', '--mode']
    assert cmd[6] == 'cooperative+advisory'
    assert cmd[cmd.index('--scenario') + 1].endswith('config/scenarios/truck_brakes.yaml')
    assert cmd[cmd.index('--faults') + 1].endswith('config/faults/lossy.yaml')
    assert cmd[cmd.index('--out') + 1] == str(tmp_path / 'truck_brakes' / 'lossy' / 'cooperative+advisory')
    assert '--faults' not in clt.demo_command(tmp_path, 'cut_in', 'none', 'ego', 7, 5.0)
    assert clt.demo_command(tmp_path, 'cut_in', 'none', 'ego', 7, 5.0)[-2:] == ['--duration', '5.0']


def test_bad_modes_are_refused(capsys):
    with pytest.raises(SystemExit):
        clt.main(['--modes', 'ego,turbo', '--no-run', '--out', '-'])
    assert 'unknown turbo' in capsys.readouterr().err


def test_the_tables_replace_only_their_own_section():
    section = '## Outcome by mode\n\n### new table\n'
    doc = '# Closed loop\n\n## What runs\n\nkeep\n\n## Outcome by mode\n\n### old table\n\n## Reading\n\nv1.\n'
    assert clt.splice(doc, section) == ('# Closed loop\n\n## What runs\n\nkeep\n\n## Outcome by mode\n\n'
                                        '### new table\n\n## Reading\n\nv1.\n')
    assert clt.splice('# Closed loop\n\n## What runs\n\nkeep\n', section) == (
        '# Closed loop\n\n## What runs\n\nkeep\n\n## Outcome by mode\n\n### new table\n')
    assert clt.splice('# C\n\n## Reading\n\nr\n', section) == '# C\n\n## Outcome by mode\n\n### new table\n\n## Reading\n\nr\n'
    assert clt.splice('', section) == '# Closed loop\n\n' + section


def test_the_speed_cycle_runs_without_faults_only():
    assert 'platoon_speed_cycle' in clt.SCENARIOS
    assert clt.variants_of('platoon_speed_cycle', ['none', 'lossy']) == ['none']
    assert clt.variants_of('cut_in', ['none', 'lossy']) == ['none', 'lossy']
    assert clt.variants_of('config/scenarios/platoon_speed_cycle.yaml', ['lossy']) == []


def test_readme_summary_has_modes_as_columns_and_a_row_per_outcome(tmp_path):
    _write(tmp_path, 'highway_occlusion', 'none', _report('ego', 0.0, True, 8.1))
    _write(tmp_path, 'highway_occlusion', 'none', _report('cooperative+advisory', 7.25, False, 3.46))
    _write(tmp_path, 'cut_in', 'lossy', {**_report('cooperative', 3.0, False, 5.0),
                                         'min_gap_m': {'v1': None, 'v2': 3.0}})
    lines = clt.summary_table(tmp_path, clt.SCENARIOS, 7)
    assert lines[0] == '| scenario | outcome | `ego` | `cooperative` | `cooperative+advisory` |'
    assert lines[2:] == [
        '| highway_occlusion | `min_gap_m` v1/v2 | 12.50/0.00 | n/a | 12.50/7.25 |',
        '| | `max_decel_mps2` | 2.0/8.1 | n/a | 2.0/3.5 |',
        '| | collision | v2 | n/a | none |',
        '| cut_in, `lossy.yaml` | `min_gap_m` v1/v2 | n/a | –/3.00 | n/a |',
        '| | `max_decel_mps2` | n/a | 2.0/5.0 | n/a |',
        '| | collision | n/a | none | n/a |']
    assert clt.summary_table(tmp_path / 'empty', clt.SCENARIOS, 7) == []
