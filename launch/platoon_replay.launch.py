"""A whole platoon on a recorded bag: every vehicle node, fusion and twin, next to ``ros2 bag play``.

    ros2 launch cooperative_fusion platoon_replay.launch.py bag:=/data/scenario vehicles:=v1,v2,v3,v4

Every node runs with ``use_sim_time`` and follows the /clock that
``ros2 bag play --clock`` publishes; the launch ends when the bag has played.
Each vehicle node gets config/vehicle.yaml, then config/vehicles/<v>.yaml
(when it exists), in namespace /<v> with ``vehicle_id`` <v>; fusion and twin
get config/fusion.yaml and config/twin.yaml: the same files and arguments as
``cooperative-fusion run --bag BAG --rate R`` (config/platoon.yaml), which is
the way to run this where ``ros2 launch`` is not installed.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'cooperative_fusion'
#: The platoon of config/platoon.yaml, and the params files it gives each node.
DEFAULT_VEHICLES = 'v1,v2,v3,v4'
VEHICLE_PARAMS = 'vehicle.yaml'
VEHICLE_OVERRIDE_DIR = 'vehicles'
FUSION_PARAMS = 'fusion.yaml'
TWIN_PARAMS = 'twin.yaml'
#: /clock rate of the bag player, Hz (timers of the nodes fire on it).
CLOCK_HZ = '100'


def _platoon(context):
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    vehicles = [v.strip() for v in LaunchConfiguration('vehicles').perform(context).split(',') if v.strip()]
    sim = {'use_sim_time': True}
    actions = []
    for v in vehicles:
        params = [os.path.join(config, VEHICLE_PARAMS)]
        override = os.path.join(config, VEHICLE_OVERRIDE_DIR, f'{v}.yaml')
        if os.path.isfile(override):
            params.append(override)
        actions.append(Node(package=PACKAGE, executable='vehicle_node', name='vehicle_node', namespace=v,
                            parameters=[*params, {'vehicle_id': v, **sim}], output='screen', emulate_tty=True))
    actions += [
        Node(package=PACKAGE, executable='fusion_node', name='fusion_node',
             parameters=[os.path.join(config, FUSION_PARAMS), sim], output='screen', emulate_tty=True),
        Node(package=PACKAGE, executable='twin_node', name='twin_node',
             parameters=[os.path.join(config, TWIN_PARAMS), sim], output='screen', emulate_tty=True),
    ]
    play = ExecuteProcess(
        cmd=['ros2', 'bag', 'play', LaunchConfiguration('bag').perform(context), '--clock', CLOCK_HZ,
             '--rate', LaunchConfiguration('rate').perform(context),
             '--delay', LaunchConfiguration('delay').perform(context)],
        output='screen')
    actions += [play, RegisterEventHandler(OnProcessExit(
        target_action=play, on_exit=[EmitEvent(event=Shutdown(reason='bag finished'))]))]
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='rosbag2 to play (e.g. from cooperative-fusion simulate)'),
        DeclareLaunchArgument('vehicles', default_value=DEFAULT_VEHICLES,
                              description='comma-separated vehicle ids; one vehicle node each'),
        DeclareLaunchArgument('rate', default_value='1.0', description='bag play rate'),
        DeclareLaunchArgument('delay', default_value='2.0',
                              description='seconds before playing, so every node has subscribed'),
        OpaqueFunction(function=_platoon),
    ])
