from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError, MessageFormatError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.twin.idm import IdmParams, idm_step
from cooperative_fusion.core.twin.prediction import (ObstacleModel, ObstacleState, PlatoonState, PredictionConfig,
                                                braking_profile, brier, iou, predicted_grids, rasterise_boxes,
                                                rollout)
from cooperative_fusion.core.twin.tracking import MotionModel, Track


def platoon(x, speed, y=0.0, length=4.5) -> PlatoonState:
    n = len(x)
    return PlatoonState(tuple(f'v{i + 1}' for i in range(n)), np.asarray(x, float), np.full(n, y),
                        np.asarray(speed, float) * np.ones(n), np.zeros(n), np.full(n, length), np.full(n, 1.8),
                        np.arange(n))


def obstacles(x, y=0.0, vx=0.0, vy=0.0, length=4.0, width=1.8, yaw_rate=0.0, std=0.0) -> ObstacleState:
    x = np.atleast_1d(np.asarray(x, float))
    k = x.shape[0]
    full = lambda v: np.broadcast_to(np.asarray(v, float), (k,)).copy()  # noqa: E731
    return ObstacleState(np.arange(k) + 100, x, full(y), full(vx), full(vy), full(length), full(width),
                         np.zeros(k), full(yaw_rate), full(std))


@pytest.mark.parametrize('v0,b', [(25.0, 3.0), (13.9, 2.0), (30.0, 7.5)])
def test_braking_profile_matches_closed_form_and_rollout_integrator(v0, b):
    dt = 0.1
    prof = braking_profile(v0, b, dt)
    assert_allclose(prof.stop_distance_m, v0 ** 2 / (2 * b))
    assert_allclose(prof.stop_time_s, v0 / b)
    assert_allclose(prof.s_m[-1], v0 ** 2 / (2 * b), rtol=1e-12)
    assert prof.v_mps[-1] == 0.0
    assert np.all(np.diff(prof.v_mps) >= -b * dt - 1e-9) and np.all(np.diff(prof.s_m) >= 0)
    # The rollout's integrator under the same constant deceleration stops at the same place.
    x, v = np.zeros(1), np.array([v0])
    for _ in range(int(v0 / b / dt) + 5):
        x, v = idm_step(x, v, np.array([-b]), dt)
    assert v[0] == 0.0
    assert_allclose(x[0], v0 ** 2 / (2 * b), atol=v0 * dt * 1e-6)
    assert_allclose(np.interp(prof.t_s, prof.t_s, prof.s_m)[5], v0 * 0.5 - 0.5 * b * 0.25)


def test_braking_profile_to_a_moving_speed():
    prof = braking_profile(25.0, 2.5, 0.1, duration_s=6.0, v_final_mps=15.0)
    assert_allclose(prof.stop_time_s, 4.0)
    assert_allclose(prof.s_m[-1], (25 ** 2 - 15 ** 2) / 5.0 + 15.0 * 2.0)
    assert_allclose(prof.v_mps[-1], 15.0)
    with pytest.raises(ConfigError, match='deceleration must be a positive finite m/s\\^2, got 0.0'):
        braking_profile(25.0, 0.0, 0.1)


def test_free_road_vehicle_approaches_v0():
    cfg = PredictionConfig(horizon_s=60.0, output_horizons_s=(1.0,), leader_keeps_speed=False)
    ro = rollout(platoon([0.0], 10.0), ObstacleState.empty(), cfg)
    v = ro.platoon_speed[:, 0]
    assert np.all(np.diff(v) >= 0)
    assert 0.97 * cfg.idm.v0_mps < v[-1] <= cfg.idm.v0_mps
    assert np.all(ro.platoon_leader == -1)


