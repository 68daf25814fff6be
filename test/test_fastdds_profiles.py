"""config/fastdds_live.xml: Fast DDS writer profiles with short heartbeats on the topics that cross the V2X link.

The profile names must be the topics the package really publishes (ros/names.py, the default platoon's
vehicles): rmw_fastrtps picks a writer's profile by its exact topic name, so a renamed topic would silently
fall back to the 3 s default heartbeat. The file must load in Fast DDS without parse errors and leave the
QoS the code sets untouched.
"""
from __future__ import annotations

import ast
import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cooperative_fusion.app import platoon
from cooperative_fusion.ros import names

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / 'config' / 'fastdds_live.xml'
NS = '{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}'
LAUNCH_FILES = ('vehicle.launch.py', 'edge_twin.launch.py', 'platoon_replay.launch.py')


def _writers() -> dict[str, ET.Element]:
    root = ET.parse(PROFILES).getroot()
    assert root.tag == f'{NS}dds'
    (profiles,) = root.findall(f'{NS}profiles')
    assert {child.tag for child in profiles} == {f'{NS}data_writer'}, 'only writer profiles: readers keep defaults'
    writers = {w.get('profile_name'): w for w in profiles}
    assert len(writers) == len(profiles), 'a profile name twice'
    assert all(w.get('is_default_profile') is None for w in profiles), 'a default profile would change every topic'
    return writers


def _seconds(element: ET.Element | None) -> float:
    assert element is not None
    return int(element.findtext(f'{NS}sec')) + int(element.findtext(f'{NS}nanosec')) * 1e-9


def test_profiles_name_the_topics_that_cross_the_link():
    vehicles = platoon.load_platoon_config(None).vehicles
    expected = {names.COMMON_GRID, names.WARNINGS}
    for v in vehicles:
        expected |= {names.vehicle_topic(v, t) for t in (names.EVIDENCE_GRID, names.RADAR_TARGETS, names.ADVISORY)}
    assert set(_writers()) == expected
    assert '/v1/evidence_grid' in expected and '/v4/twin/advisory' in expected


def test_profiles_set_only_the_reliable_writer_timing():
    for topic, writer in _writers().items():
        # no <qos>: rmw_fastrtps applies the code's QoS anyway (RMW_FASTRTPS_USE_QOS_FROM_XML unset), and a
        # value here would only mislead
        assert [child.tag for child in writer] == [f'{NS}times'], topic
        (times,) = writer
        heartbeat = _seconds(times.find(f'{NS}heartbeat_period'))
        # a loss repaired well inside the 0.1 s evidence period and fusion's 0.5 s age limit
        assert 0.02 <= heartbeat <= 0.1, (topic, heartbeat)
        assert 0.0 <= _seconds(times.find(f'{NS}nack_response_delay')) <= 0.01, topic
        assert _seconds(times.find(f'{NS}nack_supression_duration')) == 0.0, topic


def _constants(path: Path) -> tuple[dict[str, object], set[str]]:
    tree = ast.parse(path.read_text())
    consts = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    calls = {getattr(n.func, 'id', None) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return consts, calls


@pytest.mark.parametrize('name', LAUNCH_FILES)
def test_launch_files_point_fastdds_at_the_profiles(name):
    consts, calls = _constants(REPO / 'launch' / name)
    assert consts['FASTDDS_ENV'] == 'FASTDDS_DEFAULT_PROFILES_FILE'
    assert REPO / 'config' / consts['FASTDDS_PROFILES'] == PROFILES
    assert 'SetEnvironmentVariable' in calls
    # installed next to the params files the launch files find through the share directory
    assert "glob('config/*.xml')" in (REPO / 'setup.py').read_text()


SMOKE = '''
import rclpy
from rclpy.node import Node
from nav_msgs.msg import OccupancyGrid
from cooperative_fusion.ros.qos import evidence_qos, latched_qos
rclpy.init()
node = Node('profile_smoke', namespace='v1')
node.create_publisher(OccupancyGrid, 'evidence_grid', evidence_qos(10))
node.create_publisher(OccupancyGrid, '/cooperative/grid', latched_qos(1))
for topic in ('/v1/evidence_grid', '/cooperative/grid'):
    (info,) = node.get_publishers_info_by_topic(topic)
    print(topic, info.qos_profile.reliability.name, info.qos_profile.durability.name)
node.destroy_node()
rclpy.shutdown()
'''


def _load(profiles: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(('FASTDDS_', 'FASTRTPS_', 'RMW_FASTRTPS_'))}
    env.update(FASTDDS_DEFAULT_PROFILES_FILE=str(profiles), ROS_DOMAIN_ID=str(random.SystemRandom().randint(101, 200)),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', RMW_IMPLEMENTATION='rmw_fastrtps_cpp',
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH', '')])))
    return subprocess.run([sys.executable, '-c', SMOKE], env=env, capture_output=True, text=True, timeout=120)


def test_fastdds_loads_the_profiles_and_keeps_the_codes_qos(tmp_path):
    out = _load(PROFILES)
    assert out.returncode == 0, out.stderr
    assert 'XMLPARSER' not in out.stdout + out.stderr, out.stderr
    assert out.stdout.split('\n')[:2] == ['/v1/evidence_grid RELIABLE VOLATILE',
                                          '/cooperative/grid RELIABLE TRANSIENT_LOCAL']
    # the check can fail: a misspelt element is reported by Fast DDS' parser
    bad = tmp_path / 'bad.xml'
    bad.write_text(PROFILES.read_text().replace('heartbeat_period>', 'heartbeat_periode>', 2))
    out = _load(bad)
    assert 'XMLPARSER Error' in re.sub(r'\x1b\[[0-9;]*m', '', out.stdout + out.stderr), out.stderr
