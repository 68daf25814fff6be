"""ros/shard_delta.py: ShardDelta <-> std_msgs/Float32MultiArray, exact, through CDR."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Float32MultiArray

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.core.fusion.dynamic import MovingObject
from cooperative_fusion.core.fusion.shards import ShardDelta
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.ros.shard_delta import delta_from_msg, delta_to_msg

S = 1_000_000_000


def through_cdr(msg: Float32MultiArray) -> Float32MultiArray:
    return deserialize_message(serialize_message(msg), Float32MultiArray)


def test_a_delta_round_trips_exactly():
    rng = np.random.default_rng(0)
    spec = GridSpec(-1234.6, 56.2, 0.2, 7, 5)
    logodds = rng.normal(0, 3, spec.shape).astype(np.float32)
    known = rng.random(spec.shape) < 0.6
    stamp = 1_733_000_000 * S + 123_456_789
    delta = ShardDelta(1, 42, stamp, spec, np.where(known, logodds, 0.0).astype(np.float32), known,
                       np.array([stamp - 80_000_000, stamp - 123_456_789], np.int64))
    back = delta_from_msg(through_cdr(delta_to_msg(delta)))
    assert (back.shard, back.seq, back.stamp_ns, back.spec) == (1, 42, stamp, spec)
    assert_array_equal(back.known, known)
    assert_array_equal(back.logodds, delta.logodds)           # bit for bit
    assert np.abs(back.evidence_stamps_ns - delta.evidence_stamps_ns).max() <= 1_000     # ms as float32


def test_moving_objects_travel_with_the_delta():
    stamp = 1_733_000_000 * S
    car = MovingObject('v3', np.array([[1234.1, -1.7], [1234.3, -1.7], [1234.5, -1.5]]),
                       np.array([2.0, 2.5, 3.0], np.float32), np.array([12.5, 0.25]), stamp - 40_000_000, 'radar')
    old = MovingObject('v4', np.array([[10.1, 3.3]]), np.array([1.0], np.float32), np.array([0.0, 0.0]),
                       stamp - 150_000_000, 'track', max_age_ns=700_000_000)
    for spec in (GridSpec(0.0, 0.0, 0.2, 3, 2), None):
        cells = (2, 3) if spec is not None else (0, 0)
        delta = ShardDelta(0, 1, stamp, spec, np.ones(cells, np.float32), np.ones(cells, bool),
                           np.zeros(0, np.int64), (car, old))
        back = delta_from_msg(through_cdr(delta_to_msg(delta)))
        assert [(o.vehicle_id, o.source, o.max_age_ns) for o in back.objects] == [('v3', 'radar', None),
                                                                                 ('v4', 'track', 700_000_000)]
        for a, b in zip(back.objects, (car, old)):
            assert abs(a.stamp_ns - b.stamp_ns) <= 1_000
            np.testing.assert_allclose(a.cells_xy, b.cells_xy, atol=1e-3)
            np.testing.assert_allclose(a.velocity, b.velocity, rtol=1e-6)
            assert_array_equal(a.logodds, b.logodds)


def test_a_heartbeat_has_no_cells():
    delta = ShardDelta(0, 3, 5 * S, None, np.zeros((0, 0), np.float32), np.zeros((0, 0), bool),
                       np.zeros(0, np.int64))
    msg = through_cdr(delta_to_msg(delta))
    assert len(msg.data) == 0 and [d.size for d in msg.layout.dim] == [0, 0, 1]
    back = delta_from_msg(msg)
    assert back.spec is None and back.seq == 3 and back.evidence_stamps_ns.size == 0


def test_a_message_off_the_layout_is_a_format_error():
    msg = delta_to_msg(ShardDelta(0, 0, S, GridSpec(0.0, 0.0, 0.2, 3, 2), np.ones((2, 3), np.float32),
                                  np.ones((2, 3), bool), np.zeros(0, np.int64)))
    short = through_cdr(msg)
    short.data = short.data[:-1]
    with pytest.raises(MessageFormatError, match=r'has 5 values: expected data_offset 0 \+ rows 2 \* cols 3'):
        delta_from_msg(short)
    with pytest.raises(MessageFormatError, match='layout has dims'):
        delta_from_msg(Float32MultiArray())
    bad = through_cdr(msg)
    bad.layout.dim[2].label = 'shard_delta/1 shard=0 seq=x'
    with pytest.raises(MessageFormatError, match='shard delta metadata'):
        delta_from_msg(bad)
