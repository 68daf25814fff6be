"""A scenario as a Gazebo (Harmonic) world: SDF 1.9, a ros_gz_bridge config and the motion.

:func:`export_gazebo` writes into one directory: ``world.sdf`` (self-contained,
no URIs), ``bridge.yaml`` (``ros_gz_bridge`` ``config_file``),
``gazebo_params.yaml`` (vehicle-node parameters for a Gazebo run),
``trajectories.json`` with ``scenario_motion.py`` (the Python system that moves
the models) and ``README.md``. Sensor mounts come from the platoon config's
vehicle params files (what the nodes use); beam counts, fields of view, ranges
and rates from the scenario (what the simulator uses). docs/gazebo.md says what
Gazebo does differently (no radar, no vehicle clocks).
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import transforms3d
from numpy.typing import NDArray

from ..core.config_files import read_yaml, ros_parameters
from ..core.errors import ConfigError
from ..core.se3 import from_xyz_rpy, invert
from ..ros import names
from .scenario import Dimensions, Scenario
from .world import OPTICAL2BODY, PHYSICS_DT_NS, Simulation, _Kinematics

SDF_VERSION = '1.9'
WORLD_NAME = 'platoon'
#: Sample rate of the exported trajectories, Hz (the motion system interpolates between samples).
TRAJECTORY_RATE_HZ = 20.0
#: Output files of an export.
WORLD_FILE = 'world.sdf'
BRIDGE_FILE = 'bridge.yaml'
PARAMS_FILE = 'gazebo_params.yaml'
TRAJECTORIES_FILE = 'trajectories.json'
MOTION_MODULE = 'scenario_motion'
README_FILE = 'README.md'

#: Gazebo topic prefix of the truth poses of the movers that are not platoon vehicles.
TRUTH_POSE_PREFIX = '/truth/pose/'
#: Streams of DESIGN.md that a Gazebo run does not have, and why (docs/gazebo.md).
NOT_BRIDGED: dict[str, str] = {
    names.RADAR: 'Gazebo has no radar with Doppler; the vehicle nodes run on lidar and camera only',
    names.TIME_REFERENCE: 'every Gazebo stamp is sim time, which is the common time; the timebase is off',
}

#: ROS <-> Gazebo message pairs that ros_gz_bridge converts, the subset this export can use.
#: Source: ros_gz_bridge/README.md of gazebosim/ros_gz, branch jazzy (the table of topic types).
ROS_GZ_BRIDGE_TYPES: frozenset[tuple[str, str]] = frozenset({
    ('rosgraph_msgs/msg/Clock', 'gz.msgs.Clock'),
    ('sensor_msgs/msg/PointCloud2', 'gz.msgs.PointCloudPacked'),
    ('sensor_msgs/msg/Image', 'gz.msgs.Image'),
    ('sensor_msgs/msg/CameraInfo', 'gz.msgs.CameraInfo'),
    ('sensor_msgs/msg/LaserScan', 'gz.msgs.LaserScan'),
    ('nav_msgs/msg/Odometry', 'gz.msgs.Odometry'),
    ('nav_msgs/msg/Odometry', 'gz.msgs.OdometryWithCovariance'),
    ('geometry_msgs/msg/PoseStamped', 'gz.msgs.Pose'),
    ('geometry_msgs/msg/Pose', 'gz.msgs.Pose'),
    ('geometry_msgs/msg/PoseArray', 'gz.msgs.Pose_V'),
    ('geometry_msgs/msg/Twist', 'gz.msgs.Twist'),
    ('tf2_msgs/msg/TFMessage', 'gz.msgs.Pose_V'),
    ('std_msgs/msg/String', 'gz.msgs.StringMsg'),
})

_RGBA = {'platoon': '0.1 0.8 0.2 1', 'car': '0.2 0.5 1.0 1', 'truck': '0.1 0.3 0.8 1',
         'stopped_car': '1.0 0.2 0.1 1', 'debris': '1.0 0.6 0.0 1', 'roadside': '0.7 0.7 0.7 1'}


@dataclass(frozen=True)
class Track:
    """Sampled base_link motion of one mover in ``map``: t_s, x_m, y_m, yaw_rad, each (N,)."""

    t_s: NDArray[np.float64]
    x_m: NDArray[np.float64]
    y_m: NDArray[np.float64]
    yaw_rad: NDArray[np.float64]

    def as_json(self) -> dict[str, list[float]]:
        return {k: [round(float(v), 6) for v in getattr(self, k)] for k in ('t_s', 'x_m', 'y_m', 'yaw_rad')}


# ------------------------------------------------------------------------------------ inputs

def vehicle_extrinsics(platoon_config: str | Path) -> dict[str, dict[str, list[float]]]:
    """``{vehicle id: {'lidar' | 'radar' | 'camera_optical': [x, y, z, roll, pitch, yaw]}}`` as the
    vehicle nodes get them: the platoon config's params files of each vehicle, in order (a later wins)."""
    path = Path(platoon_config).resolve()
    raw = read_yaml(path, 'platoon config')
    vehicles = raw.get('vehicles') if isinstance(raw, dict) else None
    if not isinstance(vehicles, list) or not vehicles:
        raise ConfigError(f'{path}: vehicles: expected a non-empty list of {{id, params}}')
    out: dict[str, dict[str, list[float]]] = {}
    for i, entry in enumerate(vehicles):
        if not isinstance(entry, dict) or not isinstance(entry.get('id'), str):
            raise ConfigError(f'{path}: vehicles[{i}]: expected a mapping with an id, got {entry!r}')
        files = entry.get('params', [])
        files = [files] if isinstance(files, str) else files
        values: dict[str, Any] = {}
        for f in files:
            values.update(ros_parameters(path.parent / f))
        mounts = {}
        for sensor in ('lidar', 'radar', 'camera_optical'):
            six = values.get(f'extrinsics.{sensor}')
            if not isinstance(six, list) or len(six) != 6:
                raise ConfigError(f'{path}: vehicle {entry["id"]}: extrinsics.{sensor}: expected '
                                  f'[x, y, z, roll, pitch, yaw], got {six!r}')
            mounts[sensor] = [float(v) for v in six]
        out[entry['id']] = mounts
    return out


