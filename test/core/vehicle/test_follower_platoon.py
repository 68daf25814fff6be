"""A four-car platoon of AdvisoryFollowers on the closed loop's vehicle dynamics: the CACC holds the
scenarios' 15 m at 25 m/s without braking and passes the speed cycle's braking on without growing it."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.vehicle.follower import FollowerConfig, FollowerMode
from cooperative_fusion.core.vehicle.follower_core import FollowerCore, FollowerSetup
from cooperative_fusion.sim.dynamics import DynamicsConfig, LongitudinalDynamics, SpeedCommand

FRONT, REAR, LENGTH = 3.5, 1.0, 4.5
#: platoon_speed_cycle.yaml's leader profile (t s, v m/s)
CYCLE = ((0.0, 25.0), (2.0, 25.0), (4.0, 28.0), (5.0, 28.0), (9.0, 22.0), (10.0, 22.0), (14.0, 28.0),
         (15.0, 28.0), (19.0, 22.0), (20.0, 22.0))


def _platoon(profile: tuple[tuple[float, float], ...], n: int = 4, gap0: float = 15.0,
             duration_s: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Leader scripted, followers FollowerCore -> command every 0.1 s -> LongitudinalDynamics (10 ms steps,
    odometry at 50 Hz, exact). Returns (min gap per vehicle, max deceleration per vehicle)."""
    cfg = FollowerConfig(mode=FollowerMode.EGO)
    dyn = LongitudinalDynamics(n, DynamicsConfig())
    cores = [FollowerCore(FollowerSetup(f'v{i + 1}', None if i == 0 else f'v{i}', FRONT, REAR, LENGTH,
                                        follower=cfg)) for i in range(n)]
    ts, vs = [p[0] for p in profile], [p[1] for p in profile]
    s = -np.arange(n) * (gap0 + LENGTH)
    v, a = np.full(n, vs[0]), np.zeros(n)
    dt = 0.01
    min_gap, max_decel = np.full(n, np.inf), np.zeros(n)
    for k in range(int(round(duration_s / dt))):
        t_ns, t = k * 10_000_000, k * dt
        if k % 2 == 0:
            for i in range(n):
                cores[i].on_odometry(t_ns, s[i], 0.0, 0.0, v[i])
                if i + 1 < n:
                    cores[i + 1].on_predecessor_odometry(t_ns, s[i], 0.0, 0.0, v[i])
        if k % 10 == 0:
            for i in range(n):
                cmd, _ = cores[i].step(t_ns)
                dyn.receive(i, SpeedCommand(t_ns, cmd.target_speed_mps, cmd.accel_mps2, 0.1))
        script = float(np.interp(t, ts, vs))
        acc = dyn.accelerations(t_ns, v, a, dt, {0: (script, (float(np.interp(t + dt, ts, vs)) - script) / dt)})
        acc = np.where(np.isnan(acc), 0.0, acc)
        v_new = np.maximum(v + acc * dt, 0.0)
        s = s + 0.5 * (v + v_new) * dt
        a, v = (v_new - v) / dt, v_new
        min_gap[1:] = np.minimum(min_gap[1:], s[:-1] - REAR - (s[1:] + FRONT))
        max_decel = np.maximum(max_decel, -a)
    return min_gap, max_decel


def test_the_scenarios_gaps_hold_without_braking() -> None:
    min_gap, max_decel = _platoon(((0.0, 25.0), (20.0, 25.0)))
    assert min_gap[1:] == pytest.approx([15.0] * 3, abs=0.01)
    assert max_decel == pytest.approx([0.0] * 4, abs=1e-6)


def test_the_speed_cycle_braking_does_not_grow_down_the_platoon() -> None:
    min_gap, max_decel = _platoon(CYCLE)
    leader = max_decel[0]
    assert 1.5 <= leader <= 1.7                                     # 28 -> 22 m/s in 4 s
    # measured 1.70, 1.73, 1.76 vs 1.65 (1.68, 1.70, 1.71 before the floor stopped 5 m, not 3 m, behind a
    # predecessor taken to its stop: issue 16's min_gap_m >= 5 behind a stopping platoon)
    assert np.all(max_decel[1:] <= 1.08 * leader)
    assert np.all(np.diff(max_decel[1:]) <= 0.04)                   # 0.035, 0.027
    assert np.all(min_gap[1:] >= 13.0)                               # 3 + 0.48 * 22 = 13.6 at the low speed
