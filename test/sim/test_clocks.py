from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.sim.clocks import ClockConfig, VehicleClock


def test_offset_and_drift_without_jitter():
    clock = VehicleClock(ClockConfig(offset_ms=-150.0, drift_ppm=50.0))
    assert clock.to_vehicle_ns(0) == -150_000_000
    # 10 s at 50 ppm = 0.5 ms of drift.
    assert clock.to_vehicle_ns(10_000_000_000) == 10_000_000_000 - 150_000_000 + 500_000


def test_jitter_statistics_and_clip():
    clock = VehicleClock(ClockConfig(offset_ms=20.0, jitter_ms=2.0), np.random.default_rng(0))
    common = np.arange(20000, dtype=np.int64) * 10_000_000
    err = (np.array([clock.to_vehicle_ns(int(t)) for t in common]) - common - 20_000_000) / 1e6
    assert_allclose(err.mean(), 0.0, atol=0.05)
    assert_allclose(err.std(), 2.0, rtol=0.05)
    assert np.abs(err).max() <= 6.0 + 1e-6
    scalar_err = [(clock.to_vehicle_ns(0) - 20_000_000) / 1e6 for _ in range(200)]
    assert 1.5 < np.std(scalar_err) < 2.5


def test_same_seed_same_stamps():
    a = VehicleClock(ClockConfig(jitter_ms=1.0), np.random.default_rng(3))
    b = VehicleClock(ClockConfig(jitter_ms=1.0), np.random.default_rng(3))
    assert [a.to_vehicle_ns(k) for k in range(5)] == [b.to_vehicle_ns(k) for k in range(5)]


@pytest.mark.parametrize('kw,pattern', [
    (dict(jitter_ms=-1.0), r'jitter_ms must be >= 0, got -1.0'),
    (dict(offset_ms=float('inf')), r'offset_ms must be a finite number, got inf'),
    (dict(drift_ppm=2e4), r'drift_ppm must be within'),
])
def test_invalid(kw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        ClockConfig(**kw)
