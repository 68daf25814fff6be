from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.fusion.coregistration import (CoregConfig, CoregResult, apply_correction,
                                                    estimate_offset, estimate_std_m, occupied_points,
                                                    persistent_points, register_platoon, scene_span_m)
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec, prob_to_logodds


def box_outline(cx: float, cy: float, length: float, width: float, yaw: float, step: float = 0.1) -> np.ndarray:
    hl, hw = length / 2, width / 2
    corners = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw], [-hl, -hw]])
    pts = []
    for a, b in zip(corners[:-1], corners[1:]):
        n = max(int(np.hypot(*(b - a)) / step), 1)
        pts.append(a + (b - a) * np.arange(n)[:, None] / n)
    p = np.concatenate(pts)
    c, s = math.cos(yaw), math.sin(yaw)
    return p @ np.array([[c, -s], [s, c]]).T + (cx, cy)


def scene() -> list[np.ndarray]:
    """Five cars on a three-lane road near x = 520 m, and a guard-rail segment."""
    cars = [box_outline(510.0, 3.5, 4.5, 1.9, 0.05), box_outline(525.0, 0.0, 4.6, 1.8, -0.02),
            box_outline(540.0, -3.5, 12.0, 2.5, 0.0), box_outline(532.0, 3.6, 4.2, 1.8, 0.1),
            box_outline(503.0, -3.4, 4.4, 1.9, 0.0)]
    rail = np.stack([np.arange(495.0, 545.0, 0.1), np.full(500, 6.5)], axis=1)
    return cars + [rail]


def rotate_about(p: np.ndarray, c: np.ndarray, yaw: float) -> np.ndarray:
    cs, sn = math.cos(yaw), math.sin(yaw)
    return (p - c) @ np.array([[cs, -sn], [sn, cs]]).T + c


def rasterise(points: np.ndarray, res: float = 0.2) -> np.ndarray:
    """Centres of the 0.2 m lattice cells hit by the points (what occupied_points gives from a grid)."""
    cells = np.unique(np.floor(points / res).astype(np.int64), axis=0)
    return (cells + 0.5) * res


@pytest.mark.parametrize('as_cells', [False, True])
def test_recovers_shift_and_rotation(as_cells):
    rng = np.random.default_rng(0)
    parts = scene()
    reference = np.concatenate(parts)
    vehicle_xy = np.array([518.0, 0.0])
    # Partial visibility: one car unseen, 60 % of the rest's points, plus 3 cm noise.
    seen = np.concatenate([p for i, p in enumerate(parts) if i != 2])
    seen = seen[rng.random(len(seen)) < 0.6]
    seen = seen + rng.normal(0.0, 0.03, seen.shape)
    shift, yaw = np.array([0.5, 0.0]), math.radians(1.0)
    vehicle = rotate_about(seen, vehicle_xy, yaw) + shift
    if as_cells:
        reference, vehicle = rasterise(reference), rasterise(vehicle)
    r = estimate_offset(vehicle, reference, CoregConfig(), pivot_xy=vehicle_xy)
    assert r.accepted, r.reason
    assert r.reason == 'ok'
    # Truth correction: p = R(-yaw)(p_v - c - shift) + c  =>  dx, dy = -R(-yaw) shift.
    c, s = math.cos(-yaw), math.sin(-yaw)
    truth_t = -np.array([[c, -s], [s, c]]) @ shift
    assert np.hypot(r.dx - truth_t[0], r.dy - truth_t[1]) < 0.15
    assert abs(math.degrees(r.dyaw) + 1.0) < 0.3
    assert r.fitness > 0.9 and r.rmse < 0.12
    assert r.pivot == (518.0, 0.0)
    if not as_cells:
        corrected = apply_correction(vehicle, r)
        assert np.median(np.hypot(*(corrected - seen).T)) < 0.1


