"""Property tests: the twin node under bad input (issue 7).

Garbage common grids, odometry, time references and radar targets are
interleaved with a fixed valid stream (two vehicles closing on a stopped car)
under the lock-step runner. The twin's outputs for the valid stream (warnings,
predicted grids, advisories) must be exactly those of the valid stream alone,
nothing may escape a callback (no ``internal`` drop), and each garbage message
must be exactly one drop under its cause.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import harness
import numpy as np
from harness import MS, SETTINGS, YEAR_2033_NS, Case, Garbage, Stream
from hypothesis import given
from hypothesis import strategies as st
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.parameter import Parameter

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.app.lockstep import LockstepRunner
from cooperative_fusion.nodes.twin_node import TwinNode
from cooperative_fusion.ros.grid import grid_to_msg
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.pointcloud import array_to_cloud, from_columns
from cooperative_fusion.ros.time import make_time_reference, ns_to_stamp

S = 50 * 10**9                       # common time of the first grid, ns
PERIOD = 100 * MS
CYCLES = 10
END = S + CYCLES * PERIOD + 200 * MS
SPEC = GridSpec(0.0, -8.0, 0.4, 250, 40)            # 100 m x 16 m, the common grid's 0.4 m cells
VEHICLES = ('v1', 'v2')
CLOCK_OFFSETS = {'v1': 800 * MS, 'v2': -400 * MS}  # vehicle clock - common time
SPEED = 25.0
X0 = {'v1': 20.0, 'v2': 0.0}                        # base_link at S, metres
CAR_X, CAR_L, CAR_W = 85.0, 4.4, 1.6                # the stopped car ahead
OUTPUTS = ('/twin/warnings', '/twin/predicted_grid', '/v1/twin/advisory', '/v2/twin/advisory')


def make_node(ctx) -> TwinNode:
    params = {'vehicles': list(VEHICLES), 'vehicle_lengths_m': [4.5, 4.5], 'vehicle_widths_m': [1.8, 1.8],
              'vehicle_rear_overhangs_m': [1.0, 1.0], 'horizon_s': 3.0, 'output_horizons_s': [0.5, 1.0],
              'conflicts.min_track_hits': 3, 'diagnostics.period_s': 0.3, 'publish_markers': False}
    return TwinNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def grid(t_ns: int) -> OccupancyGrid:
    cells = np.zeros(SPEC.shape, np.int8)
    xs, ys = SPEC.cell_centers()
    cells[np.ix_(np.abs(ys) <= CAR_W / 2, np.abs(xs - CAR_X) <= CAR_L / 2)] = 100
    return grid_to_msg(SPEC, cells, t_ns)


def odom(vid: str, t_ns: int) -> Odometry:
    x = X0[vid] + SPEED * (t_ns - S) * 1e-9
    pose = PoseSample(t_ns + CLOCK_OFFSETS[vid], np.array([x, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]),
                      np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-4]), np.array([SPEED, 0.0, 0.0]))
    return pose_to_odometry(pose, 'map', f'{vid}/base_link')


def radar(vid: str, t_ns: int, fields: tuple[str, ...] = ('x', 'y', 'z', 'velocity', 'rcs')):
    cols = {'x': [CAR_X - 2.0, CAR_X - 1.8], 'y': [0.3, -0.4], 'z': [0.5, 0.5], 'velocity': [0.05, -0.05],
            'rcs': [10.0, 8.0]}
    return array_to_cloud(from_columns({f: cols[f] for f in fields}), t_ns, 'map')


def valid_stream() -> Stream:
    """(topic, message, sim time): clocks first, then per cycle odometry, radar, grid."""
    ev: list[tuple[int, int, str, Any]] = []
    for k in range(3):
        common = S - (3 - k) * PERIOD
        for i, vid in enumerate(VEHICLES):
            ev.append((common, i, f'/{vid}/time_reference', make_time_reference(common + CLOCK_OFFSETS[vid], common)))
    for k in range(CYCLES):
        t = S + k * PERIOD
        for i, vid in enumerate(VEHICLES):
            ev.append((t + (5 + i) * MS, 10 + i, f'/{vid}/odom', odom(vid, t)))
            ev.append((t + (10 + i) * MS, 20 + i, f'/{vid}/radar/targets', radar(vid, t - 10 * MS)))
        ev.append((t + 30 * MS, 30, '/cooperative/grid', grid(t)))
    ev.sort(key=lambda e: (e[0], e[1]))
    return [(topic, msg, t) for t, _, topic, msg in ev]


#: Index of the first message after the first cycle: garbage goes after it (an 'old' message
#: before any valid one of its kind would be taken as the first of its kind, not dropped).
FIRST_SLOT = next(i for i, (topic, _, _) in enumerate(valid_stream()) if topic == '/cooperative/grid')


@dataclass
class Run:
    outputs: harness.Outputs
    drops: dict[str, int]
    cycles: int


def fingerprint(topic: str, msg: Any) -> bytes:
    if topic == '/twin/predicted_grid':
        return repr((msg.info.origin.position.x, msg.info.origin.position.y, msg.info.width,
                     msg.info.height)).encode() + bytes(msg.data)
    if topic == '/twin/warnings':
        return repr([(s.name, s.level, s.message, [(kv.key, kv.value) for kv in s.values])
                     for s in msg.status]).encode()
    return repr([(p.header.stamp.sec, p.header.stamp.nanosec, p.pose.position.x, p.pose.position.y)
                 for p in msg.poses]).encode()


def run(ctx, stream: Stream) -> Run:
    node = make_node(ctx)
    outputs, _ = harness.run_node(node, stream, start_ns=S - 500 * MS, end_ns=END, outputs=OUTPUTS,
                                  fingerprint=fingerprint)
    return Run(outputs, dict(node.drops.counts), node.edge.cycles)


baseline = harness.once(lambda ctx: run(ctx, valid_stream()))


def test_valid_stream_cycles_warns_and_predicts(ros_context):
    base = baseline(ros_context)
    assert base.drops == {} and base.cycles == CYCLES
    topics = Counter(topic for topic, _, _ in base.outputs)
    assert topics['/twin/predicted_grid'] == 2 * CYCLES and topics['/twin/warnings'] == CYCLES
    warned = [w for topic, _, w in base.outputs if topic == '/twin/warnings' and b'v1' in w and b'v2' in w]
    assert len(warned) >= CYCLES - 3          # both warned from the min_track_hits-th grid on
    assert topics['/v1/twin/advisory'] == topics['/v2/twin/advisory'] == len(warned)


# ------------------------------------------------------------------ garbage --

def _cycle_stamp(draw) -> int:
    return S + draw(st.integers(0, CYCLES - 1)) * PERIOD


@st.composite
def grid_garbage(draw) -> Garbage:
    msg = grid(_cycle_stamp(draw))
    info = msg.info
    kind = draw(st.sampled_from(['frame', 'length', 'rotated', 'resolution', 'empty', 'zero_quat', 'nan_origin',
                                 'future', 'old', 'out_of_order']))
    cause = 'grid.malformed'
    if kind == 'frame':
        msg.header.frame_id = draw(st.sampled_from(['', 'odom', 'v1/base_link']))
        cause = 'grid.frame'
    elif kind == 'length':
        n = len(msg.data)
        msg.data = (bytes(msg.data) + bytes(50))[:draw(st.integers(0, n + 50).filter(lambda m: m != n))]
    elif kind == 'rotated':        # tilted (roll or pitch): a yaw alone is a grid along the road
        angle = draw(st.floats(1e-3, math.pi))
        setattr(info.origin.orientation, draw(st.sampled_from('xy')), math.sin(angle / 2))
        info.origin.orientation.w = math.cos(angle / 2)
    elif kind == 'resolution':
        info.resolution = draw(st.sampled_from([0.0, -0.4, math.nan, math.inf]))
    elif kind == 'empty':
        info.width, info.height = draw(st.sampled_from([(0, 0), (0, 40), (250, 0)]))
        msg.data = []
    elif kind == 'zero_quat':
        info.origin.orientation.w = 0.0
    elif kind == 'nan_origin':
        setattr(info.origin.position, draw(st.sampled_from('xy')), draw(st.sampled_from([math.nan, -math.inf])))
    elif kind == 'future':
        msg.header.stamp = ns_to_stamp(draw(st.sampled_from([YEAR_2033_NS, S + 3_600 * 10**9, S + 60 * 10**9])))
        cause = 'grid.future'
    elif kind == 'old':                 # far past: stale, never a restart on its own
        msg.header.stamp = ns_to_stamp(draw(st.sampled_from([0, 1, S - 10 * 10**9, S - 45 * 10**9])))
        cause = 'grid.too_old'
    else:                               # a grid from before the first cycle, or the previous one again
        msg.header.stamp = ns_to_stamp(S - draw(st.sampled_from([50, 2_000, 4_900])) * MS)
        cause = 'grid.out_of_order'
    return Garbage(kind, '/cooperative/grid', msg, frozenset({cause}))


@st.composite
def odom_garbage(draw) -> Garbage:
    vid = draw(st.sampled_from(VEHICLES))
    msg = odom(vid, _cycle_stamp(draw))
    kind = draw(st.sampled_from(['nan_position', 'zero_quat', 'nan_quat', 'inf_twist', 'frame', 'not_psd',
                                 'nan_cov', 'future', 'old']))
    cause = 'odom.malformed'
    if kind == 'nan_position':
        setattr(msg.pose.pose.position, draw(st.sampled_from('xyz')), draw(st.sampled_from([math.nan, math.inf])))
    elif kind == 'zero_quat':
        q = msg.pose.pose.orientation
        q.x = q.y = q.z = q.w = 0.0
    elif kind == 'nan_quat':
        msg.pose.pose.orientation.z = math.nan
    elif kind == 'inf_twist':
        msg.twist.twist.linear.x = -math.inf
    elif kind == 'frame':
        msg.header.frame_id = draw(st.sampled_from(['', 'odom', 'world']))
        cause = 'odom.frame'
    elif kind in ('not_psd', 'nan_cov'):
        cov = np.array(msg.pose.covariance).reshape(6, 6)
        if kind == 'not_psd':
            cov[0, 0] = -draw(st.floats(1e-3, 1e3))
            cause = 'odom.covariance'
        else:
            cov[draw(st.integers(0, 1)), draw(st.integers(0, 1))] = math.nan
        msg.pose.covariance = cov.ravel()
    elif kind == 'future':
        msg.header.stamp = ns_to_stamp(draw(st.sampled_from([YEAR_2033_NS, S + 3_600 * 10**9])))
        cause = 'odom.future'
    else:
        msg.header.stamp = ns_to_stamp(draw(st.sampled_from([0, S - 10**9, S - 200 * MS])) + CLOCK_OFFSETS[vid]
                                       if vid == 'v1' else draw(st.sampled_from([0, S - 10**9])))
        cause = 'odom.out_of_order'
    return Garbage(kind, f'/{vid}/odom', msg, frozenset({cause}))


@st.composite
def radar_garbage(draw) -> Garbage:
    vid = draw(st.sampled_from(VEHICLES))
    kind = draw(st.sampled_from(['missing_field', 'frame', 'future', 'old']))
    t = _cycle_stamp(draw)
    if kind == 'missing_field':
        drop = draw(st.sampled_from(['x', 'y', 'velocity']))
        msg = radar(vid, t, tuple(f for f in ('x', 'y', 'z', 'velocity', 'rcs') if f != drop))
        cause = 'radar.malformed'
    elif kind == 'frame':
        msg = radar(vid, t)
        msg.header.frame_id = draw(st.sampled_from(['', f'{vid}/radar']))
        cause = 'radar.frame'
    elif kind == 'future':
        msg = radar(vid, draw(st.sampled_from([YEAR_2033_NS, S + 60 * 10**9])))
        cause = 'radar.future'
    else:
        msg = radar(vid, draw(st.sampled_from([0, S - 10**9, S - 20 * MS])))
        cause = 'radar.out_of_order'
    return Garbage(kind, f'/{vid}/radar/targets', msg, frozenset({cause}))


@st.composite
def tref_garbage(draw) -> Garbage:
    """A time reference off the clock fit by a second to years, or with a negative stamp."""
    vid = draw(st.sampled_from(VEHICLES))
    common = _cycle_stamp(draw)
    vehicle = common + CLOCK_OFFSETS[vid]
    if draw(st.booleans()):
        off = draw(st.one_of(st.integers(10**9, 10**12), st.integers(-common + 1, -10**9)))
        return Garbage('absurd', f'/{vid}/time_reference', make_time_reference(vehicle, common + off),
                       frozenset({'time_reference.outlier'}))
    msg = make_time_reference(vehicle, common)
    msg.time_ref.sec = -draw(st.integers(1, 2**31 - 1))
    return Garbage('negative', f'/{vid}/time_reference', msg, frozenset({'time_reference.stamp'}))


@st.composite
def interleaving(draw) -> Case:
    valid = valid_stream()
    garbage = draw(st.lists(st.one_of(grid_garbage(), odom_garbage(), radar_garbage()), min_size=1, max_size=6))
    # At most two stale grids (restart_grids = 3 in a row are a replay restart, by design) and at most two
    # absurd time references per vehicle (min_samples = 3 agreeing rejections are a clock jump, by design).
    stale = [g for g in garbage if g.kind == 'old' and g.topic == '/cooperative/grid']
    garbage = [g for g in garbage if g not in stale[2:]]
    garbage += draw(st.lists(tref_garbage(), max_size=2))
    garbage = draw(st.permutations(garbage))
    slots = sorted(draw(st.lists(st.integers(FIRST_SLOT, len(valid) - 1), min_size=len(garbage),
                                 max_size=len(garbage))))
    return harness.interleave(valid, garbage, slots)


@SETTINGS
@given(interleaving())
def test_garbage_does_not_change_the_twin_outputs_and_is_counted(ros_context, case):
    stream, garbage = case
    base = baseline(ros_context)
    got = run(ros_context, stream)
    assert got.cycles == base.cycles
    harness.assert_same_outputs(got.outputs, base.outputs, garbage)
    harness.check_drops(got.drops, base.drops, garbage)


def test_one_stale_grid_does_not_restart_the_twin_but_three_in_a_row_do(ros_context):
    valid = valid_stream()
    old = [grid(S - 20 * 10**9 + k * PERIOD) for k in range(3)]
    one = valid[:FIRST_SLOT + 1] + [('/cooperative/grid', old[0], valid[FIRST_SLOT][2])] + valid[FIRST_SLOT + 1:]
    got = run(ros_context, one)
    assert got.drops == {'grid.too_old': 1}
    assert got.outputs == baseline(ros_context).outputs           # tracks kept: same warnings, same grids
    node = make_node(ros_context)
    try:
        runner = LockstepRunner([node], None, publish_to_dds=False, start_ns=S - 500 * MS)
        for topic, msg, t in valid:
            runner.feed(topic, msg, t)
        tracks = len(node.edge.last_result.tracks)
        assert tracks == 1 and node.edge.restarts == 0
        for k, msg in enumerate(old):
            runner.feed('/cooperative/grid', msg, END + k * PERIOD)
        assert node.edge.restarts == 1 and node.drops.counts == {'grid.too_old': 2}
        assert node.edge.mirror.cells is not None and node.edge.mirror.stamp_ns == S - 20 * 10**9 + 2 * PERIOD
        assert node.edge.cycles == CYCLES + 1 and node.edge.last_result.tracks == []    # a new tracker
    finally:
        node.destroy_node()


def test_dropped_grids_leave_the_mirror_and_its_bookkeeping_untouched(ros_context):
    node = make_node(ros_context)
    try:
        runner = LockstepRunner([node], None, publish_to_dds=False, start_ns=S - 500 * MS)
        for topic, msg, t in valid_stream():
            runner.feed(topic, msg, t)
        before = (node.edge.mirror.checksum(), node.edge.mirror.stamp_ns, node.edge.mirror.received,
                  list(node.edge.mirror.intervals_ns), node.edge.self_check.values())
        empty = grid(S + (CYCLES - 2) * PERIOD)          # older than the latest, and empty
        empty.data = bytes(len(empty.data))
        short = grid(S + CYCLES * PERIOD)                # newer, but its data is cut short
        short.data = bytes(short.data)[:-1]
        for k, msg in enumerate((empty, short)):
            runner.feed('/cooperative/grid', msg, END + k * PERIOD)
        after = (node.edge.mirror.checksum(), node.edge.mirror.stamp_ns, node.edge.mirror.received,
                 list(node.edge.mirror.intervals_ns), node.edge.self_check.values())
        assert node.drops.counts == {'grid.out_of_order': 1, 'grid.malformed': 1}
        assert after == before
    finally:
        node.destroy_node()
