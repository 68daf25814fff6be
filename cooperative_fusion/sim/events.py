"""What the simulator emits: one event per message it would record.

The world and sensor models (``sim/world.py``, ``sim/sensors.py``) produce
:class:`SimEvent` values in common-time order; the bag writer turns them into
messages. Keeping this layer free of messages keeps the simulator testable
without ROS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class EventKind(str, Enum):
    LIDAR = 'lidar'                      # data['points']: structured (N,) float32 x, y, z, intensity[, t]
    RADAR = 'radar'                      # data['points']: structured (N,) float32 x, y, z, velocity, rcs
    DEPTH = 'depth'                      # data['depth']: (H, W) float32 metres, NaN where no return
    CAMERA_INFO = 'camera_info'          # data['K']: (3, 3), data['width'], data['height']
    ODOM = 'odom'                        # data['pose']: core.types.PoseSample; data['child_frame_id']
    TIME_REFERENCE = 'time_reference'    # data['time_ref_ns']: int common time; data['source']: str
    TRUTH_GRID = 'truth_grid'            # data['spec']: core.grid.GridSpec; data['cells']: (H, W) int8 0/100
    TRUTH_ODOM = 'truth_odom'            # data['pose']: core.types.PoseSample (common time); data['child_frame_id']
    TRUTH_OBJECTS = 'truth_objects'      # data['boxes']: list[dict(id, kind, center(3), size(3), yaw, velocity(2))]
    TRUTH_META = 'truth_meta'            # data['json']: str, once at the start (first event) on /truth/scenario
                                         # (std_msgs/String): keys scenario, seed, vehicle_ids, hazard_ids,
                                         # traffic_ids, start_time_ns, duration_s, meeting_time_ns (per vehicle:
                                         # common ns at which it would reach the hazard if nobody reacted, or
                                         # null), meeting_time_s (seconds after start), note


@dataclass(frozen=True)
class SimEvent:
    """One recorded message.

    topic : full topic name, e.g. ``/v3/lidar/points``
    stamp_ns : the header stamp, in the writer's clock (vehicle clock for a
        vehicle's topics, common time for ``/truth/*``)
    log_time_ns : common time at which the message is recorded (bag timestamp)
    frame_id : header.frame_id
    """

    topic: str
    kind: EventKind
    stamp_ns: int
    log_time_ns: int
    frame_id: str
    data: dict[str, Any] = field(default_factory=dict)
