"""Map a vehicle's clock to the common (GNSS) timebase.

A vehicle publishes ``sensor_msgs/TimeReference`` pairs ``(stamp_vehicle_ns,
common_ns)``. :class:`ClockEstimator` fits the affine model

    common = vehicle + offset + drift · (vehicle - t_ref)

over a sliding window of pairs, where ``t_ref`` is the vehicle stamp of the
newest accepted pair, ``offset`` is in nanoseconds and ``drift`` is
dimensionless (ns per ns; ``drift_ppm = 1e6 · drift``). Stamps are centred on
``t_ref`` before they become float64, so nanoseconds since the epoch keep
their precision (the centred span of a 30 s window is exact in float64).

Fit: Theil–Sen (median of pairwise slopes, then median intercept) gives a
robust start; pairs whose residual exceeds ``outlier_threshold_ns`` are dropped
and the model is refitted by least squares on the inliers. The slope is
clamped to ``±max_drift_ppm``: a larger one is not a clock but a fit over too
short a span.

A new pair is gated against the current fit: if its residual exceeds the
threshold, :meth:`ClockEstimator.add` returns False and the pair is not used.
If ``min_samples`` pairs in a row are rejected and agree with each other, the
vehicle clock has jumped (reset, leap): the window restarts from them.

Until ``ready`` (fewer than ``min_samples`` inliers, or a zero span), the
mapping is offset-only from the newest pair: ``common = vehicle + (common_last
- vehicle_last)``.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError, SyncError


@dataclass(frozen=True)
class ClockFitConfig:
    """window_ns : pairs older than this (vehicle clock, behind the newest) leave the fit
    min_samples : inliers needed before the affine fit is used (>= 2)
    outlier_threshold_ns : residual beyond which a pair is an outlier
    max_drift_ppm : bound on the fitted drift
    """

    window_ns: int = 30_000_000_000
    min_samples: int = 3
    outlier_threshold_ns: int = 5_000_000
    max_drift_ppm: float = 500.0

    def __post_init__(self) -> None:
        if self.window_ns <= 0:
            raise ConfigError(f'window_ns must be > 0, got {self.window_ns}')
        if self.min_samples < 2:
            raise ConfigError(f'min_samples must be >= 2, got {self.min_samples}')
        if self.outlier_threshold_ns <= 0:
            raise ConfigError(f'outlier_threshold_ns must be > 0, got {self.outlier_threshold_ns}')
        if not (self.max_drift_ppm > 0 and np.isfinite(self.max_drift_ppm)):
            raise ConfigError(f'max_drift_ppm must be a positive finite number, got {self.max_drift_ppm}')


class ClockEstimator:
    """Robust sliding-window fit of one vehicle clock to common time (see the module docstring)."""

    def __init__(self, config: ClockFitConfig | None = None) -> None:
        self.config = config or ClockFitConfig()
        self._pairs: deque[tuple[int, int]] = deque()   # (vehicle_ns, common_ns), accepted
        self._rejected_run: list[tuple[int, int]] = []
        self._t_ref = 0
        self._offset = 0.0        # ns at t_ref
        self._drift = 0.0         # ns per ns
        self._residual = 0.0
        self._n_inliers = 0
        self._fitted = False
        self.n_rejected = 0

    # ---------------------------------------------------------------- public
    def add(self, vehicle_ns: int, common_ns: int) -> bool:
        """Add one pair; returns False when it is rejected as an outlier.

        Raises SyncError for a stamp that is not a non-negative integer.
        """
        for name, v in (('vehicle_ns', vehicle_ns), ('common_ns', common_ns)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise SyncError(f'{name} must be a non-negative integer of nanoseconds, got {v!r}')
        pair = (int(vehicle_ns), int(common_ns))
        if self._fitted:
            residual = pair[1] - self._predict_scalar(pair[0])
            if abs(residual) > self.config.outlier_threshold_ns:
                self.n_rejected += 1
                self._rejected_run.append(pair)
                if self._clock_jumped():
                    self._pairs = deque(self._rejected_run)
                    self._rejected_run = []
                    self._refit()
                return False
        self._rejected_run = []
        self._pairs.append(pair)
        self._refit()
        return True

    def to_common(self, vehicle_ns: int | NDArray[np.integer]) -> int | NDArray[np.int64]:
        """Common-time nanoseconds of vehicle-clock stamps (int or int64 array).

        Raises SyncError before the first pair.
        """
        if not self._pairs:
            raise SyncError('no time reference received yet: cannot map vehicle stamps to common time')
        if type(vehicle_ns) is int or np.ndim(vehicle_ns) == 0:
            # round() and np.rint both round half to even: the scalar and the array path agree exactly.
            return int(vehicle_ns) + int(round(self._correction(float(int(vehicle_ns) - self._t_ref))))
        v = np.asarray(vehicle_ns, dtype=np.int64)
        corr = self._correction((v - self._t_ref).astype(np.float64))
        return v + np.rint(corr).astype(np.int64)

    @property
    def offset_ns(self) -> int:
        """common - vehicle at the newest accepted pair's vehicle stamp, ns."""
        return int(round(self._offset))

    @property
    def drift_ppm(self) -> float:
        """Fitted drift, parts per million (0 until ready)."""
        return self._drift * 1e6

    @property
    def residual_ns(self) -> float:
        """RMS residual of the inliers of the current fit, ns (0 until ready)."""
        return self._residual

    @property
    def n_samples(self) -> int:
        """Accepted pairs in the window."""
        return len(self._pairs)

    @property
    def ready(self) -> bool:
        """True when the affine fit (offset and drift) is in use."""
        return self._fitted

    # --------------------------------------------------------------- private
    def _correction(self, dt: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
        return self._offset + self._drift * dt

    def _predict_scalar(self, vehicle_ns: int) -> float:
        return vehicle_ns + self._correction(float(vehicle_ns - self._t_ref))

    def _clock_jumped(self) -> bool:
        run = self._rejected_run
        if len(run) < self.config.min_samples:
            return False
        offsets = np.array([c - v for v, c in run[-self.config.min_samples:]], dtype=np.int64)
        return bool(np.ptp(offsets) <= 2 * self.config.outlier_threshold_ns)

    def _refit(self) -> None:
        cfg = self.config
        newest = max(v for v, _ in self._pairs)
        while self._pairs and self._pairs[0][0] < newest - cfg.window_ns:
            self._pairs.popleft()
        # Out-of-order pairs can sit behind the deque head; filter them too.
        if any(v < newest - cfg.window_ns for v, _ in self._pairs):
            self._pairs = deque(p for p in self._pairs if p[0] >= newest - cfg.window_ns)
        arr = np.array(self._pairs, dtype=np.int64)
        self._t_ref = int(newest)
        t = (arr[:, 0] - self._t_ref).astype(np.float64)          # ns, centred: exact
        off = (arr[:, 1] - arr[:, 0]).astype(np.float64)          # ns
        last = arr[np.argmax(arr[:, 0])]
        self._fitted = False
        self._offset, self._drift, self._residual, self._n_inliers = float(last[1] - last[0]), 0.0, 0.0, 0
        if len(arr) < cfg.min_samples or np.ptp(t) <= 0:
            return
        max_drift = cfg.max_drift_ppm * 1e-6
        i, j = np.triu_indices(len(t), k=1)
        dt = t[j] - t[i]
        ok = dt != 0
        slope = float(np.clip(np.median((off[j] - off[i])[ok] / dt[ok]), -max_drift, max_drift))
        intercept = float(np.median(off - slope * t))
        inl = np.abs(off - (intercept + slope * t)) <= cfg.outlier_threshold_ns
        if inl.sum() < cfg.min_samples or np.ptp(t[inl]) <= 0:
            return
        a = np.stack([np.ones(int(inl.sum())), t[inl]], axis=1)
        (intercept, slope), *_ = np.linalg.lstsq(a, off[inl], rcond=None)
        slope = float(np.clip(slope, -max_drift, max_drift))
        if abs(slope) == max_drift:   # clamped: refit the offset alone
            intercept = float(np.mean(off[inl] - slope * t[inl]))
        res = off[inl] - (intercept + slope * t[inl])
        self._offset, self._drift = float(intercept), slope
        self._residual = float(np.sqrt(np.mean(res ** 2)))
        self._n_inliers = int(inl.sum())
        self._fitted = True
