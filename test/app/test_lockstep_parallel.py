"""Lock-step with the vehicle nodes in a worker process (app/lockstep_parallel.py): the serial result, or a clear error."""
from __future__ import annotations

import os
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from cooperative_fusion.app import bringup
from cooperative_fusion.app.lockstep_parallel import NodeShape, WorkerError, _receive, independent
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.ros.bag import BagReader
from platoon_files import domain as _domain
from platoon_files import CONFIG, simulate, vehicle_entry, write_config

SIM_S = 1.5


@pytest.fixture(scope='module')
def sim_bag(tmp_path_factory) -> Path:
    """1.5 s of the default scenario (four vehicles, truth) from the simulator."""
    return simulate(tmp_path_factory.mktemp('parallel') / 'scenario', SIM_S)


def _read(bag: Path) -> list[tuple[str, int, bytes]]:
    with BagReader(bag) as reader:
        return [(topic, t, raw) for topic, _type, t, raw in reader.messages()]


@pytest.mark.parametrize('faults', [None, 'lossy.yaml'])
def test_worker_gives_the_serial_result_bag(tmp_path, sim_bag, faults):
    """Three vehicles (and with --faults their injectors) in the worker, fusion and twin here: every message,
    its bytes, log time and place in the bag as in the serial run (/diagnostics: topic and time; its
    latencies are wall-clock)."""
    config = write_config(tmp_path / 'p.yaml', vehicles=('v1', 'v2', 'v3'))
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f'result{jobs}'
        summary = bringup.run_bag_lockstep(config, sim_bag, out, progress=False, domain_id=_domain(), jobs=jobs,
                                           faults=faults and CONFIG / 'faults' / faults)
        runs[jobs] = (summary, _read(out))
    (s1, r1), (s2, r2) = runs[1], runs[2]
    assert sum(topic == '/v3/evidence_grid' for topic, _, _ in r1) >= (5 if faults else 10)
    assert sum(topic == '/twin/predicted_grid' for topic, _, _ in r1) >= 10
    assert [(t, ts) for t, ts, _ in r2] == [(t, ts) for t, ts, _ in r1]
    assert [m for m in r2 if m[0] != '/diagnostics'] == [m for m in r1 if m[0] != '/diagnostics']
    assert (s2.messages_in, s2.messages_out, s2.recorded) == (s1.messages_in, s1.messages_out, s1.recorded)


def test_worker_config_error_reaches_the_caller(tmp_path, sim_bag):
    """A vehicle node the worker cannot create fails the run with the serial run's ConfigError."""
    bad = tmp_path / 'bad_vehicle.yaml'
    bad.write_text('/**:\n  ros__parameters:\n    sync:\n      poll_period_s: -1.0\n')
    v1 = vehicle_entry('v1')
    config = write_config(tmp_path / 'p.yaml', vehicles=[{**v1, 'params': v1['params'] + [str(bad)]}])
    messages = []
    for jobs in (1, 2):
        with pytest.raises(ConfigError, match='vehicle_node in /v1') as info:
            bringup.run_bag_lockstep(config, sim_bag, None, progress=False, domain_id=_domain(), jobs=jobs)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


class _Gone:
    def poll(self) -> int:
        return -9

    def wait(self) -> int:
        return -9


def test_a_worker_that_dies_is_an_error_not_a_hang():
    read, write = os.pipe()
    conn, writer = Connection(read, writable=False), Connection(write, readable=False)
    try:
        writer.send(('error', ConfigError('v1: bad')))
        with pytest.raises(ConfigError, match='v1: bad'):
            _receive(conn, _Gone(), 'the worker')
        writer.close()
        with pytest.raises(WorkerError, match=r'the worker exited \(code -9\) without finishing'):
            _receive(conn, _Gone(), 'the worker')
    finally:
        conn.close()


def test_a_vehicle_that_hears_the_main_process_cannot_go_to_a_worker():
    vehicle = NodeShape('/v1/vehicle_node', (('/v1/odom', 'nav_msgs/msg/Odometry', True),
                                             ('/v1/twin/advisory', 'nav_msgs/msg/Path', False)), (), ())
    twin = NodeShape('/twin_node', (), (('/v1/twin/advisory', 'nav_msgs/msg/Path'),), (100_000_000,))
    assert independent([vehicle], [twin]) == "/v1/vehicle_node subscribes to ['/v1/twin/advisory'], " \
                                             "published in the main process"
    assert independent([vehicle, twin], []) is None    # hearing each other in the worker is fine


