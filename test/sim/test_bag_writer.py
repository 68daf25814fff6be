"""SimEvent -> message -> bag, on a small hand-built event stream (no world needed)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import BagError, MessageFormatError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.ros.bag import BagReader
from cooperative_fusion.sim.bag_writer import boxes_to_markers, event_to_message, marker_id, write_simulation
from cooperative_fusion.sim.events import EventKind, SimEvent

LIDAR_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4')])
RADAR_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('velocity', '<f4'), ('rcs', '<f4')])
MS = 1_000_000


def _points(rng: np.random.Generator, dtype: np.dtype, n: int) -> np.ndarray:
    pts = np.zeros(n, dtype)
    for name in dtype.names:
        pts[name] = rng.standard_normal(n).astype(np.float32)
    return pts


def _pose(stamp_ns: int, x: float, yaw: float) -> PoseSample:
    return PoseSample(stamp_ns=stamp_ns, position=np.array([x, 1.0, 0.0]),
                      quat_wxyz=np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]),
                      linear_velocity=np.array([25.0, 0.0, 0.0]))


def fake_events(seed: int = 0) -> list[SimEvent]:
    """One event of every kind for v1 at t = 0.1 s common, v1 clock 120 ms ahead."""
    rng = np.random.default_rng(seed)
    t, tv = 100 * MS, 220 * MS
    spec = GridSpec(-10.0, -4.0, 0.5, 8, 6)
    cells = np.zeros(spec.shape, np.int8)
    cells[2:4, 5] = 100
    depth = rng.uniform(1.0, 50.0, (12, 16)).astype(np.float32)
    depth[0, 0] = np.nan
    K = np.array([[8.0, 0.0, 8.0], [0.0, 8.0, 6.0], [0.0, 0.0, 1.0]])
    boxes = [{'id': 'h1', 'kind': 'stopped_car', 'center': (378.5, 0.0, 0.75), 'size': (4.5, 1.8, 1.5),
              'yaw': 0.0, 'velocity': (0.0, 0.0)},
             {'id': 7, 'kind': 'truck', 'center': (10.0, 3.5, 1.9), 'size': (12.0, 2.5, 3.8),
              'yaw': 0.1, 'velocity': (27.0, 0.5)}]
    return [
        SimEvent('/truth/scenario', EventKind.TRUTH_META, 0, 0, '', {'json': json.dumps({'seed': seed})}),
        SimEvent('/v1/lidar/points', EventKind.LIDAR, tv, t, 'v1/lidar', {'points': _points(rng, LIDAR_DTYPE, 50)}),
        SimEvent('/v1/radar/points', EventKind.RADAR, tv, t, 'v1/radar', {'points': _points(rng, RADAR_DTYPE, 7)}),
        SimEvent('/v1/camera/depth/image', EventKind.DEPTH, tv, t, 'v1/camera_optical', {'depth': depth}),
        SimEvent('/v1/camera/depth/camera_info', EventKind.CAMERA_INFO, tv, t, 'v1/camera_optical',
                 {'K': K, 'width': 16, 'height': 12}),
        SimEvent('/v1/odom', EventKind.ODOM, tv, t, 'map',
                 {'pose': _pose(tv, 2.5, 0.2), 'child_frame_id': 'v1/base_link'}),
        SimEvent('/v1/time_reference', EventKind.TIME_REFERENCE, tv, t, 'v1/base_link',
                 {'time_ref_ns': t, 'source': 'gnss'}),
        SimEvent('/truth/grid', EventKind.TRUTH_GRID, t, t, 'map', {'spec': spec, 'cells': cells}),
        SimEvent('/truth/odom/v1', EventKind.TRUTH_ODOM, t, t, 'map',
                 {'pose': _pose(t, 2.4, 0.2), 'child_frame_id': 'v1/base_link'}),
        SimEvent('/truth/objects', EventKind.TRUTH_OBJECTS, t, t, 'map', {'boxes': boxes}),
    ]


def _ns(stamp) -> int:
    return stamp.sec * 10**9 + stamp.nanosec


def test_every_kind_becomes_the_design_message() -> None:
    events = fake_events()
    msgs = {e.topic: event_to_message(e) for e in events}
    types = {topic: f'{type(m).__module__.split(".")[0]}/{type(m).__name__}' for topic, m in msgs.items()}
    assert types == {
        '/truth/scenario': 'std_msgs/String',
        '/v1/lidar/points': 'sensor_msgs/PointCloud2',
        '/v1/radar/points': 'sensor_msgs/PointCloud2',
        '/v1/camera/depth/image': 'sensor_msgs/Image',
        '/v1/camera/depth/camera_info': 'sensor_msgs/CameraInfo',
        '/v1/odom': 'nav_msgs/Odometry',
        '/v1/time_reference': 'sensor_msgs/TimeReference',
        '/truth/grid': 'nav_msgs/OccupancyGrid',
        '/truth/odom/v1': 'nav_msgs/Odometry',
        '/truth/objects': 'visualization_msgs/MarkerArray',
    }
    by_topic = {e.topic: e for e in events}
    for topic, msg in msgs.items():
        if hasattr(msg, 'header'):
            assert _ns(msg.header.stamp) == by_topic[topic].stamp_ns, topic
            assert msg.header.frame_id == by_topic[topic].frame_id, topic

    lidar = msgs['/v1/lidar/points']
    assert [(f.name, f.datatype, f.offset) for f in lidar.fields] == [
        ('x', 7, 0), ('y', 7, 4), ('z', 7, 8), ('intensity', 7, 12)]
    assert_array_equal(np.frombuffer(bytes(lidar.data), LIDAR_DTYPE), by_topic['/v1/lidar/points'].data['points'])
    radar = msgs['/v1/radar/points']
    assert [f.name for f in radar.fields] == ['x', 'y', 'z', 'velocity', 'rcs']

    image = msgs['/v1/camera/depth/image']
    assert (image.encoding, image.height, image.width) == ('32FC1', 12, 16)
    assert_array_equal(np.frombuffer(bytes(image.data), np.float32).reshape(12, 16),
                       by_topic['/v1/camera/depth/image'].data['depth'])
    assert_allclose(np.asarray(msgs['/v1/camera/depth/camera_info'].k).reshape(3, 3),
                    by_topic['/v1/camera/depth/camera_info'].data['K'])

    odom = msgs['/v1/odom']
    assert odom.child_frame_id == 'v1/base_link'
    assert_allclose([odom.pose.pose.position.x, odom.pose.pose.orientation.z, odom.pose.pose.orientation.w],
                    [2.5, math.sin(0.1), math.cos(0.1)])

    ref = msgs['/v1/time_reference']
    assert (_ns(ref.time_ref), _ns(ref.header.stamp), ref.source) == (100 * MS, 220 * MS, 'gnss')

    grid = msgs['/truth/grid']
    assert (grid.info.width, grid.info.height) == (8, 6)
    assert_allclose([grid.info.resolution, grid.info.origin.position.x, grid.info.origin.position.y],
                    [0.5, -10.0, -4.0])
    assert_array_equal(np.asarray(grid.data, np.int8).reshape(6, 8), by_topic['/truth/grid'].data['cells'])

    assert json.loads(msgs['/truth/scenario'].data) == {'seed': 0}


def test_truth_boxes_become_cube_markers() -> None:
    events = fake_events()
    boxes = next(e for e in events if e.kind == EventKind.TRUTH_OBJECTS).data['boxes']
    markers = boxes_to_markers(boxes, 100 * MS, 'map').markers
    assert [(m.ns, m.id, m.type) for m in markers] == [('stopped_car', marker_id('h1'), 1), ('truck', 7, 1)]
    assert marker_id('h1') == marker_id('h1') and 0 <= marker_id('h1') < 2**31
    truck = markers[1]
    assert_allclose([truck.scale.x, truck.scale.y, truck.scale.z], [12.0, 2.5, 3.8])
    assert_allclose([truck.pose.position.x, truck.pose.position.y, truck.pose.position.z], [10.0, 3.5, 1.9])
    assert_allclose([truck.pose.orientation.z, truck.pose.orientation.w], [math.sin(0.05), math.cos(0.05)])
    assert json.loads(truck.text) == {'id': 7, 'kind': 'truck', 'velocity': [27.0, 0.5]}
    assert truck.lifetime.nanosec == 500_000_000 and truck.color.a > 0
    with pytest.raises(MessageFormatError, match=r"truth box 'x': center and size need 3 values, got 2 and 3"):
        boxes_to_markers([{'id': 'x', 'kind': 'car', 'center': (1, 2), 'size': (1, 1, 1), 'yaw': 0}], 0, 'map')


def test_event_with_missing_payload_is_a_format_error() -> None:
    bad = SimEvent('/v1/odom', EventKind.ODOM, 0, 0, 'map', {'child_frame_id': 'v1/base_link'})
    with pytest.raises(MessageFormatError, match=r"/v1/odom: odom event lacks data\['pose'\]"):
        event_to_message(bad)


def test_write_simulation_counts_and_reads_back(tmp_path: Path) -> None:
    events = fake_events() + fake_events(seed=1)[1:]
    later = [SimEvent(e.topic, e.kind, e.stamp_ns + 50 * MS, e.log_time_ns + 50 * MS, e.frame_id, e.data)
             for e in events[10:]]
    stream = events[:10] + later
    out = tmp_path / 'sim'
    counts = write_simulation(iter(stream), out, progress=False)
    assert counts['/truth/scenario'] == 1
    assert all(counts[e.topic] == 2 for e in stream[1:10])
    with BagReader(out) as bag:
        assert bag.storage == 'mcap'
        got = [(topic, t) for topic, _, t, _ in bag.messages()]
        assert sorted(got, key=lambda r: r[1]) == got
        assert got == [(e.topic, e.log_time_ns) for e in stream]
        grid = next(bag.deserialize(mt, raw) for topic, mt, _, raw in bag.messages(['/truth/grid']))
        assert grid.data[2 * 8 + 5] == 100
    with pytest.raises(BagError, match=r'sim already exists'):
        write_simulation(iter(stream), out, progress=False)


def test_progress_bar_runs_in_simulated_seconds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stream = [SimEvent('/truth/scenario', EventKind.TRUTH_META, t * MS, t * MS, '', {'json': '{}'})
              for t in range(0, 2001, 250)]
    write_simulation(stream, tmp_path / 'p', progress=True, total_s=2.0)
    err = capsys.readouterr().err
    assert '100%' in err and '2.0/2.0 sim s' in err
