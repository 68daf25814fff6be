from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.twin.conflicts import ConflictConfig, ConflictLevel
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.twin.prediction import PlatoonState, PredictionConfig, iou
from cooperative_fusion.core.twin.tracking import Track
from cooperative_fusion.core.road import RoadModel
from cooperative_fusion.core.twin.twin_core import TwinConfig, TwinCore, mature_tracks, road_heading

LEN, GAP, V = 4.5, 18.0, 25.0
SPEC = GridSpec(0.0, -15.0, 0.2, 1500, 150)       # 300 m x 30 m
#: A horizon in which v4 (the last, 7.9 s from the stopped car below) reaches the conflict distance.
LONG = PredictionConfig(horizon_s=8.0)


def _paint(cells, x, y, length, width, value=100):
    xs, ys = SPEC.cell_centers()
    cells[(np.abs(ys[:, None] - y) <= width / 2) & (np.abs(xs[None, :] - x) <= length / 2)] = value


def _platoon(t: float, x0: float = 40.0) -> PlatoonState:
    x = x0 + V * t - np.arange(4) * (GAP + LEN)
    return PlatoonState(('v1', 'v2', 'v3', 'v4'), x, np.zeros(4), np.full(4, V), np.zeros(4),
                        np.full(4, LEN), np.full(4, 1.8), np.arange(4))


def _scene(t: float, stopped_x: float, car_x0: float, car_v: float) -> tuple[np.ndarray, PlatoonState]:
    cells = np.zeros(SPEC.shape, np.int8)
    pl = _platoon(t)
    for x in pl.x:
        _paint(cells, x, 0.0, LEN, 1.8)            # platoon vehicles are in the common grid too
    _paint(cells, stopped_x, 0.0, 4.0, 1.8)        # a stopped car in the platoon's lane
    _paint(cells, car_x0 + car_v * t, 3.5, 4.4, 1.8)  # a car in the next lane
    return cells, pl


def test_twin_cycle_tracks_obstacles_not_platoon_and_warns_everyone():
    twin = TwinCore(TwinConfig(prediction=LONG))
    for k in range(8):
        t = k * 0.1
        cells, pl = _scene(t, stopped_x=190.0, car_x0=80.0, car_v=20.0)
        res = twin.step(cells, SPEC, k * 100_000_000, pl)
    assert len(res.detections) == 2                          # platoon vehicles excluded
    assert len(res.tracks) == 2
    by_y = sorted(res.tracks, key=lambda tr: tr.y)
    assert_allclose([by_y[0].x, by_y[0].vx], [190.0, 0.0], atol=0.3)
    assert_allclose(by_y[1].x, 80.0 + 20.0 * 0.7, atol=0.3)
    assert_allclose(by_y[1].vx, 20.0, atol=1.0)
    assert [c.vehicle_id for c in res.conflicts] == ['v1', 'v2', 'v3', 'v4']
    c1 = res.conflicts[0]
    assert c1.obstacle_track_id == by_y[0].track_id
    lead_front = 40.0 + V * 0.7 + LEN / 2
    assert_allclose(c1.ttc_s, (190.0 - 2.0 - lead_front) / V, atol=0.05)
    # 128 m at 25 m/s: TTC 5.1 s < 6 s, needs 2.5 m/s^2 < 3 m/s^2 to stop 5 m short -> WARN.
    assert c1.level is ConflictLevel.WARN
    assert set(res.advisories) == {'v1', 'v2', 'v3', 'v4'}
    adv = res.advisories['v1']
    assert adv.x[-1] + LEN / 2 <= 190.0 - 2.0 - twin.config.conflicts.safe_gap_m + 0.3
    assert set(res.grids) == {0.5, 1.0, 2.0, 3.0}
    # The predicted grid at 0.5 s overlaps the truth 0.5 s later (platoon at constant speed, car at 20 m/s).
    truth, _ = _scene(0.7 + 0.5, stopped_x=190.0, car_x0=80.0, car_v=20.0)
    assert iou(res.grids[0.5], truth) > 0.5


def test_radar_without_sensor_position_is_refused():
    twin = TwinCore()
    cells, pl = _scene(0.0, 190.0, 80.0, 20.0)
    with pytest.raises(ConfigError, match='radar targets given without the position'):
        twin.step(cells, SPEC, 0, pl, radar_xyv=np.array([[190.0, 0.0, 0.0]]))
    with pytest.raises(ConfigError, match='occupied_threshold must be in 1..100 percent, got 0'):
        TwinConfig(occupied_threshold=0)


