"""core.vehicle.share: downsampling on the global lattice, per-period sums, crops (what a vehicle publishes)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.common_grid import CommonGrid, FusionConfig, resample_to_resolution
from cooperative_fusion.core.grid import GridSpec, logodds_to_percent, percent_to_logodds, prob_to_logodds
from cooperative_fusion.core.vehicle.share import (CropMode, EvidenceSharer, ShareConfig, block_reduce, crop_to_corridor,
                                           crop_to_known, downsample, lattice_factor, sum_on_union)

HIT = float(prob_to_logodds(np.float32(0.85)))     # lidar p_hit
MISS = float(prob_to_logodds(np.float32(0.35)))    # lidar p_miss


def free_with_one_hit(spec: GridSpec, iy: int, ix: int) -> tuple[np.ndarray, np.ndarray]:
    logodds = np.full(spec.shape, MISS, np.float32)
    logodds[iy, ix] = HIT
    return logodds, np.ones(spec.shape, bool)


@pytest.mark.parametrize('factor', [2, 3, 4])
def test_one_cell_object_stays_occupied_where_mean_or_sum_would_lose_it(factor):
    # origin (1.2, -0.6) is on the 0.2 lattice but not on the coarse one for every factor: blocks are
    # aligned to the global lattice, not to the window
    spec = GridSpec(1.2, -0.6, 0.2, 13, 9)
    logodds, known = free_with_one_hit(spec, 4, 7)
    out, low, kow = downsample(spec, logodds, known, factor)
    res = factor * 0.2
    assert out.resolution == pytest.approx(res)
    for origin in (out.origin_x, out.origin_y):
        assert origin / res == pytest.approx(round(origin / res), abs=1e-6)     # coarse origin on the coarse lattice
    hit_xy = np.array([[spec.origin_x + 7.5 * 0.2, spec.origin_y + 4.5 * 0.2]])
    cx, cy = out.world_to_cell(hit_xy)
    assert low[cy[0], cx[0]] == pytest.approx(HIT)                             # occupied wins
    assert kow.all()
    assert np.count_nonzero(low > 0) == 1
    assert_allclose(low[low < 0], MISS, rtol=1e-6)
    # the alternatives, on a full block holding the hit: the mean and the sum are not occupied any more
    block = np.full((factor, factor), MISS)
    block[0, 0] = HIT
    assert block.mean() < 0.0 and block.sum() < 0.0


def test_block_without_confident_hit_takes_the_mean_of_its_known_cells():
    spec = GridSpec(0.0, 0.0, 0.2, 2, 2)
    logodds = np.array([[0.3, -1.0], [0.0, 5.0]], np.float32)
    known = np.array([[True, True], [False, False]])
    _, low, kow = downsample(spec, logodds, known, 2)
    assert_allclose(low, [[-0.35]])      # the unknown 5.0 does not count
    assert kow.all()
    _, low, kow = downsample(spec, logodds, np.zeros((2, 2), bool), 2)
    assert not kow.any() and low[0, 0] == 0.0


def test_fusion_resamples_the_coarse_evidence_back_onto_its_lattice():
    """The fusion grid at 0.2 m accepts 0.4 m evidence: the hit lands on the 2x2 block holding it."""
    spec = GridSpec(10.2, -3.4, 0.2, 40, 30)
    logodds, known = free_with_one_hit(spec, 11, 17)
    coarse = downsample(spec, logodds, known, 2)
    # through the message encoding the fusion node reads
    cells = logodds_to_percent(coarse[1], coarse[2])
    l_in, k_in = percent_to_logodds(cells)
    common = CommonGrid(FusionConfig(spec=GridSpec(0.0, -10.0, 0.2, 150, 100), vehicle_weights={'v1': 1.0}))
    result = common.integrate('v1', coarse[0], l_in, k_in, 1_000, 1_000)
    assert result.accepted, result.reason
    post = common.logodds
    hx, hy = common.spec.world_to_cell(np.array([[spec.origin_x + 17.5 * 0.2, spec.origin_y + 11.5 * 0.2]]))
    assert post[hy[0], hx[0]] > 1.5
    occupied = np.argwhere(post > 0)
    assert len(occupied) == 4                                        # one 0.4 m cell = 2 x 2 fine cells
    assert (np.abs(occupied - [hy[0], hx[0]]) <= 1).all()
    out, _, _ = resample_to_resolution(*coarse, 0.2, common.spec)
    assert out.resolution == pytest.approx(0.2)
    assert common.spec.lattice_offset(out) is not None


def test_sum_over_a_share_period_equals_the_sum_of_its_cycles():
    """Each cycle's evidence is in exactly one share: nothing lost, nothing doubled (moving windows)."""
    rng = np.random.default_rng(0)
    sharer = EvidenceSharer(ShareConfig(resolution_m=0.2, period_cycles=3), 0.2)
    cycles, shares = [], []
    for n in range(9):
        spec = GridSpec(round(0.2 * (5 * n), 6), round(0.2 * (n % 2), 6), 0.2, 30, 20)   # the window rolls
        logodds = rng.normal(0.0, 1.0, spec.shape).astype(np.float32)
        known = rng.random(spec.shape) < 0.7
        cycles.append((spec, logodds, known))
        shared = sharer.add(spec, logodds, known, 1000 + n, 0.0)
        if shared is not None:
            shares.append(shared)
        assert (shared is not None) == (n % 3 == 2)
    assert [s.stamp_vehicle_ns for s in shares] == [1002, 1005, 1008]
    assert [s.cycles for s in shares] == [3, 3, 3]
    assert sharer.pending == 0

    def total(grids) -> dict[tuple[int, int], float]:
        out: dict[tuple[int, int], float] = {}
        for spec, logodds, known in grids:
            iy, ix = np.nonzero(known)
            gx = np.rint(spec.origin_x / 0.2).astype(int) + ix
            gy = np.rint(spec.origin_y / 0.2).astype(int) + iy
            for key, value in zip(zip(gx.tolist(), gy.tolist()), logodds[iy, ix].tolist()):
                out[key] = out.get(key, 0.0) + value
        return out

    expected = total(cycles)
    got = total([(s.spec, s.logodds, s.known) for s in shares])
    assert got.keys() == expected.keys()
    assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)
    # and a share holds exactly its own cycles
    first = total(cycles[:3])
    got_first = total([(shares[0].spec, shares[0].logodds, shares[0].known)])
    assert got_first.keys() == first.keys()


