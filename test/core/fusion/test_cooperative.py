"""CooperativeFusion, the fusion node's work without ROS: hand-built evidence grids in, the common grid out."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cooperative_fusion.core.fusion.common_grid import DropCause
from cooperative_fusion.core.fusion.config import config_from_params
from cooperative_fusion.core.fusion.cooperative import (VEHICLE_CAUSES, CooperativeFusion, Health, InputDrop,
                                                        platoon_center, quat_wxyz_yaw)
from cooperative_fusion.core.fusion.correction import Correction
from cooperative_fusion.core.grid import GridSpec, percent_to_logodds
from cooperative_fusion.nodes.fusion_params import PARAMS

RES = 0.2
FREE, OCC = 20, 90
S = 1_000_000_000
MS = 1_000_000
T0 = 50 * S
EV = GridSpec(0.0, -8.0, RES, 250, 80)           # x 0..50 m, y -8..8 m
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def fusion(**overrides) -> CooperativeFusion:
    """A fusion of v1..v3 on a fixed 50 x 16 m window at x 0..50 m, y -8..8 m."""
    values = {p.name: p.default for p in PARAMS}
    values.update({'vehicles': ['v1', 'v2', 'v3'], 'vehicle_weights': [1.0, 1.0, 1.0], 'grid.mode': 'fixed',
                   'grid.size_x_m': 50.0, 'grid.size_y_m': 16.0, 'grid.fixed_origin_y_m': -8.0, **overrides})
    return CooperativeFusion(config_from_params(values))


def cells_of(spec: GridSpec, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
    """Array slices [iy, ix] of the cells of ``spec`` inside [x0, x1) x [y0, y1) (on the lattice)."""
    ix0, iy0 = int(round((x0 - spec.origin_x) / RES)), int(round((y0 - spec.origin_y) / RES))
    ix1, iy1 = int(round((x1 - spec.origin_x) / RES)), int(round((y1 - spec.origin_y) / RES))
    return slice(iy0, iy1), slice(ix0, ix1)


def evidence(*boxes: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds and known mask of EV: free road, the boxes occupied."""
    cells = np.full(EV.shape, FREE, dtype=np.int8)
    for box in boxes:
        cells[cells_of(EV, *box)] = OCC
    return percent_to_logodds(cells)


def odometry(f: CooperativeFusion, vid: str, x: float, y: float, speed: float = 0.0, now: int = T0) -> None:
    f.add_odometry(vid, np.array([x, y, 0.0]), IDENTITY, speed, np.zeros((2, 2)), now, now)


BOX = (30.0, 32.0, 2.0, 4.0)


def test_evidence_is_accepted_or_dropped_with_its_cause():
    f = fusion()
    lo, kn = evidence(BOX)
    first = f.add('v1', EV, lo, kn, T0 - 20 * MS, T0)
    assert first.accepted and first.cause is None and first.publish          # nothing published yet
    assert f.add('v1', EV, lo, kn, T0 - 20 * MS, T0).cause == InputDrop.DUPLICATE.value
    old = f.add('v2', EV, lo, kn, T0 - 900 * MS, T0)
    assert (old.accepted, old.cause) == (False, DropCause.TOO_OLD.value)
    assert f.add('v2', EV, lo, kn, T0 + 200 * MS, T0).cause == DropCause.FUTURE.value
    unknown = f.add('v9', EV, lo, kn, T0, T0)
    assert unknown.cause == DropCause.UNKNOWN_VEHICLE.value and 'v9' in unknown.detail
    assert {InputDrop.DUPLICATE.value, DropCause.TOO_OLD.value} <= set(VEHICLE_CAUSES)
    assert DropCause.UNKNOWN_VEHICLE.value not in VEHICLE_CAUSES

    out = f.publish(T0)
    assert out.stamp_ns == T0 and out.spec == f.grid.spec
    assert np.all(out.cells[cells_of(out.spec, *BOX)] >= 65)
    assert np.all(out.cells[cells_of(out.spec, 10.0, 20.0, -6.0, 0.0)] < 50)
    np.testing.assert_allclose(out.latencies_ms, [20.0])
    # publish_on_evidence: not again within publish_min_interval_s (20 ms) of that grid.
    assert not f.add('v2', EV, lo, kn, T0, T0 + 10 * MS).publish
    assert f.add('v3', EV, lo, kn, T0, T0 + 20 * MS).publish

    report = f.vehicle_report('v1', T0)
    assert (report.health, report.state, report.values['accepted']) == (Health.OK, 'active', 1)
    v2 = f.vehicle_report('v2', T0 + 10 * MS)                         # dropped twice, then fused once
    assert (v2.health, v2.state, v2.values['accepted']) == (Health.OK, 'active', 1)
    assert f.vehicle_report('v3', T0).values['link.evidence_max_age_s'] == pytest.approx(0.5)