@pytest.mark.parametrize('trail_s,ghost_tracks', [(0.0, 1), (0.2, 0)])
def test_cells_trailing_a_platoon_vehicle_are_not_an_obstacle(trail_s, ghost_tracks):
    # The common grid fuses evidence up to its latency old: a moving vehicle's cells trail it.
    # 3.5 m behind v1's rear at 25 m/s is 0.14 s of driving: inside a 0.2 s trail, a track without it.
    twin = TwinCore(TwinConfig(exclude_trail_s=trail_s))
    for k in range(6):
        t = k * 0.1
        cells = np.zeros(SPEC.shape, np.int8)
        pl = _platoon(t)
        _paint(cells, pl.x[0] - LEN / 2 - 0.5 - 3.0, 0.0, 1.0, 1.8)     # rear face seen 3.5 m late
        res = twin.step(cells, SPEC, k * 100_000_000, pl)
    assert len(res.tracks) == ghost_tracks
    if ghost_tracks:
        assert_allclose(res.tracks[0].vx, V, atol=1.0)                   # it moves with the platoon
    with pytest.raises(ConfigError, match='exclude_trail_s must be a finite number of seconds >= 0'):
        TwinConfig(exclude_trail_s=-0.1)


def test_young_tracks_raise_no_conflict_until_min_track_hits():
    # The velocity of a track a few frames old (or of a fragment of a split object) is not known
    # well enough for a time to collision: conflicts wait for min_track_hits detections.
    twin = TwinCore(TwinConfig(prediction=LONG, conflicts=ConflictConfig(min_track_hits=6)))
    seen = []
    for k in range(7):
        cells, pl = _scene(k * 0.1, stopped_x=190.0, car_x0=80.0, car_v=20.0)
        res = twin.step(cells, SPEC, k * 100_000_000, pl)
        seen.append(len(res.conflicts))
    assert seen[:5] == [0] * 5 and seen[5:] == [4, 4]
    assert len(res.tracks) == 2                     # tracked (and predicted) all along
    with pytest.raises(ConfigError, match='min_track_hits must be an integer >= 1, got 0'):
        ConflictConfig(min_track_hits=0)


def _track(hits: int, vx_std: float, vy_std: float = 3.0, misses: int = 0) -> Track:
    cov = np.diag([0.09, 0.09, vx_std ** 2, vy_std ** 2])
    return Track(1, np.array([200.0, 0.0, 0.0, 0.0]), cov, hits + misses, hits, misses, 4.5, 1.8, 0.0, True)


def test_a_coasting_track_raises_no_conflict():
    # A track that missed its detection in the latest grid is extrapolated, not seen: on the common grid mostly a
    # piece of a car whose detection went to another track, drifting back at the piece's (too low) speed into
    # the gap behind the car (cut_in.yaml: ERRORs at ttc 1.3 s about a car 9 m ahead at the vehicle's speed).
    cfg = ConflictConfig(min_track_hits=6, max_track_misses=0)
    tracks = [_track(8, 0.3), _track(8, 0.3, misses=1), _track(8, 0.3, misses=4)]
    assert mature_tracks(tracks, cfg).tolist() == [True, False, False]
    assert mature_tracks(tracks, ConflictConfig(min_track_hits=6, max_track_misses=1)).tolist() == [True, True, False]
    assert mature_tracks(tracks, ConflictConfig(min_track_hits=6)).tolist() == [True, True, True]   # core default
    with pytest.raises(ConfigError, match='max_track_misses must be an integer >= 0, got -1'):
        ConflictConfig(max_track_misses=-1)


