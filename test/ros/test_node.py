"""The node scaffold on a real rclpy context: guarded callbacks, drop keys, /diagnostics, parameters -> config."""
from __future__ import annotations

import math
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from enum import Enum

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from cooperative_fusion.core.config_values import config_from_values
from cooperative_fusion.core.drops import Cause, DroppedInput, cause_of
from cooperative_fusion.core.errors import ConfigError, FrameError, MessageFormatError, SyncError
from cooperative_fusion.ros.diagnostics import Level, status_level
from cooperative_fusion.ros.node import BaseNode, Param
from cooperative_fusion.ros.params import params_files
from cooperative_fusion.ros.qos import diagnostics_qos


class Mode(Enum):
    FAST = 'fast'
    SAFE = 'safe'


@dataclass(frozen=True)
class EchoConfig:
    name: str
    rate_hz: float
    timeout_ns: int
    fov_rad: float
    mode: Mode = Mode.SAFE
    streams: tuple[str, ...] = ('a',)
    verbose: bool = False
    depth: int = 3


PARAMS = (
    Param('echo.name', 'echo', 'a name'),
    Param('echo.rate_hz', 10.0, 'a rate, Hz', 0.1, 100.0),
    Param('echo.timeout_s', 0.25, 'a timeout, seconds', 0.0, 10.0),
    Param('echo.fov_deg', 90.0, 'a field of view, degrees'),
    Param('echo.mode', 'fast', 'fast or safe'),
    Param('echo.streams', ['a', 'b'], 'stream names'),
    Param('diagnostics.period_s', 0.05, 'period of /diagnostics, seconds', 0.01, 10.0),
)


class FakeLogger:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.debug_lines: list[str] = []

    def debug(self, text: str) -> None:
        self.debug_lines.append(text)

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    def error(self, text: str) -> None:
        self.errors.append(text)

    def info(self, text: str) -> None:
        pass


class EchoNode(BaseNode):
    """Echoes String messages; 'bad' is malformed, 'old' a named drop, 'boom' a bug."""

    default_name = 'echo_node'

    def _setup(self) -> None:
        values = self.declare_params(PARAMS)
        self.cfg = self.config(EchoConfig, values, 'echo.')
        self.seen: list[str] = []
        self.create_subscription(String, 'text', self.guard('text', self._on_text), 10)
        self.start_diagnostics(values['diagnostics.period_s'], 'echo_node: test', hardware_id='test')

    def _on_text(self, msg: String) -> None:
        if msg.data == 'bad':
            raise MessageFormatError('text "bad": expected anything else')
        if msg.data == 'old':
            raise DroppedInput(Cause.TOO_OLD, 'text is too old')
        if msg.data == 'boom':
            raise ZeroDivisionError('a bug')
        self.seen.append(msg.data)

    def diagnostics_values(self) -> dict[str, object]:
        return {'seen': len(self.seen)}


@pytest.fixture
def echo(ros_context, executor):
    node = EchoNode(context=ros_context, namespace='/scaffold_test',
                    parameter_overrides=[Parameter('echo.rate_hz', value=20.0)])
    executor.add_node(node)
    return node


def test_guard_counts_drops_by_cause_and_keeps_going(ros_context, executor, spin, echo):
    log = FakeLogger()
    echo.get_logger = lambda: log                      # instance attribute: the scaffold logs through it
    peer = Node('echo_peer', context=ros_context, namespace='/scaffold_test')
    executor.add_node(peer)
    pub = peer.create_publisher(String, 'text', 10)
    assert spin(executor, lambda: pub.get_subscription_count() >= 1)
    for text in ('one', 'bad', 'two', 'boom', 'old', 'boom', 'three', 'bad'):
        pub.publish(String(data=text))
    assert spin(executor, lambda: len(echo.seen) == 3 and echo.drops.total == 5)
    assert echo.seen == ['one', 'two', 'three']            # the node went on after each drop
    assert echo.drops.counts == {'text.malformed': 2, 'text.internal': 2, 'text.too_old': 1}
    assert echo.drops.by_cause == {'malformed': 2, 'internal': 2, 'too_old': 1}
    # one warning per (source, cause) within the throttle interval; the traceback once
    assert sorted(log.warnings) == ['dropped input (text: internal): ZeroDivisionError: a bug',
                                    'dropped input (text: malformed): text "bad": expected anything else',
                                    'dropped input (text: too_old): text is too old']
    assert len(log.errors) == 1 and 'ZeroDivisionError: a bug' in log.errors[0]
    assert 'Traceback' in log.errors[0] and 'drops.text.internal' in log.errors[0]


