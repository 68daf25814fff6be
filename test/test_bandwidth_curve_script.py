"""scripts/bandwidth_curve.py: every setting is a valid vehicle config, the target check and the YAML default."""
from __future__ import annotations

import pytest

from cooperative_fusion.core.vehicle.share import CropMode
from cooperative_fusion.nodes.vehicle_node import PARAMS, config_from_params

from script_module import load_script

bc = load_script('bandwidth_curve')


@pytest.mark.parametrize('name', list(bc.SETTINGS))
def test_bandwidth_curve_settings_are_valid_vehicle_configs(name):
    values = {p.name: p.default for p in PARAMS}
    values['vehicle_id'] = 'v1'
    for key, value in bc.vehicle_params(*bc.SETTINGS[name])['share'].items():
        values[f'share.{key}'] = value
    share = config_from_params(values).share
    assert (share.resolution_m, share.period_cycles, share.crop) == \
        (bc.SETTINGS[name][0], bc.SETTINGS[name][1], CropMode(bc.SETTINGS[name][2]))


def test_bandwidth_curve_target_check():
    ref = {'see_through_recall': {'v3': 0.62, 'v4': 0.77}}
    good = {'bandwidth_bytes_per_s': {'v1': 240e3, 'v3': 250e3}, 'see_through_recall': {'v3': 0.605, 'v4': 0.9}}
    assert bc.meets(good, ref) == (True, True)
    over = {'bandwidth_bytes_per_s': {'v1': 240e3, 'v3': 251e3}, 'see_through_recall': {'v3': 0.59, 'v4': 0.9}}
    assert bc.meets(over, ref) == (False, False)
    assert bc.meets({'see_through_recall': {'v4': 0.9}}, ref) == (False, False)


def test_bandwidth_curve_default_is_a_measured_setting():
    assert bc.yaml_default() in bc.SETTINGS.values()
