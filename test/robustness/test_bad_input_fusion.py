"""Property tests: the fusion node under bad input (issue 7, item 4).

Garbage evidence grids and odometry are interleaved with a fixed valid stream of
two vehicles under the lock-step runner. The common grids must be byte-for-byte
those of the valid stream alone, nothing may escape a callback (no ``internal``
drop), and each garbage message must be exactly one drop under its cause.
"""
from __future__ import annotations

import math
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
from cooperative_fusion.nodes.fusion_node import FusionNode
from cooperative_fusion.ros.grid import grid_from_msg, grid_to_msg
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.time import ns_to_stamp

S = 50 * 10**9
END = S + 900 * MS
EV = GridSpec(0.0, -8.0, 0.2, 150, 80)
POSITIONS = {'v1': 20.0, 'v2': 8.0}


def make_node(ctx) -> FusionNode:
    params = {'vehicles': ['v1', 'v2'], 'vehicle_weights': [1.0, 0.8], 'publish_rate_hz': 10.0,
              'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0, 'grid.forward_offset_m': 0.0,
              'coregistration.enabled': False, 'diagnostics.period_s': 0.3, 'discovery_period_s': 100.0,
              'fusion.max_age_s': 0.5, 'fusion.future_tolerance_s': 0.05}
    return FusionNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def cells(vid: str) -> np.ndarray:
    c = np.full(EV.shape, -1, np.int8)
    c[20:60, :] = 20                              # free road
    x0 = 60 if vid == 'v1' else 100
    c[45:55, x0:x0 + 10] = 90                     # each vehicle sees one box
    return c


def evidence(vid: str, t_ns: int) -> OccupancyGrid:
    return grid_to_msg(EV, cells(vid), t_ns)


def odom(vid: str, cov_xy: float = 0.01) -> Odometry:
    cov = np.diag([cov_xy, cov_xy, 0.01, 1e-4, 1e-4, 1e-3])
    return pose_to_odometry(PoseSample(1, np.array([POSITIONS[vid], 0.0, 0.0]), np.array([1.0, 0, 0, 0]), cov),
                            'map', f'{vid}/base_link')


def valid_stream() -> Stream:
    ev = []
    for k in range(7):
        t = S + 50 * MS + k * 100 * MS
        for i, vid in enumerate(('v1', 'v2')):
            ev.append((t + (5 + i) * MS, f'/{vid}/odom', odom(vid, 0.01 + 0.01 * i)))
            ev.append((t + (20 + 10 * i) * MS, f'/{vid}/evidence_grid', evidence(vid, t)))
    ev.sort(key=lambda e: e[0])
    return [(topic, msg, t) for t, topic, msg in ev]


@dataclass
class Run:
    grids: harness.Outputs
    drops: dict[str, int]


def drops_of(node: FusionNode) -> dict[str, int]:
    return node.drops.counts          # <vehicle>.<cause>, or <cause> for the node as a whole


def fingerprint(topic: str, msg: Any) -> bytes:
    spec, c = grid_from_msg(msg)
    return repr(spec).encode() + c.tobytes()


def run(ctx, stream: Stream) -> Run:
    node = make_node(ctx)
    outputs, _ = harness.run_node(node, stream, start_ns=S, end_ns=END, outputs=('/cooperative/grid',),
                                  fingerprint=fingerprint)
    return Run(outputs, drops_of(node))


baseline = harness.once(lambda ctx: run(ctx, valid_stream()))


def test_valid_stream_fuses_both_boxes(ros_context):
    base = baseline(ros_context)
    # 9 heartbeat grids + 7 published right after the first evidence of each cycle (publish_on_evidence)
    # + 7 for the second, 10 ms later: held by publish_min_interval_s, out once it has passed (20 ms)
    assert len(base.grids) == 23 and base.drops == {}
    last = np.frombuffer(base.grids[-1][2][-(150 * 80):], np.int8)
    assert (last >= 65).sum() >= 150          # both boxes (2 x 100 cells) seen
    assert len({g for _, _, g in base.grids[1:]}) > 1


# ------------------------------------------------------------------ garbage --

