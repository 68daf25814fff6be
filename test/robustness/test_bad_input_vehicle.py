"""Property tests: the vehicle node under bad input (issue 7, item 4).

Hypothesis interleaves garbage messages with one fixed valid stream and runs the
node under the lock-step runner (no DDS timing: the run is deterministic). For
every example:

1. nothing escapes a callback and no drop is an ``internal`` one (a bug);
2. the evidence grids and radar targets are byte-for-byte those of the valid
   stream alone;
3. every garbage message is counted as exactly one drop, under a cause that
   names what was wrong with it.

Garbage is fed at the sim time of the message before it, so the timers fire at
the same instants as in the clean run.
"""
from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import harness
import numpy as np
from harness import MS, SETTINGS, YEAR_2033_NS, Case, Garbage, Stream
from hypothesis import given
from hypothesis import strategies as st
from nav_msgs.msg import Odometry
from numpy.testing import assert_array_equal
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, PointCloud2, PointField

from cooperative_fusion.core import se3
from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.nodes.vehicle_node import VehicleNode
from cooperative_fusion.ros.grid import grid_from_msg
from cooperative_fusion.ros.image import array_to_depth_image, k_to_camera_info
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.pointcloud import array_to_cloud, cloud_to_array, from_columns, xyz
from cooperative_fusion.ros.time import make_time_reference

V = 'v1'
T0 = 1_000_000_000_000                   # vehicle clock at the first lidar sweep, ns
START = T0 - 500 * MS                    # sim time of the first message
END = T0 + 1_000 * MS
CLOCK_OFFSET = 100 * MS                  # common - vehicle
K = np.array([[16.0, 0.0, 15.5], [0.0, 16.0, 11.5], [0.0, 0.0, 1.0]])
W, H = 32, 24
TOPICS = {s: f'/{V}/{t}' for s, t in (('lidar', 'lidar/points'), ('radar', 'radar/points'),
                                      ('camera', 'camera/depth/image'), ('info', 'camera/depth/camera_info'),
                                      ('odom', 'odom'), ('tref', 'time_reference'))}
OUTPUTS = (f'/{V}/evidence_grid', f'/{V}/radar/targets')


def make_node(ctx) -> VehicleNode:
    params = {'vehicle_id': V, 'grid.size_x_m': 20.0, 'grid.size_y_m': 12.0, 'grid.forward_offset_m': 8.0,
              'sync.stream_timeout_s': 0.5, 'sync.poll_period_s': 0.05, 'diagnostics.period_s': 0.25,
              'timebase.enabled': True, 'output_stamp_offset_s': 0.0, 'camera.hfov_deg': 120.0}
    return VehicleNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


# ------------------------------------------------------------------ the valid stream --

def odom(t_ns: int) -> Odometry:
    q = se3.to_translation_quat(se3.from_xy_yaw(0.0, 0.0, 0.0))[1]
    cov = np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-3])
    return pose_to_odometry(PoseSample(t_ns, np.zeros(3), q, cov, np.zeros(3)), 'map', f'{V}/base_link')


def lidar_points() -> np.ndarray:
    """A wall 6.8 m ahead of the lidar (y -2..2 m, z 0.5..1.5 m below to above it) and a ground ring."""
    y, z = np.meshgrid(np.linspace(-2.0, 2.0, 21), np.linspace(-1.2, -0.2, 4))
    wall = np.column_stack([np.full(y.size, 6.8), y.ravel(), z.ravel()])
    az = np.radians(np.arange(-40.0, 40.0, 1.0))
    ring = np.column_stack([4.0 * np.cos(az), 4.0 * np.sin(az), np.full(az.size, -1.9)])
    p = np.vstack([wall, ring])
    return from_columns({'x': p[:, 0], 'y': p[:, 1], 'z': p[:, 2], 'intensity': np.ones(len(p))})


def lidar(t_ns: int, points: np.ndarray | None = None) -> PointCloud2:
    return array_to_cloud(lidar_points() if points is None else points, t_ns, f'{V}/lidar')


def radar(t_ns: int) -> PointCloud2:
    pts = from_columns({'x': [5.0, 9.0], 'y': [0.5, -1.0], 'z': [0.5, 0.3], 'velocity': [0.0, 3.0],
                        'rcs': [10.0, 5.0]})
    return array_to_cloud(pts, t_ns, f'{V}/radar')


