"""The simulate command: a short highway_occlusion run checked against DESIGN.md."""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cooperative_fusion.core.errors import BagError, ConfigError
from cooperative_fusion.ros.bag import BagReader
from cooperative_fusion.sim.scenario import load_scenario
from cooperative_fusion.commands.simulate import add_arguments, default_scenario_path, run

REPO = Path(__file__).resolve().parents[2]
SIM_S = 2.0


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _simulate(out: Path, seed: int | None = None, duration: float = SIM_S) -> Path:
    argv = ['--out', str(out), '--duration', str(duration), '--quiet']
    if seed is not None:
        argv += ['--seed', str(seed)]
    assert run(_args(*argv)) == 0
    return out


@pytest.fixture(scope='module')
def sim_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _simulate(tmp_path_factory.mktemp('simulate') / 'bag')


@pytest.fixture(scope='module')
def contents(sim_bag: Path) -> dict[str, list[tuple[int, object]]]:
    """``{topic: [(log_time_ns, message), ...]}`` of the whole 2 s bag."""
    out: dict[str, list] = {}
    with BagReader(sim_bag) as bag:
        for topic, msgtype, t, raw in bag.messages():
            out.setdefault(topic, []).append((t, bag.deserialize(msgtype, raw)))
    return out


def _stamp_ns(stamp) -> int:
    return stamp.sec * 10**9 + stamp.nanosec


def test_default_scenario_is_the_checkout_config() -> None:
    assert default_scenario_path() == REPO / 'config' / 'scenarios' / 'highway_occlusion.yaml'
    args = _args('--out', 'x')
    assert (args.scenario, args.seed, args.duration, args.overwrite) == (None, None, None, False)


def test_bad_arguments_raise_domain_errors(tmp_path: Path) -> None:
    (tmp_path / 'taken').mkdir()
    with pytest.raises(BagError, match=r'taken already exists; choose another --out or pass --overwrite'):
        run(_args('--out', str(tmp_path / 'taken')))
    with pytest.raises(ConfigError, match=r'--duration must be a finite number of seconds > 0, got -1.0'):
        run(_args('--out', str(tmp_path / 'b'), '--duration', '-1'))
    bad = tmp_path / 'bad.yaml'
    bad.write_text('name: x\nduration_s: 5\n')
    with pytest.raises(ConfigError, match=r'bad.yaml'):
        run(_args('--out', str(tmp_path / 'b'), '--scenario', str(bad)))
    assert not (tmp_path / 'b').exists()
    with pytest.raises(SystemExit):
        _args('--duration', '2')  # --out is required


