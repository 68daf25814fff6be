"""scripts/quality_table.py: generated platoon configs; the pose-bias section is built from the reports and
spliced into the file alone."""
from __future__ import annotations

import yaml
from script_module import load_script

from cooperative_fusion.app.platoon import load_platoon_config

qt = load_script('quality_table')


def _coreg(dx: float, dy: float, dyaw: float, updates: int) -> dict[str, str]:
    return {'coreg.dx': str(dx), 'coreg.dy': str(dy), 'coreg.dyaw_deg': str(dyaw), 'coreg.updates': str(updates)}


def test_platoon_config_keeps_the_platoon_and_appends_the_overrides(tmp_path):
    cfg = load_platoon_config(qt.platoon_config(tmp_path, 'nc', {'timebase': {'enabled': False}},
                                                {'coregistration': {'enabled': False}}))
    default = load_platoon_config(None)
    assert cfg.platoon[0].id == 'v1' and not cfg.run_twin
    # the same platoon (ids, bodies, weights): fusion fuses the default platoon
    assert [(v.id, v.body, v.weight) for v in cfg.platoon] == [(v.id, v.body, v.weight) for v in default.platoon]
    assert cfg.node_parameters() == default.node_parameters()
    assert [p.name for p in cfg.vehicle_params['v2']] == ['vehicle.yaml', 'v2.yaml', 'nc_vehicle.yaml']
    assert yaml.safe_load(cfg.fusion_params[-1].read_text()) == {
        '/**': {'ros__parameters': {'coregistration': {'enabled': False}}}}


def test_inverse_biases_come_from_the_scenario_file():
    target = qt._inverse_biases('landmarks_v1_bias')
    assert target['v1'] == (-0.1, -0.5, -1.0)
    assert target['v2'] == (0.2, -0.1, 0.2)


def test_pose_bias_section_replaces_only_its_own_section():
    report = {'occupied_precision': 0.861, 'object_recall': 0.75, 'see_through_recall': {'mean': 0.6},
              'coreg': {'v1': _coreg(-0.2, -0.49, -1.25, 20), 'v2': _coreg(0.1, 0.0, 0.3, 19), 'v3': {}, 'v4': {}}}
    plain = {'occupied_precision': 0.834, 'object_recall': 0.6, 'see_through_recall': {'mean': 0.37},
             'coreg': {v: _coreg(0, 0, 0, 0) for v in qt.VEHICLES}}
    section = qt.pose_bias_section({'bias_coreg': report, 'bias_no_coreg': plain}, 'python scripts/quality_table.py X')
    text = '\n'.join(section)
    assert '| landmarks v1 biased, co-registration on | 0.861 | 0.750 | 0.600 | -0.20, -0.49 / -1.25 (20) |' in text
    assert '| landmarks v1 biased, co-registration off | 0.834 | 0.600 | 0.370 | none |' in text
    assert '| bias_coreg | -0.20, -0.49 / -1.25 (20) | -0.10, -0.50 / -1.00 | +0.10, +0.00 / +0.30 (19) |' in text
    assert 'landmarks unbiased' not in text                      # rows without a report are left out
    doc = '# T\n\n## A\n\nkeep a\n\n## Pose bias (old)\n\nold row\n\n## B\n\nkeep b\n'
    new = qt.replace_section(doc, '## Pose bias', section)
    assert 'old row' not in new and 'keep a' in new and new.endswith('## B\n\nkeep b\n')
    assert new.index('## A') < new.index('## Pose bias and co-registration') < new.index('## B')
