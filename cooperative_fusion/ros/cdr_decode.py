"""Serialized CDR of the big inputs -> light message views, without building rclpy messages.

A subscription created with ``raw=True`` hands its callback the CDR bytes as
they came off the wire. Building the rclpy message from them costs more than
the node's own work on a 100k-point cloud: the generated classes import and
validate in every setter. These decoders read the few fixed fields with
``struct`` and leave the payload (``data``) a zero-copy ``memoryview`` of the
received bytes, in objects that carry the same attribute names as the rclpy
messages. The ``ros/`` adapters therefore take either: ``cloud_to_array``
(ros/pointcloud.py) and ``grid_from_msg`` (ros/grid.py) validate and convert
a decoded view exactly as they do a message, so both paths give the same arrays.

Handled: ``sensor_msgs/PointCloud2``, ``sensor_msgs/Image``, ``nav_msgs/OccupancyGrid`` and
``nav_msgs/Odometry`` (200 messages a second at the fusion and the twin with 4 vehicles), plain CDR
(XCDR1), either byte order as the encapsulation header says; alignment counts
from after that 4-byte header. Truncated or inconsistent bytes raise
:class:`MessageFormatError` (a node's guard counts it as ``drops.<source>.malformed``).
Views are read-only: ``data`` is a view of the received ``bytes``.
"""
from __future__ import annotations

import struct
from typing import Any, Callable, TypeVar, Union

import numpy as np

from ..core.errors import MessageFormatError

#: What a raw subscription hands its callback (rclpy: ``bytes``).
RawBytes = Union[bytes, bytearray, memoryview]
_RAW_TYPES = (bytes, bytearray, memoryview)

#: encapsulation kind (second header byte) -> struct byte order: CDR_BE, CDR_LE, PL_CDR_BE, PL_CDR_LE
_ORDERS = {0: '>', 1: '<'}

T = TypeVar('T')


class Time:
    """``builtin_interfaces/Time`` fields: ``sec`` (int32), ``nanosec`` (uint32)."""

    __slots__ = ('sec', 'nanosec')

    def __init__(self, sec: int, nanosec: int) -> None:
        self.sec, self.nanosec = sec, nanosec


class Header:
    """``std_msgs/Header`` fields: ``stamp`` (:class:`Time`), ``frame_id``."""

    __slots__ = ('stamp', 'frame_id')

    def __init__(self, stamp: Time, frame_id: str) -> None:
        self.stamp, self.frame_id = stamp, frame_id


class PointFieldView:
    """``sensor_msgs/PointField`` fields: ``name``, ``offset``, ``datatype``, ``count``."""

    __slots__ = ('name', 'offset', 'datatype', 'count')

    def __init__(self, name: str, offset: int, datatype: int, count: int) -> None:
        self.name, self.offset, self.datatype, self.count = name, offset, datatype, count


class PointCloud2View:
    """The fields of a ``sensor_msgs/PointCloud2`` under their message names; ``data`` a read-only
    memoryview (bytes) of the serialized message."""

    __slots__ = ('header', 'height', 'width', 'fields', 'is_bigendian', 'point_step', 'row_step', 'data',
                 'is_dense')

    def __init__(self, header: Header, height: int, width: int, fields: list[PointFieldView], is_bigendian: bool,
                 point_step: int, row_step: int, data: memoryview, is_dense: bool) -> None:
        self.header, self.height, self.width, self.fields = header, height, width, fields
        self.is_bigendian, self.point_step, self.row_step = is_bigendian, point_step, row_step
        self.data, self.is_dense = data, is_dense


class ImageView:
    """The fields of a ``sensor_msgs/Image`` under their message names; ``data`` a read-only memoryview
    (bytes) of the serialized message."""

    __slots__ = ('header', 'height', 'width', 'encoding', 'is_bigendian', 'step', 'data')

    def __init__(self, header: Header, height: int, width: int, encoding: str, is_bigendian: int, step: int,
                 data: memoryview) -> None:
        self.header, self.height, self.width, self.encoding = header, height, width, encoding
        self.is_bigendian, self.step, self.data = is_bigendian, step, data


class Point:
    """``geometry_msgs/Point`` fields ``x``, ``y``, ``z`` (float64)."""

    __slots__ = ('x', 'y', 'z')

    def __init__(self, x: float, y: float, z: float) -> None:
        self.x, self.y, self.z = x, y, z


