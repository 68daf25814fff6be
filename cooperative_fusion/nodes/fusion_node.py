"""Fusion node: every vehicle's per-cycle evidence grid -> one common occupancy grid.

Subscribes, per configured vehicle ``<v>``, to ``/<v>/evidence_grid``, ``/<v>/odom``,
``/<v>/time_reference`` and (with ``dynamic.enabled``) ``/<v>/radar/targets``;
publishes the posterior on ``topics.output`` (latched, depth 1; as CDR bytes, :func:`~cooperative_fusion.ros.grid.grid_to_cdr`)
and its health on ``/diagnostics``. The work is :class:`~cooperative_fusion.core.fusion.cooperative.CooperativeFusion`;
this node converts messages, calls it on the timers (publish heartbeat, publish check,
co-registration, discovery of unconfigured vehicles, diagnostics) and publishes: on the heartbeat, and
after fused evidence when the core's publish policy says (rate limit, deadline). The README
says what each stage does; ``config/fusion.yaml`` documents every parameter.
With ``shard.index`` k >= 0 it is fusion shard k (:mod:`~cooperative_fusion.core.fusion.shards`): it
fuses its block of the vehicles and publishes its evidence delta on ``/cooperative/shard<k>/delta``
for ``fusion_combiner`` instead of the grid. Evidence grids, odometry and radar targets are subscribed raw (CDR
bytes decoded by ``ros/cdr_decode.py``; message objects, as the lock-step runner hands them, are taken as well).

Run: ``fusion_node --ros-args --params-file config/fusion.yaml -p platoon_file:=config/platoon.yaml``
(add ``-p use_sim_time:=true`` on a bag replay; README, "Separate processes").
"""
from __future__ import annotations

import re
import sys
import time
from typing import Any, Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import PointCloud2, TimeReference
from std_msgs.msg import Float32MultiArray

from ..core.errors import MessageFormatError
from ..core.fusion.config import config_from_params
from ..core.platoon_config import NodeKind
from ..core.fusion.cooperative import VEHICLE_CAUSES, CooperativeFusion, Health, InputDrop
from ..core.fusion.shards import FusionShard
from ..core.grid import percent_to_logodds
from ..ros import names
from ..ros.cdr_decode import as_occupancy_grid, as_odometry, as_point_cloud2
from ..ros.diagnostics import LatencyStats, Level, RateMeter, make_status
from ..ros.grid import grid_from_msg, grid_to_cdr
from ..ros.odometry import covariance_is_psd, odometry_to_pose
from ..ros.pointcloud import cloud_to_array
from ..ros.node import BaseNode, spin_node
from ..ros.qos import evidence_qos, latched_qos, state_qos
from ..ros.shard_delta import delta_to_msg
from ..ros.time import stamp_to_ns, time_reference_to_ns
from .fusion_params import PARAMS

__all__ = ['PARAMS', 'FusionNode', 'create_node', 'main']

NODE_NAME = 'fusion_node'
_EVIDENCE_TOPIC = re.compile(rf'^/([^/]+)/{re.escape(names.EVIDENCE_GRID)}$')
_LEVEL = {Health.OK: Level.OK, Health.WARN: Level.WARN, Health.STALE: Level.STALE}


