"""One vehicle's perception node, as on the vehicle itself.

    ros2 launch cooperative_fusion vehicle.launch.py vehicle_id:=v2

Starts ``vehicle_node`` in namespace ``/<vehicle_id>`` with ``params_file``
(default: the package's config/vehicle.yaml), then the vehicle's own file
``config/vehicles/<vehicle_id>.yaml`` (its extrinsics) when it exists, and
``vehicle_id`` — the same arguments ``cooperative-fusion run`` composes the node with
(config/platoon.yaml).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'cooperative_fusion'
#: Params file every vehicle shares, and the directory of per-vehicle files, in the package's config/.
VEHICLE_PARAMS = 'vehicle.yaml'
VEHICLE_OVERRIDE_DIR = 'vehicles'


def _vehicle_node(context):
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    vehicle_id = LaunchConfiguration('vehicle_id').perform(context)
    params_file = LaunchConfiguration('params_file').perform(context) or os.path.join(config, VEHICLE_PARAMS)
    override = LaunchConfiguration('vehicle_params_file').perform(context) or \
        os.path.join(config, VEHICLE_OVERRIDE_DIR, f'{vehicle_id}.yaml')
    use_sim_time = LaunchConfiguration('use_sim_time').perform(context).lower() in ('true', '1')
    params = [params_file] + ([override] if os.path.isfile(override) else [])
    return [Node(package=PACKAGE, executable='vehicle_node', name='vehicle_node', namespace=vehicle_id,
                 parameters=[*params, {'vehicle_id': vehicle_id, 'use_sim_time': use_sim_time}],
                 output='screen', emulate_tty=True)]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('vehicle_id', default_value='v1',
                              description='vehicle id; also the node namespace (/<vehicle_id>)'),
        DeclareLaunchArgument('params_file', default_value='',
                              description=f'vehicle params file (empty: the package\'s config/{VEHICLE_PARAMS})'),
        DeclareLaunchArgument('vehicle_params_file', default_value='',
                              description=f'per-vehicle params file loaded after params_file (empty: '
                                          f'config/{VEHICLE_OVERRIDE_DIR}/<vehicle_id>.yaml when it exists)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='follow /clock (true when replaying a bag)'),
        OpaqueFunction(function=_vehicle_node),
    ])
