"""downsample_known: the known crop of the downsampled cycle, computed on the known blocks only, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.share import (EvidenceSharer, ShareConfig, crop_to_known, downsample,
                                                   downsample_known, sum_on_union)


def _cycle(rng: np.random.Generator, known_fraction: float):
    spec = GridSpec(0.2 * int(rng.integers(-400, 400)), 0.2 * int(rng.integers(-400, 400)), 0.2,
                    int(rng.integers(1, 90)), int(rng.integers(1, 70)), float(rng.choice([0.0, 0.0349])))
    logodds = rng.normal(0.0, 1.0, spec.shape).astype(np.float32)
    known = np.zeros(spec.shape, dtype=bool)
    r0, c0 = int(rng.integers(0, spec.height)), int(rng.integers(0, spec.width))
    r1, c1 = int(rng.integers(r0, spec.height)) + 1, int(rng.integers(c0, spec.width)) + 1
    known[r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) < known_fraction
    logodds[rng.random(spec.shape) < 0.02] = np.nan          # not finite: unknown whatever the mask says
    return spec, logodds, known


@pytest.mark.parametrize('factor', [1, 2, 3, 4])
@pytest.mark.parametrize('seed', range(8))
def test_downsample_known_equals_downsample_then_crop(factor, seed):
    rng = np.random.default_rng(seed)
    for known_fraction in (0.0, 0.01, 0.5, 1.0):
        spec, logodds, known = _cycle(rng, known_fraction)
        want = crop_to_known(*downsample(*sum_on_union([(spec, logodds, known)]), factor, 0.4))
        got = downsample_known(spec, logodds, known, factor, 0.4)
        assert got[0] == want[0]
        assert got[1].dtype == np.float32 and got[1].tobytes() == want[1].tobytes()
        assert_array_equal(got[2], want[2])


def test_the_sharer_uses_it_for_one_cycle_known_crops():
    rng = np.random.default_rng(3)
    spec, logodds, known = _cycle(rng, 0.3)
    shared = EvidenceSharer(ShareConfig(resolution_m=0.4, crop='known'), 0.2).add(spec, logodds, known, 7, 0.0)
    want = downsample_known(spec, logodds, known, 2)
    assert shared.spec == want[0] and shared.cycles == 1 and shared.stamp_vehicle_ns == 7
    assert shared.logodds.tobytes() == want[1].tobytes()
