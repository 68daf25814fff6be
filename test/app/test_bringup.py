"""In-process bringup (app/bringup.py): composition and lock-step (deterministic) runs of a bag."""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Int64

from cooperative_fusion.app import bringup
from cooperative_fusion.app.platoon import load_platoon_config
from cooperative_fusion.commands import run as run_cmd
from cooperative_fusion.core.errors import BagError, ConfigError
from cooperative_fusion.ros.bag import BagReader
from platoon_files import domain as _domain
from platoon_files import simulate, vehicle_entry, write_config

SIM_S = 1.5
VEHICLES = ('v1', 'v2')    # two of the four keep the load small; fusion and twin take only these two


def _write_config(path: Path, vehicles=VEHICLES, fusion: bool = True, twin: bool = True, **extra) -> Path:
    return write_config(path, vehicles, fusion, twin, **extra)


@pytest.fixture(scope='module')
def sim_bag(tmp_path_factory) -> Path:
    """1.5 s of the default scenario (four vehicles, truth) from the simulator."""
    return simulate(tmp_path_factory.mktemp('bringup') / 'scenario', SIM_S)


def _read(bag: Path) -> list[tuple[str, int, bytes]]:
    with BagReader(bag) as reader:
        return [(topic, t, raw) for topic, _type, t, raw in reader.messages()]


# ------------------------------------------------------------------ runs --

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
    cfg = load_platoon_config(path)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=_domain())
    try:
        with pytest.raises(ConfigError, match=r'vehicle_node in /v2 \(params .*bad_vehicle\.yaml\)'):
            bringup.compose_nodes(cfg, ctx)
    finally:
        rclpy.try_shutdown(context=ctx)


def test_fusion_and_twin_take_the_platoon_from_the_platoon_file(tmp_path):
    """lead, truck_7, tail: the nodes fuse and protect exactly that platoon, also over a params file that
    still lists another one (the platoon parameters come after the files, so they win)."""
    old_style = tmp_path / 'old_fusion.yaml'
    old_style.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'vehicles': ['v1'], 'vehicle_weights': [1.0], 'publish_rate_hz': 5.0}}}))
    path = write_config(tmp_path / 'three.yaml', fusion=True, twin=True, vehicles=[
        vehicle_entry('lead'),
        vehicle_entry('truck_7', body={'length_m': 16.5, 'width_m': 2.55, 'rear_overhang_m': 4.0}, weight=0.8),
        vehicle_entry('tail', body={'length_m': 6.0, 'width_m': 2.0, 'rear_overhang_m': 1.2})])
    raw = yaml.safe_load(path.read_text())
    raw['run']['vehicles'] = False
    raw['fusion']['params'].append(str(old_style))
    path.write_text(yaml.safe_dump(raw))
    ctx = Context()
    rclpy.init(context=ctx, domain_id=_domain())
    nodes = []
    try:
        nodes = bringup.compose_nodes(load_platoon_config(path), ctx, use_sim_time=True)
        fusion, twin = nodes
        value = lambda node, name: list(node.get_parameter(name).value)     # noqa: E731
        assert value(fusion, 'vehicles') == value(fusion, 'footprints.vehicles') == ['lead', 'truck_7', 'tail']
        assert value(fusion, 'vehicle_weights') == [1.0, 0.8, 1.0]
        assert value(fusion, 'footprints.length_m') == [4.5, 16.5, 6.0]
        assert fusion.get_parameter('publish_rate_hz').value == 5.0        # the rest of the file still applies
        assert value(twin, 'vehicles') == ['lead', 'truck_7', 'tail']
        assert value(twin, 'vehicle_widths_m') == [1.8, 2.55, 2.0]
        assert value(twin, 'vehicle_rear_overhangs_m') == [1.0, 4.0, 1.2]
        assert {'/lead/evidence_grid', '/truck_7/evidence_grid', '/tail/odom'} <= {
            sub.topic_name for sub in fusion.subscriptions}
    finally:
        bringup.destroy_nodes(nodes)
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
    p = bringup.Progress(True, 10.0, every_s=0.5, stream=stream)
    p.update(0.4)
    p.update(0.6)
    p.update(0.7)
    p.update(1.6)
    lines = [ln for ln in stream.getvalue().splitlines() if ln.startswith('run:')]
    assert [ln.split('/')[0].split(':')[1].strip() for ln in lines] == ['0.6', '1.6']




def _statuses(bag: Path) -> tuple[set[str], dict[str, str], dict[str, str]]:
    """Names of every /diagnostics status; the last fusion status of v3 and the last twin status."""
    names: set[str] = set()
    fusion_v3: dict[str, str] = {}
    twin: dict[str, str] = {}
    with BagReader(bag) as reader:
        for _topic, msgtype, _t, raw in reader.messages(['/diagnostics']):
            for status in reader.deserialize(msgtype, raw).status:
                names.add(status.name)
                if status.name == 'fusion_node: v3':
                    fusion_v3 = {kv.key: kv.value for kv in status.values}
                elif status.name == 'twin_node':
                    twin = {kv.key: kv.value for kv in status.values}
    return names, fusion_v3, twin


