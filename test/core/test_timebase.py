from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError, SyncError
from cooperative_fusion.core.timebase import ClockEstimator, ClockFitConfig

EPOCH = 1_700_000_000_000_000_000   # ns since the epoch, as real stamps are


def vehicle_clock(common_ns: np.ndarray, offset_ns: int, drift_ppm: float) -> np.ndarray:
    """Vehicle stamps of common times: vehicle = common - offset - drift·(common - EPOCH)."""
    rel = common_ns - EPOCH
    return common_ns - offset_ns - np.rint(rel * drift_ppm * 1e-6).astype(np.int64)


@pytest.mark.parametrize('offset_ns', [200_000_000, -200_000_000])
def test_fit_recovers_offset_and_drift_and_rejects_outliers(offset_ns):
    rng = np.random.default_rng(0)
    common = EPOCH + np.arange(12) * 1_000_000_000
    vehicle = vehicle_clock(common, offset_ns, 50.0)
    jitter = rng.normal(0.0, 500_000, common.size).astype(np.int64)
    outliers = {4, 9}
    est = ClockEstimator(ClockFitConfig())
    accepted = []
    for k, (v, c) in enumerate(zip(vehicle, common + jitter)):
        c = int(c) + (100_000_000 if k in outliers else 0)
        accepted.append(est.add(int(v), c))
    assert [k for k, a in enumerate(accepted) if not a] == sorted(outliers)
    assert est.ready
    assert est.n_rejected == 2
    # Check the mapping on a dense set of stamps over the last 10 s (noise-free truth).
    truth_common = EPOCH + np.linspace(1e9, 11e9, 101).astype(np.int64)
    mapped = est.to_common(vehicle_clock(truth_common, offset_ns, 50.0))
    err = np.abs(mapped - truth_common)
    assert err.max() < 2_000_000, err.max()
    assert_allclose(est.drift_ppm, 50.0, atol=300.0)   # 0.5 ms jitter over 11 s bounds the drift loosely
    assert 200_000 < est.residual_ns < 1_000_000
    # offset_ns is the offset at the newest pair, which includes 11 s of drift.
    assert_allclose(est.offset_ns, offset_ns + 50e-6 * (common[-1] - EPOCH) * (1 - 50e-6), atol=1_000_000)


def test_scalar_and_array_agree_and_precision_is_kept():
    est = ClockEstimator()
    for k in range(5):
        est.add(EPOCH + k * 1_000_000_000, EPOCH + k * 1_000_000_000 + 123_456_789 + k * 100_000)
    assert est.ready
    assert_allclose(est.drift_ppm, 100.0, atol=1e-6)
    v = EPOCH + 2_500_000_000
    assert est.to_common(v) == v + 123_456_789 + 250_000
    arr = est.to_common(np.array([v, v + 1]))
    assert arr.dtype == np.int64
    assert list(arr) == [v + 123_456_789 + 250_000, v + 1 + 123_456_789 + 250_000]


def test_before_ready_uses_the_last_offset():
    est = ClockEstimator(ClockFitConfig(min_samples=3))
    with pytest.raises(SyncError, match='no time reference'):
        est.to_common(5)
    est.add(1_000, 5_000)
    est.add(2_000, 6_100)
    assert not est.ready
    assert est.to_common(10_000) == 14_100
    assert est.offset_ns == 4_100


def test_window_slides_and_clock_jump_restarts():
    cfg = ClockFitConfig(window_ns=5_000_000_000, min_samples=3)
    est = ClockEstimator(cfg)
    for k in range(10):
        est.add(k * 1_000_000_000, k * 1_000_000_000 + 7_000_000)
    assert est.n_samples == 6           # stamps 4..9 s lie within 5 s of the newest
    # The vehicle clock jumps by 1 s: three consistent rejections restart the fit.
    results = [est.add(k * 1_000_000_000 - 1_000_000_000, k * 1_000_000_000 + 7_000_000) for k in range(10, 13)]
    assert results == [False, False, False]
    assert est.offset_ns == 1_007_000_000
    assert est.ready


def test_drift_is_clamped():
    est = ClockEstimator(ClockFitConfig(max_drift_ppm=100.0, outlier_threshold_ns=10**9))
    for k in range(4):
        est.add(k * 1_000_000, k * 1_000_000 + k * 1_000)   # 1000 ppm over 3 ms
    assert_allclose(est.drift_ppm, 100.0)


@pytest.mark.parametrize('bad, match', [
    (dict(window_ns=0), 'window_ns must be > 0, got 0'),
    (dict(min_samples=1), 'min_samples must be >= 2, got 1'),
    (dict(outlier_threshold_ns=-1), 'outlier_threshold_ns must be > 0'),
    (dict(max_drift_ppm=float('inf')), 'max_drift_ppm must be a positive finite'),
])
def test_config_validation(bad, match):
    with pytest.raises(ConfigError, match=match):
        ClockFitConfig(**bad)


def test_bad_stamp_raises():
    est = ClockEstimator()
    with pytest.raises(SyncError, match=r'vehicle_ns must be a non-negative integer of nanoseconds, got 1\.5'):
        est.add(1.5, 2)
    with pytest.raises(SyncError, match='common_ns'):
        est.add(1, -2)


def test_scalar_path_equals_the_array_path_bit_for_bit():
    # Platoon.add_odometry maps one stamp per message on the scalar path; state_at maps arrays.
    rng = np.random.default_rng(3)
    est = ClockEstimator()
    for k in range(20):
        v = EPOCH + k * 100_000_000 + int(rng.integers(0, 1000))
        est.add(v, v + 87_654_321 + int(k * 4_321.5) + int(rng.integers(-3000, 3000)))
    assert est.ready and est.drift_ppm != 0.0
    stamps = EPOCH + rng.integers(-5_000_000_000, 5_000_000_000, 2000)
    assert [est.to_common(int(v)) for v in stamps] == est.to_common(stamps).tolist()
    assert [est.to_common(v) for v in stamps] == est.to_common(stamps).tolist()      # numpy scalars too
