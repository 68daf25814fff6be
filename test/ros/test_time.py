from __future__ import annotations

import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import TimeReference

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.ros.time import make_time_reference, ns_to_stamp, stamp_to_ns, time_reference_to_ns


@pytest.mark.parametrize('ns', [0, 1, 999_999_999, 1_000_000_000, 1_732_000_000_123_456_789, (2**31 - 1) * 10**9])
def test_round_trip_is_exact(ns):
    stamp = ns_to_stamp(ns)
    assert stamp_to_ns(stamp) == ns
    assert 0 <= stamp.nanosec < 10**9


def test_fields():
    stamp = ns_to_stamp(12_000_000_345)
    assert (stamp.sec, stamp.nanosec) == (12, 345)
    assert stamp_to_ns(Time(sec=3, nanosec=7)) == 3_000_000_007


def test_negative_rejected():
    with pytest.raises(MessageFormatError, match=r'stamp -5 ns is negative: expected >= 0'):
        ns_to_stamp(-5)


def test_past_int32_rejected():
    with pytest.raises(MessageFormatError, match=r'sec 2147483648 > 2147483647'):
        ns_to_stamp(2**31 * 10**9)


def test_time_reference_round_trip():
    msg = make_time_reference(5_000_000_001, 1_700_000_000_250_000_000, source='gnss', frame_id='v2/base_link')
    msg = deserialize_message(serialize_message(msg), TimeReference)
    assert time_reference_to_ns(msg) == (5_000_000_001, 1_700_000_000_250_000_000)
    assert (msg.source, msg.header.frame_id) == ('gnss', 'v2/base_link')