class Quaternion:
    """``geometry_msgs/Quaternion`` fields ``x``, ``y``, ``z``, ``w`` (float64)."""

    __slots__ = ('x', 'y', 'z', 'w')

    def __init__(self, x: float, y: float, z: float, w: float) -> None:
        self.x, self.y, self.z, self.w = x, y, z, w


class Pose:
    """``geometry_msgs/Pose`` fields ``position``, ``orientation``."""

    __slots__ = ('position', 'orientation')

    def __init__(self, position: Point, orientation: Quaternion) -> None:
        self.position, self.orientation = position, orientation


class MapMetaData:
    """``nav_msgs/MapMetaData`` fields: ``map_load_time``, ``resolution`` (float32 on the wire, metres),
    ``width``, ``height`` (cells), ``origin`` (:class:`Pose`)."""

    __slots__ = ('map_load_time', 'resolution', 'width', 'height', 'origin')

    def __init__(self, map_load_time: Time, resolution: float, width: int, height: int, origin: Pose) -> None:
        self.map_load_time, self.resolution, self.width, self.height = map_load_time, resolution, width, height
        self.origin = origin


class OccupancyGridView:
    """The fields of a ``nav_msgs/OccupancyGrid``; ``data`` a read-only memoryview (bytes, int8 cells)."""

    __slots__ = ('header', 'info', 'data')

    def __init__(self, header: Header, info: MapMetaData, data: memoryview) -> None:
        self.header, self.info, self.data = header, info, data


#: ``geometry_msgs/Vector3``: the same fields as :class:`Point` (``x``, ``y``, ``z``, float64).
Vector3 = Point


class PoseWithCovariance:
    """``geometry_msgs/PoseWithCovariance`` fields: ``pose`` (:class:`Pose`), ``covariance`` (36,) float64."""

    __slots__ = ('pose', 'covariance')

    def __init__(self, pose: Pose, covariance: np.ndarray) -> None:
        self.pose, self.covariance = pose, covariance


class Twist:
    """``geometry_msgs/Twist`` fields ``linear``, ``angular`` (:class:`Vector3`)."""

    __slots__ = ('linear', 'angular')

    def __init__(self, linear: Vector3, angular: Vector3) -> None:
        self.linear, self.angular = linear, angular


class TwistWithCovariance:
    """``geometry_msgs/TwistWithCovariance`` fields: ``twist`` (:class:`Twist`), ``covariance`` (36,) float64."""

    __slots__ = ('twist', 'covariance')

    def __init__(self, twist: Twist, covariance: np.ndarray) -> None:
        self.twist, self.covariance = twist, covariance


class OdometryView:
    """The fields of a ``nav_msgs/Odometry``; the covariances are read-only float64 arrays over the received
    bytes (assigning a field replaces it, as on a message)."""

    __slots__ = ('header', 'child_frame_id', 'pose', 'twist')

    def __init__(self, header: Header, child_frame_id: str, pose: PoseWithCovariance,
                 twist: TwistWithCovariance) -> None:
        self.header, self.child_frame_id, self.pose, self.twist = header, child_frame_id, pose, twist


