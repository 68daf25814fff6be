from __future__ import annotations

import array
import math

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid
from numpy.testing import assert_allclose, assert_array_equal
from rclpy.serialization import deserialize_message, serialize_message

from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.ros.cdr import serialize_cdr
from cooperative_fusion.ros.grid import grid_from_msg, grid_to_cdr, grid_to_msg
from cooperative_fusion.ros.time import stamp_to_ns


def _cells(spec: GridSpec) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(-1, 101, spec.shape).astype(np.int8)


def test_round_trip_with_origin_and_resolution():
    spec = GridSpec(-12.4, 36.8, 0.2, 70, 30)
    cells = _cells(spec)
    msg = deserialize_message(serialize_message(grid_to_msg(spec, cells, 9_000_000_123, 'map')), OccupancyGrid)
    assert msg.header.frame_id == 'map'
    assert stamp_to_ns(msg.header.stamp) == 9_000_000_123 == stamp_to_ns(msg.info.map_load_time)
    back_spec, back = grid_from_msg(msg)
    assert back_spec == spec
    assert back.dtype == np.int8
    assert_array_equal(back, cells)


def test_cells_indexed_iy_ix_and_row_major_on_the_wire():
    spec = GridSpec(0.0, 0.0, 1.0, 3, 2)
    cells = np.zeros(spec.shape, np.int8)
    cells[1, 2] = 100          # iy=1, ix=2: the last cell of the second row
    msg = grid_to_msg(spec, cells, 0)
    assert list(msg.data) == [0, 0, 0, 0, 0, 100]
    assert (msg.info.width, msg.info.height) == (3, 2)


def test_integer_cells_cast_and_shape_checked():
    spec = GridSpec(0.0, 0.0, 0.5, 4, 3)
    msg = grid_to_msg(spec, np.full(spec.shape, -1, dtype=np.int64), 0)
    assert_array_equal(grid_from_msg(msg)[1], -1)
    with pytest.raises(MessageFormatError, match=r'cells have shape \(4, 3\): expected \(3, 4\) \(height, width\)'):
        grid_to_msg(spec, np.zeros((4, 3), np.int8), 0)
    with pytest.raises(MessageFormatError, match=r'cells have dtype float32: expected int8'):
        grid_to_msg(spec, np.zeros((3, 4), np.float32), 0)


def _valid_msg() -> OccupancyGrid:
    return grid_to_msg(GridSpec(1.0, 2.0, 0.5, 4, 3), np.zeros((3, 4), np.int8), 0)


def _set(path: str, value):
    def edit(msg):
        obj = msg
        *parents, leaf = path.split('.')
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, leaf, value)
    return edit


@pytest.mark.parametrize('edit, match', [
    (_set('data', array.array('b', bytes(11))), r'data length 11 not equal to width 4 \* height 3'),
    (_set('info.resolution', 0.0), r'resolution 0.0 m: expected a finite value > 0'),
    (_set('info.resolution', float('nan')), r'resolution nan m: expected a finite value > 0'),
    (_set('info.width', 0), r'occupancy grid is 0x3: expected a non-zero size'),
    (_set('info.height', 0), r'occupancy grid is 4x0: expected a non-zero size'),
    (_set('info.origin.position.x', float('inf')), r'origin is not finite: position \(inf, 2.0, 0.0\)'),
    (_set('info.origin.orientation.x', 0.01), r'origin is tilted by 0.02 rad .*expected a rotation about z only'),
    (_set('info.origin.orientation.y', -0.01), r'origin is tilted by 0.02 rad .*expected a rotation about z only'),
    (_set('info.origin.orientation.w', 0.0), r'zero quaternion'),
])
def test_malformed_grids_raise(edit, match):
    msg = _valid_msg()
    edit(msg)
    with pytest.raises(MessageFormatError, match=match):
        grid_from_msg(msg)


