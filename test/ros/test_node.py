"""The node scaffold on a real rclpy context: guarded callbacks, drop keys, /diagnostics, parameters -> config."""
from __future__ import annotations

import math
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
