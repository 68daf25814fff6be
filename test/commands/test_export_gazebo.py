"""The export-gazebo command: through the CLI, on a shipped scenario, and its truth mode."""
from __future__ import annotations

from pathlib import Path

import yaml

from cooperative_fusion.cli import main
from cooperative_fusion.ros import names

REPO = Path(__file__).resolve().parents[2]


def test_export_writes_the_gazebo_files(tmp_path, capsys):
    out = tmp_path / 'gz'
    scenario = REPO / 'config' / 'scenarios' / 'highway_clear.yaml'
    assert main(['export-gazebo', '--scenario', str(scenario), '--out', str(out),
                 '--config', str(REPO / 'config' / 'platoon.yaml')]) == 0
    assert 'world.sdf, bridge.yaml' in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ['README.md', 'bridge.yaml', 'gazebo_params.yaml',
                                                     'scenario_motion.py', 'trajectories.json', 'world.sdf']
    assert '<world name="platoon">' in (out / 'world.sdf').read_text()
    bridged = {e['ros_topic_name'] for e in yaml.safe_load((out / 'bridge.yaml').read_text())}
    assert names.vehicle_topic('v3', names.LIDAR) in bridged
    assert 'gazebo_platoon.launch.py' in (out / 'README.md').read_text()


def test_default_scenario_is_highway_occlusion(tmp_path):
    assert main(['export-gazebo', '--out', str(tmp_path / 'gz')]) == 0
    assert '<model name="h1">' in (tmp_path / 'gz' / 'world.sdf').read_text()


def test_truth_mode_refuses_a_bag_that_is_not_a_gazebo_recording(tmp_path, capsys):
    from cooperative_fusion.ros.bag import BagWriter
    from std_msgs.msg import String

    with BagWriter(tmp_path / 'other') as bag:
        bag.write('/chatter', String(data='x'), 1)
    assert main(['export-gazebo', '--truth-from', str(tmp_path / 'other'), '--out', str(tmp_path / 'truth')]) == 2
    assert 'no /truth/odom/v1' in capsys.readouterr().err


def test_truth_mode_does_not_overwrite(tmp_path, capsys):
    (tmp_path / 'truth').mkdir()
    assert main(['export-gazebo', '--truth-from', str(tmp_path / 'x'), '--out', str(tmp_path / 'truth')]) == 2
    assert 'already exists' in capsys.readouterr().err
