from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import (GridSpec, follow_yaw, logodds_to_percent, logodds_to_prob, percent_to_logodds, resample_nearest,
                                          prob_to_logodds)


def test_centered_snaps_to_lattice():
    g = GridSpec.centered(10.03, -3.31, 20.0, 8.0, 0.2)
    assert g.shape == (40, 100)
    assert_allclose([g.origin_x / 0.2, g.origin_y / 0.2],
                    np.round([g.origin_x / 0.2, g.origin_y / 0.2]), atol=1e-9)


def test_world_to_cell_and_back():
    g = GridSpec(-5.0, -2.0, 0.5, 20, 8)
    ix, iy = g.world_to_cell(np.array([[-5.0, -2.0], [-4.76, -1.4], [4.99, 1.99], [5.0, 0.0]]))
    assert_array_equal(ix, [0, 0, 19, 20])
    assert_array_equal(iy, [0, 1, 7, 4])
    assert_array_equal(g.in_bounds(ix, iy), [True, True, True, False])
    xs, ys = g.cell_centers()
    assert_allclose(xs[:2], [-4.75, -4.25])
    assert_allclose(ys[-1], 1.75)


def test_lattice_offset():
    a = GridSpec(0.0, 0.0, 0.2, 100, 100)
    b = GridSpec(1.0, -0.4, 0.2, 10, 10)
    assert a.lattice_offset(b) == (5, -2)
    with pytest.raises(ConfigError, match='off the lattice'):
        a.lattice_offset(GridSpec(0.1, 0.0, 0.2, 10, 10))
    with pytest.raises(ConfigError, match='resolution 0.5 m does not match 0.2 m'):
        a.lattice_offset(GridSpec(0.0, 0.0, 0.5, 10, 10))


@pytest.mark.parametrize('bad', [dict(resolution=0.0), dict(width=0), dict(origin_x=float('nan'))])
def test_invalid_spec(bad):
    kw = dict(origin_x=0.0, origin_y=0.0, resolution=0.2, width=10, height=10) | bad
    with pytest.raises(ConfigError):
        GridSpec(**kw)


def test_percent_roundtrip():
    l = prob_to_logodds(np.array([0.2, 0.5, 0.9]))
    known = np.array([True, True, False])
    cells = logodds_to_percent(l, known)
    assert_array_equal(cells, [20, 50, -1])
    back, k = percent_to_logodds(cells)
    assert_array_equal(k, known)
    assert_allclose(back[:2], l[:2], atol=1e-5)
    assert back[2] == 0.0


def test_yawed_grid_round_trips_map_points_through_its_cells():
    yaw = math.radians(30.0)
    g = GridSpec.centered(120.0, 60.0, 40.0, 10.0, 0.5, yaw=yaw)
    assert g.shape == (20, 80)
    # The centre lies in the middle cell; a point 19 m ahead along the grid's x is 38 cells on.
    ix, iy = g.world_to_cell(np.array([[120.0, 60.0], [120.0 + 19.0 * math.cos(yaw), 60.0 + 19.0 * math.sin(yaw)]]))
    assert_array_equal(ix, [40, 78])
    assert_array_equal(iy, [10, 10])
    x, y = g.cell_centers_map()
    ix, iy = g.world_to_cell(np.stack([x, y], axis=-1))
    assert_array_equal(ix, np.broadcast_to(np.arange(80), (20, 80)))
    assert_array_equal(iy, np.broadcast_to(np.arange(20)[:, None], (20, 80)))
    uv = np.random.default_rng(0).uniform(-50, 50, (10, 2))
    assert_allclose(g.to_grid_frame(g.to_map_frame(uv)), uv, atol=1e-12)
    ox, oy = g.origin_map
    assert_allclose(g.to_grid_frame(np.array([ox, oy])), [g.origin_x, g.origin_y], atol=1e-12)
    assert g.aligned() == GridSpec(g.origin_x, g.origin_y, 0.5, 80, 20)


def test_yaw_zero_is_the_axis_aligned_grid():
    g = GridSpec.centered(10.03, -3.31, 20.0, 8.0, 0.2)
    assert g == GridSpec.centered(10.03, -3.31, 20.0, 8.0, 0.2, yaw=0.0)
    assert not g.is_rotated and g.origin_map == (g.origin_x, g.origin_y)
    x, y = g.cell_centers_map()
    xs, ys = g.cell_centers()
    assert_array_equal(x[0], xs)
    assert_array_equal(y[:, 0], ys)


