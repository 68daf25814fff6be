from __future__ import annotations

import math

import numpy as np
import pytest

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.link import LinkMonitor, age_limit_ns

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S


def stream(period_ms: float, n: int, delay_ms: float, jitter_ms: float = 0.0, seed: int = 0
           ) -> list[tuple[int, int]]:
    """(stamp, arrival) of a periodic stream with a normal delay, in arrival order."""
    rng = np.random.default_rng(seed)
    stamps = T0 + (np.arange(n) * period_ms * MS).astype(np.int64)
    arrivals = stamps + (np.maximum(rng.normal(delay_ms, jitter_ms, n), 0.0) * MS).astype(np.int64)
    order = np.argsort(arrivals, kind='stable')
    return [(int(stamps[i]), int(arrivals[i])) for i in order]


def test_latency_is_the_median_over_the_arrival_window():
    mon = LinkMonitor(window_ns=2 * S)
    for s, a in stream(100.0, 100, 300.0, 50.0):
        mon.add(s, a)
    lat = mon.latency_ns()
    assert lat == pytest.approx(300 * MS, abs=40 * MS)
    assert mon.latency_ns(quantile=0.95) > lat + 40 * MS            # the jitter's tail
    # The window ends at now: 2 s after the last arrival nothing is left.
    last = max(a for _s, a in stream(100.0, 100, 300.0, 50.0))
    assert mon.latency_ns(last + 3 * S) is None
    assert mon.reordered > 0                                        # 50 ms jitter on 100 ms overtakes
    assert mon.duplicates == 0 and mon.received == 100


def test_latency_needs_min_samples_and_resists_a_garbage_stamp():
    mon = LinkMonitor(window_ns=2 * S, min_samples=5, latency_cap_ns=1 * S)
    for k in range(4):
        mon.add(T0 + k * 100 * MS, T0 + k * 100 * MS + 20 * MS)
    assert mon.latency_ns() is None                                 # 4 < 5 samples
    mon.add(0, T0 + 450 * MS)                                       # a stamp at the epoch: clipped to 1 s
    mon.add(T0 + 500 * MS, T0 + 520 * MS)
    assert mon.latency_ns() == 20 * MS                              # the median does not move
    assert mon.latency_ns(quantile=1.0) == 1 * S                    # the cap


def test_missing_share_duplicates_and_reordering():
    mon = LinkMonitor(window_ns=10 * S, max_samples=200)
    pairs = [(s, a) for k, (s, a) in enumerate(stream(20.0, 200, 100.0)) if k % 4 != 1]   # a quarter lost
    for s, a in pairs:
        mon.add(s, a)
    assert mon.missing_share() == pytest.approx(0.25, abs=0.01)
    s, a = pairs[-1]
    mon.add(s, a + 5 * MS)                                          # a duplicate: not a received message
    mon.add(pairs[-3][0], a + 6 * MS)                               # again an old one
    assert mon.duplicates == 2
    assert mon.missing_share() == pytest.approx(0.25, abs=0.01)
    mon.add(pairs[-1][0] - 10 * MS, a + 7 * MS)                     # between two stamps: reordered, not dup
    assert mon.reordered == 1
    empty = LinkMonitor()
    assert math.isnan(empty.missing_share()) and empty.latency_ns() is None


def test_age_limit_adds_the_latency_up_to_the_cap():
    assert age_limit_ns(500 * MS, None, 500 * MS) == 500 * MS
    assert age_limit_ns(500 * MS, 380 * MS, 500 * MS) == 880 * MS
    assert age_limit_ns(500 * MS, 2 * S, 500 * MS) == 1 * S
    assert age_limit_ns(500 * MS, -30 * MS, 500 * MS) == 500 * MS
    assert age_limit_ns(300 * MS, 380 * MS, 0) == 300 * MS          # cap 0: fixed limits
    assert age_limit_ns(300 * MS, 380 * MS, 500 * MS, 100 * MS) == 580 * MS     # only the excess over nominal
    assert age_limit_ns(300 * MS, 60 * MS, 500 * MS, 100 * MS) == 300 * MS


@pytest.mark.parametrize('kwargs, match', [
    (dict(window_ns=0), 'window must be > 0'),
    (dict(max_samples=0), 'max_samples must be >= 1'),
    (dict(min_samples=70), r'min_samples must be in \[1, max_samples 64\], got 70'),
    (dict(latency_cap_ns=-1), 'latency cap must be >= 0'),
])
def test_monitor_rejects_bad_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LinkMonitor(**kwargs)
    with pytest.raises(ConfigError, match='quantile must be in'):
        LinkMonitor().latency_ns(quantile=1.5)


def _reference_missing_share(mon: LinkMonitor, now_ns: int | None) -> float:
    """missing_share as numpy computes it (np.unique, np.median of the steps)."""
    stamps = np.unique(np.array([s for s, _a in mon._window(now_ns)], dtype=np.int64))
    if stamps.size < 3:
        return math.nan
    period = float(np.median(np.diff(stamps)))
    if period <= 0:
        return math.nan
    expected = int(round((stamps[-1] - stamps[0]) / period)) + 1
    return max(0.0, 1.0 - stamps.size / expected) if expected > 0 else math.nan


def _reference_latency(mon: LinkMonitor, now_ns: int | None) -> int | None:
    """latency_ns (median) as np.quantile computes it over the clipped latencies."""
    win = mon._window(now_ns)
    if len(win) < mon.min_samples:
        return None
    lat = np.clip(np.array([float(a - s) for s, a in win]), 0.0, float(mon.latency_cap_ns))
    return int(round(float(np.quantile(lat, 0.5))))


def test_plain_int_statistics_equal_numpys_exactly():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        mon = LinkMonitor(window_ns=int(rng.choice([100 * MS, S, 2 * S])), max_samples=int(rng.choice([5, 8, 64])),
                          latency_cap_ns=int(rng.choice([0, 100 * MS, 10 * S])))
        t = T0
        for _k in range(int(rng.integers(0, 80))):
            t += int(rng.choice([20 * MS, 20 * MS, 40 * MS, 0, -20 * MS, 33_333_333, int(rng.integers(0, S))]))
            mon.add(t, t + int(rng.choice([int(rng.integers(-100 * MS, S)), int(rng.integers(-10 * S, 10 * S))])))
        now = None if rng.random() < 0.3 else t + int(rng.integers(0, 2 * S))
        expected, got = _reference_missing_share(mon, now), mon.missing_share(now)
        assert got == expected or (math.isnan(got) and math.isnan(expected))
        assert mon.latency_ns(now) == _reference_latency(mon, now)
