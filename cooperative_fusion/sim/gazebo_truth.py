"""Ground truth of a recorded Gazebo run, written the way ``cooperative-fusion evaluate`` reads it.

Gazebo gives poses, not grids: ``/truth/odom/<v>`` (OdometryPublisher) and
``/truth/pose/<id>`` of the traffic (PosePublisher). :func:`write_gazebo_truth`
copies the former and, at the scenario's truth rates, rasterises the boxes of
every mover (its pose and the scenario's dimensions) and of the static
hazards and roadside rows into ``/truth/grid`` and ``/truth/objects``, as the
simulator does; ``/truth/scenario`` carries the meta data. Gazebo's sim time
starts at 0 at the scenario's start, so every stamp is sim time.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..core.errors import BagError
from ..core.grid import GridSpec
from ..ros import names
from .events import EventKind, SimEvent
from .gazebo import TRUTH_POSE_PREFIX
from .scenario import Scenario
from .sensors import BoxSet
from .world import Simulation, rasterize_boxes, truth_window


def _poses(recorded: str | Path, scenario: Scenario) -> tuple[dict[str, NDArray[np.float64]],
                                                                list[tuple[int, str, str, bytes]]]:
    """Per mover an (N, 4) array of (stamp_ns, x, y, yaw) sorted by stamp, and the truth odometry
    as (stamp_ns, topic, msgtype, serialized)."""
    from ..ros.bag import BagReader
    from ..ros.time import stamp_to_ns

    topics = {names.truth_odom(v): v for v in scenario.vehicle_ids}
    topics.update({f'{TRUTH_POSE_PREFIX}{t.id}': t.id for t in scenario.traffic})
    rows: dict[str, list[tuple[int, float, float, float]]] = {m: [] for m in topics.values()}
    odom_raw: list[tuple[int, str, str, bytes]] = []
    with BagReader(recorded) as bag:
        present = bag.topics()
        missing = sorted(set(topics) - set(present))
        if missing:
            raise BagError(f'{recorded}: no {", ".join(missing)}: not a recording of the bridged Gazebo '
                           f'world of {scenario.name} (topics: {", ".join(sorted(present)) or "none"})')
        for topic, msgtype, _log_ns, raw in bag.messages(list(topics)):
            msg = bag.deserialize(msgtype, raw)
            pose = msg.pose.pose if topic.startswith(names.TRUTH_ODOM_PREFIX) else msg.pose
            q = pose.orientation
            yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
            stamp_ns = stamp_to_ns(msg.header.stamp)
            rows[topics[topic]].append((stamp_ns, pose.position.x, pose.position.y, yaw))
            if topic.startswith(names.TRUTH_ODOM_PREFIX):
                odom_raw.append((stamp_ns, topic, msgtype, raw))   # logged at its stamp, as simulate does
    out = {}
    for mid, r in rows.items():
        if not r:
            raise BagError(f'{recorded}: no truth pose of {mid!r}')
        a = np.array(r, dtype=np.float64)
        out[mid] = a[np.argsort(a[:, 0], kind='stable')]
    return out, odom_raw


def _interpolate(track: NDArray[np.float64], t_ns: int) -> tuple[float, float, float, float, float]:
    """(x, y, yaw, vx, vy) of an (N, 4) pose track at t_ns: linear, held outside; velocity from the
    neighbouring samples."""
    t = track[:, 0]
    k = int(np.clip(np.searchsorted(t, t_ns) - 1, 0, max(len(t) - 2, 0)))
    if len(t) == 1:
        return float(track[0, 1]), float(track[0, 2]), float(track[0, 3]), 0.0, 0.0
    dt = t[k + 1] - t[k]
    u = float(np.clip((t_ns - t[k]) / dt, 0.0, 1.0)) if dt > 0 else 0.0
    x = track[k, 1] + u * (track[k + 1, 1] - track[k, 1])
    y = track[k, 2] + u * (track[k + 1, 2] - track[k, 2])
    yaw = track[k, 3] + u * math.remainder(track[k + 1, 3] - track[k, 3], 2.0 * math.pi)
    vx = (track[k + 1, 1] - track[k, 1]) / dt * 1e9 if dt > 0 else 0.0
    vy = (track[k + 1, 2] - track[k, 2]) / dt * 1e9 if dt > 0 else 0.0
    return float(x), float(y), float(yaw), float(vx), float(vy)


def boxes_at(scenario: Scenario, tracks: dict[str, NDArray[np.float64]], t_ns: int) -> BoxSet:
    """Every truth box at sim time t_ns: movers from their pose tracks, hazards and roadside from the scenario."""
    ids, kinds, centers, halves, yaws, vels = [], [], [], [], [], []
    movers = [(v.id, v.type.value, v.dimensions) for v in scenario.platoon.vehicles]
    movers += [(t.id, t.type.value, t.dimensions) for t in scenario.traffic]
    for mid, kind, dm in movers:
        x, y, yaw, vx, vy = _interpolate(tracks[mid], t_ns)
        off = dm.length_m / 2 - dm.rear_overhang_m
        ids.append(mid)
        kinds.append(kind)
        centers.append((x + off * math.cos(yaw), y + off * math.sin(yaw), dm.height_m / 2))
        halves.append((dm.length_m / 2, dm.width_m / 2, dm.height_m / 2))
        yaws.append(yaw)
        vels.append((vx, vy, 0.0))
    static = [(h.id, h.kind.value, h.x_m + h.dimensions.length_m / 2,
               h.lane * scenario.road.lane_width_m + h.lateral_offset_m, h.dimensions) for h in scenario.hazards]
    static += [(bid, 'roadside', bs, bd, row.dimensions) for row in scenario.roadside
               for bid, bs, bd in row.boxes(scenario.road)]
    for sid, kind, s, d, dm in static:
        sx, sy, th = scenario.road.to_map(np.array([s]), np.array([d]))
        ids.append(sid)
        kinds.append(kind)
        centers.append((float(sx[0]), float(sy[0]), dm.height_m / 2))
        halves.append((dm.length_m / 2, dm.width_m / 2, dm.height_m / 2))
        yaws.append(float(th[0]))
        vels.append((0.0, 0.0, 0.0))
    return BoxSet(tuple(ids), tuple(kinds), np.array(centers), np.array(halves), np.array(yaws), np.array(vels))


def _grid_spec(scenario: Scenario, tracks: dict[str, NDArray[np.float64]], t_ns: int) -> GridSpec:
    """The truth grid window at t_ns, placed as the simulator places it (follow: platoon base_link centroid)."""
    base = np.array([_interpolate(tracks[v], t_ns)[:2] for v in scenario.vehicle_ids])
    s, _ = scenario.road.to_road(base[:, 0], base[:, 1])
    return truth_window(scenario, float(s.mean()), float(base[:, 0].mean()), float(base[:, 1].mean()))


def _meta(scenario: Scenario, end_ns: int) -> dict[str, Any]:
    start_ns = int(round(scenario.start_time_s * 1e9))
    meeting = {v: (None if t is None else t - start_ns) for v, t in Simulation(scenario).meeting_times_ns().items()}
    return {'scenario': scenario.name, 'seed': scenario.seed, 'vehicle_ids': list(scenario.vehicle_ids),
            'hazard_ids': [h.id for h in scenario.hazards], 'traffic_ids': [t.id for t in scenario.traffic],
            'start_time_ns': 0, 'duration_s': end_ns * 1e-9, 'meeting_time_ns': meeting,
            'meeting_time_s': {k: (None if t is None else t * 1e-9) for k, t in meeting.items()},
            'source': 'gazebo', 'note': 'sim time; boxes from Gazebo poses and the scenario dimensions'}


def write_gazebo_truth(recorded: str | Path, scenario: Scenario, out: str | Path, *,
                       overwrite: bool = False) -> dict[str, int]:
    """Write the truth bag of a recorded Gazebo run of ``scenario`` to ``out``; ``{topic: count}``.

    Raises BagError when the recording lacks a mover's truth pose topic.
    """
    from ..ros.bag import BagWriter
    from .bag_writer import event_to_message

    tracks, odom_raw = _poses(recorded, scenario)
    t0 = int(min(tr[0, 0] for tr in tracks.values()))
    t1 = int(max(tr[-1, 0] for tr in tracks.values()))
    items: list[tuple[int, int, str, Any]] = [(t0, 0, names.TRUTH_SCENARIO, event_to_message(SimEvent(
        names.TRUTH_SCENARIO, EventKind.TRUTH_META, t0, t0, '', {'json': json.dumps(_meta(scenario, t1))})))]
    for rate, kind in ((scenario.truth.grid_rate_hz, EventKind.TRUTH_GRID),
                       (scenario.truth.objects_rate_hz, EventKind.TRUTH_OBJECTS)):
        period = int(round(1e9 / rate))
        for t_ns in range(-(-t0 // period) * period, t1 + 1, period):
            boxes = boxes_at(scenario, tracks, t_ns)
            if kind is EventKind.TRUTH_GRID:
                spec = _grid_spec(scenario, tracks, t_ns)
                event = SimEvent(names.TRUTH_GRID, kind, t_ns, t_ns, names.MAP_FRAME,
                                 {'spec': spec, 'cells': rasterize_boxes(spec, boxes)})
            else:
                event = SimEvent(names.TRUTH_OBJECTS, kind, t_ns, t_ns, names.MAP_FRAME, {'boxes': [
                    {'id': boxes.ids[m], 'kind': boxes.kinds[m], 'center': boxes.centers[m].tolist(),
                     'size': (2.0 * boxes.half_sizes[m]).tolist(), 'yaw': float(boxes.yaws[m]),
                     'velocity': boxes.velocities[m, :2].tolist()} for m in range(len(boxes))]})
            items.append((t_ns, len(items), event.topic, event_to_message(event)))
    with BagWriter(out, overwrite=overwrite) as bag:
        raw = sorted(odom_raw)
        msgs = sorted(items, key=lambda it: (it[0], it[1]))
        i = j = 0
        while i < len(raw) or j < len(msgs):
            if j >= len(msgs) or (i < len(raw) and raw[i][0] <= msgs[j][0]):
                log_ns, topic, msgtype, data = raw[i]
                bag.write_serialized(topic, msgtype, data, log_ns)
                i += 1
            else:
                bag.write(msgs[j][2], msgs[j][3], msgs[j][0])
                j += 1
        return dict(bag.counts)
