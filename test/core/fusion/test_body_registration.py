"""Body registration: members localised by where the others' evidence sees their bodies."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.body_registration import (GAUGE_WEIGHT, PairMeasurement, face_points, fit_body,
                                                              solve_bodies, to_map, visible_sides)
from cooperative_fusion.core.fusion.common_grid import Footprint
from cooperative_fusion.core.fusion.config import config_from_params
from cooperative_fusion.core.fusion.cooperative import CooperativeFusion
from cooperative_fusion.core.fusion.coregistration import CoregConfig
from cooperative_fusion.core.grid import GridSpec, percent_to_logodds
from cooperative_fusion.nodes.fusion_params import PARAMS

CAR = Footprint(4.5, 1.8, 1.0)           # x -1.0 .. 3.5, y -0.9 .. 0.9 in its body frame


def rear_face(x: float, y0: float, y1: float, frames: int = 10, rng: np.random.Generator | None = None
              ) -> np.ndarray:
    """Cell centres (0.2 m lattice) of a rear face at x from y0 to y1, repeated over ``frames`` sweeps with
    0.03 m range noise."""
    rng = rng or np.random.default_rng(0)
    ys = np.arange(y0 + 0.1, y1, 0.2)
    pts = np.concatenate([np.column_stack([np.full(len(ys), x), ys]) for _ in range(frames)])
    return pts + np.column_stack([rng.normal(0.0, 0.03, len(pts)), np.zeros(len(pts))])


def test_a_rear_face_gives_the_offset_along_the_body_only():
    # The true rear face is 0.3 m behind where the odometry puts it (x -1.3 instead of -1.0), and 0.2 m to
    # the left: the along offset is measured, the across one is not observable from a rear face.
    fit = fit_body(rear_face(-1.3, -0.7, 1.1), CAR)
    assert fit.accepted and fit.observable == 'along'
    assert fit.offset[0] == pytest.approx(-0.3, abs=0.02)
    assert fit.offset[1] == 0.0
    assert fit.information[1, 1] == 0.0 and fit.information[0, 0] > 1.0 / 0.05 ** 2
    assert fit.std_m < 0.01


def test_a_rear_face_and_a_side_give_both_offsets():
    rng = np.random.default_rng(1)
    side = np.column_stack([np.arange(-1.2, 3.2, 0.2), np.full(22, 1.1)]) + rng.normal(0.0, 0.03, (22, 2))
    cells = np.concatenate([rear_face(-1.3, -0.7, 1.1, rng=rng), np.tile(side, (5, 1))])
    fit = fit_body(cells, CAR)
    assert fit.accepted and fit.observable == 'both'
    assert_allclose(fit.offset, (-0.3, 0.2), atol=0.03)


@pytest.mark.parametrize('cells, reason', [
    (rear_face(-1.3, -0.7, 1.1, frames=1)[:5], 'too few face cells'),
    (np.random.default_rng(2).uniform((-1.8, -1.7), (4.3, 1.7), (200, 2)), 'rmse'),
])
def test_poor_faces_are_rejected_with_the_reason(cells, reason):
    fit = fit_body(cells, CAR)
    assert not fit.accepted and reason in fit.reason


def test_body_config_is_validated():
    with pytest.raises(ConfigError, match='body_min_constraint'):
        CoregConfig(body_min_constraint=0.0)
    with pytest.raises(ConfigError, match='body_margin_m'):
        CoregConfig(body_margin_m=-1.0)


def test_face_points_are_the_cells_near_the_box_in_its_body_frame_at_the_stamp():
    # A member at (10, 0) heading +y (yaw 90 deg); cells on its rear face (y = 9), one far away.
    pts = np.array([[10.0, 9.0], [10.4, 9.0], [30.0, 30.0]])
    out = face_points(pts, (10.0, 0.0 + 10.0, math.pi / 2), CAR, 0.5)
    assert_allclose(out, [[-1.0, 0.0], [-1.0, -0.4]], atol=1e-12)
    # Seen by an observer heading +x at (0, 0), at azimuth 42 deg of a 0.1 s sweep: seen 0.0117 s after the
    # stamp; the member moves at 20 m/s along +y, so the cell goes back 0.233 m along y.
    obs = face_points(pts[:1], (10.0, 10.0, math.pi / 2), CAR, 0.5, np.array([0.0, 20.0]), (0.0, 0.0, 0.0), 0.1)
    phase = math.atan2(9.0, 10.0) / (2 * math.pi) * 0.1
    assert_allclose(obs, [[-1.0 - 20.0 * phase, 0.0]], atol=1e-12)
    # Straight behind the observer (where the sweep starts and ends) nothing is used.
    assert len(face_points(pts[:1], (10.0, 10.0, math.pi / 2), CAR, 0.5, np.zeros(2), (20.0, 9.0, 0.0), 0.1)) == 0


def test_solve_bodies_fixes_relative_corrections_and_keeps_the_mean():
    # v2 is seen 0.3 m behind its odometry by v3, v1 0.1 m ahead by v2 (both along x, only x measured).
    w = np.diag([1e4, 0.0])
    pairs = [PairMeasurement('v2', 'v3', np.array([-0.3, 0.0]), w),
             PairMeasurement('v1', 'v2', np.array([0.1, 0.0]), w)]
    cov = {v: 0.01 * np.eye(2) for v in ('v1', 'v2', 'v3')}
    sol = solve_bodies(pairs, {}, cov)
    assert sol['v2'][0] - sol['v3'][0] == pytest.approx(-0.3, abs=1e-3)
    assert sol['v1'][0] - sol['v2'][0] == pytest.approx(0.1, abs=1e-3)
    assert sum(s[0] for s in sol.values()) == pytest.approx(0.0, abs=1e-6)       # equal covariances: mean 0
    assert all(s[1] == 0.0 for s in sol.values())                                 # y: nothing measured
    # A direction nothing measures keeps the current correction; a precise static fit sets the gauge.
    sol = solve_bodies(pairs, {'v2': np.array([0.0, 0.4])}, cov, {'v3': (np.array([0.05, 0.0]), 0.02)})
    assert sol['v2'][1] == pytest.approx(0.4)
    assert sol['v3'][0] == pytest.approx(0.05, abs=0.002)
    assert sol['v2'][0] == pytest.approx(-0.25, abs=0.002)
    assert GAUGE_WEIGHT < 0.01


def test_to_map_turns_the_offset_and_information_with_the_member():
    fit = fit_body(rear_face(-1.3, -0.7, 1.1), CAR)
    m = to_map(fit, math.pi / 2, 'v2', 'v3')
    assert_allclose(m.offset, (0.0, fit.offset[0]), atol=1e-12)
    assert m.information[0, 0] == pytest.approx(0.0, abs=1e-9) and m.information[1, 1] > 0


# ---------------------------------------------------------------------------------- in the fusion core --

RES = 0.2
S = 1_000_000_000
MS = 1_000_000
T0 = 50 * S
EV = GridSpec(-10.0, -8.0, RES, 400, 80)          # x -10..70 m, y -8..8 m
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
# Cars only: v1 ahead at x 40, v2 at x 25, v3 at x 10 (base_link), all truly at y 0, driving +x at 5 m/s.
TRUE_X = {'v1': 40.0, 'v2': 25.0, 'v3': 10.0}
SPEED = 5.0


def _fusion(**overrides) -> CooperativeFusion:
    values = {p.name: p.default for p in PARAMS}
    values.update({'vehicles': ['v1', 'v2', 'v3'], 'vehicle_weights': [1.0, 1.0, 1.0], 'grid.mode': 'fixed',
                   'grid.size_x_m': 80.0, 'grid.size_y_m': 16.0, 'grid.fixed_origin_x_m': -10.0,
                   'grid.fixed_origin_y_m': -8.0, 'footprints.vehicles': ['v1', 'v2', 'v3'],
                   'footprints.length_m': [4.5] * 3, 'footprints.width_m': [1.8] * 3,
                   'footprints.rear_overhang_m': [1.0] * 3, 'footprints.lidar_x_m': [1.2] * 3,
                   'footprints.lidar_y_m': [0.0] * 3, 'dynamic.enabled': False,
                   'consistency.enabled': False, **overrides})
    return CooperativeFusion(config_from_params(values))


def _drive(f: CooperativeFusion, bias_x: dict[str, float], seconds: float = 3.0) -> None:
    """10 Hz evidence of every member seeing its predecessor's rear face where it truly is (at 0.2 m cells),
    and odometry off by ``bias_x`` along the road; a co-registration round every second."""
    for k in range(int(seconds * 10)):
        t = T0 + k * 100 * MS
        dx = SPEED * k * 0.1
        for vid, x in TRUE_X.items():
            f.add_odometry(vid, np.array([x + dx + bias_x.get(vid, 0.0), 0.0, 0.0]), IDENTITY, SPEED,
                           0.01 * np.eye(2), t, t)
        for vid, ahead in (('v2', 'v1'), ('v3', 'v2')):
            cells = np.full(EV.shape, 20, dtype=np.int8)
            # The predecessor's rear face (base_link - 1.0 m), moved with the platoon, in the observer's
            # evidence placed through the observer's (biased) odometry.
            rear = TRUE_X[ahead] + dx - 1.0 + bias_x.get(vid, 0.0)
            ix = int(math.floor((rear - EV.origin_x) / RES))
            cells[int(round((-0.9 - EV.origin_y) / RES)):int(round((0.9 - EV.origin_y) / RES)), ix] = 90
            lo, kn = percent_to_logodds(cells)
            f.add(vid, EV, lo, kn, t, t)
        if k % 10 == 9:
            f.coregister(t)


def test_a_member_biased_along_the_road_is_drawn_where_its_follower_sees_it():
    # v2's odometry is 0.4 m ahead of the truth; v1 and v3 are honest. v3 sees v2's rear face 0.4 m behind
    # its odometry box, v2 sees v1's rear face 0.4 m ahead of where v1 is (v2's evidence carries its bias).
    f = _fusion()
    _drive(f, {'v2': 0.4}, seconds=4.0)
    c = {v: f.vehicles[v].correction for v in TRUE_X}
    # Relative: v2 - v1 and v2 - v3 corrected by about -0.4 m; the gauge (equal covariances) keeps the mean.
    assert c['v2'].dx - c['v3'].dx == pytest.approx(-0.4, abs=0.12)
    assert c['v2'].dx - c['v1'].dx == pytest.approx(-0.4, abs=0.12)
    assert sum(x.dx for x in c.values()) == pytest.approx(0.0, abs=0.02)
    assert all(abs(x.dy) < 0.01 for x in c.values())                  # across: not observable, not moved
    report = f.vehicle_report('v2', T0).values
    assert report['coreg.body.accepted'] == 1 and report['coreg.body.updates'] >= 2
    assert 'v3: ok (along' in report['coreg.body.reason']
    # Drawn: v2's body is now nearer where it truly is than where its odometry puts it (0.4 m ahead).
    x2 = f.member_poses(T0 + 39 * 100 * MS)[1][0]
    truth = TRUE_X['v2'] + SPEED * 3.9
    assert abs(x2 - truth) < 0.25


def test_the_body_correction_moves_the_members_evidence_too():
    # The correction is the member's pose correction: what v2 senses moves with it, as its body does.
    f = _fusion()
    _drive(f, {'v2': 0.4}, seconds=4.0)
    dx = f.vehicles['v2'].correction.dx
    assert dx < -0.2
    cells = np.full(EV.shape, 20, dtype=np.int8)
    rows = slice(int(round((3.0 - EV.origin_y) / RES)), int(round((5.0 - EV.origin_y) / RES)))
    cells[rows, int(round((0.0 - EV.origin_x) / RES)):int(round((1.0 - EV.origin_x) / RES))] = 90    # a post
    lo, kn = percent_to_logodds(cells)
    for k in range(40, 46):              # the road there was seen free for 4 s: a few scans to outweigh it
        t = T0 + k * 100 * MS
        assert f.add('v2', EV, lo, kn, t, t).accepted
    grid = f.grid.posterior_percent()
    iy, ix = np.nonzero(grid >= 65)
    xs = f.grid.spec.origin_x + (ix + 0.5) * RES
    ys = f.grid.spec.origin_y + (iy + 0.5) * RES
    assert np.mean(xs[(ys > 2.5) & (xs < 5.0)]) == pytest.approx(0.5 + dx, abs=0.1)


def test_without_bias_nothing_moves():
    f = _fusion()
    _drive(f, {}, seconds=3.0)
    for v in TRUE_X:
        c = f.vehicles[v].correction
        assert abs(c.dx) < 0.1 and abs(c.dy) < 1e-9


def test_body_registration_off_leaves_the_corrections_alone():
    f = _fusion(**{'coregistration.body_enabled': False})
    _drive(f, {'v2': 0.4}, seconds=3.0)
    assert all(f.vehicles[v].correction.is_identity for v in TRUE_X)
    assert 'coreg.body.reason' not in f.vehicle_report('v2', T0).values


def test_roof_cells_and_corner_cells_are_not_faces():
    # A higher lidar sees the car's roof (cells deep inside the box) and the face's end cells sit at the
    # corners: neither moves the fit of the rear face, and the corners give no across information.
    rng = np.random.default_rng(3)
    roof = rng.uniform((0.0, -0.0), (2.5, 0.05), (150, 2))               # > 0.8 m inside the box
    cells = np.concatenate([rear_face(-1.3, -0.9, 0.9, rng=rng), roof])
    behind = visible_sides((0.0, 0.0, 0.0), CAR, np.array([-12.0, 0.3]))
    assert behind.tolist() == [True, False, False, False]
    fit = fit_body(cells, CAR, visible=behind)
    assert fit.accepted and fit.observable == 'along'
    assert fit.offset[0] == pytest.approx(-0.3, abs=0.02)
    assert fit.points == 5 * 10          # |y| <= 0.5 m: the face's cells within 0.4 m of a side are corners
    # Bonnet cells near the front line, seen from behind over the roof: with the sides facing the observer
    # they are not a face; taken for the front face they pull the fit towards no offset.
    bonnet = np.column_stack([rng.uniform(3.2, 3.4, 60), rng.uniform(-0.4, 0.4, 60)])
    with_bonnet = np.concatenate([cells, bonnet])
    assert fit_body(with_bonnet, CAR, visible=behind).offset[0] == pytest.approx(-0.3, abs=0.02)
    assert fit_body(with_bonnet, CAR).offset[0] > -0.27


def test_only_the_nearest_members_behind_and_ahead_observe_a_body():
    poses = {'v1': (40.0, 0.0, 0.0), 'v2': (25.0, 0.0, 0.0), 'v3': (10.0, 0.3, 0.0), 'v4': (-5.0, 0.9, 0.0),
             'v5': None}
    assert CooperativeFusion._neighbours('v2', poses) == {'v1', 'v3'}
    assert CooperativeFusion._neighbours('v1', poses) == {'v2'}
    assert CooperativeFusion._neighbours('v4', poses) == {'v3'}
    assert CooperativeFusion._neighbours('v5', poses) == set()


def test_a_member_box_out_of_the_evidence_bounds_is_skipped_only_when_no_cell_can_be_on_it() -> None:
    """may_hold_faces: False only when face_points would find no cell (the cheap skip for far members)."""
    from cooperative_fusion.core.fusion.body_registration import face_points, may_hold_faces
    from cooperative_fusion.core.fusion.common_grid import Footprint

    fp = Footprint(4.5, 1.8, 1.0)
    rng = np.random.default_rng(3)
    for _ in range(300):
        pts = rng.uniform(-30.0, 30.0, size=(int(rng.integers(1, 40)), 2))
        pose = (float(rng.uniform(-40, 40)), float(rng.uniform(-40, 40)), float(rng.uniform(-np.pi, np.pi)))
        if not may_hold_faces(pose, fp, 0.8, pts.min(axis=0), pts.max(axis=0)):
            assert len(face_points(pts, pose, fp, 0.8)) == 0
    assert not may_hold_faces((100.0, 0.0, 0.0), fp, 0.8, np.array([-10.0, -5.0]), np.array([10.0, 5.0]))
    assert may_hold_faces((11.0, 0.0, 0.0), fp, 0.8, np.array([-10.0, -5.0]), np.array([10.0, 5.0]))