def test_a_vehicle_never_heard_is_stale_and_a_silent_one_dropped():
    f = fusion()
    lo, kn = evidence(BOX)
    f.add('v1', EV, lo, kn, T0, T0)
    assert f.vehicle_report('v2', T0).health is Health.STALE
    late = f.vehicle_report('v1', T0 + 3 * S)                      # fusion.vehicle_timeout_s 2
    assert (late.health, late.state) == (Health.WARN, 'dropped') and 'silent for 3.0 s' in late.message


def test_hits_on_a_member_are_dropped_and_its_body_drawn_at_publish_time():
    f = fusion()
    odometry(f, 'v2', 15.0, 0.0)            # the truck: x 12.5..24.5, y -1.25..1.25 (config footprints)
    body = (13.0, 24.0, -1.0, 1.0)
    lo, kn = evidence(BOX, body)
    assert f.add('v1', EV, lo, kn, T0, T0).accepted
    static = f.grid.posterior_percent()
    assert np.all(static[cells_of(f.grid.spec, *body)] == -1)        # the member's faces are not fused
    assert np.all(static[cells_of(f.grid.spec, *BOX)] >= 65)
    out = f.publish(T0 + 100 * MS)
    assert np.all(out.cells[cells_of(out.spec, *body)] == 97)          # drawn at the upper clamp (3.5)
    assert f.member_poses(T0)[0][:3] == (15.0, 0.0, 0.0)


def test_a_moving_car_is_kept_out_of_the_grid_and_drawn_where_it_is_at_publish_time():
    f = fusion(**{'coregistration.enabled': False})
    odometry(f, 'v1', 0.0, 0.0, speed=20.0)
    car = (20.0, 24.4, -0.8, 0.8)
    # The radar sits at the front of v1 (3.5 m); its target on the car moves away at 10 m/s.
    f.add_radar('v1', T0, np.array([[20.2, 0.0, 10.0]]))
    lo, kn = evidence(car)
    assert f.add('v1', EV, lo, kn, T0, T0).accepted
    assert f.grid_values(T0)['dynamic.moving_total'] == 1
    assert np.all(f.grid.posterior_percent()[cells_of(f.grid.spec, *car)] == -1)   # not fused as static
    out = f.publish(T0 + 200 * MS)                                     # 2 m further along
    # Without its rear cell: a face two or more cells deep loses the one facing the sensor (thin_faces).
    assert np.all(out.cells[cells_of(out.spec, 22.2, 26.4, -0.8, 0.8)] >= 65)
    assert np.all(out.cells[cells_of(out.spec, 20.0, 22.0, -0.8, 0.8)] < 50)


def test_the_correction_of_a_vehicle_moves_its_evidence():
    f = fusion(**{'coregistration.enabled': False, 'dynamic.enabled': False})
    odometry(f, 'v1', 0.0, 0.0)
    f.vehicles['v1'].correction = Correction(1.0, 0.0, 0.0)
    lo, kn = evidence(BOX)
    assert f.add('v1', EV, lo, kn, T0, T0).accepted
    grid = f.grid.posterior_percent()
    assert np.all(grid[cells_of(f.grid.spec, 31.0, 33.0, 2.0, 4.0)] >= 65)
    assert np.all(grid[cells_of(f.grid.spec, 30.0, 30.8, 2.0, 4.0)] < 50)
    assert f.vehicle_report('v1', T0).values['coreg.dx'] == 1.0


def test_coregistration_estimates_the_correction_of_a_biased_vehicle():
    """v1's evidence is 0.6 m off along y; v2 and v3 agree with each other: the median of the platoon
    defines map, so v1 is corrected by about -0.6 m and the others stay put."""
    f = fusion(**{'coregistration.static_min_age_s': 0.0, 'dynamic.enabled': False, 'footprints.enabled': False})
    rails = [(2.0, 48.0, 6.0, 6.2), (2.0, 48.0, -6.2, -6.0), (10.0, 10.4, -5.0, 5.0), (25.0, 25.4, 2.0, 5.0),
             (40.0, 40.4, -5.0, -2.0)]
    for vid, dy in (('v1', 0.6), ('v2', 0.0), ('v3', 0.0)):
        odometry(f, vid, 10.0 * int(vid[1]), 0.0)
        lo, kn = evidence(*((x0, x1, y0 + dy, y1 + dy) for x0, x1, y0, y1 in rails))
        assert f.add(vid, EV, lo, kn, T0, T0).accepted
    assert not fusion().coregister(T0)                 # nothing to register
    for k in range(8):
        assert f.coregister(T0 + k * 100 * MS)
    c1 = f.vehicles['v1'].correction
    assert (c1.dx, c1.dy) == pytest.approx((0.0, -0.6), abs=0.1) and abs(c1.dyaw) < math.radians(0.2)
    for vid in ('v2', 'v3'):
        c = f.vehicles[vid].correction
        assert math.hypot(c.dx, c.dy) < 0.1
    assert f.vehicle_report('v1', T0).values['coreg.updates'] == 8