def sample_tracks(scenario: Scenario, rate_hz: float = TRAJECTORY_RATE_HZ) -> dict[str, Track]:
    """base_link pose of every platoon vehicle and traffic vehicle from t = 0 to the scenario's
    duration (sim seconds from its start), every 1/rate_hz s, as the simulator moves them."""
    # world.py has no public pose sampler: its kinematics and _state are what Simulation.events uses
    sim = Simulation(scenario)
    kin = _Kinematics(scenario)
    start_ns = int(round(scenario.start_time_s * 1e9))
    n_samples = int(math.floor(scenario.duration_s * rate_hz + 1e-9)) + 1
    step_ns = int(round(1e9 / rate_hz))
    movers = [v.id for v in scenario.platoon.vehicles] + [t.id for t in scenario.traffic]
    dims = {v.id: v.dimensions for v in scenario.platoon.vehicles}
    dims.update({t.id: t.dimensions for t in scenario.traffic})
    rows: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in movers}
    for k in range(n_samples):
        t_ns = k * step_ns
        while (int(round(kin.t * 1e9)) + PHYSICS_DT_NS) <= t_ns:
            kin.step()
        state = sim._state(kin, start_ns + t_ns, start_ns)
        index = {bid: m for m, bid in enumerate(state.boxes.ids)}
        for mid in movers:
            m = index[mid]
            yaw = float(state.boxes.yaws[m])
            off = dims[mid].length_m / 2 - dims[mid].rear_overhang_m
            cx, cy = state.boxes.centers[m, :2]
            rows[mid].append((t_ns * 1e-9, float(cx - off * math.cos(yaw)), float(cy - off * math.sin(yaw)), yaw))
    return {mid: Track(*(np.array(col) for col in zip(*r))) for mid, r in rows.items()}


# --------------------------------------------------------------------------------------- SDF

