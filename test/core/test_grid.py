from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import (GridSpec, logodds_to_percent, percent_to_logodds,
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
