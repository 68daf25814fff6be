"""scripts/scenario_table.py: the table and its target marks from canned reports, the platoon config per
scenario, and the reuse of finished runs only when their inputs match (no simulation here)."""
from __future__ import annotations

import json
import shutil

from script_module import load_script

st = load_script('scenario_table')


def _report(vids, see_last=0.95, precision=0.9, moving=0.3, leads=None, false=0, missed=0):
    leads = leads if leads is not None else {}
    return {'vehicles': list(vids),
            'see_through_object_recall': {**{v: None for v in vids}, vids[-1]: see_last, 'mean': see_last},
            'occupied_precision_away_from_platoon': precision, 'moving_position_error_m': moving,
            'warning_lead_time_s': {**leads, 'min': min((x for x in leads.values() if x is not None), default=None)},
            'false_warnings': {**{v: 0 for v in vids}, vids[-1]: false, 'total': false},
            'missed_warnings': {**{v: 0 for v in vids}, 'total': missed}}


V = ('v1', 'v2', 'v3', 'v4')


def test_row_marks_each_missed_target():
    ok = st.row_of('s', 7, _report(V, leads={'v1': 2.3, 'v2': 3.1, 'v3': 4.2, 'v4': 4.9}))
    assert ok.missed_targets == () and ok.last_vehicle == 'v4' and ok.see_through == 0.95
    assert ok.leads_s == (('v1', 2.3), ('v2', 3.1), ('v3', 4.2), ('v4', 4.9))    # 'min' is not a vehicle
    bad = st.row_of('s', 3, _report(V, see_last=0.81, precision=0.65, moving=0.9,
                                    leads={'v1': 1.0, 'v2': 2.5, 'v3': None, 'v4': 3.5}, false=2, missed=1))
    assert bad.missed_targets == ('see-through v4 0.810 < 0.90', 'precision away 0.650 < 0.85',
                                  'moving error 0.90 m > 0.5 m', 'lead v2 2.50 s < 3.0 s', 'lead v3: no true warning',
                                  '2 false', '1 missed')
    # no hazard, nothing hidden, nothing moving: n/a misses nothing
    empty = st.row_of('s', 1, {'vehicles': list(V), 'see_through_object_recall': {'v4': None},
                               'occupied_precision_away_from_platoon': None, 'moving_position_error_m': None,
                               'warning_lead_time_s': {'min': None}, 'false_warnings': {'total': 0},
                               'missed_warnings': {'total': 0}})
    assert empty.missed_targets == () and empty.leads_s == ()


def test_table_shows_the_worst_seed_and_every_run():
    mixed = ('lead', 'van', 'car_a')
    reports = {
        ('highway_occlusion', 1): _report(V, see_last=0.97, moving=0.35, leads={'v1': 2.3, 'v2': 3.4, 'v4': 5.0}),
        ('highway_occlusion', 3): _report(V, see_last=0.91, moving=0.41, leads={'v1': 2.0, 'v2': 3.1, 'v4': 4.0}),
        ('highway_occlusion', 7): _report(V, see_last=0.96, moving=0.30, leads={'v1': 2.5, 'v2': 2.9, 'v4': 4.5},
                                          false=1),
        ('platoon_mixed', 7): _report(mixed, see_last=None, precision=0.88, moving=None, leads={}),
    }
    text = st.table(reports, 'python scripts/scenario_table.py --seeds 1 3 7', date='2026-12-07')
    lines = text.splitlines()
    assert lines[0] == '# Quality across the scenario set'
    assert 'Made by `python scripts/scenario_table.py --seeds 1 3 7` on 2026-12-07' in text
    worst = next(line for line in lines if line.startswith('| `highway_occlusion` | 1, 3, 7 |'))
    # worst see-through is seed 3's, worst moving error seed 3's; the worst lead per vehicle; false summed
    assert worst == ('| `highway_occlusion` | 1, 3, 7 | 0.910 (s3) | 0.900 (s1) | 0.41 (s3) | '
                     'v1 2.00 / v2 2.90 ✗ / v4 4.00 | 1 ✗ | 0 | missed on seed 7 |')
    assert '| `platoon_mixed` | 7 | n/a | 0.880 | n/a | n/a | 0 | 0 | met |' in lines
    runs = lines[lines.index('## Every run'):]
    assert '| `highway_occlusion` | 7 | 0.960 | 0.900 | 0.30 | v1 2.50 / v2 2.90 ✗ / v4 4.50 | 1 ✗ | 0 | ' \
           'lead v2 2.90 s < 3.0 s; 1 false |' in runs
    assert [line.split(' | ')[1] for line in runs if line.startswith('| `highway_occlusion`')] == ['1', '3', '7']