def depth(t_ns: int) -> Image:
    d = np.full((H, W), 5.0, np.float32)
    d[H // 2:, :] = np.nan                      # lower half: no return
    return array_to_depth_image(d, t_ns, f'{V}/camera_optical')


def valid_stream() -> Stream:
    """(topic, message, sim time) in feed order: parked vehicle, 6 lidar sweeps at 10 Hz."""
    ev: list[tuple[int, int, str, Any]] = [(START, 0, TOPICS['info'], k_to_camera_info(K, W, H, T0, f'{V}/camera_optical'))]
    for k in range(3):
        v = T0 - (3 - k) * 1_000_000_000
        ev.append((START, 1 + k, TOPICS['tref'], make_time_reference(v, v + CLOCK_OFFSET)))
    for i, t in enumerate(range(T0 - 500 * MS, T0 + 800 * MS + 1, 50 * MS)):
        ev.append((max(START, t), 10 + i, TOPICS['odom'], odom(t)))
    for k in range(6):
        t = T0 + k * 100 * MS
        ev.append((t + 20 * MS, 100 + k, TOPICS['radar'], radar(t - 10 * MS)))
        ev.append((t + 30 * MS, 200 + k, TOPICS['camera'], depth(t + 10 * MS)))
        ev.append((t + 50 * MS, 300 + k, TOPICS['lidar'], lidar(t)))
    ev.sort(key=lambda e: (e[0], e[1]))
    return [(topic, msg, t) for t, _, topic, msg in ev]


# ------------------------------------------------------------------ running --

@dataclass
class Run:
    outputs: harness.Outputs
    drops: dict[str, int]
    cycles: int
    alive: bool


def fingerprint(topic: str, msg: Any) -> bytes:
    if topic.endswith('evidence_grid'):
        spec, cells = grid_from_msg(msg)
        return repr(spec).encode() + b'|' + cells.tobytes()
    return bytes(msg.data) + repr([(f.name, f.offset, f.datatype) for f in msg.fields]).encode()


def run(ctx, stream: Stream) -> Run:
    node = make_node(ctx)

    def one_more_cycle(runner) -> int:
        """After all the garbage the node still processes: one more valid cycle gives one more grid."""
        before = node.core.cycles
        for k in (6, 7, 8):
            t = T0 + k * 100 * MS
            runner.feed(TOPICS['odom'], odom(t + 100 * MS), END + k * MS)
        for k in (6, 7):
            t = T0 + k * 100 * MS
            runner.feed(TOPICS['radar'], radar(t - 10 * MS), END + 10 * MS + k * MS)
            runner.feed(TOPICS['camera'], depth(t + 10 * MS), END + 20 * MS + k * MS)
            runner.feed(TOPICS['lidar'], lidar(t), END + 30 * MS + k * MS)
        runner.advance_to(END + 100 * MS)
        return node.core.cycles - before
    outputs, cycles = harness.run_node(node, stream, start_ns=START, end_ns=END, outputs=OUTPUTS,
                                       fingerprint=fingerprint, then=one_more_cycle)
    return Run(outputs, node.drops.counts, cycles, node.context.ok())


baseline = harness.once(lambda ctx: run(ctx, valid_stream()))


def test_valid_stream_gives_grids_and_no_drops(ros_context):
    """The reference run itself: it must produce evidence, else the properties below prove nothing."""
    base = baseline(ros_context)
    grids = [o for o in base.outputs if o[0].endswith('evidence_grid')]
    assert len(grids) >= 5, base
    assert base.drops == {}, base.drops
    assert base.cycles >= 1
    stamps = [s for topic, s, _ in base.outputs if topic.endswith('evidence_grid')]
    assert stamps == sorted(set(stamps))
    assert stamps[0] == T0 + CLOCK_OFFSET


# ------------------------------------------------------------------ garbage --

SYNC = frozenset({'sync.late', 'sync.out_of_order', 'sync.unmatched', 'sync.stale', 'sync.queue_overflow'})
bad_stamps = st.sampled_from([YEAR_2033_NS, (2**31 - 1) * 10**9, T0 + 3_600 * 10**9])
old_stamps = st.sampled_from([0, 1, T0 - 10 * 10**9, T0 - 3 * 10**9])
valid_stamps = st.integers(0, 5).map(lambda k: T0 + k * 100 * MS)


@st.composite
def random_layout_cloud(draw, stream: str) -> Garbage:
    """A PointCloud2 with random fields, steps, sizes, byte order and data; stamped in the past."""
    msg = PointCloud2()
    msg.header.frame_id = f'{V}/{stream}'
    stamp = draw(old_stamps)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
    names = draw(st.lists(st.sampled_from(['x', 'y', 'z', 'intensity', 'velocity', 'rcs', 't', '']),
                          max_size=6))
    msg.fields = [PointField(name=n, offset=draw(st.integers(0, 40)), datatype=draw(st.integers(0, 10)),
                             count=draw(st.integers(0, 3))) for n in names]
    msg.height, msg.width = draw(st.integers(0, 3)), draw(st.integers(0, 5))
    msg.point_step = draw(st.integers(0, 48))
    msg.row_step = draw(st.one_of(st.just(msg.point_step * msg.width), st.integers(0, 300)))
    msg.is_bigendian = draw(st.booleans())
    n = draw(st.one_of(st.just(msg.row_step * msg.height), st.integers(0, 600)))
    msg.data = array.array('B', draw(st.binary(min_size=n, max_size=n)))
    usable = True
    try:
        points, _ = cloud_to_array(msg, required=('x', 'y', 'z', 'velocity', 'rcs') if stream == 'radar'
                                   else ('x', 'y', 'z'))
        xyz(points)
    except MessageFormatError:
        usable = False
    # A layout that happens to be readable is an old message: the synchroniser drops it (or its
    # whole set finds no pose at that stamp).
    causes = frozenset({f'{stream}.malformed'}) if not usable else SYNC | {'set.no_pose'}
    return Garbage('random_layout', TOPICS[stream], msg, causes)


@st.composite
def cloud_garbage(draw) -> Garbage:
    stream = draw(st.sampled_from(['lidar', 'radar']))
    make = lidar if stream == 'lidar' else radar
    t = draw(valid_stamps)
    kind = draw(st.sampled_from(['layout', 'length', 'frame', 'future', 'old', 'duplicate', 'nonfinite_frame']))
    if kind == 'layout':
        return draw(random_layout_cloud(stream))
    msg = make(t)
    if kind == 'length':
        n = len(msg.data)
        m = draw(st.integers(0, n + 64).filter(lambda m: m != n))
        msg.data = array.array('B', bytes(msg.data)[:m] + bytes(max(0, m - n)))
        return Garbage(kind, TOPICS[stream], msg, frozenset({f'{stream}.malformed'}))
    if kind == 'frame':
        msg.header.frame_id = draw(st.sampled_from(['', 'map', 'v2/lidar', f'{V}/camera_optical', 'lidar']))
        return Garbage(kind, TOPICS[stream], msg, frozenset({f'{stream}.frame'}))
    if kind == 'nonfinite_frame':      # NaN / inf / 1e30 coordinates in a cloud of the wrong frame
        pts, _ = cloud_to_array(msg, skip_nonfinite=False)
        pts = pts.copy()
        bad = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30]))
        pts['x'][::3] = bad
        msg = array_to_cloud(pts, t, 'v9/lidar')
        return Garbage(kind, TOPICS[stream], msg, frozenset({f'{stream}.frame'}))
    if kind == 'future':
        stamp = draw(bad_stamps)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        return Garbage(kind, TOPICS[stream], msg, frozenset({f'{stream}.future'}))
    if kind == 'old':
        stamp = draw(old_stamps)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        return Garbage(kind, TOPICS[stream], msg, SYNC | {'set.no_pose'})
    # a second delivery of the stream's latest valid message (filled in by interleaving())
    return Garbage(kind, TOPICS[stream], None, SYNC)


