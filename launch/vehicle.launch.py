"""One vehicle's perception node (and optionally its advisory follower), as on the vehicle itself.

    ros2 launch cooperative_fusion vehicle.launch.py vehicle_id:=v2
    ros2 launch cooperative_fusion vehicle.launch.py vehicle_id:=v2 advisory_follower:=true follower_mode:=ego

Starts ``vehicle_node`` in namespace ``/<vehicle_id>`` with ``params_file``
(default: the package's config/vehicle.yaml), then the vehicle's own file
``config/vehicles/<vehicle_id>.yaml`` (its extrinsics) when it exists, and
``vehicle_id`` — the same arguments ``cooperative-fusion run`` composes the node with
(config/platoon.yaml). With ``advisory_follower:=true`` it also starts
``advisory_follower`` in the same namespace with config/advisory_follower.yaml,
``platoon_file`` (its predecessor and bodies) and ``follower.mode`` = ``follower_mode``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'cooperative_fusion'
#: Fast DDS profiles file in config/ (a 50 ms heartbeat for every reliable writer) and the variable naming it
FASTDDS_PROFILES = 'fastdds_live.xml'
FASTDDS_ENV = 'FASTDDS_DEFAULT_PROFILES_FILE'
#: Params file every vehicle shares, and the directory of per-vehicle files, in the package's config/.
VEHICLE_PARAMS = 'vehicle.yaml'
VEHICLE_OVERRIDE_DIR = 'vehicles'
#: The advisory follower's params file and the default platoon config, in the package's config/.
FOLLOWER_PARAMS = 'advisory_follower.yaml'
PLATOON_CONFIG = 'platoon.yaml'


def _fastdds_profiles(config: str) -> list:
    """A 50 ms reliable-writer heartbeat, so a sample lost on the V2X link is resent at once (config/fastdds_live.xml,
    docs/reliability.md) for every node started here, unless the caller exported a profiles file."""
    if os.environ.get(FASTDDS_ENV):
        return []
    return [SetEnvironmentVariable(FASTDDS_ENV, os.path.join(config, FASTDDS_PROFILES))]


def _vehicle_node(context):
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    vehicle_id = LaunchConfiguration('vehicle_id').perform(context)
    params_file = LaunchConfiguration('params_file').perform(context) or os.path.join(config, VEHICLE_PARAMS)
    override = LaunchConfiguration('vehicle_params_file').perform(context) or \
        os.path.join(config, VEHICLE_OVERRIDE_DIR, f'{vehicle_id}.yaml')
    use_sim_time = LaunchConfiguration('use_sim_time').perform(context).lower() in ('true', '1')
    params = [params_file] + ([override] if os.path.isfile(override) else [])
    nodes = [Node(package=PACKAGE, executable='vehicle_node', name='vehicle_node', namespace=vehicle_id,
                  parameters=[*params, {'vehicle_id': vehicle_id, 'use_sim_time': use_sim_time}],
                  output='screen', emulate_tty=True)]
    if LaunchConfiguration('advisory_follower').perform(context).lower() in ('true', '1'):
        platoon_file = LaunchConfiguration('platoon_file').perform(context) or os.path.join(config, PLATOON_CONFIG)
        inline = {'vehicle_id': vehicle_id, 'platoon_file': platoon_file, 'use_sim_time': use_sim_time,
                  'follower.mode': LaunchConfiguration('follower_mode').perform(context)}
        nodes.append(Node(package=PACKAGE, executable='advisory_follower', name='advisory_follower',
                          namespace=vehicle_id, parameters=[os.path.join(config, FOLLOWER_PARAMS), inline],
                          output='screen', emulate_tty=True))
    return [*_fastdds_profiles(config), *nodes]


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
        DeclareLaunchArgument('advisory_follower', default_value='false',
                              description='also start the advisory follower (/<vehicle_id>/cooperative/cmd)'),
        DeclareLaunchArgument('follower_mode', default_value='cooperative+advisory',
                              description="the follower's mode: ego, cooperative or cooperative+advisory"),
        DeclareLaunchArgument('platoon_file', default_value='',
                              description=f"platoon config giving the follower's predecessor and bodies "
                                          f"(empty: the package's config/{PLATOON_CONFIG})"),
        OpaqueFunction(function=_vehicle_node),
    ])