def _f(v: float) -> str:
    v = float(v)
    return f'{0.0 if abs(v) < 1e-9 else v:.10g}'


def _pose(six: list[float] | tuple[float, ...]) -> str:
    return f'<pose>{" ".join(_f(v) for v in six)}</pose>'


def camera_body_pose(camera_optical: list[float]) -> list[float]:
    """Camera body pose in base_link (x forward, as Gazebo's cameras look) of a
    ``camera_optical`` extrinsic [x, y, z, roll, pitch, yaw] (the optical rotation removed)."""
    body = from_xyz_rpy(camera_optical[:3], camera_optical[3:]) @ invert(OPTICAL2BODY)
    r, p, y = transforms3d.euler.mat2euler(body[:3, :3], axes='sxyz')
    return [float(body[0, 3]), float(body[1, 3]), float(body[2, 3]), float(r), float(p), float(y)]


def _box_visual(name: str, dims: Dimensions, rgba: str) -> str:
    center = (dims.length_m / 2 - dims.rear_overhang_m, 0.0, dims.height_m / 2, 0.0, 0.0, 0.0)
    return (f'<visual name="{name}">{_pose(center)}<geometry><box><size>{_f(dims.length_m)} {_f(dims.width_m)} '
            f'{_f(dims.height_m)}</size></box></geometry><material><ambient>{rgba}</ambient>'
            f'<diffuse>{rgba}</diffuse></material></visual>')


def _plugin(filename: str, name: str, body: str) -> str:
    return f'<plugin filename="{filename}" name="{name}">{body}</plugin>'


def _lidar_sensor(vid: str, mount: list[float], cfg: Any) -> str:
    h_samples = int(round(360.0 / cfg.azimuth_resolution_deg))
    step = 2.0 * math.pi / h_samples
    return (f'<sensor name="lidar" type="gpu_lidar">{_pose(mount)}'
            f'<topic>/{vid}/lidar</topic><gz_frame_id>{names.vehicle_frame(vid, "lidar")}</gz_frame_id>'
            f'<update_rate>{_f(cfg.rate_hz)}</update_rate><always_on>true</always_on>'
            f'<visualize>false</visualize><lidar><scan>'
            f'<horizontal><samples>{h_samples}</samples><resolution>1</resolution>'
            f'<min_angle>{_f(-math.pi)}</min_angle><max_angle>{_f(math.pi - step)}</max_angle></horizontal>'
            f'<vertical><samples>{cfg.beams}</samples><resolution>1</resolution>'
            f'<min_angle>{_f(math.radians(cfg.elevation_min_deg))}</min_angle>'
            f'<max_angle>{_f(math.radians(cfg.elevation_max_deg))}</max_angle></vertical></scan>'
            f'<range><min>{_f(cfg.range_min_m)}</min><max>{_f(cfg.range_max_m)}</max>'
            f'<resolution>0.01</resolution></range>'
            f'<noise><type>gaussian</type><mean>0</mean><stddev>{_f(cfg.range_noise_m)}</stddev></noise>'
            f'</lidar></sensor>')


def _depth_sensor(vid: str, body_pose: list[float], cfg: Any) -> str:
    return (f'<sensor name="depth_camera" type="depth_camera">{_pose(body_pose)}'
            f'<topic>{names.vehicle_topic(vid, names.DEPTH_IMAGE)}</topic>'
            f'<gz_frame_id>{names.vehicle_frame(vid, "camera_optical")}</gz_frame_id>'
            f'<update_rate>{_f(cfg.rate_hz)}</update_rate><always_on>true</always_on>'
            f'<visualize>false</visualize><camera><horizontal_fov>{_f(math.radians(cfg.hfov_deg))}</horizontal_fov>'
            f'<image><width>{cfg.width}</width><height>{cfg.height}</height><format>R_FLOAT32</format></image>'
            f'<clip><near>0.1</near><far>{_f(cfg.range_max_m)}</far></clip>'
            f'<noise><type>gaussian</type><mean>0</mean><stddev>{_f(cfg.depth_noise_m)}</stddev></noise>'
            f'</camera></sensor>')