def test_diagnostics_carry_the_drop_keys(ros_context, executor, spin, echo):
    got: list[DiagnosticArray] = []
    listener = Node('diag_listener', context=ros_context)
    listener.create_subscription(DiagnosticArray, '/diagnostics', got.append, diagnostics_qos())
    executor.add_node(listener)
    [(status,)] = [echo.diagnostics_statuses()]
    assert status_level(status) is Level.OK and {kv.key: kv.value for kv in status.values} == {
        'seen': '0', 'drops.total': '0'}
    bad = echo.guard('text', echo._on_text)
    bad(String(data='bad'))
    bad(String(data='ok'))
    echo.guard(None, lambda: (_ for _ in ()).throw(FrameError('no such frame')))()
    expected = {'seen': '1', 'drops.frame': '1', 'drops.malformed': '1', 'drops.text.malformed': '1',
                'drops.total': '2'}
    [(status,)] = [echo.diagnostics_statuses()]
    assert {kv.key: kv.value for kv in status.values} == expected
    assert status_level(status) is Level.WARN and status.message == '2 input(s) dropped since the last report'
    assert (status.name, status.hardware_id) == ('echo_node: test', 'test')
    [(status,)] = [echo.diagnostics_statuses()]         # nothing new since: OK, the counts stay
    assert status_level(status) is Level.OK and {kv.key: kv.value for kv in status.values} == expected
    # the scaffold's timer publishes the same status on /diagnostics
    assert spin(executor, lambda: any(s.name == 'echo_node: test' for m in got for s in m.status))
    status = next(s for m in got for s in m.status if s.name == 'echo_node: test')
    assert {kv.key: kv.value for kv in status.values} == expected


def test_parameters_fill_the_config_dataclass(echo):
    assert echo.cfg == EchoConfig(name='echo', rate_hz=20.0, timeout_ns=250_000_000, fov_rad=math.pi / 2,
                                  mode=Mode.FAST, streams=('a', 'b'))
    assert isinstance(echo.cfg.rate_hz, float) and echo.vehicle_id_from('') == 'scaffold_test'
    assert echo.vehicle_id_from('v7') == 'v7'


def test_bad_parameter_destroys_the_half_built_node(ros_context):
    with pytest.raises(ConfigError, match="parameter 'echo.mode': expected one of fast, safe, got 'slow'"):
        EchoNode(context=ros_context, parameter_overrides=[Parameter('echo.mode', value='slow')])
    node = EchoNode(context=ros_context)
    try:
        with pytest.raises(ConfigError, match='vehicle_id is empty and the node has no namespace'):
            node.vehicle_id_from('')
    finally:
        node.destroy_node()


VALUES = {'echo.name': 'e', 'echo.rate_hz': 5, 'echo.timeout_ms': 12.5, 'echo.fov_deg': 180.0,
          'echo.streams': ['x'], 'echo.verbose': True, 'other.thing': 1}


def test_config_from_plain_values_by_field_name():
    cfg = config_from_values(EchoConfig, VALUES, 'echo.')
    assert cfg == EchoConfig(name='e', rate_hz=5.0, timeout_ns=12_500_000, fov_rad=math.pi, streams=('x',),
                             verbose=True)
    assert type(cfg.rate_hz) is float and type(cfg.timeout_ns) is int
    # names where they differ, ignore what belongs elsewhere, given fields taken as they are
    values = {'e.label': 'n', 'e.rate_hz': 1.0, 'e.timeout_s': 2, 'e.fov_rad': 0.5, 'e.stride': 4}
    cfg = config_from_values(EchoConfig, values, 'e.', names={'name': 'label'}, ignore=('stride',), depth=9)
    assert cfg == EchoConfig(name='n', rate_hz=1.0, timeout_ns=2_000_000_000, fov_rad=0.5, depth=9)


