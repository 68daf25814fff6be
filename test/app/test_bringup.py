"""In-process bringup: platoon config, composition, lock-step (deterministic) and live-rate runs of a bag."""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Int64

from cooperative_fusion.core.errors import BagError, ConfigError
from cooperative_fusion.app import bringup
from cooperative_fusion.commands import run as run_cmd
from cooperative_fusion.ros.bag import BagReader

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'config'
SIM_S = 1.5
VEHICLES = ('v1', 'v2')    # two of the four keep the load small; fusion hears v3/v4 as silent


def _domain() -> int:
    return random.SystemRandom().randint(1, 100)


def _write_config(path: Path, vehicles=VEHICLES, fusion: bool = True, twin: bool | None = None, **extra) -> Path:
    """A bringup config with absolute paths to the repository's params files."""
    if twin is None:
        twin = (CONFIG / 'twin.yaml').is_file()
    raw = {
        'run': {'vehicles': True, 'fusion': fusion, 'twin': twin},
        'vehicles': [{'id': v, 'params': [str(CONFIG / 'vehicle.yaml'), str(CONFIG / 'vehicles' / f'{v}.yaml')]}
                     for v in vehicles],
        'fusion': {'params': [str(CONFIG / 'fusion.yaml')]},
        'twin': {'params': [str(CONFIG / 'twin.yaml')]},
        'record': {'topics': ['/<v>/evidence_grid', '/<v>/radar/targets', '/cooperative/grid', '/twin/predicted_grid',
                              '/twin/warnings', '/<v>/twin/advisory', '/twin/markers', '/diagnostics']},
        'drain_s': 0.5,
    }
    raw.update(extra)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope='module')
def sim_bag(tmp_path_factory) -> Path:
    """1.5 s of the default scenario (four vehicles, truth) from the simulator."""
    from cooperative_fusion.sim.bag_writer import write_simulation
    from cooperative_fusion.sim.scenario import load_scenario
    from cooperative_fusion.sim.world import Simulation

    scenario = load_scenario(CONFIG / 'scenarios' / 'highway_occlusion.yaml')
    out = tmp_path_factory.mktemp('bringup') / 'scenario'
    write_simulation(Simulation(scenario, seed=3).events(duration_s=SIM_S), out, progress=False)
    return out


LIVE_SIM_S = 3.0


@pytest.fixture(scope='module')
def live_bag(tmp_path_factory) -> Path:
    """3 s of the default scenario for the live-timing test. The vehicles publish only once a time
    reference (1 Hz) maps their clock; over DDS the first one, at the very start of the bag, can go
    before discovery settles, and 1.5 s then leaves too few sweeps after the next one."""
    from cooperative_fusion.sim.bag_writer import write_simulation
    from cooperative_fusion.sim.scenario import load_scenario
    from cooperative_fusion.sim.world import Simulation

    scenario = load_scenario(CONFIG / 'scenarios' / 'highway_occlusion.yaml')
    out = tmp_path_factory.mktemp('bringup_live') / 'scenario'
    write_simulation(Simulation(scenario, seed=3).events(duration_s=LIVE_SIM_S), out, progress=False)
    return out


def _read(bag: Path) -> list[tuple[str, int, bytes]]:
    with BagReader(bag) as reader:
        return [(topic, t, raw) for topic, _type, t, raw in reader.messages()]


# ------------------------------------------------------------------ config --