def test_apply_correction_turns_about_the_pivot():
    r = CoregResult(0.3, -0.2, math.radians(2.0), 1.0, 0.0, True, 'ok', (10.0, 5.0))
    assert_allclose(apply_correction(np.array([[10.0, 5.0]]), r), [[10.3, 4.8]])
    c, s = math.cos(r.dyaw), math.sin(r.dyaw)
    assert_allclose(apply_correction(np.array([[11.0, 5.0]]), r), [[10.3 + c, 4.8 + s]], atol=1e-12)


def test_single_wall_is_degenerate():
    rng = np.random.default_rng(0)
    wall = np.stack([np.arange(0.0, 40.0, 0.1), np.zeros(400)], axis=1)
    vehicle = wall[50:300] + (0.4, 0.1) + rng.normal(0.0, 0.02, (250, 2))
    r = estimate_offset(vehicle, wall, CoregConfig())
    assert not r.accepted
    assert r.reason.startswith('degenerate scene: weakest constraint')


@pytest.mark.parametrize('seed', range(8))
def test_a_noisy_fit_on_one_car_is_not_applied(seed):
    """30 noisy cells (0.25 m) of one stopped car's rear and sides, sensed over 60 m of driving, with no
    pose error at all: the fit is well posed (sides and rear) and good enough for every other gate, but
    its weakest direction (a heading change against a sideways shift) is not determined to 0.1 m, so
    the correction it finds is noise and is not applied. (highway_occlusion seed 3 applied such fits: the
    truck 0.5 m sideways.)"""
    rng = np.random.default_rng(seed)
    car = box_outline(400.0, 0.0, 4.5, 1.8, 0.0, step=0.05)
    seen = car[car[:, 0] < 400.5]
    reference = rasterise(seen)
    vehicle = seen[rng.choice(len(seen), 30, replace=False)] + rng.normal(0.0, 0.25, (30, 2))
    pivots = np.stack([np.linspace(330.0, 390.0, 30), np.zeros(30)], axis=1)
    cfg = CoregConfig(min_points=10, max_correspondence_m=2.0, max_rmse_m=0.35)
    r = estimate_offset(vehicle, reference, cfg, pivot_xy=pivots)
    assert not r.accepted
    assert r.reason.startswith('imprecise fit: standard deviation'), r.reason
    loose = estimate_offset(vehicle, reference, CoregConfig(min_points=10, max_correspondence_m=2.0,
                                                            max_rmse_m=0.35, max_std_m=100.0, min_span_m=0.0),
                            pivot_xy=pivots)
    assert loose.accepted, loose.reason
    # Precise enough, but still one car (its cells span 4 m): not applied either.
    small = estimate_offset(vehicle, reference, CoregConfig(min_points=10, max_correspondence_m=2.0,
                                                            max_rmse_m=0.35, max_std_m=100.0), pivot_xy=pivots)
    assert not small.accepted
    assert small.reason.startswith('small scene: the matched static cells span '), small.reason
    assert float(small.reason.split('span ')[1].split(' m')[0]) < 4.5


def test_scene_span_is_the_extent_along_the_principal_direction():
    assert scene_span_m(np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])) == pytest.approx(10.0)
    assert scene_span_m(np.array([[1.0, 1.0]])) == 0.0


def test_estimate_std_of_a_point_to_point_fit():
    """Point-to-point rows (x and y axes) of 4 points on a circle of radius 10 m about the pivot: JᵀJ is
    4·I in (dx, dy, r·dyaw), so the standard deviation is s / 2, s² = sum of squares / (M - 3)."""
    pts = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [0.0, -10.0]])
    lever = np.repeat(pts, 2, axis=0)
    normals = np.tile(np.eye(2), (4, 1))
    residuals = np.array([0.1, -0.1, 0.1, -0.1, 0.1, -0.1, 0.1, -0.1])
    assert_allclose(estimate_std_m(lever, normals, residuals), math.sqrt(0.08 / 5) / 2.0, rtol=1e-9)
    assert estimate_std_m(lever[:2], normals[:2], residuals[:2]) == math.inf