@pytest.mark.parametrize('key, value, message', [
    ('echo.rate', 1.0, r"unknown parameter\(s\) echo\.rate: EchoConfig has no such field"),
    ('echo.rate_hz', 'fast', r"parameter 'echo\.rate_hz': expected float, got str 'fast'"),
    ('echo.verbose', 1, r"parameter 'echo\.verbose': expected bool, got int 1"),
    ('echo.depth', 2.0, r"parameter 'echo\.depth': expected int, got float 2\.0"),
    ('echo.depth', True, r"parameter 'echo\.depth': expected int, got bool True"),
    ('echo.streams', 'a', r"parameter 'echo\.streams': expected a list, got 'a'"),
    ('echo.streams', ['a', 3], r"parameter 'echo\.streams': expected str, got int 3"),
    ('echo.timeout_ms', 'x', r"parameter 'echo\.timeout_ms': expected float, got str 'x'"),
])
def test_config_rejects_unknown_and_mistyped_values(key, value, message):
    with pytest.raises(ConfigError, match=message):
        config_from_values(EchoConfig, {**VALUES, key: value}, 'echo.')


def test_config_needs_every_field_without_default():
    with pytest.raises(ConfigError, match=r'EchoConfig\.fov_rad: no parameter echo\.fov_rad'):
        config_from_values(EchoConfig, {k: v for k, v in VALUES.items() if k != 'echo.fov_deg'}, 'echo.')


@pytest.mark.parametrize('exc, cause', [
    (MessageFormatError('x'), 'malformed'), (FrameError('x'), 'frame'), (SyncError('x'), 'stamp'),
    (ConfigError('x'), 'invalid'), (DroppedInput('no_pose', 'x'), 'no_pose'), (KeyError('x'), 'internal'),
])
def test_cause_of_every_error(exc, cause):
    assert cause_of(exc) == cause


def test_dropped_input_takes_only_snake_case_causes():
    with pytest.raises(ValueError, match="drop cause 'No Pose': expected snake_case"):
        DroppedInput('No Pose', 'x')


# --------------------------------------------- logging, parameters, entry point (issues 12, 14) --

class LoggedEchoNode(EchoNode):
    """EchoNode whose logger is a FakeLogger from the start (set-up warnings included)."""

    log = FakeLogger()

    def get_logger(self):
        return self.log


def test_drops_by_design_are_counted_not_warned_and_others_summarised_per_cause(ros_context):
    node = LoggedEchoNode(context=ros_context)
    node.log = log = FakeLogger()
    now = [100.0]
    node._drop_log_clock = lambda: now[0]
    try:
        for _ in range(3):
            node.drop('sync', Cause.UNMATCHED, 'radar message at 5 ns')
        node.drop('camera', Cause.NO_CAMERA_INFO, 'depth image before any CameraInfo')
        assert log.warnings == [] and len(log.debug_lines) == 4
        assert 'dropped input (sync: unmatched, by design)' in log.debug_lines[0]
        assert node.drops.counts == {'sync.unmatched': 3, 'camera.no_camera_info': 1}   # still in /diagnostics
        # another cause: its first drop at once, then one summary per cause at most every 10 s
        assert node.drop('v1', Cause.TOO_OLD, 'stamp 1 is 2 s old') is True
        now[0] += 4.0
        node.drop('v2', Cause.TOO_OLD, 'stamp 2 is 3 s old')
        node.drop('v1', Cause.TOO_OLD, 'stamp 3 is 3 s old')
        assert log.warnings == ['dropped input (v1: too_old): stamp 1 is 2 s old']
        now[0] += 6.0
        node.drop('v2', Cause.TOO_OLD, 'stamp 4 is 4 s old')
        assert log.warnings[1:] == ['dropped input (too_old): 3 more in the last 10 s (v1: 1, v2: 2); '
                                    'latest (v2: too_old): stamp 4 is 4 s old']
        now[0] += 1.0
        node.drop('v1', Cause.TOO_OLD, 'stamp 5')
        assert len(log.warnings) == 2 and node.drops.by_cause['too_old'] == 5
    finally:
        node.destroy_node()