def test_leader_keeps_its_speed_and_followers_hold_the_platoon_gap():
    # The platoon's controller: 0.35 s headway, v0 30 m/s; at 25 m/s its equilibrium gap is about 15 m.
    idm = IdmParams(v0_mps=30.0, time_headway_s=0.35)
    gap = 15.0
    x = 100.0 - np.arange(3) * (gap + 4.5)
    cfg = PredictionConfig(horizon_s=5.0, output_horizons_s=(1.0,), idm=idm)
    ro = rollout(platoon(x, 25.0), ObstacleState.empty(), cfg)
    assert_allclose(ro.platoon_speed[:, 0], 25.0)                 # the leader cruises: no pull towards v0
    assert_allclose(ro.platoon_x[-1], x + 25.0 * 5.0, atol=0.5)    # followers stay within 0.5 m of cruising
    # Without it the leader accelerates towards v0 and the platoon stretches.
    ro_free = rollout(platoon(x, 25.0), ObstacleState.empty(),
                      PredictionConfig(horizon_s=5.0, output_horizons_s=(1.0,), idm=idm, leader_keeps_speed=False))
    assert ro_free.platoon_x[-1, 0] > x[0] + 25.0 * 5.0 + 5.0
    # The cruising leader still brakes for a stopped obstacle ahead.
    ro_obs = rollout(platoon(x, 25.0), obstacles([200.0]), cfg)
    assert ro_obs.platoon_speed[-1, 0] < 20.0


def test_follower_behind_stopped_obstacle_stops_with_gap_at_least_s0():
    cfg = PredictionConfig(horizon_s=40.0, output_horizons_s=(1.0,), idm=IdmParams(v0_mps=25.0))
    pl = platoon([0.0, -30.0], 20.0)
    obs = obstacles([150.0])
    ro = rollout(pl, obs, cfg)
    gap_obs = (ro.obstacle_x[:, 0] - 2.0) - (ro.platoon_x[:, 0] + 2.25)
    gap_pl = (ro.platoon_x[:, 0] - 2.25) - (ro.platoon_x[:, 1] + 2.25)
    assert ro.platoon_speed[-1, 0] < 0.05 and ro.platoon_speed[-1, 1] < 0.05
    # Continuous IDM approaches s0 from above; the ballistic 0.1 s step undershoots by a few cm.
    assert gap_obs.min() >= cfg.idm.s0_m - 0.05
    assert gap_pl.min() >= cfg.idm.s0_m - 0.05
    assert gap_obs[-1] < cfg.idm.s0_m + 1.0          # it does close up to about s0
    assert ro.platoon_leader[0, 0] == len(pl) + 0 and ro.platoon_leader[0, 1] == 0


def test_obstacle_out_of_lane_is_ignored_and_closer_obstacle_wins():
    cfg = PredictionConfig(horizon_s=1.0, output_horizons_s=(1.0,))
    pl = platoon([0.0, -25.0], 25.0)
    # Obstacle 0: adjacent lane (3.5 m off); obstacle 1: between v2 and v1, in lane (a cut-in).
    ro = rollout(pl, obstacles([40.0, -12.0], y=[3.5, 0.5], vx=[20.0, 18.0]), cfg)
    assert ro.platoon_leader[0, 0] == -1
    assert ro.platoon_leader[0, 1] == 2 + 1
    assert ro.platoon_accel[0, 1] < -2.0


@pytest.mark.parametrize('model', list(ObstacleModel))
def test_cv_obstacle_at_x0_plus_vt(model):
    cfg = PredictionConfig(obstacle_model=model)
    ro = rollout(platoon([0.0], 25.0), obstacles([50.0, 80.0], y=[3.5, -3.5], vx=[12.0, -4.0], vy=[0.5, 0.0]), cfg)
    for h in (0.5, 1.0, 3.0, 5.0):
        k = ro.step_of(h)
        assert_allclose(ro.obstacle_x[k], [50.0 + 12.0 * h, 80.0 - 4.0 * h], atol=1e-9)
        assert_allclose(ro.obstacle_y[k], [3.5 + 0.5 * h, -3.5], atol=1e-9)


def test_ctrv_obstacle_moves_on_a_circle():
    cfg = PredictionConfig(obstacle_model=ObstacleModel.CTRV)
    w, v = 0.2, 10.0
    ro = rollout(platoon([-100.0], 0.0), obstacles([0.0], vx=v, yaw_rate=w), cfg)
    # Circle centre at (0, v / w); radius v / w; heading advances by w t.
    r = np.hypot(ro.obstacle_x[:, 0], ro.obstacle_y[:, 0] - v / w)
    assert_allclose(r, v / w, rtol=1e-9)
    assert_allclose(ro.obstacle_yaw[-1, 0], w * cfg.horizon_s)
    assert_allclose(np.hypot(ro.obstacle_vx[-1, 0], ro.obstacle_vy[-1, 0]), v)


