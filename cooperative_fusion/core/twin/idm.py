"""Intelligent Driver Model (Treiber, Hennecke, Helbing, 2000), vectorised over vehicles.

The IDM gives a follower's acceleration from its speed ``v``, the speed of the
vehicle ahead ``v_lead`` and the bumper-to-bumper gap ``s``::

    a = a_max · (1 − (v / v0)^δ − (s*(v, Δv) / s)^2)
    s*(v, Δv) = s0 + max(0, v·T + v·Δv / (2·sqrt(a_max·b)))      Δv = v − v_lead

A gap of ``inf`` means a free road (only the first two terms remain).
:func:`idm_step` integrates one step ballistically and never lets a speed go
below zero (the vehicle stops within the step instead of rolling backwards).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError

#: Gaps below this (metres) are treated as this value, so a collision or an
#: overlap yields a very large but finite deceleration instead of a division by zero.
MIN_GAP_M = 1e-3


@dataclass(frozen=True)
class IdmParams:
    """IDM parameters.

    v0_mps : desired speed, m/s
    time_headway_s : desired time gap T, s
    a_max : maximum acceleration, m/s²
    b_comf : comfortable deceleration (positive), m/s²
    s0_m : jam distance (minimum gap at standstill), m
    delta : acceleration exponent δ (dimensionless)
    """

    v0_mps: float = 25.0
    time_headway_s: float = 1.2
    a_max: float = 1.5
    b_comf: float = 2.0
    s0_m: float = 2.0
    delta: float = 4.0

    def __post_init__(self) -> None:
        for name in ('v0_mps', 'a_max', 'b_comf', 'delta'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f'IdmParams.{name} must be a positive finite number, got {value!r}')
        for name in ('time_headway_s', 's0_m'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f'IdmParams.{name} must be a finite number >= 0, got {value!r}')


def free_road_acceleration(v: NDArray[np.floating], params: IdmParams,
                           v0_mps: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
    """IDM acceleration with no vehicle ahead: a_max·(1 − (v/v0)^δ).

    v : (N,) speeds, m/s (negative speeds are treated as 0). Returns (N,) m/s².
    v0_mps : (N,) per-vehicle desired speeds (> 0) instead of ``params.v0_mps``
    """
    v = np.maximum(np.asarray(v, dtype=np.float64), 0.0)
    v0 = params.v0_mps if v0_mps is None else desired_speeds(v0_mps)
    return params.a_max * (1.0 - (v / v0) ** params.delta)


def desired_speeds(v0_mps: NDArray[np.floating]) -> NDArray[np.float64]:
    """``v0_mps`` as float64 desired speeds, m/s; raises ConfigError unless all are positive and finite."""
    v0 = np.asarray(v0_mps, dtype=np.float64)
    if not np.all(np.isfinite(v0) & (v0 > 0)):
        raise ConfigError(f'desired speeds must be positive finite m/s, got {v0.tolist()}')
    return v0


def desired_gap(v: NDArray[np.floating], v_lead: NDArray[np.floating], params: IdmParams) -> NDArray[np.float64]:
    """IDM desired gap s*(v, Δv), metres, (N,)."""
    v = np.maximum(np.asarray(v, dtype=np.float64), 0.0)
    dv = v - np.asarray(v_lead, dtype=np.float64)
    dynamic = v * params.time_headway_s + v * dv / (2.0 * math.sqrt(params.a_max * params.b_comf))
    return params.s0_m + np.maximum(0.0, dynamic)


def idm_acceleration(v: NDArray[np.floating], v_lead: NDArray[np.floating], gap_m: NDArray[np.floating],
                     params: IdmParams, v0_mps: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
    """IDM acceleration, vectorised over vehicles.

    v : (N,) follower speeds, m/s
    v_lead : (N,) speeds of the vehicles ahead, m/s (ignored where the gap is inf)
    gap_m : (N,) bumper-to-bumper gaps, metres; ``inf`` = free road
    v0_mps : (N,) per-vehicle desired speeds instead of ``params.v0_mps`` (None: the parameter)
    Returns (N,) accelerations, m/s² (unbounded below: a gap far smaller than
    s* brakes hard, as the model says).
    """
    v, v_lead, gap = np.broadcast_arrays(np.asarray(v, dtype=np.float64), np.asarray(v_lead, dtype=np.float64),
                                         np.asarray(gap_m, dtype=np.float64))
    check_no_nan(v, gap)
    v0 = params.v0_mps if v0_mps is None else desired_speeds(v0_mps)
    return idm_acceleration_unchecked(v, v_lead, gap, params, v0)


def check_no_nan(v: NDArray[np.float64], gap: NDArray[np.float64]) -> None:
    """Raise ConfigError if a speed or a gap is NaN (the check :func:`idm_acceleration` makes)."""
    if np.isnan(gap).any() or np.isnan(v).any():
        raise ConfigError(f'idm_acceleration: NaN in speeds or gaps (v={v.tolist()}, gap={gap.tolist()})')


def idm_acceleration_unchecked(v: NDArray[np.float64], v_lead: NDArray[np.float64], gap: NDArray[np.float64],
                               params: IdmParams, v0: float | NDArray[np.float64]) -> NDArray[np.float64]:
    """:func:`idm_acceleration`, same arithmetic, for (N,) float64 arrays already checked (no NaN speed or
    gap, ``v0`` positive finite): for loops that check their constants once."""
    free = params.a_max * (1.0 - (np.maximum(v, 0.0) / v0) ** params.delta)
    finite = np.isfinite(gap)
    v_lead_safe = np.where(finite, v_lead, v)
    s_star = desired_gap(v, v_lead_safe, params)
    gap_safe = np.where(finite, np.maximum(gap, MIN_GAP_M), np.inf)
    interaction = (s_star / gap_safe) ** 2
    return free - params.a_max * interaction


def idm_step(x: NDArray[np.floating], v: NDArray[np.floating], a: NDArray[np.floating],
             dt: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ballistic update of positions and speeds over ``dt`` seconds at constant acceleration.

    x : (N,) positions, m; v : (N,) speeds, m/s (>= 0); a : (N,) accelerations, m/s².
    A vehicle whose speed would turn negative within the step stops exactly
    where it reaches v = 0 (x + v²/(2|a|)) and stays there: no backwards motion.
    Returns the new ``(x, v)``.
    """
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError(f'idm_step: dt must be a positive finite number of seconds, got {dt!r}')
    x = np.asarray(x, dtype=np.float64)
    v = np.maximum(np.asarray(v, dtype=np.float64), 0.0)
    a = np.asarray(a, dtype=np.float64)
    v_new = v + a * dt
    stops = v_new < 0.0
    x_new = x + v * dt + 0.5 * a * dt * dt
    if stops.any():                 # most steps stop no vehicle: no stopping-point arithmetic then
        with np.errstate(divide='ignore', invalid='ignore'):
            x_stop = x - np.where(stops, v * v / (2.0 * np.where(stops, a, -1.0)), 0.0)
        x_new = np.where(stops, x_stop, x_new)
    return x_new, np.maximum(v_new, 0.0)
