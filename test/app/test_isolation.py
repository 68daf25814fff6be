"""Which processes a run hears: a lock-step run none, a live run those on the user's ROS_DOMAIN_ID.

Another process on the same host and domain publishes ``/v9/evidence_grid``; a fusion
node configured for v1 only reports every evidence publisher it discovers but does not
fuse (``ignored_vehicles`` in its /diagnostics status, discovery every 0.1 s here).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context

from cooperative_fusion.app import bringup, live
from cooperative_fusion.ros.bag import BagReader
from platoon_files import simulate, write_config
from platoon_files import domain as _domain

PUBLISHER = '''
import time, rclpy
from nav_msgs.msg import OccupancyGrid
rclpy.init()
node = rclpy.create_node('other_process')
pub = node.create_publisher(OccupancyGrid, '/v9/evidence_grid', 10)
while True:
    pub.publish(OccupancyGrid())
    rclpy.spin_once(node, timeout_sec=0.1)
'''


@pytest.fixture(scope='module')
def short_bag(tmp_path_factory) -> Path:
    return simulate(tmp_path_factory.mktemp('isolation') / 'scenario', 1.5)


@pytest.fixture
def other_process(monkeypatch):
    """The user's ROS_DOMAIN_ID, and a process on it publishing /v9/evidence_grid (seen from here first)."""
    domain = _domain()
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    proc = subprocess.Popen([sys.executable, '-c', PUBLISHER], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = Context()
    rclpy.init(context=ctx)          # the user's domain, as any ROS 2 node
    try:
        probe = rclpy.create_node('isolation_probe', context=ctx)
        assert ctx.get_domain_id() == domain
        deadline = time.monotonic() + 60
        while probe.count_publishers('/v9/evidence_grid') < 1:
            assert time.monotonic() < deadline and proc.poll() is None, 'the other process is not discoverable'
            time.sleep(0.1)
        probe.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
    try:
        yield domain
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _fusion_only(tmp_path: Path) -> Path:
    fast = tmp_path / 'discovery.yaml'
    fast.write_text(yaml.safe_dump({'/**': {'ros__parameters': {'discovery_period_s': 0.1}}}))
    path = write_config(tmp_path / 'p.yaml', vehicles=('v1',), twin=False)
    raw = yaml.safe_load(path.read_text())
    raw['run']['vehicles'] = False
    raw['fusion']['params'].append(str(fast))
    path.write_text(yaml.safe_dump(raw))
    return path


def _ignored(bag: Path) -> list[str]:
    """``ignored_vehicles.ids`` of every fusion_node status recorded."""
    with BagReader(bag) as reader:
        return [{kv.key: kv.value for kv in status.values}['ignored_vehicles.ids']
                for _, msgtype, _, raw in reader.messages(['/diagnostics'])
                for status in reader.deserialize(msgtype, raw).status if status.name == 'fusion_node']


def test_lockstep_run_hears_no_other_process(tmp_path, short_bag, other_process):
    out = tmp_path / 'lockstep'
    bringup.run_bag_lockstep(_fusion_only(tmp_path), short_bag, out, progress=False)
    ignored = _ignored(out)
    assert ignored and set(ignored) == {''}, ignored
    assert os.environ['ROS_DOMAIN_ID'] == str(other_process)
    assert os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE') != 'OFF'      # the process environment is restored


def test_live_run_is_on_the_users_domain_and_hears_it(tmp_path, other_process):
    out = tmp_path / 'live'
    live.run_live(_fusion_only(tmp_path), out, duration_s=4.0)
    ignored = _ignored(out)
    assert ignored and ignored[-1] == 'v9', ignored


def test_init_context_uses_ros_domain_id_unless_given(monkeypatch):
    monkeypatch.setenv('ROS_DOMAIN_ID', '42')
    for given, expected in ((None, 42), (17, 17)):
        ctx = bringup.init_context(given)
        try:
            assert ctx.get_domain_id() == expected
        finally:
            bringup.shutdown_context(ctx)
