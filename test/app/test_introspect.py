"""app.introspect without a graph: rates, names, the topics table and one-line message summaries."""
from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from nav_msgs.msg import OccupancyGrid, Path as PathMsg
from std_msgs.msg import String

from cooperative_fusion.app.introspect import TopicStats, format_topics, rate_hz, summarize, topic_name
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.ros.diagnostics import Level, make_array, make_status
from cooperative_fusion.ros.grid import grid_to_msg
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.pointcloud import array_to_cloud

MS = 1_000_000


def test_rate_is_messages_per_span() -> None:
    assert rate_hz([]) is None and rate_hz([5]) is None and rate_hz([7, 7]) is None
    assert rate_hz([0, 100 * MS, 200 * MS, 300 * MS]) == pytest.approx(10.0)
    assert rate_hz([300 * MS, 0, 150 * MS]) == pytest.approx(2 / 0.3)


def test_topic_names() -> None:
    assert topic_name('v1/odom') == '/v1/odom' and topic_name(' /a ') == '/a'
    with pytest.raises(ConfigError, match="'/' is not a topic name"):
        topic_name('/')


def test_topics_table() -> None:
    rows = [TopicStats('/a', 'std_msgs/msg/String', 2, 11, 10.04), TopicStats('/bb', 'x/msg/Y', 0, 0, None),
            TopicStats('/c', 'x/msg/Z', 1, 1, None)]
    assert format_topics(rows, measured=True).splitlines() == [
        'TOPIC  TYPE                 PUB  RATE',
        '/a     std_msgs/msg/String    2  10.0 Hz',
        '/bb    x/msg/Y                0  no messages',
        '/c     x/msg/Z                1  1 message']
    assert format_topics(rows[:1], measured=False).splitlines()[1] == '/a     std_msgs/msg/String    2'
    assert format_topics([], measured=True) == 'no topics'


def test_grid_summary_counts_cells() -> None:
    cells = np.zeros((4, 6), np.int8)
    cells[0, :2] = 100
    cells[1, 0] = 50              # occupied from 50 up
    cells[1, 1] = 49
    cells[2, :] = -1
    msg = grid_to_msg(GridSpec(0.0, 0.0, 0.2, 6, 4), cells, 12 * 1_000_000_000 + 5)
    assert summarize('nav_msgs/msg/OccupancyGrid', msg) == \
        '12.000000005 map grid 6x4 at 0.2 m: 3 occupied, 15 free, 6 unknown'
    bad = OccupancyGrid()
    bad.info.width, bad.info.height, bad.info.resolution = 2, 2, 0.5
    bad.info.origin.orientation.w = 1.0
    assert summarize('nav_msgs/msg/OccupancyGrid', bad).startswith(
        '0.000000000 - bad message: occupancy grid data length 0 not equal to width 2 * height 2')


def test_cloud_odometry_warnings_and_others() -> None:
    pts = np.zeros(7, np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('velocity', '<f4')]))
    assert summarize('sensor_msgs/msg/PointCloud2', array_to_cloud(pts, 1_500_000_000, 'v1/radar')) == \
        '1.500000000 v1/radar 7 points (x,y,z,velocity)'
    pose = PoseSample(2 * 1_000_000_000, np.array([3.0, -1.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]),
                      linear_velocity=np.array([4.0, 3.0, 0.0]))
    assert summarize('nav_msgs/msg/Odometry', pose_to_odometry(pose, 'map', 'v2/base_link')) == \
        '2.000000000 map child v2/base_link: x 3.00 y -1.00 yaw 3.142 rad, v 5.00 m/s'
    arr = make_array(3 * MS, [make_status('v3', Level.ERROR, 'conflict', {'ttc_s': 1.25, 'object': 'h1'}),
                              make_status('v4', Level.OK, 'ok', {})])
    assert summarize('diagnostic_msgs/msg/DiagnosticArray', arr) == \
        '0.003000000 - 2 statuses: v3 ERROR (ttc_s 1.25, object h1); v4 OK'
    path = PathMsg()
    path.header.frame_id = 'map'
    path.poses = [PoseStamped() for _ in range(3)]
    assert summarize('nav_msgs/msg/Path', path) == '0.000000000 map 3 poses'
    twist = TwistStamped()
    twist.header.frame_id = 'v1/base_link'
    twist.twist.linear.x = 21.5
    twist.twist.linear.z = -2.25
    assert summarize('geometry_msgs/msg/TwistStamped', twist) == \
        '0.000000000 v1/base_link linear.x 21.50 m/s, linear.z -2.25, angular.z 0.000 rad/s'
    assert summarize('std_msgs/msg/String', String(data='x' * 70)) == f"- - 70 chars: '{'x' * 57}...'"
