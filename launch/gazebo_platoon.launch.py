"""A scenario in Gazebo (Harmonic) with the whole platoon running on it, recorded into mcap.

    cooperative-fusion export-gazebo --scenario config/scenarios/highway_occlusion.yaml --out gz_world
    ros2 launch cooperative_fusion gazebo_platoon.launch.py world_dir:=$PWD/gz_world record:=$PWD/gz_run

Starts ``gz sim`` on world_dir/world.sdf (world_dir on GZ_SIM_SYSTEM_PLUGIN_PATH, for the
Python motion system), ros_gz_bridge's ``parameter_bridge`` with world_dir/bridge.yaml, the
nodes of the platoon config (``platoon_file``, default config/platoon.yaml): each vehicle node with
its params files, then world_dir/gazebo_params.yaml; fusion and twin with the platoon parameters;
all on sim time; and ``ros2 bag record`` (mcap) of every bridged topic (inputs, clock, truth) and
the platoon config's record topics. Gazebo stops after ``duration`` sim
seconds and the launch with it. Score the run with ``cooperative-fusion export-gazebo
--truth-from`` and ``cooperative-fusion evaluate`` (docs/gazebo.md).
"""
import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from cooperative_fusion.core.platoon_config import NodeKind, load_platoon_config
from cooperative_fusion.core.errors import ConfigError

PACKAGE = 'cooperative_fusion'
#: The platoon config in the package's config/, when platoon_file is not given.
PLATOON_CONFIG = 'platoon.yaml'
#: Files of an `export-gazebo` directory.
WORLD_FILE = 'world.sdf'
BRIDGE_FILE = 'bridge.yaml'
GAZEBO_PARAMS = 'gazebo_params.yaml'
#: Physics step of the exported world, seconds (gz sim --iterations = duration / step).
STEP_S = 0.001


def _gazebo(context):
    platoon_file = LaunchConfiguration('platoon_file').perform(context) or \
        os.path.join(get_package_share_directory(PACKAGE), 'config', PLATOON_CONFIG)
    cfg = load_platoon_config(platoon_file)
    derived = cfg.node_parameters()
    world_dir = os.path.abspath(LaunchConfiguration('world_dir').perform(context))
    selected = [v.strip() for v in LaunchConfiguration('vehicles').perform(context).split(',') if v.strip()]
    unknown = sorted(set(selected) - set(cfg.vehicles))
    if unknown:
        raise ConfigError(f'{cfg.path}: vehicles:={",".join(selected)}: {unknown} not in the platoon '
                          f'{list(cfg.vehicles)}')
    duration_s = float(LaunchConfiguration('duration').perform(context))
    headless = LaunchConfiguration('headless').perform(context).lower() in ('true', '1')
    sim = {'use_sim_time': True}
    plugin_path = os.pathsep.join(p for p in (world_dir, os.environ.get('GZ_SIM_SYSTEM_PLUGIN_PATH', '')) if p)
    gz = ExecuteProcess(
        cmd=['gz', 'sim', '-r', *(['-s'] if headless else []), '--iterations', str(int(round(duration_s / STEP_S))),
             os.path.join(world_dir, WORLD_FILE)],
        additional_env={'GZ_SIM_SYSTEM_PLUGIN_PATH': plugin_path}, output='screen')
    actions = [gz, RegisterEventHandler(OnProcessExit(
        target_action=gz, on_exit=[EmitEvent(event=Shutdown(reason='gazebo finished'))]))]
    bridge_file = os.path.join(world_dir, BRIDGE_FILE)
    actions.append(Node(package='ros_gz_bridge', executable='parameter_bridge', name='gz_bridge',
                        parameters=[{'config_file': bridge_file, **sim}], output='screen'))
    gazebo_params = os.path.join(world_dir, GAZEBO_PARAMS)
    vehicles = [v for v in cfg.platoon if not selected or v.id in selected]
    for vehicle in vehicles:
        actions.append(Node(package=PACKAGE, executable='vehicle_node', name='vehicle_node', namespace=vehicle.id,
                            parameters=[*map(str, vehicle.params), gazebo_params, {'vehicle_id': vehicle.id, **sim}],
                            output='screen', emulate_tty=True))
    actions += [
        Node(package=PACKAGE, executable='fusion_node', name='fusion_node',
             parameters=[*map(str, cfg.fusion_params), {**derived[NodeKind.FUSION], **sim}], output='screen',
             emulate_tty=True),
        Node(package=PACKAGE, executable='twin_node', name='twin_node',
             parameters=[*map(str, cfg.twin_params), {**derived[NodeKind.TWIN], **sim}], output='screen',
             emulate_tty=True),
    ]
    record = LaunchConfiguration('record').perform(context)
    if record:
        with open(bridge_file) as f:
            topics = [entry['ros_topic_name'] for entry in yaml.safe_load(f)]
        topics += [t for t in cfg.record_topics if t not in topics]
        actions.append(ExecuteProcess(cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--use-sim-time', '-o', record,
                                           *topics], output='screen'))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('world_dir', description='directory written by `cooperative-fusion export-gazebo`'),
        DeclareLaunchArgument('platoon_file', default_value='',
                              description=f'platoon config (empty: the package\'s config/{PLATOON_CONFIG}); '
                                          f'its vehicles must be the scenario\'s'),
        DeclareLaunchArgument('vehicles', default_value='',
                              description='comma-separated ids of the vehicle nodes to start (empty: every '
                                          'vehicle of the platoon)'),
        DeclareLaunchArgument('duration', default_value='20.0',
                              description="sim seconds to run (the scenario's duration_s)"),
        DeclareLaunchArgument('headless', default_value='true', description='true: gz sim server only, no GUI'),
        DeclareLaunchArgument('record', default_value='',
                              description='rosbag2 (mcap) directory to record into; empty: no recording'),
        OpaqueFunction(function=_gazebo),
    ])