def test_platoon_config_per_scenario():
    assert st.platoon_config_for(st.scenario_path('platoon_mixed')) == \
        st.SCENARIO_DIR / 'platoon_mixed' / 'platoon.yaml'
    assert st.platoon_config_for(st.scenario_path('highway_clear')) == st.DEFAULT_PLATOON
    files = st._config_files(st.SCENARIO_DIR / 'platoon_mixed' / 'platoon.yaml')
    names = {f.name for f in files}
    assert {'platoon.yaml', 'vehicle.yaml', 'lead.yaml', 'tail.yaml', 'fusion.yaml', 'twin.yaml'} <= names
    assert set(st.SCENARIO_SET) >= {'platoon_mixed', 'dense_traffic', 'cut_in_close', 'highway_occlusion'}
    for name in st.SCENARIO_SET:
        assert st.scenario_path(name).is_file()


def test_a_finished_run_is_reused_only_when_its_inputs_match(tmp_path):
    scenario = tmp_path / 'highway_clear.yaml'
    shutil.copyfile(st.scenario_path('highway_clear'), scenario)
    inputs = st.run_inputs(scenario, 7, None, 'code-a')
    assert inputs['platoon_config'] == 'config/platoon.yaml'
    directory = st.run_dir(tmp_path / 'work', 'highway_clear', 7)
    directory.mkdir(parents=True)
    (directory / 'report.json').write_text(json.dumps({'scenario': 'highway_clear'}))
    assert st.finished_report(directory, inputs) is None                        # no inputs recorded: not finished
    (directory / 'inputs.json').write_text(json.dumps(inputs))
    assert st.finished_report(directory, inputs) == {'scenario': 'highway_clear'}
    assert st.finished_report(directory, st.run_inputs(scenario, 3, None, 'code-a')) is None     # other seed
    assert st.finished_report(directory, st.run_inputs(scenario, 7, 5.0, 'code-a')) is None      # other duration
    assert st.finished_report(directory, st.run_inputs(scenario, 7, None, 'code-b')) is None     # other code
    scenario.write_text(scenario.read_text().replace('seed: 7', 'seed: 8'))
    assert st.finished_report(directory, st.run_inputs(scenario, 7, None, 'code-a')) is None     # edited file


def test_a_kept_truth_bag_is_simulated_again_only_when_its_inputs_changed(tmp_path, monkeypatch):
    calls: list[str] = []

    def fake_cli(*args: str, log) -> None:
        calls.append(args[0])
        if args[0] == 'simulate':
            (tmp_path / 'work' / 'highway_clear_seed7' / 'truth.bag').mkdir()
        if args[0] == 'evaluate':
            (tmp_path / 'work' / 'highway_clear_seed7' / 'report.json').write_text('{"scenario": "highway_clear"}')

    monkeypatch.setattr(st, '_cli', fake_cli)
    scenario = st.scenario_path('highway_clear')
    work = tmp_path / 'work'
    assert st.run_one(work, scenario, 7, None, 'code-a', keep_bags=True) == {'scenario': 'highway_clear'}
    assert calls == ['simulate', 'run', 'evaluate']
    st.run_one(work, scenario, 7, None, 'code-a', keep_bags=True)
    assert calls == ['simulate', 'run', 'evaluate']                         # finished: reused
    directory = st.run_dir(work, 'highway_clear', 7)
    (directory / 'inputs.json').unlink()                                    # e.g. a run that failed after simulating
    st.run_one(work, scenario, 7, None, 'code-a', keep_bags=True)
    assert calls[3:] == ['run', 'evaluate']                                 # the kept truth bag is reused
    st.run_one(work, scenario, 7, None, 'code-b', keep_bags=False)
    assert calls[5:] == ['simulate', 'run', 'evaluate']                     # other code: simulated again
    assert sorted(p.name for p in directory.iterdir()) == ['inputs.json', 'report.json']     # bags removed


def test_finished_only_tables_the_finished_runs_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(st, '_cli', lambda *a, **k: (_ for _ in ()).throw(AssertionError('ran something')))
    work, out = tmp_path / 'work', tmp_path / 'table.md'
    scenario = st.scenario_path('highway_clear')
    directory = st.run_dir(work, 'highway_clear', 7)
    directory.mkdir(parents=True)
    (directory / 'report.json').write_text(json.dumps(_report(V, precision=0.7)))
    (directory / 'inputs.json').write_text(json.dumps(st.run_inputs(scenario, 7, None, st.code_digest())))
    assert st.main(['--scenarios', 'highway_clear', 'cut_in', '--seeds', '7', '--work', str(work),
                    '--out', str(out), '--finished-only']) == 0
    text = out.read_text()
    assert '| `highway_clear` | 7 | 0.950 | 0.700 ✗ |' in text and '`cut_in`' not in text


def test_a_value_just_below_its_target_shows_enough_decimals_to_be_below_it():
    row = st.row_of('s', 7, _report(V, precision=0.8497))
    assert row.missed_targets == ('precision away 0.8497 < 0.85',)
    md = st.table({('s', 7): _report(V, precision=0.8497)}, 'cmd', date='2026-01-01')
    assert '0.8497 ✗' in md and '0.850 ✗' not in md
    assert st._f(0.8512, 3, 0.85) == '0.851' and st._f(0.85, 3, 0.85) == '0.850' and st._f(None) == 'n/a'
