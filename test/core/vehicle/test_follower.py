"""AdvisoryFollower: CACC following, braking for obstacles, the advisory, modes, stale inputs, config."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.vehicle.follower import (AdvisoryFollower, FollowerConfig, FollowerMode, Limit, Obstacle,
                                                      OwnState, Predecessor, advisory_profile, bumper_gap,
                                                      stopping_decel, warning_obstacle)

S = 1_000_000_000


def _drive(cfg: FollowerConfig, v0: float, gap0: float, v_lead: float, duration_s: float,
           obstacle: bool = False) -> tuple[float, float, float, float]:
    """Closed loop with exact constant-acceleration steps: (final speed, final gap, min accel, min gap)."""
    f = AdvisoryFollower(cfg)
    dt = cfg.command_period_s
    x, v, xl = 0.0, v0, gap0
    a_min, g_min = 0.0, math.inf
    for k in range(int(round(duration_s / dt))):
        now = k * int(round(dt * S))
        own = OwnState(now, v, x)
        if obstacle:
            cmd = f.command(now, own, warnings_obstacle=Obstacle(now, xl - x, v_lead))
        else:
            cmd = f.command(now, own, Predecessor(now, xl - x, v_lead))
        a = cmd.accel_mps2
        vn = max(v + a * dt, 0.0)
        x += v * v / (-2.0 * a) if (vn == 0.0 and a < 0) else 0.5 * (v + vn) * dt
        v, xl = vn, xl + v_lead * dt
        a_min, g_min = min(a_min, a), min(g_min, xl - x)
    return v, xl - x, a_min, g_min


@pytest.mark.parametrize('gap0', [8.0, 15.0, 40.0, 80.0])
def test_steady_following_holds_the_platoon_time_gap(gap0: float) -> None:
    cfg = FollowerConfig(mode=FollowerMode.EGO)
    v, gap, a_min, g_min = _drive(cfg, 20.0, gap0, 20.0, 90.0)
    assert_allclose(v, 20.0, atol=0.01)
    assert_allclose(gap, cfg.standstill_gap_m + 20.0 * cfg.platoon_time_gap_s, atol=0.05)  # 12.6 = 3 + 0.48 * 20
    assert a_min >= -cfg.comfort_decel_mps2 - 1e-9
    assert g_min >= min(gap0, 12.6) - 0.05                    # no overshoot into the predecessor


def test_the_scenarios_platoon_gap_is_the_steady_state_at_25_mps() -> None:
    """The scenarios start the platoon 15 m apart at 25 m/s: the CACC holds that without braking."""
    cfg = FollowerConfig(mode=FollowerMode.EGO)
    assert cfg.standstill_gap_m + 25.0 * cfg.platoon_time_gap_s == pytest.approx(15.0)
    cmd = AdvisoryFollower(cfg).command(0, OwnState(0, 25.0), Predecessor(0, 15.0, 25.0))
    assert cmd.accel_mps2 == pytest.approx(0.0, abs=1e-12) and cmd.target_speed_mps == pytest.approx(25.0)
    # the predecessor's acceleration is fed forward, speed and gap errors act
    f = AdvisoryFollower(cfg)
    assert f.command(0, OwnState(0, 25.0), Predecessor(0, 15.0, 25.0, -1.0)).accel_mps2 == pytest.approx(-0.5)
    assert f.command(0, OwnState(0, 25.0), Predecessor(0, 15.0, 24.0)).accel_mps2 == pytest.approx(-0.6)
    assert f.command(0, OwnState(0, 25.0), Predecessor(0, 14.0, 25.0)).accel_mps2 == pytest.approx(-0.15)
    assert f.command(0, OwnState(0, 25.0), Predecessor(0, 60.0, 25.0)).accel_mps2 == pytest.approx(0.6)  # capped


def test_closing_on_a_slower_predecessor_from_afar_brakes_only_as_needed() -> None:
    """The linear CACC would brake at 0.6 - 0.6 * 15 = -8.4 m/s^2 here, 100 m back."""
    cfg = FollowerConfig(mode=FollowerMode.EGO)
    cmd = AdvisoryFollower(cfg).command(0, OwnState(0, 25.0), Predecessor(0, 100.0, 10.0))
    assert cmd.accel_mps2 == pytest.approx(-15.0 ** 2 / (2.0 * (100.0 - 15.0)))      # -1.32: set gap at 10 m/s
    v, gap, a_min, g_min = _drive(cfg, 25.0, 100.0, 10.0, 60.0)
    assert v == pytest.approx(10.0, abs=0.05) and gap == pytest.approx(3.0 + 0.48 * 10.0, abs=0.1)
    assert a_min >= -1.6 and g_min >= 7.0                          # 0.35 m short of the set gap at most


@pytest.mark.parametrize('distance', [80.0, 100.0, 120.0, 150.0])
def test_stops_behind_a_standing_obstacle_within_comfort_when_there_is_room(distance: float) -> None:
    cfg = FollowerConfig(mode=FollowerMode.COOPERATIVE)
    v, gap, a_min, g_min = _drive(cfg, 20.0, distance, 0.0, 40.0, obstacle=True)
    assert v == pytest.approx(0.0, abs=1e-6)
    assert_allclose(gap, cfg.obstacle_gap_m, atol=0.05)
    assert g_min >= cfg.obstacle_gap_m - 0.05
    assert -cfg.comfort_decel_mps2 - 1e-6 <= a_min < -1.0


def test_brakes_beyond_comfort_up_to_the_limit_when_there_is_no_room() -> None:
    cfg = FollowerConfig(mode=FollowerMode.COOPERATIVE)
    v, gap, a_min, _ = _drive(cfg, 20.0, 40.0, 0.0, 20.0, obstacle=True)     # needs 400 / 69 = 5.8 m/s^2
    assert v == pytest.approx(0.0, abs=1e-6)
    assert gap == pytest.approx(cfg.obstacle_gap_m, abs=0.05)
    assert -cfg.max_decel_mps2 <= a_min < -5.0
    *_, g_min = _drive(cfg, 20.0, 25.0, 0.0, 20.0, obstacle=True)            # needs 10.3: contact is unavoidable
    assert g_min == pytest.approx(0.0, abs=1e-6)


def test_a_need_just_above_comfort_brakes_near_the_need_not_at_the_limit() -> None:
    """truck_brakes: a car merges 36 m ahead of the truck at 10.65 m/s; the truck drives 25 m/s. The stop
    5.5 m behind it at its speed needs 14.35^2 / 61 = 3.38 m/s^2; the IIDM's time gap term asks 12 (it braked
    the truck at 8). The command brakes 2 * need - comfort = 3.75, enough to bring the need back to 3."""
    cfg = FollowerConfig(mode=FollowerMode.COOPERATIVE)
    f = AdvisoryFollower(cfg)
    cmd = f.command(0, OwnState(0, 25.0), warnings_obstacle=Obstacle(0, 36.0, 10.65))
    assert cfg.obstacle_gap_m == 5.5
    assert cmd.accel_mps2 == pytest.approx(-(2.0 * 14.35 ** 2 / 61.0 - 3.0)) and cmd.limit is Limit.OBSTACLE
    # continuous through the comfortable deceleration: no jump to the limit as the need crosses 3 m/s^2
    accels = [f.command(0, OwnState(0, 25.0), warnings_obstacle=Obstacle(0, d, 10.65)).accel_mps2
              for d in np.arange(30.0, 45.0, 0.1)]
    assert np.all(np.abs(np.diff(accels)) < 0.1)
    assert min(accels) == pytest.approx(-(2.0 * 14.35 ** 2 / 49.0 - 3.0), abs=0.04)   # need 4.20 at 30 m


def test_a_car_cutting_in_inside_the_stop_gap_is_dropped_back_from_at_about_comfort() -> None:
    """A car 2 m ahead, 1 m/s slower: contact is avoided at 0.25 m/s^2; the follower drops back at that plus
    the comfortable deceleration (3.25), braking up to 2 * 3.25 - 3 = 3.5, not at the limit. Much slower and
    that close, the limit still holds."""
    cfg = FollowerConfig(mode=FollowerMode.COOPERATIVE)
    f = AdvisoryFollower(cfg)
    cmd = f.command(0, OwnState(0, 25.0), warnings_obstacle=Obstacle(0, 2.0, 24.0))
    assert cmd.accel_mps2 == pytest.approx(-(2.0 * (1.0 / 4.0 + cfg.comfort_decel_mps2) - cfg.comfort_decel_mps2))
    hard = f.command(0, OwnState(0, 25.0), warnings_obstacle=Obstacle(0, 4.0, 15.0))   # 100 / 8 = 12.5 to avoid it
    assert hard.accel_mps2 == -cfg.max_decel_mps2
    faster = f.command(0, OwnState(0, 25.0), warnings_obstacle=Obstacle(0, 2.0, 27.0))  # not closing: IIDM only
    assert -cfg.comfort_decel_mps2 <= faster.accel_mps2 < 0.0
    v, gap, a_min, g_min = _drive(cfg, 25.0, 2.0, 24.0, 30.0, obstacle=True)
    assert a_min >= -3.55 and g_min >= 1.8                                       # 2 m less 1 / (2 * 3.5)
    assert v == pytest.approx(24.0, abs=0.05) and gap == pytest.approx(5.5 + 24.0 * cfg.time_gap_s, abs=0.2)


def test_slows_to_a_slower_obstacle_and_follows_it() -> None:
    cfg = FollowerConfig(mode=FollowerMode.COOPERATIVE)
    v, gap, a_min, _ = _drive(cfg, 25.0, 80.0, 10.0, 60.0, obstacle=True)
    assert_allclose(v, 10.0, atol=0.01)
    assert_allclose(gap, cfg.obstacle_gap_m + 10.0 * cfg.time_gap_s, atol=0.05)
    assert a_min >= -cfg.comfort_decel_mps2


def test_free_road_accelerates_to_the_set_speed() -> None:
    f = AdvisoryFollower(FollowerConfig(cruise_speed_mps=25.0))
    cmd = f.command(0, OwnState(0, 10.0))
    assert cmd.limit is Limit.CRUISE
    assert_allclose(cmd.accel_mps2, 1.5 * (1 - 0.4 ** 4))
    assert_allclose(cmd.target_speed_mps, 10.0 + 0.1 * cmd.accel_mps2)
    assert f.command(0, OwnState(0, 25.0)).accel_mps2 == 0.0
    assert f.command(0, OwnState(0, 20.0, set_speed_mps=20.0)).accel_mps2 == 0.0
    stand = f.command(0, OwnState(0, 0.0, set_speed_mps=0.0))
    assert (stand.target_speed_mps, stand.accel_mps2) == (0.0, 0.0)


def _constant_decel_advisory(stamp_ns: int, v0: float, decel: float, n: int = 12,
                             dt_s: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """n poses braking from v0 every dt_s, then one a second later holding the final speed (as the twin's)."""
    t = np.append(np.arange(n) * dt_s, (n - 1) * dt_s + 1.0)
    v_end = max(v0 - decel * (n - 1) * dt_s, 0.0)
    tb = np.minimum(t, (v0 - v_end) / decel)
    s = v0 * tb - 0.5 * decel * tb * tb + v_end * (t - tb)
    return np.rint(t * S).astype(np.int64), s


def test_advisory_profile_recovers_constant_deceleration_speeds() -> None:
    t, s = _constant_decel_advisory(0, 20.0, 2.0, n=8)               # 20 -> 13 m/s in 3.5 s, then 13 m/s
    prof = advisory_profile(5 * S, t, 100.0 + s, np.full(t.shape, 3.0))
    assert_allclose(prof.speed, np.append(20.0 - 2.0 * t[:-1] / S, 13.0), atol=1e-9)   # exact at every pose
    assert_allclose(prof.speed_at(5 * S + int(1.25 * S)), 17.5, atol=1e-9)
    assert_allclose(prof.speed_at(4 * S), 20.0)                      # before the first pose: held
    assert_allclose(prof.speed_at(50 * S), 13.0)                     # after the last: held
    assert prof.age_s(6 * S) == pytest.approx(1.0)
    yawed = advisory_profile(0, t, s * math.cos(0.7), s * math.sin(0.7))  # along any heading
    assert_allclose(yawed.speed, prof.speed, atol=1e-9)
    # a stop: the speed ends at 0 exactly, and the profile has a kink where braking starts (coasting first)
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    v = np.array([10.0, 10.0, 20 / 3, 10 / 3, 0.0, 0.0])             # 10/3 m/s^2 from t = 1 s, stopped at 4 s
    seg_s = 0.5 * (v[:-1] + v[1:])                                     # metres per 1 s segment
    prof = advisory_profile(0, np.rint(t * S).astype(np.int64), np.concatenate([[0.0], np.cumsum(seg_s)]),
                            np.zeros(6))
    assert_allclose(prof.speed, v, atol=1e-9)


def test_advisory_profile_of_a_path_that_is_not_piecewise_linear_reads_mean_speeds() -> None:
    t = np.array([0, 1, 2, 3], dtype=np.int64) * S
    x = np.array([0.0, 10.0, 10.5, 30.0])                            # 10, 0.5, 19.5 m/s: no such profile
    prof = advisory_profile(0, t, x, np.zeros(4))
    assert_allclose(prof.speed, [10.0, 5.25, 10.0, 19.5])


def test_advisory_profile_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match='stamps must increase'):
        advisory_profile(0, np.array([0, 2, 1]), np.zeros(3), np.zeros(3))
    with pytest.raises(ConfigError, match='equal-length'):
        advisory_profile(0, np.array([0, 1]), np.zeros(3), np.zeros(3))
    with pytest.raises(ConfigError, match='non-finite'):
        advisory_profile(0, np.array([0, 1]), np.array([0.0, np.nan]), np.zeros(2))
    assert advisory_profile(0, np.array([0]), np.zeros(1), np.zeros(1)).speed.tolist() == [0.0]


