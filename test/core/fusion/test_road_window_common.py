"""The common window along the road (straight at any heading, curved) and grids of different yaws."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.fusion.common_grid import CommonGrid, FusionConfig, onto_yaw
from cooperative_fusion.core.fusion.cooperative import platoon_center
from cooperative_fusion.core.fusion.window import RoadWindowConfig, platoon_road, road_window
from cooperative_fusion.core.grid import GridSpec

CFG = RoadWindowConfig(size_x_m=240.0, size_y_m=30.0, resolution_m=0.2, forward_offset_m=40.0)
GAPS_M = (0.0, 20.5, 38.0, 58.5)          # base_link distances behind the leader (car, truck, car, car)


def arc(radius: float, heading0: float, start: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) and headings (N,) at arc length ``s`` along a left curve of ``radius`` (inf: straight)."""
    if math.isinf(radius):
        th = np.full(s.shape, heading0)
        return start + s[:, None] * np.array([math.cos(heading0), math.sin(heading0)]), th
    th = heading0 + s / radius
    x = start[0] + radius * (np.sin(th) - math.sin(heading0))
    y = start[1] - radius * (np.cos(th) - math.cos(heading0))
    return np.stack([x, y], axis=1), th


@pytest.mark.parametrize('radius', [400.0, 500.0, 800.0])
def test_window_on_a_curve_holds_the_platoon_the_hazard_and_the_road_stretch(radius):
    start = np.array([300.0, -150.0])
    s_leader = 250.0
    s_members = s_leader - np.array(GAPS_M)
    pos, yaw = arc(radius, math.radians(-20.0), start, s_members)
    rng = np.random.default_rng(0)
    yaw = yaw + np.radians(rng.normal(0.0, 0.1, yaw.shape))         # odometry heading noise
    centre, spec = road_window(list(pos), list(yaw), CFG)
    assert spec.resolution == 0.2
    # Curvature fitted from the members' headings.
    _, _, kappa = platoon_road(list(pos), list(yaw))
    assert kappa == pytest.approx(1.0 / radius, rel=0.25)
    # The road from 80 m behind the centroid to 160 m ahead, ± 3.5 m about the platoon's lane centre line,
    # and a hazard 120 m ahead of the leader.
    s_mid = float(np.mean(s_members))
    road_s = np.arange(s_mid - 80.0, s_mid + 160.0 + 1e-9, 2.0)
    road = []
    for d in (-3.5, 0.0, 3.5):
        centre_line, th = arc(radius, math.radians(-20.0), start, road_s)
        road.append(centre_line + d * np.stack([-np.sin(th), np.cos(th)], axis=1))
        assert spec.in_bounds(*spec.world_to_cell(road[-1])).all(), f'lateral {d} m'
    hazard, _ = arc(radius, math.radians(-20.0), start, np.array([s_leader + 120.0]))
    assert spec.in_bounds(*spec.world_to_cell(hazard)).all()
    assert spec.in_bounds(*spec.world_to_cell(pos)).all()
    # Aligned with the chord: its length plus the road's half width turned at each end (sin of half the
    # arc's angle); wider than 30 m by about the arc's bulge (sagitta).
    sagitta = radius * (1.0 - math.cos(120.0 / radius))
    chord = 2.0 * radius * math.sin(120.0 / radius)
    assert spec.size_x == pytest.approx(chord + 30.0 * math.sin(120.0 / radius), abs=3.0)
    assert spec.size_y == pytest.approx(30.0 + sagitta, abs=3.0)
    # A 240 x 30 m window along the platoon's mean heading would miss part of that road.
    mean = math.atan2(np.mean(np.sin(yaw)), np.mean(np.cos(yaw)))
    c = platoon_center(list(pos), list(yaw), 40.0)
    heading_window = GridSpec.centered(float(c[0]), float(c[1]), 240.0, 30.0, 0.2, yaw=mean)
    assert not heading_window.in_bounds(*heading_window.world_to_cell(np.concatenate(road))).all()