def test_unknown_parameter_is_a_warning_naming_the_closest_name(ros_context):
    LoggedEchoNode.log = log = FakeLogger()
    node = LoggedEchoNode(context=ros_context, parameter_overrides=[Parameter('echo.rate_hx', value=5.0),
                                                                    Parameter('echo.rate_hz', value=5.0)])
    try:
        assert log.warnings == ["unknown parameter 'echo.rate_hx' for /echo_node; did you mean 'echo.rate_hz'? "
                                "(ignored)"]
        assert node.cfg.rate_hz == 5.0
    finally:
        node.destroy_node()
    LoggedEchoNode.log = log = FakeLogger()
    EchoNode(context=ros_context, parameter_overrides=[Parameter('echo.rate_hz', value=5.0)]).destroy_node()
    assert log.warnings == []


def test_strict_parameters_turns_an_unknown_name_into_a_config_error(ros_context):
    with pytest.raises(ConfigError, match=r"unknown parameter 'echo\.timeout_sec' for /echo_node; did you mean "
                                          r"'echo\.timeout_s'\? \(strict_parameters is true\)"):
        EchoNode(context=ros_context, parameter_overrides=[Parameter('echo.timeout_sec', value=1.0),
                                                           Parameter('strict_parameters', value=True)])
    EchoNode(context=ros_context, parameter_overrides=[Parameter('strict_parameters', value=True)]).destroy_node()


def test_a_node_on_wall_time_that_hears_clock_says_to_set_use_sim_time(ros_context, executor, spin):
    from rosgraph_msgs.msg import Clock

    LoggedEchoNode.log = log = FakeLogger()
    node = LoggedEchoNode(context=ros_context, namespace='/clock_test')
    executor.add_node(node)
    peer = Node('clock_peer', context=ros_context)
    executor.add_node(peer)
    pub = peer.create_publisher(Clock, '/clock', 10)
    assert spin(executor, lambda: pub.get_subscription_count() >= 1)
    pub.publish(Clock())
    assert spin(executor, lambda: log.warnings)
    assert len(log.warnings) == 1 and 'use_sim_time:=true' in log.warnings[0] and '/clock' in log.warnings[0]
    assert pub.get_subscription_count() == 0 or spin(executor, lambda: pub.get_subscription_count() == 0)
    # on sim time there is nothing to say
    sim = LoggedEchoNode(context=ros_context, namespace='/clock_test2',
                         parameter_overrides=[Parameter('use_sim_time', value=True)])
    assert sim._clock_watch is None
    sim.destroy_node()


def test_params_files_are_read_from_the_ros_args_sections():
    argv = ['node', '--params-file', 'not_ros.yaml', '--ros-args', '--params-file', 'a.yaml', '-p', 'x:=1',
            '--params-file', 'b.yaml', '--', 'other', '--params-file', 'c.yaml']
    assert params_files(argv) == ['a.yaml', 'b.yaml']


# ----------------------------------------------------------- the console entry point, as a process --

