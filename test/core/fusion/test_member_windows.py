"""Member boxes on their own window against the former whole-grid masks: exact equality on seeded random poses."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from cooperative_fusion.core.fusion.common_grid import (Footprint, draw_members, drop_member_hits, member_box_mask,
                                                        member_box_window)
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.metrics import Box, footprint_mask, footprint_window

SPEC = GridSpec(-20.0, -6.0, 0.2, 200, 60)
CAR = Footprint(4.6, 1.9, 1.0)
TRUCK = Footprint(12.0, 2.5, 2.5)


def _old_footprint(spec: GridSpec, box: Box, dilate_cells: int = 0) -> np.ndarray:
    """The former footprint of one box, written out: meshgrid of centres, Box.contains, centre cell forced."""
    corners = box.corners()
    m = dilate_cells + 1
    ix0, iy0 = spec.world_to_cell(corners.min(axis=0))
    ix1, iy1 = spec.world_to_cell(corners.max(axis=0))
    x0, x1, y0, y1 = int(ix0) - m, int(ix1) + m + 1, int(iy0) - m, int(iy1) + m + 1
    gx, gy = np.meshgrid(spec.origin_x + (np.arange(x0, x1) + 0.5) * spec.resolution,
                         spec.origin_y + (np.arange(y0, y1) + 0.5) * spec.resolution)
    mask = box.contains(np.stack([gx, gy], axis=-1))
    cix, ciy = spec.world_to_cell(np.array([box.center_x, box.center_y]))
    mask[int(ciy) - y0, int(cix) - x0] = True
    if dilate_cells:
        mask = ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=dilate_cells)
    out = np.zeros(spec.shape, dtype=bool)
    cx0, cx1, cy0, cy1 = max(x0, 0), min(x1, spec.width), max(y0, 0), min(y1, spec.height)
    if cx0 < cx1 and cy0 < cy1:
        out[cy0:cy1, cx0:cx1] = mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return out


def _random_members(rng: np.random.Generator, n: int) -> list[tuple[float, float, float, Footprint]]:
    # Some inside, some across an edge, some outside the grid.
    return [(float(rng.uniform(-30.0, 30.0)), float(rng.uniform(-9.0, 9.0)), float(rng.uniform(-math.pi, math.pi)),
             CAR if rng.random() < 0.7 else TRUCK) for _ in range(n)]


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('dilate', [0, 1, 2])
def test_footprint_window_is_the_old_footprint(seed, dilate):
    rng = np.random.default_rng(seed)
    for _ in range(30):
        box = Box(float(rng.uniform(-25.0, 25.0)), float(rng.uniform(-8.0, 8.0)), float(rng.uniform(0.1, 12.0)),
                  float(rng.uniform(0.1, 3.0)), float(rng.uniform(-math.pi, math.pi)))
        want = _old_footprint(SPEC, box, dilate)
        np.testing.assert_array_equal(footprint_mask(SPEC, [box], dilate), want)
        sl, mask = footprint_window(SPEC, box, dilate)
        got = np.zeros(SPEC.shape, dtype=bool)
        got[sl] = mask
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('seed', range(5))
def test_member_windows_drop_and_draw_are_the_whole_grid_versions(seed):
    rng = np.random.default_rng(seed)
    members = _random_members(rng, 6)
    margin, behind = 0.3, 0.8
    for x, y, yaw, fp in members:
        sl, mask = member_box_window(SPEC, x, y, yaw, fp, margin, behind)
        whole = member_box_mask(SPEC, x, y, yaw, fp, margin, behind)
        assert np.count_nonzero(whole) == np.count_nonzero(mask)
        np.testing.assert_array_equal(whole[sl], mask)
    logodds = rng.normal(0.0, 1.5, SPEC.shape).astype(np.float32)
    logodds[rng.random(SPEC.shape) < 0.01] = np.nan
    logodds[rng.random(SPEC.shape) < 0.01] = np.inf
    known = rng.random(SPEC.shape) < 0.8
    body = np.zeros(SPEC.shape, dtype=bool)
    for x, y, yaw, fp in members:
        body |= member_box_mask(SPEC, x, y, yaw, fp, margin, behind)
    drop = body & known & (np.nan_to_num(logodds) > 0)
    got_l, got_k, n = drop_member_hits(SPEC, logodds, known, members, margin, behind)
    assert n == np.count_nonzero(drop) > 0
    np.testing.assert_array_equal(got_l, np.where(drop, 0.0, logodds).astype(np.float32))
    np.testing.assert_array_equal(got_k, known & ~drop)
    cells = rng.integers(-1, 101, SPEC.shape).astype(np.int8)
    want = cells.copy()
    for x, y, yaw, fp in members:
        m = member_box_mask(SPEC, x, y, yaw, fp)
        want[m] = np.maximum(want[m], np.int8(97))
    np.testing.assert_array_equal(draw_members(SPEC, cells, members, 97), want)


@pytest.mark.parametrize('spec', [SPEC, GridSpec(-41.3, -12.2, 0.2, 400, 120), GridSpec(-40.0, -12.0, 0.4, 200, 60),
                                  GridSpec(-40.0, -12.0, 0.2, 400, 120, 0.3)])
def test_member_box_window_is_footprint_window_of_the_member_box(spec):
    """member_box_window computes the box's cells itself (a window up to a cell wider): the same cells as
    footprint_window of the member's Box, on every grid, at every pose, across the edges too."""
    rng = np.random.default_rng(1)
    for _ in range(400):
        x, y = float(rng.uniform(-48.0, 48.0)), float(rng.uniform(-16.0, 16.0))
        if rng.random() < 0.5:
            x, y = round(x, 1), round(y, 1)          # edges on cell centres and borders
        yaw = float(rng.choice([0.0, math.pi / 2, -math.pi, rng.uniform(-math.pi, math.pi)]))
        fp = CAR if rng.random() < 0.6 else TRUCK
        margin, behind = float(rng.choice([0.0, 0.3, 1.5])), float(rng.choice([0.0, 0.8]))
        length = fp.length_m + 2.0 * margin + behind
        centre = fp.length_m - fp.rear_overhang_m + margin - 0.5 * length
        box = Box(x + centre * math.cos(yaw), y + centre * math.sin(yaw), length, fp.width_m + 2.0 * margin, yaw)
        want = np.zeros(spec.shape, dtype=bool)
        sl, mask = footprint_window(spec, box)
        want[sl] = mask
        got = np.zeros(spec.shape, dtype=bool)
        sl, mask = member_box_window(spec, x, y, yaw, fp, margin, behind)
        got[sl] = mask
        np.testing.assert_array_equal(got, want)
