"""Shifted-OR dilations against the scipy.ndimage calls they replace: exact equality on seeded random masks."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from cooperative_fusion.core.morphology import (column_bounds, dilate_offsets, dilate_square, line_element,
                                                       line_offsets, nonzero_box, nonzero_cells)

SHAPES = [(1, 1), (1, 7), (9, 1), (5, 6), (40, 53), (120, 37)]


def _old_line(reach: int, heading_rad: float) -> np.ndarray:
    """The consistency check's former structuring element, written out."""
    k = np.arange(-reach, reach + 1)
    ix = np.rint(k * math.cos(heading_rad)).astype(int)
    iy = np.rint(k * math.sin(heading_rad)).astype(int)
    rx, ry = int(np.abs(ix).max()), int(np.abs(iy).max())
    out = np.zeros((2 * ry + 1, 2 * rx + 1), dtype=bool)
    out[iy + ry, ix + rx] = True
    return out


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('density', [0.0, 0.01, 0.2, 0.7])
def test_dilate_square_equals_iterated_eight_dilation_and_maximum_filter(shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    mask = rng.random(shape) < density
    for radius in range(0, 8):
        got = dilate_square(mask, radius)
        assert got.dtype == bool and got.shape == mask.shape
        size = 2 * radius + 1
        np.testing.assert_array_equal(got, ndimage.maximum_filter(mask, size=size, mode='constant', cval=False))
        if radius > 0:
            np.testing.assert_array_equal(got, ndimage.binary_dilation(mask, np.ones((3, 3), bool),
                                                                       iterations=radius))
    assert dilate_square(mask, 0) is not mask          # always a new array


@pytest.mark.parametrize('heading', [0.0, 0.3, -0.7, math.pi / 4, 1.2, math.pi / 2, 2.9, math.pi, -2.2])
@pytest.mark.parametrize('reach', [0, 1, 3, 8, 15])
def test_line_dilation_equals_binary_dilation_by_the_old_element(heading, reach):
    rng = np.random.default_rng(reach * 100 + int(10 * heading) % 97)
    mask = rng.random((60, 90)) < 0.03
    np.testing.assert_array_equal(line_element(reach, heading), _old_line(reach, heading))
    got = dilate_offsets(mask, line_offsets(reach, heading))
    np.testing.assert_array_equal(got, ndimage.binary_dilation(mask, _old_line(reach, heading)))


def test_dilate_offsets_shifts_one_cell_by_each_offset_and_clips_at_the_border():
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, 2] = True
    got = dilate_offsets(mask, np.array([[0, 0], [1, 1], [-1, -1], [0, 9]]))
    assert sorted(zip(*np.nonzero(got))) == [(0, 2), (1, 3)]


def test_nonzero_box_is_the_grown_bounding_box_clipped():
    mask = np.zeros((10, 12), dtype=bool)
    assert nonzero_box(mask) is None
    mask[3, 4] = mask[5, 10] = True
    assert nonzero_box(mask) == (slice(3, 6), slice(4, 11))
    assert nonzero_box(mask, 2) == (slice(1, 8), slice(2, 12))


def _old_components(occ: np.ndarray, k: int):
    """The dynamic split's former labelling, written out: whole-grid dilation and labels."""
    eight = np.ones((3, 3), dtype=bool)
    grown = ndimage.binary_dilation(occ, eight, iterations=k) if k > 0 and occ.any() else occ
    labels, n = ndimage.label(grown, structure=eight)
    labels = np.where(occ, labels, 0)
    iy, ix = np.nonzero(labels)
    return iy, ix, labels[iy, ix] - 1, n


@pytest.mark.parametrize('k', [0, 1, 2, 3])
@pytest.mark.parametrize('seed', range(6))
def test_occupied_components_equal_whole_grid_labelling(k, seed):
    from cooperative_fusion.core.fusion.dynamic import occupied_components
    rng = np.random.default_rng(seed)
    occ = np.zeros((80, 130), dtype=bool)
    if seed:                                           # seed 0: nothing occupied
        y0, x0 = rng.integers(0, 60), rng.integers(0, 100)
        occ[y0:y0 + 20, x0:x0 + 30] = rng.random((20, 30)) < 0.1 * seed
        occ[rng.integers(0, 80, 5), rng.integers(0, 130, 5)] = True   # strays, edges included
    got = occupied_components(occ, k)
    want = _old_components(occ, k)
    for g, w in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(g, w)
    assert got[3] == want[3]


@pytest.mark.parametrize('lo,hi', [(0, 3), (-4, 0), (-7, 7), (2, 9), (-9, -3), (-30, 30)])
def test_runs_of_offsets_equal_one_shift_per_offset(lo, hi):
    rng = np.random.default_rng(abs(lo * 31 + hi))
    mask = rng.random((20, 25)) < 0.1
    mask[:, 0] = mask[:, -1] = True                    # cells at both edges: shifted out, never back in
    for dy in (0, 2, -3):
        offsets = np.array([[dy, dx] for dx in range(lo, hi + 1)])
        want = np.zeros_like(mask)
        for dx in range(lo, hi + 1):
            src = np.zeros((20 + 80, 25 + 80), dtype=bool)
            src[40 + dy:60 + dy, 40 + dx:65 + dx] = mask
            want |= src[40:60, 40:65]
        np.testing.assert_array_equal(dilate_offsets(mask, offsets), want)



@pytest.mark.parametrize('shape', [(1, 1), (7, 1), (1, 9), (60, 130)])
def test_nonzero_cells_and_column_bounds_are_numpys(shape):
    rng = np.random.default_rng(3)
    for density in (0.0, 0.02, 0.5, 1.0):
        mask = rng.random(shape) < density
        iy, ix = nonzero_cells(mask)
        want = np.nonzero(mask)
        np.testing.assert_array_equal(iy, want[0])
        np.testing.assert_array_equal(ix, want[1])
        assert iy.dtype == want[0].dtype and ix.dtype == want[1].dtype
        if iy.size:
            pts = np.stack([ix * 0.2 - 3.0, iy * 0.2 + 1.0], axis=1)
            lo, hi = column_bounds(pts)
            np.testing.assert_array_equal(lo, pts.min(axis=0))
            np.testing.assert_array_equal(hi, pts.max(axis=0))
    with pytest.raises(ValueError, match='2-D mask'):
        nonzero_cells(np.zeros(4, bool))


@pytest.mark.parametrize('r', [1, 2])
def test_dilate_offsets_of_a_whole_square_is_the_square_dilation(r):
    def shifted_or(mask, offsets):              # out[y, x] |= mask[y - dy, x - dx], nothing from outside
        out = np.zeros_like(mask)
        h, w = mask.shape
        for dy, dx in offsets:
            out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
                mask[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        return out

    rng = np.random.default_rng(r)
    k = np.arange(-r, r + 1)
    square = np.stack([a.ravel() for a in np.meshgrid(k, k)], axis=1)
    for shape in SHAPES:
        mask = rng.random(shape) < 0.1
        want = ndimage.binary_dilation(mask, np.ones((2 * r + 1, 2 * r + 1), bool))
        np.testing.assert_array_equal(dilate_offsets(mask, square[::-1]), want)
        np.testing.assert_array_equal(shifted_or(mask, square.tolist()), want)
        # one offset short of the square: the general path
        np.testing.assert_array_equal(dilate_offsets(mask, square[1:]), shifted_or(mask, square[1:].tolist()))