def test_lockstep_run_fuses_the_vehicles_of_the_platoon_file(tmp_path, sim_bag):
    """The platoon file alone decides: v3 (weight 0.5) and v4 of the four in the bag, with fusion.yaml and
    twin.yaml as shipped; fusion and twin report on those two only."""
    config = write_config(tmp_path / 'p.yaml', vehicles=[vehicle_entry('v3', weight=0.5), vehicle_entry('v4')])
    out = tmp_path / 'result'
    bringup.run_bag_lockstep(config, sim_bag, out, progress=False, domain_id=_domain())
    counts = Counter(topic for topic, _, _ in _read(out))
    assert counts['/v3/evidence_grid'] >= 10 and counts['/cooperative/grid'] >= 10, counts
    names, fusion_v3, twin = _statuses(out)
    assert {n for n in names if n.startswith('fusion_node: ')} == {'fusion_node: v3', 'fusion_node: v4'}
    assert fusion_v3['weight'] == '0.5' and int(fusion_v3['accepted']) > 0, fusion_v3
    assert {k.split('.')[1] for k in twin if k.startswith('vehicle.')} == {'v3', 'v4'}, sorted(twin)


# ------------------------------------------------------ --strict, --quiet (issue 14) --

def _typo_config(tmp_path: Path) -> Path:
    typo = tmp_path / 'typo.yaml'
    typo.write_text(yaml.safe_dump({'/**': {'ros__parameters': {'grid': {'resolutoin_m': 0.5}}}}))
    path = _write_config(tmp_path / 'typo_platoon.yaml', vehicles=('v1',), twin=False)
    raw = yaml.safe_load(path.read_text())
    raw['fusion']['params'].append(str(typo))
    path.write_text(yaml.safe_dump(raw))
    return path


def _run_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_run_strict_refuses_a_misspelt_parameter_and_without_it_warns(tmp_path, sim_bag, capfd):
    config = _typo_config(tmp_path)
    with pytest.raises(ConfigError, match=r"fusion_node \(params .*typo\.yaml\): unknown parameter "
                                          r"'grid\.resolutoin_m' for /fusion_node; did you mean 'grid\.resolution_m'"):
        run_cmd.run(_run_args('--config', str(config), '--bag', str(sim_bag), '--strict', '--quiet'))
    capfd.readouterr()
    assert run_cmd.run(_run_args('--config', str(config), '--bag', str(sim_bag), '--quiet')) == 0
    err = capfd.readouterr().err
    assert "unknown parameter 'grid.resolutoin_m' for /fusion_node; did you mean 'grid.resolution_m'? (ignored)" \
        in err, err


def test_run_quiet_leaves_warnings_and_errors_only(tmp_path, sim_bag, capfd):
    """Without --quiet the nodes' set-up lines (INFO) show; with it no INFO and no progress line, and the
    drops by design (sync unmatched, depth before CameraInfo) are not warnings either way."""
    import rclpy.logging

    config = _write_config(tmp_path / 'p.yaml', vehicles=('v1',))
    level = rclpy.logging.get_logger_level('')
    capfd.readouterr()
    assert run_cmd.run(_run_args('--config', str(config), '--bag', str(sim_bag))) == 0
    loud = capfd.readouterr().err
    assert '[INFO]' in loud and '[v1.vehicle_node]: vehicle v1: streams' in loud, loud
    assert 'unmatched' not in loud and 'no_camera_info' not in loud, loud
    assert run_cmd.run(_run_args('--config', str(config), '--bag', str(sim_bag), '--quiet')) == 0
    quiet = capfd.readouterr()
    assert '[INFO]' not in quiet.err and 'run: ' not in quiet.err, quiet.err
    assert quiet.out.startswith('run: ')                    # the summary line stays
    assert rclpy.logging.get_logger_level('') == level      # the process's log level is restored


def test_demo_passes_strict_and_quiet_to_the_run(tmp_path, monkeypatch):
    from cooperative_fusion.commands import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(['--out', str(tmp_path / 'demo'), '--duration', '0.3', '--strict', '--quiet'])
    seen = {}

    def fake_run(*a, **kw):
        import rclpy.logging
        seen.update(kw, level=rclpy.logging.get_logger_level(''))
        raise RuntimeError('stop here')

    monkeypatch.setattr(bringup, 'run_bag_lockstep', fake_run)
    with pytest.raises(RuntimeError, match='stop here'):
        demo.run(args)
    assert seen['strict'] is True and seen['progress'] is False and seen['level'] == 30


@pytest.mark.parametrize('name, own', [('platoon_mixed', True), ('highway_occlusion', False)])
def test_demo_takes_the_scenarios_own_platoon_config(tmp_path, monkeypatch, name, own):
    from cooperative_fusion.commands import demo

    scenario = Path(__file__).resolve().parents[2] / 'config' / 'scenarios' / f'{name}.yaml'
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(['--out', str(tmp_path / 'demo'), '--duration', '0.3', '--scenario', str(scenario),
                              '--quiet'])
    seen = {}

    def fake_run(config, *a, **kw):
        seen['config'] = config
        raise RuntimeError('stop here')

    monkeypatch.setattr(bringup, 'run_bag_lockstep', fake_run)
    with pytest.raises(RuntimeError, match='stop here'):
        demo.run(args)
    if own:
        assert Path(seen['config']) == scenario.with_suffix('') / 'platoon.yaml'
        assert load_platoon_config(seen['config']).vehicles[0] == 'lead'
    else:
        assert seen['config'] is None          # the package default, config/platoon.yaml
