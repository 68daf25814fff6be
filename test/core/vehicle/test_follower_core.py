"""FollowerCore: the follower node's work without ROS (inputs kept, gaps from odometry, expiry, stale drops)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cooperative_fusion.core.drops import DroppedInput
from cooperative_fusion.core.errors import ConfigError, MessageFormatError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.platoon_config import load_platoon_config
from cooperative_fusion.core.vehicle.follower import FollowerConfig, FollowerMode, Limit, stopping_decel
from cooperative_fusion.core.vehicle.follower_core import FollowerCore, FollowerSetup, bodies_from_platoon

S = 1_000_000_000
CONFIG = Path(__file__).resolve().parents[3] / 'config'


def _core(mode: FollowerMode = FollowerMode.ADVISORY) -> FollowerCore:
    return FollowerCore(FollowerSetup('v2', 'v1', front_m=3.5, predecessor_rear_m=1.0, predecessor_length_m=4.5,
                                      follower=FollowerConfig(mode=mode)))


def test_no_odometry_no_command_then_a_gap_from_both_odometries():
    core = _core()
    assert core.step(0) == (None, [])
    core.on_odometry(0, 0.0, 0.0, 0.0, 20.0)
    core.on_predecessor_odometry(0, 17.1, 0.0, 0.0, 20.0)           # gap 17.1 - 3.5 - 1.0 = 12.6 = 3 + 0.48 * 20
    cmd, drops = core.step(S // 10)
    assert drops == [] and cmd.limit is Limit.PREDECESSOR and cmd.accel_mps2 == pytest.approx(0.0, abs=1e-9)
    core.on_predecessor_odometry(S // 10, 19.1, 0.0, 0.0, 20.0)      # the predecessor moved, own not yet: 0.1 s
    assert core._pred_gap(core.own, core.pred) == pytest.approx(12.6)
    # yawed road: the gap is along the own heading
    core.on_odometry(0, 0.0, 0.0, math.pi / 2, 20.0)
    core.on_predecessor_odometry(0, 0.0, 31.5, math.pi / 2, 20.0)
    assert core._pred_gap(core.own, core.pred) == pytest.approx(27.0)


def test_predecessor_acceleration_is_estimated_from_its_speeds():
    core = _core()
    for k in range(100):                                             # 50 Hz, braking at 6 m/s^2 for 2 s
        core.on_predecessor_odometry(k * S // 50, 40.0, 0.0, 0.0, 25.0 - 6.0 * k / 50)
    assert core.pred_accel_mps2 == pytest.approx(-6.0, abs=0.05)


def test_warnings_keep_the_strongest_and_an_array_without_the_vehicle_clears_it():
    core = _core(FollowerMode.COOPERATIVE)
    core.on_odometry(0, 0.0, 0.0, 0.0, 20.0)
    core.on_warnings(0, 0, [(80.0, 0.0, 0.0), (40.0, 15.0, 0.0)])     # needs 400/149 = 2.7 vs 25/69 = 0.36
    assert core.warning.distance_m == 80.0
    core.on_warnings(S // 10, S // 10, [])                           # a standing obstacle: held (test below)
    assert core.warning.distance_m == 80.0 and core.warning_held and core.warning_stamp_ns == S // 10
    core.on_warnings(S // 5, S // 5, [(40.0, 15.0, 0.0)])
    core.on_warnings(S // 5, S // 5, [])                             # a moving one: cleared
    assert core.warning is None and core.warning_stamp_ns == S // 5
    with pytest.raises(DroppedInput, match='warnings is 1.50 s old on arrival') as err:
        core.on_warnings(2 * S, S // 2, [(80.0, 0.0, 0.0)])
    assert err.value.cause == 'too_old'
    with pytest.raises(ConfigError, match='finite distance_m'):
        core.on_warnings(S, S, [(math.nan, 0.0, 0.0)])


def test_advisory_and_warning_expire_without_a_drop_and_stale_odometry_is_counted_once():
    core = _core()
    core.on_odometry(0, 0.0, 0.0, 0.0, 20.0)
    core.on_predecessor_odometry(0, 31.5, 0.0, 0.0, 20.0)
    t = np.array([0, S, 2 * S], dtype=np.int64)
    core.on_advisory(0, 0, t, np.array([0.0, 19.0, 38.0]), np.zeros(3))
    core.on_warnings(0, 0, [(200.0, 0.0, 0.0)])
    assert core.step(S // 10)[0].limit is Limit.ADVISORY
    core.on_odometry(S, 20.0, 0.0, 0.0, 20.0)
    cmd, drops = core.step(S + S // 10)                               # both 1.1 s old: expired
    assert core.advisory is None and core.warning is None and core.expired == {'advisory': 1, 'warning': 1}
    assert [d.source for d in drops] == ['predecessor'] and drops[0].cause == 'too_old'
    assert cmd.limit is Limit.CRUISE and core.step(S + S // 5)[1] == []   # the same sample is reported once
    health = core.health(S + S // 5)
    assert health['advisory_age_s'] == pytest.approx(1.2) and health['advisory_active'] is False
    cmd, drops = core.step(3 * S)                                     # own odometry 2 s old: no command
    assert cmd is None and [(d.source, d.cause) for d in drops] == [('odom', 'too_old')]
    assert core.step(4 * S) == (None, [])                             # counted at its first stale step only
    with pytest.raises(MessageFormatError, match='non-finite'):
        core.on_odometry(0, math.nan, 0.0, 0.0, 1.0)


def test_bodies_from_the_platoon_file():
    platoon = load_platoon_config(CONFIG / 'platoon.yaml').platoon
    assert bodies_from_platoon(platoon, 'v1') == {'predecessor_id': None, 'front_m': 3.5, 'predecessor_rear_m': 0.0,
                                                  'predecessor_length_m': 0.0}
    assert bodies_from_platoon(platoon, 'v3') == {'predecessor_id': 'v2', 'front_m': 3.5, 'predecessor_rear_m': 2.5,
                                                  'predecessor_length_m': 12.0}
    with pytest.raises(ConfigError, match="vehicle 'v9' is not in the platoon"):
        bodies_from_platoon(platoon, 'v9')


def _braking_pair(core: FollowerCore, speed: float = 23.0, accel: float = -3.5) -> None:
    """Own front 15.0 m behind the predecessor's rear, both at ``speed``; the predecessor braking at ``accel``
    for 0.5 s of 50 Hz odometry, ending at t = 0."""
    for k in range(-25, 1):
        core.on_predecessor_odometry(k * S // 50, 19.5, 0.0, 0.0, speed + accel * k / 50)
    core.on_odometry(0, 0.0, 0.0, 0.0, speed)


def test_a_warning_about_the_braking_predecessor_is_left_to_the_cacc():
    # Issue 16, default scenario: the twin warned v3 about v2 braking 15 m ahead, with its track's noisy
    # acceleration (-7.6 for a 3.5 m/s^2 brake); taken as an obstacle to stop 5 m behind, it braked
    # 23^2 / (2 (10 + 22.7^2 / 15.2)) = 6.0 m/s^2 (before: limit obstacle, -6.0).
    core = _core(FollowerMode.COOPERATIVE)
    _braking_pair(core)
    alone = core.step(S // 100)[0]                                 # the CACC floor: 23^2 / (2 (9.5 + 23^2 / 7)) = 3.11
    assert alone.limit is Limit.PREDECESSOR and alone.accel_mps2 == pytest.approx(-3.11, abs=0.01)
    core.on_warnings(0, 0, [(15.05, 22.7, -7.6)])
    assert core.warning is None and core.warned_for_predecessor
    assert core.step(S // 100)[0] == alone


def test_an_obstacle_beyond_the_predecessor_is_stopped_for_behind_the_predecessors_stop():
    core = _core(FollowerMode.COOPERATIVE)
    _braking_pair(core, 25.0, 0.0)
    core.on_warnings(0, 0, [(126.0, 0.0, 0.0)])             # beyond: the predecessor stops 5.5 m short of it
    assert core.warning.distance_m == pytest.approx(126.0 - 4.5 - 5.5) and not core.warned_for_predecessor
    core.on_warnings(0, 0, [(8.0, 0.0, 0.0)])               # between (a cut-in): as it is
    assert core.warning.distance_m == 8.0
    core.pred = None                                         # no predecessor known: as it is
    core.on_warnings(0, 0, [(126.0, 0.0, 0.0)])
    assert core.warning.distance_m == 126.0


def test_the_advisory_is_not_followed_while_the_only_warning_is_the_predecessor():
    core = _core()
    _braking_pair(core)
    t = np.array([0, S, 2 * S], dtype=np.int64)
    core.on_advisory(0, 0, t, np.array([0.0, 5.0, 6.0]), np.zeros(3))   # a hard stop 5 m behind the predecessor
    core.on_warnings(0, 0, [(15.05, 22.7, -7.6)])
    cmd, _ = core.step(S // 100)
    assert cmd.limit is Limit.PREDECESSOR and cmd.accel_mps2 == pytest.approx(-3.11, abs=0.01)
    core.on_warnings(0, 0, [(126.0, 0.0, 0.0)])
    assert core.step(S // 50)[0].limit is Limit.ADVISORY


def test_a_standing_obstacle_outlives_the_twins_silence_until_it_expires():
    """Issue 16, default scenario with lossy.yaml: v1 crept at 1.08 m/s 5.9 m (the twin's gap) behind the stopped
    car, whose track had taken up 0.41 m/s; the twin then sent no warning for v1 for 0.8 s, and with its warning
    cleared the follower accelerated at the free road's 1.5 m/s^2 (v1 ended 4.77 m behind the car). A standing
    obstacle's warning is now held until it is warning_max_age_s old; a moving or braking one's is cleared."""
    core = FollowerCore(FollowerSetup('v1', None, front_m=3.5, follower=FollowerConfig(mode=FollowerMode.COOPERATIVE)))
    core.on_odometry(0, 0.0, 0.0, 0.0, 1.08)
    core.on_warnings(0, 0, [(5.9, 0.41, 0.0)])
    warned = core.step(S // 10)[0]
    core.on_warnings(S // 10, S // 10, [])                          # the twin goes quiet about v1
    assert core.warning_held and core.health(S // 10)['warning_held'] is True
    quiet = core.step(S // 10)[0]
    assert quiet == warned and quiet.limit is Limit.OBSTACLE          # before: limit cruise, +1.5 m/s^2
    # IIDM toward it 5.9 + (0.41 - 1.08) * 0.1 m ahead: s* = 5.5 + 1.08 * 1.2 + 1.08 * 0.67 / (2 sqrt(4.5))
    s_star = 5.5 + 1.08 * 1.2 + 1.08 * 0.67 / (2.0 * math.sqrt(4.5))
    assert quiet.accel_mps2 == pytest.approx(1.5 * (1.0 - (s_star / (5.9 - 0.067)) ** 2))
    core.on_warnings(S // 2, S // 2, [])                            # still quiet: still held
    core.on_odometry(S, 1.0, 0.0, 0.0, 1.0)
    assert core.warning is not None and core.step(S)[0].limit is Limit.OBSTACLE
    cmd = core.step(S + S // 10)[0]                                 # 1.1 s old: expired
    assert core.warning is None and core.expired['warning'] == 1 and cmd.limit is Limit.CRUISE
    assert core.health(S + S // 10)['warning_held'] is False
    for moving in ((5.9, 1.0, 0.0), (20.0, 0.3, -2.0)):              # moving, or braking to a stop: cleared
        core.on_odometry(2 * S, 0.0, 0.0, 0.0, 1.08)
        core.on_warnings(2 * S, 2 * S, [moving])
        assert core.warning is not None
        core.on_warnings(2 * S, 2 * S, [])
        assert core.warning is None and not core.warning_held



GRID = GridSpec(-20.0, -10.0, 0.2, 500, 100)                        # x -20..80 m, y -10..10 m


def _car(rear_x: float) -> np.ndarray:
    """Evidence (percent) of a 4.5 m car in the lane whose rear bumper is at map x ``rear_x``."""
    xs, ys = GRID.cell_centers()
    g = np.zeros(GRID.shape, np.int8)
    g[np.ix_(np.abs(ys) <= 0.9, (xs >= rear_x) & (xs <= rear_x + 4.5))] = 85
    return g


@pytest.mark.parametrize('mode', list(FollowerMode))
def test_own_perception_brakes_after_the_twin_goes_quiet(mode: FollowerMode):
    """Issue 16 after body registration, default scenario, seed 7: v1 (the leader) crept at 0.8 m/s up to the
    stopped car, 5.7 m ahead by the twin's measure; the twin, seeing it close too slowly, went quiet, the held
    warning expired 1 s later, and v1 accelerated on the free road's 1.5 m/s^2 until the twin warned again
    (4.97 m). Its own evidence grid showed the car all along: in every mode it now brakes for what it sees
    (the cooperative modes once it has been tracked EGO_CONFIRM_S), by the IIDM toward a standing leader."""
    cfg = FollowerConfig(mode=mode)
    core = FollowerCore(FollowerSetup('v1', None, front_m=3.5, follower=cfg))
    core.on_odometry(0, 0.0, 0.0, 0.0, 0.8)
    if mode is not FollowerMode.EGO:
        core.on_warnings(0, 0, [(5.7, 0.0, 0.0)])
        core.on_warnings(S // 10, S // 10, [])                      # the twin goes quiet: held, then expired
    rear = 0.8 * 1.7 + 3.5 + 5.7                                    # 5.7 m ahead of the front bumper at 1.7 s
    for k in range(12, 18):                                          # grids at 1.2 .. 1.7 s
        now = k * S // 10
        core.on_odometry(now, 0.8 * now * 1e-9, 0.0, 0.0, 0.8)
        if k == 16 and mode is not FollowerMode.EGO:                 # tracked 0.4 s: not yet
            cmd = core.step(now)[0]
            assert core.warning is None and cmd.limit is Limit.CRUISE and cmd.accel_mps2 > 0   # the free road
        core.on_evidence(now, GRID, _car(rear))
    assert core.ego_obstacle.distance_m == pytest.approx(5.8, abs=0.1) and core.ego_obstacle.speed_mps < 0.2
    assert core.ego_confirmed and core.health(now)['ego_obstacle_confirmed'] is True
    cmd = core.step(now)[0]
    assert cmd.limit is Limit.OBSTACLE                               # before: cruise, +1.5 m/s^2 toward the car
    # The IIDM toward a standing car (its kinematic need, 0.64 / (2 * 0.3) m/s^2, stays below the floor's start)
    gap = core.ego_obstacle.distance_m
    assert stopping_decel(0.8, gap, 0.0, 0.0, cfg.obstacle_gap_m) < 0.5 * cfg.comfort_decel_mps2
    v_o = core.ego_obstacle.speed_mps
    s_star = cfg.obstacle_gap_m + 0.8 * cfg.time_gap_s + 0.8 * (0.8 - v_o) / (2.0 * math.sqrt(1.5 * 3.0))
    assert cmd.accel_mps2 == pytest.approx(1.5 * (1.0 - (s_star / gap) ** 2)) and cmd.accel_mps2 < -0.4


@pytest.mark.parametrize('mode', list(FollowerMode))
def test_a_car_cutting_in_counts_in_the_cooperative_modes_once_its_speed_is_known(mode: FollowerMode):
    """cut_in, seed 7: c1 cut in 2 m ahead of v2 at ~24 m/s while v2 drove 25. Taken as standing when first
    seen, it braked v2 at 7.4 m/s^2 in cooperative+advisory (v3, v4 at 7.0 / 6.9 behind it), where the twin
    alone asked 3-5. Ego mode has nothing else and still takes a new obstacle as standing; the cooperative
    modes wait the EGO_CONFIRM_S its speed takes, then drop back at about the comfortable rate."""
    core = FollowerCore(FollowerSetup('v2', None, front_m=3.5, follower=FollowerConfig(mode=mode)))
    first = None
    for k in range(0, 6):                                            # grids at 0 .. 0.5 s
        now = k * S // 10
        own_x, car_x = 25.0 * now * 1e-9, 3.5 + 2.0 + 24.0 * now * 1e-9
        core.on_odometry(now, own_x, 0.0, 0.0, 25.0)
        core.on_evidence(now, GRID, _car(car_x))
        cmd = core.step(now)[0]
        first = cmd if first is None else first
        if k < 5:
            assert core.ego_confirmed is False
    assert core.ego_confirmed and core.ego_obstacle.speed_mps == pytest.approx(24.0, abs=0.2)
    if mode is FollowerMode.EGO:
        assert first.limit is Limit.OBSTACLE and first.accel_mps2 == -FollowerConfig().max_decel_mps2
    else:
        assert first.limit is Limit.CRUISE                           # before: -8 m/s^2 for a car at 24 m/s
    assert cmd.limit is Limit.OBSTACLE and -4.5 < cmd.accel_mps2 < -3.0   # contact need + comfort, not the limit


def test_the_own_obstacle_stands_in_only_where_the_twin_says_nothing_about_it():
    """One obstacle, one estimate: while a twin warning names the obstacle the vehicle sees itself (gaps within
    SAME_OBSTACLE_M now), the twin's counts; counting both braked for the harder of two noisy estimates (cut_in:
    v1 to v4 each 0.2 m/s^2 harder). Something else the vehicle sees, nearer, counts as well."""
    def seen(rear_x: float) -> FollowerCore:
        core = FollowerCore(FollowerSetup('v1', None, front_m=3.5,
                                          follower=FollowerConfig(mode=FollowerMode.COOPERATIVE)))
        for k in range(6):                                           # a standing car, tracked 0.5 s at 20 m/s
            now = k * S // 10
            core.on_odometry(now, 20.0 * now * 1e-9, 0.0, 0.0, 20.0)
            core.on_evidence(now, GRID, _car(rear_x))
        assert core.ego_confirmed
        return core

    now = S // 2
    core = seen(10.0 + 3.5 + 61.0)                                   # 61 m ahead at 0.5 s, the twin says 60
    core.on_warnings(now, now, [(60.0, 0.0, 0.0)])
    both = core.step(now)[0]
    assert not core.ego_used and core.health(now)['ego_obstacle_used'] is False
    twin = FollowerCore(FollowerSetup('v1', None, front_m=3.5,
                                      follower=FollowerConfig(mode=FollowerMode.COOPERATIVE)))
    twin.on_odometry(now, 10.0, 0.0, 0.0, 20.0)
    twin.on_warnings(now, now, [(60.0, 0.0, 0.0)])
    assert both == twin.step(now)[0]
    core.on_warnings(now, now, [])                                   # the twin goes quiet: held 1 s, then expired
    for k in range(6, 17):                                           # the car still there, seen to 1.6 s
        t = k * S // 10
        core.on_odometry(t, 20.0 * t * 1e-9, 0.0, 0.0, 20.0)
        core.on_evidence(t, GRID, _car(10.0 + 3.5 + 61.0))
        cmd = core.step(t)[0]
        assert cmd.limit is Limit.OBSTACLE and core.ego_used is (core.warning is None)
    assert core.warning is None and core.expired['warning'] == 1      # the own obstacle stood in
    near = seen(10.0 + 3.5 + 40.0)                                   # another car, 20 m short of the warned one
    near.on_warnings(now, now, [(60.0, 0.0, 0.0)])
    cmd = near.step(now)[0]
    assert near.ego_used and cmd.accel_mps2 < both.accel_mps2


def test_a_flickering_warning_about_a_moving_car_is_not_filled_in_with_the_own_estimate():
    """cut_in, seed 7: the twin warned v2 about c1 (~1.5 m ahead, 24 m/s) in every other array; each array
    without v2 clears a moving obstacle's warning. The own obstacle, the same car with a speed 1.4 m/s low,
    filled those gaps (v2 5.3 m/s^2 against 5.1). The twin's word on it stands for warning_max_age_s: the own
    obstacle takes the car over only after the twin has said nothing about it for that long."""
    core = FollowerCore(FollowerSetup('v2', None, front_m=3.5,
                                      follower=FollowerConfig(mode=FollowerMode.COOPERATIVE)))
    used = []
    for k in range(19):                                              # c1 2 m ahead at 24.5 m/s, grids every 0.1 s
        now = k * S // 10
        t = now * 1e-9
        core.on_odometry(now, 25.0 * t, 0.0, 0.0, 25.0)
        core.on_evidence(now, GRID, _car(25.0 * t + 3.5 + 2.0 - 0.5 * t))
        if k in (5, 7):
            core.on_warnings(now, now, [(2.0 - 0.5 * t, 24.5, 0.0)])
        elif k > 5:
            core.on_warnings(now, now, [])                           # an array without v2: cleared (moving)
        core.step(now)
        used.append(core.ego_used)
    assert core.ego_confirmed and core.warning is None
    assert used == [False] * 18 + [True]                             # 1.1 s after the last warning about it


def test_a_standing_car_is_taken_over_at_once_when_the_twin_goes_quiet():
    """Default scenario, seed 7: the stopped car's track took up 0.5 m/s as v1 crept up to it, so the twin's
    last warning was not held, and the twin's quiet spells (< 1 s) ended before any 1 s deference would have:
    v1 4.97 m. The own grid says the car stands: it is the own obstacle's at once."""
    core = FollowerCore(FollowerSetup('v1', None, front_m=3.5,
                                      follower=FollowerConfig(mode=FollowerMode.COOPERATIVE)))
    rear = 0.8 * 0.6 + 3.5 + 5.8
    for k in range(7):                                               # the car tracked 0.6 s, standing
        now = k * S // 10
        core.on_odometry(now, 0.8 * now * 1e-9, 0.0, 0.0, 0.8)
        core.on_evidence(now, GRID, _car(rear))
        if k == 5:
            core.on_warnings(now, now, [(5.9, 0.6, 0.0)])             # the twin's track moves at 0.6 m/s
            core.step(now)
            assert core.warning is not None and not core.ego_used    # named by a warning: the twin's
        if k == 6:
            core.on_warnings(now, now, [])                           # quiet: a moving obstacle's warning clears
    cmd = core.step(now)[0]
    assert core.warning is None and core.ego_obstacle.speed_mps < 0.5
    assert core.ego_used and cmd.limit is Limit.OBSTACLE and cmd.accel_mps2 < 0   # before: cruise, +1.5 m/s^2