def test_too_few_points_and_bad_fit_are_rejected():
    parts = scene()
    reference = np.concatenate(parts)
    r = estimate_offset(reference[:10], reference, CoregConfig(min_points=30))
    assert not r.accepted and r.reason == 'too few points: vehicle 10, reference 1286, need 30'
    # A scene that does not match the reference at all: nothing within 1 m.
    far = reference + (0.0, 50.0)
    r = estimate_offset(far, reference, CoregConfig())
    assert not r.accepted and r.reason.startswith('too few correspondences within 1.0 m: 0')
    # A large offset that ICP still matches is refused by the correction bound.
    r = estimate_offset(reference + (0.0, 0.8), reference, CoregConfig(max_correction_m=0.5))
    assert not r.accepted and 'exceeds 0.5 m / 5.0 deg' in r.reason
    assert_allclose([r.dx, r.dy], [0.0, -0.8], atol=0.05)


def test_occupied_points_from_percent_and_logodds():
    spec = GridSpec(10.0, -2.0, 0.2, 4, 3)
    cells = np.full(spec.shape, -1, np.int8)
    cells[1, 2] = 65
    cells[2, 0] = 90
    cells[0, 0] = 64
    assert_allclose(occupied_points(spec, cells=cells), [[10.5, -1.7], [10.1, -1.5]])
    l = np.where(cells >= 0, prob_to_logodds(np.clip(cells, 1, 99) / 100.0), 0.0)
    known = cells >= 0
    assert_allclose(occupied_points(spec, logodds=l, known=known), [[10.5, -1.7], [10.1, -1.5]])
    with pytest.raises(ConfigError, match='exactly one of cells'):
        occupied_points(spec)
    with pytest.raises(ConfigError, match=r'grid shape \(2, 2\) does not match'):
        occupied_points(spec, cells=np.zeros((2, 2)))


@pytest.mark.parametrize('bad, match', [
    (dict(min_points=2), 'min_points must be >= 3, got 2'),
    (dict(max_rmse_m=0.0), 'max_rmse_m must be a positive finite number'),
    (dict(min_fitness=1.5), r'min_fitness must be in \[0, 1\], got 1.5'),
])
def test_config_validation(bad, match):
    with pytest.raises(ConfigError, match=match):
        CoregConfig(**bad)


def landmark_scene(t_s: float, x_min: float, x_max: float) -> tuple[np.ndarray, np.ndarray]:
    """(static, moving) outline points at time t_s of a highway seen between x_min and x_max: guard-rail
    posts (0.4 x 0.4 m) every 12 m 1 m beyond both road edges, a stopped car, and four cars driving at
    23-28 m/s along the road (one a truck)."""
    posts = [box_outline(x, y, 0.4, 0.4, 0.0, 0.05) for x in np.arange(402.2, 700.0, 12.0) for y in (-2.95, 9.95)]
    static = np.concatenate(posts + [box_outline(560.0, 0.0, 4.5, 1.8, 0.0)])
    traffic = ((470.0, 3.5, 23.0, 4.5), (440.0, 7.0, 28.0, 4.5), (520.0, 3.5, 27.0, 12.0), (515.0, 0.0, 25.0, 4.5))
    moving = np.concatenate([box_outline(x + v * t_s, y, length, 1.9, 0.0) for x, y, v, length in traffic])
    keep = lambda p: p[(p[:, 0] >= x_min) & (p[:, 0] <= x_max)]   # noqa: E731
    return keep(static), keep(moving)