def test_default_platoon_config_matches_the_params_files():
    cfg = bringup.load_platoon_config(None)
    assert cfg.path == (CONFIG / 'platoon.yaml').resolve()
    assert cfg.vehicles == ('v1', 'v2', 'v3', 'v4')
    assert (cfg.run_vehicles, cfg.run_fusion, cfg.run_twin) == (True, True, True)
    assert cfg.vehicle_params['v2'] == ((CONFIG / 'vehicle.yaml').resolve(), (CONFIG / 'vehicles/v2.yaml').resolve())
    assert cfg.fusion_params == ((CONFIG / 'fusion.yaml').resolve(),)
    assert cfg.twin_params == ((CONFIG / 'twin.yaml').resolve(),)
    expected = [f'/{v}/evidence_grid' for v in cfg.vehicles] + [f'/{v}/radar/targets' for v in cfg.vehicles] + [
        '/cooperative/grid', '/twin/predicted_grid', '/twin/warnings'] + [
        f'/{v}/twin/advisory' for v in cfg.vehicles] + ['/twin/markers', '/diagnostics']
    assert list(cfg.record_topics) == expected
    specs = cfg.node_specs()
    assert [s.kind for s in specs] == [bringup.NodeKind.VEHICLE] * 4 + [bringup.NodeKind.FUSION,
                                                                       bringup.NodeKind.TWIN]
    assert specs[1].ros_args(use_sim_time=True) == [
        '--ros-args', '--params-file', str((CONFIG / 'vehicle.yaml').resolve()),
        '--params-file', str((CONFIG / 'vehicles/v2.yaml').resolve()),
        '-r', '__ns:=/v2', '-p', 'vehicle_id:=v2', '-p', 'use_sim_time:=true']
    assert specs[4].command('py') == ['py', '-m', 'cooperative_fusion.nodes.fusion_node', '--ros-args',
                                      '--params-file', str((CONFIG / 'fusion.yaml').resolve())]
    # fusion and twin fuse / protect the same platoon the bringup starts
    for name in ('fusion.yaml', 'twin.yaml'):
        params = yaml.safe_load((CONFIG / name).read_text())
        (body,) = params.values()
        assert tuple(body['ros__parameters']['vehicles']) == cfg.vehicles, name


def _bad(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((CONFIG / 'platoon.yaml').read_text())
    for section in raw['vehicles']:
        section['params'] = [str(CONFIG / p) for p in section['params']]
    raw['fusion']['params'] = [str(CONFIG / 'fusion.yaml')]
    raw['twin']['params'] = [str(CONFIG / 'vehicle.yaml')]   # any valid params file: twin.yaml may be landing
    mutate(raw)
    path = tmp_path / 'platoon.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize('mutate, match', [
    (lambda r: r['vehicles'][1].update(id='v1'), r"vehicles\[1\]\.id: vehicle id 'v1' appears twice"),
    (lambda r: r['vehicles'][0].update(id='1v'), r"vehicles\[0\]\.id: expected a vehicle id like v1"),
    (lambda r: r['vehicles'][2].pop('params'), r"vehicles\[2\]\.params: missing"),
    (lambda r: r['run'].update(fusion='yes'), r"run\.fusion: expected true or false, got 'yes'"),
    (lambda r: r['run'].update(radar=True), r"run\.radar: unknown key"),
    (lambda r: r.update(vehicles=[]), r"vehicles: expected a non-empty list"),
    (lambda r: r['record'].update(topics=['cooperative/grid']), r"record\.topics\[0\]: expected an absolute topic"),
    (lambda r: r.update(drain_s=-1), r"drain_s: expected seconds in \[0, 3600\), got -1"),
    (lambda r: r.update(recrod={}), r"recrod: unknown key"),
])
def test_bad_config_names_file_and_key(tmp_path, mutate, match):
    path = _bad(tmp_path, mutate)
    with pytest.raises(ConfigError, match=rf'{path.resolve()}: {match}'):
        bringup.load_platoon_config(path)


def test_missing_or_malformed_params_files(tmp_path):
    path = _write_config(tmp_path / 'a.yaml')
    raw = yaml.safe_load(path.read_text())
    raw['vehicles'][1]['params'][1] = 'nowhere.yaml'
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"vehicles\[1\]\.params\[1\]: params file .*nowhere\.yaml does not exist"):
        bringup.load_platoon_config(path)
    (tmp_path / 'nowhere.yaml').write_text('vehicle_id: v2\n')    # not a ROS params file
    with pytest.raises(ConfigError, match=r"node 'vehicle_id' has no ros__parameters mapping"):
        bringup.load_platoon_config(path)
    # a node that is switched off needs no params file
    raw['vehicles'][1]['params'][1] = str(CONFIG / 'vehicles' / 'v2.yaml')
    raw['run']['fusion'] = False
    raw['fusion']['params'] = ['missing-fusion.yaml']
    path.write_text(yaml.safe_dump(raw))
    assert bringup.load_platoon_config(path).run_fusion is False


