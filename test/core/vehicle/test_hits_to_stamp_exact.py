"""hits_to_stamp (per-coordinate distances) against the plain (N, 2) computation it replaces, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.vehicle.sensor_models import MovingReturns, hits_to_stamp


def _plain(hits, hit_stamp_ns, movers, t_ns, radius_m):
    """The former hits_to_stamp: each return moved to every hit's time, squared distances summed over (x, y)."""
    t_hit = np.broadcast_to(np.asarray(hit_stamp_ns, dtype=np.int64), (len(hits),))
    dt_from_radar = (t_hit - int(movers.stamp_ns)).astype(np.float64) * 1e-9
    out = hits.copy()
    best = np.full(len(hits), radius_m * radius_m)
    which = np.full(len(hits), -1, dtype=np.int64)
    for m in range(len(movers.xy)):
        at = movers.xy[m][None, :] + dt_from_radar[:, None] * movers.velocity[m][None, :]
        d2 = ((hits - at) ** 2).sum(axis=1)
        closer = d2 <= best
        best[closer] = d2[closer]
        which[closer] = m
    moved = which >= 0
    out[moved] += movers.velocity[which[moved]] * ((int(t_ns) - t_hit[moved]).astype(np.float64) * 1e-9)[:, None]
    return out


@pytest.mark.parametrize('seed', range(6))
def test_hits_to_stamp_is_bit_identical_to_the_plain_loop(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 5000)), int(rng.integers(1, 12))
    hits = rng.uniform(-50.0, 50.0, (n, 2))
    movers = MovingReturns(hits[rng.integers(0, n, m)] + rng.normal(0.0, 1.0, (m, 2)),
                           rng.normal(0.0, 15.0, (m, 2)), 10**9)
    # A sweeping lidar (a stamp per hit) and a camera (one stamp).
    for stamps in (10**9 + rng.integers(-60, 60, n) * 10**6, 10**9 + 30 * 10**6):
        got = hits_to_stamp(hits, stamps, movers, 10**9 + 50 * 10**6, 1.5)
        want = _plain(hits, stamps, movers, 10**9 + 50 * 10**6, 1.5)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        assert np.count_nonzero(np.any(got != hits, axis=1)) > 0


@pytest.mark.parametrize('chunk', [1, 7, 1 << 16])
def test_equally_near_returns_pick_the_last_as_the_loop_does(chunk, monkeypatch):
    from cooperative_fusion.core.vehicle import sensor_models
    monkeypatch.setattr(sensor_models, '_HITS_TO_STAMP_CELLS', chunk)
    rng = np.random.default_rng(11)
    hits = rng.uniform(-5.0, 5.0, (300, 2))
    xy = rng.uniform(-5.0, 5.0, (4, 2))
    # Each return twice, with other velocities: every hit near one has two equally near.
    movers = MovingReturns(np.concatenate([xy, xy]), rng.normal(0.0, 10.0, (8, 2)), 10**9)
    got = hits_to_stamp(hits, 10**9, movers, 10**9 + 50 * 10**6, 2.0)
    want = _plain(hits, 10**9, movers, 10**9 + 50 * 10**6, 2.0)
    assert got.tobytes() == want.tobytes()
    assert np.count_nonzero(np.any(got != hits, axis=1)) > 0
