"""Twin results -> visualization_msgs/MarkerArray and nav_msgs/Path (and an advised Path back to arrays).

One array per twin cycle, for RViz / Foxglove: it starts with a DELETEALL
marker so whatever the previous cycle drew (a track that has gone, a conflict
that is resolved) vanishes, then draws

- ``tracks`` (CUBE footprint), ``track_ids`` (text), ``track_velocity`` (ARROW
  over one second of motion) per track;
- ``predictions``: obstacles (and platoon vehicles) at each output horizon,
  fading with the horizon;
- ``conflicts`` (red sphere at the contact point) and ``conflict_ttc`` (text).

Marker ids are the index within their namespace, so (ns, id) is unique per array.
"""
from __future__ import annotations

import math
import struct
from typing import Sequence

import numpy as np
from geometry_msgs.msg import Point, PoseStamped, Quaternion
from numpy.typing import NDArray
from nav_msgs.msg import Path
from visualization_msgs.msg import Marker, MarkerArray

from ..core.twin.conflicts import Advisory, Conflict, ConflictLevel
from ..core.errors import MessageFormatError
from ..core.twin.prediction import Rollout
from ..core.twin.tracking import Track
from .cdr import CDR_LE_HEADER
from .time import ns_to_stamp, stamp_to_ns

#: Height of the drawn boxes, metres (the grid is 2-D).
BOX_HEIGHT_M = 1.5
#: Text size, metres.
TEXT_SIZE_M = 1.0
#: The velocity arrow shows this many seconds of motion.
ARROW_SECONDS = 1.0

_TRACK_COLOR = (0.1, 0.6, 1.0, 0.8)
_OBSTACLE_PRED_COLOR = (1.0, 0.6, 0.1)
_PLATOON_PRED_COLOR = (0.3, 0.9, 0.3)
_CONFLICT_COLORS = {ConflictLevel.WARN: (1.0, 0.8, 0.0, 0.9), ConflictLevel.ERROR: (1.0, 0.0, 0.0, 0.9)}
_TEXT_COLOR = (1.0, 1.0, 1.0, 1.0)


def yaw_to_quaternion(yaw: float) -> Quaternion:
    """Rotation about z by ``yaw`` radians, as a geometry_msgs Quaternion."""
    return Quaternion(x=0.0, y=0.0, z=math.sin(0.5 * yaw), w=math.cos(0.5 * yaw))


def _marker(ns: int | str, marker_id: int, kind: int, stamp_ns: int, frame_id: str, x: float, y: float,
            z: float = 0.0, yaw: float = 0.0, scale: tuple[float, float, float] = (1.0, 1.0, 1.0),
            rgba: Sequence[float] = _TRACK_COLOR) -> Marker:
    if not all(math.isfinite(v) for v in (x, y, z, yaw)):
        raise MessageFormatError(f'marker {ns}/{marker_id} pose is not finite: x={x} y={y} z={z} yaw={yaw}')
    m = Marker()
    m.header.stamp = ns_to_stamp(stamp_ns)
    m.header.frame_id = frame_id
    m.ns = str(ns)
    m.id = int(marker_id)
    m.type = kind
    m.action = Marker.ADD
    m.pose.position.x, m.pose.position.y, m.pose.position.z = float(x), float(y), float(z)
    # Fields set in place: a new Quaternion / ColorRGBA per marker cost more than the rest (59 markers a cycle).
    m.pose.orientation.z, m.pose.orientation.w = math.sin(0.5 * yaw), math.cos(0.5 * yaw)
    m.scale.x, m.scale.y, m.scale.z = (float(max(s, 1e-3)) for s in scale)
    c = m.color
    c.r, c.g, c.b, c.a = (float(v) for v in rgba)
    return m


def _text(ns: str, marker_id: int, stamp_ns: int, frame_id: str, x: float, y: float, text: str) -> Marker:
    m = _marker(ns, marker_id, Marker.TEXT_VIEW_FACING, stamp_ns, frame_id, x, y, BOX_HEIGHT_M + 1.0,
                scale=(TEXT_SIZE_M, TEXT_SIZE_M, TEXT_SIZE_M), rgba=_TEXT_COLOR)
    m.text = text
    return m


def delete_all(stamp_ns: int, frame_id: str) -> Marker:
    """The DELETEALL marker that clears everything drawn before it."""
    m = Marker()
    m.header.stamp = ns_to_stamp(stamp_ns)
    m.header.frame_id = frame_id
    m.action = Marker.DELETEALL
    return m