def test_missing_faults_file_is_refused_clearly(tmp_path, sim_bag):
    with pytest.raises(ConfigError, match=r'f\.yaml: faults file does not exist'):
        bringup.run_bag_lockstep(_write_config(tmp_path / 'p.yaml'), sim_bag, None, faults=tmp_path / 'f.yaml')
    parser = argparse.ArgumentParser()
    run_cmd.add_arguments(parser)
    args = parser.parse_args(['--config', str(tmp_path / 'p.yaml'), '--bag', str(sim_bag), '--faults', 'x.yaml'])
    with pytest.raises(ConfigError, match=r'x\.yaml: faults file does not exist'):
        run_cmd.run(args)


def test_bad_bag_is_a_bag_error(tmp_path):
    with pytest.raises(BagError, match='no such bag'):
        bringup.run_bag_lockstep(_write_config(tmp_path / 'p.yaml'), tmp_path / 'missing', None)


# ------------------------------------------------------------- composition --

class _Echo(Node):
    def __init__(self, context: Context) -> None:
        super().__init__('echo', context=context,
                         parameter_overrides=[Parameter('use_sim_time', Parameter.Type.BOOL, True)])
        self.create_subscription(Int64, '/in', lambda m: None, 10)
        self.create_subscription(Int64, '/truth/x', lambda m: None, 10)
        self.create_subscription(Int64, '/loop', lambda m: None, 10)
        self.create_publisher(Int64, '/loop', 10)


def test_input_topics_skip_clock_truth_and_own_outputs():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=_domain())
    node = _Echo(ctx)
    try:
        assert '/clock' in {s.topic_name for s in node.subscriptions}   # use_sim_time subscribes it
        assert bringup.input_topics([node]) == {'/in'}
        assert bringup.published_topics([node])['/loop'] is Int64
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_compose_failure_cleans_up_and_names_the_node(tmp_path):
    bad = tmp_path / 'bad_vehicle.yaml'
    bad.write_text('/**:\n  ros__parameters:\n    grid:\n      mode: diagonal\n')
    path = _write_config(tmp_path / 'p.yaml', fusion=False, twin=False)
    raw = yaml.safe_load(path.read_text())
    raw['vehicles'][1]['params'].append(str(bad))
    path.write_text(yaml.safe_dump(raw))
    cfg = bringup.load_platoon_config(path)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=_domain())
    try:
        with pytest.raises(ConfigError, match=r'vehicle_node in /v2 \(params .*bad_vehicle\.yaml\)'):
            bringup.compose_nodes(cfg, ctx)
    finally:
        rclpy.try_shutdown(context=ctx)


# ---------------------------------------------------------------- lock-step --

