"""A scenario in Gazebo (Harmonic) with the whole platoon running on it, recorded into mcap.

    cooperative-fusion export-gazebo --scenario config/scenarios/highway_occlusion.yaml --out gz_world
    ros2 launch cooperative_fusion gazebo_platoon.launch.py world_dir:=$PWD/gz_world record:=$PWD/gz_run

Starts ``gz sim`` on world_dir/world.sdf (world_dir on GZ_SIM_SYSTEM_PLUGIN_PATH, for the
Python motion system), ros_gz_bridge's ``parameter_bridge`` with world_dir/bridge.yaml, every
vehicle node (config/vehicle.yaml, config/vehicles/<v>.yaml, then world_dir/gazebo_params.yaml),
fusion and twin on sim time, and ``ros2 bag record`` (mcap) of every bridged topic (inputs,
clock, truth) and the outputs of config/platoon.yaml. Gazebo stops after ``duration`` sim
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

PACKAGE = 'cooperative_fusion'
DEFAULT_VEHICLES = 'v1,v2,v3,v4'
VEHICLE_PARAMS = 'vehicle.yaml'
VEHICLE_OVERRIDE_DIR = 'vehicles'
FUSION_PARAMS = 'fusion.yaml'
TWIN_PARAMS = 'twin.yaml'
PLATOON_CONFIG = 'platoon.yaml'
#: Files of an `export-gazebo` directory.
WORLD_FILE = 'world.sdf'
BRIDGE_FILE = 'bridge.yaml'
GAZEBO_PARAMS = 'gazebo_params.yaml'
#: Physics step of the exported world, seconds (gz sim --iterations = duration / step).
STEP_S = 0.001


def _gazebo(context):
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    world_dir = os.path.abspath(LaunchConfiguration('world_dir').perform(context))
    vehicles = [v.strip() for v in LaunchConfiguration('vehicles').perform(context).split(',') if v.strip()]
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
    for v in vehicles:
        params = [os.path.join(config, VEHICLE_PARAMS)]
        override = os.path.join(config, VEHICLE_OVERRIDE_DIR, f'{v}.yaml')
        if os.path.isfile(override):
            params.append(override)
        actions.append(Node(package=PACKAGE, executable='vehicle_node', name='vehicle_node', namespace=v,
                            parameters=[*params, gazebo_params, {'vehicle_id': v, **sim}], output='screen',
                            emulate_tty=True))
    actions += [
        Node(package=PACKAGE, executable='fusion_node', name='fusion_node',
             parameters=[os.path.join(config, FUSION_PARAMS), sim], output='screen', emulate_tty=True),
        Node(package=PACKAGE, executable='twin_node', name='twin_node',
             parameters=[os.path.join(config, TWIN_PARAMS), sim], output='screen', emulate_tty=True),
    ]
    record = LaunchConfiguration('record').perform(context)
    if record:
        with open(bridge_file) as f:
            topics = [entry['ros_topic_name'] for entry in yaml.safe_load(f)]
        with open(os.path.join(config, PLATOON_CONFIG)) as f:
            outputs = yaml.safe_load(f)['record']['topics']
        for topic in outputs:
            for t in ([topic.replace('<v>', v) for v in vehicles] if '<v>' in topic else [topic]):
                if t not in topics:
                    topics.append(t)
        actions.append(ExecuteProcess(cmd=['ros2', 'bag', 'record', '-s', 'mcap', '--use-sim-time', '-o', record,
                                           *topics], output='screen'))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('world_dir', description='directory written by `cooperative-fusion export-gazebo`'),
        DeclareLaunchArgument('vehicles', default_value=DEFAULT_VEHICLES,
                              description='comma-separated vehicle ids of the scenario; one vehicle node each'),
        DeclareLaunchArgument('duration', default_value='20.0',
                              description="sim seconds to run (the scenario's duration_s)"),
        DeclareLaunchArgument('headless', default_value='true', description='true: gz sim server only, no GUI'),
        DeclareLaunchArgument('record', default_value='',
                              description='rosbag2 (mcap) directory to record into; empty: no recording'),
        OpaqueFunction(function=_gazebo),
    ])
