"""nav_msgs/OccupancyGrid <-> (GridSpec, int8 cells).

Cells are (height, width) indexed ``[iy, ix]``, row-major as in the message,
so no reordering is needed either way. The origin pose is the lower-left
corner of cell (0, 0) in the frame (``map``); its orientation is a rotation
about z by the grid's yaw (a grid that follows the road). Roll or pitch is
refused.
"""
from __future__ import annotations

import array
import math
import struct

import numpy as np
from nav_msgs.msg import OccupancyGrid
from numpy.typing import NDArray

from ..core.errors import MessageFormatError
from ..core.grid import GridSpec
from .cdr import CDR_LE_HEADER
from .time import ns_to_stamp

#: Largest tilt (roll / pitch) of the origin accepted as a rotation about z only, radians.
MAX_ORIGIN_TILT_RAD = 1e-6
#: Largest yaw read as 0 (an axis-aligned grid), radians.
MAX_AXIS_ALIGNED_YAW_RAD = 1e-9


def _snap(value: float, resolution: float) -> float:
    """``value`` as the exact multiple of ``resolution`` it stands for, when it is one to 1e-6 cells
    (a rotated origin comes back from map with rounding errors of ~1e-15 m)."""
    k = round(value / resolution)
    return k * resolution if abs(value / resolution - k) < 1e-6 else value


def grid_from_msg(msg: OccupancyGrid) -> tuple[GridSpec, NDArray[np.int8]]:
    """Geometry and cells (height, width) int8 of an OccupancyGrid.

    The cells are a read-write view of ``msg.data`` (no copy). MessageFormatError
    for a zero size, a bad resolution, a non-finite origin, an origin rotated
    about x or y (only a yaw is a grid), or ``len(data) != width * height``.
    """
    info = msg.info
    width, height, resolution = int(info.width), int(info.height), float(info.resolution)
    if width == 0 or height == 0:
        raise MessageFormatError(f'occupancy grid is {width}x{height}: expected a non-zero size')
    if not (math.isfinite(resolution) and resolution > 0):
        raise MessageFormatError(f'occupancy grid resolution {resolution} m: expected a finite value > 0')
    p, q = info.origin.position, info.origin.orientation
    values = (p.x, p.y, p.z, q.x, q.y, q.z, q.w)
    if not all(math.isfinite(v) for v in values):
        raise MessageFormatError(f'occupancy grid origin is not finite: position ({p.x}, {p.y}, {p.z}), '
                                 f'orientation ({q.x}, {q.y}, {q.z}, {q.w})')
    vec = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z)
    if vec == 0.0 and q.w == 0.0:
        raise MessageFormatError('occupancy grid origin orientation is a zero quaternion: expected a unit quaternion')
    norm = math.sqrt(vec * vec + q.w * q.w)
    tilt = 2.0 * math.asin(min(1.0, math.hypot(q.x, q.y) / norm))
    if tilt > MAX_ORIGIN_TILT_RAD:
        raise MessageFormatError(
            f'occupancy grid origin is tilted by {tilt:.3g} rad (x, y, z, w = {q.x}, {q.y}, {q.z}, {q.w}): '
            f'expected a rotation about z only (roll = pitch = 0)')
    yaw = 2.0 * math.atan2(q.z, q.w)
    yaw = (yaw + math.pi) % (2.0 * math.pi) - math.pi
    if abs(yaw) <= MAX_AXIS_ALIGNED_YAW_RAD:
        yaw = 0.0
    if len(msg.data) != width * height:
        raise MessageFormatError(
            f'occupancy grid data length {len(msg.data)} not equal to width {width} * height {height}')
    # resolution is float32 on the wire: 7 significant digits give back the float64
    # the sender meant (0.2, not 0.20000000298), so specs compare equal after a round trip.
    resolution = float(f'{resolution:.7g}')
    if yaw == 0.0:
        spec = GridSpec(float(p.x), float(p.y), resolution, width, height)
    else:
        c, s = math.cos(yaw), math.sin(yaw)
        ox, oy = c * p.x + s * p.y, -s * p.x + c * p.y        # the origin in the grid frame
        spec = GridSpec(_snap(ox, resolution), _snap(oy, resolution), resolution, width, height, yaw)
    return spec, np.frombuffer(msg.data, dtype=np.int8).reshape(height, width)