def _odometry(vid: str, topic: str, rate_hz: float, noise: float) -> str:
    return _plugin('gz-sim-odometry-publisher-system', 'gz::sim::systems::OdometryPublisher',
                   f'<odom_frame>{names.MAP_FRAME}</odom_frame>'
                   f'<robot_base_frame>{names.vehicle_frame(vid, "base_link")}</robot_base_frame>'
                   f'<odom_topic>{topic}</odom_topic><odom_publish_frequency>{_f(rate_hz)}</odom_publish_frequency>'
                   f'<dimensions>3</dimensions><gaussian_noise>{_f(noise)}</gaussian_noise>')


def _pose_publisher(mid: str, rate_hz: float) -> str:
    return _plugin('gz-sim-pose-publisher-system', 'gz::sim::systems::PosePublisher',
                   f'<publish_model_pose>true</publish_model_pose><publish_nested_model_pose>false'
                   f'</publish_nested_model_pose><publish_link_pose>false</publish_link_pose>'
                   f'<publish_sensor_pose>false</publish_sensor_pose><publish_visual_pose>false'
                   f'</publish_visual_pose><publish_collision_pose>false</publish_collision_pose>'
                   f'<use_pose_vector_msg>false</use_pose_vector_msg>'
                   f'<update_frequency>{_f(rate_hz)}</update_frequency><topic>{TRUTH_POSE_PREFIX}{mid}</topic>')


def _mover(mid: str, track: Track, link_body: str, plugins: str) -> str:
    """A moving model at the track's first pose: one link at base_link, no collision (the motion
    system places it every step); ``link_body`` and ``plugins`` are SDF text."""
    start = (track.x_m[0], track.y_m[0], 0.0, 0.0, 0.0, track.yaw_rad[0])
    return (f'<model name="{escape(mid)}"><static>false</static>{_pose(start)}'
            f'<link name="base_link"><gravity>false</gravity>{link_body}</link>{plugins}</model>')


def _static_box(mid: str, kind: str, x: float, y: float, yaw: float, dims: Dimensions) -> str:
    center = (x, y, dims.height_m / 2, 0.0, 0.0, yaw)
    size = f'{_f(dims.length_m)} {_f(dims.width_m)} {_f(dims.height_m)}'
    geometry = f'<geometry><box><size>{size}</size></box></geometry>'
    rgba = _RGBA.get(kind, '0.6 0.6 0.6 1')
    return (f'<model name="{escape(mid)}"><static>true</static>{_pose(center)}<link name="link">'
            f'<collision name="collision">{geometry}</collision><visual name="visual">{geometry}'
            f'<material><ambient>{rgba}</ambient><diffuse>{rgba}</diffuse></material></visual></link></model>')


def _road(scenario: Scenario, tracks: dict[str, Track]) -> str:
    """The road as flat boxes along its centre line (segments of <= 25 m on a curve), 2 cm thick."""
    road = scenario.road
    lane_w = road.lane_width_m
    width = road.lane_count * lane_w + 2.0                        # 1 m shoulders
    d_mid = (road.lane_count - 1) * lane_w / 2
    # Road coordinates of every sampled pose (map x on a road from the origin along x).
    xs = np.concatenate([road.to_road(t.x_m, t.y_m)[0] for t in tracks.values()]) if tracks else np.zeros(1)
    hazards = [h.x_m + h.dimensions.length_m for h in scenario.hazards]
    s0 = float(min(xs.min(), 0.0)) - 100.0
    s1 = float(max(xs.max(), *hazards, 0.0)) + 200.0
    seg = (s1 - s0) if abs(road.curvature_per_m) < 1e-12 else 25.0
    n = max(1, int(math.ceil((s1 - s0) / seg)))
    seg = (s1 - s0) / n
    mids = s0 + (np.arange(n) + 0.5) * seg
    x, y, th = road.to_map(mids, np.full(n, d_mid))
    visuals = ''.join(
        f'<visual name="segment_{k}">{_pose((x[k], y[k], -0.01, 0.0, 0.0, th[k]))}<geometry><box><size>'
        f'{_f(seg + 0.05)} {_f(width)} 0.02</size></box></geometry><material><ambient>0.25 0.25 0.25 1</ambient>'
        f'<diffuse>0.25 0.25 0.25 1</diffuse></material></visual>' for k in range(n))
    ground = ('<collision name="ground_collision"><geometry><plane><normal>0 0 1</normal>'
              '<size>10000 10000</size></plane></geometry></collision>'
              '<visual name="ground_visual"><pose>0 0 -0.03 0 0 0</pose><geometry><plane>'
              '<normal>0 0 1</normal><size>10000 10000</size></plane></geometry><material>'
              '<ambient>0.3 0.45 0.25 1</ambient><diffuse>0.3 0.45 0.25 1</diffuse></material></visual>')
    return f'<model name="road"><static>true</static><link name="link">{ground}{visuals}</link></model>'


