from __future__ import annotations

import math
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.common_grid import (CommonGrid, DropCause, FusionConfig, resample_to_resolution)
from cooperative_fusion.core.grid import GridSpec, logodds_to_prob, percent_to_logodds, prob_to_logodds

RES = 0.2
S = 1_000_000_000   # ns per second
COMMON = GridSpec(0.0, 0.0, RES, 50, 20)        # 10 m × 4 m


def make(weights=None, **kw) -> CommonGrid:
    return CommonGrid(FusionConfig(spec=COMMON, vehicle_weights=weights or {'v1': 1.0, 'v2': 1.0}, **kw))


def evidence(spec: GridSpec, p: float, known: np.ndarray | None = None):
    known = np.ones(spec.shape, bool) if known is None else known
    return np.where(known, prob_to_logodds(np.full(spec.shape, p)), 0.0).astype(np.float32), known


def test_single_evidence_lands_on_its_lattice_cells():
    g = make()
    spec = GridSpec(1.0, 0.4, RES, 5, 3)    # cells ix 5..9, iy 2..4 of the common grid
    l, k = evidence(spec, 0.8)
    k[0, 0] = False
    r = g.integrate('v1', spec, l, k, stamp_ns=S, now_ns=S)
    assert r.accepted and r.cause is None and r.cells == 14 and r.weight == 1.0
    cells = g.posterior_percent()
    assert cells[2, 5] == -1
    assert_array_equal(cells[2:5, 5:10][k], 80)
    assert (cells[k.shape[0] + 2:, :] == -1).all() and (cells[:, :5] == -1).all()
    assert_allclose(g.logodds[3, 6], prob_to_logodds(np.array(0.8)), rtol=1e-6)
    assert g.time_ns == S


def test_window_partly_outside_is_cropped():
    g = make()
    spec = GridSpec(-1.0, -1.0, RES, 10, 10)   # overlaps the common cells ix 0..4, iy 0..4
    l, k = evidence(spec, 0.3)
    r = g.integrate('v2', spec, l, k, S, S)
    assert r.accepted and r.cells == 25
    assert (g.posterior_percent()[:5, :5] == 30).all()
    assert g.known_mask().sum() == 25


@pytest.mark.parametrize('kwargs, cause, match', [
    (dict(vehicle_id='v9'), DropCause.UNKNOWN_VEHICLE, r"vehicle 'v9' is not in vehicle_weights \['v1', 'v2'\]"),
    (dict(stamp_ns=S - 600_000_000), DropCause.TOO_OLD, r'600\.0 ms old, max_age is 500\.0 ms'),
    (dict(stamp_ns=S - 950_000_000, max_age_ns=900_000_000), DropCause.TOO_OLD,
     r'950\.0 ms old, max_age is 900\.0 ms'),
    (dict(stamp_ns=S + 60_000_000), DropCause.FUTURE, r'60\.0 ms ahead of now'),
    (dict(spec=GridSpec(0.1, 0.0, RES, 4, 4)), DropCause.GEOMETRY, 'off the lattice'),
    (dict(spec=GridSpec(0.0, 0.0, 0.3, 4, 4)), DropCause.GEOMETRY,
     r'resolution 0\.3 m is neither an integer multiple nor an integer fraction of the common 0\.2 m'),
    (dict(spec=GridSpec(100.0, 0.0, RES, 4, 4)), DropCause.OUT_OF_WINDOW, 'does not overlap'),
    (dict(spec=GridSpec(0.0, 0.0, RES, 5, 4)), DropCause.BAD_INPUT, r'do not match the spec \(height, width\)'),
    (dict(pose_cov_xy=np.eye(3)), DropCause.BAD_INPUT, r'finite \(2, 2\) array'),
    (dict(pose_cov_xy=-np.eye(2)), DropCause.BAD_INPUT, 'not positive semi-definite'),
])
def test_drop_causes_are_counted(kwargs, cause, match):
    g = make()
    l, k = evidence(GridSpec(0.0, 0.0, RES, 4, 4), 0.9)
    args = dict(vehicle_id='v1', spec=GridSpec(0.0, 0.0, RES, 4, 4), logodds=l, known=k, stamp_ns=S, now_ns=S)
    args.update(kwargs)
    r = g.integrate(**args)
    assert not r.accepted and r.cause is cause
    assert pytest.approx(0.0) == r.weight
    assert re.search(match, r.reason), r.reason
    assert (g.posterior_percent() == -1).all()
    status = g.vehicles_status(S)
    if cause is DropCause.UNKNOWN_VEHICLE:
        assert sum(status['v1'].drops.values()) == 0
    else:
        assert status['v1'].drops[cause.value] == 1
        assert status['v1'].accepted == 0