def _moments(grid: np.ndarray, spec: GridSpec) -> tuple[float, float, float, float]:
    xs, ys = spec.cell_centers()
    m = grid.sum()
    mx = (grid.sum(axis=0) * xs).sum() / m
    my = (grid.sum(axis=1) * ys).sum() / m
    sx = math.sqrt((grid.sum(axis=0) * (xs - mx) ** 2).sum() / m)
    return float(m), float(mx), float(my), sx


def test_predicted_grid_centred_and_spreading_with_horizon():
    spec = GridSpec(0.0, -15.0, 0.2, 1000, 150)
    cfg = PredictionConfig()
    ro = rollout(platoon([-50.0], 0.0), obstacles([60.0], y=1.0, vx=10.0, length=4.0, width=2.0, std=0.2), cfg)
    grids = predicted_grids(ro, spec, include_platoon=False)
    assert set(grids) == {0.5, 1.0, 2.0, 3.0}
    m1, mx1, my1, _ = _moments(grids[1.0], spec)
    assert_allclose([mx1, my1], [70.0, 1.0], atol=0.02)
    assert_allclose(m1 * spec.resolution ** 2, 4.0 * 2.0, rtol=0.01)   # blur keeps the footprint's area
    spreads = [_moments(grids[h], spec)[3] for h in (0.5, 3.0)]
    assert spreads[1] > spreads[0] * 1.5
    assert grids[0.5].max() > 0.85 and grids[3.0].max() < grids[0.5].max()
    assert grids[1.0].dtype == np.float32 and grids[1.0].min() >= 0.0 and grids[1.0].max() <= 1.0


def test_rasterise_boxes_matches_exact_normal_cdf_and_handles_rotation_and_edges():
    from scipy.special import ndtr
    spec = GridSpec(-10.0, -10.0, 0.1, 200, 200)
    yaw, sig = 0.7, 0.5
    g = rasterise_boxes(spec, [1.0], [-2.0], [5.0], [2.0], [yaw], [sig])
    xs, ys = spec.cell_centers()
    dx, dy = xs[None, :] - 1.0, ys[:, None] + 2.0
    u = math.cos(yaw) * dx + math.sin(yaw) * dy
    v = -math.sin(yaw) * dx + math.cos(yaw) * dy
    exact = (ndtr((u + 2.5) / sig) - ndtr((u - 2.5) / sig)) * (ndtr((v + 1.0) / sig) - ndtr((v - 1.0) / sig))
    assert_allclose(g, exact, atol=2e-3)
    # A box half outside the grid is clipped, not wrapped.
    g = rasterise_boxes(spec, [-10.0], [0.0], [4.0], [2.0], [0.0], [0.3])
    assert g[:, :25].max() > 0.9 and g[:, 60:].max() == 0.0
    # Two overlapping boxes combine as independent events.
    g2 = rasterise_boxes(spec, [0.0, 0.0], [0.0, 0.0], [4.0, 4.0], [2.0, 2.0], [0.0, 0.0], [1.0, 1.0])
    g1 = rasterise_boxes(spec, [0.0], [0.0], [4.0], [2.0], [0.0], [1.0])
    assert_allclose(g2, 1 - (1 - g1) ** 2, atol=1e-5)


def test_iou_and_brier_over_observed_cells():
    pred = np.array([[0.9, 0.8, 0.1], [0.2, 0.6, 0.0]], np.float32)
    obs = np.array([[100, 0, 0], [-1, 100, 100]], np.int8)
    # Observed cells: all but (1, 0). Pred occ: (0,0) (0,1) (1,1); obs occ: (0,0) (1,1) (1,2).
    assert_allclose(iou(pred, obs), 2 / 4)
    expected = np.mean(np.array([0.1, 0.8, 0.1, 0.4, 1.0]) ** 2)
    assert_allclose(brier(pred, obs), expected, rtol=1e-6)
    assert math.isnan(iou(np.zeros((2, 2)), np.zeros((2, 2), np.int8)))
    assert math.isnan(brier(np.zeros((2, 2)), np.full((2, 2), -1, np.int8)))
    with pytest.raises(MessageFormatError, match=r'predicted grid shape \(2, 3\) does not match observed \(3, 2\)'):
        iou(pred, np.zeros((3, 2), np.int8))


