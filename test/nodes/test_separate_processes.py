"""The README's separate-process recipe, run as written: four vehicle nodes, fusion, twin, then the replay.

The commands come from the fenced block between ``<!-- separate-processes:begin -->``
and ``<!-- separate-processes:end -->`` in README.md; ``BAG`` is replaced by a short
simulated bag. Each line is its own process (console scripts on PATH, this checkout
first on PYTHONPATH), on a private ROS domain; this test process listens for
/cooperative/grid and /diagnostics and asserts a common grid built from the
vehicles' evidence (free and occupied cells, not only the platoon's own boxes), on
the bag's clock.
"""
from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from processes import simulate_bag, stop

from cooperative_fusion.ros.bag import BagReader
from cooperative_fusion.ros.qos import diagnostics_qos, latched_qos
from cooperative_fusion.ros.time import stamp_to_ns

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SIM_S = 5.0          # time references come at 1 Hz; the first may go before discovery settles
_BLOCK = re.compile(r'<!-- separate-processes:begin -->\s*```[a-z]*\n(.*?)```\s*<!-- separate-processes:end -->',
                    re.S)


def readme_commands() -> list[list[str]]:
    """The recipe's command lines, split as a shell would (no shell features are used)."""
    m = _BLOCK.search((REPO / 'README.md').read_text())
    assert m is not None, 'README.md has no separate-processes block'
    return [shlex.split(line) for line in m.group(1).splitlines() if line.strip()]


def test_the_recipe_names_every_node_with_sim_time_and_the_platoon_file():
    cmds = readme_commands()
    assert [c[0] for c in cmds] == ['vehicle_node'] * 4 + ['fusion_node', 'twin_node', 'cooperative-fusion']
    assert [c[c.index('__ns:=/v1') - 1:c.index('__ns:=/v1') + 1] for c in cmds[:1]] == [['-r', '__ns:=/v1']]
    for c in cmds[:6]:
        assert 'use_sim_time:=true' in c, c
    for c in cmds[4:6]:
        assert 'platoon_file:=config/platoon.yaml' in c, c
    assert cmds[6][1:] == ['replay', 'BAG']


@pytest.fixture(scope='module')
def scenario_bag(tmp_path_factory) -> Path:
    return simulate_bag(tmp_path_factory.mktemp('separate') / 'scenario', seed=7, duration_s=SIM_S)


def test_readme_separate_processes_recipe_builds_a_common_grid(tmp_path, scenario_bag):
    cmds = readme_commands()
    missing = [c[0] for c in cmds if shutil.which(c[0], path=str(BIN)) is None]
    if missing:
        pytest.skip(f'console scripts not installed in {BIN}: {missing} (pip install -e .)')
    cmds = [[str(scenario_bag) if arg == 'BAG' else arg for arg in c] for c in cmds]
    domain = random.SystemRandom().randint(1, 100)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1', PATH=f'{BIN}{os.pathsep}{os.environ.get("PATH", "")}',
               PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get('PYTHONPATH')])]))

    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    listener = rclpy.create_node('separate_processes_listener', context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(listener)
    grids: list[OccupancyGrid] = []
    listener.create_subscription(OccupancyGrid, '/cooperative/grid', grids.append, latched_qos())
    accepted: dict[str, int] = {}

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith('fusion_node: '):
                values = {kv.key: kv.value for kv in status.values}
                accepted[status.name.split(': ')[1]] = int(values.get('accepted', 0))

    listener.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, diagnostics_qos())
    procs: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(cmd: list[str]) -> subprocess.Popen:
        logs.append(tmp_path / f'{len(logs)}_{cmd[0]}.log')
        with open(logs[-1], 'w') as log:
            procs.append(subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
        return procs[-1]

    def output() -> str:
        return '\n'.join(f'--- {p.name}:\n' + p.read_text(errors='replace')[-1500:] for p in logs)

    def spin_until(predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            for p, log in zip(procs[:6], logs):
                assert p.poll() is None, f'{log.name} exited with {p.returncode}\n{output()}'
            executor.spin_once(timeout_sec=0.05)
        return True

    try:
        for cmd in cmds[:-1]:
            start(cmd)
        up = spin_until(lambda: listener.count_publishers('/cooperative/grid') >= 1
                        and listener.count_publishers('/twin/warnings') >= 1
                        and all(listener.count_subscribers(f'/v{i}/lidar/points') >= 1 for i in range(1, 5)),
                        timeout_s=90.0)
        assert up, f'nodes did not come up\n{output()}'
        replay = start(cmds[-1])
        assert spin_until(lambda: replay.poll() is not None, timeout_s=SIM_S + 60.0), f'replay hung\n{output()}'
        assert replay.returncode == 0, output()
        spin_until(lambda: False, timeout_s=3.0)       # what is still in flight
    finally:
        stop(procs, 15.0)
        executor.remove_node(listener)
        listener.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=ctx)

    with BagReader(scenario_bag) as reader:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
    # evidence fused (the status comes every sim second: later evidence is not in it): free cells come from
    # evidence only, the platoon's boxes are drawn occupied from odometry alone
    assert set(accepted) == {'v1', 'v2', 'v3', 'v4'} and sum(accepted.values()) > 0, f'{accepted}\n{output()}'
    cells = [np.asarray(g.data, dtype=np.int8) for g in grids]
    free = max((int(np.count_nonzero((c >= 0) & (c < 50))) for c in cells), default=0)
    occupied = max((int(np.count_nonzero(c > 50)) for c in cells), default=0)
    assert free >= 1000 and occupied >= 20, f'{len(grids)} grids, at most {free} free, {occupied} occupied\n{output()}'
    # on the bag's clock (use_sim_time), not wall time
    stamps = [stamp_to_ns(g.header.stamp) for g in grids]
    assert all(start_ns - 10**9 <= s <= end_ns + 10**9 for s in stamps), (stamps, start_ns, end_ns)
    assert 'use_sim_time:=true' not in output()      # no node warned about its clock
