"""What a receiver can measure of one input link: latency, missing messages, reordering, duplicates.

A message carries a stamp in common time (or one mapped to it) and arrives at
a receive time on the receiver's clock (common time too). :class:`LinkMonitor`
keeps the recent ``(stamp, arrival)`` pairs of one stream, over
``window_ns`` of arrival time and at most ``max_samples`` of them, and reports:

* latency (arrival - stamp): a quantile over the window, each sample clipped
  to ``[0, latency_cap_ns]``, and only from ``min_samples`` samples on, so one
  garbage stamp (decades old, or ahead) moves a median by at most one rank and
  never beyond the cap;
* missing share: ``1 - received / expected`` over the window, where expected
  counts the stamps a stream of the median stamp period would have had
  between the oldest and the newest stamp (duplicates count once; a message
  lost at either end of the window is not seen, so a short window under-counts);
* reordered (a stamp older than the newest seen) and duplicate (a stamp seen
  already) messages, counted since the start.

:func:`age_limit_ns` turns a latency into the age limit of data from that
link: the configured limit plus the measured latency beyond the nominal one
the limit was set for, the addition capped.
Data that waits ``L`` in the network arrives ``L`` old; a limit that ignores
``L`` drops everything on a slow link although it is still useful when
extrapolated (a moving object at its speed).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from .errors import ConfigError


def age_limit_ns(base_ns: int, latency_ns: int | None, cap_ns: int, nominal_ns: int = 0) -> int:
    """``base_ns + min(max(latency_ns - nominal_ns, 0), cap_ns)``; ``base_ns`` when the latency is unknown.

    nominal_ns : the latency ``base_ns`` already allows for (only the excess is added)
    """
    if latency_ns is None:
        return int(base_ns)
    return int(base_ns) + min(max(int(latency_ns) - int(nominal_ns), 0), int(cap_ns))


class LinkMonitor:
    """Latency, missing share, reordering and duplicates of one stream (see the module docstring)."""

    def __init__(self, window_ns: int = 2_000_000_000, max_samples: int = 64,
                 latency_cap_ns: int = 10_000_000_000, min_samples: int = 5) -> None:
        if window_ns <= 0:
            raise ConfigError(f'link window must be > 0 ns, got {window_ns}')
        if max_samples < 1:
            raise ConfigError(f'link max_samples must be >= 1, got {max_samples}')
        if not 1 <= min_samples <= max_samples:
            raise ConfigError(f'link min_samples must be in [1, max_samples {max_samples}], got {min_samples}')
        if latency_cap_ns < 0:
            raise ConfigError(f'link latency cap must be >= 0 ns, got {latency_cap_ns}')
        self.window_ns = int(window_ns)
        self.latency_cap_ns = int(latency_cap_ns)
        self.min_samples = int(min_samples)
        self._samples: deque[tuple[int, int]] = deque(maxlen=int(max_samples))   # (stamp, arrival)
        self._newest_stamp: int | None = None
        self._recent: deque[int] = deque(maxlen=int(max_samples))    # stamps, for duplicate detection
        self.received = 0
        self.reordered = 0
        self.duplicates = 0

    def add(self, stamp_ns: int, arrival_ns: int) -> None:
        """Note one message stamped ``stamp_ns`` that arrived at ``arrival_ns`` (both common time, ns)."""
        stamp_ns, arrival_ns = int(stamp_ns), int(arrival_ns)
        self.received += 1
        if stamp_ns in self._recent:
            self.duplicates += 1
        elif self._newest_stamp is not None and stamp_ns < self._newest_stamp:
            self.reordered += 1
        self._recent.append(stamp_ns)
        self._newest_stamp = stamp_ns if self._newest_stamp is None else max(self._newest_stamp, stamp_ns)
        self._samples.append((stamp_ns, arrival_ns))

    def _window(self, now_ns: int | None) -> list[tuple[int, int]]:
        if not self._samples:
            return []
        end = max(a for _s, a in self._samples) if now_ns is None else int(now_ns)
        return [(s, a) for s, a in self._samples if end - a <= self.window_ns]

    def latency_ns(self, now_ns: int | None = None, quantile: float = 0.5) -> int | None:
        """The ``quantile`` of arrival - stamp over the window (clipped samples), ns; None with fewer than
        ``min_samples`` samples in the window.

        now_ns : end of the window (default: the newest arrival)
        """
        if not 0.0 <= quantile <= 1.0:
            raise ConfigError(f'quantile must be in [0, 1], got {quantile!r}')
        win = self._window(now_ns)
        if len(win) < self.min_samples:
            return None
        cap = float(self.latency_cap_ns)
        if quantile == 0.5:
            # np.quantile's median, without its overhead (called per message): the middle value, or
            # its interpolation b - (b - a) * 0.5 between the middle two (numpy's rounding). The clip
            # is monotone, so only the middle two of the sorted latencies need it.
            lat = sorted([a - s for s, a in win])
            n = len(lat)
            lo, hi = min(max(float(lat[(n - 1) // 2]), 0.0), cap), min(max(float(lat[n // 2]), 0.0), cap)
            return int(round(hi - (hi - lo) * 0.5 if n % 2 == 0 else lo))
        lat = sorted(min(max(float(a - s), 0.0), cap) for s, a in win)
        return int(round(float(np.quantile(np.array(lat), quantile))))

    def missing_share(self, now_ns: int | None = None) -> float:
        """Share of the stream's messages missing over the window, in [0, 1]; NaN with fewer than 3 stamps."""
        # Plain ints, not numpy (called per cycle and vehicle): unique sorted stamps, and the median of
        # their steps as np.median takes it (the middle one, or the float mean of the middle two).
        stamps = sorted({s for s, _a in self._window(now_ns)})
        n = len(stamps)
        if n < 3:
            return math.nan
        steps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
        mid = len(steps) // 2
        period = float(steps[mid]) if len(steps) % 2 else (float(steps[mid - 1]) + float(steps[mid])) / 2.0
        if period <= 0:
            return math.nan
        expected = int(round((stamps[-1] - stamps[0]) / period)) + 1
        return max(0.0, 1.0 - n / expected) if expected > 0 else math.nan