def test_self_check_of_a_perfect_prediction_scores_high():
    spec = GridSpec(0.0, -5.0, 0.2, 300, 50)
    truth = np.zeros(spec.shape, np.int8)
    xs, ys = spec.cell_centers()
    truth[(np.abs(ys[:, None] - 0.0) <= 0.9) & (np.abs(xs[None, :] - 30.0) <= 2.0)] = 100
    pred = rasterise_boxes(spec, [30.0], [0.0], [4.0], [1.8], [0.0], [0.05])
    assert iou(pred, truth) > 0.85
    assert brier(pred, truth) < 0.01
    shifted = rasterise_boxes(spec, [34.0], [0.0], [4.0], [1.8], [0.0], [0.05])
    assert iou(shifted, truth) < 0.05


def test_obstacles_from_tracks_and_config_validation():
    tr = Track(7, np.array([10.0, 1.0, 8.0, 0.0, 0.0, 0.4]), np.eye(6) * 0.09, 5, 5, 0, 0.4, 0.2, 1.0, True,
               model=MotionModel.CA)
    obs = ObstacleState.from_tracks([tr])
    assert obs.ids.tolist() == [7]
    assert_allclose([obs.length[0], obs.width[0], obs.yaw[0]], [1.0, 0.8, 0.0])    # minimum size, velocity heading
    assert_allclose(obs.yaw_rate[0], 0.4 / 8.0)
    assert_allclose(obs.position_std[0], 0.3)
    with pytest.raises(ConfigError, match='output horizon 0.25 s must be a multiple of dt_s 0.1 s'):
        PredictionConfig(output_horizons_s=(0.25,))
    with pytest.raises(ConfigError, match=r'output horizon 6.0 s must be a multiple of dt_s 0.1 s in \(0, 5.0\]'):
        PredictionConfig(output_horizons_s=(6.0,))
    with pytest.raises(ConfigError, match=r'platoon order must be a permutation of 0..1, got \[0, 0\]'):
        PlatoonState(('a', 'b'), [0, 1], [0, 0], [1, 1], [0, 0], [4, 4], [2, 2], [0, 0])
    with pytest.raises(MessageFormatError, match=r'x has shape \(3,\), expected \(2,\)'):
        PlatoonState(('a', 'b'), [0, 1, 2], [0, 0], [1, 1], [0, 0], [4, 4], [2, 2], [0, 1])


def test_a_coasting_track_keeps_its_lane():
    """A settled track drifting across the road at -1.6 m/s (std 0.45, 3.6 sigma) is followed while it is
    detected; once it misses its detections (a next-lane car's side piece that lost its detection to a
    regrouping of the pieces) its sideways speed is not observed and it keeps its lane in the rollout."""
    def track(misses):
        return Track(15, np.array([30.0, 5.3, 24.4, -1.63]), np.diag([0.04, 0.04, 0.3, 0.45 ** 2]), 13, 8,
                     misses, 2.5, 0.9, 0.0, True)
    seen, coasting = ObstacleState.from_tracks([track(0)]), ObstacleState.from_tracks([track(3)])
    assert seen.misses.tolist() == [0] and coasting.misses.tolist() == [3]
    cfg = PredictionConfig()
    k = rollout(platoon([0.0], 25.0), seen, cfg).step_of(2.0)
    assert_allclose(rollout(platoon([0.0], 25.0), seen, cfg).obstacle_y[k], [5.3 - 1.63 * 2.0], atol=1e-9)
    assert_allclose(rollout(platoon([0.0], 25.0), coasting, cfg).obstacle_y[k], [5.3])
    with pytest.raises(MessageFormatError, match=r'misses has shape \(2,\), expected \(1,\)'):
        replace(seen, misses=np.array([0, 1]))


