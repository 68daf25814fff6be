"""config/fastdds_live.xml: one default Fast DDS writer profile with short heartbeats, for any platoon.

rmw_fastrtps starts every writer from the default ``<data_writer>`` profile (is_default_profile), whatever its
topic, so the file holds for any vehicle ids; a profile named by topic would hold only for the ids it lists.
The file must load in Fast DDS without parse errors and leave the QoS the code sets untouched.
"""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / 'config' / 'fastdds_live.xml'
NS = '{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}'


def _default_writer(path: Path) -> ET.Element:
    """The file's one writer profile; it must be the default one (no per-topic profiles, no reader ones)."""
    root = ET.parse(path).getroot()
    assert root.tag == f'{NS}dds'
    (profiles,) = root.findall(f'{NS}profiles')
    assert [child.tag for child in profiles] == [f'{NS}data_writer'], 'one writer profile: readers keep defaults'
    (writer,) = profiles
    assert writer.get('is_default_profile') == 'true', 'a profile named by topic holds only for the ids it lists'
    return writer


def _seconds(element: ET.Element | None) -> float:
    assert element is not None
    return int(element.findtext(f'{NS}sec')) + int(element.findtext(f'{NS}nanosec')) * 1e-9


def _check_timing(path: Path) -> None:
    writer = _default_writer(path)
    # no <qos>: rmw_fastrtps applies the code's QoS anyway (RMW_FASTRTPS_USE_QOS_FROM_XML unset), and a
    # value here would only mislead
    assert [child.tag for child in writer] == [f'{NS}times']
    (times,) = writer
    heartbeat = _seconds(times.find(f'{NS}heartbeat_period'))
    # a loss repaired well inside the 0.1 s evidence period and fusion's 0.5 s age limit
    assert 0.02 <= heartbeat <= 0.1, heartbeat
    assert 0.0 <= _seconds(times.find(f'{NS}nack_response_delay')) <= 0.01
    assert _seconds(times.find(f'{NS}nack_supression_duration')) == 0.0


def test_profiles_set_only_the_default_writers_timing():
    _check_timing(PROFILES)


@pytest.mark.parametrize('old, new', [
    (' is_default_profile="true">', '>'),                    # a named profile: no writer would take it
    ('</profiles>', '<data_writer profile_name="/v1/evidence_grid"/></profiles>'),   # by topic name: v1 only
    ('<times>', '<qos><reliability><kind>BEST_EFFORT</kind></reliability></qos><times>'),
    ('<heartbeat_period><sec>0</sec><nanosec>50000000</nanosec>', '<heartbeat_period><sec>3</sec><nanosec>0</nanosec>'),
])
def test_the_timing_check_finds_a_defect(tmp_path, old, new):
    text = PROFILES.read_text()
    assert old in text
    bad = tmp_path / 'bad.xml'
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(AssertionError):
        _check_timing(bad)


def test_the_timing_check_finds_missing_times(tmp_path):
    bad = tmp_path / 'bad.xml'
    bad.write_text(re.sub(r'<times>.*</times>', '', PROFILES.read_text(), flags=re.S))
    assert 'heartbeat_period' not in bad.read_text()
    with pytest.raises(AssertionError):
        _check_timing(bad)


SMOKE = '''
import rclpy
from rclpy.node import Node
from nav_msgs.msg import OccupancyGrid
from cooperative_fusion.ros.qos import evidence_qos, latched_qos
rclpy.init()
node = Node('profile_smoke', namespace='v1')
node.create_publisher(OccupancyGrid, 'evidence_grid', evidence_qos(10))
node.create_publisher(OccupancyGrid, '/cooperative/grid', latched_qos(1))
node.create_publisher(OccupancyGrid, '/w6/evidence_grid', evidence_qos(10))   # a platoon other than v1..v4
for topic in ('/v1/evidence_grid', '/cooperative/grid', '/w6/evidence_grid'):
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
    assert out.stdout.split('\n')[:3] == ['/v1/evidence_grid RELIABLE VOLATILE',
                                          '/cooperative/grid RELIABLE TRANSIENT_LOCAL',
                                          '/w6/evidence_grid RELIABLE VOLATILE']
    # the check can fail: a misspelt element is reported by Fast DDS' parser
    bad = tmp_path / 'bad.xml'
    bad.write_text(PROFILES.read_text().replace('heartbeat_period>', 'heartbeat_periode>', 2))
    assert bad.read_text() != PROFILES.read_text()
    out = _load(bad)
    assert 'XMLPARSER Error' in re.sub(r'\x1b\[[0-9;]*m', '', out.stdout + out.stderr), out.stderr
