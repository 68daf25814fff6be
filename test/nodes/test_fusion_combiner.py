"""Fusion shards and the combiner as rclpy nodes in one graph: evidence of v1 and v2 in, one common grid out."""
from __future__ import annotations

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Float32MultiArray

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.nodes.fusion_combiner import FusionCombiner
from cooperative_fusion.nodes.fusion_node import FusionNode
from cooperative_fusion.ros.grid import grid_from_msg, grid_to_msg
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.qos import diagnostics_qos, evidence_qos, latched_qos, state_qos

RES = 0.2
FREE, OCC = 20, 90
EV = GridSpec(0.0, -8.0, RES, 150, 80)            # x 0..30 m, y -8..8 m
BOX_A = (12.0, 14.0, 2.0, 4.0)                    # seen by v1 only (shard 0)
BOX_B = (20.0, 22.0, -4.0, -2.0)                  # seen by v2 only (shard 1)
COMMON = {'vehicles': ['v1', 'v2'], 'vehicle_weights': [1.0, 1.0], 'grid.size_x_m': 40.0, 'grid.size_y_m': 20.0,
          'grid.forward_offset_m': 10.0, 'footprints.enabled': False, 'fusion.max_age_s': 30.0,
          'fusion.vehicle_timeout_s': 30.0, 'publish_rate_hz': 20.0, 'diagnostics.period_s': 0.1,
          'coregistration.enabled': False}


def cells(x0: float, x1: float, y0: float, y1: float, spec: GridSpec = EV) -> tuple[slice, slice]:
    ix0, iy0 = int(round((x0 - spec.origin_x) / RES)), int(round((y0 - spec.origin_y) / RES))
    ix1, iy1 = int(round((x1 - spec.origin_x) / RES)), int(round((y1 - spec.origin_y) / RES))
    return slice(iy0, iy1), slice(ix0, ix1)


def odom(vid: str, x: float) -> Odometry:
    cov = np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-3])
    return pose_to_odometry(PoseSample(1, np.array([x, 0.0, 0.0]), np.array([1.0, 0, 0, 0]), cov),
                            'map', f'{vid}/base_link')


class Probe(Node):
    """Publishes the vehicles' evidence and odometry; records the common grid, the deltas and /diagnostics."""

    def __init__(self, ctx) -> None:
        super().__init__('probe', context=ctx)
        self.evidence = {v: self.create_publisher(OccupancyGrid, f'/{v}/evidence_grid', evidence_qos())
                         for v in ('v1', 'v2')}
        self.odom = {v: self.create_publisher(Odometry, f'/{v}/odom', state_qos()) for v in ('v1', 'v2')}
        self.grids: list[OccupancyGrid] = []
        self.deltas: dict[int, int] = {0: 0, 1: 0}
        self.statuses: dict[str, dict[str, str]] = {}
        self.create_subscription(OccupancyGrid, '/cooperative/grid', self.grids.append, latched_qos())
        for k in (0, 1):
            self.create_subscription(Float32MultiArray, f'/cooperative/shard{k}/delta',
                                     lambda _m, k=k: self.deltas.__setitem__(k, self.deltas[k] + 1), evidence_qos())
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, diagnostics_qos())

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            self.statuses[st.name] = {kv.key: kv.value for kv in st.values}


@pytest.fixture
def edge(ros_context, executor, spin):
    nodes = [FusionNode(context=ros_context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {**COMMON, 'shard.index': i, 'shard.count': 2}.items()])
        for i in (0, 1)]
    combiner = FusionCombiner(context=ros_context, parameter_overrides=[
        Parameter(k, value=v) for k, v in {**COMMON, 'shard.count': 2}.items()])
    probe = Probe(ros_context)
    for n in (*nodes, combiner, probe):
        executor.add_node(n)
    assert spin(executor, lambda: probe.evidence['v1'].get_subscription_count() == 1       # shard 0 only
                and probe.evidence['v2'].get_subscription_count() == 1                     # shard 1 only
                and all(p.get_subscription_count() == 3 for p in probe.odom.values())), 'never matched'
    return nodes, combiner, probe


def test_each_shard_fuses_its_block_and_the_combiner_publishes_both(edge, executor, spin):
    shards, combiner, probe = edge
    assert [list(s.received) for s in shards] == [['v1'], ['v2']]
    probe.odom['v1'].publish(odom('v1', 0.0))
    probe.odom['v2'].publish(odom('v2', 10.0))
    expected = GridSpec.centered(15.0, 0.0, 40.0, 20.0, RES)       # as one fusion node places it
    assert spin(executor, lambda: probe.grids and grid_from_msg(probe.grids[-1])[0] == expected)
    v1 = np.full(EV.shape, FREE, np.int8)
    v1[cells(*BOX_A)] = OCC
    v1[cells(*BOX_B)] = -1
    v2 = np.full(EV.shape, FREE, np.int8)
    v2[cells(*BOX_B)] = OCC
    v2[cells(*BOX_A)] = -1
    now = combiner.now_ns()
    probe.evidence['v1'].publish(grid_to_msg(EV, v1, now))
    probe.evidence['v2'].publish(grid_to_msg(EV, v2, now))

    def both_boxes() -> bool:
        if not probe.grids:
            return False
        spec, grid = grid_from_msg(probe.grids[-1])
        return bool((grid[cells(*BOX_A, spec=spec)] > 60).all() and (grid[cells(*BOX_B, spec=spec)] > 60).all())

    assert spin(executor, both_boxes, 30.0), 'the combined grid never held both boxes'
    spec, grid = grid_from_msg(probe.grids[-1])
    assert (grid[cells(4.0, 10.0, -8.0, 0.0, spec=spec)] < 40).all()          # free for both
    assert (grid[cells(-5.0, -1.0, -10.0, -8.5, spec=spec)] == -1).all()     # seen by nobody
    assert probe.deltas[0] > 0 and probe.deltas[1] > 0
    assert spin(executor, lambda: all(
        float(probe.statuses.get(f'fusion_combiner: shard{k}', {}).get('applied', 0)) > 0 for k in (0, 1)))
    for k in (0, 1):
        status = probe.statuses[f'fusion_combiner: shard{k}']
        assert status['lost'] == '0' and status['drops.total'] == '0'
        assert math.isfinite(float(status['age_s']))
    assert sum(combiner.core.books[k].applied for k in (0, 1)) >= 2


def test_a_malformed_delta_is_a_counted_drop_not_a_crash(edge, executor, spin, ros_context):
    _shards, combiner, probe = edge
    bad = probe.create_publisher(Float32MultiArray, '/cooperative/shard1/delta', evidence_qos())
    assert spin(executor, lambda: bad.get_subscription_count() >= 2)      # the combiner and the probe
    msg = Float32MultiArray()
    msg.data = [1.0, 2.0]
    bad.publish(msg)
    assert spin(executor, lambda: combiner.drops.counts.get('shard1.malformed', 0) == 1), combiner.drops.counts
    assert spin(executor, lambda: probe.statuses.get('fusion_combiner: shard1', {}).get('drops.malformed') == '1')
    published = combiner.published
    assert spin(executor, lambda: combiner.published > published)        # still publishing
