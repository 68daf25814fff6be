"""/diagnostics building blocks: status messages, drop counting, rates, latency.

Every node reports its health as DiagnosticStatus values (all strings, as
diagnostic_msgs demands). :class:`DropCounter` implements the project rule
"log once per cause, count every drop, go on"; :class:`RateMeter` and
:class:`LatencyStats` give the numbers a status carries.
"""
from __future__ import annotations

import math
import time
from collections import deque
from enum import IntEnum
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from ..core.errors import ConfigError
from .time import ns_to_stamp


class Level(IntEnum):
    """DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


def format_value(value: object) -> str:
    """A KeyValue string: floats with 6 significant digits, bools and ints as Python prints them."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f'{float(value):.6g}'
    return str(value)


def make_status(name: str, level: Level, message: str, values: Mapping[str, object],
                hardware_id: str = '') -> DiagnosticStatus:
    """A DiagnosticStatus with every value as a KeyValue string (floats to 6 significant digits).

    ``level`` is written as the single byte the ``byte``/``octet`` field holds.
    """
    return DiagnosticStatus(
        level=bytes([int(Level(level))]),
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=format_value(v)) for k, v in values.items()],
    )


def status_level(status: DiagnosticStatus) -> Level:
    """The level of a status as :class:`Level` (the message holds a byte)."""
    raw = status.level
    return Level(raw[0] if isinstance(raw, (bytes, bytearray)) else int(raw))


def make_array(stamp_ns: int, statuses: Iterable[DiagnosticStatus]) -> DiagnosticArray:
    """A DiagnosticArray stamped ``stamp_ns`` holding ``statuses``."""
    msg = DiagnosticArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.status = list(statuses)
    return msg


class DropCounter:
    """Counts dropped inputs by source and cause, and logs them without flooding.

    Keys (see ``ros/node.py`` for the scheme every node uses): ``<cause>`` for a
    drop without a source, ``<source>.<cause>`` for one with. The first drop of a
    key is logged at WARN with its detail; later ones of the same key at most
    once per ``interval_s`` (on ``clock``, wall time by default) with the running
    count.
    """

    def __init__(self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = float(interval_s)
        self._clock = clock
        self._counts: dict[tuple[str | None, str], int] = {}
        self._last_log: dict[tuple[str | None, str], float] = {}

    def count(self, cause: str, detail: str, logger: Any = None, source: str | None = None) -> bool:
        """Count one drop of ``cause`` from ``source``; log through ``logger`` (an rclpy logger) when due.

        Returns True for the first drop of this source and cause.
        """
        cause = str(getattr(cause, 'value', cause))
        key = (source, cause)
        n = self._counts.get(key, 0) + 1
        self._counts[key] = n
        if logger is None:
            return n == 1
        label = cause if source is None else f'{source}: {cause}'
        now = self._clock()
        last = self._last_log.get(key)
        if last is None:
            logger.warning(f'dropped input ({label}): {detail}')
        elif now - last >= self._interval_s:
            logger.warning(f'dropped input ({label}): {n} so far; latest: {detail}')
        else:
            return n == 1
        self._last_log[key] = now
        return n == 1

    @property
    def counts(self) -> dict[str, int]:
        """Drops per key, ``<cause>`` or ``<source>.<cause>`` (a copy)."""
        return {_key(source, cause): n for (source, cause), n in self._counts.items()}

    @property
    def by_cause(self) -> dict[str, int]:
        """Drops per cause, summed over the sources."""
        out: dict[str, int] = {}
        for (_, cause), n in self._counts.items():
            out[cause] = out.get(cause, 0) + n
        return out

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def as_values(self, prefix: str = 'drops.') -> dict[str, int]:
        """``{prefix + cause: n, prefix + source.cause: n, ..., prefix + 'total': total}`` for :func:`make_status`.

        ``prefix + cause`` sums every source; ``prefix + source.cause`` is there for drops with a source.
        """
        values = {f'{prefix}{cause}': n for cause, n in sorted(self.by_cause.items())}
        values.update({f'{prefix}{_key(source, cause)}': n
                       for (source, cause), n in sorted(self._counts.items(), key=lambda kv: _key(*kv[0]))
                       if source is not None})
        values[f'{prefix}total'] = self.total
        return values


def _key(source: str | None, cause: str) -> str:
    return cause if source is None else f'{source}.{cause}'


class RateMeter:
    """Message rate over a sliding window, on whatever clock the caller stamps ticks with.

    Once ticks span the window, the rate is the number of ticks in
    ``(now - window, now]`` over the window; before that, (n - 1) over the
    span of the ticks seen, so a fresh stream reads right at once. A tick
    earlier than the previous one by more than the window (a replay restart)
    starts afresh.
    """

    def __init__(self, window_s: float = 5.0) -> None:
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ConfigError(f'RateMeter window_s {window_s}: expected a finite number > 0')
        self._window_ns = int(window_s * 1e9)
        self._ticks: deque[int] = deque()
        self._first_ns: int | None = None

    @classmethod
    def for_reports(cls, report_period_s: float) -> RateMeter:
        """A meter whose window spans two reports every ``report_period_s`` seconds, and at least 1 s."""
        return cls(max(2.0 * report_period_s, 1.0))

    def tick(self, t_ns: int) -> None:
        t_ns = int(t_ns)
        if self._ticks and t_ns < self._ticks[-1] - self._window_ns:
            self._ticks.clear()
            self._first_ns = None
        if self._first_ns is None:
            self._first_ns = t_ns
        self._ticks.append(t_ns)
        self._prune(t_ns)

    def _prune(self, now_ns: int) -> None:
        horizon = now_ns - self._window_ns
        while self._ticks and self._ticks[0] <= horizon:
            self._ticks.popleft()

    def rate_hz(self, now_ns: int) -> float:
        """Ticks per second at ``now_ns``; 0.0 with fewer than two ticks or none in the window."""
        now_ns = int(now_ns)
        self._prune(now_ns)
        n = len(self._ticks)
        if self._first_ns is None or n == 0:
            return 0.0
        if now_ns - self._first_ns >= self._window_ns:
            return n * 1e9 / self._window_ns
        span = self._ticks[-1] - self._ticks[0]
        return (n - 1) * 1e9 / span if n >= 2 and span > 0 else 0.0


class LatencyStats:
    """Latest ``maxlen`` latencies in milliseconds and their percentiles."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=maxlen)

    def add(self, ms: float) -> None:
        """Record one latency; non-finite values are ignored."""
        if math.isfinite(ms):
            self._values.append(float(ms))

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100, linear interpolation), None when nothing was recorded."""
        if not self._values:
            return None
        return float(np.percentile(np.fromiter(self._values, dtype=np.float64, count=len(self._values)), q))

    def as_values(self, prefix: str = 'latency_ms.') -> dict[str, float | int]:
        """``{prefix + 'p50': ..., prefix + 'p95': ..., prefix + 'count': n}``; NaN percentiles when empty."""
        p50, p95 = self.percentile(50), self.percentile(95)
        return {f'{prefix}p50': math.nan if p50 is None else p50,
                f'{prefix}p95': math.nan if p95 is None else p95,
                f'{prefix}count': len(self._values)}