def test_odometry_with_an_unusable_covariance_keeps_the_last_good_one():
    f = fusion()
    f.add_odometry('v1', np.array([3.0, 4.0, 0.0]), IDENTITY, 5.0, np.eye(2) * 0.04, T0, T0)
    f.add_odometry('v1', np.array([5.0, 4.0, 0.0]), IDENTITY, math.nan, None, T0 + S, T0 + S)
    st = f.vehicles['v1']
    np.testing.assert_allclose(st.position, [5.0, 4.0])
    np.testing.assert_allclose(st.cov_xy, np.eye(2) * 0.04)
    assert st.speed == 0.0 and st.pose_ns == T0 + S


def test_time_references_map_clocks_to_common_time():
    f = fusion(time_reference_topic='/v1/time_reference')
    assert f.common_time(T0) == T0                                   # before any pair: the node clock
    for k in range(3):
        f.add_time_reference(T0 + k * S, T0 + k * S + 3 * S)
    assert f.common_time(T0 + 5 * S) == T0 + 8 * S
    for k in range(3):                                               # v1's clock runs 0.3 s behind
        f.add_time_reference(T0 + k * S - 300 * MS, T0 + k * S, vehicle_id='v1')
    f.add_odometry('v1', np.array([0.0, 0.0, 0.0]), IDENTITY, 25.0, None, T0 + 2 * S - 300 * MS, T0 + 2 * S + 150 * MS)
    assert f.vehicles['v1'].pose_ns == T0 + 2 * S                     # when it was true, not when it came
    assert fusion().common_time(T0) == T0


def test_platoon_center_moves_ahead_along_the_mean_heading():
    center = platoon_center([np.array([0.0, 0.0]), np.array([10.0, 2.0])], [0.0, math.pi / 2], 10.0)
    np.testing.assert_allclose(center, [5.0 + 10 / math.sqrt(2), 1.0 + 10 / math.sqrt(2)])
    np.testing.assert_allclose(platoon_center([np.array([1.0, 2.0])], [0.0, math.pi], 10.0), [1.0, 2.0])
    assert quat_wxyz_yaw(np.array([math.cos(0.3), 0.0, 0.0, math.sin(0.3)])) == pytest.approx(0.6)


def test_follow_platoon_window_starts_on_the_first_evidence_then_follows_the_platoon():
    f = fusion(**{'grid.mode': 'follow_platoon', 'grid.forward_offset_m': 10.0})
    lo, kn = evidence(BOX)
    f.add('v1', EV, lo, kn, T0, T0)
    assert f.grid.spec == GridSpec.centered(25.0, 0.0, 50.0, 16.0, RES)      # EV's centre
    odometry(f, 'v1', 0.0, 0.0)
    odometry(f, 'v2', 10.0, 0.0)
    assert f.publish(T0).spec == GridSpec.centered(15.0, 0.0, 50.0, 16.0, RES)


def test_a_tracked_car_beside_a_trucks_cab_is_placed_and_thinned_as_its_lidar_saw_it():
    """v2 (12 m truck) has its lidar 9.6 m ahead of base_link (footprints.lidar_x_m). A car beside its cab
    (both at 25 m/s) is seen a quarter sweep after each stamp (azimuth 90 deg from the lidar, 16 deg from
    base_link), 0.6 m ahead of where it is, as a side face two cells deep. Looking from the lidar, the cells go back to
    the stamp and the face loses its layer nearest the lidar (the outer one of the car's near side)."""
    f = fusion(**{'coregistration.enabled': False})
    lidar_x = 9.6
    assert f.config.footprints['v2'].lidar_x_m == lidar_x
    for k in range(5):
        stamp = T0 + k * 100 * MS
        base_x = 5.0 + 2.5 * k
        rear_x = base_x + lidar_x - 2.0
        odometry(f, 'v2', base_x, 0.0, speed=25.0, now=stamp)
        centre = np.array([rear_x + 2.0, 2.8])
        seen_late = math.atan2(centre[1], centre[0] - (base_x + lidar_x)) / (2.0 * math.pi) * 0.1
        shift = 25.0 * seen_late
        lo, kn = evidence((rear_x + shift, rear_x + 4.0 + shift, 2.6, 3.0))
        assert f.add('v2', EV, lo, kn, stamp, stamp).accepted
    obj = [o for o in f.dynamic.objects() if o.stamp_ns == T0 + 400 * MS]
    assert len(obj) == 1 and obj[0].source == 'track'
    cells = obj[0].cells_xy
    rear_x = 5.0 + 2.5 * 4 + lidar_x - 2.0
    assert abs(float(cells[:, 0].min()) - 0.5 * RES - rear_x) < 0.25          # at the stamp, not 0.6 m ahead
    np.testing.assert_allclose(cells[:, 1], 2.9)                               # the row nearest the lidar thinned
    assert cells.shape[0] == 20                                                 # the whole 4 m of the other row
