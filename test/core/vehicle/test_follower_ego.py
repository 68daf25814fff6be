"""FollowerCore in ego mode: its own evidence grid gives obstacles only short of the predecessor.

The start-up scene of every closed-loop ego run (issue 16): v4 at 25 m/s, 15 m behind v3, 34.8 m behind
the truck v2, all at 25 m/s. Its evidence grid holds v3's radar blur, occupied up to 2.1 m in front of
v3's rear bumper, and v2 past v3. Before the fix the corridor skipped only v3's body +- 2 m, so the blur
(13 m, standing) and v2 (34.8 m, taken as standing) braked v4 at 8 m/s^2 with nothing in its way.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.follower import FollowerConfig, FollowerMode, Limit
from cooperative_fusion.core.vehicle.follower_core import FollowerCore, FollowerSetup

S = 1_000_000_000
SPEC = GridSpec(-20.0, -10.0, 0.4, 250, 100)                # x -20..80 m, y -10..30 m
FRONT, PRED_REAR, PRED_LEN = 3.5, 1.0, 4.5


def _grid(*boxes: tuple[float, float, float, float], value: int = 85) -> np.ndarray:
    """Evidence (percent) with ``value`` in map boxes (x0, x1, y0, y1), 0 elsewhere."""
    g = np.zeros(SPEC.shape, np.int8)
    xs, ys = SPEC.cell_centers()
    for x0, x1, y0, y1 in boxes:
        g[np.ix_((ys >= y0) & (ys <= y1), (xs >= x0) & (xs <= x1))] = value
    return g


def _core(predecessor: bool = True) -> FollowerCore:
    core = FollowerCore(FollowerSetup('v4', 'v3' if predecessor else None, front_m=FRONT,
                                      predecessor_rear_m=PRED_REAR, predecessor_length_m=PRED_LEN,
                                      follower=FollowerConfig(mode=FollowerMode.EGO)))
    core.on_odometry(0, 0.0, 0.0, 0.0, 25.0)
    if predecessor:                                          # bumper gap 15 m: v3's base_link at 19.5
        core.on_predecessor_odometry(0, FRONT + 15.0 + PRED_REAR, 0.0, 0.0, 25.0)
    return core


START_UP = _grid((FRONT + 12.9, FRONT + 15.0, -1.0, 1.0),             # v3's radar blur, 2.1 m ahead of its rear
                 (FRONT + 15.0, FRONT + 19.5, -0.9, 0.9),             # v3
                 (FRONT + 34.8, FRONT + 50.0, -1.2, 1.2))             # the truck v2 past v3


def test_start_up_platoon_gives_no_ego_obstacle_and_no_braking() -> None:
    core = _core()
    core.on_evidence(0, SPEC, START_UP)
    assert core.ego_obstacle is None
    cmd, _ = core.step(S // 10)
    assert cmd.limit is not Limit.OBSTACLE
    assert cmd.accel_mps2 == pytest.approx(0.0, abs=0.05)            # before: -8.0


def test_an_obstacle_between_the_vehicle_and_its_predecessor_still_brakes() -> None:
    core = _core()
    cut_in = _grid((FRONT + 6.0, FRONT + 10.5, -0.9, 0.9))
    core.on_evidence(0, SPEC, np.maximum(START_UP, cut_in))
    assert core.ego_obstacle is not None and core.ego_obstacle.distance_m == pytest.approx(6.2, abs=0.3)
    cmd, _ = core.step(S // 10)
    assert cmd.limit is Limit.OBSTACLE and cmd.accel_mps2 == pytest.approx(-8.0)


def test_without_a_predecessor_the_whole_corridor_counts() -> None:
    core = _core(predecessor=False)
    core.on_evidence(0, SPEC, _grid((FRONT + 60.0, FRONT + 64.5, -0.9, 0.9)))
    assert core.ego_obstacle.distance_m == pytest.approx(60.2, abs=0.3)
    assert core.ego_obstacle.speed_mps == 0.0                        # the grid has no velocity: standing


def test_the_corridor_bends_with_the_yaw_rate() -> None:
    """On a 0.01 1/m curve a car 60 m along the lane is 18 m to the side of the heading line."""
    k, s = 0.01, 60.0
    cx, cy = math.sin(k * s) / k, (1.0 - math.cos(k * s)) / k        # on the arc from the origin heading +x
    car = _grid((cx - 0.6, cx + 0.6, cy - 0.6, cy + 0.6))
    straight = _core(predecessor=False)
    straight.on_evidence(0, SPEC, car)
    assert straight.ego_obstacle is None
    curved = FollowerCore(straight.setup)
    curved.on_odometry(0, 0.0, 0.0, 0.0, 25.0, yaw_rate_rps=25.0 * k)
    assert curved.curvature_per_m() == pytest.approx(k)
    curved.on_evidence(0, SPEC, car)
    assert curved.ego_obstacle.distance_m == pytest.approx(s - 0.6 - FRONT, abs=0.5)


def test_a_car_seen_in_successive_grids_gets_its_speed() -> None:
    """cut_in / truck_brakes in ego mode: the car that cut in, taken as standing, braked the truck to 5 m/s
    behind a car at 24 m/s. Seen at 10 Hz its position along the road gives its speed; a detection off the
    track by more than 3 m is another obstacle, standing until it has been seen for 0.2 s."""
    core = _core(predecessor=False)
    speeds = []
    for k in range(8):                                   # own 25 m/s, a car 30 m ahead at 20 m/s
        t = k * S // 10
        own_x = 25.0 * k / 10
        core.on_odometry(t, own_x, 0.0, 0.0, 25.0)
        car = own_x + FRONT + 30.0 - 5.0 * k / 10
        core.on_evidence(t, replace(SPEC, origin_x=SPEC.origin_x + own_x),       # the grid moves with the car
                         _grid((car - own_x, car - own_x + 4.5, -0.9, 0.9)))
        speeds.append(core.ego_obstacle.speed_mps)
    assert speeds[:2] == [0.0, 0.0]                      # not yet 0.2 s of track: standing
    assert speeds[-1] == pytest.approx(20.0, abs=0.5)
    cmd, _ = core.step(7 * S // 10)
    assert cmd.accel_mps2 > -3.5                          # 30 m behind a car 5 m/s slower: no hard braking
    core.on_odometry(8 * S // 10, 20.0, 0.0, 0.0, 25.0)   # another obstacle, 10 m nearer: a new track
    core.on_evidence(8 * S // 10, replace(SPEC, origin_x=SPEC.origin_x + 20.0),
                     _grid((FRONT + 16.0, FRONT + 20.5, -0.9, 0.9)))
    assert core.ego_obstacle.speed_mps == 0.0
