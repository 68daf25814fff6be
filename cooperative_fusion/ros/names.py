"""Topic and frame names of the interface contract (DESIGN.md), in one place.

Per-vehicle names take the vehicle id; every vehicle lives in its own namespace
``/<v>``. Nodes take their topics as parameters whose defaults come from here.
"""
from __future__ import annotations

#: the shared frame every output is in
MAP_FRAME = 'map'

# -- per-vehicle inputs (relative names resolve in the vehicle's namespace)
LIDAR = 'lidar/points'
RADAR = 'radar/points'
DEPTH_IMAGE = 'camera/depth/image'
CAMERA_INFO = 'camera/depth/camera_info'
ODOM = 'odom'
TIME_REFERENCE = 'time_reference'

# -- per-vehicle outputs
EVIDENCE_GRID = 'evidence_grid'
RADAR_TARGETS = 'radar/targets'
ADVISORY = 'twin/advisory'
COOPERATIVE_CMD = 'cooperative/cmd'

# -- shared outputs
COMMON_GRID = '/cooperative/grid'
PREDICTED_GRID = '/twin/predicted_grid'
WARNINGS = '/twin/warnings'
MARKERS = '/twin/markers'
DIAGNOSTICS = '/diagnostics'
CLOCK = '/clock'

# -- edge fusion shards: a fusion_node with shard.index k publishes its evidence delta, fusion_combiner sums them
SHARD_DELTA_PREFIX = '/cooperative/shard'  # + index: a name token must not start with a digit

# -- ground truth in simulated bags
TRUTH_GRID = '/truth/grid'
TRUTH_ODOM_PREFIX = '/truth/odom/'
TRUTH_OBJECTS = '/truth/objects'
TRUTH_SCENARIO = '/truth/scenario'
TRUTH_PREFIX = '/truth/'


def vehicle_topic(vehicle_id: str, name: str) -> str:
    """The absolute topic ``/<vehicle_id>/<name>`` of a per-vehicle name above."""
    return f'/{vehicle_id}/{name}'


def shard_delta(index: int) -> str:
    """``/cooperative/shard<index>/delta``: fusion shard ``index``'s evidence delta (ros/shard_delta.py)."""
    return f'{SHARD_DELTA_PREFIX}{index}/delta'


def truth_odom(vehicle_id: str) -> str:
    """``/truth/odom/<vehicle_id>``: the vehicle's true pose in common time."""
    return f'{TRUTH_ODOM_PREFIX}{vehicle_id}'


def vehicle_frame(vehicle_id: str, link: str) -> str:
    """``<vehicle_id>/<link>``: a vehicle's frame (``base_link``, ``lidar``, ``radar``, ``camera_optical``)."""
    return f'{vehicle_id}/{link}'