def test_default_share_is_the_cycle_itself():
    spec = GridSpec(-4.0, 2.0, 0.2, 20, 10)
    rng = np.random.default_rng(1)
    logodds = rng.normal(0.0, 1.0, spec.shape).astype(np.float32)
    known = rng.random(spec.shape) < 0.5
    shared = EvidenceSharer(ShareConfig(), 0.2).add(spec, logodds, known, 7, 0.0)
    assert shared.spec == spec and shared.cycles == 1
    assert_array_equal(logodds_to_percent(shared.logodds, shared.known), logodds_to_percent(logodds, known))


def test_crop_to_known_keeps_every_known_cell_on_the_lattice():
    spec = GridSpec(-2.4, 1.6, 0.4, 50, 30)
    rng = np.random.default_rng(2)
    logodds = rng.normal(0.0, 1.0, spec.shape).astype(np.float32)
    known = np.zeros(spec.shape, bool)
    known[7:19, 11:40] = rng.random((12, 29)) < 0.3
    known[7, 11] = known[18, 39] = True
    out, low, kow = crop_to_known(spec, logodds, known)
    assert (out.width, out.height) == (29, 12)
    assert out.origin_x == pytest.approx(-2.4 + 11 * 0.4) and out.origin_y == pytest.approx(1.6 + 7 * 0.4)
    assert spec.lattice_offset(out) == (11, 7)
    assert kow.sum() == known.sum()
    assert_array_equal(low[kow], logodds[known])
    # nothing known: one unknown cell, still a valid grid
    out, low, kow = crop_to_known(spec, logodds, np.zeros(spec.shape, bool))
    assert (out.width, out.height) == (1, 1) and not kow.any()


def test_corridor_keeps_the_band_around_the_vehicle_and_drops_the_rest():
    spec = GridSpec(0.0, -20.0, 0.4, 100, 100)       # y from -20 to 20 m
    known = np.ones(spec.shape, bool)
    logodds = np.zeros(spec.shape, np.float32)
    out, _, kow = crop_to_corridor(spec, logodds, known, center_y_m=2.0, half_width_m=6.0)
    assert out.origin_y == pytest.approx(-4.0) and out.size_y == pytest.approx(12.0)
    assert kow.all() and out.width == 100
    assert spec.lattice_offset(out) == (0, 40)


def test_sharer_with_coarse_cells_and_known_crop_is_small_and_keeps_the_hit():
    spec = GridSpec(20.0, -20.0, 0.2, 500, 200)            # 100 x 40 m, like the vehicle window
    logodds = np.zeros(spec.shape, np.float32)
    known = np.zeros(spec.shape, bool)
    known[80:120, 0:300] = True                            # the sensors fill the road ahead only
    logodds[80:120, 0:300] = MISS
    logodds[100, 250] = HIT
    sharer = EvidenceSharer(ShareConfig(resolution_m=0.4, crop=CropMode.KNOWN), 0.2)
    shared = sharer.add(spec, logodds, known, 1, 0.0)
    assert shared.logodds.size == 20 * 150                 # 8 x 60 m at 0.4 m instead of 100 000 cells
    assert shared.logodds.max() == pytest.approx(HIT)