def test_a_track_with_a_known_along_road_velocity_raises_conflicts_before_min_track_hits():
    # A stopped car with a radar velocity hint has its closing speed after three detections
    # (std about 0.6 m/s); one from grid positions alone (std 2 m/s at three) waits for min_track_hits.
    cfg = ConflictConfig(min_track_hits=6, known_velocity_hits=3, known_velocity_std_mps=1.0)
    tracks = [_track(3, 0.56), _track(3, 2.08), _track(2, 0.3), _track(6, 2.08), _track(5, 0.95)]
    assert mature_tracks(tracks, cfg).tolist() == [True, False, False, True, True]
    # Only the along-road (map x without a road) std counts: a large std across the road does not hold it back.
    assert mature_tracks([_track(3, 0.5, vy_std=5.0)], cfg).tolist() == [True]
    # 0 known_velocity_hits: the age alone decides, as before.
    off = ConflictConfig(min_track_hits=6)
    assert mature_tracks(tracks, off).tolist() == [False, False, False, True, False]
    assert mature_tracks([], cfg).shape == (0,)
    with pytest.raises(ConfigError, match='known_velocity_hits must be an integer >= 0'):
        ConflictConfig(known_velocity_hits=-1)
    with pytest.raises(ConfigError, match='known_velocity_std_mps must be a positive finite number'):
        ConflictConfig(known_velocity_std_mps=0.0)


def test_a_stopped_car_is_warned_about_from_its_third_detection_when_its_velocity_is_known():
    # The twin's default track covariance starts at init_velocity_std_mps (10 m/s): grid positions
    # alone do not make it known within three detections, so known_velocity_hits changes nothing
    # without a velocity hint, and min_track_hits still applies.
    twin = TwinCore(TwinConfig(prediction=LONG, conflicts=ConflictConfig(min_track_hits=6, known_velocity_hits=3)))
    seen = []
    for k in range(7):
        cells, pl = _scene(k * 0.1, stopped_x=190.0, car_x0=80.0, car_v=20.0)
        seen.append(len(twin.step(cells, SPEC, k * 100_000_000, pl).conflicts))
    assert seen[:4] == [0] * 4 and seen[-1] == 4


@pytest.mark.parametrize('across_m,warned', [(None, True), (0.4, False)])
def test_a_car_in_the_lane_and_a_truck_beside_it_are_two_objects(across_m, warned):
    # truck_brakes seed 7 at 9.4 s: a car 9.7 m ahead of v1 at its speed, and a truck in the next lane whose
    # near side is drawn 0.8 m from the car's cells. Merged across the lane line they were one object 5 m
    # wide, centred between the lanes, whose rear (the truck's, 4 m ahead of v1) gave v1 an ERROR.
    v = 10.0
    twin = TwinCore(TwinConfig(merge_gap_m=1.0, merge_gap_across_m=across_m))
    for k in range(10):
        t = k * 0.1
        cells = np.zeros(SPEC.shape, np.int8)
        pl = PlatoonState(('v1', 'v2', 'v3', 'v4'), 60.0 + v * t - np.arange(4) * (GAP + LEN), np.zeros(4),
                          np.full(4, v), np.zeros(4), np.full(4, LEN), np.full(4, 1.8), np.arange(4))
        front = pl.x[0] + LEN / 2
        _paint(cells, front + 9.7 + 2.25, 0.0, 4.5, 2.2)        # the car in the lane: cells at |y| <= 1.1
        _paint(cells, front + 4.0 + 6.0, 2.3, 12.0, 0.8)        # the truck beside it: its near side, y 1.9..2.7
        res = twin.step(cells, SPEC, k * 100_000_000, pl)
    assert len(res.detections) == (1 if across_m is None else 2)
    assert bool(res.conflicts) is warned
    if not warned:
        by_y = sorted(res.tracks, key=lambda tr: tr.y)
        assert_allclose([by_y[0].y, by_y[1].y], [0.0, 2.3], atol=0.15)
        assert_allclose([by_y[0].vx, by_y[1].vx], [v, v], atol=0.5)
    with pytest.raises(ConfigError, match='merge_gap_across_m must be a finite number of metres >= 0'):
        TwinConfig(merge_gap_across_m=-0.1)


def test_road_heading_is_the_fitted_roads_or_the_grids():
    """detection.road_axes spans detections along the road: the fitted road's heading where each one is (on a
    curve it turns along the road), the grid's yaw before a road is fitted."""
    spec = GridSpec(0.0, 0.0, 0.2, 100, 50, yaw=0.3)
    xy = np.array([[10.0, 1.0], [200.0, 5.0]])
    assert_allclose(road_heading(None, spec)(xy), [0.3, 0.3])
    road = RoadModel(0.0, 0.0, 0.0, 1 / 400)                 # a left curve of radius 400 m from the origin
    h = road_heading(road, spec)(xy)
    assert h.shape == (2,)
    assert_allclose(h, road.heading_at(road.to_road(xy)[0]))
    assert 0.0 < h[0] < h[1] < 1.0                           # further along the curve, turned further