class _Reader:
    """A cursor over one serialized message: offsets count from after the 4-byte encapsulation header."""

    __slots__ = ('view', 'pos', 'end', 'order', 'structs', 'what')

    def __init__(self, raw: RawBytes, what: str) -> None:
        self.what = what
        self.view = memoryview(raw).cast('B') if isinstance(raw, memoryview) else memoryview(raw)
        self.end = len(self.view)
        if self.end < 4:
            raise MessageFormatError(f'{what}: {self.end} bytes cannot hold a CDR header (4 bytes)')
        if self.view[0] != 0 or self.view[1] not in _ORDERS:
            raise MessageFormatError(
                f'{what}: CDR encapsulation {bytes(self.view[:2]).hex()} is not plain CDR: '
                f'expected 0000 (big endian) or 0001 (little endian)')
        self.order = _ORDERS[self.view[1]]
        self.structs = _STRUCTS[self.order]
        self.pos = 4

    def _need(self, size: int, field: str) -> None:
        if self.pos + size > self.end:
            raise MessageFormatError(f'{self.what}: truncated at {field}: needs {size} bytes at offset '
                                     f'{self.pos}, the message has {self.end}')

    def align(self, size: int) -> None:
        self.pos += -(self.pos - 4) % size

    def unpack(self, fmt: struct.Struct, align: int, field: str) -> tuple[Any, ...]:
        self.align(align)
        self._need(fmt.size, field)
        values = fmt.unpack_from(self.view, self.pos)
        self.pos += fmt.size
        return values

    def u32(self, field: str) -> int:
        return self.unpack(self.structs.u32, 4, field)[0]

    def u8(self, field: str) -> int:
        self._need(1, field)
        self.pos += 1
        return self.view[self.pos - 1]

    def string(self, field: str) -> str:
        size = self.u32(field)
        self._need(size, field)
        if size == 0:          # not what a CDR writer emits (it counts the NUL), but unambiguous
            return ''
        if self.view[self.pos + size - 1] != 0:
            raise MessageFormatError(f'{self.what}: {field} of {size} bytes is not NUL-terminated')
        raw = bytes(self.view[self.pos:self.pos + size - 1])
        self.pos += size
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise MessageFormatError(f'{self.what}: {field} is not UTF-8: {exc}') from exc

    def octets(self, field: str) -> memoryview:
        """A ``sequence<uint8|int8>``: a view of its bytes, no copy."""
        size = self.u32(field)
        self._need(size, field)
        self.pos += size
        return self.view[self.pos - size:self.pos]

    def doubles(self, count: int, field: str) -> np.ndarray:
        """``count`` float64 (8-aligned) as a read-only array over the received bytes, no copy."""
        self.align(8)
        self._need(8 * count, field)
        values = np.frombuffer(self.view, dtype=self.structs.f8, count=count, offset=self.pos)
        self.pos += 8 * count
        return values

    def header(self) -> Header:
        sec, nanosec = self.unpack(self.structs.time, 4, 'header.stamp')
        return Header(Time(sec, nanosec), self.string('header.frame_id'))


class _Structs:
    """Precompiled structs of one byte order."""

    def __init__(self, order: str) -> None:
        self.u32 = struct.Struct(order + 'I')
        self.time = struct.Struct(order + 'iI')
        self.two_u32 = struct.Struct(order + 'II')
        self.field_tail = struct.Struct(order + 'IBxxxI')     # offset, datatype, (pad), count
        self.steps = struct.Struct(order + 'II')
        self.map_info = struct.Struct(order + 'iIfII')       # map_load_time, resolution, width, height
        self.pose = struct.Struct(order + '7d')
        self.f8 = np.dtype(order + 'f8')


_STRUCTS = {order: _Structs(order) for order in _ORDERS.values()}


def header_layout(raw: RawBytes, what: str = 'message') -> tuple[str, int]:
    """Of serialized bytes that begin with a ``std_msgs/Header``: their byte order (``'<'`` or ``'>'``) and
    the offset (from the start, the encapsulation header included) of the 4-aligned field after the header.
    Raises MessageFormatError for bytes that do not hold a whole header."""
    r = _Reader(raw, what)
    r.header()
    r.align(4)
    return r.order, r.pos


def decode_point_cloud2(raw: RawBytes) -> PointCloud2View:
    """The :class:`PointCloud2View` of serialized ``sensor_msgs/PointCloud2`` bytes (CDR header included).

    ``data`` is a zero-copy view of ``raw``. Raises MessageFormatError for bytes
    that are not a whole PointCloud2 (truncated, bad header, a string without
    its NUL, trailing bytes past the alignment padding).
    """
    r = _Reader(raw, 'PointCloud2')
    s = r.structs
    header = r.header()
    height, width = r.unpack(s.two_u32, 4, 'height/width')
    n_fields = r.u32('fields')
    if n_fields * 13 > r.end - r.pos:          # each field: >= 4 + 1 (name) + 4 + 1 + 3 + 4 bytes
        raise MessageFormatError(f'PointCloud2: {n_fields} fields cannot fit in the remaining '
                                 f'{r.end - r.pos} bytes')
    fields = []
    for i in range(n_fields):
        name = r.string(f'fields[{i}].name')
        offset, datatype, count = r.unpack(s.field_tail, 4, f'fields[{i}]')
        fields.append(PointFieldView(name, offset, datatype, count))
    is_bigendian = r.u8('is_bigendian')
    point_step, row_step = r.unpack(s.steps, 4, 'point_step/row_step')
    data = r.octets('data')
    is_dense = r.u8('is_dense')
    if is_bigendian > 1 or is_dense > 1:
        raise MessageFormatError(f'PointCloud2: is_bigendian {is_bigendian} / is_dense {is_dense}: '
                                 f'expected booleans (0 or 1)')
    _check_end(r)
    return PointCloud2View(header, height, width, fields, bool(is_bigendian), point_step, row_step, data,
                           bool(is_dense))


