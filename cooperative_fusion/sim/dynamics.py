"""Longitudinal dynamics of a platoon vehicle in closed loop: it tracks its latest command.

A command (received at common time ``stamp_ns``: ``speed_mps`` to have ``period_s`` later and
the acceleration ``accel_mps2`` that implies, as the advisory_follower publishes them) is a
reference speed ``v_ref(t) = max(0, speed_mps + accel_mps2 · (t − stamp_ns − period_s))``. It reaches
the actuators after a pure delay (``actuation_delay_s``); from then on the controller asks for
``a_req = accel_mps2 + speed_gain_per_s · (v_ref − v)``, clipped to ``[−max_decel_mps2,
max_accel_mps2]``; the achieved acceleration follows ``a_req`` through a
first-order lag (``lag_time_constant_s``) and changes by at most ``max_jerk_mps3`` per second;
speed stays within ``[0, max_speed_mps]``. A command not followed by another holds its reference
speed from ``command_hold_s`` after its target time on (no feed-forward): a silent follower leaves
the vehicle at a steady speed, not accelerating or braking for ever.
A vehicle with a scripted profile (the leader; a follower with its own ``speed_profile``)
takes the script as its cruise set speed: it tracks ``min(script, command)``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from ..core.errors import ConfigError

__all__ = ['DynamicsConfig', 'SpeedCommand', 'LongitudinalDynamics']


@dataclass(frozen=True)
class DynamicsConfig:
    """Vehicle-model limits and actuation, shared by every platoon vehicle of a scenario.

    max_speed_mps : top speed, m/s
    max_accel_mps2 : strongest acceleration, m/s²
    max_decel_mps2 : strongest braking (positive), m/s²
    max_jerk_mps3 : largest change of acceleration, m/s³
    actuation_delay_s : pure delay from a command's stamp to the actuators, s
    lag_time_constant_s : first-order lag of the achieved acceleration, s (0: none)
    speed_gain_per_s : gain of the speed-tracking term, 1/s
    command_hold_s : how long past its target time a command's acceleration still shapes the reference, s
    """

    max_speed_mps: float = 40.0
    max_accel_mps2: float = 2.5
    max_decel_mps2: float = 8.0
    max_jerk_mps3: float = 15.0
    actuation_delay_s: float = 0.2
    lag_time_constant_s: float = 0.1
    speed_gain_per_s: float = 1.0
    command_hold_s: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            positive = f.name not in ('actuation_delay_s', 'lag_time_constant_s', 'command_hold_s')
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or value < 0 or (positive and value == 0)):
                raise ConfigError(f'vehicle_dynamics.{f.name}: got {value!r}, expected a finite number '
                                  f'{"> 0" if positive else ">= 0"}')


@dataclass(frozen=True)
class SpeedCommand:
    """A longitudinal command received at ``stamp_ns``: the speed (m/s) to have ``period_s`` later and the
    acceleration (m/s²) that implies."""

    stamp_ns: int
    speed_mps: float
    accel_mps2: float = 0.0
    period_s: float = 0.0


class LongitudinalDynamics:
    """The commanded platoon vehicles' speed and acceleration, stepped by the world.

    n : number of platoon vehicles (index 0 is the leader)
    """

    def __init__(self, n: int, config: DynamicsConfig) -> None:
        self.config = config
        self.n = n
        self._pending: list[deque[SpeedCommand]] = [deque() for _ in range(n)]
        self._active: list[SpeedCommand | None] = [None] * n
        self._delay_ns = int(round(config.actuation_delay_s * 1e9))
        self.commands_received = 0

    def receive(self, index: int, command: SpeedCommand) -> None:
        """Queue ``command`` for platoon vehicle ``index`` (commands of one vehicle in stamp order)."""
        if not (0 <= index < self.n):
            raise ConfigError(f'platoon vehicle index {index} out of range 0..{self.n - 1}')
        if not (math.isfinite(command.speed_mps) and math.isfinite(command.accel_mps2)):
            raise ConfigError(f'command for platoon vehicle {index} is not finite: {command}')
        self._pending[index].append(command)
        self.commands_received += 1

    def _activate(self, t_ns: int) -> None:
        delay_ns = self._delay_ns
        for i, queue in enumerate(self._pending):
            while queue and queue[0].stamp_ns + delay_ns <= t_ns:
                self._active[i] = queue.popleft()

    def controlled(self, t_ns: int) -> NDArray[np.bool_]:
        """(n,) True for the vehicles whose actuators have a command at common time ``t_ns``."""
        self._activate(t_ns)
        return np.array([c is not None for c in self._active], dtype=bool)

    def accelerations(self, t_ns: int, v: NDArray[np.float64], a: NDArray[np.float64], dt_s: float,
                      cruise_mps: dict[int, tuple[float, float]]) -> NDArray[np.float64]:
        """Achieved accelerations (n,) m/s² over the step starting at ``t_ns`` (controlled vehicles only;
        the others get NaN).

        v, a : (n,) speed m/s and acceleration m/s² at the step start
        cruise_mps : vehicle index -> (set speed m/s, its rate m/s²) of a scripted vehicle at the step start
        """
        cfg = self.config
        self._activate(t_ns)
        out = np.full(self.n, np.nan)
        for i, cmd in enumerate(self._active):
            if cmd is None:
                continue
            since_s = (t_ns - cmd.stamp_ns) * 1e-9 - cmd.period_s
            a_ff = cmd.accel_mps2 if since_s <= cfg.command_hold_s else 0.0
            target = max(cmd.speed_mps + cmd.accel_mps2 * min(since_s, cfg.command_hold_s), 0.0)
            if target == 0.0:
                a_ff = max(a_ff, 0.0)     # the reference has stopped: no feed-forward braking past it
            if i in cruise_mps and cruise_mps[i][0] < target:
                target, a_ff = cruise_mps[i]
            a_req = min(max(a_ff + cfg.speed_gain_per_s * (target - v[i]), -cfg.max_decel_mps2), cfg.max_accel_mps2)
            lag = 1.0 if cfg.lag_time_constant_s == 0 else min(1.0, dt_s / cfg.lag_time_constant_s)
            step = (a_req - a[i]) * lag
            jerk = cfg.max_jerk_mps3 * dt_s
            out[i] = a[i] + min(max(step, -jerk), jerk)
        return out