def test_a_worker_that_cannot_run_apart_falls_back_to_one_process(tmp_path, sim_bag, monkeypatch):
    """When the vehicle nodes hear the main process (no shipped node does; forced here), --jobs 2 stops
    the worker and runs in one process, with a note, and the serial result."""
    import io

    from cooperative_fusion.app import lockstep_parallel

    config = write_config(tmp_path / 'p.yaml', vehicles=('v1',))
    serial = tmp_path / 'serial'
    bringup.run_bag_lockstep(config, sim_bag, serial, progress=False, domain_id=_domain(), jobs=1)
    monkeypatch.setattr(lockstep_parallel, 'independent', lambda remote, local: 'v1 hears the twin')
    stream = io.StringIO()
    out = tmp_path / 'fallback'
    bringup.run_bag_lockstep(config, sim_bag, out, progress=False, domain_id=_domain(), jobs=2,
                             progress_stream=stream)
    assert stream.getvalue() == 'run: --jobs 2: one process (v1 hears the twin)\n'
    assert [m for m in _read(out) if m[0] != '/diagnostics'] == [m for m in _read(serial) if m[0] != '/diagnostics']


def test_run_passes_jobs_and_refuses_less_than_one(tmp_path, monkeypatch):
    import argparse

    from cooperative_fusion.commands import run as run_cmd

    parser = argparse.ArgumentParser()
    run_cmd.add_arguments(parser)
    seen = {}

    def fake_run(*a, **kw):
        seen.update(kw)
        raise RuntimeError('stop here')

    monkeypatch.setattr(bringup, 'run_bag_lockstep', fake_run)
    bag = tmp_path / 'bag'
    for argv, default, jobs in (([], 2, 2), ([], 1, 1), (['--jobs', '1'], 2, 1), (['--jobs', '3'], 1, 3)):
        monkeypatch.setattr(run_cmd, 'default_jobs', lambda default=default: default)
        with pytest.raises(RuntimeError, match='stop here'):
            run_cmd.run(parser.parse_args(['--bag', str(bag), *argv]))
        assert seen['jobs'] == jobs, argv
    with pytest.raises(ConfigError, match='--jobs must be >= 1, got 0'):
        run_cmd.run(parser.parse_args(['--bag', str(bag), '--jobs', '0']))


@pytest.mark.parametrize('idle_ticks, cores, jobs', [(150, 2, 2), (90, 2, 1), (500, 1, 1), (60, 4, 2)])
def test_default_jobs_is_two_when_a_core_is_idle(tmp_path, monkeypatch, idle_ticks, cores, jobs):
    """Of 200 ticks in the sample, ``idle_ticks`` idle (idle + iowait): a core is free at 1/cores of them."""
    from cooperative_fusion.commands import run as run_cmd

    stat = tmp_path / 'stat'
    samples = iter([(0, 0), (200 - idle_ticks, idle_ticks)])

    def sleep(_s: float) -> None:
        busy, idle = next(samples)
        stat.write_text(f'cpu  {busy} 0 0 {idle - idle // 4} {idle // 4} 0 0 0 0 0\ncpu0 1 2 3 4\n')

    sleep(0)
    monkeypatch.setattr(run_cmd.time, 'sleep', sleep)
    monkeypatch.setattr(os, 'cpu_count', lambda: cores)
    assert run_cmd.default_jobs(stat=str(stat)) == jobs
    assert run_cmd.default_jobs(stat=str(tmp_path / 'missing')) == (2 if cores >= 2 else 1)


def test_worker_runs_this_package_whatever_the_working_directory(tmp_path, sim_bag, monkeypatch):
    """Run from a directory holding another cooperative_fusion (a second checkout): the worker still
    imports the package of the main process (``python -m`` would take the working directory's)."""
    shadow = tmp_path / 'checkout' / 'cooperative_fusion'
    shadow.mkdir(parents=True)
    (shadow / '__init__.py').write_text('raise ImportError("the wrong checkout")\n')
    config = write_config(tmp_path / 'p.yaml', vehicles=('v1',), fusion=False, twin=False)
    monkeypatch.chdir(shadow.parent)
    summary = bringup.run_bag_lockstep(config, sim_bag, None, progress=False, domain_id=_domain(), jobs=2)
    assert summary.messages_out > 10
