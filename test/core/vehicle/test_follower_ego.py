"""FollowerCore in ego mode: its own evidence grid gives obstacles only short of the predecessor.

The start-up scene of every closed-loop ego run (issue 16): v4 at 25 m/s, 15 m behind v3, 34.8 m behind
the truck v2, all at 25 m/s. Its evidence grid holds v3's radar blur, occupied up to 2.1 m in front of
v3's rear bumper, and v2 past v3. Before the fix the corridor skipped only v3's body +- 2 m, so the blur
(13 m, standing) and v2 (34.8 m, taken as standing) braked v4 at 8 m/s^2 with nothing in its way.
"""
from __future__ import annotations

import math

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
