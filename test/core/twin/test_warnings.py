"""Conflicts as warning values, advisories as base_link poses (no ROS)."""
from __future__ import annotations

import math

import numpy as np
from numpy.testing import assert_allclose

from cooperative_fusion.core.twin.conflicts import Advisory, Conflict, ConflictLevel
from cooperative_fusion.core.twin.warnings import advisory_of_base_link, warning_of


def conflict(**kw) -> Conflict:
    base = dict(vehicle_id='v2', level=ConflictLevel.ERROR, ttc_s=2.5, distance_m=31.25, x=120.0, y=0.25,
                obstacle_track_id=7, predecessor_id=None, required_decel_mps2=4.5, other_speed_mps=0.0,
                other_accel_mps2=0.0, min_gap_m=-1.0, obstacle_x=124.5, obstacle_y=0.3)
    return Conflict(**{**base, **kw})


def advisory(yaw: float = 0.0) -> Advisory:
    n = 3
    return Advisory('v2', np.arange(n, dtype=np.int64) * 100_000_000, np.array([10.0, 12.0, 13.5]), np.zeros(n),
                    np.full(n, yaw), np.array([20.0, 15.0, 10.0]), 5.0, 4.5, 0.0, True, False)


def test_an_obstacle_conflict_with_advice_carries_every_value_in_order():
    w = warning_of(conflict(), advisory())
    assert w.vehicle_id == 'v2' and w.level == ConflictLevel.ERROR
    assert w.message == 'track_7 ahead: gap 31.2 m, ttc 2.5 s'
    assert w.values == {'ttc_s': 2.5, 'distance_m': 31.25, 'x': 120.0, 'y': 0.25, 'object': 'track_7',
                        'obstacle_x': 124.5, 'obstacle_y': 0.3, 'track_id': 7,
                        'required_decel_mps2': 4.5, 'other_speed_mps': 0.0, 'other_accel_mps2': 0.0,
                        'min_gap_m': -1.0, 'propagated': False, 'advised_decel_mps2': 5.0,
                        'target_speed_mps': 0.0, 'exceeds_comfort': True, 'unavoidable': False}
    assert list(w.values)[:8] == ['ttc_s', 'distance_m', 'x', 'y', 'object', 'obstacle_x', 'obstacle_y', 'track_id']


def test_a_propagated_predecessor_conflict_without_advice_not_closing():
    w = warning_of(conflict(level=ConflictLevel.WARN, ttc_s=math.inf, obstacle_track_id=None, predecessor_id='v1',
                            propagated=True), None)
    assert w.level == ConflictLevel.WARN
    assert w.message == 'v1 ahead: gap 31.2 m, ttc not closing'
    assert w.values['predecessor'] == 'v1' and 'track_id' not in w.values and w.values['propagated'] is True
    assert w.values['object'] == 'v1'
    assert 'advised_decel_mps2' not in w.values and len(w.values) == 13


def test_advisory_of_base_link_moves_each_pose_back_along_its_yaw():
    adv = advisory()
    got = advisory_of_base_link(adv, 3.5)
    assert_allclose(got.x, adv.x - 3.5) and got.vehicle_id == 'v2'
    assert_allclose(got.y, 0.0)
    assert_allclose(got.speed, adv.speed)
    turned = advisory_of_base_link(advisory(yaw=math.pi / 2), 1.25)
    assert_allclose(turned.x, adv.x, atol=1e-12)
    assert_allclose(turned.y, -1.25)
