"""Simulator events -> ROS messages -> a rosbag2 (mcap) directory.

:func:`event_to_message` builds the message of one :class:`SimEvent` through
the adapters in ``cooperative_fusion.ros`` (clouds, images, odometry, grids,
stamps, time references); the two that have no adapter family of their own
(the truth MarkerArray and the scenario String) are built here.
:func:`write_simulation` streams a whole simulation into a bag.
"""
from __future__ import annotations

import json
import math
import sys
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

from builtin_interfaces.msg import Duration
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from ..core.errors import MessageFormatError
from ..ros.bag import BagWriter
from ..ros.grid import grid_to_msg
from ..ros.image import array_to_depth_image, k_to_camera_info
from ..ros.odometry import pose_to_odometry
from ..ros.pointcloud import array_to_cloud
from ..ros.time import make_time_reference, ns_to_stamp
from .events import EventKind, SimEvent

#: How long a truth object marker stays on screen unless refreshed (the truth objects
#: stream refreshes it at its rate; a vanished object then disappears).
MARKER_LIFETIME_NS = 500_000_000

#: RGBA of the truth boxes per object kind (anything else: grey).
_KIND_COLORS: dict[str, tuple[float, float, float, float]] = {
    'car': (0.2, 0.5, 1.0, 0.6),
    'truck': (0.1, 0.3, 0.8, 0.6),
    'platoon': (0.1, 0.8, 0.2, 0.6),
    'stopped_car': (1.0, 0.2, 0.1, 0.8),
    'debris': (1.0, 0.6, 0.0, 0.8),
}


def marker_id(object_id: Any) -> int:
    """Marker id (int32 >= 0) of a truth object id: the id itself when it is an integer,
    else a stable CRC32 of its text (the same name always gives the same marker)."""
    if isinstance(object_id, (int,)) and not isinstance(object_id, bool) and 0 <= object_id < 2**31:
        return int(object_id)
    return zlib.crc32(str(object_id).encode()) & 0x7FFFFFFF


