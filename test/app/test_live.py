"""Live runs (app/live.py): a bag on live timing, the drain, Ctrl-C of a live run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from cooperative_fusion.app import live
from cooperative_fusion.ros.bag import BagReader
from platoon_files import REPO, simulate, write_config
from platoon_files import domain as _domain

LIVE_SIM_S = 3.0


@pytest.fixture(scope='module')
def live_bag(tmp_path_factory) -> Path:
    """3 s of the default scenario for the live-timing test. The vehicles publish only once a time
    reference (1 Hz) maps their clock; over DDS the first one, at the very start of the bag, can go
    before discovery settles, and 1.5 s then leaves too few sweeps after the next one."""
    return simulate(tmp_path_factory.mktemp('bringup_live') / 'scenario', LIVE_SIM_S)


def _read(bag: Path) -> list[tuple[str, int, bytes]]:
    with BagReader(bag) as reader:
        return [(topic, t, raw) for topic, _type, t, raw in reader.messages()]


def test_bag_at_live_rate_records_outputs(tmp_path, live_bag):
    """One vehicle + fusion + twin in one process, the bag at half speed on live timing: evidence for
    (nearly) every sweep of the bag, however loaded the machine. The vehicle may fall behind its input
    queues (it did, by 1-2 s, on two busy cores); it must then wait for the queued odometry instead of
    timing out on /clock (the cycles were lost as set_no_pose, 0-2 grids in a quarter of the runs)."""
    config = write_config(tmp_path / 'p.yaml', vehicles=('v1',))
    out = tmp_path / 'live'
    summary = live.run_bag_live(config, live_bag, 0.5, out, progress=False, domain_id=_domain(),
                                drain_wall_s=1.0)
    recorded = _read(out)
    counts = Counter(topic for topic, _, _ in recorded)
    with BagReader(live_bag) as reader:
        start = reader.start_time_ns
        sweeps = sum(1 for topic, _, _, _ in reader.messages(['/v1/lidar/points']))
    with BagReader(out) as reader:
        reports = [{kv.key: kv.value for kv in status.values}
                   for topic, msgtype, _, raw in reader.messages(['/diagnostics'])
                   for status in reader.deserialize(msgtype, raw).status if status.name == 'vehicle_node: v1']
    assert reports, 'no vehicle diagnostics recorded'
    last = reports[-1]
    health = {k: v for k, v in last.items() if k.startswith(('drops.', 'sync.', 'sets_', 'cycles'))}
    assert summary.messages_in > 100
    # one evidence grid per sweep (share.period_cycles 1); a sweep at the very start may miss its
    # partners while discovery settles
    assert sweeps >= 25 and counts['/v1/evidence_grid'] >= 0.9 * sweeps, (sweeps, counts, health)
    assert counts['/cooperative/grid'] >= 3, counts
    assert summary.recorded == sum(counts.values())
    # no cycle was given up for want of odometry, none is still waiting for it
    assert 'drops.set.no_pose' not in last and last['sets_waiting_for_pose'] == '0', health
    # log times are the recorder's sim clock: inside the bag's time span (+ drain)
    assert all(start - 1 <= t <= start + int((LIVE_SIM_S + 1.0) * 1e9) for _, t, _ in recorded)


def test_drain_waits_while_outputs_keep_coming():
    """The live run's drain: over while outputs still come (a node working off its queues), done once they
    have been quiet for quiet_s, and bounded by max_s."""
    start = time.monotonic()
    ticks = iter(range(8))          # eight more outputs, one per poll (50 ms), then quiet
    box = [0]

    def count() -> int:
        box[0] = next(ticks, box[0])
        return box[0]

    assert live.wait_until_quiet(count, quiet_s=0.2, max_s=5.0) is True
    assert 0.55 <= time.monotonic() - start < 3.0
    endless = iter(range(10**9))
    start = time.monotonic()
    assert live.wait_until_quiet(lambda: next(endless), quiet_s=0.2, max_s=0.5) is False
    assert time.monotonic() - start < 2.0


def _sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize('inherited', ['default', 'ignored'])
def test_live_run_stops_cleanly_on_ctrl_c(tmp_path, inherited):
    """No bag: the nodes wait for sensors; SIGINT ends the process with 130, no traceback, a readable bag.
    Also when the process inherited SIGINT ignored, as a background job of a non-interactive shell does
    (`make test &` in a script): it then ran on until killed, with neither KeyboardInterrupt nor shutdown."""
    config = write_config(tmp_path / 'p.yaml', vehicles=('v1',), fusion=False, twin=False)
    out = tmp_path / 'rec'
    env = dict(os.environ, ROS_DOMAIN_ID=str(_domain()), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    proc = subprocess.Popen([sys.executable, '-X', 'faulthandler', '-m', 'cooperative_fusion.cli', 'run',
                             '--config', str(config), '--record', str(out)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_ignored if inherited == 'ignored' else None)
    try:
        deadline = time.monotonic() + 30.0
        while not (out / 'metadata.yaml').exists() and not any(out.glob('*.mcap')):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, 'the run did not open its record bag'
            time.sleep(0.1)
        time.sleep(1.5)          # nodes up and spinning (diagnostics timer fires at 1 s)
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=30)     # closing the bag takes a while on a loaded machine
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)                  # faulthandler: every thread's stack to stderr
            stdout, stderr = proc.communicate(timeout=30)
            pytest.fail(f'no exit 30 s after SIGINT; stacks:\n{stderr[-6000:]}')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert 'Traceback' not in stderr, stderr
    assert 'run: interrupted' in stderr
    with BagReader(out) as reader:     # closed properly: metadata written, diagnostics recorded
        assert '/diagnostics' in reader.topics()
