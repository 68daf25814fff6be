from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.twin.prediction import _phi, rasterise_boxes


def _one_padded_batch(spec: GridSpec, cx, cy, length, width, yaw, sigma, window_sigmas: float = 3.0) -> np.ndarray:
    """The straightforward version: every window padded to the largest, unclipped, in one array."""
    res, f32 = spec.resolution, np.float32
    c, s = np.cos(yaw), np.sin(yaw)
    ex = 0.5 * (np.abs(c) * length + np.abs(s) * width) + window_sigmas * sigma
    ey = 0.5 * (np.abs(s) * length + np.abs(c) * width) + window_sigmas * sigma
    ix0 = np.floor((cx - ex - spec.origin_x) / res).astype(np.int64)
    iy0 = np.floor((cy - ey - spec.origin_y) / res).astype(np.int64)
    nx = np.floor((cx + ex - spec.origin_x) / res).astype(np.int64) - ix0 + 1
    ny = np.floor((cy + ey - spec.origin_y) / res).astype(np.int64) - iy0 + 1
    wx, wy = int(nx.max()), int(ny.max())
    dx = (spec.origin_x + (ix0[:, None] + np.arange(wx)[None, :] + 0.5) * res - cx[:, None]).astype(f32)
    dy = (spec.origin_y + (iy0[:, None] + np.arange(wy)[None, :] + 0.5) * res - cy[:, None]).astype(f32)
    inv = (1.0 / sigma).astype(f32)[:, None, None]
    c3, s3 = c.astype(f32)[:, None, None] * inv, s.astype(f32)[:, None, None] * inv
    u = c3 * dx[:, None, :] + s3 * dy[:, :, None]
    v = c3 * dy[:, :, None] - s3 * dx[:, None, :]
    hl = (0.5 * length / sigma).astype(f32)[:, None, None]
    hw = (0.5 * width / sigma).astype(f32)[:, None, None]
    free_obj = f32(1.0) - (_phi(u + hl) - _phi(u - hl)) * (_phi(v + hw) - _phi(v - hw))
    free = np.ones(spec.shape, np.float32)
    r0, c0 = np.maximum(iy0, 0), np.maximum(ix0, 0)
    r1, c1 = np.minimum(iy0 + ny, spec.height), np.minimum(ix0 + nx, spec.width)
    for i in np.nonzero((r1 > r0) & (c1 > c0))[0]:
        free[r0[i]:r1[i], c0[i]:c1[i]] *= free_obj[i, r0[i] - iy0[i]:r1[i] - iy0[i], c0[i] - ix0[i]:c1[i] - ix0[i]]
    return f32(1.0) - free


@pytest.mark.parametrize('seed', range(10))
def test_batched_windows_equal_one_padded_batch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = GridSpec(-20.0, -10.0, 0.2, 300, 100)
    n = int(rng.integers(1, 30))
    trucks = rng.random(n) < 0.3
    # Centres also off the grid and across its edges, so windows are clipped or skipped.
    cx, cy = rng.uniform(-35.0, 55.0, n), rng.uniform(-18.0, 18.0, n)
    length = np.where(trucks, rng.uniform(8.0, 16.0, n), rng.uniform(0.5, 5.0, n))
    width = rng.uniform(0.5, 2.6, n)
    yaw, sigma = rng.uniform(-np.pi, np.pi, n), rng.uniform(0.05, 2.0, n)
    got = rasterise_boxes(spec, cx, cy, length, width, yaw, sigma, window_sigmas=3.0)
    expected = _one_padded_batch(spec, cx, cy, length, width, yaw, sigma)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_boxes_all_off_the_grid_leave_it_free() -> None:
    spec = GridSpec(0.0, 0.0, 0.5, 20, 10)
    got = rasterise_boxes(spec, np.array([-30.0, 50.0]), np.array([2.0, 2.0]), np.array([4.0, 4.0]),
                          np.array([2.0, 2.0]), np.zeros(2), np.array([0.3, 0.3]))
    np.testing.assert_array_equal(got, np.zeros(spec.shape, np.float32))


@pytest.mark.parametrize('rotated', [False, True])
def test_box_sets_equal_each_set_on_its_own(rotated: bool) -> None:
    from cooperative_fusion.core.twin.prediction import rasterise_box_sets
    rng = np.random.default_rng(3)
    spec = GridSpec(-20.0, -10.0, 0.2, 300, 100, yaw=0.3 if rotated else 0.0)
    sets = []
    for n in (5, 0, 12, 1):
        sets.append((rng.uniform(-35.0, 55.0, n), rng.uniform(-18.0, 18.0, n), rng.uniform(0.5, 12.0, n),
                     rng.uniform(0.5, 2.6, n), rng.uniform(-np.pi, np.pi, n), rng.uniform(0.05, 2.0, n)))
    got = rasterise_box_sets(spec, sets)
    assert len(got) == len(sets)
    for g, box_set in zip(got, sets):
        np.testing.assert_array_equal(g, rasterise_boxes(spec, *box_set))
        if len(box_set[0]):
            np.testing.assert_array_equal(g, _one_padded_batch(spec.aligned() if rotated else spec,
                                                               *_in_grid_frame(spec, box_set)))
    assert got[1].shape == spec.shape and not got[1].any()


def _in_grid_frame(spec: GridSpec, box_set):
    cx, cy, length, width, yaw, sigma = box_set
    uv = spec.to_grid_frame(np.stack([cx, cy], axis=-1))
    return uv[:, 0], uv[:, 1], length, width, yaw - spec.yaw, sigma


def test_percent_cells_equal_the_conversion_of_the_whole_grid() -> None:
    from cooperative_fusion.core.twin.prediction import _rasterise_sets, probability_to_percent
    rng = np.random.default_rng(5)
    spec = GridSpec(-20.0, -10.0, 0.2, 300, 100)
    sets = [(rng.uniform(-35.0, 55.0, n), rng.uniform(-18.0, 18.0, n), rng.uniform(0.5, 12.0, n),
             rng.uniform(0.5, 2.6, n), rng.uniform(-np.pi, np.pi, n), rng.uniform(0.05, 2.0, n)) for n in (8, 20, 0)]
    for prob, percent in _rasterise_sets(spec, sets, 3.0):
        assert percent.dtype == np.int8
        np.testing.assert_array_equal(percent, probability_to_percent(prob))
        np.testing.assert_array_equal(percent, np.rint(np.float32(100.0) * prob).astype(np.int8))