def world_sdf(scenario: Scenario, extrinsics: dict[str, dict[str, list[float]]],
              tracks: dict[str, Track]) -> str:
    """The scenario as an SDF 1.9 world (text). Raises ConfigError for a platoon vehicle without extrinsics."""
    parts = [
        f'<?xml version="1.0"?>\n<!-- {escape(scenario.name)}: written by `cooperative-fusion export-gazebo` '
        f'from {escape(Path(scenario.source).name)}; see README.md beside it -->\n',
        f'<sdf version="{SDF_VERSION}"><world name="{WORLD_NAME}">',
        '<physics name="1ms" type="ignored"><max_step_size>0.001</max_step_size>'
        '<real_time_factor>1.0</real_time_factor></physics>',
        '<gravity>0 0 0</gravity>',   # every model is placed by the motion system; nothing falls
        _plugin('gz-sim-physics-system', 'gz::sim::systems::Physics', ''),
        _plugin('gz-sim-user-commands-system', 'gz::sim::systems::UserCommands', ''),
        _plugin('gz-sim-scene-broadcaster-system', 'gz::sim::systems::SceneBroadcaster', ''),
        _plugin('gz-sim-sensors-system', 'gz::sim::systems::Sensors', '<render_engine>ogre2</render_engine>'),
        _plugin('gz-sim-python-system-loader-system', 'gz::sim::systems::PythonSystemLoader',
                f'<module_name>{MOTION_MODULE}</module_name>'),
        '<scene><ambient>0.6 0.6 0.6 1</ambient><background>0.7 0.8 0.9 1</background>'
        '<shadows>false</shadows></scene>',
        '<light type="directional" name="sun"><cast_shadows>false</cast_shadows><pose>0 0 100 0 0 0</pose>'
        '<diffuse>1 1 1 1</diffuse><specular>0.2 0.2 0.2 1</specular><direction>-0.3 0.2 -0.9</direction></light>',
        _road(scenario, tracks),
    ]
    for v in scenario.platoon.vehicles:
        if v.id not in extrinsics:
            raise ConfigError(f'platoon vehicle {v.id!r} of {scenario.source} has no params files in the platoon '
                              f'config (vehicles there: {sorted(extrinsics)}); pass --config with one that has it')
        mounts = extrinsics[v.id]
        track = tracks[v.id]
        body = _box_visual('body', v.dimensions, _RGBA['platoon'])
        if v.sensors.lidar.enabled:
            body += _lidar_sensor(v.id, mounts['lidar'], v.sensors.lidar)
        if v.sensors.camera.enabled:
            body += _depth_sensor(v.id, camera_body_pose(mounts['camera_optical']), v.sensors.camera)
        plugins = (_odometry(v.id, names.vehicle_topic(v.id, names.ODOM), v.localization.rate_hz,
                             v.localization.noise_xy_m)
                   + _odometry(v.id, names.truth_odom(v.id), scenario.truth.odom_rate_hz, 0.0))
        parts.append(_mover(v.id, track, body, plugins))
    for t in scenario.traffic:
        body = _box_visual('body', t.dimensions, _RGBA.get(t.type.value, _RGBA['car']))
        parts.append(_mover(t.id, tracks[t.id], body, _pose_publisher(t.id, scenario.truth.objects_rate_hz)))
    road = scenario.road
    for h in scenario.hazards:
        hx, hy, hth = road.to_map(np.array([h.x_m + h.dimensions.length_m / 2]),
                                  np.array([h.lane * road.lane_width_m + h.lateral_offset_m]))
        parts.append(_static_box(h.id, h.kind.value, hx[0], hy[0], hth[0], h.dimensions))
    for row in scenario.roadside:
        for bid, bs, bd in row.boxes(scenario.road):
            bx, by, bth = road.to_map(np.array([bs]), np.array([bd]))
            parts.append(_static_box(bid, 'roadside', bx[0], by[0], bth[0], row.dimensions))
    parts.append('</world></sdf>\n')
    return _indent(''.join(parts))