def test_lattice_offset_of_yawed_grids():
    yaw = math.radians(-45.0)
    a = GridSpec(0.0, 0.0, 0.2, 100, 100, yaw)
    assert a.lattice_offset(GridSpec(1.0, -0.4, 0.2, 10, 10, yaw)) == (5, -2)
    with pytest.raises(ConfigError, match='yaw 0 rad does not match -0.785398 rad'):
        a.lattice_offset(GridSpec(1.0, -0.4, 0.2, 10, 10))
    with pytest.raises(ConfigError, match='grid yaw must be a finite angle'):
        GridSpec(0.0, 0.0, 0.2, 1, 1, 4.0)


def test_resample_nearest_between_yaws():
    src = GridSpec(0.0, 0.0, 1.0, 10, 4)                        # map x 0..10, y 0..4
    values = np.arange(40, dtype=np.int8).reshape(4, 10)
    dst = GridSpec.centered(5.0, 2.0, 4.0, 2.0, 1.0, yaw=math.pi / 2)   # the same place, turned by 90 deg
    out = resample_nearest(src, values, dst, -1)
    assert out.shape == (2, 4)
    # dst column j runs along map +y, dst row i along map -x.
    x, y = dst.cell_centers_map()
    assert_allclose(x, [[5.5, 5.5, 5.5, 5.5], [4.5, 4.5, 4.5, 4.5]], atol=1e-12)
    assert_array_equal(out, values[np.floor(y).astype(int), np.floor(x).astype(int)])
    far = GridSpec(100.0, 100.0, 1.0, 2, 2, 0.3)
    assert_array_equal(resample_nearest(src, values, far, -1), np.full((2, 2), -1))
    same = resample_nearest(src, values, src, -1)
    assert_array_equal(same, values)


@pytest.mark.parametrize('heading_deg, current_deg, expected_deg', [
    (0.3, None, 0.0), (29.6, None, 30.0), (30.9, 30.0, 30.0), (31.6, 30.0, 32.0), (-179.5, None, -180.0),
    (179.9, -180.0, -180.0), (0.6, 0.0, 0.0), (1.01, None, 2.0)])
def test_follow_yaw_steps_with_hysteresis(heading_deg, current_deg, expected_deg):
    cur = None if current_deg is None else math.radians(current_deg)
    got = follow_yaw(math.radians(heading_deg), math.radians(2.0), cur, math.radians(0.5))
    assert math.degrees(got) == pytest.approx(expected_deg)


@pytest.mark.parametrize('step', [1, 3])
def test_percent_to_logodds_of_int8_cells_is_the_computed_value_bit_for_bit(step):
    """int8 cells go through a look-up table: the same float32 bits as computing each value (any length,
    strided too), for every int8 value."""
    from cooperative_fusion.core.grid import _percent_to_logodds
    rng = np.random.default_rng(0)
    for n in (1, 7, 33, 25_001):
        cells = rng.integers(-128, 128, n * step).astype(np.int8)[::step]
        got_l, got_k = percent_to_logodds(cells)
        want_l, want_k = _percent_to_logodds(cells)
        assert got_l.dtype == np.float32 and got_k.dtype == bool and got_l.shape == cells.shape
        np.testing.assert_array_equal(got_l.view(np.uint32), want_l.view(np.uint32))
        np.testing.assert_array_equal(got_k, want_k)
    every = np.arange(-128, 128).astype(np.int8).reshape(16, 16)
    got_l, got_k = percent_to_logodds(every)
    assert got_l.shape == (16, 16)
    np.testing.assert_array_equal(got_k.ravel(), (np.arange(-128, 128) >= 0) & (np.arange(-128, 128) <= 100))
    assert got_l.ravel()[128 + 50] == 0.0 and got_l.ravel()[128 - 1] == 0.0 and got_l.ravel()[128 + 80] > 1.3


def test_logodds_to_percent_is_the_step_by_step_formula_bit_for_bit():
    """logodds_to_percent in one buffer: the values of rint(100 · logodds_to_prob(nan_to_num(l))), -1 where NaN
    or not known; ±inf, large values, NaN, with and without a known mask."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0.0, 3.0, 5000), [0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, 88.0, -88.0,
                                                             104.0, -104.0]]).astype(np.float32)
    for with_nan in (False, True):
        x = values.copy()
        if with_nan:
            x[rng.random(x.size) < 0.05] = np.nan
        known = rng.random(x.size) < 0.8
        with np.errstate(over='ignore'):
            want = np.rint(100.0 * logodds_to_prob(np.nan_to_num(x))).astype(np.int8)
            for k in (None, known):
                got = logodds_to_percent(x, k)
                expected = want.copy()
                expected[np.isnan(x) | (False if k is None else ~k)] = -1
                np.testing.assert_array_equal(got, expected)
