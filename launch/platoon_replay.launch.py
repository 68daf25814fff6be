"""A whole platoon on a recorded bag: every vehicle node, fusion and twin, next to ``ros2 bag play``.

    ros2 launch cooperative_fusion platoon_replay.launch.py bag:=/data/scenario [platoon_file:=my_platoon.yaml]

The nodes are those of the platoon config (default: the package's
config/platoon.yaml, the file ``cooperative-fusion run`` reads), with the same
params files and arguments: each vehicle in namespace /<v> with ``vehicle_id``
<v>; fusion and twin with their params files and the platoon parameters derived
from the config's vehicle list (ids, weights, bodies). ``vehicles:=v1,v3``
starts only those vehicle nodes; fusion and twin still take the whole platoon.
Every node runs with ``use_sim_time`` and follows the /clock that ``ros2 bag
play --clock`` publishes; the launch ends when the bag has played.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction, RegisterEventHandler,
                            SetEnvironmentVariable)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from cooperative_fusion.core.platoon_config import NodeKind, load_platoon_config
from cooperative_fusion.core.errors import ConfigError

PACKAGE = 'cooperative_fusion'
#: Fast DDS profiles file in config/ (a 50 ms heartbeat for every reliable writer) and the variable naming it
FASTDDS_PROFILES = 'fastdds_live.xml'
FASTDDS_ENV = 'FASTDDS_DEFAULT_PROFILES_FILE'
#: The platoon config in the package's config/, when platoon_file is not given.
PLATOON_CONFIG = 'platoon.yaml'
#: /clock rate of the bag player, Hz (timers of the nodes fire on it).
CLOCK_HZ = '100'


def _fastdds_profiles(config: str) -> list:
    """A 50 ms reliable-writer heartbeat, so a sample lost on the V2X link is resent at once (config/fastdds_live.xml,
    docs/reliability.md) for every node started here, unless the caller exported a profiles file."""
    if os.environ.get(FASTDDS_ENV):
        return []
    return [SetEnvironmentVariable(FASTDDS_ENV, os.path.join(config, FASTDDS_PROFILES))]


def _platoon(context):
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    platoon_file = LaunchConfiguration('platoon_file').perform(context) or os.path.join(config, PLATOON_CONFIG)
    cfg = load_platoon_config(platoon_file)
    derived = cfg.node_parameters()
    selected = [v.strip() for v in LaunchConfiguration('vehicles').perform(context).split(',') if v.strip()]
    unknown = sorted(set(selected) - set(cfg.vehicles))
    if unknown:
        raise ConfigError(f'{cfg.path}: vehicles:={",".join(selected)}: {unknown} not in the platoon '
                          f'{list(cfg.vehicles)}')
    sim = {'use_sim_time': True}
    actions = _fastdds_profiles(config)
    if cfg.run_vehicles:
        for vehicle in cfg.platoon:
            if selected and vehicle.id not in selected:
                continue
            actions.append(Node(package=PACKAGE, executable='vehicle_node', name='vehicle_node',
                                namespace=vehicle.id,
                                parameters=[*map(str, vehicle.params), {'vehicle_id': vehicle.id, **sim}],
                                output='screen', emulate_tty=True))
    if cfg.run_fusion:
        actions.append(Node(package=PACKAGE, executable='fusion_node', name='fusion_node',
                            parameters=[*map(str, cfg.fusion_params), {**derived[NodeKind.FUSION], **sim}],
                            output='screen', emulate_tty=True))
    if cfg.run_twin:
        actions.append(Node(package=PACKAGE, executable='twin_node', name='twin_node',
                            parameters=[*map(str, cfg.twin_params), {**derived[NodeKind.TWIN], **sim}],
                            output='screen', emulate_tty=True))
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
        DeclareLaunchArgument('platoon_file', default_value='',
                              description=f'platoon config (empty: the package\'s config/{PLATOON_CONFIG})'),
        DeclareLaunchArgument('vehicles', default_value='',
                              description='comma-separated ids of the vehicle nodes to start (empty: every '
                                          'vehicle of the platoon)'),
        DeclareLaunchArgument('rate', default_value='1.0', description='bag play rate'),
        DeclareLaunchArgument('delay', default_value='2.0',
                              description='seconds before playing, so every node has subscribed'),
        OpaqueFunction(function=_platoon),
    ])