def _indent(text: str) -> str:
    import xml.dom.minidom

    head, _, body = text.partition('-->\n')
    pretty = xml.dom.minidom.parseString(body).toprettyxml(indent='  ')
    pretty = pretty.split('\n', 1)[1]                # drop minidom's own <?xml?> line
    return head + '-->\n' + '\n'.join(line for line in pretty.splitlines() if line.strip()) + '\n'


# -------------------------------------------------------------------------------- bridge config

def _entry(ros_topic: str, gz_topic: str, ros_type: str, gz_type: str, queue: int = 10) -> dict[str, Any]:
    return {'ros_topic_name': ros_topic, 'gz_topic_name': gz_topic, 'ros_type_name': ros_type,
            'gz_type_name': gz_type, 'direction': 'GZ_TO_ROS', 'subscriber_queue': queue,
            'publisher_queue': queue, 'lazy': False}


def bridge_config(scenario: Scenario) -> list[dict[str, Any]]:
    """``ros_gz_bridge`` entries: clock, every platoon vehicle's lidar, depth image, camera info,
    odometry and truth odometry, and the truth pose of every traffic vehicle; all GZ_TO_ROS, not lazy
    (a recording must get every message from the first)."""
    out = [_entry(names.CLOCK, names.CLOCK, 'rosgraph_msgs/msg/Clock', 'gz.msgs.Clock', 1)]
    for v in scenario.platoon.vehicles:
        lidar = names.vehicle_topic(v.id, names.LIDAR)
        image = names.vehicle_topic(v.id, names.DEPTH_IMAGE)
        info = names.vehicle_topic(v.id, names.CAMERA_INFO)
        if v.sensors.lidar.enabled:
            out.append(_entry(lidar, lidar, 'sensor_msgs/msg/PointCloud2', 'gz.msgs.PointCloudPacked', 5))
        if v.sensors.camera.enabled:
            out.append(_entry(image, image, 'sensor_msgs/msg/Image', 'gz.msgs.Image', 5))
            out.append(_entry(info, info, 'sensor_msgs/msg/CameraInfo', 'gz.msgs.CameraInfo'))
        odom = names.vehicle_topic(v.id, names.ODOM)
        out.append(_entry(odom, odom, 'nav_msgs/msg/Odometry', 'gz.msgs.Odometry', 50))
        out.append(_entry(names.truth_odom(v.id), names.truth_odom(v.id), 'nav_msgs/msg/Odometry',
                          'gz.msgs.Odometry', 50))
    for t in scenario.traffic:
        topic = f'{TRUTH_POSE_PREFIX}{t.id}'
        out.append(_entry(topic, topic, 'geometry_msgs/msg/PoseStamped', 'gz.msgs.Pose', 20))
    return out


def gazebo_vehicle_params() -> dict[str, Any]:
    """Vehicle-node parameters of a Gazebo run, loaded after the vehicle's own files."""
    return {'/**': {'ros__parameters': {
        'use_sim_time': True,
        'sync': {'streams': ['lidar', 'camera']},      # no radar in Gazebo
        'timebase': {'enabled': False},                # sensor stamps are sim time = common time
        'output_stamp_offset_s': 0.0,                  # a Gazebo lidar sweep is instantaneous
    }}}


