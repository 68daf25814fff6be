"""Fault injector node in the lock-step runner: delay, loss, diagnostics, pose bias, clock skew, silence."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import TimeReference

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.faults import FaultModel, load_faults
from cooperative_fusion.nodes.fault_injector import (FaultInjector, create_injectors, source_renames,
                                                     vehicle_parameters)
from cooperative_fusion.app.lockstep import LockstepRunner
from cooperative_fusion.ros.time import make_time_reference, ns_to_stamp, stamp_to_ns

START = 1_000 * 10**9
MS = 1_000_000


def _faults(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / 'faults.yaml'
    path.write_text(yaml.safe_dump(body))
    return path


def _grid(stamp_ns: int) -> OccupancyGrid:
    msg = OccupancyGrid()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = 'map'
    msg.info.width, msg.info.height, msg.info.resolution = 2, 2, 0.2
    msg.data = [0, 50, 100, -1]
    return msg


def _odom(stamp_ns: int, x: float, y: float, yaw: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = 'map'
    msg.child_frame_id = 'v1/base_link'
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.w, msg.pose.pose.orientation.z = math.cos(yaw / 2), math.sin(yaw / 2)
    return msg


class _Run:
    """One injector for v1 in a LockstepRunner; ``out`` holds (topic, msg, sim time ns) of everything published."""

    def __init__(self, ctx, faults: Path) -> None:
        self.out: list[tuple[str, object, int]] = []
        [self.node] = create_injectors(faults, ['v1'], ctx, use_sim_time=True, origin_ns=START)
        self.runner = LockstepRunner([self.node], lambda t, m, ns: self.out.append((t, m, ns)),
                                     publish_to_dds=False, start_ns=START)

    def on(self, topic: str) -> list[tuple[object, int]]:
        return [(m, t) for top, m, t in self.out if top == topic]


@pytest.fixture
def run(ros_context):
    runs = []

    def make(faults: Path) -> _Run:
        r = _Run(ros_context, faults)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.node.destroy_node()


def test_delay_and_loss_on_sim_time_with_diagnostics(tmp_path, run):
    faults = _faults(tmp_path, {'seed': 11, 'vehicles': {'v1': {'links': {'evidence_grid': {'delay_ms': 100,
                                                                                            'loss': 0.1}}}}})
    r = run(faults)
    arrivals = [START + 50 * MS + i * 100 * MS for i in range(100)]     # 10 Hz, off the timer's 5 ms grid by 0
    for t in arrivals:
        r.runner.feed('/v1/raw/evidence_grid', _grid(t - 30 * MS), t)
    r.runner.advance_to(arrivals[-1] + 1_500 * MS)
    released = r.on('/v1/evidence_grid')
    # the same model, seeded the same, predicts exactly which ones are lost
    cfg = load_faults(faults)
    model = FaultModel(cfg.for_vehicle('v1'), cfg.seed, 'v1', origin_ns=START)
    expected = [t for t in arrivals if model.decide('evidence_grid', t - 30 * MS, t)]
    assert 80 <= len(expected) <= 97                                    # ~10 % lost
    assert len(released) == len(expected)
    for (msg, t_out), t_in in zip(released, expected):
        assert t_out == t_in + 100 * MS                                 # 100 ms later on sim time
        assert stamp_to_ns(msg.header.stamp) == t_in - 30 * MS          # stamp untouched (no skew)
    values = r.node.diagnostics_values()
    assert values['evidence_grid.in'] == 100
    assert values['evidence_grid.out'] == len(expected)
    assert values['evidence_grid.lost'] == 100 - len(expected)
    assert values['evidence_grid.duplicated'] == 0 and values['evidence_grid.reordered'] == 0
    assert values['evidence_grid.delayed_mean_ms'] == pytest.approx(100.0)
    assert values['pending'] == 0 and r.node.drops.total == 0
    # the published /diagnostics carry the same counters
    diags = [m for m, _ in r.on('/diagnostics')]
    assert diags
    last = {kv.key: kv.value for kv in diags[-1].status[0].values}
    assert diags[-1].status[0].name == 'fault_injector: v1'
    assert last['evidence_grid.out'] == str(len(expected)) and last['evidence_grid.in'] == '100'
    assert last['evidence_grid.lost'] == str(100 - len(expected)) and last['drops.total'] == '0'


def test_a_stamp_skewed_out_of_range_is_a_counted_drop(tmp_path, run):
    faults = _faults(tmp_path, {'vehicles': {'v1': {'clock_skew': {'offset_ms': 500}}}})
    r = run(faults)
    last_second = (2**31 - 1) * 10**9 + 900 * MS                       # + 500 ms does not fit an int32 sec
    for i, stamp in enumerate((START, last_second, START + 100 * MS)):
        r.runner.feed('/v1/raw/evidence_grid', _grid(stamp), START + i * 100 * MS)
    r.runner.advance_to(START + 1_500 * MS)
    assert [stamp_to_ns(m.header.stamp) for m, _ in r.on('/v1/evidence_grid')] == [START + 500 * MS,
                                                                                 START + 600 * MS]
    assert r.node.drops.counts == {'evidence_grid.malformed': 1}
    status = [m for m, _ in r.on('/diagnostics')][-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert (values['drops.malformed'], values['drops.evidence_grid.malformed'], values['drops.total']) == ('1', '1', '1')
    assert status.message == '0 lost, 0 held, 1 could not be relayed'


def test_pose_bias_reaches_onboard_and_edge_odometry(tmp_path, run):
    faults = _faults(tmp_path, {'vehicles': {'v1': {'pose_bias': {'dx_m': 0.5, 'dy_m': -0.2, 'dyaw_deg': 1.0},
                                                    'links': {'odom': {'delay_ms': 20}}}}})
    r = run(faults)
    t = START + 10 * MS
    r.runner.feed('/v1/raw/odom', _odom(t, 10.0, 3.0, 0.2), t)
    r.runner.advance_to(t + 100 * MS)
    [(onboard, t_onboard)] = r.on('/v1/onboard/odom')
    [(edge, t_edge)] = r.on('/v1/odom')
    assert t_onboard == t and t_edge == t + 20 * MS                    # onboard at once, edge after the link delay
    for msg in (onboard, edge):
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        assert (p.x, p.y) == pytest.approx((10.5, 2.8))
        assert 2 * math.atan2(q.z, q.w) == pytest.approx(0.2 + math.radians(1.0))
        assert stamp_to_ns(msg.header.stamp) == t


def test_clock_skew_silence_and_unimpaired_time_reference(tmp_path, run):
    faults = _faults(tmp_path, {'vehicles': {'v1': {'clock_skew': {'offset_ms': 200},
                                                    'silence': [{'start_s': 1.0, 'end_s': 2.0}]}}})
    r = run(faults)
    for i in range(30):                                    # 0.0 .. 2.9 s after the start
        t = START + i * 100 * MS
        r.runner.feed('/v1/raw/evidence_grid', _grid(t), t)
        r.runner.feed('/v1/raw/time_reference', make_time_reference(t + 7, t), t)
    r.runner.advance_to(START + 3_500 * MS)
    grids = r.on('/v1/evidence_grid')
    arrivals = [t for _, t in grids]
    assert arrivals == [START + i * 100 * MS for i in range(30) if not 10 <= i < 20]
    assert all(stamp_to_ns(m.header.stamp) == t + 200 * MS for m, t in grids)       # skewed by 200 ms
    refs = r.on('/v1/time_reference')
    assert len(refs) == 20 and all(isinstance(m, TimeReference) for m, _ in refs)
    assert all(stamp_to_ns(m.header.stamp) == t + 7 for m, t in refs)               # not skewed (not listed)
    values = r.node.diagnostics_values()
    assert values['evidence_grid.lost'] == values['evidence_grid.silenced'] == 10
    assert values['time_reference.silenced'] == 10


def test_reorder_and_duplicates_are_counted(tmp_path, run):
    faults = _faults(tmp_path, {'seed': 3, 'vehicles': {'v1': {'links': {'*': {
        'delay_ms': 50, 'reorder': 0.3, 'reorder_delay_ms': 250, 'duplicate': 0.2}}}}})
    r = run(faults)
    for i in range(100):
        t = START + i * 100 * MS
        r.runner.feed('/v1/raw/evidence_grid', _grid(t), t)
    r.runner.advance_to(START + 10_500 * MS)
    stamps = [stamp_to_ns(m.header.stamp) for m, _ in r.on('/v1/evidence_grid')]
    times = [t for _, t in r.on('/v1/evidence_grid')]
    values = r.node.diagnostics_values()
    assert times == sorted(times)                                   # released by due time
    assert len(stamps) == 100 + values['evidence_grid.duplicated'] > 100
    inversions = sum(1 for a, b in zip(stamps, stamps[1:]) if b < a)
    assert inversions > 5 and values['evidence_grid.reordered'] >= inversions


def test_helpers_and_bad_parameters(tmp_path, ros_context):
    assert dict(vehicle_parameters('v2'))['topics.evidence_grid'] == '/v2/raw/evidence_grid'
    assert dict(vehicle_parameters('v2'))['topics.odom'] == '/v2/onboard/odom'
    assert source_renames('v2') == {'/v2/odom': '/v2/raw/odom', '/v2/time_reference': '/v2/raw/time_reference'}
    with pytest.raises(ConfigError, match='faults_file is empty'):
        FaultInjector(context=ros_context, namespace='/v1')
    with pytest.raises(ConfigError, match=r'bad\.yaml: vehicles\.v1\.links\.\*\.loss'):
        bad = tmp_path / 'bad.yaml'
        bad.write_text(yaml.safe_dump({'vehicles': {'v1': {'links': {'*': {'loss': 2}}}}}))
        create_injectors(bad, ['v1'], ros_context)
    # only the vehicles the file names get an injector
    only_v1 = _faults(tmp_path, {'vehicles': {'v1': {'pose_bias': {'dx_m': 1.0}}}})
    nodes = create_injectors(only_v1, ['v1', 'v2', 'v3'], ros_context)
    try:
        assert [n.get_namespace() for n in nodes] == ['/v1']
    finally:
        for n in nodes:
            n.destroy_node()