def test_bad_share_config_is_rejected():
    with pytest.raises(ConfigError, match='whole multiple'):
        lattice_factor(0.3, 0.2)
    with pytest.raises(ConfigError, match='whole multiple'):
        EvidenceSharer(ShareConfig(resolution_m=0.1), 0.2)
    with pytest.raises(ConfigError, match='crop must be one of none, known, corridor'):
        ShareConfig(crop='box')
    with pytest.raises(ConfigError, match='period_cycles must be an integer >= 1'):
        ShareConfig(period_cycles=0)
    with pytest.raises(ConfigError, match='cannot sum grids of 0.4 m and 0.2 m'):
        sum_on_union([(GridSpec(0, 0, 0.2, 2, 2), np.zeros((2, 2)), np.ones((2, 2), bool)),
                      (GridSpec(0, 0, 0.4, 2, 2), np.zeros((2, 2)), np.ones((2, 2), bool))])
    assert lattice_factor(0.6, 0.2) == 3


# ------------------------------------------- strided block reductions equal the reshape ---

@pytest.mark.parametrize('k', [1, 2, 3, 4, 5, 7, 8, 9])
def test_block_reduce_equals_the_reshape_reduction_bit_for_bit(k):
    rng = np.random.default_rng(k)
    h, w = 11, 17
    a = (rng.standard_normal((h * k, w * k)) * 10.0 ** rng.uniform(-4, 4, (h * k, w * k))).astype(np.float32)
    a[rng.random(a.shape) < 0.3] = 0.0
    a[rng.random(a.shape) < 0.1] = -0.0
    blocks = a.reshape(h, k, w, k)
    assert block_reduce(a, k, np.add).tobytes() == blocks.sum(axis=(1, 3)).tobytes()
    assert block_reduce(a, k, np.maximum).tobytes() == blocks.max(axis=(1, 3)).tobytes()
    counts = rng.random((h * k, w * k)) < 0.5
    assert_array_equal(block_reduce(counts.view(np.uint8), k, np.add), counts.reshape(h, k, w, k).sum(axis=(1, 3)))
    with pytest.raises(ConfigError, match='divisible by k'):
        block_reduce(a[:-1], k + 1, np.add)


def _plain_downsample(spec, logodds, known, k, occupied_logodds):
    """The rule of the module docstring with np.pad and a (h, k, w, k) reshape."""
    logodds = np.asarray(logodds, dtype=np.float32)
    known = np.asarray(known, dtype=bool) & np.isfinite(logodds)
    i0, j0 = int(round(spec.origin_x / spec.resolution)), int(round(spec.origin_y / spec.resolution))
    px, py = i0 % k, j0 % k
    w, h = -(-(spec.width + px) // k), -(-(spec.height + py) // k)
    pad = ((py, h * k - spec.height - py), (px, w * k - spec.width - px))
    count = np.pad(known, pad).reshape(h, k, w, k).sum(axis=(1, 3))
    total = np.pad(np.where(known, logodds, 0.0).astype(np.float32), pad).reshape(h, k, w, k).sum(axis=(1, 3))
    peak = np.pad(np.where(known, logodds, -np.inf).astype(np.float32), pad,
                  constant_values=-np.inf).reshape(h, k, w, k).max(axis=(1, 3))
    mean = total / np.maximum(count, 1)
    out = np.where(peak >= np.float32(occupied_logodds), peak, mean)
    return np.where(count > 0, out, 0.0).astype(np.float32), count > 0


@pytest.mark.parametrize('k', [2, 3, 5, 8])
def test_downsample_equals_pad_and_reshape_bit_for_bit(k):
    rng = np.random.default_rng(10 + k)
    for _ in range(10):
        spec = GridSpec(0.2 * int(rng.integers(-50, 50)), 0.2 * int(rng.integers(-50, 50)), 0.2,
                        int(rng.integers(1, 60)), int(rng.integers(1, 60)))
        logodds = rng.normal(0.0, 1.5, spec.shape).astype(np.float32)
        logodds[rng.random(spec.shape) < 0.05] = np.nan
        known = rng.random(spec.shape) < 0.6
        _, got, got_known = downsample(spec, logodds, known, k, 0.4)
        want, want_known = _plain_downsample(spec, logodds, known, k, 0.4)
        assert got.tobytes() == want.tobytes()
        assert_array_equal(got_known, want_known)