@st.composite
def image_garbage(draw) -> Garbage:
    t = draw(valid_stamps) + 10 * MS
    msg = depth(t)
    kind = draw(st.sampled_from(['zero_size', 'step', 'encoding', 'length', 'frame', 'size', 'future']))
    causes = frozenset({'camera.malformed'})
    if kind == 'zero_size':
        msg.width, msg.height = draw(st.sampled_from([(0, 0), (0, H), (W, 0)]))
        msg.step, msg.data = 0, array.array('B')
        causes = frozenset({'camera.malformed', 'camera.size_mismatch'})
    elif kind == 'step':
        msg.step = draw(st.integers(0, 4 * W - 1))
        msg.data = array.array('B', bytes(msg.step * H))
    elif kind == 'encoding':
        msg.encoding = draw(st.sampled_from(['rgb8', 'mono8', '32FC3', '', '8UC1', 'bayer_rggb8']))
    elif kind == 'length':
        msg.data = array.array('B', bytes(msg.data)[:draw(st.integers(0, len(msg.data) - 1))])
    elif kind == 'frame':
        msg.header.frame_id = draw(st.sampled_from(['', 'map', f'{V}/lidar', 'v2/camera_optical']))
        causes = frozenset({'camera.frame'})
    elif kind == 'size':                # a well-formed image that does not match CameraInfo
        w, h = draw(st.sampled_from([(W + 1, H), (W, H - 1), (1, 1)]))
        enc = draw(st.sampled_from(['32FC1', '16UC1']))
        msg = array_to_depth_image(np.full((h, w), 4.0, np.float32), t, f'{V}/camera_optical', enc)
        causes = frozenset({'camera.size_mismatch'})
    else:
        stamp = draw(bad_stamps)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        causes = frozenset({'camera.future'})
    return Garbage(kind, TOPICS['camera'], msg, causes)