def test_fresh_advisory_is_followed_and_stale_advisory_is_ignored() -> None:
    cfg = FollowerConfig(mode=FollowerMode.ADVISORY, advisory_max_age_s=1.0)
    f = AdvisoryFollower(cfg)
    t, s = _constant_decel_advisory(0, 20.0, 2.0)
    adv = advisory_profile(10 * S, t, s, np.zeros(t.shape))
    pred = Predecessor(10 * S + S // 2, 30.0, 20.0)
    now = 10 * S + S // 2                        # at 9.75 m, 19 m/s, as advised: 1.9 m on, 19^2 - 2 * 2 * 1.9
    cmd = f.command(now, OwnState(now, 19.0, 9.75), pred, advisory=adv)
    assert cmd.limit is Limit.ADVISORY
    assert_allclose(cmd.target_speed_mps, math.sqrt(361.0 - 7.6), atol=1e-9)
    assert_allclose(cmd.accel_mps2, (math.sqrt(361.0 - 7.6) - 19.0) / 0.1, atol=1e-6)   # -2.01 m/s^2
    # read by position: a second late (the advisory's clock says 17 m/s), at the same place it is the same
    later = f.command(now + S // 2, OwnState(now + S // 2, 19.0, 9.75), pred, advisory=adv)
    assert later.accel_mps2 == cmd.accel_mps2
    # 2 m/s above the profile there: it brakes back at most the comfortable deceleration
    fast = f.command(now, OwnState(now, 21.0, 9.75), pred, advisory=adv)
    assert fast.accel_mps2 == -cfg.comfort_decel_mps2 and fast.limit is Limit.ADVISORY
    late = 11 * S + S // 5                                           # 1.2 s old: stale -> ACC alone
    cmd = f.command(late, OwnState(late, 19.0), Predecessor(late, 30.0, 20.0), advisory=adv)
    assert cmd.limit is not Limit.ADVISORY and cmd.accel_mps2 > 0
    assert cmd.stale == ('advisory',)


def test_lower_of_acc_and_advisory_wins() -> None:
    f = AdvisoryFollower(FollowerConfig(mode=FollowerMode.ADVISORY))
    t = np.array([0, S, 2 * S], dtype=np.int64)
    adv = advisory_profile(0, t, np.array([0.0, 20.0, 40.0]), np.zeros(3))    # 20 m/s: above ACC's wish
    cmd = f.command(0, OwnState(0, 20.0), Predecessor(0, 10.0, 15.0), advisory=adv)
    assert cmd.limit is Limit.PREDECESSOR and cmd.accel_mps2 < -1.0


@pytest.mark.parametrize('mode, limit', [(FollowerMode.EGO, Limit.OBSTACLE),
                                         (FollowerMode.COOPERATIVE, Limit.OBSTACLE),
                                         (FollowerMode.ADVISORY, Limit.ADVISORY)])
def test_modes_use_their_inputs(mode: FollowerMode, limit: Limit) -> None:
    f = AdvisoryFollower(FollowerConfig(mode=mode))
    own = OwnState(0, 20.0)
    warned = Obstacle(0, 60.0, 0.0)                                  # needs 400 / 109 = 3.7 m/s^2
    ego = Obstacle(0, 150.0, 0.0, 'ego')                             # needs 400 / 289 = 1.4 m/s^2
    t, s = _constant_decel_advisory(0, 20.0, 8.0, n=6)                # 20 m/s to a stop at 8 m/s^2
    adv = advisory_profile(0, t, s, np.zeros(t.shape))
    cmd = f.command(0, own, None, warned, adv, ego)
    assert cmd.limit is limit
    if mode is FollowerMode.EGO:                                     # the warning is ignored, the ego obstacle used
        alone = AdvisoryFollower(FollowerConfig(mode=FollowerMode.COOPERATIVE)).command(0, own, None, ego)
        assert cmd.accel_mps2 == alone.accel_mps2 and cmd.accel_mps2 > -1.5
    elif mode is FollowerMode.COOPERATIVE:                           # at least the kinematic need; advisory ignored
        assert -FollowerConfig().max_decel_mps2 < cmd.accel_mps2 <= -400 / 109
    else:                                                            # the advised 8 m/s^2
        assert cmd.accel_mps2 == -FollowerConfig().max_decel_mps2
        assert_allclose(cmd.target_speed_mps, 20.0 - 0.8)


@pytest.mark.parametrize('mode', list(FollowerMode))
def test_own_perception_counts_in_every_mode(mode: FollowerMode) -> None:
    """The twin adds to what the vehicle sees: an obstacle in its own evidence is braked for alike in every
    mode (before, the cooperative modes dropped it; issue 16, v1 4.97 m behind the stopped car)."""
    own, ego = OwnState(0, 20.0), Obstacle(0, 60.0, 0.0, 'ego')
    cmd = AdvisoryFollower(FollowerConfig(mode=mode)).command(0, own, None, None, None, ego)
    alone = AdvisoryFollower(FollowerConfig(mode=FollowerMode.EGO)).command(0, own, None, None, None, ego)
    assert cmd.limit is Limit.OBSTACLE and cmd.accel_mps2 == alone.accel_mps2 <= -400 / 109


def test_stale_warning_and_predecessor_are_ignored_and_reported() -> None:
    f = AdvisoryFollower(FollowerConfig(mode=FollowerMode.COOPERATIVE, warning_max_age_s=1.0,
                                        predecessor_max_age_s=0.5))
    now = 5 * S
    cmd = f.command(now, OwnState(now, 20.0), Predecessor(now - S, 10.0, 0.0), Obstacle(now - 2 * S, 30.0, 0.0))
    assert cmd.limit is Limit.CRUISE
    assert cmd.stale == ('predecessor', 'warning')


def test_an_older_input_is_moved_to_now() -> None:
    f = AdvisoryFollower(FollowerConfig(mode=FollowerMode.COOPERATIVE))
    now = 5 * S
    old = f.command(now, OwnState(now, 20.0), warnings_obstacle=Obstacle(now - S // 2, 110.0, 0.0))
    fresh = f.command(now, OwnState(now, 20.0), warnings_obstacle=Obstacle(now, 100.0, 0.0))
    assert_allclose(old.accel_mps2, fresh.accel_mps2)               # 110 m half a second ago at 20 m/s = 100 m now


def test_helpers() -> None:
    ob = warning_obstacle(7, 42.0, -0.3)
    assert (ob.stamp_ns, ob.distance_m, ob.speed_mps, ob.source, ob.accel_mps2) == (7, 42.0, 0.0, 'twin', 0.0)
    assert warning_obstacle(7, 42.0, 20.0, -6.0).accel_mps2 == -6.0
    with pytest.raises(ConfigError, match='finite distance_m'):
        warning_obstacle(0, math.nan, 1.0)
    assert_allclose(bumper_gap(0.0, 0.0, 0.0, 3.5, 20.0, 0.5, 1.0), 15.5)
    assert_allclose(bumper_gap(0.0, 0.0, math.pi / 2, 3.5, 0.0, 20.0, 1.0), 15.5)
    assert_allclose(stopping_decel(20.0, 45.0, 0.0, 0.0, 5.0), 5.0)
    assert_allclose(stopping_decel(20.0, 45.0, 10.0, 0.0, 5.0), 1.25)
    assert_allclose(stopping_decel(20.0, 25.0, 20.0, -5.0, 5.0), 400 / 120)   # the other stops in 40 m
    assert stopping_decel(10.0, 45.0, 12.0, 0.0, 5.0) == 0.0
    assert stopping_decel(10.0, 4.0, 0.0, 0.0, 5.0) == math.inf


@pytest.mark.parametrize('kwargs, match', [
    ({'mode': 'fast'}, 'mode must be one of'),
    ({'time_gap_s': 0.0}, 'time_gap_s must be a positive'),
    ({'cruise_speed_mps': math.nan}, 'cruise_speed_mps must be a positive'),
    ({'standstill_gap_m': -1.0}, 'standstill_gap_m must be a >= 0'),
    ({'comfort_decel_mps2': 9.0}, 'comfort_decel_mps2 9.0 must not exceed max_decel_mps2 8.0'),
    ({'advisory_max_age_s': True}, 'advisory_max_age_s must be a positive'),
])
def test_bad_config_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FollowerConfig(**kwargs)


def test_mode_from_string() -> None:
    assert FollowerConfig(mode='cooperative+advisory').mode is FollowerMode.ADVISORY


def test_a_braking_leader_is_taken_to_its_stop() -> None:
    """A warned vehicle ahead at the own speed but braking at 6 m/s^2 (truck_brakes.yaml): stopping behind where
    it stops needs 20^2 / (2 (25 + 33.3 - 5.5)) = 3.79 m/s^2 now; at constant speed it would need nothing."""
    f = AdvisoryFollower(FollowerConfig(mode=FollowerMode.COOPERATIVE))
    braking = f.command(0, OwnState(0, 20.0), warnings_obstacle=warning_obstacle(0, 25.0, 20.0, -6.0))
    steady = f.command(0, OwnState(0, 20.0), warnings_obstacle=warning_obstacle(0, 25.0, 20.0))
    assert braking.limit is Limit.OBSTACLE
    assert braking.accel_mps2 <= -400 / (2 * (25.0 + 400 / 12 - 5.5)) + 1e-9
    assert steady.accel_mps2 > -1.0
    pred = f.command(0, OwnState(0, 20.0), Predecessor(0, 25.0, 20.0, -6.0))
    assert pred.limit is Limit.PREDECESSOR and pred.accel_mps2 == pytest.approx(braking.accel_mps2, abs=0.5)


def test_a_stopped_platoon_stands_obstacle_gap_apart_not_standstill_gap():
    # Issue 16: stopped behind the hazard, the followers crept up to standstill_gap_m (3 m) behind their
    # predecessors, under the 5 m min_gap target; at crawling speed the set gap is obstacle_gap_m (5.5 m).
    f = AdvisoryFollower(FollowerConfig(mode=FollowerMode.COOPERATIVE))
    cmd = f.command(0, OwnState(0, 0.0), Predecessor(0, 4.5, 0.0, 0.0))          # before: +0.23 m/s^2
    assert cmd.limit is Limit.PREDECESSOR and cmd.accel_mps2 == 0.0 and cmd.target_speed_mps == 0.0
    cmd = f.command(0, OwnState(0, 0.0), Predecessor(0, 6.5, 0.0, 0.0))          # 1 m beyond it: closes
    assert cmd.accel_mps2 == pytest.approx(0.15)
    cruise = f.command(0, OwnState(0, 25.0), Predecessor(0, 15.0, 25.0, 0.0))     # at speed: 3 + 0.48 v as before
    assert cruise.accel_mps2 == pytest.approx(0.0, abs=1e-9)


def test_a_follower_rolling_up_to_a_stopped_predecessor_stops_at_the_set_gap() -> None:
    """Default scenario, cooperative+advisory: v2 rolled at 0.6 m/s 0.2 m beyond the set gap (then 5 m)
    behind the stopped v1 and the linear law braked 0.33 m/s^2 (it ended 4.75 m behind). The floor now holds
    at any need behind a stopped predecessor: 0.2 m beyond the 5.5 m set gap, 0.36 / (2 * 0.2) = 0.9 m/s^2;
    standing 1 m beyond it, it still creeps up; 0.3 m inside it, rolling, it brakes at the limit."""
    f = AdvisoryFollower(FollowerConfig(mode=FollowerMode.COOPERATIVE))
    cmd = f.command(0, OwnState(0, 0.6), Predecessor(0, 5.7, 0.0, 0.0))
    assert cmd.accel_mps2 == pytest.approx(-0.9)
    assert f.command(0, OwnState(0, 0.0), Predecessor(0, 6.5, 0.0, 0.0)).accel_mps2 == pytest.approx(0.15)
    assert f.command(0, OwnState(0, 0.6), Predecessor(0, 5.2, 0.0, 0.0)).accel_mps2 == -8.0