def test_a_per_message_age_limit_replaces_max_age():
    """The node passes max_age + the link's latency: 600 ms old evidence is fused under a 900 ms limit."""
    g = make()
    l, k = evidence(GridSpec(0.0, 0.0, RES, 4, 4), 0.9)
    r = g.integrate('v1', GridSpec(0.0, 0.0, RES, 4, 4), l, k, S - 600_000_000, S, max_age_ns=900_000_000)
    assert r.accepted and r.cells == 16
    assert g.vehicles_status(S)['v1'].drops['too_old'] == 0
    r = g.integrate('v1', GridSpec(0.0, 0.0, RES, 4, 4), l, k, S - 600_000_000, S)     # config max_age 500 ms
    assert not r.accepted and r.cause is DropCause.TOO_OLD


def test_resample_coarser_and_finer():
    # 0.4 m input: each cell becomes 2×2 common cells.
    coarse = GridSpec(0.4, 0.0, 0.4, 2, 1)
    l = np.array([[1.0, -1.0]], np.float32)
    spec, lo, ko = resample_to_resolution(coarse, l, np.ones((1, 2), bool), RES)
    assert spec == GridSpec(0.4, 0.0, RES, 4, 2)
    assert_array_equal(lo, [[1, 1, -1, -1], [1, 1, -1, -1]])
    assert ko.all()
    # 0.1 m input starting one fine cell past the lattice: padded, averaged over known cells.
    fine = GridSpec(0.1, 0.0, 0.1, 3, 2)
    l = np.array([[2.0, 4.0, 9.0], [0.0, 6.0, 1.0]], np.float32)
    k = np.array([[True, True, False], [False, True, True]])
    spec, lo, ko = resample_to_resolution(fine, l, k, RES, COMMON)
    assert spec == GridSpec(0.0, 0.0, RES, 2, 1)
    assert_allclose(lo, [[2.0, (4.0 + 6.0 + 1.0) / 3]])
    assert_array_equal(ko, [[True, True]])
    # Through integrate, the coarse grid lands on the right cells.
    g = make()
    r = g.integrate('v1', coarse, np.array([[2.0, -1.0]], np.float32), np.ones((1, 2), bool), S, S)
    assert r.accepted and r.cells == 8
    assert_allclose(g.logodds[0:2, 2:6], [[2, 2, -1, -1], [2, 2, -1, -1]])


def test_decay_halves_per_half_life_and_never_goes_back():
    g = make(half_life_s=2.0)
    spec = GridSpec(0.0, 0.0, RES, 2, 2)
    l, k = evidence(spec, 0.9)
    g.integrate('v1', spec, l, k, S, S)
    l0 = float(g.logodds[0, 0])
    g.advance(3 * S)
    assert_allclose(g.logodds[0, 0], 0.5 * l0, rtol=1e-6)
    g.advance(2 * S)     # earlier: no change
    assert_allclose(g.logodds[0, 0], 0.5 * l0, rtol=1e-6)
    assert g.time_ns == 3 * S
    # Long after, the cell has no information left and reads unknown again.
    g.advance(30 * S)
    assert g.posterior_percent()[0, 0] == -1
    assert g.observed[0, 0]


def test_out_of_order_evidence_is_decayed_to_grid_time():
    g = make(half_life_s=2.0, clamp_max=10.0, clamp_min=-10.0)
    spec = GridSpec(0.0, 0.0, RES, 1, 1)
    g.integrate('v1', spec, np.array([[1.0]], np.float32), np.ones((1, 1), bool), 10 * S, 10 * S)
    r = g.integrate('v2', spec, np.array([[2.0]], np.float32), np.ones((1, 1), bool),
                    10 * S - 400_000_000, 10 * S + 10_000_000)
    f = 0.5 ** (0.4 / 2.0)
    assert r.accepted
    assert_allclose(r.weight, f)
    assert_allclose(g.logodds[0, 0], 1.0 + 2.0 * f, rtol=1e-6)
    assert g.time_ns == 10 * S