def test_static_landmarks_recover_a_bias_while_traffic_moves():
    """0.5 m lateral + 1 deg on the vehicle: the posts (point-to-point, no line around them) and the
    stopped car recover it from the static cells only; the moving cars, seen by the other vehicle 0.1 s
    later and by the vehicle itself 0.5 s earlier, are filtered out and do not pull the estimate."""
    rng = np.random.default_rng(0)
    vehicle_xy, shift, yaw = np.array([500.0, 0.0]), np.array([0.0, 0.5]), math.radians(1.0)

    def seen(t_s: float, x_min: float, x_max: float, biased: bool) -> tuple[np.ndarray, int]:
        static, moving = landmark_scene(t_s, x_min, x_max)
        pts = np.concatenate([static, moving])
        pts = pts[rng.random(len(pts)) < 0.7]
        pts = pts + rng.normal(0.0, 0.03, pts.shape)
        if biased:
            pts = rotate_about(pts, vehicle_xy, yaw) + shift
        return rasterise(pts, 0.4), len(moving)

    vehicle, _ = seen(1.0, 440.0, 600.0, True)
    vehicle_earlier, _ = seen(0.5, 428.0, 588.0, True)
    other, _ = seen(1.1, 470.0, 640.0, False)
    other_earlier, _ = seen(0.6, 458.0, 628.0, False)
    v_static = persistent_points(vehicle, vehicle_earlier, 0.3)
    o_static = persistent_points(other, other_earlier, 0.3)
    # The filter keeps the landmarks and drops the cars (a car's cells, one per 0.4 m cell, are all gone).
    _, moving_now = landmark_scene(1.0, 440.0, 600.0)
    moving_cells = rasterise(rotate_about(moving_now, vehicle_xy, yaw) + shift, 0.4)
    kept_moving = (np.min(np.hypot(*(v_static[:, None, :] - moving_cells[None, :, :]).transpose(2, 0, 1)),
                          axis=1) < 0.01).sum()
    assert kept_moving <= 0.05 * len(moving_cells), kept_moving
    assert len(v_static) > 0.5 * len(rasterise(rotate_about(landmark_scene(1.0, 440.0, 600.0)[0], vehicle_xy, yaw)
                                               + shift, 0.4))
    cfg = CoregConfig(max_correspondence_m=1.5)
    r = estimate_offset(v_static, o_static, cfg, pivot_xy=vehicle_xy)
    assert r.accepted, r.reason
    # Truth (see test_recovers_shift_and_rotation): dyaw = -yaw, (dx, dy) = -R(-yaw) shift about the vehicle.
    c, s = math.cos(-yaw), math.sin(-yaw)
    truth = -np.array([[c, -s], [s, c]]) @ shift
    assert math.hypot(r.dx - truth[0], r.dy - truth[1]) < 0.15, r
    assert abs(math.degrees(r.dyaw) + 1.0) < 0.3, r
    # All occupied cells, cars included: the cars seen at two stamps pull the estimate off or get it rejected.
    bad = estimate_offset(vehicle, other, cfg, pivot_xy=vehicle_xy)
    assert not bad.accepted or math.hypot(bad.dx - truth[0], bad.dy - truth[1]) > 0.15 \
        or abs(math.degrees(bad.dyaw) + 1.0) > 0.3, bad


def test_isolated_posts_are_matched_point_to_point():
    """A single row of posts along the road: point-to-line on the row would leave the motion along it free
    (degenerate); each post has no line around it within normal_radius_m, so it pins x as well."""
    posts = np.array([[x, -2.95] for x in np.arange(400.0, 600.0, 12.0)])
    cfg = CoregConfig(min_points=10)
    r = estimate_offset(posts + (0.3, 0.1), posts, cfg, pivot_xy=np.array([500.0, 0.0]))
    assert r.accepted, r.reason
    assert_allclose((r.dx, r.dy, r.dyaw), (-0.3, -0.1, 0.0), atol=1e-6)
    # One long line instead (normal radius spanning the row): the motion along it is free, x stays
    # unrecovered and the estimate is rejected.
    wide = estimate_offset(posts + (0.3, 0.1), posts, CoregConfig(min_points=10, normal_radius_m=30.0),
                           pivot_xy=np.array([500.0, 0.0]))
    assert not wide.accepted and abs(wide.dx) < 0.05, wide


POSTS = np.array([[x, y] for x in np.arange(-96.0, 400.0, 12.0) for y in (-2.95, 9.75)])