def track_markers(tracks: Sequence[Track], stamp_ns: int, frame_id: str = 'map') -> list[Marker]:
    """Per track: CUBE footprint (ns ``tracks``), text id (``track_ids``), 1 s velocity ARROW (``track_velocity``)."""
    out: list[Marker] = []
    for i, t in enumerate(tracks):
        out.append(_marker('tracks', i, Marker.CUBE, stamp_ns, frame_id, t.x, t.y, 0.5 * BOX_HEIGHT_M, t.yaw,
                           (t.length, t.width, BOX_HEIGHT_M), _TRACK_COLOR))
        out.append(_text('track_ids', i, stamp_ns, frame_id, t.x, t.y, f'track_{t.track_id}'))
        arrow = _marker('track_velocity', i, Marker.ARROW, stamp_ns, frame_id, 0.0, 0.0,
                        scale=(0.3, 0.6, 0.6), rgba=_TRACK_COLOR)
        z = BOX_HEIGHT_M
        arrow.points = [Point(x=t.x, y=t.y, z=z),
                        Point(x=t.x + ARROW_SECONDS * t.vx, y=t.y + ARROW_SECONDS * t.vy, z=z)]
        out.append(arrow)
    return out


def prediction_markers(ro: Rollout, horizons_s: Sequence[float], stamp_ns: int, frame_id: str = 'map',
                       include_platoon: bool = True) -> list[Marker]:
    """Obstacles (and platoon vehicles) at each horizon as CUBEs in ns ``predictions``, fading with the horizon.

    Alpha falls linearly from 0.5 at the first horizon to 0.1 at the last.
    """
    out: list[Marker] = []
    ob, pl = ro.obstacles, ro.platoon
    hs = list(horizons_s)
    for n, h in enumerate(hs):
        k = ro.step_of(h)
        alpha = 0.5 - 0.4 * (n / (len(hs) - 1) if len(hs) > 1 else 0.0)
        ox, oy, oyaw = ro.obstacle_poses(k)          # map poses (the rollout runs along the road)
        for j in range(len(ob)):
            out.append(_marker('predictions', len(out), Marker.CUBE, stamp_ns, frame_id,
                               float(ox[j]), float(oy[j]), 0.5 * BOX_HEIGHT_M,
                               float(oyaw[j]), (float(ob.length[j]), float(ob.width[j]), BOX_HEIGHT_M),
                               (*_OBSTACLE_PRED_COLOR, alpha)))
        if include_platoon:
            px, py, pyaw = ro.platoon_poses(k)
            for i in range(len(pl)):
                out.append(_marker('predictions', len(out), Marker.CUBE, stamp_ns, frame_id,
                                   float(px[i]), float(py[i]), 0.5 * BOX_HEIGHT_M,
                                   float(pyaw[i]), (float(pl.length[i]), float(pl.width[i]), BOX_HEIGHT_M),
                                   (*_PLATOON_PRED_COLOR, alpha)))
    return out


def conflict_markers(conflicts: Sequence[Conflict], stamp_ns: int, frame_id: str = 'map') -> list[Marker]:
    """Per conflict: a sphere at (x, y) (ns ``conflicts``; red for ERROR, amber for WARN) and a ttc text."""
    out: list[Marker] = []
    for i, c in enumerate(conflicts):
        rgba = _CONFLICT_COLORS.get(c.level, _CONFLICT_COLORS[ConflictLevel.WARN])
        out.append(_marker('conflicts', i, Marker.SPHERE, stamp_ns, frame_id, c.x, c.y, 0.5,
                           scale=(1.5, 1.5, 1.5), rgba=rgba))
        ttc = f'{c.ttc_s:.1f} s' if math.isfinite(c.ttc_s) else 'inf'
        out.append(_text('conflict_ttc', i, stamp_ns, frame_id, c.x, c.y, f'{c.vehicle_id} ttc {ttc}'))
    return out


def twin_markers(tracks: Sequence[Track], ro: Rollout | None, conflicts: Sequence[Conflict],
                 horizons_s: Sequence[float], stamp_ns: int, frame_id: str = 'map') -> MarkerArray:
    """DELETEALL, then tracks, predictions at ``horizons_s`` (when a rollout is given) and conflicts."""
    msg = MarkerArray()
    markers = [delete_all(stamp_ns, frame_id), *track_markers(tracks, stamp_ns, frame_id)]
    if ro is not None:
        markers += prediction_markers(ro, horizons_s, stamp_ns, frame_id)
    markers += conflict_markers(conflicts, stamp_ns, frame_id)
    msg.markers = markers
    return msg


