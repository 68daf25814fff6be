"""The edge side: the fusion node (common occupancy grid) and the digital twin.

    ros2 launch cooperative_fusion edge_twin.launch.py use_sim_time:=true

Both in the root namespace with their params files (default: the package's
config/fusion.yaml and config/twin.yaml) — the same files
``cooperative-fusion run`` composes them with (config/platoon.yaml).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'cooperative_fusion'
FUSION_PARAMS = 'fusion.yaml'
TWIN_PARAMS = 'twin.yaml'


def _edge_nodes(context):
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    fusion_params = LaunchConfiguration('fusion_params_file').perform(context) or \
        os.path.join(config, FUSION_PARAMS)
    twin_params = LaunchConfiguration('twin_params_file').perform(context) or os.path.join(config, TWIN_PARAMS)
    use_sim_time = LaunchConfiguration('use_sim_time').perform(context).lower() in ('true', '1')
    return [
        Node(package=PACKAGE, executable='fusion_node', name='fusion_node',
             parameters=[fusion_params, {'use_sim_time': use_sim_time}], output='screen', emulate_tty=True),
        Node(package=PACKAGE, executable='twin_node', name='twin_node',
             parameters=[twin_params, {'use_sim_time': use_sim_time}], output='screen', emulate_tty=True),
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('fusion_params_file', default_value='',
                              description=f'fusion params file (empty: the package\'s config/{FUSION_PARAMS})'),
        DeclareLaunchArgument('twin_params_file', default_value='',
                              description=f'twin params file (empty: the package\'s config/{TWIN_PARAMS})'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='follow /clock (true when replaying a bag)'),
        OpaqueFunction(function=_edge_nodes),
    ])
