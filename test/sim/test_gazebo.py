"""The Gazebo export of every shipped scenario: valid SDF (``ign sdf -k``), known element names,
a bridge that matches the world and DESIGN.md, sensors as configured, motion as simulated."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.se3 import from_xyz_rpy
from cooperative_fusion.ros import names
from cooperative_fusion.sim import gazebo
from cooperative_fusion.sim.gazebo_check import SdfSpec, ign_sdf_check, published_topics, spec_dir
from cooperative_fusion.sim.gazebo_motion import load_tracks, pose_at
from cooperative_fusion.sim.scenario import load_scenario, scenario_platoon_config
from cooperative_fusion.sim.world import OPTICAL2BODY, PHYSICS_DT_NS, Simulation, _Kinematics

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / 'config' / 'scenarios').glob('*.yaml'))
PLATOON = REPO / 'config' / 'platoon.yaml'


def _platoon_of(scenario_file: str | Path) -> Path:
    """The platoon config a scenario ships (its own ids and extrinsics), else config/platoon.yaml."""
    return scenario_platoon_config(scenario_file) or PLATOON


@pytest.fixture(scope='module')
def exports(tmp_path_factory):
    """{scenario stem: (scenario, GazeboExport)} of every shipped scenario."""
    out = {}
    for path in SCENARIOS:
        scenario = load_scenario(path)
        out[path.stem] = (scenario, gazebo.export_gazebo(scenario, tmp_path_factory.mktemp(path.stem),
                                                         _platoon_of(path)))
    return out


@pytest.fixture(scope='module')
def spec():
    return SdfSpec(spec_dir(gazebo.SDF_VERSION))


def _root(export) -> ET.Element:
    return ET.parse(export.world).getroot()


def test_every_shipped_scenario_is_exported(exports):
    assert len(exports) == len(SCENARIOS) >= 7
    for _, export in exports.values():
        for f in (export.world, export.bridge, export.params, export.trajectories, export.motion, export.readme):
            assert f.is_file() and f.stat().st_size > 0, f


def test_ign_sdf_accepts_every_world(exports):
    for stem, (_, export) in exports.items():
        code, output = ign_sdf_check(export.world)
        assert code == 0, f'{stem}: {output}'
        assert 'Valid' in output


@pytest.mark.parametrize('mutation', [
    ('<pose>1.2 0 1.9 0 0 0</pose>', '<pose>1.2 0 one 0 0 0</pose>'),        # a broken pose
    ('<model name="v2">', '<model name="v1">'),                              # two models named v1
])
def test_ign_sdf_rejects_a_broken_world(exports, tmp_path, mutation):
    _, export = exports['highway_occlusion']
    text = export.world.read_text()
    old, new = mutation
    assert old in text
    broken = tmp_path / 'broken.sdf'
    broken.write_text(text.replace(old, new, 1))
    code, output = ign_sdf_check(broken)
    assert code != 0, output


def test_sdf_version_and_self_contained(exports):
    for stem, (_, export) in exports.items():
        text = export.world.read_text()
        version = _root(export).get('version')
        assert tuple(map(int, version.split('.'))) <= (1, 9), stem
        for scheme in ('model://', 'package://', 'fuel.', 'http://', 'https://', 'file://'):
            assert scheme not in text, (stem, scheme)
        assert not re.search(r'<uri>|<include>|<skin>|<mesh>', text), stem


def test_no_unknown_element_names(exports, spec):
    for stem, (_, export) in exports.items():
        assert spec.unknown_elements(_root(export)) == [], stem


def test_element_check_catches_misspelled_names(exports, spec):
    _, export = exports['highway_occlusion']
    text = export.world.read_text().replace('<update_rate>', '<update_rte>', 1).replace(
        '</update_rate>', '</update_rte>', 1).replace('<static>', '<statik>', 1).replace('</static>', '</statik>', 1)
    unknown = spec.unknown_elements(ET.fromstring(text.split('-->', 1)[1]))
    assert unknown == ['sdf/world[platoon]/model[road]/statik',
                       'sdf/world[platoon]/model[v1]/link[base_link]/sensor[lidar]/update_rte']


def _bridge(export) -> list[dict]:
    return yaml.safe_load(export.bridge.read_text())


def test_bridge_entries_are_well_formed_and_supported(exports):
    keys = {'ros_topic_name', 'gz_topic_name', 'ros_type_name', 'gz_type_name', 'direction',
            'subscriber_queue', 'publisher_queue', 'lazy'}
    for stem, (_, export) in exports.items():
        entries = _bridge(export)
        assert entries, stem
        for e in entries:
            assert set(e) == keys, (stem, e)
            assert e['direction'] == 'GZ_TO_ROS' and e['lazy'] is False
            assert (e['ros_type_name'], e['gz_type_name']) in gazebo.ROS_GZ_BRIDGE_TYPES, (stem, e)
        ros_topics = [e['ros_topic_name'] for e in entries]
        assert len(ros_topics) == len(set(ros_topics)), stem


def test_every_bridged_gz_topic_is_published_by_the_world_with_that_type(exports):
    for stem, (_, export) in exports.items():
        published = published_topics(_root(export))
        for e in _bridge(export):
            assert published.get(e['gz_topic_name']) == e['gz_type_name'], (stem, e)


def test_every_design_topic_is_bridged_with_its_type(exports):
    types = {names.LIDAR: 'sensor_msgs/msg/PointCloud2', names.DEPTH_IMAGE: 'sensor_msgs/msg/Image',
             names.CAMERA_INFO: 'sensor_msgs/msg/CameraInfo', names.ODOM: 'nav_msgs/msg/Odometry'}
    design_inputs = set(types) | {names.RADAR, names.TIME_REFERENCE}
    assert set(gazebo.NOT_BRIDGED) == design_inputs - set(types)   # the documented exceptions, nothing more
    for stem, (scenario, export) in exports.items():
        bridged = {e['ros_topic_name']: e['ros_type_name'] for e in _bridge(export)}
        assert bridged.pop(names.CLOCK) == 'rosgraph_msgs/msg/Clock'
        for v in scenario.vehicle_ids:
            for name, ros_type in types.items():
                assert bridged.pop(names.vehicle_topic(v, name)) == ros_type, (stem, v, name)
            assert bridged.pop(names.truth_odom(v)) == 'nav_msgs/msg/Odometry'
        for t in scenario.traffic:
            assert bridged.pop(f'{gazebo.TRUTH_POSE_PREFIX}{t.id}') == 'geometry_msgs/msg/PoseStamped'
        assert bridged == {}, stem


def _six_of(pose_text: str) -> list[float]:
    return [float(v) for v in pose_text.split()]


def test_sensors_match_the_config_and_the_scenario(exports):
    for stem, (scenario, export) in exports.items():
        extrinsics = gazebo.vehicle_extrinsics(_platoon_of(scenario.source))
        root = _root(export)
        for v in scenario.platoon.vehicles:
            model = root.find(f"world/model[@name='{v.id}']")
            lidar = model.find("link/sensor[@name='lidar']")
            camera = model.find("link/sensor[@name='depth_camera']")
            assert lidar.get('type') == 'gpu_lidar' and camera.get('type') == 'depth_camera'
            assert_allclose(_six_of(lidar.findtext('pose')), extrinsics[v.id]['lidar'], atol=1e-9)
            # the camera body pose composed with the optical rotation is the configured camera_optical
            body = _six_of(camera.findtext('pose'))
            optical = from_xyz_rpy(body[:3], body[3:]) @ OPTICAL2BODY
            want = extrinsics[v.id]['camera_optical']
            assert_allclose(optical, from_xyz_rpy(want[:3], want[3:]), atol=1e-9)
            cfg = v.sensors
            assert float(lidar.findtext('update_rate')) == cfg.lidar.rate_hz
            assert float(camera.findtext('update_rate')) == cfg.camera.rate_hz
            assert int(lidar.findtext('lidar/scan/vertical/samples')) == cfg.lidar.beams
            assert int(lidar.findtext('lidar/scan/horizontal/samples')) * cfg.lidar.azimuth_resolution_deg \
                == pytest.approx(360.0)
            assert math.degrees(float(lidar.findtext('lidar/scan/vertical/min_angle'))) \
                == pytest.approx(cfg.lidar.elevation_min_deg)
            assert math.degrees(float(lidar.findtext('lidar/scan/vertical/max_angle'))) \
                == pytest.approx(cfg.lidar.elevation_max_deg)
            assert float(lidar.findtext('lidar/range/max')) == cfg.lidar.range_max_m
            assert float(lidar.findtext('lidar/range/min')) == cfg.lidar.range_min_m
            assert math.degrees(float(camera.findtext('camera/horizontal_fov'))) == pytest.approx(cfg.camera.hfov_deg)
            assert int(camera.findtext('camera/image/width')) == cfg.camera.width
            assert int(camera.findtext('camera/image/height')) == cfg.camera.height
            assert float(camera.findtext('camera/clip/far')) == cfg.camera.range_max_m
            assert lidar.findtext('gz_frame_id') == names.vehicle_frame(v.id, 'lidar')
            assert camera.findtext('gz_frame_id') == names.vehicle_frame(v.id, 'camera_optical')
            visual = model.find("link/visual[@name='body']/geometry/box/size").text
            d = v.dimensions
            assert _six_of(visual) == [d.length_m, d.width_m, d.height_m]
            odom = [p for p in model.findall('plugin') if p.get('name') == 'gz::sim::systems::OdometryPublisher']
            assert {p.findtext('odom_topic') for p in odom} == {f'/{v.id}/odom', f'/truth/odom/{v.id}'}
            assert {p.findtext('odom_frame') for p in odom} == {'map'}
            assert {p.findtext('robot_base_frame') for p in odom} == {f'{v.id}/base_link'}


def test_traffic_hazards_and_roadside_are_models(exports):
    for stem, (scenario, export) in exports.items():
        models = {m.get('name'): m for m in _root(export).iter('model')}
        for t in scenario.traffic:
            assert models[t.id].findtext('static') == 'false', stem
        for h in scenario.hazards:
            assert models[h.id].findtext('static') == 'true', stem
        n_roadside = sum(len(row.boxes(scenario.road)) for row in scenario.roadside)
        assert len(models) == 1 + len(scenario.platoon.vehicles) + len(scenario.traffic) + len(scenario.hazards) \
            + n_roadside


def test_tracks_follow_the_simulated_motion(exports):
    scenario, export = exports['cut_in']
    tracks = load_tracks(export.trajectories)
    assert set(tracks) == set(scenario.vehicle_ids) | {t.id for t in scenario.traffic}
    sim, kin = Simulation(scenario), _Kinematics(scenario)
    start_ns = int(round(scenario.start_time_s * 1e9))
    dims = {v.id: v.dimensions for v in scenario.platoon.vehicles} | {t.id: t.dimensions for t in scenario.traffic}
    for t_ns in range(0, int(scenario.duration_s * 1e9), 370_000_000):       # between samples too
        while int(round(kin.t * 1e9)) + PHYSICS_DT_NS <= t_ns:
            kin.step()
        state = sim._state(kin, start_ns + t_ns, start_ns)
        for m, bid in enumerate(state.boxes.ids):
            if bid not in tracks:
                continue
            x, y, yaw = pose_at(tracks[bid], t_ns * 1e-9)
            off = dims[bid].length_m / 2 - dims[bid].rear_overhang_m
            assert_allclose([x + off * math.cos(yaw), y + off * math.sin(yaw)], state.boxes.centers[m, :2], atol=0.02)
            assert yaw == pytest.approx(state.boxes.yaws[m], abs=2e-3)
    # the cut-in car changes lanes: its y goes from lane 1 to lane 0
    c1 = tracks['c1']
    assert c1['y_m'][0] == pytest.approx(3.5) and c1['y_m'][-1] == pytest.approx(0.0)


def test_pose_at_interpolates_and_holds():
    track = {'t_s': [0.0, 1.0, 2.0], 'x_m': [0.0, 10.0, 30.0], 'y_m': [0.0, 0.0, 2.0],
             'yaw_rad': [3.1, -3.1, 0.0]}
    assert pose_at(track, -1.0) == (0.0, 0.0, 3.1)
    assert pose_at(track, 5.0) == (30.0, 2.0, 0.0)
    x, y, yaw = pose_at(track, 0.5)
    assert (x, y) == (5.0, 0.0)
    assert math.remainder(yaw - math.pi, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)   # across +-pi, not through 0
    assert pose_at(track, 1.5)[:2] == (20.0, 1.0)


def test_gazebo_params_turn_off_radar_and_timebase(exports):
    _, export = exports['highway_occlusion']
    params = yaml.safe_load(export.params.read_text())['/**']['ros__parameters']
    assert params['sync']['streams'] == ['lidar', 'camera']
    assert params['timebase']['enabled'] is False
    assert params['use_sim_time'] is True
    vehicle_yaml = yaml.safe_load((REPO / 'config' / 'vehicle.yaml').read_text())['/**']['ros__parameters']
    assert set(params) - {'use_sim_time'} <= set(vehicle_yaml)     # names the node declares


def test_platoon_vehicle_without_params_is_an_error(tmp_path):
    platoon = yaml.safe_load(PLATOON.read_text())
    platoon['vehicles'] = [v for v in platoon['vehicles'] if v['id'] != 'v3']
    for v in platoon['vehicles']:
        v['params'] = [str((PLATOON.parent / p).resolve()) for p in v['params']]
    config = tmp_path / 'platoon.yaml'
    config.write_text(yaml.safe_dump(platoon))
    scenario = load_scenario(REPO / 'config' / 'scenarios' / 'highway_clear.yaml')
    with pytest.raises(ConfigError, match=r"platoon vehicle 'v3' .* has no params files"):
        gazebo.export_gazebo(scenario, tmp_path / 'out', config)


def test_exported_motion_module_is_this_one(exports):
    _, export = exports['highway_clear']
    assert export.motion.read_text() == (REPO / 'cooperative_fusion' / 'sim' / 'gazebo_motion.py').read_text()
    assert np.isclose(yaml.safe_load(export.trajectories.read_text())['rate_hz'], gazebo.TRAJECTORY_RATE_HZ)
