"""Evidence moved through a vehicle's co-registration correction (core.fusion.correction)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from coregistration_scene import CO_SPEC, OCC, V1_XY, dense, rasterise, rotate_about, scene
from scipy import ndimage

from cooperative_fusion.core.fusion.coregistration import CoregResult, apply_correction
from cooperative_fusion.core.fusion.correction import Correction, mask_on, warp_evidence
from cooperative_fusion.core.grid import GridSpec


def test_warp_moves_a_biased_grid_back_onto_the_truth():
    parts = scene()
    shift, yaw = np.array([0.5, 0.0]), math.radians(1.0)
    truth = rasterise(dense(parts)) == OCC
    biased = rasterise(rotate_about(dense(parts), V1_XY, yaw) + shift)
    logodds = np.where(biased == OCC, 2.2, -1.4).astype(np.float32)
    known = np.ones(CO_SPEC.shape, dtype=bool)
    c, s = math.cos(-yaw), math.sin(-yaw)
    t = -np.array([[c, -s], [s, c]]) @ shift
    spec, l2, k2 = warp_evidence(CO_SPEC, logodds, known, Correction(t[0], t[1], -yaw, tuple(V1_XY)))
    ox, oy = spec.lattice_offset(CO_SPEC)
    back = l2[oy:oy + CO_SPEC.height, ox:ox + CO_SPEC.width]
    kb = k2[oy:oy + CO_SPEC.height, ox:ox + CO_SPEC.width]
    assert set(np.unique(l2[k2])) == {np.float32(2.2), np.float32(-1.4)}     # order 0: values never mix
    occ = kb & (back > 0)
    # Nearest-cell resampling: every moved occupied cell is the true cell or its neighbour.
    near = ndimage.binary_dilation(truth, np.ones((3, 3), bool))
    assert np.all(near[occ])
    assert np.count_nonzero(occ & truth) / np.count_nonzero(occ) > 0.6
    before = np.count_nonzero(truth & (biased == OCC)) / np.count_nonzero(biased == OCC)
    assert before < 0.2                                                     # the bias really mattered
    assert not k2[0].any() and not k2[:, 0].any()                           # the margin holds everything
    assert spec.width > CO_SPEC.width and spec.lattice_offset(CO_SPEC) == (ox, oy)
    same = warp_evidence(CO_SPEC, logodds, known, Correction())
    assert same[0] == CO_SPEC and same[1] is logodds


def test_warp_on_the_common_lattice_keeps_a_sub_cell_correction():
    """Evidence shared at 0.4 m and corrected by 0.2 m: warped on its own lattice it moves by a whole
    0.4 m cell or not at all; repeated onto the 0.2 m lattice first, it moves by the 0.2 m."""
    coarse = GridSpec(0.0, 0.0, 0.4, 50, 25)
    logodds = np.zeros(coarse.shape, np.float32)
    logodds[10, 20] = 2.0                                      # a post at x 8.0-8.4, y 4.0-4.4
    known = np.ones(coarse.shape, bool)
    corr = Correction(0.2, 0.0, 0.0, (0.0, 0.0))
    spec, out, k = warp_evidence(coarse, logodds, known, corr)
    xs = spec.origin_x + (np.nonzero(out > 1.0)[1] + 0.5) * spec.resolution
    assert np.all(np.isclose(xs, 8.2) | np.isclose(xs, 8.6)) and len(xs) == 1     # 0.4 m or nothing
    fine = GridSpec(0.0, 0.0, 0.2, 100, 50)
    rep = np.repeat(np.repeat(logodds, 2, axis=0), 2, axis=1)
    spec, out, k = warp_evidence(fine, rep, np.ones(fine.shape, bool), corr)
    xs = spec.origin_x + (np.nonzero(out > 1.0)[1] + 0.5) * spec.resolution
    np.testing.assert_allclose(sorted(set(np.round(xs, 6))), [8.3, 8.5])


def test_mask_on_reads_a_coarse_mask_at_the_fine_cell_centres():
    coarse = GridSpec(-0.8, 0.0, 0.4, 4, 2)
    mask = np.zeros(coarse.shape, bool)
    mask[1, 2] = True                                          # x 0.0-0.4, y 0.4-0.8
    fine = GridSpec(-0.2, 0.2, 0.2, 6, 5)                     # x -0.2-1.0, y 0.2-1.2 (partly outside)
    out = mask_on(coarse, mask, fine)
    assert out.shape == fine.shape
    assert set(zip(*np.nonzero(out))) == {(1, 1), (1, 2), (2, 1), (2, 2)}   # y 0.4-0.8, x 0.0-0.4
    full = mask_on(coarse, np.ones(coarse.shape, bool), fine)
    assert full[:3, :5].all() and not full[:, 5:].any() and not full[3:].any()    # centres beyond 0.8: outside


def test_correction_travels_with_the_vehicle():
    """A pose error (offset + heading) is the same wherever the vehicle is: one correction, turned about the
    vehicle's position at each stamp, undoes it along the whole drive (about one fixed map point it would
    be off sideways by dyaw x the distance driven: 0.44 m per second at 25 m/s and 1 deg)."""
    rng = np.random.default_rng(0)
    shift, yaw = np.array([0.1, 0.5]), math.radians(1.0)
    corr = Correction(-shift[0], -shift[1], -yaw, (0.0, 0.0))   # about the odometry position: -bias, -yaw
    for x in (0.0, 25.0, 50.0):
        true_pos = np.array([x, 0.0])
        pts = true_pos + rng.uniform(-40.0, 80.0, (20, 2))
        sensed = rotate_about(pts, true_pos, yaw) + shift           # what the biased vehicle reports
        odom = tuple(true_pos + shift)
        np.testing.assert_allclose(apply_correction(sensed, corr.at(odom).as_result()), pts, atol=1e-9)
    assert corr.at((50.0, 0.5)).pivot == (50.0, 0.5) and corr.at((50.0, 0.5)).dyaw == corr.dyaw
    est = CoregResult(1.0, 0.0, math.radians(1.0), 1.0, 0.0, True, 'ok', (40.0, -3.0))
    half = Correction().blend(est, 0.5)
    assert half.pivot == (40.0, -3.0)
    assert (half.dx, half.dy, half.dyaw) == pytest.approx((0.5, 0.0, math.radians(0.5)))
    c = Correction()
    for _ in range(10):
        c = c.blend(est, 0.5)
    assert (c.dx, c.dyaw) == pytest.approx((1.0, math.radians(1.0)), rel=1e-3)


def test_a_pure_translation_is_warped_exactly_as_ndimage_does() -> None:
    """The block of a yaw-free correction holds ndimage's order-0 result cell for cell, ties included: the
    block's cells where it lands on the grown grid, nothing elsewhere."""
    from cooperative_fusion.core.fusion.correction import _shifted_block

    rng = np.random.default_rng(5)
    for trial in range(400):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        logodds = rng.normal(size=(h, w)).astype(np.float32)
        known = rng.random((h, w)) >= 0.3
        m = int(rng.integers(1, 4))
        shape = (h + 2 * m, w + 2 * m)
        half = trial % 2 == 0
        offset = np.array([-m + (rng.integers(-4, 5) * 0.5 if half else rng.uniform(-3, 3)) for _ in range(2)])
        lin = ndimage.affine_transform(np.where(known, logodds, np.nan).astype(np.float32), np.eye(2), offset,
                                       output_shape=shape, order=0, mode='constant', cval=np.nan)
        got = _shifted_block(offset, (h, w), shape)
        if got is None:                                # nothing lands
            assert np.isnan(lin).all()
            continue
        (y0, x0), (rows, cols) = got
        k = np.zeros(shape, bool)
        lo = np.zeros(shape, np.float32)
        dst = (slice(y0, y0 + rows.stop - rows.start), slice(x0, x0 + cols.stop - cols.start))
        k[dst] = known[rows, cols]
        lo[dst] = np.where(known[rows, cols], logodds[rows, cols], 0.0)
        np.testing.assert_array_equal(k, ~np.isnan(lin))
        np.testing.assert_array_equal(lo, np.where(np.isnan(lin), 0.0, lin).astype(np.float32))


