"""topics, echo and record as subprocesses against a live rclpy graph on a private random ROS domain."""
from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.ros.bag import BagReader
from cooperative_fusion.ros.diagnostics import Level, make_array, make_status
from cooperative_fusion.ros.grid import grid_to_msg

REPO = Path(__file__).resolve().parents[2]
SPEC = GridSpec(0.0, 0.0, 0.5, 10, 5)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _grid(k: int) -> OccupancyGrid:
    cells = np.zeros(SPEC.shape, np.int8)            # 50 cells: 3 occupied, 7 unknown, 40 free
    cells.ravel()[:3] = 100
    cells.ravel()[3:10] = -1
    return grid_to_msg(SPEC, cells, 1_000_000_000 + k * 100_000_000)


class Talker:
    """A node publishing /nc/grid and /nc/warnings at 10 Hz and /nc/chatter ('m<i>') at 20 Hz, in a thread."""

    def __init__(self, domain_id: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node('nc_talker', context=self.context)
        self.grid = self.node.create_publisher(OccupancyGrid, '/nc/grid', RELIABLE)
        self.warnings = self.node.create_publisher(DiagnosticArray, '/nc/warnings', RELIABLE)
        self.chatter = self.node.create_publisher(String, '/nc/chatter', RELIABLE)
        self.k = 0
        self.sent: list[str] = []
        self.node.create_timer(0.1, self._slow)
        self.node.create_timer(0.05, self._fast)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.02)

    def _slow(self) -> None:
        self.grid.publish(_grid(self.k))
        self.warnings.publish(make_array(self.k, [make_status('v3', Level.WARN, 'conflict',
                                                              {'ttc_s': 2.5, 'distance_m': 30.0, 'object': 'h1'})]))

    def _fast(self) -> None:
        text = f'm{self.k}'
        self.k += 1
        self.sent.append(text)
        self.chatter.publish(String(data=text))

    def subscribed_by(self, topic: str, prefix: str) -> bool:
        return any(s.node_name.startswith(prefix) for s in self.node.get_subscriptions_info_by_topic(topic))

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(scope='module')
def domain() -> int:
    return random.SystemRandom().randint(101, 200)


@pytest.fixture(scope='module')
def talker(domain: int):
    t = Talker(domain)
    try:
        yield t
    finally:
        t.close()


def _env(domain: int) -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONPATH=str(REPO))
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return env


def _cli(domain: int, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'cooperative_fusion.cli', *args], env=_env(domain),
                          capture_output=True, text=True, timeout=timeout)


def _wait(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_topics_lists_type_publishers_and_a_plausible_rate(domain: int, talker: Talker) -> None:
    out = _cli(domain, 'topics', '--discovery', '2', '--duration', '4')
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}
    assert out.stdout.splitlines()[0].split() == ['TOPIC', 'TYPE', 'PUB', 'RATE']
    assert rows['/nc/grid'][1:3] == ['nav_msgs/msg/OccupancyGrid', '1']
    assert rows['/nc/warnings'][1:3] == ['diagnostic_msgs/msg/DiagnosticArray', '1']
    assert rows['/nc/chatter'][1:3] == ['std_msgs/msg/String', '1']
    # 10 Hz and 20 Hz timers; bounds for a busy 2-core machine
    assert rows['/nc/grid'][4] == 'Hz' and 3.0 <= float(rows['/nc/grid'][3]) <= 15.0
    assert rows['/nc/chatter'][4] == 'Hz' and 6.0 <= float(rows['/nc/chatter'][3]) <= 30.0


def test_topics_without_measurement(domain: int, talker: Talker) -> None:
    out = _cli(domain, 'topics', '--discovery', '4', '--duration', '0')
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ['TOPIC', 'TYPE', 'PUB']
    assert re.search(r'^/nc/grid +nav_msgs/msg/OccupancyGrid +1$', out.stdout, re.M)


