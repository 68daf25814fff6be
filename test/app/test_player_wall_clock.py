"""``replay --wall-clock``: no /clock, stamps shifted onto the system clock, in another process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import TimeReference
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.app.player import replay
from cooperative_fusion.ros.bag import BagWriter
from cooperative_fusion.ros.time import make_time_reference, ns_to_stamp

REPO = Path(__file__).resolve().parents[2]
BAG_START_NS = 1_000_000_000
CLOCK_OFFSET_NS = 20_000_000        # the vehicle's simulated clock runs 20 ms ahead of common time


def _domain_id() -> int:
    """A DDS domain of this test process (not test_player's), so parallel runs do not hear each other."""
    return 1 + os.getpid() % 99


def _odom(stamp_ns: int) -> Odometry:
    msg = Odometry()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = 'map'
    msg.child_frame_id = 'v1/base_link'
    msg.pose.pose.orientation.w = 1.0
    return msg


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    """1 s: /v1/odom at 20 Hz stamped on the vehicle clock, /v1/time_reference at 0 and 0.5 s,
    /truth/objects (MarkerArray) and /truth/scenario (String) at the start."""
    records: list[tuple[str, int, object]] = [
        ('/truth/scenario', BAG_START_NS, String(data='{"seed": 0}')),
        ('/truth/objects', BAG_START_NS, MarkerArray(markers=[Marker()])),
    ]
    for i in range(2):
        t = BAG_START_NS + 500_000_000 * i
        records.append(('/v1/time_reference', t, make_time_reference(t + CLOCK_OFFSET_NS, t, frame_id='gnss')))
    records += [('/v1/odom', BAG_START_NS + 50_000_000 * i + 1_000_000,
                 _odom(BAG_START_NS + 50_000_000 * i + CLOCK_OFFSET_NS)) for i in range(20)]
    path = tmp_path / 'small'
    with BagWriter(path) as writer:
        for topic, t, msg in sorted(records, key=lambda r: r[1]):
            writer.write(topic, msg, t)
    return path


def _cmd(*args: str) -> list[str]:
    return [sys.executable, '-m', 'cooperative_fusion.cli', 'replay', *args]


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def test_wall_clock_replay_in_another_process_stamps_messages_now(bag: Path) -> None:
    domain = _domain_id()
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    executor = SingleThreadedExecutor(context=ctx)
    node = rclpy.create_node('wall_clock_listener', context=ctx)
    odom: list[tuple[int, int]] = []           # (wall time on arrival, stamp), ns
    refs: list[tuple[int, int]] = []           # (header stamp, time_ref), ns
    other: list[str] = []
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Odometry, '/v1/odom', lambda m: odom.append((time.time_ns(), _ns(m.header.stamp))), qos)
    node.create_subscription(TimeReference, '/v1/time_reference',
                             lambda m: refs.append((_ns(m.header.stamp), _ns(m.time_ref))), qos)
    node.create_subscription(MarkerArray, '/truth/objects', lambda m: other.append('markers'), qos)
    node.create_subscription(String, '/truth/scenario', lambda m: other.append(m.data), qos)
    executor.add_node(node)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1')
    proc = subprocess.Popen(_cmd(str(bag), '--wall-clock', '--wait-for-subscribers', '60'), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    clock_publishers = 0
    try:
        deadline = time.monotonic() + 120.0     # generous: a busy 2-core machine
        while proc.poll() is None and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
            clock_publishers = max(clock_publishers, node.count_publishers('/clock'))
        end = time.monotonic() + 10.0           # what is still in flight
        while len(odom) < 20 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert proc.returncode == 0, err
    assert 'stamps shifted by' in out
    offset = int(out.split('stamps shifted by ')[1].split()[0])
    assert clock_publishers == 0
    assert len(odom) == 20
    # one constant offset: the recorded stamps plus it, exactly
    assert [s for _, s in odom] == [BAG_START_NS + 50_000_000 * i + CLOCK_OFFSET_NS + offset for i in range(20)]
    # a stamp is "now": never ahead of its arrival by more than the vehicle clock offset plus slack, and
    # behind it by no more than a generous delivery bound
    for arrival, stamp in odom:
        assert -0.5e9 < arrival - stamp < 10e9
    assert refs == [(t + CLOCK_OFFSET_NS + offset, t + offset)
                    for t in (BAG_START_NS, BAG_START_NS + 500_000_000)]
    assert other == ['{"seed": 0}']         # the MarkerArray is not replayed; the String is, unchanged
    assert '/truth/objects' in err          # and the replay says so


def test_wall_clock_refuses_another_rate_and_clock_flags(bag: Path, tmp_path: Path) -> None:
    env = dict(os.environ, ROS_DOMAIN_ID=str(_domain_id()), PYTHONUNBUFFERED='1')
    for extra, message in [(['--rate', '2'], '--rate 2 is not 1'),
                           (['--clock-hz', '50'], 'no /clock'), (['--clock-subscribers', '3'], 'no /clock')]:
        proc = subprocess.run(_cmd(str(bag), '--wall-clock', *extra), capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=60)
        assert proc.returncode == 2
        assert message in proc.stderr and 'Traceback' not in proc.stderr
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=_domain_id())
    try:
        with pytest.raises(ConfigError, match='rate 1'):
            replay(bag, rate=0.5, wall_clock=True, context=ctx)
    finally:
        rclpy.shutdown(context=ctx)
