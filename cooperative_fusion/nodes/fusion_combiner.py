"""Fusion combiner: the fusion shards' evidence deltas -> the common occupancy grid.

Subscribes to ``/cooperative/shard<k>/delta`` for k < ``shard.count`` (each
published by a ``fusion_node`` with ``shard.index`` k), and, per configured
vehicle, to ``/<v>/odom`` and ``/<v>/time_reference`` (window, members'
bodies); publishes the grid on ``topics.output`` as the fusion node does (same
topic, type, frame, latched QoS) and its health on ``/diagnostics``: one status
per shard (``fusion_combiner: shard<k>``) with the age of its newest delta,
deltas received / applied / lost and drops. The work is
:class:`~cooperative_fusion.core.fusion.shards.ShardCombiner`. It takes the
fusion node's parameter table and files (the fusion.*, grid.*, footprints.*,
publish and shard.count values are used).

Run: ``fusion_combiner --ros-args --params-file config/fusion.yaml -p shard.count:=2``
(``launch/edge_twin.launch.py shards:=2`` starts it with the shards).
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Sequence

from diagnostic_msgs.msg import DiagnosticStatus
from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import TimeReference
from std_msgs.msg import Float32MultiArray

from ..core.errors import MessageFormatError
from ..core.fusion.config import config_from_params
from ..core.fusion.shards import ShardCombiner, shard_name
from ..core.platoon_config import NodeKind
from ..ros import names
from ..ros.diagnostics import LatencyStats, Level, RateMeter, make_status
from ..ros.grid import grid_to_msg
from ..ros.node import BaseNode, spin_node
from ..ros.odometry import odometry_to_pose
from ..ros.qos import evidence_qos, latched_qos, state_qos
from ..ros.shard_delta import delta_from_msg
from ..ros.time import time_reference_to_ns
from .fusion_params import PARAMS

__all__ = ['PARAMS', 'FusionCombiner', 'create_node', 'main']

NODE_NAME = 'fusion_combiner'


class FusionCombiner(BaseNode):
    """See the module docstring. Drops are counted per shard (``drops.shard<k>.<cause>``) and per timer."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        values = self.declare_params(PARAMS, platoon=NodeKind.FUSION)
        cfg = self.cfg = config_from_params(values)
        self.core = ShardCombiner(cfg, int(values['shard.count']))
        self.latency = LatencyStats()
        self.cycle_ms = LatencyStats()
        self.apply_ms = LatencyStats()
        self.publish_rate = RateMeter(max(5.0 * cfg.publish_period_s, 1.0))
        self.published = 0

        self.grid_pub = self.create_publisher(OccupancyGrid, cfg.output_topic, latched_qos(1))
        for k in range(self.core.count):
            self.create_subscription(Float32MultiArray, names.shard_delta(k),
                                     self.guard(shard_name(k), self._on_delta), evidence_qos(cfg.evidence_depth))
        for vid in cfg.vehicles:
            self.create_subscription(Odometry, names.vehicle_topic(vid, names.ODOM),
                                     self.guard(vid, lambda m, v=vid: self._on_odom(v, m)),
                                     state_qos(cfg.odom_depth))
            self.create_subscription(TimeReference, names.vehicle_topic(vid, names.TIME_REFERENCE),
                                     self.guard(vid, lambda m, v=vid: self.core.fusion.add_time_reference(
                                         *time_reference_to_ns(m), vehicle_id=v)),
                                     state_qos(cfg.odom_depth))
        if cfg.time_reference_topic:
            self.create_subscription(TimeReference, cfg.time_reference_topic,
                                     self.guard('time_reference', lambda m: self.core.fusion.add_time_reference(
                                         *time_reference_to_ns(m))), state_qos())
        self.publish_timer = self.create_guarded_timer(cfg.publish_period_s, 'publish',
                                                       lambda: self._publish(self.now_ns()))
        self.start_diagnostics(cfg.diagnostics_period_s, NODE_NAME, self.get_fully_qualified_name())
        self.get_logger().info(f'combining {self.core.count} fusion shards into {cfg.output_topic}')

    def now_ns(self) -> int:
        """Common time now, ns (as the fusion node's)."""
        return self.core.fusion.common_time(int(self.get_clock().now().nanoseconds))

    # ----------------------------------------------------------- callbacks --

    def _on_odom(self, vid: str, msg: Odometry) -> None:
        if msg.header.frame_id != self.cfg.frame_id:
            self.drop(vid, 'frame', f'odometry in frame {msg.header.frame_id!r}: expected {self.cfg.frame_id!r}')
            return
        try:
            pose = odometry_to_pose(msg)
        except MessageFormatError as exc:
            self.drop(vid, 'malformed_odom', str(exc))
            return
        # the pose is used for the window and the bodies only: no covariance (the shards weigh evidence)
        self.core.fusion.add_odometry(vid, pose.position, pose.quat_wxyz, msg.twist.twist.linear.x, None,
                                      pose.stamp_ns, self.now_ns())

    def _on_delta(self, msg: Float32MultiArray) -> None:
        delta = delta_from_msg(msg)      # a MessageFormatError: the guard counts it malformed
        now = self.now_ns()
        t0 = time.perf_counter()
        result = self.core.add(delta, now)
        self.apply_ms.add(1e3 * (time.perf_counter() - t0))
        if result.publish:
            self._publish(now)
        elif not result.accepted and result.cause is not None:
            self.drop(shard_name(delta.shard), result.cause, result.detail)

    def _publish(self, now: int) -> None:
        t0 = time.perf_counter()
        out = self.core.publish(now)
        self.grid_pub.publish(grid_to_msg(out.spec, out.cells, out.stamp_ns, self.cfg.frame_id))
        for ms in out.latencies_ms:
            self.latency.add(float(ms))
        self.publish_rate.tick(now)
        self.published += 1
        self.cycle_ms.add(1e3 * (time.perf_counter() - t0))

    # --------------------------------------------------------- diagnostics --

    def shard_values(self, k: int, now_ns: int) -> tuple[Level, str, dict[str, object]]:
        """Level, message and values of shard k: age_s (newest delta's arrival), received, applied, lost
        (sequence gaps), reordered, restarts, drops.<cause>, drops.total. STALE before any delta, WARN when older than
        fusion.vehicle_timeout_s."""
        book = self.core.books[k]
        prefix = f'{shard_name(k)}.'
        counts = {key[len(prefix):]: n for key, n in self.drops.counts.items() if key.startswith(prefix)}
        age = math.nan if book.last_arrival_ns is None else (now_ns - book.last_arrival_ns) / 1e9
        values: dict[str, object] = {'age_s': age, 'received': book.received, 'applied': book.applied,
                                     'lost': book.lost, 'reordered': book.reordered, 'restarts': book.restarts,
                                     **{f'drops.{c}': n for c, n in sorted(counts.items())},
                                     'drops.total': sum(counts.values())}
        if book.last_arrival_ns is None:
            return Level.STALE, 'no delta yet', values
        if age > self.cfg.fusion.vehicle_timeout_ns / 1e9:
            return Level.WARN, f'silent for {age:.1f} s', values
        return Level.OK, f'{book.applied} deltas applied, {book.lost} lost', values

    def diagnostics_statuses(self) -> list[DiagnosticStatus]:
        """The node's status (published, rate, latency_ms.* sensor stamp -> publish, cycle_ms.*, apply_ms.*,
        grid.*, drops.*), then one per shard."""
        now = self.now_ns()
        statuses = []
        silent = []
        for k in range(self.core.count):
            level, message, values = self.shard_values(k, now)
            if level is not Level.OK:
                silent.append(shard_name(k))
            statuses.append(make_status(f'{NODE_NAME}: {shard_name(k)}', level, message, values,
                                        hardware_id=shard_name(k)))
        if self.published == 0:
            level, message = Level.STALE, 'no grid published yet'
        elif silent:
            level, message = Level.WARN, f'shards without recent deltas: {", ".join(silent)}'
        else:
            level, message = Level.OK, f'{self.published} grids published'
        values: dict[str, object] = {'publish_rate_hz': self.publish_rate.rate_hz(now), 'published': self.published,
                                     'shards': self.core.count, **self.core.fusion.grid_values(now)}
        values.update(self.latency.as_values('latency_ms.'))
        values.update(self.cycle_ms.as_values('cycle_ms.'))
        values.update(self.apply_ms.as_values('apply_ms.'))
        values.update(self.drops.as_values('drops.'))
        statuses.insert(0, make_status(NODE_NAME, level, message, values,
                                       hardware_id=self.get_fully_qualified_name()))
        return statuses


def create_node(**kwargs: Any) -> FusionCombiner:
    """A FusionCombiner for in-process composition; ``kwargs`` go to ``rclpy.node.Node``."""
    return FusionCombiner(**kwargs)


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(FusionCombiner, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