def test_a_yaw_free_correction_moves_the_spec_not_the_cells() -> None:
    """warp_evidence of a pure translation: views of the evidence (no copy) on a spec moved by whole cells,
    the same known cells in map as the general path (ndimage) puts on the grown grid."""
    rng = np.random.default_rng(11)
    views = 0
    for trial in range(200):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        spec = GridSpec(float(rng.integers(-50, 50)) * 0.2, float(rng.integers(-50, 50)) * 0.2, 0.2, w, h)
        logodds = rng.normal(size=(h, w)).astype(np.float32)
        known = rng.random((h, w)) >= 0.3
        t = [float(rng.integers(-6, 7)) * 0.1 if trial % 2 else float(rng.uniform(-1.5, 1.5)) for _ in range(2)]
        corr = Correction(t[0], t[1], 0.0, (float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5))))
        got_spec, got_l, got_k = warp_evidence(spec, logodds, known, corr)
        if got_l.base is not logodds:
            continue                                   # a tie rounded unevenly: the general path
        assert got_k.base is known
        views += 1
        # ndimage on the general path's grown grid, its offset in the same floating-point steps
        m = int(math.ceil(math.hypot(*t) / 0.2)) + 1
        grown = GridSpec(spec.origin_x - m * 0.2, spec.origin_y - m * 0.2, 0.2, w + 2 * m, h + 2 * m)
        c = np.asarray(corr.pivot)
        offset = ((np.array([grown.origin_x, grown.origin_y]) + 0.5 * 0.2 - c - np.array(t) + c
                   - np.array([spec.origin_x, spec.origin_y])) / 0.2 - 0.5)[::-1]
        lin = ndimage.affine_transform(np.where(known, logodds, np.nan).astype(np.float32), np.eye(2), offset,
                                       output_shape=grown.shape, order=0, mode='constant', cval=np.nan)
        want_k = ~np.isnan(lin)
        ox, oy = grown.lattice_offset(got_spec)
        assert np.count_nonzero(want_k) == np.count_nonzero(got_k)
        np.testing.assert_array_equal(want_k[oy:oy + got_spec.height, ox:ox + got_spec.width], got_k)
        np.testing.assert_array_equal(lin[oy:oy + got_spec.height, ox:ox + got_spec.width][got_k], got_l[got_k])
    assert views >= 150                                # every one off a tie, most at ties
