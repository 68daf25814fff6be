"""The fusion node's parameters -> FusionNodeConfig (core.fusion.config), without ROS."""
from __future__ import annotations

import pytest

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.config import WindowMode, config_from_params
from cooperative_fusion.nodes.fusion_params import PARAMS

DEFAULTS = {p.name: p.default for p in PARAMS}


def test_defaults_give_the_documented_config():
    cfg = config_from_params(DEFAULTS)
    assert cfg.window_mode is WindowMode.FOLLOW_PLATOON and cfg.fusion.spec.shape == (150, 1300)
    assert dict(cfg.fusion.vehicle_weights) == {'v1': 1.0, 'v2': 1.0, 'v3': 1.0, 'v4': 1.0}
    assert cfg.fusion.max_age_ns == 500_000_000 and cfg.publish_min_interval_ns == 20_000_000
    assert cfg.footprints['v2'].length_m == 12.0 and cfg.dynamic.max_age_ns == 300_000_000
    assert cfg.consistency is not None and cfg.consistency.max_age_ns == 200_000_000
    off = config_from_params({**DEFAULTS, 'consistency.enabled': False, 'dynamic.enabled': False,
                              'footprints.enabled': False, 'publish_on_evidence': False})
    assert off.consistency is None and off.dynamic is None and off.footprints is None
    assert off.publish_min_interval_ns is None


def test_fixed_window_starts_at_its_origin():
    cfg = config_from_params({**DEFAULTS, 'grid.mode': 'fixed', 'grid.fixed_origin_x_m': 10.2,
                              'grid.fixed_origin_y_m': -8.0, 'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0})
    spec = cfg.fusion.spec
    assert (spec.origin_x, spec.origin_y, spec.width, spec.height) == (10.2, -8.0, 150, 80)


def test_config_rejects_bad_values():
    d = dict(DEFAULTS)
    with pytest.raises(ConfigError, match=r'vehicle_weights has 2 values for 4 vehicles'):
        config_from_params({**d, 'vehicle_weights': [1.0, 0.5]})
    with pytest.raises(ConfigError, match=r"vehicles \['v1', 'v1'\] has duplicates"):
        config_from_params({**d, 'vehicles': ['v1', 'v1'], 'vehicle_weights': [1.0, 1.0]})
    with pytest.raises(ConfigError, match=r"vehicle id '/v1' is not a ROS name token"):
        config_from_params({**d, 'vehicles': ['/v1'], 'vehicle_weights': [1.0]})
    with pytest.raises(ConfigError, match=r"weight of vehicle 'v2' must be in \(0, 1\], got 1.5"):
        config_from_params({**d, 'vehicle_weights': [1.0, 1.5, 1.0, 1.0]})
    with pytest.raises(ConfigError, match=r"grid.mode 'rolling': expected one of follow_platoon, fixed"):
        config_from_params({**d, 'grid.mode': 'rolling'})
    with pytest.raises(ConfigError, match=r'grid.fixed_origin \(0.1, 0.0\) m is not a multiple'):
        config_from_params({**d, 'grid.mode': 'fixed', 'grid.fixed_origin_x_m': 0.1})
    with pytest.raises(ConfigError, match='clamp bounds'):
        config_from_params({**d, 'fusion.clamp_max': 0.0})




def test_core_configs_are_filled_by_field_name_and_a_misspelt_parameter_is_caught():
    cfg = config_from_params({**DEFAULTS, 'dynamic.radar_max_dt_s': 0.25, 'coregistration.max_iterations': 7,
                              'consistency.max_age_s': 0.15, 'fusion.free_wins_after_s': 0.02})
    assert cfg.dynamic.radar_max_dt_ns == 250_000_000 and cfg.coreg.max_iterations == 7
    assert cfg.consistency.max_age_ns == 150_000_000 and cfg.fusion.free_wins_after_ns == 20_000_000
    with pytest.raises(ConfigError, match=r'unknown parameter\(s\) fusion.max_agee_s'):
        config_from_params({**DEFAULTS, 'fusion.max_agee_s': 0.2})
    with pytest.raises(ConfigError, match=r"parameter 'coregistration.min_points': expected int"):
        config_from_params({**DEFAULTS, 'coregistration.min_points': 'ten'})
