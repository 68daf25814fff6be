"""The replay command: BagPlayer pacing, and a live replay into an rclpy subscriber."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from nav_msgs.msg import Odometry
from numpy.testing import assert_allclose
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from cooperative_fusion.core.errors import BagError, ConfigError
from cooperative_fusion.app.player import BagPlayer, ReplayPublisher, replay
from cooperative_fusion.ros.bag import BagReader, BagWriter

REPO = Path(__file__).resolve().parents[2]


def _domain_id() -> int:
    """A DDS domain of this test process, so parallel runs do not hear each other."""
    return 100 + os.getpid() % 100


def _odom(x: float) -> Odometry:
    msg = Odometry()
    msg.header.frame_id = 'map'
    msg.child_frame_id = 'v1/base_link'
    msg.pose.pose.position.x = x
    msg.pose.pose.orientation.w = 1.0
    return msg


@pytest.fixture
def bag(tmp_path: Path) -> tuple[Path, list[tuple[str, int, object]]]:
    """1 s of /v1/odom at 20 Hz, a /v1/chatter string every 0.25 s, /truth/scenario once, a recorded /clock."""
    records: list[tuple[str, int, object]] = [('/truth/scenario', 0, String(data='{"seed": 0}'))]
    records += [('/v1/odom', 50_000_000 * i + 1_000_000, _odom(0.1 * i)) for i in range(20)]
    records += [('/v1/chatter', 250_000_000 * i + 2_000_000, String(data=f'm{i}')) for i in range(4)]
    records += [('/clock', 500_000_000, Clock())]
    path = tmp_path / 'small'
    with BagWriter(path) as writer:
        for topic, t, msg in sorted(records, key=lambda r: r[1]):
            writer.write(topic, msg, t)
    return path, sorted(records, key=lambda r: r[1])


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.now += dt


@pytest.mark.parametrize('rate', [1.0, 4.0, 0.5])
def test_player_paces_log_time_by_rate(bag: tuple[Path, list], rate: float) -> None:
    path, records = bag
    clock = FakeClock()
    released = []
    with BagReader(path) as reader:
        player = BagPlayer(reader, rate=rate, clock=clock, sleep=clock.sleep)
        for log_time_ns, topic, msgtype, raw in player:
            assert player.wait_until(log_time_ns)
            released.append((log_time_ns, clock.now))
    times = np.array([t for t, _ in released], dtype=np.float64)
    assert_allclose([t for t in times], [r[1] for r in records])
    assert_allclose([w for _, w in released], 100.0 + (times - times[0]) * 1e-9 / rate, atol=1e-9)
    assert max(clock.sleeps) <= 0.1 + 1e-12  # sleeps in short steps so shutdown is noticed


def test_player_never_sleeps_to_catch_up_nor_with_rate_none(bag: tuple[Path, list]) -> None:
    path, records = bag
    clock = FakeClock()
    with BagReader(path) as reader:
        player = BagPlayer(reader, rate=1.0, clock=clock, sleep=clock.sleep)
        for log_time_ns, *_ in player:
            player.wait_until(log_time_ns)
            clock.now += 2.0  # a consumer much slower than the bag
        assert clock.sleeps == []
        fast = BagPlayer(reader, rate=None, clock=clock, sleep=clock.sleep, topics=['/v1/chatter'])
        got = [(topic, t) for t, topic, _, _ in fast if fast.wait_until(t)]
    assert clock.sleeps == []
    assert got == [('/v1/chatter', t) for topic, t, _ in records if topic == '/v1/chatter']


def test_player_stops_when_told_and_rejects_bad_rates(bag: tuple[Path, list]) -> None:
    path, _ = bag
    clock = FakeClock()
    with BagReader(path) as reader:
        player = BagPlayer(reader, rate=1.0, clock=clock, sleep=clock.sleep)
        assert player.wait_until(0)
        calls = []
        assert not player.wait_until(10**9, lambda: len(calls.append(1) or calls) < 3)
        assert len(clock.sleeps) == 2
        for rate in (0.0, -1.0, float('nan'), float('inf')):
            with pytest.raises(ConfigError, match=r'replay rate must be a finite number > 0 .*got'):
                BagPlayer(reader, rate=rate)


def test_live_replay_delivers_every_message_in_order_with_clock(bag: tuple[Path, list]) -> None:
    path, records = bag
    domain = _domain_id()
    sub_ctx, pub_ctx = rclpy.context.Context(), rclpy.context.Context()
    rclpy.init(context=sub_ctx, domain_id=domain)
    rclpy.init(context=pub_ctx, domain_id=domain)
    executor = SingleThreadedExecutor(context=sub_ctx)
    node = rclpy.create_node('replay_listener', context=sub_ctx)
    received: dict[str, list] = {'/v1/odom': [], '/v1/chatter': [], '/truth/scenario': [], '/clock': []}
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    try:
        node.create_subscription(Odometry, '/v1/odom', lambda m: received['/v1/odom'].append(m), qos)
        node.create_subscription(String, '/v1/chatter', lambda m: received['/v1/chatter'].append(m.data), qos)
        node.create_subscription(String, '/truth/scenario', lambda m: received['/truth/scenario'].append(m.data), qos)
        node.create_subscription(
            Clock, '/clock', lambda m: received['/clock'].append(m.clock.sec * 10**9 + m.clock.nanosec), qos)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        seen = []
        count = replay(path, rate=20.0, context=pub_ctx, wait_for_subscribers_s=10.0,
                       on_message=lambda t, topic: seen.append((topic, t)))
        expected = [(topic, t) for topic, t, _ in records if topic != '/clock']
        ticks: list[int] = []   # the default 100 Hz: a tick before a message 10 ms or more past the last tick
        for _, t in expected:
            if not ticks or t - ticks[-1] >= 10_000_000:
                ticks.append(t)
        deadline = time.monotonic() + 10.0  # delivery deadline, not a timing assertion
        while time.monotonic() < deadline and len(received['/clock']) < len(ticks):
            time.sleep(0.02)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=sub_ctx)
        rclpy.shutdown(context=pub_ctx)
    assert count == len(expected) == 25
    assert seen == expected
    odom_x = [m.pose.pose.position.x for m in received['/v1/odom']]
    assert_allclose(odom_x, [0.1 * i for i in range(20)])
    assert received['/v1/chatter'] == ['m0', 'm1', 'm2', 'm3']
    assert received['/truth/scenario'] == ['{"seed": 0}']
    assert received['/clock'] == ticks  # monotonic, the recorded /clock dropped


class _FakePublisher:
    def __init__(self, topic: str, log: list) -> None:
        self.topic_name, self.log = topic, log

    def publish(self, msg: object) -> None:
        self.log.append((self.topic_name, msg))


class _FakeNode:
    """Just enough of an rclpy node for ReplayPublisher: publishers that log what they publish."""

    def __init__(self) -> None:
        self.log: list = []

    def create_publisher(self, _cls: type, topic: str, _qos: object) -> _FakePublisher:
        return _FakePublisher(topic, self.log)


def _published(node: _FakeNode) -> list:
    return [(topic, msg.clock.sec * 10**9 + msg.clock.nanosec if topic == '/clock' else msg)
            for topic, msg in node.log]


def test_clock_ticks_at_most_once_per_period_just_before_a_message() -> None:
    node = _FakeNode()
    out = ReplayPublisher(node, {'/a': 'std_msgs/msg/String'}, clock_hz=100.0)
    ms = 1_000_000
    for t_ms in (0, 3, 10, 15, 25, 25, 40):
        out.publish(t_ms * ms, '/a', f'm{t_ms}'.encode())
    assert not out.publish(50 * ms, '/not_replayed', b'x')
    out.finish(40 * ms)   # the last message's time went out already
    out.finish(47 * ms)
    assert _published(node) == [
        ('/clock', 0), ('/a', b'm0'), ('/a', b'm3'), ('/clock', 10 * ms), ('/a', b'm10'), ('/a', b'm15'),
        ('/clock', 25 * ms), ('/a', b'm25'), ('/a', b'm25'), ('/clock', 40 * ms), ('/a', b'm40'), ('/clock', 47 * ms)]
    assert out.published == 7


def test_clock_hz_zero_ticks_before_every_message_and_never_goes_back() -> None:
    node = _FakeNode()
    out = ReplayPublisher(node, {'/a': 'std_msgs/msg/String'}, clock_hz=0.0)
    for t in (5, 5, 7, 6):
        out.publish(t, '/a', b'x')
    assert [t for topic, t in _published(node) if topic == '/clock'] == [5, 5, 7]  # 6 < 7: no tick
    for bad in (-1.0, float('nan'), float('inf')):
        with pytest.raises(ConfigError, match='clock rate must be a finite number >= 0 Hz'):
            ReplayPublisher(_FakeNode(), {}, clock_hz=bad)


def test_replay_errors_name_the_problem(bag: tuple[Path, list], tmp_path: Path) -> None:
    path, _ = bag
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=_domain_id())
    try:
        with pytest.raises(ConfigError, match=r"topics \['/nope'\] are not in the bag; it has \['/clock'"):
            replay(path, topics=['/nope'], context=ctx)
        with pytest.raises(BagError, match=r'no such bag \(path does not exist\)'):
            replay(tmp_path / 'absent', context=ctx)
    finally:
        rclpy.shutdown(context=ctx)


def _module_cmd(*args: str) -> list[str]:
    return [sys.executable, '-m', 'cooperative_fusion.cli', 'replay', *args]


def test_command_line_reports_errors_and_stops_on_ctrl_c(bag: tuple[Path, list], tmp_path: Path) -> None:
    env = dict(os.environ, ROS_DOMAIN_ID=str(_domain_id()), PYTHONUNBUFFERED='1')
    bad = subprocess.run(_module_cmd(str(tmp_path / 'absent')), capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith('absent: no such bag (path does not exist)')
    assert 'Traceback' not in bad.stderr

    path, _ = bag
    # also when SIGINT was inherited ignored (a background job of a non-interactive shell): it exited 0
    for preexec in (None, lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)):
        proc = subprocess.Popen(_module_cmd(str(path), '--rate', '0.01'), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, preexec_fn=preexec)
        try:
            time.sleep(3.0)  # let it start publishing; at rate 0.01 the bag lasts 100 s
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        assert 'interrupted' in err and 'Traceback' not in err


def test_a_context_shut_down_by_a_signal_is_an_interruption(bag: tuple[Path, list], monkeypatch, capsys) -> None:
    """rclpy's SIGINT handler shuts the context down and replay() returns early: run() must not report success."""
    from cooperative_fusion.commands import replay as replay_module

    def shut_down_midway(*_args, **_kwargs) -> int:
        rclpy.shutdown()              # what the signal handler does
        return 3
    monkeypatch.setattr(replay_module, 'replay', shut_down_midway)
    args = argparse.Namespace(bag=bag[0], rate=1.0, topics=None, wait_for_subscribers=0.0, clock_hz=100.0,
                              clock_subscribers=1, wall_clock=False)
    with pytest.raises(KeyboardInterrupt):
        replay_module.run(args)
    assert 'replayed 3 messages' in capsys.readouterr().err
    assert not rclpy.ok()