def test_tiny_rotation_tolerated():
    msg = _valid_msg()
    msg.info.origin.orientation.z = 1e-8
    assert grid_from_msg(msg)[0].origin_x == 1.0


def test_yawed_grid_round_trip_writes_the_origin_in_map():
    spec = GridSpec.centered(100.0, 50.0, 40.0, 10.0, 0.2, yaw=math.radians(30.0))
    cells = np.arange(spec.width * spec.height, dtype=np.int64).reshape(spec.shape) % 101
    msg = grid_to_msg(spec, cells, 5)
    q = msg.info.origin.orientation
    assert_allclose([q.x, q.y, q.z, q.w], [0.0, 0.0, math.sin(math.radians(15.0)), math.cos(math.radians(15.0))])
    # The lower-left corner in map: the grid-frame origin rotated by 30 deg.
    c, s = math.cos(spec.yaw), math.sin(spec.yaw)
    assert_allclose([msg.info.origin.position.x, msg.info.origin.position.y],
                    [c * spec.origin_x - s * spec.origin_y, s * spec.origin_x + c * spec.origin_y])
    back, back_cells = grid_from_msg(msg)
    assert (back.origin_x, back.origin_y, back.width, back.height) == \
        (spec.origin_x, spec.origin_y, spec.width, spec.height)
    assert back.yaw == pytest.approx(spec.yaw, abs=1e-12)
    assert back.lattice_offset(spec) == (0, 0)
    np.testing.assert_array_equal(back_cells, cells)


def test_yaw_of_an_unnormalised_quaternion():
    msg = _valid_msg()
    msg.info.origin.orientation.z = 2.0 * math.sin(0.25)
    msg.info.origin.orientation.w = 2.0 * math.cos(0.25)
    assert grid_from_msg(msg)[0].yaw == pytest.approx(0.5)


@pytest.mark.parametrize('frame_id', ['map', 'm', 'ab', 'abc', 'odom_frame', ''])
@pytest.mark.parametrize('spec', [GridSpec(-12.4, 36.8, 0.2, 70, 30), GridSpec(3.0, -7.5, 0.4, 33, 5, 0.3)],
                         ids=['axis_aligned', 'yawed'])
def test_grid_to_cdr_is_the_serialized_grid_to_msg(frame_id, spec):
    # byte for byte what the recorder writes for the message, and what rmw reads back as that message
    cells = _cells(spec)
    raw = grid_to_cdr(spec, cells, 9_000_000_123, frame_id)
    msg = grid_to_msg(spec, cells, 9_000_000_123, frame_id)
    assert raw == serialize_cdr(msg)
    back = deserialize_message(raw, OccupancyGrid)       # resolution now float32, as on the wire
    assert back == deserialize_message(serialize_message(msg), OccupancyGrid)
    assert back.header.frame_id == frame_id and back.info.width == spec.width


def test_grid_to_cdr_casts_and_checks_cells_as_grid_to_msg():
    spec = GridSpec(0.0, 0.0, 1.0, 3, 2)
    wide = np.array([[0, 50, 100], [-1, 7, 0]], dtype=np.int64)
    assert grid_to_cdr(spec, wide, 5) == serialize_cdr(grid_to_msg(spec, wide.astype(np.int8), 5))
    strided = np.zeros((2, 6), np.int8)[:, ::2]
    assert grid_to_cdr(spec, strided, 5) == grid_to_cdr(spec, np.zeros(spec.shape, np.int8), 5)
    with pytest.raises(MessageFormatError, match=r'cells have shape \(3, 2\): expected \(2, 3\)'):
        grid_to_cdr(spec, np.zeros((3, 2), np.int8), 5)
    with pytest.raises(MessageFormatError, match='cells have dtype float32: expected int8'):
        grid_to_cdr(spec, np.zeros(spec.shape, np.float32), 5)
    with pytest.raises(MessageFormatError, match='stamp -1 ns is negative'):
        grid_to_cdr(spec, np.zeros(spec.shape, np.int8), -1)
