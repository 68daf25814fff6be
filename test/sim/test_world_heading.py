"""The simulator on a road at any heading and start (issue 13): the same world, turned and moved."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from numpy.testing import assert_allclose

from cooperative_fusion.sim.events import EventKind
from cooperative_fusion.sim.scenario import Road, scenario_from_dict
from cooperative_fusion.sim.world import Simulation

SCENARIOS = Path(__file__).resolve().parents[2] / 'config' / 'scenarios'

HEADING_DEG, X0, Y0 = 30.0, 1200.0, -800.0


def _scenario(moved: bool):
    """The default scenario with only v1's lidar, the stopped car 30 m ahead; the road turned and moved."""
    raw = yaml.safe_load((SCENARIOS / 'highway_occlusion.yaml').read_text())
    for v in raw['platoon']['vehicles']:
        for sensor in ('lidar', 'radar', 'camera'):
            v['sensors'][sensor]['enabled'] = sensor == 'lidar' and v['id'] == 'v1'
    raw['hazards'][0]['x_m'] = 30.0
    if moved:
        raw['road'].update(heading_deg=HEADING_DEG, x_m=X0, y_m=Y0)
    return scenario_from_dict(raw, 'moved' if moved else 'default')


@pytest.fixture(scope='module')
def runs():
    out = {}
    for moved in (False, True):
        out[moved] = [e for e in Simulation(_scenario(moved), seed=3).events(0.5)
                      if e.kind in (EventKind.TRUTH_OBJECTS, EventKind.LIDAR, EventKind.TRUTH_GRID)]
    return out


def _turn(xy: np.ndarray) -> np.ndarray:
    h = math.radians(HEADING_DEG)
    return np.stack([X0 + math.cos(h) * xy[..., 0] - math.sin(h) * xy[..., 1],
                     Y0 + math.sin(h) * xy[..., 0] + math.cos(h) * xy[..., 1]], axis=-1)


def test_truth_boxes_are_turned_and_moved(runs):
    a = next(e for e in runs[False] if e.kind is EventKind.TRUTH_OBJECTS).data['boxes']
    b = next(e for e in runs[True] if e.kind is EventKind.TRUTH_OBJECTS).data['boxes']
    assert [x['id'] for x in a] == [x['id'] for x in b]
    ca = np.array([x['center'][:2] for x in a])
    assert_allclose(np.array([x['center'][:2] for x in b]), _turn(ca), atol=1e-6)
    assert_allclose([x['yaw'] for x in b], np.array([x['yaw'] for x in a]) + math.radians(HEADING_DEG), atol=1e-9)
    assert_allclose([x['size'] for x in b], [x['size'] for x in a])
    h = math.radians(HEADING_DEG)
    va = np.array([x['velocity'] for x in a])
    assert_allclose(np.array([x['velocity'] for x in b]),
                    np.stack([math.cos(h) * va[:, 0] - math.sin(h) * va[:, 1],
                              math.sin(h) * va[:, 0] + math.cos(h) * va[:, 1]], axis=1), atol=1e-6)


def test_lidar_sees_the_same_things(runs):
    """Points are in the sensor frame: the turned world gives the same scans (same seed), up to rounding."""
    la = [e.data['points'] for e in runs[False] if e.kind is EventKind.LIDAR]
    lb = [e.data['points'] for e in runs[True] if e.kind is EventKind.LIDAR]
    assert len(la) == len(lb) >= 4
    for pa, pb in zip(la, lb):
        # The stopped car's rear face: 10..35 m ahead of v1's lidar (it drives at 25 m/s), within a lane width.
        on_a = (pa['x'] > 10.0) & (pa['x'] < 35.0) & (np.abs(pa['y']) < 1.5) & (pa['z'] > -1.7)
        on_b = (pb['x'] > 10.0) & (pb['x'] < 35.0) & (np.abs(pb['y']) < 1.5) & (pb['z'] > -1.7)
        assert on_a.sum() >= 20
        assert abs(int(on_b.sum()) - int(on_a.sum())) <= max(2, 0.05 * on_a.sum())
        assert abs(len(pb) - len(pa)) <= 0.01 * len(pa)


def test_truth_grid_follows_the_road(runs):
    ga = next(e for e in runs[False] if e.kind is EventKind.TRUTH_GRID).data
    gb = next(e for e in runs[True] if e.kind is EventKind.TRUTH_GRID).data
    assert ga['spec'].yaw == 0.0
    assert math.degrees(gb['spec'].yaw) == pytest.approx(HEADING_DEG, abs=1e-6)
    assert gb['spec'].shape == pytest.approx(ga['spec'].shape, abs=2)
    na, nb = int((ga['cells'] == 100).sum()), int((gb['cells'] == 100).sum())
    assert abs(nb - na) <= 0.03 * na


@pytest.mark.parametrize('road', [Road(), Road(heading_deg=30.0, x_m=1200.0, y_m=-800.0),
                                  Road(curvature_per_m=0.002, heading_deg=-20.0),
                                  Road(curvature_per_m=-0.004, heading_deg=100.0, x_m=5.0, y_m=-7.0)])
def test_road_coordinates_round_trip(road):
    s, d = np.array([-100.0, 0.0, 50.0, 400.0]), np.array([0.0, 3.5, -2.0, 7.0])
    x, y, heading = road.to_map(s, d)
    assert_allclose(road.to_road(x, y), (s, d), atol=1e-9)
    # The heading is the direction of the centre line.
    x1, y1, _ = road.to_map(s + 1e-3, d)
    assert_allclose(np.arctan2(y1 - y, x1 - x), heading, atol=1e-5)