def boxes_to_markers(boxes: list[dict[str, Any]], stamp_ns: int, frame_id: str) -> MarkerArray:
    """Truth boxes as CUBE markers, one per box.

    boxes : dicts with ``id``, ``kind``, ``center`` (3,) m, ``size`` (3,) m (length, width,
        height), ``yaw`` rad, ``velocity`` (2,) m/s in ``frame_id``.
    Each marker: ns = kind, id = :func:`marker_id`, pose = centre and yaw, scale = size,
    and ``text`` = JSON ``{"id", "kind", "velocity"}`` so the truth velocity and the
    original id survive in the bag (CUBE markers do not display their text).
    """
    stamp = ns_to_stamp(stamp_ns)
    lifetime = Duration(sec=MARKER_LIFETIME_NS // 10**9, nanosec=MARKER_LIFETIME_NS % 10**9)
    markers = []
    for box in boxes:
        try:
            center = [float(v) for v in box['center']]
            size = [float(v) for v in box['size']]
            yaw = float(box['yaw'])
            velocity = [float(v) for v in box.get('velocity', (0.0, 0.0))]
            kind = str(box['kind'])
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageFormatError(f'truth box {box!r}: expected id, kind, center(3), size(3), yaw, '
                                     f'velocity(2): {exc}') from exc
        if len(center) != 3 or len(size) != 3:
            raise MessageFormatError(f'truth box {box.get("id")!r}: center and size need 3 values, '
                                     f'got {len(center)} and {len(size)}')
        m = Marker()
        m.header.stamp = stamp
        m.header.frame_id = frame_id
        m.ns = kind
        m.id = marker_id(box['id'])
        m.type = Marker.CUBE
        m.action = Marker.ADD
        m.pose.position.x, m.pose.position.y, m.pose.position.z = center
        m.pose.orientation.z = math.sin(0.5 * yaw)
        m.pose.orientation.w = math.cos(0.5 * yaw)
        m.scale.x, m.scale.y, m.scale.z = size
        m.color = ColorRGBA(**dict(zip('rgba', _KIND_COLORS.get(kind, (0.6, 0.6, 0.6, 0.6)))))
        m.lifetime = lifetime
        m.text = json.dumps({'id': box['id'], 'kind': kind, 'velocity': velocity})
        markers.append(m)
    return MarkerArray(markers=markers)


def _odometry(event: SimEvent) -> Any:
    pose = event.data['pose']
    if pose.stamp_ns != event.stamp_ns:  # the header stamp is the event's, by contract
        pose = replace(pose, stamp_ns=event.stamp_ns)
    return pose_to_odometry(pose, event.frame_id, event.data['child_frame_id'])


_BUILDERS: dict[EventKind, Callable[[SimEvent], Any]] = {
    EventKind.LIDAR: lambda e: array_to_cloud(e.data['points'], e.stamp_ns, e.frame_id),
    EventKind.RADAR: lambda e: array_to_cloud(e.data['points'], e.stamp_ns, e.frame_id),
    EventKind.DEPTH: lambda e: array_to_depth_image(e.data['depth'], e.stamp_ns, e.frame_id),
    EventKind.CAMERA_INFO: lambda e: k_to_camera_info(e.data['K'], e.data['width'], e.data['height'],
                                                      e.stamp_ns, e.frame_id),
    EventKind.ODOM: _odometry,
    EventKind.TRUTH_ODOM: _odometry,
    EventKind.TIME_REFERENCE: lambda e: make_time_reference(e.stamp_ns, e.data['time_ref_ns'],
                                                            str(e.data.get('source', 'gnss')), e.frame_id),
    EventKind.TRUTH_GRID: lambda e: grid_to_msg(e.data['spec'], e.data['cells'], e.stamp_ns, e.frame_id),
    EventKind.TRUTH_OBJECTS: lambda e: boxes_to_markers(e.data['boxes'], e.stamp_ns, e.frame_id),
    EventKind.TRUTH_META: lambda e: String(data=str(e.data['json'])),
}


def event_to_message(event: SimEvent) -> Any:
    """The rclpy message recorded for ``event`` (type by :class:`EventKind`, see DESIGN.md).

    Raises MessageFormatError when the event's payload lacks what its kind needs.
    """
    builder = _BUILDERS.get(event.kind)
    if builder is None:
        raise MessageFormatError(f'{event.topic}: no message for event kind {event.kind!r}')
    try:
        return builder(event)
    except KeyError as exc:
        raise MessageFormatError(f'{event.topic}: {event.kind.value} event lacks data[{exc.args[0]!r}]') from exc


def write_simulation(sim_events: Iterable[SimEvent], out: Path, progress: bool = True,
                     total_s: float | None = None, *, overwrite: bool = False) -> dict[str, int]:
    """Write every event into a new bag at ``out`` (mcap); returns ``{topic: message count}``.

    Events are written as they come (log time = ``event.log_time_ns``), so memory
    stays flat however long the simulation. ``progress`` shows a tqdm bar in
    simulated seconds on stderr (``total_s``: expected simulated duration).
    """
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total_s, unit='sim s', desc='simulate', file=sys.stderr,
                   bar_format='{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} sim s '
                              '[{elapsed}<{remaining}, {rate_fmt}]' if total_s else None)
    t0: int | None = None
    shown = 0.0
    try:
        with BagWriter(out, overwrite=overwrite) as bag:
            for event in sim_events:
                bag.write(event.topic, event_to_message(event), event.log_time_ns)
                if bar is not None:
                    if t0 is None:
                        t0 = event.log_time_ns
                    sim_s = (event.log_time_ns - t0) * 1e-9
                    if sim_s - shown >= 0.1:
                        bar.update(sim_s - shown)
                        shown = sim_s
            counts = dict(bag.counts)
        if bar is not None and total_s:
            bar.update(max(0.0, total_s - shown))  # the stream ended: the last tick lies just before total_s
    finally:
        if bar is not None:
            bar.close()
    return counts
