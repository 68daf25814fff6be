"""Closed-loop traffic: it follows the mover ahead in its lane (IDM) instead of driving through a platoon
vehicle that stops; open loop keeps it at constant speed (cut_in.yaml: c1 cuts in behind v1 at t = 5-8 s)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cooperative_fusion.sim.dynamics import LongitudinalDynamics, SpeedCommand
from cooperative_fusion.sim.world import PHYSICS_DT_NS, _Kinematics, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / 'config' / 'scenarios'
S = 1_000_000_000


def _drive(closed_loop: bool, duration_s: float = 20.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """v1 brakes to a stop at 3 m/s^2 from t = 9 s (closed loop: by commands; open loop: the same profile
    can only be scripted, so the open-loop run keeps v1 scripted). Returns per step: gap c1 -> v1 (road
    s, bumper to bumper; inf while c1 is not in v1's lane), c1's speed, v1's speed."""
    scn = load_scenario(SCENARIOS / 'cut_in.yaml')
    dyn = LongitudinalDynamics(len(scn.vehicle_ids), scn.dynamics) if closed_loop else None
    kin = _Kinematics(scn, dyn)
    n, c1 = kin.n_platoon, kin.n_platoon + [t.id for t in scn.traffic].index('c1')
    gaps, v_c1, v_v1 = [], [], []
    for k in range(int(duration_s * S / PHYSICS_DT_NS)):
        t_ns = k * PHYSICS_DT_NS
        if dyn is not None and k % 10 == 0:
            t = t_ns / S
            speed = max(25.0 - 3.0 * max(t + 0.1 - 9.0, 0.0), 0.0)
            dyn.receive(0, SpeedCommand(t_ns, speed, -3.0 if t >= 9.0 and speed > 0 else 0.0, 0.1))
        kin.step(t_ns)
        lanes = kin.lanes(kin.t)
        gap = kin.s[0] - kin.rear[0] - (kin.s[c1] + kin.front[c1]) if lanes[c1] == lanes[0] else np.inf
        gaps.append(gap)
        v_c1.append(kin.v[c1])
        v_v1.append(kin.v[0])
    assert n == 4
    return np.array(gaps), np.array(v_c1), np.array(v_v1)


def test_closed_loop_traffic_stops_behind_a_stopping_platoon_vehicle() -> None:
    gaps, v_c1, v_v1 = _drive(closed_loop=True)
    assert v_v1[-1] == 0.0                                       # v1 stopped
    assert np.isfinite(gaps).any()                               # c1 did cut in behind v1
    assert gaps.min() > 0.5                                      # and never reached it
    assert v_c1[-1] < 0.5                                        # it stopped behind v1
    assert v_c1[:300].max() <= 25.0 + 1e-9                       # its scripted speed is its desired speed


def test_open_loop_traffic_keeps_its_constant_speed() -> None:
    _, v_c1, _ = _drive(closed_loop=False, duration_s=8.0)
    assert np.all(v_c1 == 25.0)
