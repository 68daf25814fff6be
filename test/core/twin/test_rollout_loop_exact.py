"""The rollout's written-out IDM loop against the loop over idm.py's functions it replaced, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.twin.idm import check_no_nan, desired_speeds, idm_acceleration_unchecked, idm_step
from cooperative_fusion.core.twin.prediction import (ObstacleState, PlatoonState, PredictionConfig,
                                                     _obstacle_paths, along_road_half_length, rollout)


def _reference(platoon: PlatoonState, obstacles: ObstacleState, cfg: PredictionConfig):
    """(xs, vs, acc, leader, collision, obstacles_ignored) of the loop as it was, one idm.py call per stage."""
    n_steps = cfg.steps
    t = np.arange(n_steps + 1) * cfg.dt_s
    ox, oy, oyaw, ovx, _ = _obstacle_paths(obstacles.lane_keeping(cfg.lateral_deadband_mps, cfg.lateral_sigmas,
                                                                  cfg.lateral_max_std_mps), t, cfg.obstacle_model,
                                           cfg.max_lateral_shift_m, (-cfg.max_decel_mps2, cfg.max_obstacle_accel_mps2))
    o_half = along_road_half_length(obstacles.length, obstacles.width, oyaw)
    o_wide = along_road_half_length(obstacles.width, obstacles.length, oyaw)
    nv = len(platoon)
    xs, vs = np.empty((n_steps + 1, nv)), np.empty((n_steps + 1, nv))
    acc, leader = np.zeros((n_steps + 1, nv)), np.full((n_steps + 1, nv), -1, np.int64)
    xs[0], vs[0] = platoon.x, platoon.speed
    pred = platoon.predecessor
    has_pred = pred >= 0
    pred_safe = np.where(has_pred, pred, 0)
    v0 = desired_speeds(np.where(has_pred, cfg.idm.v0_mps, np.maximum(platoon.speed, 0.1)))
    half, half_w = 0.5 * platoon.length, 0.5 * platoon.width
    lead_brake = np.where(has_pred | (platoon.accel >= 0), np.inf, np.maximum(platoon.accel, -cfg.max_decel_mps2))
    dy = np.abs(oy[:, None, :] - platoon.y[None, :, None])
    in_lane = dy <= cfg.lane_half_width_m
    across = dy < o_wide[:, None, :] + half_w[None, :, None]
    pred_across = np.abs(platoon.y[pred_safe] - platoon.y) < half_w[pred_safe] + half_w
    in_path = np.zeros((nv, len(obstacles)), bool)
    own = ((np.abs(ox[0][None, :] - platoon.x[:, None]) < o_half[0][None, :] + half[:, None]) & across[0])
    collision = np.full(nv, np.inf)
    collided = None
    rows = np.arange(nv)
    ignored = True
    for k in range(n_steps + 1):
        x, v = xs[k], vs[k]
        gap = np.where(has_pred, xs[k, pred_safe] - half[pred_safe] - x - half, np.inf)
        touch = has_pred & pred_across & (gap <= 0)
        v_lead = np.where(has_pred, vs[k, pred_safe], v)
        lead = np.where(has_pred, pred, -1)
        dx = ox[k][None, :] - x[:, None]
        g_all = dx - o_half[k][None, :] - half[:, None]
        in_path = in_lane[k] & ~own & ((dx > 0) | (in_path & (dx + o_half[k][None, :] + half[:, None] > 0)))
        g_obs = np.where(in_path, g_all, np.inf)
        obstacle_touch = (in_path & across[k] & (g_all <= 0)).any(axis=1)
        touch |= obstacle_touch
        j = np.argmin(g_obs, axis=1)
        g_min = g_obs[rows, j]
        closer = g_min < gap
        ignored &= not (closer.any() or obstacle_touch.any())
        gap = np.where(closer, g_min, gap)
        v_lead = np.where(closer, np.maximum(ovx[k, j], 0.0), v_lead)
        lead = np.where(closer, nv + j, lead)
        if touch.any():
            collision = np.where(touch & ~np.isfinite(collision), t[k], collision)
            collided = np.isfinite(collision)
        leader[k] = lead
        check_no_nan(v, gap)
        acc[k] = np.maximum(np.minimum(idm_acceleration_unchecked(v, v_lead, gap, cfg.idm, v0), lead_brake),
                            -cfg.max_decel_mps2)
        if collided is not None:
            acc[k] = np.where(collided, -cfg.max_decel_mps2, acc[k])
        if k < n_steps:
            xs[k + 1], vs[k + 1] = idm_step(x, v, acc[k], cfg.dt_s)
    return xs, vs, acc, leader, collision, ignored


def _scene(rng: np.random.Generator) -> tuple[PlatoonState, ObstacleState]:
    n = int(rng.integers(1, 6))
    speed = rng.choice([0.0, 3.0, 25.0], n) + rng.uniform(0.0, 2.0, n)
    pl = PlatoonState(tuple(f'v{i + 1}' for i in range(n)), 80.0 - np.arange(n) * rng.uniform(5.0, 25.0),
                      rng.normal(0.0, 0.2, n), speed, rng.normal(0.0, 0.02, n), np.full(n, 4.5), np.full(n, 1.8),
                      np.arange(n), rng.choice([0.0, -3.0, 1.0], n))
    k = int(rng.integers(1, 12))
    # Obstacles ahead, among and behind the platoon, some stopped, some braking, some overlapping a vehicle.
    return pl, ObstacleState(np.arange(k), rng.uniform(-20.0, 200.0, k),
                             rng.choice([-3.5, 0.0, 3.5], k) + rng.normal(0.0, 0.5, k),
                             rng.choice([0.0, 10.0, 30.0], k),
                             rng.normal(0.0, 0.5, k), rng.uniform(1.0, 12.0, k), rng.uniform(0.8, 2.5, k),
                             rng.normal(0.0, 0.1, k), np.zeros(k), np.full(k, 0.3),
                             ax=rng.choice([0.0, -6.0, 1.0], k), vy_std=rng.uniform(0.0, 1.0, k))


@pytest.mark.parametrize('seed', range(40))
def test_rollout_equals_the_loop_over_idm_functions(seed: int) -> None:
    pl, obs = _scene(np.random.default_rng(seed))
    cfg = PredictionConfig()
    ro = rollout(pl, obs, cfg)
    xs, vs, acc, leader, collision, ignored = _reference(pl, obs, cfg)
    for got, want in ((ro.platoon_x, xs), (ro.platoon_speed, vs), (ro.platoon_accel, acc),
                      (ro.platoon_leader, leader), (ro.platoon_collision_s, collision)):
        np.testing.assert_array_equal(got, want)
    assert ro.obstacles_ignored == ignored


@pytest.mark.parametrize('seed', range(40))
def test_platoon_alone_in_the_same_loop_equals_its_own_rollout(seed: int) -> None:
    pl, obs = _scene(np.random.default_rng(seed))
    cfg = PredictionConfig()
    both, single = rollout(pl, obs, cfg, platoon_alone=True), rollout(pl, obs, cfg)
    for name in ('platoon_x', 'platoon_speed', 'platoon_accel', 'platoon_leader', 'platoon_collision_s'):
        np.testing.assert_array_equal(getattr(both, name), getattr(single, name))
    assert both.obstacles_ignored == single.obstacles_ignored and single.platoon_x_alone is None
    if both.obstacles_ignored:
        assert both.platoon_x_alone is None
    else:
        np.testing.assert_array_equal(both.platoon_x_alone, rollout(pl, ObstacleState.empty(), cfg).platoon_x)