def test_echo_prints_count_summary_lines(domain: int, talker: Talker) -> None:
    out = _cli(domain, 'echo', '/nc/grid', '--count', '3')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert re.fullmatch(r'\d+\.\d{9} map grid 10x5 at 0\.5 m: 3 occupied, 40 free, 7 unknown', line), line
    out = _cli(domain, 'echo', 'nc/warnings', '--count', '2')
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [line for line in out.stdout.splitlines()
                                       if re.fullmatch(r'0\.\d{9} - 1 statuses: v3 WARN '
                                                       r'\(ttc_s 2\.5, distance_m 30, object h1\)', line)]
    assert len(out.stdout.splitlines()) == 2


def test_echo_gives_up_after_timeout(domain: int) -> None:
    out = _cli(domain, 'echo', '/nc/nobody', '--timeout', '1')
    assert out.returncode == 1
    assert out.stdout == ''
    assert out.stderr.splitlines()[-1] == 'cooperative-fusion echo: /nc/nobody has no publisher after 1 s'


def _start_record(domain: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'cooperative_fusion.cli', 'record', *args], env=_env(domain),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err


def test_record_named_topics_until_sigint(domain: int, talker: Talker, tmp_path: Path) -> None:
    out = tmp_path / 'rec'
    proc = _start_record(domain, str(out), '/nc/chatter', 'nc/grid')
    try:
        assert _wait(lambda: talker.subscribed_by('/nc/chatter', '_cooperative_fusion_record')
                     and talker.subscribed_by('/nc/grid', '_cooperative_fusion_record'))
        first = len(talker.sent)
        # about three seconds of messages: a recorder starved of CPU on a busy machine still gets some of each
        assert _wait(lambda: len(talker.sent) >= first + 60)
    finally:
        rc, err = _stop(proc)
    assert rc == 130, err
    assert 'cooperative-fusion record: interrupted' in err
    with BagReader(out) as bag:
        assert bag.topics() == {'/nc/chatter': 'std_msgs/msg/String', '/nc/grid': 'nav_msgs/msg/OccupancyGrid'}
        chatter = [bag.deserialize(t, raw).data for topic, t, _, raw in bag.messages(['/nc/chatter'])]
        grids = [bag.deserialize(t, raw) for topic, t, _, raw in bag.messages(['/nc/grid'])]
    assert len(chatter) >= 20
    # reliable delivery: a gapless run of what the talker sent
    k0 = int(chatter[0][1:])
    assert chatter == [f'm{k}' for k in range(k0, k0 + len(chatter))]
    assert len(grids) >= 5 and all(bytes(g.data) == bytes(_grid(0).data) for g in grids)
    assert f'recorded {len(chatter) + len(grids)} messages on 2 topics to {out}' in err


def test_record_all_discovers_new_topics(domain: int, talker: Talker, tmp_path: Path) -> None:
    out = tmp_path / 'rec_all'
    proc = _start_record(domain, str(out), '--quiet')
    late = talker.node.create_publisher(String, '/nc/late', LATCHED)
    try:
        assert _wait(lambda: talker.subscribed_by('/nc/chatter', '_cooperative_fusion_record'))
        assert _wait(lambda: talker.subscribed_by('/nc/late', '_cooperative_fusion_record'))
        for i in range(5):
            late.publish(String(data=f'late{i}'))
        assert _wait(lambda: late.get_subscription_count() >= 1 and len(talker.sent) > 0)
        time.sleep(1.0)
    finally:
        rc, err = _stop(proc)
        talker.node.destroy_publisher(late)
    assert rc == 130, err
    with BagReader(out) as bag:
        topics = bag.topics()
        late_msgs = [bag.deserialize(t, raw).data for topic, t, _, raw in bag.messages(['/nc/late'])]
    assert {'/nc/chatter', '/nc/grid', '/nc/warnings', '/nc/late'} <= set(topics)
    assert late_msgs == [f'late{i}' for i in range(5)]