def test_lockstep_run_records_outputs_and_is_byte_identical(tmp_path, sim_bag):
    config = _write_config(tmp_path / 'platoon.yaml')
    results = []
    for i in range(2):
        out = tmp_path / f'result{i}'
        summary = bringup.run_bag_lockstep(config, sim_bag, out, progress=True, domain_id=_domain())
        results.append((summary, _read(out)))
    (s0, r0), (s1, r1) = results
    counts = Counter(topic for topic, _, _ in r0)
    for v in VEHICLES:
        assert counts[f'/{v}/evidence_grid'] >= 10, counts        # lidar at 10 Hz for 1.5 s
        assert counts[f'/{v}/radar/targets'] >= 10, counts
    assert counts['/cooperative/grid'] >= 10, counts              # 10 Hz fusion cycles
    assert counts['/diagnostics'] >= 2, counts
    assert not any(t.startswith('/v3/') or t.startswith('/v4/') for t in counts)   # those vehicles don't run
    assert s0.recorded == len(r0) and s0.messages_out >= s0.recorded
    assert abs(s0.sim_s - (SIM_S + 0.5)) < 0.15
    assert s0.wall_s > 0 and s0.ratio == pytest.approx(s0.sim_s / s0.wall_s)
    # only the two vehicles' sensors + odometry/time references of the platoon were fed, never truth
    with BagReader(sim_bag) as reader:
        bag_counts = Counter(t for t, _, _, _ in reader.messages())
        start, end = reader.start_time_ns, reader.end_time_ns
    assert s0.messages_in <= sum(n for t, n in bag_counts.items() if not t.startswith('/truth/'))
    sensors = sum(bag_counts[f'/{v}/{s}'] for v in VEHICLES
                  for s in ('lidar/points', 'radar/points', 'camera/depth/image', 'camera/depth/camera_info'))
    assert s0.messages_in >= sensors
    assert all(start <= t <= end + 500_000_000 for _, t, _ in r0)
    # deterministic: the same messages, bytes and log times (diagnostics carry wall-clock latencies)
    det0 = [m for m in r0 if m[0] != '/diagnostics']
    det1 = [m for m in r1 if m[0] != '/diagnostics']
    assert len(det0) == len(det1) and det0 == det1
    assert [(t, ts) for t, ts, _ in r0 if t == '/diagnostics'] == [(t, ts) for t, ts, _ in r1 if t == '/diagnostics']
    assert (s0.messages_in, s0.messages_out) == (s1.messages_in, s1.messages_out)


def test_lockstep_progress_lines(tmp_path, sim_bag):
    import io

    stream = io.StringIO()
    config = _write_config(tmp_path / 'p.yaml', vehicles=('v1',), fusion=False, twin=False)
    summary = bringup.run_bag_lockstep(config, sim_bag, None, progress=True, domain_id=_domain(),
                                       progress_stream=stream)
    assert summary.recorded == 0 and summary.record_path is None and summary.messages_out > 0
    assert 'sim s' in summary.line() and 'x real time' in summary.line()
    p = bringup._Progress(True, 10.0, every_s=0.5, stream=stream)
    p.update(0.4)
    p.update(0.6)
    p.update(0.7)
    p.update(1.6)
    lines = [ln for ln in stream.getvalue().splitlines() if ln.startswith('run:')]
    assert [ln.split('/')[0].split(':')[1].strip() for ln in lines] == ['0.6', '1.6']


# ---------------------------------------------------------------- live rate --

def test_bag_at_live_rate_records_outputs(tmp_path, live_bag):
    """One vehicle + fusion + twin in one process, the bag at half speed on live timing: evidence for
    (nearly) every sweep of the bag, however loaded the machine. The vehicle may fall behind its input
    queues (it did, by 1-2 s, on two busy cores); it must then wait for the queued odometry instead of
    timing out on /clock (the cycles were lost as set_no_pose, 0-2 grids in a quarter of the runs)."""
    config = _write_config(tmp_path / 'p.yaml', vehicles=('v1',))
    out = tmp_path / 'live'
    summary = bringup.run_bag_live(config, live_bag, 0.5, out, progress=False, domain_id=_domain(),
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

    assert bringup._wait_until_quiet(count, quiet_s=0.2, max_s=5.0) is True
    assert 0.55 <= time.monotonic() - start < 3.0
    endless = iter(range(10**9))
    start = time.monotonic()
    assert bringup._wait_until_quiet(lambda: next(endless), quiet_s=0.2, max_s=0.5) is False
    assert time.monotonic() - start < 2.0


def _sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize('inherited', ['default', 'ignored'])
def test_live_run_stops_cleanly_on_ctrl_c(tmp_path, inherited):
    """No bag: the nodes wait for sensors; SIGINT ends the process with 130, no traceback, a readable bag.
    Also when the process inherited SIGINT ignored, as a background job of a non-interactive shell does
    (`make test &` in a script): it then ran on until killed, with neither KeyboardInterrupt nor shutdown."""
    config = _write_config(tmp_path / 'p.yaml', vehicles=('v1',), fusion=False, twin=False)
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
