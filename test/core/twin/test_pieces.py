"""Pieces of one car move together (twin_core.pieces_move_together), and a radar false alarm's track stays
below min_track_hits (cut_in seed 1: 4 false warning episodes about each)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.twin.config import config_from_params, with_defaults
from cooperative_fusion.core.twin.conflicts import ConflictLevel, find_conflicts
from cooperative_fusion.core.twin.prediction import ObstacleState, PlatoonState, PredictionConfig, rollout
from cooperative_fusion.core.twin.twin_core import TwinConfig, pieces_move_together


def obstacles(x, y, vx, length, ax=None, vx_std=None) -> ObstacleState:
    n = len(x)
    f = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    return ObstacleState(np.arange(1, n + 1), f(x), f(y), f(vx), np.zeros(n), f(length), np.full(n, 1.8),
                         np.zeros(n), np.zeros(n), np.full(n, 0.3), ax=f(ax if ax is not None else np.zeros(n)),
                         vx_std=f(vx_std if vx_std is not None else np.full(n, 0.3)))


def test_a_young_piece_touching_a_settled_track_takes_its_along_road_motion():
    # cut_in_close seed 7 at 7.0 s: c1 (20 m/s) as a settled rear track (36 hits, 19.9 m/s) and a front piece
    # born 6 grids ago reading 16.9 m/s, 2.2 m ahead (boxes 2.4 and 1.3 m long: they touch).
    ob = obstacles(x=[100.0, 102.2], y=[2.0, 1.4], vx=[19.9, 16.9], length=[2.4, 1.3], ax=[0.1, -2.0],
                   vx_std=[0.3, 0.9])
    out = pieces_move_together(ob, np.array([36, 6]), gap_m=1.0, across_m=1.0)
    assert_allclose(out.vx, [19.9, 19.9])
    assert_allclose(out.ax, [0.1, 0.1])
    assert_allclose(out.vx_std, [0.3, 0.3])
    assert_allclose(out.y, ob.y)                       # lateral motion and position stay each one's own
    assert_allclose(out.x, ob.x)
    # cut_in seed 1 at 13.7 s: the settled rear track (88 hits, coasting) 0.95 m of road behind the box of the
    # front piece that took the whole car (21 hits, sliding back: 21.7 m/s): one car within piece_gap_m 1.0,
    # two within 0.9.
    apart = obstacles(x=[100.0, 103.75], y=[0.0, 0.07], vx=[24.0, 21.7], length=[2.6, 3.0])
    assert_allclose(pieces_move_together(apart, np.array([88, 21]), 1.0, 1.0).vx, [24.0, 24.0])
    assert_allclose(pieces_move_together(apart, np.array([88, 21]), 0.9, 1.0).vx, [24.0, 21.7])


def test_cars_in_adjacent_lanes_or_apart_in_one_lane_keep_their_own_speeds():
    # Beside each other (3.5 m across), overlapping along the road: two cars.
    beside = obstacles(x=[100.0, 101.0], y=[0.0, 3.5], vx=[25.0, 27.0], length=[4.5, 12.0])
    assert pieces_move_together(beside, np.array([50, 10]), 1.0, 1.0) is beside
    # One lane, 5 m of road between them: two cars.
    ahead = obstacles(x=[100.0, 109.5], y=[0.0, 0.2], vx=[25.0, 20.0], length=[4.5, 4.5])
    assert pieces_move_together(ahead, np.array([50, 10]), 1.0, 1.0) is ahead
    # Touching with equal detections: neither is known better, each keeps its own.
    tie = obstacles(x=[100.0, 103.0], y=[0.0, 0.0], vx=[25.0, 22.0], length=[3.0, 3.0])
    assert_allclose(pieces_move_together(tie, np.array([12, 12]), 1.0, 1.0).vx, [25.0, 22.0])
    # One obstacle, or none: unchanged.
    one = obstacles(x=[100.0], y=[0.0], vx=[25.0], length=[4.5])
    assert pieces_move_together(one, np.array([3]), 1.0, 1.0) is one


def test_each_piece_takes_the_best_known_of_its_own_neighbours():
    # Rear face (40 hits), side strip (9) and front strip (5), each touching the next: the side takes the rear's
    # speed, the front the side's (its only neighbour), not a chain.
    ob = obstacles(x=[100.0, 102.5, 105.0], y=[0.0, 0.5, 0.0], vx=[25.0, 23.0, 21.0], length=[2.0, 2.0, 2.0])
    out = pieces_move_together(ob, np.array([40, 9, 5]), 1.0, 1.0)
    assert_allclose(out.vx, [25.0, 25.0, 23.0])


def test_a_slow_reading_front_piece_no_longer_warns_the_follower():
    # One vehicle at 25 m/s, a car 40 m ahead at 20 m/s seen as a rear face (settled) and a young front piece
    # that reads 12 m/s: closing at 13 m/s on the piece from 43.0 m gives ttc 3.31 s (a WARN); the car itself
    # closes at 5 m/s from 40 m: ttc 8 s, down to 5 m only after 7 s: no conflict within the 6 s horizon.
    pl = PlatoonState(('v1',), np.array([0.0]), np.zeros(1), np.array([25.0]), np.zeros(1), np.array([4.5]),
                      np.array([1.8]), np.array([0]))
    ob = obstacles(x=[42.25 + 1.5, 42.25 + 3.0 + 0.5], y=[0.0, 0.0], vx=[20.0, 12.0], length=[3.0, 1.0])
    cfg = PredictionConfig()
    before = find_conflicts(rollout(pl, ob, cfg))
    assert [(c.vehicle_id, c.level, c.obstacle_track_id) for c in before] == [('v1', ConflictLevel.WARN, 2)]
    assert_allclose(before[0].ttc_s, 43.0 / 13.0, atol=1e-9)
    assert find_conflicts(rollout(pl, pieces_move_together(ob, np.array([30, 6]), 1.0, 1.0), cfg)) == []


def test_piece_settings_and_the_parameters():
    with pytest.raises(ConfigError, match='piece_gap_m must be a finite number of metres >= 0, got -1.0'):
        TwinConfig(piece_gap_m=-1.0)
    with pytest.raises(ConfigError, match='piece_across_m must be a finite number of metres >= 0, got inf'):
        TwinConfig(piece_across_m=float('inf'))
    assert TwinConfig().pieces_move_together is False                     # core default: each at its own speed
    names = {'frames.map': 'map', 'topics.grid': '/g', 'topics.odom': '/{v}/o', 'topics.time_reference': '/{v}/t',
             'topics.radar_targets': '/{v}/r', 'topics.predicted_grid': '/p', 'topics.warnings': '/w',
             'topics.advisory': '/{v}/a', 'topics.markers': '/m'}
    twin = config_from_params(with_defaults(names)).twin
    assert (twin.pieces_move_together, twin.piece_gap_m, twin.piece_across_m) == (True, 1.0, 1.0)
    # A radar false alarm stays occupied on the common grid for about 6 grids: conflicts need 8 detections.
    assert twin.conflicts.min_track_hits == 8
    assert_array_equal(config_from_params(with_defaults({**names, 'detection.pieces_move_together': False}))
                       .twin.pieces_move_together, False)