def test_bag_is_mcap_with_every_design_topic(sim_bag: Path) -> None:
    meta = yaml.safe_load((sim_bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert meta['storage_identifier'] == 'mcap'
    assert [p.suffix for p in sim_bag.iterdir() if p.name != 'metadata.yaml'] == ['.mcap']
    scenario = load_scenario(default_scenario_path())
    expected = {'/truth/grid': 'nav_msgs/msg/OccupancyGrid', '/truth/objects': 'visualization_msgs/msg/MarkerArray',
                '/truth/scenario': 'std_msgs/msg/String'}
    for v in scenario.vehicle_ids:
        expected.update({
            f'/{v}/lidar/points': 'sensor_msgs/msg/PointCloud2',
            f'/{v}/radar/points': 'sensor_msgs/msg/PointCloud2',
            f'/{v}/camera/depth/image': 'sensor_msgs/msg/Image',
            f'/{v}/camera/depth/camera_info': 'sensor_msgs/msg/CameraInfo',
            f'/{v}/odom': 'nav_msgs/msg/Odometry',
            f'/{v}/time_reference': 'sensor_msgs/msg/TimeReference',
            f'/truth/odom/{v}': 'nav_msgs/msg/Odometry',
        })
    with BagReader(sim_bag) as bag:
        assert bag.topics() == expected
        assert bag.end_time_ns - bag.start_time_ns <= SIM_S * 1e9


@pytest.mark.parametrize('suffix, rate_hz', [
    ('/lidar/points', 10.0), ('/radar/points', 20.0), ('/camera/depth/image', 15.0),
    ('/camera/depth/camera_info', 15.0), ('/odom', 50.0), ('/time_reference', 1.0),
])
def test_vehicle_topic_rates(contents: dict, suffix: str, rate_hz: float) -> None:
    for v in ('v1', 'v2', 'v3', 'v4'):
        times = np.array([t for t, _ in contents[f'/{v}{suffix}']], dtype=np.int64)
        assert abs(len(times) - SIM_S * rate_hz) <= 1, (v, suffix, len(times))
        if len(times) > 2:
            period = np.median(np.diff(times)) * 1e-9
            assert abs(period * rate_hz - 1.0) < 0.05, (v, suffix, period)


@pytest.mark.parametrize('topic, rate_hz', [('/truth/grid', 10.0), ('/truth/odom/v3', 50.0),
                                            ('/truth/objects', 10.0)])
def test_truth_rates_and_common_time_stamps(contents: dict, topic: str, rate_hz: float) -> None:
    times = np.array([t for t, _ in contents[topic]], dtype=np.int64)
    assert abs(len(times) - SIM_S * rate_hz) <= 1
    assert abs(np.median(np.diff(times)) * 1e-9 * rate_hz - 1.0) < 0.05
    for t, msg in contents[topic]:
        header = msg.markers[0].header if topic == '/truth/objects' else msg.header
        assert _stamp_ns(header.stamp) == t and header.frame_id == 'map'


def test_cloud_fields(contents: dict) -> None:
    for topic, names in (('/v2/lidar/points', ['x', 'y', 'z', 'intensity']),
                         ('/v2/radar/points', ['x', 'y', 'z', 'velocity', 'rcs'])):
        for _, msg in contents[topic]:
            fields = [(f.name, f.datatype, f.count) for f in msg.fields[:len(names)]]
            assert fields == [(n, 7, 1) for n in names], topic
            assert msg.header.frame_id == topic.split('/')[1] + '/' + topic.split('/')[2]
    widths = [msg.width for _, msg in contents['/v2/lidar/points']]
    assert min(widths) > 1000  # a truck-mounted 32-beam lidar sees plenty of road


def test_vehicle_stamps_carry_their_clock_offsets(contents: dict) -> None:
    scenario = load_scenario(default_scenario_path())
    for vehicle in scenario.platoon.vehicles:
        clock = vehicle.clock
        for suffix in ('/odom', '/time_reference', '/camera/depth/camera_info'):
            for t, msg in contents[f'/{vehicle.id}{suffix}']:
                ideal = t + clock.offset_ms * 1e6 + clock.drift_ppm * 1e-6 * t
                assert abs(_stamp_ns(msg.header.stamp) - ideal) <= 3 * clock.jitter_ms * 1e6 + 1, (vehicle.id, suffix)
        for t, ref in contents[f'/{vehicle.id}/time_reference']:
            assert _stamp_ns(ref.time_ref) == t  # the common (GNSS) time at which it was taken


def test_truth_scenario_and_objects(contents: dict) -> None:
    (t0, meta), = contents['/truth/scenario']
    info = json.loads(meta.data)
    assert t0 == min(t for msgs in contents.values() for t, _ in msgs)
    assert json.dumps(info)  # a JSON object with the scenario's description
    assert 'v3' in json.dumps(info) and 'h1' in json.dumps(info)
    _, objects = contents['/truth/objects'][0]
    ns = {m.ns for m in objects.markers}
    assert 'stopped_car' in ns
    assert all(m.type == 1 and m.scale.x > 0 for m in objects.markers)


def _digest(bag_path: Path) -> str:
    h = hashlib.sha256()
    with BagReader(bag_path) as bag:
        for topic, _, t, raw in bag.messages():
            h.update(topic.encode())
            h.update(t.to_bytes(8, 'little'))
            h.update(raw)
    return h.hexdigest()


def test_same_seed_same_bag_other_seed_other_bag(tmp_path: Path) -> None:
    a = _simulate(tmp_path / 'a', seed=3, duration=0.5)
    b = _simulate(tmp_path / 'b', seed=3, duration=0.5)
    c = _simulate(tmp_path / 'c', seed=4, duration=0.5)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
