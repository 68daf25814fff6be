"""The twin on roads that are not the map x axis: at 45 degrees, on an R = 500 m arc, and heading back
along -x. The same platoon and obstacles as on the straight road (in road coordinates) must give the
same conflicts, with every published point in map."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.road import RoadModel
from cooperative_fusion.core.twin.conflicts import ConflictLevel, find_conflicts
from cooperative_fusion.core.twin.prediction import ObstacleState, PlatoonState, PredictionConfig, rollout
from cooperative_fusion.core.twin.tracking import MotionModel, Track
from cooperative_fusion.core.twin.twin_core import TwinConfig, TwinCore
from road_scene import grid_along_road

LEN, WID, GAP, V, DT = 4.5, 1.8, 18.0, 25.0, 0.1
STOP_AHEAD_M = 120.0          # the stopped car, ahead of the leader's front at the last cycle
CYCLES = 30

ROADS = {
    'map_x': RoadModel.map_x(),
    'straight_45deg': RoadModel(0.0, 0.0, math.radians(45.0), 0.0),
    'arc_R500_left': RoadModel(0.0, 0.0, math.radians(10.0), 1 / 500),
    'arc_R500_right': RoadModel(0.0, 0.0, math.radians(-30.0), -1 / 500),
    'arc_R500_back_along_minus_x': RoadModel(0.0, 0.0, math.radians(120.0), 1 / 500),
}


def _leader_s(t: float) -> float:
    return 80.0 + V * t


def _grid_for(road: RoadModel) -> GridSpec:
    """An axis-aligned grid (0.5 m) covering the road from 0 to 320 m along it, 20 m to each side."""
    return grid_along_road(road, 320.0, 20.0, 0.5, 65)


def _paint(cells: np.ndarray, spec: GridSpec, road: RoadModel, s: float, d: float, length: float, width: float
           ) -> None:
    """An occupied box on the road at (s, d), aligned with the road there."""
    (x,), (y,), (h,) = road.to_map(np.array([s]), np.array([d]))
    xs, ys = spec.cell_centers()
    dx, dy = xs[None, :] - x, ys[:, None] - y
    u, v = dx * math.cos(h) + dy * math.sin(h), -dx * math.sin(h) + dy * math.cos(h)
    cells[(np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)] = 100


def _platoon(road: RoadModel, t: float, rng: np.random.Generator, noise_m: float = 0.1) -> PlatoonState:
    s = _leader_s(t) - np.arange(4) * (GAP + LEN)
    x, y, h = road.to_map(s, np.zeros(4))
    return PlatoonState(('v1', 'v2', 'v3', 'v4'), x + rng.normal(0, noise_m, 4), y + rng.normal(0, noise_m, 4),
                        np.full(4, V), h + rng.normal(0, 0.002, 4), np.full(4, LEN), np.full(4, WID), np.arange(4))


def _run(road: RoadModel, stopped: bool = True, next_lane_car: bool = True, seed: int = 0):
    """CYCLES twin cycles on a synthetic common grid; the result of the last."""
    rng = np.random.default_rng(seed)
    spec = _grid_for(road)
    t_end = (CYCLES - 1) * DT
    s_stop = _leader_s(t_end) + LEN / 2 + STOP_AHEAD_M + 2.0
    twin = TwinCore(TwinConfig(prediction=PredictionConfig(horizon_s=8.0)))   # v4 is 7.3 s from the conflict distance
    for k in range(CYCLES):
        t = k * DT
        cells = np.zeros(spec.shape, np.int8)
        pl = _platoon(road, t, rng)
        for s in _leader_s(t) - np.arange(4) * (GAP + LEN):
            _paint(cells, spec, road, s, 0.0, LEN, WID)
        if stopped:
            _paint(cells, spec, road, s_stop, 0.0, 4.0, 1.8)
        if next_lane_car:
            _paint(cells, spec, road, 150.0 + 20.0 * t, 3.5, 4.4, 1.8)     # slower car in the next lane
        res = twin.step(cells, spec, int(round(t * 1e9)), pl)
    return res, twin, s_stop


@pytest.mark.parametrize('name', list(ROADS))
def test_stopped_car_ahead_warns_every_member_as_on_the_straight_road(name):
    road = ROADS[name]
    res, twin, s_stop = _run(road)
    fitted = res.rollout.road
    assert (fitted is None) == (name == 'map_x')
    if fitted is not None:
        assert abs(fitted.curvature - road.curvature) < 3e-4
    stopped = [tr for tr in res.tracks if abs(tr.vx) + abs(tr.vy) < 1.0]
    assert len(stopped) == 1
    assert [c.vehicle_id for c in res.conflicts] == ['v1', 'v2', 'v3', 'v4']
    assert all(c.obstacle_track_id == stopped[0].track_id for c in res.conflicts)
    # The leader's time to collision is the along-road gap at its speed, as on the straight road.
    lead_front = _leader_s((CYCLES - 1) * DT) + LEN / 2
    assert_allclose(res.conflicts[0].ttc_s, (s_stop - 2.0 - lead_front) / V, atol=0.1)
    assert_allclose(res.conflicts[0].distance_m, STOP_AHEAD_M, atol=1.0)
    assert res.conflicts[0].level is ConflictLevel.WARN
    # Published points are in map: the obstacle where it is, the contact point on the road.
    (sx,), (sy,), _ = road.to_map(np.array([s_stop]), np.array([0.0]))
    for c in res.conflicts:
        assert math.hypot(c.obstacle_x - sx, c.obstacle_y - sy) < 0.5
    c1 = res.conflicts[0]
    (cx,), (cy,), _ = road.to_map(np.array([lead_front + V * c1.ttc_s]), np.array([0.0]))
    assert math.hypot(c1.x - cx, c1.y - cy) < 0.5
    # The leader's advisory follows the road (poses within 0.5 m of the lane centre up to 120 m ahead of a
    # road fitted to 140 m of noisy path, yaw the road's)
    # and ends at least the safe gap behind the stopped car.
    adv = res.advisories['v1']
    s_adv, d_adv = road.to_road(np.column_stack([adv.x, adv.y]))
    assert np.max(np.abs(d_adv)) < 0.5
    assert np.all(np.diff(s_adv) >= -1e-9)
    assert_allclose(np.cos(adv.yaw - road.heading_at(s_adv)), 1.0, atol=1e-3)
    assert s_adv[-1] + LEN / 2 <= s_stop - 2.0 - twin.config.conflicts.safe_gap_m + 0.5


@pytest.mark.parametrize('name', list(ROADS))
def test_a_car_in_the_next_lane_raises_nothing(name):
    res, _, _ = _run(ROADS[name], stopped=False)
    assert len(res.tracks) == 1
    assert res.conflicts == []


@pytest.mark.parametrize('name', list(ROADS))
def test_predicted_grids_put_the_platoon_on_the_road(name):
    road = ROADS[name]
    res, _, _ = _run(road, stopped=False, next_lane_car=False)
    ro = res.rollout
    k = ro.step_of(2.0)
    x, y, yaw = ro.platoon_poses(k)
    s, d = road.to_road(np.column_stack([x, y]))
    t_end = (CYCLES - 1) * DT
    # The leader keeps its speed; followers fall back to the twin's IDM headway, in order behind it.
    assert_allclose(s[0], _leader_s(t_end + 2.0), atol=0.5)
    assert np.all(np.diff(s) < -(GAP + LEN) + 1.0)
    assert_allclose(d, 0.0, atol=0.3)
    assert_allclose(np.cos(yaw - road.heading_at(s)), 1.0, atol=1e-3)
    # The predicted grid is occupied at the leader's predicted centre.
    spec = _grid_for(road)
    col = int((x[0] - spec.origin_x) / spec.resolution)
    row = int((y[0] - spec.origin_y) / spec.resolution)
    assert res.grids[2.0][row, col] > 0.5


def test_road_ordering_not_map_x_ordering_gives_the_predecessors():
    """Heading back along -x (and curving), map x decreases along the platoon: gaps and leaders come
    from s, so a stable platoon raises nothing and each member follows its predecessor."""
    road = ROADS['arc_R500_back_along_minus_x']
    rng = np.random.default_rng(4)
    pl = _platoon(road, 0.0, rng, noise_m=0.0)
    assert np.all(np.diff(pl.x) > 0)          # the leader has the smallest map x
    ro = rollout(pl.in_road(road), ObstacleState.empty(), road=road)
    assert_allclose(np.diff(ro.platoon_x[0]), -(GAP + LEN), atol=1e-6)
    assert_allclose(ro.platoon_leader[0], [-1, 0, 1, 2])
    assert np.all(np.isinf(ro.platoon_collision_s))
    assert find_conflicts(ro) == []


def test_tracks_are_projected_on_the_road_heading_where_they_are():
    road = RoadModel(0.0, 0.0, 0.3, 1 / 500)
    (x,), (y,), (h,) = road.to_map(np.array([200.0]), np.array([3.5]))
    v_s, a_s = 20.0, -2.0
    state = np.array([x, y, v_s * math.cos(h), v_s * math.sin(h), a_s * math.cos(h), a_s * math.sin(h)])
    cov = np.diag([0.1, 0.1, 4.0, 0.25, 1.0, 1.0])
    rot = np.array([[math.cos(h), -math.sin(h)], [math.sin(h), math.cos(h)]])
    cov[2:4, 2:4] = rot @ np.diag([4.0, 0.25]) @ rot.T
    track = Track(7, state, cov, 10, 10, 0, 4.4, 1.8, h, True, 0, MotionModel.CA)
    ob = ObstacleState.from_tracks([track], road=road)
    assert_allclose([ob.x[0], ob.y[0], ob.vx[0], ob.vy[0], ob.ax[0], ob.ay[0]], [200.0, 3.5, v_s, 0.0, a_s, 0.0],
                    atol=1e-9)
    assert_allclose(ob.yaw[0], 0.0, atol=1e-9)
    assert_allclose(ob.vy_std[0], 0.5, atol=1e-9)
    # Without a road: map values, as before.
    plain = ObstacleState.from_tracks([track])
    assert_allclose([plain.x[0], plain.vx[0], plain.ax[0], plain.vy_std[0]], [x, state[2], state[4], math.sqrt(cov[3, 3])])