# ------------------------------------------------------------------------------------ export

@dataclass(frozen=True)
class GazeboExport:
    """What :func:`export_gazebo` wrote: the directory and each file."""

    out_dir: Path
    world: Path
    bridge: Path
    params: Path
    trajectories: Path
    motion: Path
    readme: Path


def export_gazebo(scenario: Scenario, out_dir: str | Path, platoon_config: str | Path) -> GazeboExport:
    """Write the Gazebo files of ``scenario`` into ``out_dir`` (created; existing files replaced)."""
    import yaml

    extrinsics = vehicle_extrinsics(platoon_config)
    tracks = sample_tracks(scenario)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = GazeboExport(out, out / WORLD_FILE, out / BRIDGE_FILE, out / PARAMS_FILE, out / TRAJECTORIES_FILE,
                         out / f'{MOTION_MODULE}.py', out / README_FILE)
    files.world.write_text(world_sdf(scenario, extrinsics, tracks))
    header = (f'# ros_gz_bridge config_file for {scenario.name}, written by `cooperative-fusion export-gazebo`.\n'
              f'# Not bridged (see README.md): {", ".join(sorted(NOT_BRIDGED))}.\n')
    files.bridge.write_text(header + yaml.safe_dump(bridge_config(scenario), sort_keys=False))
    files.params.write_text('# Vehicle-node parameters of a Gazebo run (after config/vehicle.yaml and '
                            'config/vehicles/<v>.yaml).\n' + yaml.safe_dump(gazebo_vehicle_params(), sort_keys=False))
    files.trajectories.write_text(json.dumps({
        'scenario': scenario.name, 'rate_hz': TRAJECTORY_RATE_HZ,
        'tracks': {mid: t.as_json() for mid, t in tracks.items()}}))
    shutil.copyfile(Path(__file__).with_name('gazebo_motion.py'), files.motion)
    files.readme.write_text(export_readme(scenario))
    return files


def export_readme(scenario: Scenario) -> str:
    """README.md of an export directory: how to run it with Gazebo Harmonic and ros_gz."""
    vehicles = ','.join(scenario.vehicle_ids)
    return f"""# Gazebo world of `{scenario.name}`

Written by `cooperative-fusion export-gazebo` from `{Path(scenario.source).name}`.

| file | what |
|---|---|
| `{WORLD_FILE}` | SDF {SDF_VERSION} world: road, platoon ({vehicles}) with `gpu_lidar` and `depth_camera`, \
traffic, hazards |
| `{BRIDGE_FILE}` | `ros_gz_bridge` `config_file`: sensors, odometry, `/clock`, truth |
| `{PARAMS_FILE}` | vehicle-node parameters of a Gazebo run (no radar, timebase off) |
| `{MOTION_MODULE}.py`, `{TRAJECTORIES_FILE}` | the Python system that moves the models along the scenario |

## Run (Gazebo Harmonic, ROS 2 Jazzy, ros_gz, this package built with colcon)

```
ros2 launch cooperative_fusion gazebo_platoon.launch.py world_dir:=$PWD vehicles:={vehicles} record:=gz_run
```

or by hand:

```
GZ_SIM_SYSTEM_PLUGIN_PATH=$PWD:$GZ_SIM_SYSTEM_PLUGIN_PATH gz sim -r -s {WORLD_FILE}
ros2 run ros_gz_bridge parameter_bridge --ros-args -p config_file:=$PWD/{BRIDGE_FILE}
```

The run lasts {scenario.duration_s:g} s of sim time; after it the models stand still.
Score it: `cooperative-fusion export-gazebo --scenario {scenario.source} --truth-from gz_run
--out gz_truth`, then `cooperative-fusion evaluate --truth gz_truth --result gz_run --report report.json`.

Gazebo has no radar with Doppler and no vehicle clocks: `/<v>/radar/points` and `/<v>/time_reference`
are not produced; the vehicle nodes run on lidar and depth camera, with sensor stamps in sim time.
"""