class FusionNode(BaseNode):
    """See the module docstring. Drops are counted per vehicle (``drops.<v>.<cause>`` in the node's status,
    ``drops.<cause>`` in the vehicle's) and per timer. ``kwargs`` go to ``rclpy.node.Node`` (context,
    namespace, parameter_overrides, cli_args, ...), so the in-process bringup can compose it."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        values = self.declare_params(PARAMS, platoon=NodeKind.FUSION)
        cfg = self.cfg = config_from_params(values)
        # A shard fuses a block of the vehicles (odometry of all: window, members) and publishes its delta.
        self.shard = (FusionShard(cfg, int(values['shard.index']), int(values['shard.count']))
                      if int(values['shard.index']) >= 0 else None)
        self.core = self.shard.fusion if self.shard is not None else CooperativeFusion(cfg)
        fused = self.shard.vehicles if self.shard is not None else cfg.vehicles
        self.received = {v: 0 for v in fused}        # evidence messages per vehicle
        self.ignored: set[str] = set()
        self.latency = LatencyStats()
        self.cycle_ms = LatencyStats()
        self.integrate_ms = LatencyStats()
        self.coreg_ms = LatencyStats()
        self.publish_rate = RateMeter(max(5.0 * cfg.publish_period_s, 1.0))
        self.published = 0

        if self.shard is None:
            self.grid_pub = self.create_publisher(OccupancyGrid, cfg.output_topic, latched_qos(1))
        else:
            self.delta_pub = self.create_publisher(Float32MultiArray, names.shard_delta(self.shard.index),
                                                   evidence_qos(cfg.evidence_depth))
        for vid in cfg.vehicles:
            if vid in self.received:
                # raw=True: the callback gets the CDR bytes and decodes only what it reads (ros/cdr_decode.py)
                self.create_subscription(OccupancyGrid, names.vehicle_topic(vid, names.EVIDENCE_GRID),
                                         self.guard(vid, lambda m, v=vid: self._on_evidence(v, m)),
                                         evidence_qos(cfg.evidence_depth), raw=True)
            self.create_subscription(Odometry, names.vehicle_topic(vid, names.ODOM),
                                     self.guard(vid, lambda m, v=vid: self._on_odom(v, m)),
                                     state_qos(cfg.odom_depth), raw=True)
            self.create_subscription(TimeReference, names.vehicle_topic(vid, names.TIME_REFERENCE),
                                     self.guard(vid, lambda m, v=vid: self.core.add_time_reference(
                                         *time_reference_to_ns(m), vehicle_id=v)),
                                     state_qos(cfg.odom_depth))
            if cfg.dynamic is not None and vid in self.received:
                self.create_subscription(PointCloud2, names.vehicle_topic(vid, names.RADAR_TARGETS),
                                         self.guard(vid, lambda m, v=vid: self._on_radar(v, m)),
                                         evidence_qos(cfg.evidence_depth), raw=True)
        if cfg.time_reference_topic:
            self.create_subscription(TimeReference, cfg.time_reference_topic,
                                     self.guard('time_reference', lambda m: self.core.add_time_reference(
                                         *time_reference_to_ns(m))), state_qos())
        self.publish_timer = self.create_guarded_timer(cfg.publish_period_s, 'publish',
                                                       lambda: self._publish(self.now_ns()))
        self.publish_check_timer = self.create_guarded_timer(cfg.publish_check_period_s, 'publish',
                                                             self._on_publish_check)
        self.publish_check_timer.cancel()       # armed only while evidence is held: _arm_publish_check
        self.coreg_timer = (self.create_guarded_timer(cfg.coreg_period_s, 'coregistration', self._on_coregistration)
                            if cfg.coreg_enabled else None)
        self.discovery_timer = self.create_guarded_timer(cfg.discovery_period_s, 'discovery', self._on_discovery)
        self.start_diagnostics(cfg.diagnostics_period_s, NODE_NAME, self.get_fully_qualified_name())
        spec = cfg.fusion.spec
        output = cfg.output_topic if self.shard is None else f'shard deltas on {names.shard_delta(self.shard.index)}'
        self.get_logger().info(
            f'fusing {list(fused)} into {output}: {cfg.window_mode.value} window '
            f'{spec.size_x:g}x{spec.size_y:g} m at {spec.resolution:g} m in {cfg.frame_id!r}, '
            f'co-registration {"on" if cfg.coreg_enabled else "off"}')

    # ------------------------------------------------------------- helpers --

    def now_ns(self) -> int:
        """Common time now, ns: the node clock (sim time when use_sim_time is set), mapped through
        ``time_reference_topic`` when one is configured and has been heard."""
        return self.core.common_time(int(self.get_clock().now().nanoseconds))

    def _wrong_frame(self, vid: str, frame_id: str, what: str, cause: InputDrop) -> bool:
        if frame_id == self.cfg.frame_id:
            return False
        self.drop(vid, cause, f'{what} in frame {frame_id!r}: expected the fusion frame {self.cfg.frame_id!r}')
        return True

    # ----------------------------------------------------------- callbacks --

    def _on_odom(self, vid: str, raw: Odometry | bytes) -> None:
        try:
            msg = as_odometry(raw)              # bytes live, a message object from the lock-step runner
            if self._wrong_frame(vid, msg.header.frame_id, 'odometry', InputDrop.FRAME):
                return
            cov_xy = np.array(msg.pose.covariance, dtype=np.float64).reshape(6, 6)[:2, :2]
            cov_ok = covariance_is_psd(cov_xy)
            if not cov_ok:
                msg.pose.covariance = [0.0] * 36      # the pose itself is still good
            pose = odometry_to_pose(msg)
        except MessageFormatError as exc:
            self.drop(vid, InputDrop.MALFORMED_ODOM, str(exc))
            return
        if not cov_ok:
            self.drop(vid, InputDrop.COVARIANCE,
                      f'odometry xy covariance {cov_xy.ravel().tolist()} is not finite and positive '
                      f'semi-definite: keeping the pose and the last good covariance')
        self.core.add_odometry(vid, pose.position, pose.quat_wxyz, msg.twist.twist.linear.x,
                               cov_xy if cov_ok else None, pose.stamp_ns, self.now_ns())

    def _on_evidence(self, vid: str, raw: OccupancyGrid | bytes) -> None:
        try:
            self._fuse_evidence(vid, raw)
        finally:
            self._arm_publish_check()

    def _fuse_evidence(self, vid: str, raw: OccupancyGrid | bytes) -> None:
        self.received[vid] += 1
        msg = as_occupancy_grid(raw)            # bytes live, a message object from the lock-step runner
        if self._wrong_frame(vid, msg.header.frame_id, 'evidence grid', InputDrop.FRAME):
            return
        spec, cells = grid_from_msg(msg)        # a MessageFormatError: the guard counts it malformed
        logodds, known = percent_to_logodds(cells)
        now = self.now_ns()
        t0 = time.perf_counter()
        add = self.shard.add if self.shard is not None else self.core.add
        result = add(vid, spec, logodds, known, stamp_to_ns(msg.header.stamp), now)
        self.integrate_ms.add(1e3 * (time.perf_counter() - t0))
        if result.publish:
            self._publish(now)
        elif not result.accepted and result.cause is not None:
            self.drop(vid, result.cause, result.detail)

    def _on_radar(self, vid: str, raw: PointCloud2 | bytes) -> None:
        try:
            msg = as_point_cloud2(raw)          # bytes live, a message object from the lock-step runner
            if self._wrong_frame(vid, msg.header.frame_id, 'radar targets', InputDrop.MALFORMED_RADAR):
                return
            points, _ = cloud_to_array(msg, required=('x', 'y', 'velocity'))
        except MessageFormatError as exc:
            self.drop(vid, InputDrop.MALFORMED_RADAR, str(exc))
            return
        xyv = np.stack([points['x'], points['y'], points['velocity']], axis=1)
        self.core.add_radar(vid, stamp_to_ns(msg.header.stamp), xyv)

    def _on_publish_check(self) -> None:
        """Publish held evidence once its rate limit or deadline has passed (the timer runs only while
        evidence is held)."""
        if not self.core.publish_holding:
            return
        now = self.now_ns()
        if self.core.publish_due(now):
            self._publish(now)

    def _arm_publish_check(self) -> None:
        """Run the publish check timer while evidence is held, cancel it while none is.

        Evidence becomes held in ``core.add`` and stops being held in ``core.publish``, both called here
        only, so every tick of a cancelled timer would have found nothing held and done nothing: 100
        wake-ups a second saved, at about 0.1 ms of CPU each. A reset timer ticks one period after the
        reset; the lock-step runner keeps a cancelled timer on its phase and skips its ticks.
        """
        timer = self.publish_check_timer
        if self.core.publish_holding:
            if timer.is_canceled():
                timer.reset()
        elif not timer.is_canceled():
            timer.cancel()

    def _publish(self, now: int) -> None:
        """One fusion cycle at common time ``now``: the core's grid (a shard: its delta) out, latencies recorded."""
        try:
            self._publish_now(now)
        finally:
            self._arm_publish_check()

    def _publish_now(self, now: int) -> None:
        t0 = time.perf_counter()
        if self.shard is not None:
            delta = self.shard.take(now)
            self.delta_pub.publish(delta_to_msg(delta))
            latencies = (now - delta.evidence_stamps_ns) / 1e6
        else:
            out = self.core.publish(now)
            # the CDR bytes: no message object, no conversion to C, no rmw serialization
            self.grid_pub.publish(grid_to_cdr(out.spec, out.cells, out.stamp_ns, self.cfg.frame_id))
            latencies = out.latencies_ms
        for ms in latencies:
            self.latency.add(float(ms))
        self.publish_rate.tick(now)
        self.published += 1
        self.cycle_ms.add(1e3 * (time.perf_counter() - t0))

    def _on_coregistration(self) -> None:
        t0 = time.perf_counter()
        if self.core.coregister(self.now_ns()):
            self.coreg_ms.add(1e3 * (time.perf_counter() - t0))

    def _on_discovery(self) -> None:
        for name, _types in self.get_topic_names_and_types():
            m = _EVIDENCE_TOPIC.match(name)
            if m is None or m.group(1) in self.core.vehicles or m.group(1) in self.ignored:
                continue
            self.ignored.add(m.group(1))
            self.get_logger().warning(
                f'evidence topic {name} of vehicle {m.group(1)!r} ignored: not in vehicles {list(self.core.vehicles)}')

    # --------------------------------------------------------- diagnostics --

    def node_values(self, now_ns: int) -> dict[str, object]:
        """The node-level status values (the scaffold's drops.* follow).

        publish_rate_hz : grids published per second (node clock); published : count;
        grid.*, dynamic.* : :meth:`CooperativeFusion.grid_values`; latency_ms.* : sensor stamp -> publish,
        common time; cycle_ms.*, integrate_ms.*, coreg_ms.* : wall time per publish cycle / evidence message /
        co-registration round; ignored_vehicles.count / .ids : unconfigured evidence publishers.
        """
        values: dict[str, object] = {'publish_rate_hz': self.publish_rate.rate_hz(now_ns),
                                     'published': self.published, **self.core.grid_values(now_ns)}
        values.update(self.latency.as_values('latency_ms.'))
        values.update(self.cycle_ms.as_values('cycle_ms.'))
        values.update(self.integrate_ms.as_values('integrate_ms.'))
        values.update(self.coreg_ms.as_values('coreg_ms.'))
        values['ignored_vehicles.count'] = len(self.ignored)
        values['ignored_vehicles.ids'] = ','.join(sorted(self.ignored))
        return values

    def vehicle_values(self, vid: str, now_ns: int) -> tuple[Level, str, dict[str, object]]:
        """Level, message and values of one vehicle's status: the core's
        (:meth:`CooperativeFusion.vehicle_report`), received, and its drops.<cause> (every cause it can
        have, 0 when none) and drops.total."""
        report = self.core.vehicle_report(vid, now_ns)
        prefix = f'{vid}.'
        counts = {k[len(prefix):]: n for k, n in self.drops.counts.items() if k.startswith(prefix)}
        values = {**report.values, 'received': self.received[vid]}
        for cause in sorted(set(VEHICLE_CAUSES) | set(counts)):
            values[f'drops.{cause}'] = counts.get(cause, 0)
        values['drops.total'] = sum(counts.values())
        return _LEVEL[report.health], report.message, values

    def diagnostics_statuses(self) -> list[DiagnosticStatus]:
        """The node's status, then one per configured vehicle (``fusion_node: <v>``)."""
        now = self.now_ns()
        statuses = []
        dropped = []
        for vid in self.received:
            level, message, values = self.vehicle_values(vid, now)
            if values['state'] == 'dropped':
                dropped.append(vid)
            statuses.append(make_status(f'{NODE_NAME}: {vid}', level, message, values, hardware_id=vid))
        if dropped:
            level, message = Level.WARN, f'vehicles dropped: {", ".join(dropped)}'
        elif self.published == 0:
            level, message = Level.STALE, 'no grid published yet'
        else:
            level, message = Level.OK, f'{self.published} grids published'
        if self.ignored:
            message += f'; ignoring unconfigured {", ".join(sorted(self.ignored))}'
        values = {**self.node_values(now), **self.drops.as_values('drops.')}
        statuses.insert(0, make_status(NODE_NAME, level, message, values,
                                       hardware_id=self.get_fully_qualified_name()))
        return statuses


def create_node(**kwargs: Any) -> FusionNode:
    """A FusionNode for in-process composition; ``kwargs`` go to ``rclpy.node.Node``."""
    return FusionNode(**kwargs)


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(FusionNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
