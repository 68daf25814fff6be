from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.sim.scenario import HazardKind, VehicleType, load_scenario, scenario_from_dict

SCENARIOS = Path(__file__).resolve().parents[2] / 'config' / 'scenarios'


@pytest.mark.parametrize('name', ['highway_occlusion', 'highway_clear', 'cut_in'])
def test_shipped_scenarios_load(name):
    scn = load_scenario(SCENARIOS / f'{name}.yaml')
    assert scn.name == name
    assert scn.vehicle_ids == ('v1', 'v2', 'v3', 'v4')
    assert scn.platoon.vehicles[1].type is VehicleType.TRUCK
    assert scn.platoon.vehicles[1].dimensions.length_m == pytest.approx(12.0)
    assert 3.5 <= scn.platoon.vehicles[1].dimensions.height_m <= 4.0
    assert scn.platoon.vehicles[0].sensors.lidar.rate_hz == 10.0
    assert scn.platoon.vehicles[0].sensors.radar.rate_hz == 20.0
    assert scn.platoon.vehicles[0].sensors.camera.rate_hz == 15.0


def test_default_scenario_content():
    scn = load_scenario(SCENARIOS / 'highway_occlusion.yaml')
    assert [h.kind for h in scn.hazards] == [HazardKind.STOPPED_CAR]
    offsets = [v.clock.offset_ms for v in scn.platoon.vehicles]
    assert max(offsets) - min(offsets) == pytest.approx(400.0)
    assert max(abs(v.clock.drift_ppm) for v in scn.platoon.vehicles) == pytest.approx(50.0)
    # The truck takes its sensor mounts from sensor_defaults.truck, the cars from .car.
    assert scn.platoon.vehicles[1].sensors.lidar.mount.xyz_m == (9.6, 0.0, 2.3)
    assert scn.platoon.vehicles[2].sensors.lidar.mount.xyz_m == (1.2, 0.0, 1.9)
    assert any(t.lane == 1 for t in scn.traffic)


def _raw():
    return yaml.safe_load((SCENARIOS / 'highway_occlusion.yaml').read_text())


def test_error_names_file_key_path_value_and_expectation(tmp_path):
    raw = _raw()
    raw['platoon']['vehicles'][2]['sensors']['lidar']['rate_hz'] = -5
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r'bad\.yaml: platoon\.vehicles\[2\]\.sensors\.lidar\.rate_hz: got -5, '
                                          r'expected a number > 0 and <= 100'):
        load_scenario(path)


@pytest.mark.parametrize('mutate,pattern', [
    (lambda r: r['road'].update(lanes=3), r'road\.lanes: unknown key; allowed keys at road: curvature_per_m'),
    (lambda r: r['platoon']['vehicles'][0].update(type='bus'),
     r"platoon\.vehicles\[0\]\.type: got 'bus', expected one of 'car', 'truck'"),
    (lambda r: r['hazards'][0].update(lane=7), r'hazards\[0\]\.lane: got 7, expected an integer >= 0 and <= 2'),
    (lambda r: r['platoon']['vehicles'][1].pop('gap_m'), r'platoon\.vehicles\[1\]\.gap_m: missing required key'),
    (lambda r: r['platoon']['vehicles'][3].update(id='v1'), r"platoon\.vehicles\[3\]\.id: got 'v1'"),
    (lambda r: r['platoon']['vehicles'][0]['sensors']['radar'].update(detection_prob=1.5),
     r'sensors\.radar\.detection_prob: got 1\.5, expected a number >= 0\.0 and <= 1\.0'),
    (lambda r: r['platoon'].update(speed_profile=[[0, 25], [0, 20]]),
     r'platoon\.speed_profile\[1\]: got \[0\.0, 20\.0\], expected a time > 0\.0 s'),
    (lambda r: r['platoon']['sensor_defaults']['car']['lidar']['mount'].update(xyz_m=[1, 2]),
     r'platoon\.vehicles\[0\]\.sensors\.lidar\.mount\.xyz_m: got \[1, 2\], expected a list of 3 finite numbers'),
    (lambda r: r['traffic'][0].update(id='h1'), r"object id 'h1' is used more than once"),
    (lambda r: r.update(duration_s='long'), r"duration_s: got 'long', expected a number"),
    (lambda r: r['platoon']['idm'].update(v0_mps=0), r'platoon\.idm: IdmParams\.v0_mps must be a positive'),
    (lambda r: r['traffic'][0].update(lane_change={'t_s': 2.0, 'to_lane': 5}),
     r'traffic\[0\]\.lane_change\.to_lane: got 5, expected an integer >= 0 and <= 2'),
])
def test_invalid_values_rejected(mutate, pattern):
    raw = _raw()
    mutate(raw)
    with pytest.raises(ConfigError, match=pattern):
        scenario_from_dict(raw, 'x.yaml')


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match=r'nope\.yaml: cannot read scenario file'):
        load_scenario(tmp_path / 'nope.yaml')
    bad = tmp_path / 'broken.yaml'
    bad.write_text('name: [unclosed')
    with pytest.raises(ConfigError, match=r'broken\.yaml: not valid YAML'):
        load_scenario(bad)


def test_debris_hazard_defaults_to_a_small_low_box():
    raw = _raw()
    raw['hazards'].append({'id': 'd1', 'kind': 'debris', 'lane': 1, 'x_m': 200.0})
    scn = scenario_from_dict(raw, 'x.yaml')
    debris = scn.hazards[-1]
    assert debris.kind is HazardKind.DEBRIS
    assert (debris.dimensions.length_m, debris.dimensions.width_m, debris.dimensions.height_m) == (0.6, 0.5, 0.2)


def test_landmark_pair_differs_only_in_v1_bias_and_has_roadside_posts():
    plain = load_scenario(SCENARIOS / 'highway_occlusion_landmarks.yaml')
    biased = load_scenario(SCENARIOS / 'highway_occlusion_landmarks_v1_bias.yaml')
    assert plain.roadside == biased.roadside and plain.hazards == biased.hazards
    assert plain.platoon.vehicles[1:] == biased.platoon.vehicles[1:]
    b, p = biased.platoon.vehicles[0].localization, plain.platoon.vehicles[0].localization
    assert (b.bias_y_m - p.bias_y_m, b.bias_yaw_deg - p.bias_yaw_deg) == pytest.approx((0.55, 0.9))
    road = plain.road
    right, left = (row.boxes(road) for row in plain.roadside)
    # Posts 1 m beyond each road edge (0.4 m wide: centre 1.2 m out), every 12 m.
    assert [d for _, _, d in right] == pytest.approx([-road.lane_width_m / 2 - 1.2] * len(right))
    assert [d for _, _, d in left] == pytest.approx([(road.lane_count - 0.5) * road.lane_width_m + 1.2] * len(left))
    assert right[1][1] - right[0][1] == pytest.approx(12.0) and len(right) == 71


def test_roadside_rows_are_validated():
    raw = _raw()
    raw['roadside'] = [{'id': 'p', 'side': 'middle', 'x_start_m': 0.0, 'x_end_m': 10.0, 'spacing_m': 5.0}]
    with pytest.raises(ConfigError, match=r"roadside\[0\]\.side.*'left' or 'right'"):
        scenario_from_dict(raw)
    raw['roadside'][0]['side'] = 'left'
    raw['roadside'][0]['spacing_m'] = 0.1
    with pytest.raises(ConfigError, match=r'roadside\[0\].*spacing_m'):
        scenario_from_dict(raw)
