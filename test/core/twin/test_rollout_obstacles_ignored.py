from __future__ import annotations

from dataclasses import replace

import numpy as np

from cooperative_fusion.core.twin.conflicts import ConflictConfig, find_conflicts
from cooperative_fusion.core.twin.prediction import ObstacleState, PlatoonState, PredictionConfig, rollout


def _scene(rng: np.random.Generator) -> tuple[PlatoonState, ObstacleState]:
    n = 4
    pl = PlatoonState(tuple(f'v{i + 1}' for i in range(n)), 80.0 - np.arange(n) * 22.5, np.zeros(n),
                      np.full(n, 25.0), np.zeros(n), np.full(n, 4.5), np.full(n, 1.8), np.arange(n))
    k = int(rng.integers(1, 8))
    return pl, ObstacleState(np.arange(k), rng.uniform(0.0, 250.0, k),
                             rng.choice([-3.5, 0.0, 3.5], k) + rng.normal(0.0, 0.3, k),
                             rng.uniform(0.0, 35.0, k), rng.normal(0.0, 0.3, k), np.full(k, 4.5), np.full(k, 1.8),
                             rng.normal(0.0, 0.05, k), np.zeros(k), np.full(k, 0.3))


def test_obstacles_ignored_means_the_platoon_rows_of_a_rollout_without_obstacles() -> None:
    cfg = PredictionConfig()
    seen = set()
    for seed in range(40):
        pl, obs = _scene(np.random.default_rng(seed))
        ro = rollout(pl, obs, cfg)
        seen.add(ro.obstacles_ignored)
        alone = rollout(pl, ObstacleState.empty(), cfg)
        assert alone.obstacles_ignored
        if ro.obstacles_ignored:
            np.testing.assert_array_equal(ro.platoon_x, alone.platoon_x)
            np.testing.assert_array_equal(ro.platoon_speed, alone.platoon_speed)
            np.testing.assert_array_equal(ro.platoon_collision_s, alone.platoon_collision_s)
        else:
            assert (ro.platoon_leader >= len(pl)).any() or np.isfinite(ro.platoon_collision_s).any()
    assert seen == {True, False}


def test_conflicts_are_the_same_whether_the_platoon_alone_is_rolled_out_again_or_not() -> None:
    cfg, ccfg = PredictionConfig(), ConflictConfig()
    for seed in range(40):
        pl, obs = _scene(np.random.default_rng(seed))
        ro = rollout(pl, obs, cfg)
        assert find_conflicts(ro, ccfg) == find_conflicts(replace(ro, obstacles_ignored=False), ccfg)
