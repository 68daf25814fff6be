"""The rollout against SUMO's IDM (issue 13, part 3): braking is capped, a collision is a box overlap,
a braking obstacle keeps braking. The numbers are this IDM's, with config/twin.yaml's parameters."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.twin.conflicts import ConflictLevel, find_conflicts
from cooperative_fusion.core.twin.idm import IdmParams
from cooperative_fusion.core.twin.prediction import (ObstacleState, PlatoonState, PredictionConfig,
                                                     bounded_acceleration, rollout)

#: The platoon's IDM of config/twin.yaml.
IDM = IdmParams(v0_mps=30.0, time_headway_s=0.35, a_max=1.5, b_comf=2.0, s0_m=2.0, delta=4.0)
LEN = 4.5


def one(v: float) -> np.ndarray:
    return np.array([float(v)])


def car(x: float, v: float, accel: float = 0.0) -> PlatoonState:
    return PlatoonState(('v1',), one(x), one(0.0), one(v), one(0.0), one(LEN), one(1.8), np.array([0]), one(accel))


def obstacle(rear_gap_m: float, vx: float, ax: float = 0.0) -> ObstacleState:
    """One car-sized obstacle whose rear is ``rear_gap_m`` ahead of the front of ``car(0, ...)``."""
    return ObstacleState(np.array([5]), one(LEN / 2 + rear_gap_m + LEN / 2), one(0.0), one(vx), one(0.0), one(LEN),
                         one(1.8), one(0.0), one(0.0), one(0.1), ax=one(ax))


def gaps(ro) -> np.ndarray:
    return ro.obstacle_x[:, 0] - LEN / 2 - ro.platoon_x[:, 0] - LEN / 2


def test_uncapped_idm_brakes_at_60_mps2_and_stops_short_of_a_stopped_car():
    ro = rollout(car(0.0, 25.0), obstacle(30.0, 0.0), PredictionConfig(idm=IDM, max_decel_mps2=1000.0))
    assert ro.platoon_accel[0, 0] == pytest.approx(-60.91, abs=0.01)
    assert gaps(ro).min() == pytest.approx(1.46, abs=0.01)
    assert not np.isfinite(ro.platoon_collision_s[0])


@pytest.mark.parametrize('cap, t_collision', [(9.0, 1.8), (8.0, 1.7)])
def test_capped_braking_collides_as_sumo_does(cap, t_collision):
    # SUMO (braking capped at 9 m/s^2) collides at 1.8 s; 25 t - cap t^2 / 2 = 30 m gives 1.75 s and 1.62 s,
    # seen at the next 0.1 s step.
    ro = rollout(car(0.0, 25.0), obstacle(30.0, 0.0), PredictionConfig(idm=IDM, max_decel_mps2=cap))
    assert ro.platoon_accel[:, 0].min() == pytest.approx(-cap)
    assert ro.platoon_collision_s[0] == pytest.approx(t_collision)
    assert gaps(ro).min() < 0


def test_a_car_that_reaches_an_obstacle_keeps_braking_instead_of_driving_through():
    # 10 m ahead: at 8 m/s^2 the car needs 39 m and would pass the obstacle's centre (and all of it) before
    # it stops; it stays the car's leader while they overlap, and the car never speeds up again.
    ro = rollout(car(0.0, 25.0), obstacle(10.0, 0.0), PredictionConfig(idm=IDM))
    v = ro.platoon_speed[:, 0]
    assert np.all(np.diff(v) <= 1e-12) and v[-1] == 0.0
    assert ro.platoon_collision_s[0] == pytest.approx(0.5)
    centre_passed = ro.platoon_x[:, 0] > ro.obstacle_x[:, 0]
    overlapping = gaps(ro) + 2 * LEN > 0
    assert (centre_passed & overlapping).any()
    assert np.all(ro.platoon_leader[centre_passed & overlapping, 0] == 1)


def test_a_leader_braking_at_3_mps2_is_followed_to_a_min_gap_of_7_m():
    # SUMO: minimum gap 7.1 m. Predicted cruising (the old rollout) the follower ends 26.7 m further on.
    cfg = PredictionConfig(idm=IDM)
    braking = rollout(car(0.0, 25.0), obstacle(15.0, 25.0, ax=-3.0), cfg)
    cruising = rollout(car(0.0, 25.0), obstacle(15.0, 25.0, ax=0.0), cfg)
    assert gaps(braking).min() == pytest.approx(7.1, abs=0.1)
    assert gaps(cruising).min() == pytest.approx(15.0)
    assert cruising.platoon_x[-1, 0] - braking.platoon_x[-1, 0] == pytest.approx(26.7, abs=0.1)
    assert braking.obstacle_vx[-1, 0] == pytest.approx(10.0)
    assert not np.isfinite(braking.platoon_collision_s[0])


def test_obstacle_acceleration_is_bounded_and_a_braking_obstacle_stops():
    t = np.arange(51) * 0.1
    x, v = bounded_acceleration(np.array([0.0, 0.0]), np.array([10.0, 0.0]), np.array([-4.0, -4.0]), t)
    assert v[-1].tolist() == [0.0, 0.0] and x[-1].tolist() == pytest.approx([12.5, 0.0])   # stops after 2.5 s
    cfg = PredictionConfig(idm=IDM)
    ro = rollout(car(0.0, 25.0), obstacle(100.0, 25.0, ax=-20.0), cfg)
    assert ro.obstacle_vx[1, 0] == pytest.approx(25.0 - cfg.max_decel_mps2 * cfg.dt_s)
    ro = rollout(car(0.0, 25.0), obstacle(100.0, 25.0, ax=5.0), cfg)
    assert ro.obstacle_vx[-1, 0] == pytest.approx(25.0 + cfg.max_obstacle_accel_mps2 * 5.0)


def test_a_braking_leader_platoon_vehicle_keeps_braking_in_the_rollout():
    pl = PlatoonState(('v1', 'v2'), np.array([0.0, -19.5]), np.zeros(2), np.full(2, 25.0), np.zeros(2),
                      np.full(2, LEN), np.full(2, 1.8), np.array([0, 1]), np.array([-3.0, 0.0]))
    ro = rollout(pl, ObstacleState.empty(), PredictionConfig(idm=IDM))
    assert ro.platoon_speed[-1, 0] == pytest.approx(10.0)
    gap = ro.platoon_x[:, 0] - ro.platoon_x[:, 1] - LEN
    # A follower's IDM aims at idm.v0_mps (30 m/s), not at its own speed as a lone car above: a little closer.
    assert gap.min() == pytest.approx(6.8, abs=0.1)


def test_a_braking_obstacle_ahead_is_a_conflict_sooner_than_a_cruising_one():
    cfg = PredictionConfig(idm=IDM)
    cruising = find_conflicts(rollout(car(0.0, 25.0), obstacle(15.0, 25.0), cfg))
    (braking,) = find_conflicts(rollout(car(0.0, 25.0), obstacle(15.0, 25.0, ax=-6.0), cfg))
    assert cruising == []
    # No reaction: 25 t vs 25 t - 3 t^2 closes 15 m at t = sqrt(5) = 2.24 s.
    assert braking.level is ConflictLevel.ERROR and braking.other_accel_mps2 == pytest.approx(-6.0)
    assert braking.ttc_s == pytest.approx(np.sqrt(5.0), abs=0.15)
    assert braking.obstacle_x == pytest.approx(LEN + 15.0)