def _node(*ros_args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'cooperative_fusion.nodes.twin_node', '--ros-args', *ros_args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.parametrize('content, problem', [
    (None, r'missing\.yaml: cannot read parameter file: No such file or directory'),
    ('a: [\n', r'broken\.yaml: not valid YAML: '),
    ('- 1\n', r'broken\.yaml: not a ROS 2 parameter file'),
])
def test_a_bad_params_file_is_one_line_and_status_2(tmp_path, content, problem):
    path = tmp_path / ('missing.yaml' if content is None else 'broken.yaml')
    if content is not None:
        path.write_text(content)
    proc = _node('--params-file', str(path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('twin_node: configuration error: '), err
    assert re.search(problem, lines[0]), lines[0]


def test_a_parameter_rcl_cannot_parse_is_one_line_and_status_2():
    proc = _node('-p', 'vehicles:=[v1, v2')
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()          # rcl's own log line of the error is held back
    assert len(lines) == 1 and lines[0].startswith("twin_node: configuration error: failed to initialize rcl: "
                                                   "Couldn't parse parameter override rule: '-p vehicles:=[v1, v2'"), err
    assert ', at /' not in lines[0]           # without rcl's source locations


def test_strict_parameters_on_the_command_line_exits_2_naming_the_closest(tmp_path):
    path = tmp_path / 'typo.yaml'
    path.write_text('/**:\n  ros__parameters:\n    diagnostics_period_sec: 1.0\n')
    proc = _node('--params-file', str(path), '-p', 'strict_parameters:=true')
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "unknown parameter 'diagnostics_period_sec' for /twin_node; did you mean" in err, err


def _sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize('inherited', ['default', 'ignored'])
def test_sigint_stops_a_node_with_status_130(inherited):
    proc = _node(preexec_fn=_sigint_ignored if inherited == 'ignored' else None)
    try:
        deadline = time.monotonic() + 120
        line = ''
        while 'twin: platoon' not in line:            # the node is up: its set-up line
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            line = proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert 'Traceback' not in err, err


# ---------------------------------------------------------------------- the executor, in process --

class TickingEchoNode(EchoNode):
    """An EchoNode with a guarded timer on its clock."""

    def _setup(self) -> None:
        super()._setup()
        self.ticks: list[int] = []
        self.create_guarded_timer(0.1, 'tick', lambda: self.ticks.append(self.now_ns()))


def test_the_executor_parameter_takes_events_or_single(ros_context):
    with pytest.raises(ConfigError, match=r"parameter 'executor' is 'multi'; expected one of events, single"):
        EchoNode(context=ros_context, parameter_overrides=[Parameter('executor', value='multi')])
    node = EchoNode(context=ros_context)
    assert node.executor_kind == 'events'     # the default
    node.destroy_node()


@pytest.mark.parametrize('kind', ['events', 'single'])
def test_spin_runs_subscriptions_and_sim_time_timers_until_shutdown(kind):
    import threading

    import rclpy
    from rclpy.context import Context
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    from cooperative_fusion.ros.node import spin
    from cooperative_fusion.ros.qos import clock_qos

    ctx = Context()
    rclpy.init(context=ctx, domain_id=random.SystemRandom().randint(1, 100))
    node = TickingEchoNode(context=ctx, namespace='/spin_test', parameter_overrides=[
        Parameter('executor', value=kind), Parameter('use_sim_time', value=True)])
    peer = Node('spin_peer', context=ctx)
    clock = peer.create_publisher(Clock, '/clock', clock_qos())
    text = peer.create_publisher(String, '/spin_test/text', 10)
    spinner = threading.Thread(target=spin, args=(node,), daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 60.0        # delivery deadline, not a timing check
        t_ns = 0
        while time.monotonic() < deadline and not (len(node.ticks) >= 5 and node.seen):
            if clock.get_subscription_count() and text.get_subscription_count():
                t_ns += 20_000_000
                clock.publish(Clock(clock=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)))
                text.publish(String(data='hello'))
            time.sleep(0.005)
        assert 'hello' in node.seen
        ticks = list(node.ticks)
        assert len(ticks) >= 5
        # a timer on sim time: every 0.1 s of /clock, stamped on that clock, no TimerInfo passed to the callback
        assert all(t % 100_000_000 < 20_000_000 for t in ticks) and ticks == sorted(ticks), ticks
        assert node.drops.counts == {}
    finally:
        rclpy.try_shutdown(context=ctx)
        spinner.join(timeout=30.0)
        alive = spinner.is_alive()
        node.destroy_node()
        peer.destroy_node()
    assert not alive, 'spin() did not return after the context shut down'
