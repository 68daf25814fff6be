"""Closed-loop vehicle dynamics: the model alone, and the world taking commands between physics steps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.sim.dynamics import DynamicsConfig, LongitudinalDynamics, SpeedCommand
from cooperative_fusion.sim.events import EventKind
from cooperative_fusion.sim.scenario import scenario_from_dict
from cooperative_fusion.sim.world import PHYSICS_DT_NS, Simulation

SCENARIOS = Path(__file__).resolve().parents[2] / 'config' / 'scenarios'
S = 1_000_000_000
START = S          # start_time_s of the shipped scenarios
DT = PHYSICS_DT_NS * 1e-9


def lean(name: str = 'highway_occlusion', **top) -> object:
    """A shipped scenario with every sensor off (truth only: fast), plus top-level overrides."""
    raw = yaml.safe_load((SCENARIOS / f'{name}.yaml').read_text())
    for v in raw['platoon']['vehicles']:
        for sensor in ('lidar', 'radar', 'camera'):
            v['sensors'][sensor]['enabled'] = False
    raw.update(top)
    return scenario_from_dict(raw, name)


class Script:
    """A Control that issues given commands once the world asks for a time at or past their stamp."""

    def __init__(self, commands: list[tuple[str, SpeedCommand]]) -> None:
        self.todo = sorted(commands, key=lambda c: c[1].stamp_ns)
        self.asked: list[int] = []

    def commands(self, t_ns: int) -> list[tuple[str, SpeedCommand]]:
        self.asked.append(t_ns)
        out = [c for c in self.todo if c[1].stamp_ns <= t_ns]
        self.todo = self.todo[len(out):]
        return out


def truth_speeds(events, vid: str) -> tuple[np.ndarray, np.ndarray]:
    """(t_s common, speed m/s) of ``vid`` from /truth/odom."""
    rows = [(e.log_time_ns, e.data['pose'].linear_velocity[0]) for e in events
            if e.kind is EventKind.TRUTH_ODOM and e.topic == f'/truth/odom/{vid}']
    a = np.array(rows, dtype=np.float64)
    return a[:, 0] * 1e-9, a[:, 1]


# ------------------------------------------------------------------------------------------ model

def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match=r'vehicle_dynamics.max_jerk_mps3: got 0.0, expected a finite number > 0'):
        DynamicsConfig(max_jerk_mps3=0.0)
    with pytest.raises(ConfigError, match=r'actuation_delay_s: got -0.1, expected a finite number >= 0'):
        DynamicsConfig(actuation_delay_s=-0.1)
    assert DynamicsConfig(actuation_delay_s=0.0, lag_time_constant_s=0.0).actuation_delay_s == 0.0


def test_scenario_key_vehicle_dynamics() -> None:
    scn = lean(vehicle_dynamics={'actuation_delay_s': 0.5, 'max_decel_mps2': 6.0})
    assert scn.dynamics == DynamicsConfig(actuation_delay_s=0.5, max_decel_mps2=6.0)
    assert lean().dynamics == DynamicsConfig()
    with pytest.raises(ConfigError, match=r'vehicle_dynamics.max_decel_mps2: got -1, expected a number > 0'):
        lean(vehicle_dynamics={'max_decel_mps2': -1})
    with pytest.raises(ConfigError, match=r'vehicle_dynamics.brakes: unknown key'):
        lean(vehicle_dynamics={'brakes': 1})


def test_command_acts_after_the_delay_and_within_limits() -> None:
    cfg = DynamicsConfig(actuation_delay_s=0.2, max_decel_mps2=5.0, max_jerk_mps3=10.0, lag_time_constant_s=0.1)
    dyn = LongitudinalDynamics(2, cfg)
    dyn.receive(1, SpeedCommand(1 * S, 0.0, -9.0, 0.1))
    v, a = np.array([20.0, 20.0]), np.zeros(2)
    accel = []
    for k in range(600):
        t_ns = S + k * PHYSICS_DT_NS
        ctrl = dyn.controlled(t_ns)
        assert not ctrl[0]
        assert ctrl[1] == (k * PHYSICS_DT_NS >= 200_000_000)
        if not ctrl[1]:
            accel.append(0.0)
            continue
        a1 = dyn.accelerations(t_ns, v, a, DT, {})[1]
        v[1] = max(v[1] + a1 * DT, 0.0)
        a[1] = a1
        accel.append(a1)
    accel = np.array(accel)
    assert (accel[:20] == 0).all() and accel[20] < 0            # nothing before the delay, then braking
    assert accel.min() == pytest.approx(-5.0, abs=1e-9)          # clipped to the vehicle's limit
    assert np.abs(np.diff(accel)).max() <= 10.0 * DT + 1e-9      # jerk limit
    assert 0.0 <= v[1] < 0.5                                     # it comes (almost) to a stop


def test_leader_cruise_caps_the_command() -> None:
    dyn = LongitudinalDynamics(1, DynamicsConfig(actuation_delay_s=0.0, lag_time_constant_s=0.0,
                                                 max_jerk_mps3=1e6, speed_gain_per_s=1.0))
    dyn.receive(0, SpeedCommand(0, 30.0, 0.0, 0.0))
    # Command 30 m/s but a set speed of 20 m/s: track 20 (gain 1/s, 25 -> 20: -5 m/s²).
    assert dyn.accelerations(0, np.array([25.0]), np.zeros(1), DT, {0: (20.0, 0.0)})[0] == pytest.approx(-5.0)
    # A set speed above the command: the command wins.
    dyn.receive(0, SpeedCommand(0, 10.0, 0.0, 0.0))
    assert dyn.accelerations(0, np.array([12.0]), np.zeros(1), DT, {0: (20.0, 0.0)})[0] == pytest.approx(-2.0)


def test_a_silent_follower_leaves_a_steady_speed() -> None:
    cfg = DynamicsConfig(actuation_delay_s=0.0, lag_time_constant_s=0.0, max_jerk_mps3=1e6, command_hold_s=0.5)
    dyn = LongitudinalDynamics(1, cfg)
    dyn.receive(0, SpeedCommand(0, 20.1, 1.0, 0.1))           # +1 m/s², then nothing more
    v = np.array([20.0])
    for k in range(1000):                                    # 10 s
        v[0] += dyn.accelerations(k * PHYSICS_DT_NS, v, np.zeros(1), DT, {})[0] * DT
    # Reference: 20.1 m/s at 0.1 s, +1 m/s² for 0.5 s more, then held at 20.6 m/s.
    assert v[0] == pytest.approx(20.6, abs=0.01)


def test_bad_command_is_refused() -> None:
    dyn = LongitudinalDynamics(2, DynamicsConfig())
    with pytest.raises(ConfigError, match='out of range'):
        dyn.receive(2, SpeedCommand(0, 1.0))
    with pytest.raises(ConfigError, match='not finite'):
        dyn.receive(0, SpeedCommand(0, float('nan')))


# ------------------------------------------------------------------------------------------ world

@pytest.fixture(scope='module')
def scenario():
    return lean(vehicle_dynamics={'actuation_delay_s': 0.2, 'max_decel_mps2': 6.0, 'max_jerk_mps3': 10.0})


@pytest.fixture(scope='module')
def open_loop(scenario):
    return list(Simulation(scenario).events(4.0))


def test_no_command_is_open_loop(scenario, open_loop) -> None:
    control = Script([])
    closed = list(Simulation(scenario).events(4.0, control=control))
    assert [(e.topic, e.log_time_ns) for e in closed] == [(e.topic, e.log_time_ns) for e in open_loop]
    for a, b in zip(closed[1:], open_loop[1:]):
        if a.kind is EventKind.TRUTH_ODOM:
            assert_allclose(a.data['pose'].position, b.data['pose'].position, rtol=0, atol=0)
    assert closed[0].kind is EventKind.TRUTH_META and '"closed_loop": true' in closed[0].data['json']
    # Asked before every physics step, for the step's end, in order.
    assert control.asked[0] == START + PHYSICS_DT_NS and control.asked[-1] == START + 4 * S
    assert np.all(np.diff(control.asked) == PHYSICS_DT_NS)


def test_a_follower_commanded_to_slow_slows(scenario, open_loop) -> None:
    stamp = START + 2 * S
    closed = list(Simulation(scenario).events(4.0, control=Script([('v3', SpeedCommand(stamp, 15.0, 0.0, 0.1))])))
    t, v = truth_speeds(closed, 'v3')
    t0, v0 = truth_speeds(open_loop, 'v3')
    assert_allclose(t, t0)
    acts = t >= (stamp * 1e-9 + 0.2)
    assert_allclose(v[~acts], v0[~acts], atol=1e-9)               # identical before the delay has passed
    assert v[-1] < 18.0 and v0[-1] > 24.0                          # it slowed down; open loop did not
    a = np.diff(v) / np.diff(t)                                    # truth odometry at 50 Hz
    assert a.min() >= -6.0 - 1e-6                                  # within the braking limit
    assert np.abs(np.diff(a)).max() <= 10.0 * 0.02 + 1e-6          # and the jerk limit
    # The leader and the truck ahead are untouched; v4 behind (IDM, no command) reacts to v3.
    for vid in ('v1', 'v2'):
        assert_allclose(truth_speeds(closed, vid)[1], truth_speeds(open_loop, vid)[1], atol=1e-9)
    assert truth_speeds(closed, 'v4')[1][-1] < truth_speeds(open_loop, 'v4')[1][-1] - 1.0


def test_same_commands_same_events(scenario) -> None:
    def run():
        cmds = [('v1', SpeedCommand(START + S, 20.0, -1.0, 0.1)), ('v4', SpeedCommand(START + S + 5, 22.0))]
        return [(e.topic, e.log_time_ns, e.data['pose'].position.tobytes()) for e in
                Simulation(scenario).events(2.0, control=Script(cmds)) if e.kind is EventKind.TRUTH_ODOM]
    assert run() == run()


def test_unknown_vehicle_command_is_an_error(scenario) -> None:
    with pytest.raises(ConfigError, match=r"a command for 'v9', which is not a platoon vehicle"):
        list(Simulation(scenario).events(1.0, control=Script([('v9', SpeedCommand(START, 1.0))])))
