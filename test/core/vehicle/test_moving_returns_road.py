"""moving_returns with the road's heading: a return's radial velocity taken as motion along the road."""
from __future__ import annotations

import math

import numpy as np

from cooperative_fusion.core.vehicle.sensor_models import MOVING_ALONG_ROAD_MAX_DEG, hits_to_stamp, moving_returns


def test_a_car_off_the_bow_moves_along_the_road_not_along_the_line_of_sight():
    # A car 10 m ahead and 7 m left (35 deg off the bow) drives along the road (map x) at 28 m/s: v_r = 28 cos(35).
    a = math.atan2(7.0, 10.0)
    xy = np.array([[10.0, 7.0]])
    radial = np.array([28.0 * math.cos(a)])
    along = moving_returns(xy, np.zeros(2), radial, 0, road_heading_rad=0.0)
    np.testing.assert_allclose(along.velocity, [[28.0, 0.0]])
    los = moving_returns(xy, np.zeros(2), radial, 0)
    np.testing.assert_allclose(los.velocity, [[28.0 * math.cos(a) ** 2, 28.0 * math.cos(a) * math.sin(a)]])
    # A lidar hit on it seen 50 ms after the radar, moved to the radar's time: back along the road only.
    out = hits_to_stamp(np.array([[11.4, 7.0]]), 50_000_000, along, 0)
    np.testing.assert_allclose(out, [[10.0, 7.0]])
    out_los = hits_to_stamp(np.array([[11.4, 7.0]]), 50_000_000, los, 0)
    assert abs(out_los[0, 1] - 7.0) > 0.5                               # 0.65 m sideways, off the car's side


def test_road_heading_turns_the_velocity_and_a_return_abeam_keeps_its_line_of_sight():
    heading = math.radians(30.0)
    road = np.array([math.cos(heading), math.sin(heading)])
    behind = -20.0 * road                                              # closing from behind at 5 m/s
    abeam = 4.0 * np.array([-road[1], road[0]])                         # 90 deg off: v_r says nothing along the road
    movers = moving_returns(np.stack([behind, abeam]), np.zeros(2), np.array([-5.0, 2.0]), 0,
                            road_heading_rad=heading)
    np.testing.assert_allclose(movers.velocity[0], 5.0 * road)
    np.testing.assert_allclose(movers.velocity[1], 2.0 * abeam / 4.0)
    assert 60.0 < MOVING_ALONG_ROAD_MAX_DEG < 90.0
