"""Vehicle clocks: how a vehicle's stamps relate to the common (GNSS) timebase.

vehicle_ns = common_ns + offset + drift_ppm·1e-6·common_ns + jitter

``offset`` and ``drift`` are fixed per vehicle; ``jitter`` is drawn per stamp,
Gaussian with standard deviation ``jitter_ms``, clipped at ±3σ (a stamp is
never wildly off, as a real driver's timestamp is not).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError


@dataclass(frozen=True)
class ClockConfig:
    """offset_ms : vehicle − common at common time 0, ms; drift_ppm : rate error, parts per million;
    jitter_ms : per-stamp Gaussian noise (σ), ms."""

    offset_ms: float = 0.0
    drift_ppm: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ('offset_ms', 'drift_ppm', 'jitter_ms'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ConfigError(f'ClockConfig.{name} must be a finite number, got {value!r}')
        if self.jitter_ms < 0:
            raise ConfigError(f'ClockConfig.jitter_ms must be >= 0, got {self.jitter_ms!r}')
        if abs(self.drift_ppm) >= 1e4:
            raise ConfigError(f'ClockConfig.drift_ppm must be within ±10000 ppm, got {self.drift_ppm!r}')


class VehicleClock:
    """Maps common time to one vehicle's clock; owns the jitter random stream."""

    def __init__(self, config: ClockConfig, rng: np.random.Generator | None = None) -> None:
        self.config = config
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._offset_ns = int(round(config.offset_ms * 1e6))
        self._jitter_ns = config.jitter_ms * 1e6

    def ideal_ns(self, common_ns: int) -> int:
        """Vehicle clock at ``common_ns`` without jitter (offset + drift), integer ns."""
        return int(common_ns) + self._offset_ns + int(round(self.config.drift_ppm * 1e-6 * int(common_ns)))

    def to_vehicle_ns(self, common_ns: int) -> int:
        """One stamp in the vehicle clock, jitter included, integer ns."""
        stamp = self.ideal_ns(common_ns)
        if self._jitter_ns > 0:
            stamp += int(round(float(np.clip(self._rng.standard_normal(), -3.0, 3.0)) * self._jitter_ns))
        return stamp
