"""The advisory follower node, driven in lock-step on sim time: odometry, warnings and advisories in, commands out."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.parameter import Parameter

import params_file
from cooperative_fusion.app.lockstep import LockstepRunner
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.follower import Limit
from cooperative_fusion.nodes.advisory_follower import PARAMS, AdvisoryFollowerNode
from cooperative_fusion.ros.command import twist_to_speed_accel
from cooperative_fusion.ros.diagnostics import Level, make_array, make_status, status_level
from cooperative_fusion.ros.grid import grid_to_msg
from cooperative_fusion.ros.time import ns_to_stamp

CONFIG = Path(__file__).resolve().parents[2] / 'config'
S = 1_000_000_000
MS = 1_000_000
START = 1_000 * S
V = 20.0
GAP = 3.0 + 0.48 * V         # the CACC's steady gap: standstill 3 m + 0.48 s * 20 m/s


def _odom(stamp_ns: int, x: float, speed: float, frame: str = 'map') -> Odometry:
    msg = Odometry()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame
    msg.pose.pose.position.x = x
    msg.pose.pose.orientation.w = 1.0
    msg.twist.twist.linear.x = speed
    return msg


def _path(stamp_ns: int, t_s: list[float], x: list[float]) -> PathMsg:
    msg = PathMsg()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = 'map'
    for t, xi in zip(t_s, x):
        ps = PoseStamped()
        ps.header.stamp = ns_to_stamp(stamp_ns + int(round(t * S)))
        ps.header.frame_id = 'map'
        ps.pose.position.x = xi
        ps.pose.orientation.w = 1.0
        msg.poses.append(ps)
    return msg


def _warnings(stamp_ns: int, vehicle: str, distance: float, speed: float) -> DiagnosticArray:
    return make_array(stamp_ns, [make_status(vehicle, Level.ERROR, 'track_3 ahead',
                                             {'distance_m': distance, 'other_speed_mps': speed}),
                                 make_status('v4', Level.WARN, 'other', {'distance_m': 1.0, 'other_speed_mps': 0.0})])


class _Run:
    """One follower for v2 (predecessor v1, bodies 4.5 m / rear overhang 1 m) in a LockstepRunner."""

    def __init__(self, ctx, **overrides) -> None:
        params = {'vehicle_id': 'v2', 'predecessor_id': 'v1', **overrides}
        self.node = AdvisoryFollowerNode(context=ctx, parameter_overrides=[Parameter(k, value=v)
                                                                           for k, v in params.items()])
        self.out: list[tuple[str, object, int]] = []
        self.runner = LockstepRunner([self.node], lambda t, m, ns: self.out.append((t, m, ns)),
                                     publish_to_dds=False, start_ns=START)
        self.x = 0.0

    def cmds(self) -> list[tuple[int, float, float]]:
        return [twist_to_speed_accel(m) for t, m, _ in self.out if t == '/v2/cooperative/cmd']

    def diag(self) -> dict[str, str]:
        arrays = [m for t, m, _ in self.out if t == '/diagnostics']
        status = arrays[-1].status[0]
        return {'_name': status.name, '_level': status_level(status), '_message': status.message,
                **{kv.key: kv.value for kv in status.values}}

    def drive(self, t0_ns: int, t1_ns: int, predecessor: bool = True) -> None:
        """Odometry of v2 at V and (optionally) v1 GAP ahead at V, every 20 ms from t0 to t1."""
        for t in range(t0_ns, t1_ns, 20 * MS):
            x = V * (t - START) * 1e-9
            self.runner.feed('/v2/odom', _odom(t, x, V), t)
            if predecessor:
                self.runner.feed('/v1/odom', _odom(t, x + 3.5 + GAP + 1.0, V), t)
        self.runner.advance_to(t1_ns)


@pytest.fixture
def run(ros_context):
    runs = []

    def make(**overrides) -> _Run:
        r = _Run(ros_context, **overrides)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.node.destroy_node()


def test_no_odometry_no_command_and_diagnostics_say_so(run):
    r = run()
    r.runner.advance_to(START + 1_500 * MS)
    assert r.cmds() == []
    d = r.diag()
    assert d['_name'] == 'advisory_follower: v2' and d['_level'] == Level.STALE
    assert d['_message'] == 'no odometry yet: no command'
    assert d['mode'] == 'cooperative+advisory' and d['predecessor'] == 'v1'


def test_steady_following_then_a_fresh_advisory_then_a_stale_one(run):
    r = run()
    r.drive(START, START + 2 * S)
    cmds = r.cmds()
    assert len(cmds) == 20                                            # 10 Hz on sim time
    assert [c[0] for c in cmds] == [START + k * 100 * MS for k in range(1, 21)]
    for _, speed, accel in cmds:                                     # at the steady gap: hold the speed
        assert speed == pytest.approx(V, abs=1e-3) and accel == pytest.approx(0.0, abs=1e-2)
    assert r.node.core.last.limit is Limit.PREDECESSOR

    t = START + 2 * S
    r.runner.feed('/v2/twin/advisory', _path(t, [0.0, 1.0, 2.0, 3.0], [0.0, 19.9, 39.8, 59.7]), t)   # 19.9 m/s
    r.drive(t, t + S)
    np.testing.assert_allclose(np.array(r.cmds()[20:]) - [t, 0.0, 0.0],
                               [(k * 100 * MS, 19.9, -1.0) for k in range(1, 11)], atol=1e-6)
    assert r.node.core.last.limit is Limit.ADVISORY

    old = t + S - 1_500 * MS                                          # 1.5 s old at arrival: stale (limit 1 s)
    r.runner.feed('/v2/twin/advisory', _path(old, [0.0, 1.0, 2.0], [0.0, 10.0, 20.0]), t + S)
    r.drive(t + S, t + 2 * S)                                         # and the fresh one expires at t + 1 s
    assert [c[1] for c in r.cmds()[30:]] == pytest.approx([V] * 10, abs=1e-3)   # ACC alone
    assert r.node.core.advisory is None and r.node.core.last.limit is Limit.PREDECESSOR
    d = r.diag()
    assert d['drops.advisory.too_old'] == '1' and d['advisory_expired'] == '1' and d['advisory_active'] == 'False'
    assert d['_level'] == Level.WARN and d['_message'] == 'no warnings from the twin: ACC only'
    r.runner.advance_to(t + 3 * S)
    d = r.diag()
    assert d['_level'] == Level.STALE and d['drops.odom.too_old'] == '1'   # no odometry for a second
    assert float(d['advisory_age_s']) == pytest.approx(3.0)


def test_cooperative_mode_brakes_for_a_warning_and_ignores_the_advisory(run):
    r = run(**{'follower.mode': 'cooperative'})
    t = START + S
    r.drive(START, t)
    r.runner.feed('/v2/twin/advisory', _path(t, [0.0, 1.0], [0.0, 10.0]), t)       # ignored in this mode
    r.runner.feed('/twin/warnings', _warnings(t, 'v2', 45.0, 0.0), t)              # needs 400 / 79 = 5.1 m/s^2
    r.drive(t, t + 200 * MS)
    _, speed, accel = r.cmds()[-1]
    assert accel <= -5.0 and speed == pytest.approx(V + 0.1 * accel)
    assert r.node.core.last.limit is Limit.OBSTACLE
    # a warnings array without v2: a standing obstacle's warning is held until it is 1 s old, then cleared
    r.runner.feed('/twin/warnings', make_array(t + 200 * MS, []), t + 200 * MS)
    r.drive(t + 200 * MS, t + 400 * MS)
    assert r.node.core.last.limit is Limit.OBSTACLE and r.node.core.health(t + 400 * MS)['warning_held'] is True
    r.drive(t + 400 * MS, t + 1200 * MS)
    assert r.node.core.last.limit is Limit.PREDECESSOR and r.node.core.expired['warning'] == 1


def test_bad_input_is_a_counted_drop(run):
    r = run()
    r.runner.feed('/v2/odom', _odom(START, 0.0, V, frame='odom'), START)
    r.runner.feed('/v2/odom', _odom(START, math.nan, V), START)
    bad = _warnings(START, 'v2', 45.0, 0.0)
    bad.status[0].values = bad.status[0].values[:1]
    r.runner.feed('/twin/warnings', bad, START)
    back = _path(START, [0.0, 1.0], [0.0, 10.0])
    back.poses[1].header.stamp = ns_to_stamp(START - S)
    r.runner.feed('/v2/twin/advisory', back, START)
    r.runner.advance_to(START + 1_100 * MS)
    d = r.diag()
    assert d['drops.odom.frame'] == '1' and d['drops.odom.malformed'] == '1'
    assert d['drops.warnings.malformed'] == '1' and d['drops.advisory.malformed'] == '1'
    assert r.cmds() == []


def test_platoon_file_gives_predecessor_and_bodies(ros_context):
    node = AdvisoryFollowerNode(context=ros_context, parameter_overrides=[
        Parameter('vehicle_id', value='v3'), Parameter('platoon_file', value=str(CONFIG / 'platoon.yaml'))])
    try:
        s = node.setup
        assert (s.predecessor_id, s.front_m, s.predecessor_rear_m, s.predecessor_length_m) == ('v2', 3.5, 2.5, 12.0)
        assert {sub.topic_name for sub in node.subscriptions} >= {'/v3/odom', '/v2/odom', '/twin/warnings',
                                                                  '/v3/twin/advisory', '/v3/evidence_grid'}
        assert {p.topic_name for p in node.publishers} >= {'/v3/cooperative/cmd', '/diagnostics'}
    finally:
        node.destroy_node()
    with pytest.raises(ConfigError, match="predecessor_id' = 'v1' disagrees with platoon_file"):
        AdvisoryFollowerNode(context=ros_context, parameter_overrides=[
            Parameter('vehicle_id', value='v3'), Parameter('predecessor_id', value='v1'),
            Parameter('platoon_file', value=str(CONFIG / 'platoon.yaml'))])
    with pytest.raises(ConfigError, match="follower.mode': expected one of ego, cooperative"):
        AdvisoryFollowerNode(context=ros_context, parameter_overrides=[
            Parameter('vehicle_id', value='v3'), Parameter('follower.mode', value='fast')])


def test_config_file_documents_every_parameter():
    values = params_file.load_yaml_params(CONFIG / 'advisory_follower.yaml')
    table = {p.name: p.default for p in PARAMS}
    assert values == table


def test_ego_mode_brakes_for_what_its_own_evidence_shows(run):
    r = run(**{'follower.mode': 'ego'})
    assert '/v2/evidence_grid' in {s.topic_name for s in r.node.subscriptions}
    assert '/twin/warnings' not in {s.topic_name for s in r.node.subscriptions}
    t = START + S
    r.drive(START, t)
    spec = GridSpec(0.0, -10.0, 0.5, 400, 40)
    cells = np.zeros(spec.shape, np.int8)
    x_now = V * 1.0
    pred_rear = x_now + 3.5 + GAP                                     # the predecessor's cells: skipped
    cells[18:22, int(pred_rear / 0.5):int((pred_rear + 4.5) / 0.5)] = 100
    car = x_now + 3.5 + 60.0                                          # a car 60 m ahead: past the predecessor,
    cells[18:22, int(car / 0.5):int((car + 4.0) / 0.5)] = 100          # the predecessor's to stop for
    r.runner.feed('/v2/evidence_grid', grid_to_msg(spec, cells, t), t)
    r.drive(t, t + 100 * MS)
    assert r.node.core.ego_obstacle is None and r.node.core.last.limit is Limit.PREDECESSOR
    cut_in = x_now + 0.1 * V + 3.5 + 5.0                              # a car 5 m ahead, short of the predecessor
    cells[18:22, int(cut_in / 0.5):int((cut_in + 4.0) / 0.5)] = 100
    t += 100 * MS
    r.runner.feed('/v2/evidence_grid', grid_to_msg(spec, cells, t), t)
    r.drive(t, t + 200 * MS)
    assert r.node.core.ego_obstacle.distance_m == pytest.approx(5.25)
    assert r.node.core.last.limit is Limit.OBSTACLE and r.cmds()[-1][2] == pytest.approx(-8.0)
    r.drive(t + 200 * MS, t + 800 * MS)                               # no evidence for 0.8 s: forgotten
    assert r.node.core.ego_obstacle is None and r.node.core.last.limit is Limit.PREDECESSOR