def advisory_to_path(advisory: Advisory, stamp_ns: int, frame_id: str = 'map') -> Path:
    """nav_msgs/Path of an advised trajectory; pose k is stamped ``stamp_ns + t_offset_ns[k]``.

    MessageFormatError when the advisory holds non-finite positions or arrays of different lengths.
    """
    n = _check_advisory(advisory)
    path = Path()
    path.header.stamp = ns_to_stamp(stamp_ns)
    path.header.frame_id = frame_id
    poses = []
    for k in range(n):
        ps = PoseStamped()
        ps.header.stamp = ns_to_stamp(int(stamp_ns) + int(advisory.t_offset_ns[k]))
        ps.header.frame_id = frame_id
        ps.pose.position.x = float(advisory.x[k])
        ps.pose.position.y = float(advisory.y[k])
        ps.pose.orientation = yaw_to_quaternion(float(advisory.yaw[k]))
        poses.append(ps)
    path.poses = poses
    return path


_STAMP_LEN = struct.Struct('<iII')      # a header's stamp (sec, nanosec) and its frame_id's length
_COUNT = struct.Struct('<I')
_POSE = struct.Struct('<7d')            # position x y z, orientation x y z w
_NS_PER_S = 1_000_000_000


def advisory_to_cdr(advisory: Advisory, stamp_ns: int, frame_id: str = 'map') -> bytes:
    """The serialized (CDR, little endian, with its encapsulation header) bytes of :func:`advisory_to_path`'s
    message, byte for byte what ``ros.cdr.serialize_cdr`` writes for it; the same checks and errors.

    For ``Publisher.publish(bytes)``: no PoseStamped objects, no conversion to C (see ``nodes/twin_node.py``).
    """
    n = _check_advisory(advisory)
    name = frame_id.encode() + b'\0'
    pad = bytes(-len(name) % 4)      # the string ends 4-aligned again: stamps and lengths follow at 4
    stamp = ns_to_stamp(stamp_ns)
    parts = [CDR_LE_HEADER, _STAMP_LEN.pack(stamp.sec, stamp.nanosec, len(name)), name, pad,
             _COUNT.pack(n)]
    offset = 12 + len(name) + len(pad) + 4          # from the end of the encapsulation header
    pose_ns = [int(stamp_ns) + int(dt) for dt in advisory.t_offset_ns.tolist()]
    if pose_ns:
        ns_to_stamp(min(pose_ns))       # the errors of advisory_to_path's stamps: negative, past 2038
        ns_to_stamp(max(pose_ns))
    for ns, x, y, yaw in zip(pose_ns, advisory.x.tolist(), advisory.y.tolist(), advisory.yaw.tolist()):
        sec, nanosec = divmod(ns, _NS_PER_S)
        offset += 12 + len(name) + len(pad)
        pose_pad = -offset % 8
        offset += pose_pad + _POSE.size
        parts += [_STAMP_LEN.pack(sec, nanosec, len(name)), name, pad, bytes(pose_pad),
                  _POSE.pack(x, y, 0.0, 0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw))]   # yaw_to_quaternion
    return b''.join(parts)


def _check_advisory(advisory: Advisory) -> int:
    """The advisory's pose count; MessageFormatError for arrays of other lengths or non-finite values."""
    n = advisory.t_offset_ns.shape[0]
    for name in ('x', 'y', 'yaw'):
        a = getattr(advisory, name)
        if a.shape != (n,):
            raise MessageFormatError(f'advisory {name} has shape {a.shape}, expected ({n},) like t_offset_ns')
        if not np.all(np.isfinite(a)):
            raise MessageFormatError(f'advisory for {advisory.vehicle_id} holds non-finite {name}')
    return n


def path_to_advisory(msg: Path) -> tuple[int, NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """The inverse of :func:`advisory_to_path`: (stamp_ns, t_offset_ns (P,), x (P,), y (P,)) of an advised path.

    t_offset_ns = pose stamp - path stamp. MessageFormatError on non-finite positions or pose stamps that do
    not increase (or lie before the path's stamp).
    """
    stamp = stamp_to_ns(msg.header.stamp)
    n = len(msg.poses)
    t = np.empty(n, np.int64)
    x = np.empty(n)
    y = np.empty(n)
    for k, ps in enumerate(msg.poses):
        t[k] = stamp_to_ns(ps.header.stamp) - stamp
        x[k] = ps.pose.position.x
        y[k] = ps.pose.position.y
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise MessageFormatError('advisory path holds non-finite positions')
    if n and (t[0] < 0 or (np.diff(t) <= 0).any()):
        raise MessageFormatError(f'advisory pose stamps must increase from the path stamp, got offsets '
                                 f'{(t * 1e-9).round(3).tolist()} s')
    return stamp, t, x, y