def test_obstacles_keep_their_lane_unless_lateral_motion_is_fast_and_significant():
    # vy: noise of a settled track (0.3 +- 0.27), a lane change (1.2 +- 0.27), a fresh fragment (2.2 +- 1.06).
    obs = ObstacleState(np.arange(3), np.full(3, 50.0), np.full(3, 3.5), np.full(3, 25.0),
                        np.array([-0.3, -1.2, -2.2]), np.full(3, 4.5), np.full(3, 1.8), np.zeros(3), np.zeros(3),
                        np.full(3, 0.3), np.array([0.27, 0.27, 1.06]))
    cfg = PredictionConfig()
    assert (cfg.lateral_deadband_mps, cfg.lateral_sigmas) == (0.5, 3.0)
    ro = rollout(platoon([0.0], 25.0), obs, cfg)
    k = ro.step_of(2.0)
    assert_allclose(ro.obstacle_y[k], [3.5, 3.5 - 1.2 * 2.0, 3.5], atol=1e-9)
    assert_allclose(ro.obstacle_vy[k], [0.0, -1.2, 0.0])
    # Without the deadband and the significance test, every vy is extrapolated.
    free = rollout(platoon([0.0], 25.0), obs,
                   PredictionConfig(lateral_deadband_mps=0.0, lateral_sigmas=0.0, lateral_max_std_mps=10.0,
                                    max_lateral_shift_m=100.0))
    assert_allclose(free.obstacle_y[k], 3.5 + np.array([-0.3, -1.2, -2.2]) * 2.0, atol=1e-9)
    # Tracks carry their vy std into the rollout.
    tr = Track(1, np.array([50.0, 3.5, 25.0, -2.2]), np.diag([0.09, 0.09, 1.0, 1.06 ** 2]), 5, 3, 0, 4.5, 1.8,
               0.0, True)
    assert_allclose(ObstacleState.from_tracks([tr]).vy_std, [1.06])
    # A young fragment with a big vy (4.3 m/s, 3.2 sigma at a std of 1.33 m/s) is not a settled track: no drift.
    young = ObstacleState(np.arange(1), np.array([50.0]), np.array([6.0]), np.array([19.0]), np.array([-4.32]),
                          np.array([0.8]), np.array([0.4]), np.zeros(1), np.zeros(1), np.array([0.3]),
                          np.array([1.33]))
    assert_allclose(rollout(platoon([0.0], 25.0), young, cfg).obstacle_y[k], [6.0])
    loose = PredictionConfig(lateral_max_std_mps=2.0, max_lateral_shift_m=100.0)
    assert_allclose(rollout(platoon([0.0], 25.0), young, loose).obstacle_y[k], [6.0 - 4.32 * 2.0])
    # One lane change at most: a car two lanes over stops in the next lane (max_lateral_shift_m 3.5).
    one_lane = rollout(platoon([0.0], 25.0), young, PredictionConfig(lateral_max_std_mps=2.0))
    assert_allclose(one_lane.obstacle_y[-1], [6.0 - 3.5])
    assert_allclose(one_lane.obstacle_vy[-1], [0.0])
    with pytest.raises(ConfigError, match='lateral_sigmas must be a finite number >= 0'):
        PredictionConfig(lateral_sigmas=-1.0)


def test_platoon_vehicles_stay_sharp_in_predicted_grids():
    # Their start is odometry and their motion the platoon's own controller: blur grows by
    # platoon_sigma_growth_mps, not by the obstacles' sigma_growth_mps.
    spec = GridSpec(0.0, -5.0, 0.2, 600, 50)
    pl = platoon([20.0], 25.0)
    xs, ys = spec.cell_centers()
    box = (np.abs(ys) <= 0.8)[:, None] & (np.abs(xs - (20.0 + 25.0 * 3.0)) <= 2.15)[None, :]
    sharp = predicted_grids(rollout(pl, ObstacleState.empty()), spec, PredictionConfig(output_horizons_s=(3.0,)))
    blurred = predicted_grids(rollout(pl, ObstacleState.empty()), spec,
                              PredictionConfig(output_horizons_s=(3.0,), platoon_sigma_growth_mps=0.5))
    assert PredictionConfig().platoon_sigma_growth_mps == 0.1
    assert (sharp[3.0][box] >= 0.5).mean() > 0.9          # sigma 0.6 m: the box is still the box
    assert (blurred[3.0][box] >= 0.5).mean() < 0.6        # sigma 1.8 m (the obstacles' growth): half of it
