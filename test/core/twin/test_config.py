"""The twin's parameter table and parameter -> config mapping, on plain mappings (no ROS)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cooperative_fusion.core.config_files import ros_parameters
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.twin.config import (PARAMETERS, config_from_params, twin_config_from_params,
                                                 with_defaults)
from cooperative_fusion.core.twin.prediction import ObstacleModel
from cooperative_fusion.core.twin.tracking import MotionModel

CONFIG = Path(__file__).resolve().parents[3] / 'config' / 'twin.yaml'
NAMES = {'frames.map': 'map', 'topics.grid': '/g', 'topics.odom': '/{v}/o', 'topics.time_reference': '/{v}/t',
         'topics.radar_targets': '/{v}/r', 'topics.predicted_grid': '/p', 'topics.warnings': '/w',
         'topics.advisory': '/{v}/a', 'topics.markers': '/m'}


def test_defaults_make_the_default_config():
    cfg = config_from_params(with_defaults(NAMES))
    assert cfg.vehicles == ('v1', 'v2', 'v3', 'v4') and cfg.rear_overhangs_m == (1.0, 2.5, 1.0, 1.0)
    assert cfg.min_cycle_period_ns == 100_000_000 and cfg.accel_window_ns == 300_000_000
    assert cfg.twin.prediction.output_horizons_s == (0.5, 1.0, 2.0, 3.0)
    assert cfg.twin.prediction.idm.v0_mps == 30.0 and cfg.twin.prediction.idm.time_headway_s == 0.35
    assert cfg.twin.tracker.model is MotionModel.CV and cfg.twin.conflicts.min_track_hits == 8
    assert cfg.twin.conflicts.known_velocity_hits == 4 and cfg.twin.conflicts.known_velocity_std_mps == 0.7
    assert cfg.topics.for_vehicle(cfg.topics.odom, 'v3') == '/v3/o'
    p = cfg.platoon
    assert p.vehicles == cfg.vehicles and p.stale_odom_ns == 500_000_000 and p.future_tolerance_ns == 2_000_000_000
    assert p.base_to_centre_m('v2') == pytest.approx(3.5)


def test_with_defaults_fills_missing_names_and_turns_ints_into_floats():
    values = with_defaults({'horizon_s': 4, 'tracker.confirm_hits': 2, 'extra': 1})
    assert values['horizon_s'] == 4.0 and isinstance(values['horizon_s'], float)
    assert values['tracker.confirm_hits'] == 2 and values['extra'] == 1
    assert set(values) == {row.name for row in PARAMETERS} | {'extra'}


def test_the_shipped_file_maps_to_the_core_twin_config():
    twin = twin_config_from_params(with_defaults(ros_parameters(CONFIG)))
    assert twin.prediction.output_horizons_s == (0.5, 1.0, 2.0, 3.0)
    assert twin.prediction.obstacle_model is ObstacleModel.CV and twin.occupied_threshold == 65
    assert twin.exclude_trail_s == 0.2 and twin.exclude_front_m == 1.5 and twin.merge_gap_m == 1.0
    assert twin.merge_gap_across_m == 0.4


def test_bad_values_raise_config_error_naming_them():
    values = with_defaults(NAMES)
    with pytest.raises(ConfigError, match=r"parameter 'prediction.obstacle_model': expected one of cv, ctrv, got 'x'"):
        config_from_params({**values, 'prediction.obstacle_model': 'x'})
    with pytest.raises(ConfigError, match=r'vehicles must be distinct'):
        config_from_params({**values, 'vehicles': ['v1', 'v1', 'v2', 'v3']})
    with pytest.raises(ConfigError, match=r'topics.markers is empty'):
        config_from_params({**values, 'topics.markers': ''})


def test_a_misspelt_or_mistyped_value_is_named():
    values = with_defaults(NAMES)
    with pytest.raises(ConfigError, match=r'unknown parameter\(s\) conflicts.ttc_warn: ConflictConfig has no such '):
        config_from_params({**values, 'conflicts.ttc_warn': 5.0})
    with pytest.raises(ConfigError, match=r"parameter 'idm.delta': expected float, got str 'four'"):
        config_from_params({**values, 'idm.delta': 'four'})
    cfg = config_from_params({**values, 'clock.window_s': 1.5, 'clock.outlier_threshold_s': 0.002})
    assert cfg.clock.window_ns == 1_500_000_000 and cfg.clock.outlier_threshold_ns == 2_000_000