@st.composite
def evidence_garbage(draw) -> Garbage:
    vid = draw(st.sampled_from(['v1', 'v2']))
    t = S + 50 * MS + draw(st.integers(0, 6)) * 100 * MS
    msg = evidence(vid, t)
    info = msg.info
    kind = draw(st.sampled_from(['frame', 'length', 'rotated', 'resolution', 'empty', 'huge', 'zero_quat',
                                 'nan_origin', 'other_resolution', 'off_lattice', 'future', 'old', 'duplicate']))
    cause = 'malformed'
    if kind == 'frame':
        msg.header.frame_id = draw(st.sampled_from(['', 'odom', 'v1/base_link', 'world']))
        cause = 'frame'
    elif kind == 'length':
        n = len(msg.data)
        m = draw(st.integers(0, n + 50).filter(lambda m: m != n))
        msg.data = (bytes(msg.data) + bytes(50))[:m]
    elif kind == 'rotated':        # tilted (roll or pitch): a yaw alone is a grid along the road
        angle = draw(st.floats(1e-3, math.pi))
        setattr(info.origin.orientation, draw(st.sampled_from('xy')), math.sin(angle / 2))
        info.origin.orientation.w = math.cos(angle / 2)
    elif kind == 'resolution':
        info.resolution = draw(st.sampled_from([0.0, -0.2, math.nan, math.inf]))
    elif kind == 'empty':
        info.width, info.height = draw(st.sampled_from([(0, 0), (0, 80), (150, 0)]))
        msg.data = []
    elif kind == 'huge':
        info.width, info.height = draw(st.sampled_from([(2**31, 2**31), (10**6, 10**6), (150, 10**7)]))
    elif kind == 'zero_quat':
        info.origin.orientation.w = 0.0
    elif kind == 'nan_origin':
        setattr(info.origin.position, draw(st.sampled_from('xy')), draw(st.sampled_from([math.nan, math.inf])))
    elif kind == 'other_resolution':      # neither an integer multiple nor a fraction of 0.2 m
        info.resolution = draw(st.sampled_from([0.3, 0.15, 0.25, 0.7]))
        cause = 'geometry'
    elif kind == 'off_lattice':
        info.origin.position.x += draw(st.sampled_from([0.05, 0.1, 0.013]))
        cause = 'geometry'
    elif kind == 'future':
        msg.header.stamp = ns_to_stamp(draw(st.sampled_from([YEAR_2033_NS, (2**31 - 1) * 10**9, S + 3_600 * 10**9])))
        cause = 'future'
    elif kind == 'old':
        msg.header.stamp = ns_to_stamp(draw(st.sampled_from([0, 1, S - 10 * 10**9, S - 600 * MS])))
        cause = 'too_old'
    else:
        return Garbage(kind, f'/{vid}/evidence_grid', None, frozenset({f'{vid}.duplicate', f'{vid}.too_old'}))
    # A well-formed grid at a random cycle's stamp may be too old or too new where it arrives, or
    # carry the stamp of a grid fused already.
    causes = {cause, 'too_old', 'future', 'duplicate'} if cause == 'geometry' else {cause}
    return Garbage(kind, f'/{vid}/evidence_grid', msg, frozenset(f'{vid}.{c}' for c in causes))


@st.composite
def odom_garbage(draw) -> Garbage:
    vid = draw(st.sampled_from(['v1', 'v2']))
    msg = odom(vid, 0.01 + 0.01 * (vid == 'v2'))
    kind = draw(st.sampled_from(['nan_position', 'zero_quat', 'nan_quat', 'inf_twist', 'frame', 'not_psd',
                                 'nan_cov']))
    cause = 'malformed_odom'
    if kind == 'nan_position':
        setattr(msg.pose.pose.position, draw(st.sampled_from('xyz')), draw(st.sampled_from([math.nan, math.inf])))
    elif kind == 'zero_quat':
        q = msg.pose.pose.orientation
        q.x = q.y = q.z = q.w = 0.0
    elif kind == 'nan_quat':
        msg.pose.pose.orientation.z = math.nan
    elif kind == 'inf_twist':
        msg.twist.twist.angular.z = -math.inf
    elif kind == 'frame':
        msg.header.frame_id = draw(st.sampled_from(['', 'odom', 'world']))
        msg.pose.pose.position.x = 500.0                 # an odom-frame pose: far from the map pose
        cause = 'frame'
    else:
        cov = np.array(msg.pose.covariance).reshape(6, 6)
        if kind == 'not_psd':
            cov[0, 0] = -draw(st.floats(1e-3, 1e3))
        else:
            cov[draw(st.integers(0, 1)), draw(st.integers(0, 1))] = draw(st.sampled_from([math.nan, math.inf]))
        msg.pose.covariance = cov.ravel()
        cause = 'covariance'
    return Garbage(kind, f'/{vid}/odom', msg, frozenset({f'{vid}.{cause}'}))


@st.composite
def interleaving(draw) -> Case:
    valid = valid_stream()
    garbage = draw(st.lists(st.one_of(evidence_garbage(), odom_garbage()), min_size=1, max_size=6))
    slots = sorted(draw(st.lists(st.integers(0, len(valid) - 1), min_size=len(garbage), max_size=len(garbage))))
    return harness.interleave(valid, garbage, slots)


@SETTINGS
@given(interleaving())
def test_garbage_does_not_change_the_common_grid_and_is_counted(ros_context, case):
    stream, garbage = case
    base = baseline(ros_context)
    got = run(ros_context, stream)
    harness.assert_same_outputs(got.grids, base.grids, garbage)
    harness.check_drops(got.drops, base.drops, garbage)