def test_clamping():
    g = make(clamp_min=-2.0, clamp_max=3.5)
    spec = GridSpec(0.0, 0.0, RES, 2, 1)
    l = np.array([[4.0, -4.0]], np.float32)
    for k in range(3):
        g.integrate('v1', spec, l, np.ones((1, 2), bool), S + k, S + k)
    assert_allclose(g.logodds[0, :2], [3.5, -2.0])


TWO_VEHICLES = (('v1', 0), ('v2', 20_000_000))


def moving_box_run(cfg_kw: dict, vehicles=TWO_VEHICLES) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A 4 m × 1.6 m box moving +1 m per 0.1 s cycle, seen each cycle by ``vehicles`` (id, stamp lag)."""
    common = GridSpec(0.0, 0.0, RES, 200, 20)
    g = CommonGrid(FusionConfig(spec=common, vehicle_weights={'v1': 1.0, 'v2': 0.8}, **cfg_kw))
    xs, ys = common.cell_centers()
    gx, gy = np.meshgrid(xs, ys)
    posts, boxes = [], []
    for c in range(15):
        t = S + c * 100_000_000
        box = (np.abs(gx - (5.0 + c * 1.0)) < 2.0) & (np.abs(gy - 2.0) < 0.8)
        cells = np.where(box, 85, 25).astype(np.int8)
        l, k = percent_to_logodds(cells)
        g.advance(t)
        for vid, lag in vehicles:
            r = g.integrate(vid, common, l, k, t - lag, t)
            assert r.accepted
        posts.append(logodds_to_prob(g.logodds))
        boxes.append(box)
    return posts, boxes


@pytest.mark.parametrize('vehicles', [TWO_VEHICLES, TWO_VEHICLES[:1]])
def test_moving_box_leaves_no_trail(vehicles):
    posts, boxes = moving_box_run({}, vehicles)
    for c in range(5, len(posts)):
        # Cells the box occupied until 2 cycles ago and has left since.
        behind = np.zeros_like(boxes[0])
        for past in boxes[:c - 1]:
            behind |= past
        behind &= ~boxes[c] & ~boxes[c - 1]
        assert behind.sum() > 0
        assert posts[c][behind].max() < 0.5, (c, posts[c][behind].max())
        # The box itself is still seen (its leading metre, free until now, needs a second look).
        assert posts[c][boxes[c] & boxes[c - 1]].min() > 0.65


def test_without_free_wins_the_box_would_leave_a_trail():
    # Never confident: plain additive update; one vehicle, so free evidence comes once per cycle.
    posts, boxes = moving_box_run(dict(confident_logodds=50.0), TWO_VEHICLES[:1])
    behind = boxes[12] & ~boxes[13] & ~boxes[14]     # left 2 cycles ago
    assert posts[14][behind].max() > 0.5


def test_same_time_conflict_is_summed_not_reset():
    g = make(free_wins_after_ns=50_000_000)
    spec = GridSpec(0.0, 0.0, RES, 1, 1)
    occ = prob_to_logodds(np.array([[0.9]]))
    free = prob_to_logodds(np.array([[0.3]]))
    one = np.ones((1, 1), bool)
    g.integrate('v1', spec, occ, one, S, S)
    g.integrate('v2', spec, free, one, S + 20_000_000, S + 20_000_000)     # 20 ms later: summed
    decay = 0.5 ** (0.02 / 2.0)
    assert_allclose(g.logodds[0, 0], occ[0, 0] * decay + free[0, 0], rtol=1e-5)
    g.integrate('v2', spec, free, one, S + 120_000_000, S + 120_000_000)   # fresh: reset then added
    assert_allclose(g.logodds[0, 0], free[0, 0], rtol=1e-5)


def test_pose_covariance_blurs_and_downweights():
    common = GridSpec(0.0, 0.0, RES, 60, 60)
    cells = np.full(common.shape, 30, np.int8)
    cells[:, 30] = 90                        # a thin occupied wall in free space
    l, k = percent_to_logodds(cells)
    sharp = CommonGrid(FusionConfig(spec=common, vehicle_weights={'v1': 1.0}))
    blurred = CommonGrid(FusionConfig(spec=common, vehicle_weights={'v1': 1.0}))
    r0 = sharp.integrate('v1', common, l, k, S, S, pose_cov_xy=np.diag([0.001, 0.001]))
    cov = np.array([[0.09, 0.0], [0.0, 0.04]])
    r1 = blurred.integrate('v1', common, l, k, S, S, pose_cov_xy=cov)
    assert r0.blur_sigma_m == 0.0                       # within a cell: no blur
    assert_allclose(r1.blur_sigma_m, math.sqrt(0.09 - RES ** 2 / 12))
    assert_allclose(r1.weight, 1.0 / (1.0 + 0.3 ** 2 / 0.5 ** 2))
    p0 = logodds_to_prob(sharp.logodds)
    p1 = logodds_to_prob(blurred.logodds)
    assert p0[30, 30] > 0.85
    assert p1[30, 30] < 0.6                             # the wall no longer draws a confident line
    assert (p1[30, 29] > p0[30, 29]) and (p1[30, 28] > p0[30, 28])   # its evidence spread sideways
    assert p1[30, 5] < 0.5 and blurred.posterior_percent()[30, 5] == \
        round(100 * float(logodds_to_prob(np.float32(l[30, 5] * r1.weight))))  # far free space unchanged by the blur
    assert (blurred.observed == k).all()             # the support is not grown


def test_membership_timeout_and_rejoin():
    g = make(vehicle_timeout_ns=2 * S)
    spec = GridSpec(0.0, 0.0, RES, 2, 2)
    l, k = evidence(spec, 0.7)
    st = g.vehicles_status(0)
    assert not st['v1'].active and st['v1'].last_seen_ns is None
    g.integrate('v1', spec, l, k, S, S)
    g.integrate('v2', spec, l, k, S, S)
    g.integrate('v2', spec, l, k, 2 * S, 2 * S + 500_000_000)
    st = g.vehicles_status(3 * S + 1000)
    assert not st['v1'].active and st['v2'].active   # v1 silent for 2 s + 1 µs
    assert st['v1'].last_seen_ns == S and st['v2'].accepted == 2
    g.integrate('v1', spec, l, k, 4 * S, 4 * S)           # speaks again: rejoins
    st = g.vehicles_status(4 * S)
    assert st['v1'].active and st['v1'].rejoins == 1 and st['v1'].accepted == 2
    assert st['v2'].rejoins == 0
    assert st['v1'].weight == 1.0


def test_recenter_shifts_contents():
    g = make()
    spec = GridSpec(0.0, 0.0, RES, 50, 20)
    l = np.arange(1000, dtype=np.float32).reshape(20, 50) / 1000.0
    g.integrate('v1', spec, l, np.ones((20, 50), bool), S, S)
    new = GridSpec(1.0, -0.4, RES, 30, 30)     # +5 cells in x, -2 in y
    g.recenter(new)
    assert g.spec == new and g.logodds.shape == (30, 30)
    assert_allclose(g.logodds[2:22, 0:30], l[:, 5:35], rtol=1e-6)
    assert (g.posterior_percent()[:2] == -1).all() and (g.posterior_percent()[22:] == -1).all()
    with pytest.raises(ConfigError, match='off the lattice'):
        g.recenter(GridSpec(0.05, 0.0, RES, 10, 10))


def test_latency_is_reported_once():
    g = make()
    spec = GridSpec(0.0, 0.0, RES, 2, 2)
    l, k = evidence(spec, 0.7)
    g.integrate('v1', spec, l, k, S, S + 5_000_000)
    g.integrate('v2', spec, l, k, S + 20_000_000, S + 25_000_000)
    g.integrate('v2', spec, l, k, 0, S)                   # dropped: not counted
    assert_allclose(g.latency_ms(S + 50_000_000), [50.0, 30.0])
    assert g.latency_ms(S + 60_000_000).size == 0


@pytest.mark.parametrize('bad, match', [
    (dict(vehicle_weights={'v1': 1.5}), r"weight of vehicle 'v1' must be in \(0, 1\], got 1\.5"),
    (dict(vehicle_weights={'': 1.0}), 'vehicle id must be a non-empty string'),
    (dict(clamp_min=0.5), 'clamp_min < 0 < clamp_max'),
    (dict(half_life_s=0.0), 'half_life_s must be a positive finite number, got 0.0'),
    (dict(max_age_ns=-1), 'max_age_ns must be >= 0, got -1'),
    (dict(free_reset_logodds=5.0), 'free_reset_logodds 5.0 lies outside the clamp'),
])
def test_config_validation(bad, match):
    with pytest.raises(ConfigError, match=match):
        FusionConfig(spec=COMMON, **bad)


def test_config_weights_are_read_only():
    cfg = FusionConfig(spec=COMMON, vehicle_weights={'v1': 1.0})
    with pytest.raises(TypeError):
        cfg.vehicle_weights['v2'] = 1.0   # type: ignore[index]


@pytest.mark.parametrize('cov', [None, np.diag([0.09, 0.09])])
def test_non_finite_evidence_is_treated_as_unknown(cov):
    g = make()
    spec = GridSpec(0.0, 0.0, RES, 10, 10)
    l, k = evidence(spec, 0.3)
    l[5, 5] = np.nan
    r = g.integrate('v1', spec, l, k, S, S, pose_cov_xy=cov)
    assert r.accepted and r.cells == 99
    assert np.isfinite(g.logodds).all()
    assert not g.observed[5, 5] and g.observed.sum() == 99


# ------------------------------------------------------------ member footprints --

def test_member_box_mask_spans_the_body_from_base_link_with_margins():
    from cooperative_fusion.core.fusion.common_grid import Footprint, member_box_mask
    spec = GridSpec(-10.0, -5.0, 0.2, 100, 50)
    fp = Footprint(4.6, 1.9, 1.05)                     # rear face 1.05 m behind base_link, front 3.55 m ahead
    m = member_box_mask(spec, 0.0, 0.0, 0.0, fp)
    xs, ys = spec.cell_centers()
    cols = xs[m.any(axis=0)]
    rows = ys[m.any(axis=1)]
    assert cols.min() == pytest.approx(-0.9) and cols.max() == pytest.approx(3.5)
    assert rows.min() == pytest.approx(-0.9) and rows.max() == pytest.approx(0.9)
    grown = member_box_mask(spec, 0.0, 0.0, 0.0, fp, margin_m=0.4, margin_behind_m=1.6)
    cols = xs[grown.any(axis=0)]
    assert cols.min() == pytest.approx(-2.9) and cols.max() == pytest.approx(3.9)
    # Heading +90 deg: the body runs along +y.
    up = member_box_mask(spec, 0.0, 0.0, math.pi / 2, fp)
    assert ys[up.any(axis=1)].max() == pytest.approx(3.5) and xs[up.any(axis=0)].max() == pytest.approx(0.9)
    with pytest.raises(ConfigError, match='rear_overhang_m'):
        Footprint(4.5, 1.8, 4.5)


def test_drop_member_hits_keeps_free_and_other_hits_and_draw_members_marks_the_body():
    from cooperative_fusion.core.fusion.common_grid import Footprint, draw_members, drop_member_hits
    spec = GridSpec(-10.0, -5.0, 0.2, 100, 50)
    fp = Footprint(4.6, 1.9, 1.05)
    l_occ, l_free = float(prob_to_logodds(np.float32(0.85))), float(prob_to_logodds(np.float32(0.35)))
    logodds = np.full(spec.shape, l_free, np.float32)
    known = np.ones(spec.shape, bool)
    ix_face, ix_other = spec.world_to_cell(np.array([[-1.9, 0.0], [8.1, 0.0]]))[0]
    iy0 = spec.world_to_cell(np.array([[0.0, 0.0]]))[1][0]
    logodds[iy0, ix_face] = l_occ     # a rear face seen 0.9 m behind the body (lag)
    logodds[iy0, ix_other] = l_occ    # something else, 4.5 m ahead of the body
    out_l, out_k, n = drop_member_hits(spec, logodds, known, [(0.0, 0.0, 0.0, fp)], 0.4, 1.6)
    assert n == 1
    assert not out_k[iy0, ix_face] and out_l[iy0, ix_face] == 0.0
    assert out_l[iy0, ix_other] == pytest.approx(l_occ) and out_k[iy0, ix_other]
    assert np.count_nonzero(out_k) == known.size - 1          # free evidence on the body is kept
    assert logodds[iy0, ix_face] == pytest.approx(l_occ)       # input untouched
    assert drop_member_hits(spec, logodds, known, [], 0.4, 1.6)[2] == 0
    cells = np.full(spec.shape, -1, np.int8)
    drawn = draw_members(spec, cells, [(0.0, 0.0, 0.0, fp)], 97)
    body = drawn == 97
    assert np.count_nonzero(body) == 23 * 10                   # cell centres -0.9..3.5 x -0.9..0.9
    assert np.all(drawn[~body] == -1) and np.all(cells == -1)
