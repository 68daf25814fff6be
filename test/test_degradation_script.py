"""scripts/degradation_table.py: the generated configs load, and two rows on a 2 s bag give a table of numbers."""
from __future__ import annotations

import re

import yaml

from cooperative_fusion.core.faults import load_faults
from cooperative_fusion.app.platoon import load_platoon_config

from script_module import load_script

dt = load_script('degradation_table')


def test_degradation_link_faults_load_with_delay_and_loss_on_shared_outputs_only(tmp_path):
    path = dt.faults_file(tmp_path, 'link', dt.RunSpec(link=(200.0, 0.1)))
    faults = load_faults(path)
    spec = faults.for_vehicle('v3')
    assert spec is not None and faults.faulted(['v1', 'v2', 'v3', 'v4']) == ['v1', 'v2', 'v3', 'v4']
    for stream in ('evidence_grid', 'radar/targets'):
        link = spec.link(stream)
        assert (link.delay_ms, link.loss, link.jitter_ms, link.reorder) == (200.0, 0.1, 0.0, 0.0)
    assert spec.link('odom') is None and spec.link('time_reference') is None


def test_degradation_platoon_config_appends_param_overrides(tmp_path):
    spec = dt.RUNS['clock_uncorrected']
    cfg = load_platoon_config(dt.platoon_config(tmp_path, 'clk', spec, twin=False))
    assert cfg.vehicles == ('v1', 'v2', 'v3', 'v4') and not cfg.run_twin and cfg.run_fusion
    assert cfg.node_parameters() == load_platoon_config(None).node_parameters()   # bodies and weights kept
    extra = cfg.vehicle_params['v2'][-1]
    assert yaml.safe_load(extra.read_text()) == {'/**': {'ros__parameters': {'timebase': {'enabled': False}}}}
    assert [p.name for p in cfg.vehicle_params['v2'][:2]] == ['vehicle.yaml', 'v2.yaml']
    assert [p.name for p in cfg.fusion_params] == ['fusion.yaml']
    nocoreg = load_platoon_config(dt.platoon_config(tmp_path, 'nc', dt.RUNS['bias_no_coreg']))
    assert nocoreg.run_twin
    assert yaml.safe_load(nocoreg.fusion_params[-1].read_text())['/**']['ros__parameters'] == {
        'coregistration': {'enabled': False}}
    assert dt.faults_file(tmp_path, 'nc', dt.RUNS['bias_no_coreg']).name == 'pose_bias.yaml'
    coreg = load_platoon_config(dt.platoon_config(tmp_path, 'co', dt.RUNS['bias_coreg']))
    assert yaml.safe_load(coreg.fusion_params[-1].read_text())['/**']['ros__parameters'] == {
        'coregistration': {'enabled': True}}


def test_degradation_every_row_names_a_run_and_shipped_faults_exist():
    assert {r.run for r in dt.ROWS.values()} <= set(dt.RUNS)
    for run in dt.RUNS.values():
        assert run.faults_file is None or run.faults_file.is_file()
    assert dt.ROWS['delay_0'].run == dt.ROWS['loss_0'].run


def test_degradation_two_rows_on_a_short_bag_give_numeric_cells(tmp_path):
    bag = dt.simulate(tmp_path, 2.0)
    results = {rid: dt.run_row(dt.ROWS[rid].run, bag, tmp_path, twin=False) for rid in ('delay_0', 'delay_100')}
    text = dt.table(results, ['# test', ''])
    assert all(r['run_ok'] for r in results.values())
    assert not list(tmp_path.glob('*_result.bag'))   # result bags are removed after evaluation
    number = re.compile(r'^\d+\.\d{3}$')
    for label in ('delay 0 ms', 'delay 100 ms'):
        line = next(ln for ln in text.splitlines() if ln.startswith(f'| {label} |'))
        cells = [c.strip() for c in line.strip('|').split('|')]
        # object_recall, see-through mean, occupied_precision are measured numbers in [0, 1]
        for cell in (cells[1], cells[2], cells[5]):
            assert number.match(cell), line
            assert 0.0 <= float(cell) <= 1.0
    assert 'delay 50 ms' not in text


def test_degradation_sustained_lead_skips_a_stray_early_warning():
    # v3 warned at 0 s (stray), from 10 s to 12.5 s, and again just before the meeting at 14 s; v4 never
    report = {'warning_lead_time_s': {'v3': 14.0, 'v4': None, 'min': 14.0},
              'twin_diagnostics': {'warning_episodes_s': {'v3': [[0.0, 0.3], [10.0, 12.5], [13.9, 14.5]]}}}
    assert dt.sustained_leads(report) == {'v3': 4.0, 'v4': None}
    assert dt.lead_min_hidden(report) is None and dt.lead_min_hidden(report, sustained=True) is None
    report['warning_lead_time_s']['v4'] = 3.0
    report['twin_diagnostics']['warning_episodes_s']['v4'] = [[0.0, 3.2]]
    assert dt.lead_min_hidden(report) == 3.0
    assert dt.lead_min_hidden(report, sustained=True) == 3.0
