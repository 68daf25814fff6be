"""Edge digital twin node: mirror the common grid, track, predict, find conflicts, warn and advise the platoon.

Subscribes ``/cooperative/grid`` (latched) and per vehicle ``/<v>/odom``,
``/<v>/time_reference`` and ``/<v>/radar/targets``; publishes
``/twin/predicted_grid`` (one per output horizon, stamped grid stamp + horizon),
``/twin/warnings`` (every cycle; one status per conflict, name = vehicle id),
``/<v>/twin/advisory`` (base_link poses of each warned vehicle), ``/twin/markers``
and, on a timer, its health in ``/diagnostics`` (status ``twin_node``).
The work is :class:`~..core.twin.edge.EdgeTwin`'s; bad input is a counted drop
(``drops.<source>.<cause>``, sources ``grid``, ``odom``, ``time_reference``,
``radar``, ``cycle``: see ``ros/node.py``), logged, never fatal. The grid, odometry and radar targets are subscribed raw
(CDR bytes decoded by ``ros/cdr_decode.py``; message objects, as the lock-step runner hands them, too).

Run: ``twin_node --ros-args --params-file config/twin.yaml -p platoon_file:=config/platoon.yaml``
(add ``-p use_sim_time:=true`` on a bag replay; README, "Separate processes").
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from sensor_msgs.msg import PointCloud2, TimeReference
from visualization_msgs.msg import MarkerArray

from ..core.drops import Cause
from ..core.errors import SyncError
from ..core.platoon import OdomSample
from ..core.platoon_config import NodeKind
from ..core.twin.config import PARAMETERS, config_from_params
from ..core.twin.edge import CycleOutput, EdgeTwin, GridAction
from ..ros.cdr_decode import as_occupancy_grid, as_odometry, as_point_cloud2
from ..ros.diagnostics import LatencyStats, Level, RateMeter, make_array, make_status
from ..ros.grid import grid_from_msg, grid_to_cdr
from ..ros.markers import advisory_to_cdr, twin_markers
from ..ros.names import (ADVISORY, COMMON_GRID, MAP_FRAME, MARKERS, ODOM, PREDICTED_GRID, RADAR_TARGETS,
                         TIME_REFERENCE, WARNINGS, vehicle_topic)
from ..ros.node import BaseNode, spin_node
from ..ros.odometry import covariance_is_psd, odometry_to_pose
from ..ros.params import Param
from ..ros.pointcloud import cloud_to_array
from ..ros.qos import evidence_qos, latched_qos, state_qos
from ..ros.time import stamp_to_ns, time_reference_to_ns

NODE_NAME = 'twin_node'
#: Per-vehicle topics are templates in which ``{v}`` is replaced by the vehicle id.
_V = '{v}'

#: Every parameter of the node: the core table, then the frame and topic names (config/twin.yaml documents each).
PARAMS: tuple[Param, ...] = tuple(Param(*row) for row in PARAMETERS) + (
    Param('frames.map', MAP_FRAME, 'shared frame of every input and output'),
    Param('topics.grid', COMMON_GRID, 'common grid in (nav_msgs/OccupancyGrid, latched)'),
    Param('topics.odom', vehicle_topic(_V, ODOM), 'odometry in, per vehicle ({v} = vehicle id)'),
    Param('topics.time_reference', vehicle_topic(_V, TIME_REFERENCE),
          'vehicle clock -> common time pairs, per vehicle'),
    Param('topics.radar_targets', vehicle_topic(_V, RADAR_TARGETS), 'radar targets in map, per vehicle'),
    Param('topics.predicted_grid', PREDICTED_GRID, 'predicted grids out, one per horizon per cycle'),
    Param('topics.warnings', WARNINGS, 'conflicts out (diagnostic_msgs/DiagnosticArray), every cycle'),
    Param('topics.advisory', vehicle_topic(_V, ADVISORY), 'advised trajectory out (nav_msgs/Path), per warned vehicle'),
    Param('topics.markers', MARKERS, 'visualization_msgs/MarkerArray out'),
)


class TwinNode(BaseNode):
    """See the module docstring. ``kwargs`` go to ``rclpy.node.Node`` (context, namespace,
    parameter_overrides, cli_args, ...), so the in-process bringup can compose it."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        self.cfg = cfg = config_from_params(self.declare_params(PARAMS, platoon=NodeKind.TWIN))
        self.edge = EdgeTwin(cfg)
        self.grid_rate = RateMeter.for_reports(cfg.diagnostics_period_s)
        self.cycle_ms = LatencyStats()          # step + publishing
        self.last_cycle_ms = math.nan

        t, out_qos = cfg.topics, evidence_qos(cfg.output_depth)
        self.predicted_pub = self.create_publisher(OccupancyGrid, t.predicted_grid, out_qos)
        self.warnings_pub = self.create_publisher(DiagnosticArray, t.warnings, out_qos)
        self.markers_pub = self.create_publisher(MarkerArray, t.markers, out_qos)
        self.advisory_pubs = {v: self.create_publisher(Path, t.for_vehicle(t.advisory, v), out_qos)
                              for v in cfg.vehicles}
        # raw=True: the callback gets the CDR bytes and decodes only what it reads (ros/cdr_decode.py)
        self.create_subscription(OccupancyGrid, t.grid, self.guard('grid', self._on_grid), latched_qos(), raw=True)
        sq = state_qos(cfg.state_depth)
        for v in cfg.vehicles:
            self.create_subscription(Odometry, t.for_vehicle(t.odom, v), self.guard('odom', self._odom_cb(v)), sq,
                                     raw=True)
            self.create_subscription(TimeReference, t.for_vehicle(t.time_reference, v),
                                     self.guard('time_reference', self._time_ref_cb(v)), sq)
            if cfg.use_radar:
                self.create_subscription(PointCloud2, t.for_vehicle(t.radar_targets, v),
                                         self.guard('radar', self._radar_cb(v)), evidence_qos(cfg.state_depth),
                                         raw=True)
        self.start_diagnostics(cfg.diagnostics_period_s)
        p = cfg.twin.prediction
        self.get_logger().info(
            f'twin: platoon {list(cfg.vehicles)}, grid {t.grid}, horizon {p.horizon_s} s at {p.dt_s} s, '
            f'outputs {list(p.output_horizons_s)} s, at most {1e9 / cfg.min_cycle_period_ns:g} cycles/s')

    # ------------------------------------------------------------- helpers --

    def _frame_ok(self, source: str, frame_id: str) -> bool:
        if frame_id != self.cfg.map_frame:
            self.drop(source, Cause.FRAME, f'{source} frame_id {frame_id!r}, expected {self.cfg.map_frame!r}')
            return False
        return True

    # ----------------------------------------------------------- callbacks --

    def _odom_cb(self, vehicle_id: str) -> Callable[[Odometry | bytes], None]:
        def on_odom(raw: Odometry | bytes) -> None:
            msg = as_odometry(raw)
            if not self._frame_ok('odom', msg.header.frame_id):
                return
            pose = odometry_to_pose(msg)
            if not covariance_is_psd(pose.covariance):
                self.drop('odom', Cause.COVARIANCE, f'{vehicle_id} odometry pose covariance is not symmetric '
                                                    f'positive semi-definite')
                return
            self.edge.add_odometry(vehicle_id, OdomSample.from_pose(pose), self.now_ns())
        return on_odom

    def _time_ref_cb(self, vehicle_id: str) -> Callable[[TimeReference], None]:
        def on_time_reference(msg: TimeReference) -> None:
            self.edge.add_time_reference(vehicle_id, *time_reference_to_ns(msg))
        return on_time_reference

    def _radar_cb(self, vehicle_id: str) -> Callable[[PointCloud2 | bytes], None]:
        def on_radar(raw: PointCloud2 | bytes) -> None:
            msg = as_point_cloud2(raw)
            if not self._frame_ok('radar', msg.header.frame_id):
                return
            points, _ = cloud_to_array(msg, required=('x', 'y', 'velocity'))
            self.edge.add_radar(vehicle_id, stamp_to_ns(msg.header.stamp), points['x'], points['y'],
                                points['velocity'], self.now_ns())
        return on_radar

    def _on_grid(self, raw: OccupancyGrid | bytes) -> None:
        """Validate the grid (frame, format, stamp) before it touches any state; then mirror it and cycle."""
        now = self.now_ns()
        msg = as_occupancy_grid(raw)             # bytes live, a message object from the lock-step runner
        if not self._frame_ok('grid', msg.header.frame_id):
            return
        spec, view = grid_from_msg(msg)          # MessageFormatError: counted as grid.malformed by the guard
        action, back_ns = self.edge.on_grid(spec, view, stamp_to_ns(msg.header.stamp), now)
        if back_ns is not None:
            self.get_logger().info(f'grid stamp went back {back_ns / 1e9:.1f} s for {self.cfg.restart_grids} '
                                   f'grids: restarting the tracker')
        self.grid_rate.tick(now)
        if action is GridAction.CYCLE:
            self._cycle(now)

    def _cycle(self, now_ns: int) -> None:
        t0 = time.perf_counter()
        try:
            out = self.edge.cycle(now_ns)
        except SyncError as exc:
            self.drop('cycle', Cause.STAMP, str(exc))
            return
        self._publish(out)
        self.last_cycle_ms = 1e3 * (time.perf_counter() - t0)
        self.cycle_ms.add(self.last_cycle_ms)

    def _publish(self, out: CycleOutput) -> None:
        """Predicted grids, warnings (always), advisories of warned vehicles, markers (while subscribed).

        Grids and advisories go out as CDR bytes (no message objects, no conversion to C); the lock-step
        runner wraps them as a SerializedMessage for its in-process subscribers and recorder."""
        cfg, stamp, spec = self.cfg, out.result.stamp_ns, out.spec
        for g in out.predicted:
            self.predicted_pub.publish(grid_to_cdr(spec, g.percent, g.target_ns, cfg.map_frame))
        self.warnings_pub.publish(make_array(stamp, [
            make_status(w.vehicle_id, Level(int(w.level)), w.message, w.values, hardware_id=w.vehicle_id)
            for w in out.warnings]))
        for v, adv in out.advisories.items():
            pub = self.advisory_pubs.get(v)
            if pub is not None:
                pub.publish(advisory_to_cdr(adv, stamp, cfg.map_frame))
        # markers are for a viewer (RViz) or a recorder: built only while one subscribes (~4-8 ms a cycle)
        if cfg.publish_markers and self.markers_pub.get_subscription_count() > 0:
            r = out.result
            self.markers_pub.publish(twin_markers(r.tracks, r.rollout, r.conflicts,
                                                  cfg.twin.prediction.output_horizons_s, stamp, cfg.map_frame))

    # --------------------------------------------------------- diagnostics --

    def diagnostics_values(self) -> dict[str, object]:
        """The node's health (EdgeTwin.health with the grid rate and cycle_ms.*); the scaffold adds drops.*."""
        now = self.now_ns()
        return self.edge.health(now, self.grid_rate.rate_hz(now), self.cycle_ms.as_values('cycle_ms.'))

    def diagnostics_summary(self, new_drops: int) -> tuple[Level, str]:
        """STALE before the first grid, WARN while inputs are degraded or dropped, else OK."""
        degraded = self.edge.degraded(self.now_ns())
        if self.edge.mirror.received == 0:
            return Level.STALE, 'no grid yet'
        if degraded:
            return Level.WARN, 'degraded: ' + '; '.join(degraded)
        if new_drops:
            return Level.WARN, f'{new_drops} input(s) dropped since the last report'
        r = self.edge.last_result
        return Level.OK, f'{self.edge.cycles} cycles, {0 if r is None else len(r.tracks)} tracks'


def create_node(**kwargs: Any) -> TwinNode:
    """A TwinNode for in-process composition; ``kwargs`` go to ``rclpy.node.Node``."""
    return TwinNode(**kwargs)


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(TwinNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
