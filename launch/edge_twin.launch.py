"""The edge side: the fusion node (common occupancy grid) and the digital twin.

    ros2 launch cooperative_fusion edge_twin.launch.py use_sim_time:=true [platoon_file:=my_platoon.yaml] [shards:=2]

Both in the root namespace with their params files (default: those the platoon
config names, config/fusion.yaml and config/twin.yaml) and the platoon
parameters (vehicle ids, weights, bodies) derived from the platoon config's
vehicle list (default: the package's config/platoon.yaml): the same files and
parameters ``cooperative-fusion run`` composes them with. ``shards:=N`` (N >= 2)
starts N fusion shards (``fusion_shard_<k>``: fusion_node with shard.index k,
shard.count N) and ``fusion_combiner``, which publishes the common grid,
instead of one fusion node (README, "Edge shards").
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from cooperative_fusion.core.platoon_config import NodeKind, load_platoon_config

PACKAGE = 'cooperative_fusion'
#: Fast DDS profiles file in config/ (a 50 ms heartbeat for every reliable writer) and the variable naming it
FASTDDS_PROFILES = 'fastdds_live.xml'
FASTDDS_ENV = 'FASTDDS_DEFAULT_PROFILES_FILE'
PLATOON_CONFIG = 'platoon.yaml'
FUSION_PARAMS = 'fusion.yaml'
TWIN_PARAMS = 'twin.yaml'


def _fastdds_profiles(config: str) -> list:
    """A 50 ms reliable-writer heartbeat, so a sample lost on the V2X link is resent at once (config/fastdds_live.xml,
    docs/reliability.md) for every node started here, unless the caller exported a profiles file."""
    if os.environ.get(FASTDDS_ENV):
        return []
    return [SetEnvironmentVariable(FASTDDS_ENV, os.path.join(config, FASTDDS_PROFILES))]


def _files(paths, default):
    """The platoon config's params files of a node, or ``default`` when it names none (node switched off)."""
    return [str(p) for p in paths] or [default]


def _edge_nodes(context):
    config = os.path.join(get_package_share_directory(PACKAGE), 'config')
    cfg = load_platoon_config(LaunchConfiguration('platoon_file').perform(context) or
                              os.path.join(config, PLATOON_CONFIG))
    derived = cfg.node_parameters()
    fusion_file = LaunchConfiguration('fusion_params_file').perform(context)
    twin_file = LaunchConfiguration('twin_params_file').perform(context)
    fusion_params = [fusion_file] if fusion_file else _files(cfg.fusion_params, os.path.join(config, FUSION_PARAMS))
    twin_params = [twin_file] if twin_file else _files(cfg.twin_params, os.path.join(config, TWIN_PARAMS))
    sim = {'use_sim_time': LaunchConfiguration('use_sim_time').perform(context).lower() in ('true', '1')}
    shards = int(LaunchConfiguration('shards').perform(context))
    fusion = {**derived[NodeKind.FUSION], **sim}
    if shards <= 1:
        nodes = [Node(package=PACKAGE, executable='fusion_node', name='fusion_node',
                      parameters=[*fusion_params, fusion], output='screen', emulate_tty=True)]
    else:
        nodes = [Node(package=PACKAGE, executable='fusion_node', name=f'fusion_shard_{k}',
                      parameters=[*fusion_params, {**fusion, 'shard.index': k, 'shard.count': shards}],
                      output='screen', emulate_tty=True) for k in range(shards)]
        nodes.append(Node(package=PACKAGE, executable='fusion_combiner', name='fusion_combiner',
                          parameters=[*fusion_params, {**fusion, 'shard.count': shards}],
                          output='screen', emulate_tty=True))
    return [
        *_fastdds_profiles(config),
        *nodes,
        Node(package=PACKAGE, executable='twin_node', name='twin_node',
             parameters=[*twin_params, {**derived[NodeKind.TWIN], **sim}], output='screen', emulate_tty=True),
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('platoon_file', default_value='',
                              description=f'platoon config naming the vehicles, their bodies and weights '
                                          f'(empty: the package\'s config/{PLATOON_CONFIG})'),
        DeclareLaunchArgument('fusion_params_file', default_value='',
                              description=f'fusion params file (empty: the platoon config\'s, '
                                          f'config/{FUSION_PARAMS})'),
        DeclareLaunchArgument('twin_params_file', default_value='',
                              description=f'twin params file (empty: the platoon config\'s, config/{TWIN_PARAMS})'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='follow /clock (true when replaying a bag)'),
        DeclareLaunchArgument('shards', default_value='1',
                              description='fusion processes: 1 = one fusion_node; N >= 2 = N fusion shards '
                                          '(each a block of the platoon) + fusion_combiner'),
        OpaqueFunction(function=_edge_nodes),
    ])