def grid_to_msg(spec: GridSpec, cells: NDArray[np.integer], stamp_ns: int, frame_id: str = 'map') -> OccupancyGrid:
    """OccupancyGrid of ``cells`` (height, width) int8 on ``spec``; map_load_time = the stamp.

    Cells of another integer dtype are cast to int8 (values must already be
    -1 or 0..100).
    """
    cells = _int8_cells(spec, cells)
    msg = OccupancyGrid()
    stamp = ns_to_stamp(stamp_ns)
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.info.map_load_time = stamp
    msg.info.resolution = float(spec.resolution)
    msg.info.width, msg.info.height = spec.width, spec.height
    ox, oy = spec.origin_map
    msg.info.origin.position.x = float(ox)
    msg.info.origin.position.y = float(oy)
    qz, qw = _origin_yaw_quaternion(spec)
    msg.info.origin.orientation.z = qz
    msg.info.origin.orientation.w = qw
    # An array.array is the setter's fast path; frombytes() copies the buffer once: ~0.01 ms
    # for 1000x150, against ~3 ms for a list and ~9 ms for a numpy array (element-wise).
    msg.data = array.array('b')
    msg.data.frombytes(cells)
    return msg


#: OccupancyGrid after header.frame_id: info.map_load_time (sec, nanosec), resolution, width, height.
_MAP_INFO = struct.Struct('<iIfII')
#: info.origin (position x y z, orientation x y z w), float64 at an 8-aligned offset.
_POSE = struct.Struct('<7d')
_UINT32 = struct.Struct('<I')


def grid_to_cdr(spec: GridSpec, cells: NDArray[np.integer], stamp_ns: int, frame_id: str = 'map') -> bytes:
    """The serialized (CDR, little endian, with its encapsulation header) bytes of
    :func:`grid_to_msg`'s message, byte for byte what ``ros.cdr.serialize_cdr`` writes for it.

    For ``Publisher.publish(bytes)``: the message object, its conversion to C and rmw's serialization
    are skipped (see ``nodes/fusion_node.py``). Same checks and errors as :func:`grid_to_msg`.
    """
    cells = _int8_cells(spec, cells)
    stamp = ns_to_stamp(stamp_ns)
    name = frame_id.encode() + b'\0'
    offset = 12 + len(name)                         # after stamp, length and frame_id (encapsulation excluded)
    pad_info = -offset % 4
    offset += pad_info + _MAP_INFO.size
    pad_pose = -offset % 8
    ox, oy = spec.origin_map
    qz, qw = _origin_yaw_quaternion(spec)
    return b''.join((
        CDR_LE_HEADER, struct.pack('<iII', stamp.sec, stamp.nanosec, len(name)), name, bytes(pad_info),
        _MAP_INFO.pack(stamp.sec, stamp.nanosec, float(spec.resolution), spec.width, spec.height),
        bytes(pad_pose), _POSE.pack(float(ox), float(oy), 0.0, 0.0, 0.0, qz, qw),
        _UINT32.pack(cells.size), memoryview(cells).cast('B')))


def _int8_cells(spec: GridSpec, cells: NDArray[np.integer]) -> NDArray[np.int8]:
    """``cells`` as C-contiguous int8 of the spec's shape; MessageFormatError for another shape or dtype."""
    cells = np.asarray(cells)
    if cells.shape != spec.shape:
        raise MessageFormatError(f'cells have shape {cells.shape}: expected {spec.shape} (height, width) of the spec')
    if cells.dtype != np.int8:
        if cells.dtype.kind not in 'iu':
            raise MessageFormatError(f'cells have dtype {cells.dtype}: expected int8')
        cells = cells.astype(np.int8)
    return np.ascontiguousarray(cells)


def _origin_yaw_quaternion(spec: GridSpec) -> tuple[float, float]:
    """(z, w) of the origin orientation: a rotation about z by the grid's yaw."""
    if spec.is_rotated:
        return math.sin(0.5 * spec.yaw), math.cos(0.5 * spec.yaw)
    return 0.0, 1.0