def test_window_on_a_straight_road_at_30_degrees():
    heading = math.radians(30.0)
    pos, yaw = arc(math.inf, heading, np.array([1200.0, -800.0]), 300.0 - np.array(GAPS_M))
    centre, spec = road_window(list(pos), list(yaw), CFG)
    assert math.degrees(spec.yaw) == pytest.approx(30.0)
    assert spec.shape == (150, 1200)
    assert_allclose(centre, pos.mean(axis=0) + 40.0 * np.array([math.cos(heading), math.sin(heading)]))
    behind = pos.mean(axis=0) - 79.0 * np.array([math.cos(heading), math.sin(heading)])
    assert spec.in_bounds(*spec.world_to_cell(np.stack([behind, pos[-1], pos[0]]))).all()


def test_straight_along_map_x_is_the_axis_aligned_window():
    pos = [np.array([x, 0.0]) for x in (400.0, 379.5, 362.0, 341.5)]
    yaws = [0.001, -0.002, 0.0035, 0.0]
    centre, spec = road_window(pos, yaws, CFG)
    expected = platoon_center(pos, yaws, 40.0)
    assert_allclose(centre, expected, rtol=0, atol=0)
    assert spec == GridSpec.centered(float(expected[0]), float(expected[1]), 240.0, 30.0, 0.2)


def test_window_keeps_its_yaw_within_the_hysteresis():
    pos, _ = arc(math.inf, math.radians(31.4), np.zeros(2), 100.0 - np.array(GAPS_M))
    yaws = [math.radians(31.4)] * 4
    assert math.degrees(road_window(list(pos), yaws, CFG, current_yaw=math.radians(30.0))[1].yaw) == \
        pytest.approx(30.0)
    assert math.degrees(road_window(list(pos), yaws, CFG, current_yaw=None)[1].yaw) == pytest.approx(32.0)


def _grid(spec: GridSpec) -> CommonGrid:
    return CommonGrid(FusionConfig(spec=spec, vehicle_weights={'v1': 1.0}))


def test_turning_the_common_window_resamples_its_contents():
    old = GridSpec.centered(100.0, 50.0, 40.0, 20.0, 0.2, yaw=math.radians(30.0))
    grid = _grid(old)
    ev = np.zeros(old.shape, np.float32)
    known = np.zeros(old.shape, bool)
    ev[40:60, 90:110], known[40:60, 90:110] = 2.0, True           # a 4 m square at the window's centre
    assert grid.integrate('v1', old, ev, known, 0, 0).accepted
    new = GridSpec.centered(100.0, 50.0, 40.0, 20.0, 0.2, yaw=math.radians(32.0))
    grid.recenter(new)
    assert grid.spec == new and grid.turns == 1
    ix, iy = new.world_to_cell(np.array([[100.0, 50.0], [100.0 + 15.0, 50.0]]))
    assert grid.logodds[iy[0], ix[0]] > 1.0
    assert grid.logodds[iy[1], ix[1]] == 0.0
    # The square keeps its area (nearest cell: within a row or column of cells).
    assert abs(int((grid.logodds > 0).sum()) - 400) <= 2 * 20 + 4


def test_evidence_of_another_yaw_is_resampled_onto_the_common_lattice():
    common = GridSpec.centered(0.0, 0.0, 60.0, 30.0, 0.2, yaw=math.radians(10.0))
    grid = _grid(common)
    ev_spec = GridSpec.centered(5.0, 2.0, 20.0, 10.0, 0.4, yaw=math.radians(12.0))
    ev = np.full(ev_spec.shape, -0.5, np.float32)
    known = np.ones(ev_spec.shape, bool)
    hit = np.array([5.0, 2.0])
    ix, iy = ev_spec.world_to_cell(hit)
    ev[iy, ix] = 2.0
    result = grid.integrate('v1', ev_spec, ev, known, 0, 0)
    assert result.accepted and grid.resampled_evidence == 1
    cx, cy = common.world_to_cell(hit)
    assert grid.logodds[cy, cx] > 0
    far = common.world_to_cell(np.array([5.0 + 7.0, 2.0]))
    assert grid.logodds[far[1], far[0]] < 0
    spec, l, k = onto_yaw(ev_spec, ev, known, common.yaw)
    assert spec.yaw == common.yaw and spec.resolution == 0.4
    assert k.sum() >= known.sum() * 0.95