def decode_image(raw: RawBytes) -> ImageView:
    """The :class:`ImageView` of serialized ``sensor_msgs/Image`` bytes (CDR header included).

    ``data`` is a zero-copy view of ``raw``. Raises MessageFormatError for bytes
    that are not a whole Image.
    """
    r = _Reader(raw, 'Image')
    header = r.header()
    height, width = r.unpack(r.structs.two_u32, 4, 'height/width')
    encoding = r.string('encoding')
    is_bigendian = r.u8('is_bigendian')
    step = r.u32('step')
    data = r.octets('data')
    if is_bigendian > 1:
        raise MessageFormatError(f'Image: is_bigendian {is_bigendian}: expected a boolean (0 or 1)')
    _check_end(r)
    return ImageView(header, height, width, encoding, is_bigendian, step, data)


def decode_occupancy_grid(raw: RawBytes) -> OccupancyGridView:
    """The :class:`OccupancyGridView` of serialized ``nav_msgs/OccupancyGrid`` bytes (CDR header included).

    ``data`` is a zero-copy view of ``raw``. Raises MessageFormatError for bytes
    that are not a whole OccupancyGrid.
    """
    r = _Reader(raw, 'OccupancyGrid')
    s = r.structs
    header = r.header()
    sec, nanosec, resolution, width, height = r.unpack(s.map_info, 4, 'info')
    px, py, pz, qx, qy, qz, qw = r.unpack(s.pose, 8, 'info.origin')
    data = r.octets('data')
    _check_end(r)
    info = MapMetaData(Time(sec, nanosec), resolution, width, height,
                       Pose(Point(px, py, pz), Quaternion(qx, qy, qz, qw)))
    return OccupancyGridView(header, info, data)


#: Odometry's fixed block after child_frame_id: pose (7), its covariance (36), twist (6), its covariance (36).
_ODOM_DOUBLES = 7 + 36 + 6 + 36


def decode_odometry(raw: RawBytes) -> OdometryView:
    """The :class:`OdometryView` of serialized ``nav_msgs/Odometry`` bytes (CDR header included).

    The covariances are read-only (36,) float64 views of ``raw``. Raises
    MessageFormatError for bytes that are not a whole Odometry.
    """
    r = _Reader(raw, 'Odometry')
    header = r.header()
    child_frame_id = r.string('child_frame_id')
    values = r.doubles(_ODOM_DOUBLES, 'pose/twist')
    _check_end(r)
    px, py, pz, qx, qy, qz, qw = values[:7].tolist()
    lx, ly, lz, ax, ay, az = values[43:49].tolist()
    return OdometryView(header, child_frame_id,
                        PoseWithCovariance(Pose(Point(px, py, pz), Quaternion(qx, qy, qz, qw)), values[7:43]),
                        TwistWithCovariance(Twist(Vector3(lx, ly, lz), Vector3(ax, ay, az)), values[49:85]))


def _check_end(r: _Reader) -> None:
    """Bytes past the message's end may only be the serializer's padding to 4 (or 8) bytes."""
    if r.end - r.pos >= 8:
        raise MessageFormatError(f'{r.what}: {r.end - r.pos} bytes after the end of the message '
                                 f'(at offset {r.pos} of {r.end})')


def raw_or_message(decode: Callable[[RawBytes], T]) -> Callable[[Any], Any]:
    """``decode`` for serialized bytes, the identity for anything else (an rclpy message):
    a callback of a ``raw=True`` subscription also takes the message objects the lock-step
    runner hands it."""

    def convert(msg: Any) -> Any:
        return decode(msg) if isinstance(msg, _RAW_TYPES) else msg

    return convert


#: A PointCloud2 (message or serialized bytes) as something ``cloud_to_array`` reads.
as_point_cloud2 = raw_or_message(decode_point_cloud2)
#: An Image (message or serialized bytes) as something ``depth_image_to_array`` reads.
as_image = raw_or_message(decode_image)
#: An OccupancyGrid (message or serialized bytes) as something ``grid_from_msg`` reads.
as_occupancy_grid = raw_or_message(decode_occupancy_grid)
#: An Odometry (message or serialized bytes) as something ``odometry_to_pose`` reads.
as_odometry = raw_or_message(decode_odometry)
