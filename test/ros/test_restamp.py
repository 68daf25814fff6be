"""Shifting stamps in CDR bytes: each type of the simulated bags, alignment, byte order, bad bytes."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField, TimeReference
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.ros.bag import serialize
from cooperative_fusion.ros.cdr_decode import decode_image, decode_occupancy_grid, decode_odometry, decode_point_cloud2
from cooperative_fusion.ros.restamp import (HEADER, HEADER_AND_TIME, SKIP, UNCHANGED, Restamper, plan_for, restamp,
                                            shift_stamp)
from cooperative_fusion.ros.time import make_time_reference, ns_to_stamp


OFFSET = 1_765_000_000_123_456_789 - 1_000_000_000     # a wall time minus a bag start, ns


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _deserialize(raw: bytes, cls: type):
    from rclpy.serialization import deserialize_message
    return deserialize_message(raw, cls)


def _stamped(msg, stamp_ns: int, frame_id: str):
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    return msg


def _cloud(stamp_ns: int, frame_id: str) -> PointCloud2:
    msg = _stamped(PointCloud2(), stamp_ns, frame_id)
    msg.height, msg.width, msg.point_step, msg.row_step = 1, 2, 12, 24
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate('xyz')]
    msg.data = np.arange(6, dtype='<f4').tobytes()
    return msg


def _image(stamp_ns: int, frame_id: str) -> Image:
    msg = _stamped(Image(), stamp_ns, frame_id)
    msg.height, msg.width, msg.encoding, msg.step = 2, 2, '32FC1', 8
    msg.data = np.ones(4, dtype='<f4').tobytes()
    return msg


def _grid(stamp_ns: int, frame_id: str) -> OccupancyGrid:
    msg = _stamped(OccupancyGrid(), stamp_ns, frame_id)
    msg.info.map_load_time = ns_to_stamp(stamp_ns - 5)
    msg.info.resolution, msg.info.width, msg.info.height = 0.5, 3, 2
    msg.data = [0, 50, 100, -1, 0, 0]
    return msg


def _odom(stamp_ns: int, frame_id: str) -> Odometry:
    msg = _stamped(Odometry(), stamp_ns, frame_id)
    msg.child_frame_id = 'v1/base_link'
    msg.pose.pose.position.x = 12.5
    msg.pose.pose.orientation.w = 1.0
    return msg


def _camera_info(stamp_ns: int, frame_id: str) -> CameraInfo:
    msg = _stamped(CameraInfo(), stamp_ns, frame_id)
    msg.width, msg.height, msg.distortion_model = 4, 2, 'plumb_bob'
    return msg


@pytest.mark.parametrize('make', [_cloud, _image, _grid, _odom, _camera_info])
@pytest.mark.parametrize('frame_id', ['', 'm', 'ma', 'map', 'v1/lidar', 'v12/lidar'])
def test_header_first_types_get_their_stamp_shifted_and_nothing_else(make, frame_id):
    stamp = 1_999_999_999      # nanosec wraps into the next second
    msg = make(stamp, frame_id)
    raw = serialize(msg)
    plan = plan_for(f'{type(msg).__module__.split(".")[0]}/msg/{type(msg).__name__}')
    out = restamp(raw, OFFSET, plan)
    assert len(out) == len(raw)
    back = _deserialize(out, type(msg))
    assert _ns(back.header.stamp) == stamp + OFFSET
    assert 0 <= back.header.stamp.nanosec < 1_000_000_000
    assert back.header.frame_id == frame_id
    if isinstance(msg, OccupancyGrid):
        assert plan == HEADER_AND_TIME
        assert _ns(back.info.map_load_time) == stamp - 5 + OFFSET
        assert back.info.width == 3 and list(back.data) == [0, 50, 100, -1, 0, 0]
    else:
        assert plan == HEADER
    # every byte but the shifted stamps is the same
    changed = [i for i in range(len(raw)) if raw[i] != out[i]]
    assert all(4 <= i < 12 for i in changed) or isinstance(msg, OccupancyGrid)


def test_the_fast_decoders_read_the_shifted_stamp():
    for make, decode in [(_cloud, decode_point_cloud2), (_image, decode_image), (_grid, decode_occupancy_grid),
                         (_odom, decode_odometry)]:
        view = decode(restamp(serialize(make(1_500_000_000, 'map')), OFFSET, plan_for(
            'nav_msgs/msg/OccupancyGrid') if make is _grid else HEADER))
        assert _ns(view.header.stamp) == 1_500_000_000 + OFFSET


@pytest.mark.parametrize('frame_id', ['', 'a', 'ab', 'abc', 'abcd', 'gnss_v1'])
def test_time_reference_time_ref_after_frame_ids_of_every_length(frame_id):
    msg = make_time_reference(1_020_000_000, 1_000_000_007, source='gnss', frame_id=frame_id)
    raw = serialize(msg)
    assert plan_for('sensor_msgs/msg/TimeReference') == HEADER_AND_TIME
    back = _deserialize(restamp(raw, OFFSET, HEADER_AND_TIME), TimeReference)
    assert _ns(back.header.stamp) == 1_020_000_000 + OFFSET
    assert _ns(back.time_ref) == 1_000_000_007 + OFFSET     # the vehicle's clock offset (20 ms) is kept
    assert back.header.frame_id == frame_id and back.source == 'gnss'


def test_big_endian_cdr_is_shifted_in_its_own_byte_order():
    raw = bytearray(serialize(make_time_reference(1_000_000_000, 2_000_000_000, frame_id='abc')))
    # the same message, big endian: encapsulation 0x0000, every 4-byte field swapped
    be = bytearray(b'\x00\x00\x00\x00')
    be += struct.pack('>iI', 1, 0) + struct.pack('>I', 4) + b'abc\x00' + struct.pack('>iI', 2, 0)
    out = restamp(bytes(be), 500_000_000, HEADER_AND_TIME)
    assert struct.unpack_from('>iIIii', out, 4)[:3] == (1, 500_000_000, 4)
    assert struct.unpack_from('>iI', out, 20) == (2, 500_000_000)
    assert raw[1] == 1     # the serializer writes little endian


def test_shift_stamp_keeps_nanosec_in_range_and_refuses_out_of_range_times():
    assert shift_stamp(1, 999_999_999, 1) == (2, 0)
    assert shift_stamp(5, 0, -1) == (4, 999_999_999)
    assert shift_stamp(0, 0, 0) == (0, 0)
    with pytest.raises(MessageFormatError, match='out of range'):
        shift_stamp(0, 5, -6)
    with pytest.raises(MessageFormatError, match='out of range'):
        shift_stamp(2**31 - 1, 0, 1_000_000_000)


def test_plans_of_the_types_in_a_simulated_bag():
    assert plan_for('visualization_msgs/msg/MarkerArray') == SKIP          # a header in every marker
    assert plan_for('std_msgs/msg/String') == UNCHANGED
    assert plan_for('geometry_msgs/msg/Twist') == UNCHANGED
    assert plan_for('geometry_msgs/msg/PoseStamped') == HEADER
    assert plan_for('rosgraph_msgs/msg/Clock') == SKIP                      # a time, but not after a header
    assert plan_for('nav_msgs/msg/Path') == SKIP                            # a header, then stamped poses


def _bad_bytes() -> list[bytes]:
    good = serialize(make_time_reference(1_000_000_000, 1_000_000_000, frame_id='gnss'))
    return [
        b'',
        good[:10],                                         # the stamp cut short
        good[:14],                                         # frame_id length cut short
        good[:18],                                         # time_ref cut short
        b'\x00\x03' + good[2:],                            # parameter-list CDR
        good[:12] + struct.pack('<I', 10_000) + good[16:],  # frame_id runs past the end
        good[:4] + struct.pack('<iI', 1, 2_000_000_000) + good[12:],   # nanosec >= 1e9
    ]


@pytest.mark.parametrize('index', range(7))
def test_bad_bytes_raise_a_format_error(index):
    with pytest.raises(MessageFormatError):
        restamp(_bad_bytes()[index], OFFSET, HEADER_AND_TIME)


def test_restamper_counts_skipped_types_and_bad_bytes_and_shifts_the_rest():
    r = Restamper(OFFSET, {'/v1/time_reference': 'sensor_msgs/msg/TimeReference',
                           '/truth/objects': 'visualization_msgs/msg/MarkerArray',
                           '/truth/scenario': 'std_msgs/msg/String'})
    assert r.skip_topics() == ['/truth/objects']
    markers = serialize(MarkerArray(markers=[Marker()]))
    assert r('/truth/objects', markers) is None
    scenario = serialize(String(data='{}'))
    assert r('/truth/scenario', scenario) == scenario
    for bad in _bad_bytes():
        assert r('/v1/time_reference', bad) is None
    good = serialize(make_time_reference(1_000_000_000, 1_000_000_000))
    back = _deserialize(r('/v1/time_reference', good), TimeReference)
    assert _ns(back.time_ref) == 1_000_000_000 + OFFSET
    assert r.skipped == {'/truth/objects': 1}
    assert r.malformed == {'/v1/time_reference': 7}