@st.composite
def info_garbage(draw) -> Garbage:
    k = K.copy()
    kind = draw(st.sampled_from(['zero_k', 'nan_k', 'inf_k', 'negative_f', 'zero_size', 'frame']))
    msg = k_to_camera_info(K, W, H, T0, f'{V}/camera_optical')
    if kind == 'zero_k':
        msg.k = [0.0] * 9
    elif kind in ('nan_k', 'inf_k'):
        k[draw(st.integers(0, 2)), draw(st.integers(0, 2))] = np.nan if kind == 'nan_k' else np.inf
        msg.k = k.ravel()
    elif kind == 'negative_f':
        k[1, 1] = -16.0
        msg.k = k.ravel()
    elif kind == 'zero_size':           # a CameraInfo must give the image size
        msg.width, msg.height = draw(st.sampled_from([(0, 0), (0, H), (W, 0)]))
    else:
        msg.header.frame_id = draw(st.sampled_from(['', 'map', 'v2/camera_optical']))
        return Garbage(kind, TOPICS['info'], msg, frozenset({'camera_info.frame'}))
    return Garbage(kind, TOPICS['info'], msg, frozenset({'camera_info.malformed'}))


@st.composite
def odom_garbage(draw) -> Garbage:
    t = T0 + draw(st.integers(-10, 16)) * 50 * MS
    msg = odom(t)
    kind = draw(st.sampled_from(['not_psd', 'nan_cov', 'nan_position', 'inf_twist', 'zero_quat', 'nan_quat',
                                 'frame', 'child_frame', 'future']))
    if kind == 'not_psd':
        cov = np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-3])
        cov[0, 0] = -draw(st.floats(1e-3, 1e6))
        if draw(st.booleans()):
            cov[0, 0], cov[0, 1], cov[1, 0] = 0.01, 1.0, 1.0        # symmetric, indefinite
        msg.pose.covariance = cov.ravel()
        return Garbage(kind, TOPICS['odom'], msg, frozenset({'odom.covariance'}))
    if kind == 'nan_cov':
        cov = np.array(msg.pose.covariance)
        cov[draw(st.integers(0, 35))] = draw(st.sampled_from([np.nan, np.inf]))
        msg.pose.covariance = cov
    elif kind == 'nan_position':
        setattr(msg.pose.pose.position, draw(st.sampled_from('xyz')), draw(st.sampled_from([np.nan, np.inf])))
    elif kind == 'inf_twist':
        msg.twist.twist.linear.x = np.inf
    elif kind == 'zero_quat':
        q = msg.pose.pose.orientation
        q.x = q.y = q.z = q.w = 0.0
    elif kind == 'nan_quat':
        msg.pose.pose.orientation.w = np.nan
    elif kind == 'frame':
        msg.header.frame_id = draw(st.sampled_from(['', 'odom', 'v1/base_link', 'world']))
        return Garbage(kind, TOPICS['odom'], msg, frozenset({'odom.frame'}))
    elif kind == 'child_frame':
        msg.child_frame_id = draw(st.sampled_from(['', 'v2/base_link', 'base_link']))
        return Garbage(kind, TOPICS['odom'], msg, frozenset({'odom.frame'}))
    else:
        stamp = draw(bad_stamps)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10**9)
        return Garbage(kind, TOPICS['odom'], msg, frozenset({'odom.future'}))
    return Garbage(kind, TOPICS['odom'], msg, frozenset({'odom.malformed'}))


@st.composite
def tref_garbage(draw) -> Garbage:
    """A time reference whose offset is absurd (seconds to years off the fit)."""
    v = draw(st.integers(T0 - 3 * 10**9, T0 + 10**9))
    common = draw(st.one_of(st.integers(0, v - 10**9), st.integers(v + 10**9, (2**31 - 1) * 10**9)))
    return Garbage('absurd', TOPICS['tref'], make_time_reference(v, common), frozenset({'time_reference.outlier'}))