def drive(true_xs: np.ndarray, bias: tuple[float, float, float], rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """A vehicle in lane 0 passing the posts: at each true position x in ``true_xs`` it senses the posts
    from 20 m behind to 70 m ahead (80 % of them, 0.4 m cells) through a pose biased by (bx, by, yaw deg).
    Returns the sensed points (N, 2) and, per point, its odometry position then (N, 2)."""
    b, yaw = np.array(bias[:2]), math.radians(bias[2])
    pts, pivots = [], []
    for x in true_xs:
        here = np.array([x, 0.0])
        seen = POSTS[(POSTS[:, 0] > x - 20.0) & (POSTS[:, 0] < x + 70.0)]
        seen = seen[rng.random(len(seen)) < 0.8]
        cells = rasterise(np.concatenate([box_outline(px, py, 0.4, 0.4, 0.0, 0.05) for px, py in seen]), 0.4)
        pts.append(rotate_about(cells, here, yaw) + b)
        pivots.append(np.broadcast_to(here + b, cells.shape))
    return np.concatenate(pts), np.concatenate(pivots)


def test_a_bias_that_travels_with_the_vehicle_is_recovered_from_a_drive():
    """The posts a vehicle saw over 2 s at 25 m/s, each sensed through the same pose error: turned about
    where the vehicle was for each point, the correction comes out right; turned about one point (its
    latest position), the heading error of the older sightings reads as a sideways offset."""
    rng = np.random.default_rng(0)
    xs = 100.0 + 25.0 * np.arange(0.0, 2.01, 0.25)
    vehicle, pivots = drive(xs, (0.1, 0.5, 1.0), rng)
    reference, _ = drive(xs - 30.0, (0.0, 0.0, 0.0), rng)
    cfg = CoregConfig(min_points=10, max_correspondence_m=2.0, max_rmse_m=0.35)
    r = estimate_offset(vehicle, reference, cfg, pivot_xy=pivots)
    assert r.accepted, r.reason
    assert r.pivot == pytest.approx(tuple(pivots[-1]))
    assert math.hypot(r.dx + 0.1, r.dy + 0.5) < 0.1, r          # about the odometry position: -bias
    assert abs(math.degrees(r.dyaw) + 1.0) < 0.1, r
    one = estimate_offset(vehicle, reference, cfg, pivot_xy=pivots[-1])
    assert not one.accepted or abs(one.dy + 0.5) > 0.2, one
    with pytest.raises(ConfigError, match='pivot_xy must have shape'):
        estimate_offset(vehicle, reference, cfg, pivot_xy=pivots[:5])


def platoon_views(biases: dict[str, tuple[float, float, float]], rng: np.random.Generator
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Four vehicles 20-25 m apart (v1 leading) passing the posts for 2 s, each with its own pose bias."""
    gaps = {'v1': 0.0, 'v2': -27.0, 'v3': -47.0, 'v4': -67.0}
    xs = 200.0 + 25.0 * np.arange(0.0, 2.01, 0.25)
    views = {v: drive(xs + gaps[v], biases[v], rng) for v in biases}
    return {v: p for v, (p, _) in views.items()}, {v: c for v, (_, c) in views.items()}


BIASES = {'v1': (0.1, 0.5, 1.0), 'v2': (-0.2, 0.1, -0.2), 'v3': (0.3, 0.0, 0.0), 'v4': (0.0, 0.15, 0.0)}


def test_register_platoon_lets_the_majority_define_map():
    """v1 biased 0.5 m / 1 deg, the others by highway_occlusion_landmarks' small honest biases. Each
    vehicle registered against the others' evidence as reported pulls the honest followers towards v1;
    registered together and anchored on the median, v1 gets its inverse bias and the others stay small."""
    rng = np.random.default_rng(1)
    points, pivots = platoon_views(BIASES, rng)
    cfg = CoregConfig(min_points=10, max_correspondence_m=2.0, max_rmse_m=0.35)
    out = register_platoon(points, pivots, {}, cfg, sweeps=3)
    assert all(r.accepted for r in out.values()), out
    # Error of each correction against the inverse of the vehicle's bias (about its odometry position).
    err = np.array([[out[v].dx + bx, out[v].dy + by, math.degrees(out[v].dyaw) + yaw]
                    for v, (bx, by, yaw) in BIASES.items()])
    # map is where the honest majority puts it, their own small biases included: a common error
    # of a few tenths at most ...
    assert np.all(np.hypot(err[:, 0], err[:, 1]) < 0.25) and np.all(np.abs(err[:, 2]) < 0.1), err
    # ... and every vehicle, v1 included, shares it (they agree with each other).
    spread = err - np.median(err, axis=0)
    assert np.all(np.hypot(spread[:, 0], spread[:, 1]) < 0.1) and np.all(np.abs(spread[:, 2]) < 0.1), err
    # Against the others as reported (one sweep, no anchor: what the node did before), v2 is pulled.
    ref = np.concatenate([points[o] for o in ('v1', 'v3', 'v4')])
    pulled = estimate_offset(points['v2'], ref, cfg, pivot_xy=pivots['v2'])
    assert abs(math.degrees(pulled.dyaw) - 0.2) > 0.5, pulled


def test_register_platoon_starts_from_the_current_corrections_and_checks_sweeps():
    rng = np.random.default_rng(2)
    points, pivots = platoon_views({'v1': (0.0, 0.0, 0.0), 'v2': (0.0, 0.0, 0.0), 'v3': (0.0, 0.0, 0.0)}, rng)
    cfg = CoregConfig(min_points=10, max_correspondence_m=2.0, max_rmse_m=0.35)
    # Two vehicles only: nothing tells which one is off, each gets half of the relative offset.
    two = register_platoon({v: points[v] for v in ('v1', 'v2')}, {v: pivots[v] for v in ('v1', 'v2')}, {}, cfg)
    assert two['v1'].dy == pytest.approx(-two['v2'].dy, abs=1e-9)
    start = {v: CoregResult(0.0, 0.3, 0.0, 1.0, 0.0, True, 'ok') for v in points}
    out = register_platoon(points, pivots, start, cfg, sweeps=2)
    for r in out.values():                      # a common shift of all corrections is no information
        assert r.accepted and math.hypot(r.dx, r.dy) < 0.05 and abs(math.degrees(r.dyaw)) < 0.05, r
    with pytest.raises(ConfigError, match='sweeps must be >= 1'):
        register_platoon(points, pivots, {}, cfg, sweeps=0)


@pytest.mark.parametrize('res,tol', [(0.2, 0.3), (0.4, 0.3), (0.2, 0.5), (0.1, 0.35), (0.2, 0.2), (0.25, 0.3)])
@pytest.mark.parametrize('seed', range(4))
def test_persistent_points_on_the_lattice_are_the_kd_tree_ones(res, tol, seed):
    rng = np.random.default_rng(seed)
    # Two evidence grids of one vehicle a few metres apart on the global lattice, mostly the same cells.
    a = GridSpec(round(-513.0 / res) * res, round(37.0 / res) * res, res, 300, 120)
    b = GridSpec(a.origin_x + int(rng.integers(1, 40)) * res, a.origin_y - int(rng.integers(0, 5)) * res, res,
                 300, 120)
    xs = rng.uniform(a.origin_x, a.origin_x + 60.0, 900)
    ys = rng.uniform(a.origin_y, a.origin_y + 24.0, 900)
    xy = np.stack([xs, ys], axis=1)

    def centres(spec, jitter):
        cells = np.full(spec.shape, -1, np.int8)
        ix, iy = spec.world_to_cell(xy + rng.normal(0.0, jitter, xy.shape))
        ok = spec.in_bounds(ix, iy)
        cells[iy[ok], ix[ok]] = 90
        return occupied_points(spec, cells=cells)

    p, e = centres(a, 0.0), centres(b, 0.15)
    want = persistent_points(p, e, tol)
    got = persistent_points(p, e, tol, res)
    np.testing.assert_array_equal(got, want)
    assert 0 < len(want) < len(p)
    # Off the lattice (or a tolerance on a lattice distance): the tree decides, the same way.
    np.testing.assert_array_equal(persistent_points(p + 0.01, e, tol, res), persistent_points(p + 0.01, e, tol))
