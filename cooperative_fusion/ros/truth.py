"""Ground-truth and marker messages -> core types: boxes of CUBE markers, heading of a quaternion."""
from __future__ import annotations

import json
import math
from typing import Any

from ..core.metrics import Box


def yaw_of_quaternion(q: Any) -> float:
    """Heading (rotation about z, radians) of a geometry_msgs/Quaternion (x, y, z, w)."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def cube_boxes(msg: Any, namespace: str | None = None) -> list[Box]:
    """Boxes of the ADD CUBE markers of a MarkerArray (only those in ``namespace`` when given).

    The id is the ``id`` of the marker's JSON ``text`` (truth objects), else ``<ns>_<id>``;
    the kind is its ``kind``, else the namespace; the height is ``scale.z``; the velocity the
    text's ``velocity`` (m/s, 0 when absent).
    """
    from visualization_msgs.msg import Marker

    out = []
    for m in msg.markers:
        if m.type != Marker.CUBE or m.action != Marker.ADD or (namespace is not None and m.ns != namespace):
            continue
        info: Any = {}
        if m.text:
            try:
                info = json.loads(m.text)
            except json.JSONDecodeError:
                info = {}
        if not isinstance(info, dict):
            info = {}
        velocity = info.get('velocity')
        vx, vy = (float(velocity[0]), float(velocity[1])) if isinstance(velocity, list) and len(velocity) >= 2 \
            else (0.0, 0.0)
        out.append(Box(float(m.pose.position.x), float(m.pose.position.y), float(m.scale.x), float(m.scale.y),
                       yaw_of_quaternion(m.pose.orientation), str(info.get('id', f'{m.ns}_{m.id}')),
                       str(info.get('kind', m.ns)), float(m.scale.z), vx, vy))
    return out
