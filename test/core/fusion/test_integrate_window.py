"""CommonGrid.integrate updates only the bounding box of the known cells: unknown margins change nothing."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.fusion.common_grid import CommonGrid, FusionConfig
from cooperative_fusion.core.grid import GridSpec

RES = 0.2
WINDOW = GridSpec(-20.0, -6.0, RES, 200, 60)


def _evidence(rng: np.random.Generator, spec: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    logodds = rng.normal(0.0, 1.2, spec.shape).astype(np.float32)
    known = rng.random(spec.shape) < 0.7
    logodds[known & (rng.random(spec.shape) < 0.02)] = np.nan          # known NaN: dropped cell by cell
    return logodds, known


def _padded(rng: np.random.Generator, spec: GridSpec, logodds: np.ndarray, known: np.ndarray, pad: tuple
            ) -> tuple[GridSpec, np.ndarray, np.ndarray]:
    """The same evidence inside a larger grid whose extra cells are unknown (holding garbage and NaN)."""
    left, right, below, above = pad
    big = GridSpec(spec.origin_x - left * RES, spec.origin_y - below * RES, RES,
                   spec.width + left + right, spec.height + below + above)
    lo = rng.normal(0.0, 50.0, big.shape).astype(np.float32)
    lo[rng.random(big.shape) < 0.1] = np.nan
    kn = np.zeros(big.shape, dtype=bool)
    lo[below:below + spec.height, left:left + spec.width] = logodds
    kn[below:below + spec.height, left:left + spec.width] = known
    return big, lo, kn


@pytest.mark.parametrize('cov', [None, np.array([[0.01, 0.0], [0.0, 0.01]]), np.array([[0.2, 0.05], [0.05, 0.1]])])
@pytest.mark.parametrize('seed', range(4))
def test_unknown_margins_around_the_evidence_change_no_cell(cov, seed):
    rng = np.random.default_rng(seed)
    a = CommonGrid(FusionConfig(WINDOW, {'v1': 1.0, 'v2': 0.8}))
    b = CommonGrid(FusionConfig(WINDOW, {'v1': 1.0, 'v2': 0.8}))
    t = 10**9
    for step in range(6):
        vid = 'v1' if step % 2 == 0 else 'v2'
        # Evidence partly outside the window, some of it late.
        spec = GridSpec(float(rng.integers(-35, 15)), -8.0 + float(rng.integers(0, 10)) * RES, RES,
                        int(rng.integers(100, 250)), int(rng.integers(20, 70)))
        logodds, known = _evidence(rng, spec)
        big, lo, kn = _padded(rng, spec, logodds, known, tuple(int(v) for v in rng.integers(0, 30, 4)))
        stamp = t + step * 100_000_000 - (150_000_000 if step == 4 else 0)
        now = t + step * 100_000_000 + 20_000_000
        ra = a.integrate(vid, spec, logodds, known, stamp, now, cov)
        rb = b.integrate(vid, big, lo, kn, stamp, now, cov)
        assert ra == rb
        np.testing.assert_array_equal(a.logodds, b.logodds)
        np.testing.assert_array_equal(a.observed, b.observed)
        np.testing.assert_array_equal(a.posterior_percent(), b.posterior_percent())
    assert np.count_nonzero(a.observed) > 100


def test_evidence_with_no_known_cell_is_accepted_and_changes_nothing():
    grid = CommonGrid(FusionConfig(WINDOW, {'v1': 1.0}))
    spec = GridSpec(0.0, 0.0, RES, 30, 20)
    r = grid.integrate('v1', spec, np.full(spec.shape, 2.0, np.float32), np.zeros(spec.shape, bool), 10**9, 10**9,
                       np.eye(2) * 0.05)
    assert r.accepted and r.cells == 0
    assert not grid.observed.any() and not grid.logodds.any()


def test_posterior_percent_is_logodds_to_percent_of_the_grid():
    from cooperative_fusion.core.grid import logodds_to_percent
    rng = np.random.default_rng(7)
    grid = CommonGrid(FusionConfig(WINDOW, {'v1': 1.0}, clamp_min=-8.0, clamp_max=8.0))
    spec = GridSpec(-18.0, -5.0, RES, 170, 45)
    lo = rng.normal(0.0, 3.0, spec.shape).astype(np.float32)
    lo[rng.random(spec.shape) < 0.3] = rng.choice([0.0, 0.02, -0.04, 4.59512, -4.59512, 7.9], 1)[0]
    known = rng.random(spec.shape) < 0.8
    grid.integrate('v1', spec, lo, known, 10**9, 10**9)
    grid.advance(13 * 10**8)                           # decayed: values between the round-half cases
    want = logodds_to_percent(grid.logodds, grid.known_mask())
    got = grid.posterior_percent()
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int8 and (got == -1).any() and (got > 90).any() and (got < 10).any()


@pytest.mark.parametrize('k', [2, 3, 5])
def test_coarser_evidence_is_repeated_cell_by_cell(k):
    from cooperative_fusion.core.fusion.common_grid import resample_to_resolution
    rng = np.random.default_rng(k)
    lo = rng.normal(size=(37, 53)).astype(np.float32)
    known = rng.random((37, 53)) < 0.5
    spec, got_l, got_k = resample_to_resolution(GridSpec(0.8, -1.6, RES * k, 53, 37), lo, known, RES)
    assert spec == GridSpec(0.8, -1.6, RES, 53 * k, 37 * k)
    np.testing.assert_array_equal(got_l, np.repeat(np.repeat(lo, k, axis=0), k, axis=1))
    np.testing.assert_array_equal(got_k, np.repeat(np.repeat(known, k, axis=0), k, axis=1))
    assert got_l.dtype == np.float32 and got_k.dtype == bool