GARBAGE = st.one_of(cloud_garbage(), image_garbage(), info_garbage(), odom_garbage())


@st.composite
def interleaving(draw) -> Case:
    """The valid stream with garbage inserted after random messages (at their sim time)."""
    valid = valid_stream()
    garbage = draw(st.lists(GARBAGE, min_size=1, max_size=6))
    # At most two absurd time references: min_samples (3) agreeing rejections are a clock jump by design.
    garbage += draw(st.lists(tref_garbage(), max_size=2, unique_by=lambda g: g.msg.time_ref.sec))
    garbage = draw(st.permutations(garbage))
    # after the camera info and the time references (they would be taken as the first of their kind)
    slots = sorted(draw(st.lists(st.integers(4, len(valid) - 1), min_size=len(garbage), max_size=len(garbage))))
    return harness.interleave(valid, garbage, slots)


@SETTINGS
@given(interleaving())
def test_garbage_does_not_change_the_evidence_and_is_counted(ros_context, case):
    stream, garbage = case
    base = baseline(ros_context)
    got = run(ros_context, stream)
    assert got.alive and got.cycles == base.cycles >= 1, 'the node stopped processing after the garbage'
    harness.assert_same_outputs(got.outputs, base.outputs, garbage)
    harness.check_drops(got.drops, base.drops, garbage)


# ------------------------------------------------------------------ non-finite points --

@SETTINGS
@given(bad=st.lists(st.tuples(st.sampled_from(['x', 'y', 'z']), st.sampled_from([np.nan, np.inf, -np.inf])),
                    min_size=1, max_size=20),
       where=st.lists(st.integers(0, 10_000), min_size=1, max_size=20))
def test_non_finite_points_are_no_returns(ros_context, bad, where):
    """A sweep with NaN / inf coordinates mixed in gives the evidence of the sweep without them."""
    clean = lidar_points()
    rows = []
    for (field, value), w in zip(bad, where):
        row = clean[w % len(clean)].copy()
        row[field] = value
        rows.append(row)
    dirty = np.insert(clean, [w % len(clean) for w in where[:len(rows)]], np.array(rows, dtype=clean.dtype))
    stream = [(topic, lidar(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, dirty)
               if topic == TOPICS['lidar'] else msg, t) for topic, msg, t in valid_stream()]
    got, base = run(ros_context, stream), baseline(ros_context)
    assert got.outputs == base.outputs
    assert got.drops == base.drops


def test_huge_coordinates_are_survived(ros_context):
    """1e30 m coordinates (finite, absurd): no internal error, and every cycle still gives a grid."""
    pts = lidar_points()
    pts['x'][::4] = 1e30
    pts['z'][1::4] = -1e30
    pts['y'][2::4] = 3e38
    stream = [(topic, lidar(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, pts)
               if topic == TOPICS['lidar'] else msg, t) for topic, msg, t in valid_stream()]
    got, base = run(ros_context, stream), baseline(ros_context)
    assert got.drops == base.drops, got.drops
    assert [(t, s) for t, s, _ in got.outputs] == [(t, s) for t, s, _ in base.outputs]
    for topic, _, fp in got.outputs:
        if topic.endswith('evidence_grid'):
            cells = np.frombuffer(fp.split(b'|', 1)[1], np.int8)
            assert set(np.unique(cells)) <= set(range(-1, 101))


def test_16uc1_zeros_are_no_returns(ros_context):
    """16UC1 depth with 0 (no return, REP 118) gives the evidence of a 32FC1 image of NaN."""
    def swap(encoding: str, fill: float):
        out = []
        for topic, msg, t in valid_stream():
            if topic == TOPICS['camera']:
                d = np.full((H, W), fill, np.float32)
                msg = array_to_depth_image(d, msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
                                           f'{V}/camera_optical', encoding)
            out.append((topic, msg, t))
        return out
    zeros, nans = run(ros_context, swap('16UC1', 0.0)), run(ros_context, swap('32FC1', np.nan))
    assert zeros.outputs == nans.outputs and zeros.drops == nans.drops == {}
    assert len(zeros.outputs) == len(baseline(ros_context).outputs)
    assert zeros.outputs != baseline(ros_context).outputs          # the camera's wall is gone
    assert_array_equal([t for t, _, _ in zeros.outputs], [t for t, _, _ in nans.outputs])
