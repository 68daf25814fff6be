"""Advisory follower: one vehicle's longitudinal command from its predecessor, the twin's warnings and advisory.

Subscribes ``/<v>/odom``, the predecessor's ``/<pred>/odom``, ``/twin/warnings``
(statuses named ``<v>``), ``/<v>/twin/advisory`` and ``/<v>/evidence_grid`` (its own
perception, in every mode); publishes ``/<v>/cooperative/cmd`` (geometry_msgs/TwistStamped,
frame ``<v>/base_link``: ``twist.linear.x`` target speed m/s, ``twist.linear.z`` the
acceleration it implies m/s^2, see ``ros/command.py``) on a timer of
``follower.command_period_s`` (node clock: sim time with ``use_sim_time``), and its
health in ``/diagnostics`` (status ``advisory_follower: <v>``). The work is
:class:`~..core.vehicle.follower_core.FollowerCore`'s. No own odometry yet (or
older than ``odom_max_age_s``): no command. Bad input is a counted drop
(``drops.<source>.<cause>``, sources ``odom``, ``predecessor``, ``warnings``,
``advisory``, ``evidence``, ``tick``), never fatal.

Run: ``advisory_follower --ros-args -r __ns:=/v2 --params-file config/advisory_follower.yaml
-p platoon_file:=config/platoon.yaml -p follower.mode:=cooperative+advisory``.
"""
from __future__ import annotations

import sys
from typing import Any, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path

from ..core.drops import Cause
from ..core.errors import ConfigError
from ..core.platoon import OdomSample
from ..core.platoon_config import load_platoon_config
from ..core.vehicle.follower import FollowerConfig, FollowerMode
from ..core.vehicle.follower_core import EgoObstacleConfig, FollowerCore, FollowerSetup, bodies_from_platoon
from ..ros.command import command_to_twist, warnings_for
from ..ros.diagnostics import Level
from ..ros.grid import grid_from_msg
from ..ros.markers import path_to_advisory
from ..ros.names import (ADVISORY, COOPERATIVE_CMD, EVIDENCE_GRID, MAP_FRAME, ODOM, WARNINGS, vehicle_frame,
                         vehicle_topic)
from ..ros.node import BaseNode, Param, spin_node
from ..ros.odometry import odometry_to_pose
from ..ros.qos import command_qos, evidence_qos, state_qos
from ..ros.time import stamp_to_ns

NODE_NAME = 'advisory_follower'
_F = FollowerConfig()
_E = EgoObstacleConfig()

#: Every parameter (config/advisory_follower.yaml documents each).
PARAMS: tuple[Param, ...] = (
    Param('vehicle_id', '', "vehicle id (v1, ...); '' = the node's namespace without its slash"),
    Param('platoon_file', '', "platoon config (config/platoon.yaml) giving this vehicle's predecessor and the "
          "bodies; '' = predecessor_id, body.* and predecessor_body.*"),
    Param('predecessor_id', '', "the vehicle ahead in the platoon; '' = from platoon_file, or none (the leader)"),
    Param('body.length_m', 4.5, 'own length, metres (without platoon_file)', 0.1, 100.0),
    Param('body.rear_overhang_m', 1.0, 'own rear bumper to base_link, metres (without platoon_file)', 0.0, 100.0),
    Param('predecessor_body.length_m', 4.5, "predecessor's length, metres (without platoon_file)", 0.1, 100.0),
    Param('predecessor_body.rear_overhang_m', 1.0, "predecessor's rear bumper to base_link, metres "
          '(without platoon_file)', 0.0, 100.0),
    Param('odom_max_age_s', 0.5, 'own odometry older than this (by arrival): no command, seconds', 0.01, 60.0),
    Param('follower.mode', _F.mode.value, "what the command acts on: 'ego' (predecessor + own evidence grid), "
          "'cooperative' (+ the twin's warnings), 'cooperative+advisory' (+ the twin's advised speed profile)"),
    Param('follower.cruise_speed_mps', _F.cruise_speed_mps, 'set speed on a free road, m/s', 0.1, 70.0),
    Param('follower.time_gap_s', _F.time_gap_s, 'IIDM time gap toward obstacles (warnings, own perception), '
          'seconds', 0.1, 5.0),
    Param('follower.platoon_time_gap_s', _F.platoon_time_gap_s, 'CACC time gap behind the predecessor (its '
          'odometry over V2V): steady gap = standstill_gap_m + speed * this, seconds', 0.1, 5.0),
    Param('follower.standstill_gap_m', _F.standstill_gap_m, 'CACC set gap at zero speed behind the '
          'predecessor; the gap held at standstill is max(this, obstacle_gap_m), metres', 0.0, 50.0),
    Param('follower.cacc_gap_gain_per_s2', _F.cacc_gap_gain_per_s2, 'CACC gain on the gap error, 1/s^2',
          0.01, 10.0),
    Param('follower.cacc_speed_gain_per_s', _F.cacc_speed_gain_per_s, 'CACC gain on the speed difference to '
          'the predecessor, 1/s', 0.01, 10.0),
    Param('follower.cacc_accel_feedforward', _F.cacc_accel_feedforward, "CACC feed-forward of the "
          "predecessor's acceleration (0: none, 1: all)", 0.0, 1.0),
    Param('follower.cacc_max_gap_error_m', _F.cacc_max_gap_error_m, 'CACC: a larger gap error closes no '
          'faster than this one, metres', 0.1, 100.0),
    Param('follower.obstacle_gap_m', _F.obstacle_gap_m, 'stop this far behind an obstacle or a stopped '
          'predecessor (the twin\'s 5 m safe gap plus 0.5 m for the error of a measured gap), metres', 0.0, 50.0),
    Param('follower.max_accel_mps2', _F.max_accel_mps2, 'IIDM maximum acceleration, m/s^2', 0.1, 10.0),
    Param('follower.comfort_decel_mps2', _F.comfort_decel_mps2, 'comfortable deceleration (IIDM b; braking '
          'beyond it only when the stop needs it), m/s^2', 0.1, 20.0),
    Param('follower.max_decel_mps2', _F.max_decel_mps2, 'braking limit: no command asks for more, m/s^2',
          0.1, 20.0),
    Param('follower.delta', _F.delta, 'IIDM acceleration exponent', 0.1, 20.0),
    Param('follower.advisory_max_age_s', _F.advisory_max_age_s, 'an advisory older than this (its stamp) is '
          'stale and ignored: ACC only, seconds', 0.01, 60.0),
    Param('follower.warning_max_age_s', _F.warning_max_age_s, 'a warning older than this is stale and '
          'ignored, seconds', 0.01, 60.0),
    Param('follower.predecessor_max_age_s', _F.predecessor_max_age_s, "predecessor odometry older than this "
          "(by arrival) is ignored, seconds", 0.01, 60.0),
    Param('follower.command_period_s', _F.command_period_s, 'command period (timer, node clock); target speed '
          '= speed + acceleration * period, seconds', 0.01, 1.0),
    Param('ego.half_width_m', _E.half_width_m, 'own perception (every mode): lane corridor half width, metres',
          0.1, 10.0),
    Param('ego.max_range_m', _E.max_range_m, 'own perception: how far ahead to look in the own evidence grid, metres',
          1.0, 500.0),
    Param('ego.occupied_percent', _E.occupied_percent, 'own perception: an evidence cell at or above '
          'this is occupied, percent', 1, 100),
    Param('ego.min_cells', _E.min_cells, 'own perception: occupied cells within 1 m along the road that '
          'make an obstacle', 1, 1000),
    Param('ego.predecessor_margin_m', _E.predecessor_margin_m, "own perception: the corridor ends this far short of "
          "the predecessor's rear bumper (beyond is the predecessor's to stop for), metres", 0.0, 20.0),
    Param('ego.min_curve_speed_mps', _E.min_curve_speed_mps, 'own perception: below this speed the corridor is '
          'straight; above, it bends with yaw rate / speed, m/s', 0.1, 70.0),
    Param('ego.max_curvature_per_m', _E.max_curvature_per_m, "own perception: largest curvature of the corridor, "
          "1/m", 0.0, 1.0),
    Param('ego.max_age_s', _E.max_age_s, 'own perception: the obstacle of an evidence grid older than '
          'this is forgotten, seconds', 0.01, 60.0),
    Param('frames.map', MAP_FRAME, 'shared frame of odometry, advisories and evidence'),
    Param('frames.base_link', '', "frame of the command; '' = <vehicle_id>/base_link"),
    Param('topics.odom', '', "own odometry in; '' = /<v>/odom"),
    Param('topics.predecessor_odom', '', "predecessor's odometry in; '' = /<predecessor>/odom"),
    Param('topics.warnings', WARNINGS, "the twin's warnings in (diagnostic_msgs/DiagnosticArray)"),
    Param('topics.advisory', '', "the twin's advisory in (nav_msgs/Path); '' = /<v>/twin/advisory"),
    Param('topics.evidence_grid', '', "own evidence in (own perception, every mode); '' = /<v>/evidence_grid"),
    Param('topics.cmd', '', "command out (geometry_msgs/TwistStamped); '' = /<v>/cooperative/cmd"),
    Param('qos.cmd_depth', 2, 'command publisher queue depth', 1, 100),
    Param('diagnostics.period_s', 1.0, 'period of /diagnostics, seconds', 0.01, 3600.0),
)


class AdvisoryFollowerNode(BaseNode):
    """See the module docstring. ``kwargs`` go to ``rclpy.node.Node`` (context, namespace,
    parameter_overrides, ...), so a bringup can compose it."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        values = self.declare_params(PARAMS)
        self.vehicle_id = v = self.vehicle_id_from(values['vehicle_id'])
        follower = self.config(FollowerConfig, values, 'follower.')
        ego = self.config(EgoObstacleConfig, values, 'ego.')
        self.setup = setup = FollowerSetup(v, follower=follower, ego=ego, odom_max_age_s=values['odom_max_age_s'],
                                           **self._bodies(values))
        self.core = FollowerCore(setup)
        self.map_frame = values['frames.map']
        self.base_frame = values['frames.base_link'] or vehicle_frame(v, 'base_link')
        pred = setup.predecessor_id

        def topic(key: str, default: str) -> str:
            return values[key] or default

        cmd_topic = topic('topics.cmd', vehicle_topic(v, COOPERATIVE_CMD))
        self.cmd_pub = self.create_publisher(TwistStamped, cmd_topic, command_qos(values['qos.cmd_depth']))
        sq = state_qos(10)
        self.create_subscription(Odometry, topic('topics.odom', vehicle_topic(v, ODOM)),
                                 self.guard('odom', self._on_odom), sq)
        if pred is not None:
            self.create_subscription(Odometry, topic('topics.predecessor_odom', vehicle_topic(pred, ODOM)),
                                     self.guard('predecessor', self._on_pred_odom), sq)
        if follower.mode is not FollowerMode.EGO:
            self.create_subscription(DiagnosticArray, values['topics.warnings'],
                                     self.guard('warnings', self._on_warnings), evidence_qos(10))
        if follower.mode is FollowerMode.ADVISORY:
            self.create_subscription(Path, topic('topics.advisory', vehicle_topic(v, ADVISORY)),
                                     self.guard('advisory', self._on_advisory), evidence_qos(10))
        self.create_subscription(OccupancyGrid, topic('topics.evidence_grid', vehicle_topic(v, EVIDENCE_GRID)),
                                 self.guard('evidence', self._on_evidence), evidence_qos(5))
        self.timer = self.create_guarded_timer(follower.command_period_s, 'tick', self._tick)
        self.start_diagnostics(values['diagnostics.period_s'], f'{NODE_NAME}: {v}', hardware_id=v)
        self.get_logger().info(f'advisory follower {v}: mode {follower.mode.value}, predecessor {pred or "none"}, '
                               f'command {cmd_topic} every {follower.command_period_s} s')

    def _bodies(self, values: dict[str, Any]) -> dict[str, Any]:
        """Predecessor and bodies: from platoon_file when given (an explicit predecessor_id must agree)."""
        given = values['predecessor_id'] or None
        path = values['platoon_file']
        if path:
            out = bodies_from_platoon(load_platoon_config(path).platoon, self.vehicle_id)
            if given is not None and given != out['predecessor_id']:
                raise ConfigError(f"parameter 'predecessor_id' = {given!r} disagrees with platoon_file {path}, "
                                  f"which gives {out['predecessor_id']!r}: give one of them")
            return out
        return {'predecessor_id': given,
                'front_m': values['body.length_m'] - values['body.rear_overhang_m'],
                'predecessor_rear_m': values['predecessor_body.rear_overhang_m'],
                'predecessor_length_m': values['predecessor_body.length_m']}

    # ----------------------------------------------------------- callbacks --

    def _odom_sample(self, source: str, msg: Odometry) -> OdomSample | None:
        if msg.header.frame_id != self.map_frame:
            self.drop(source, Cause.FRAME, f'{source} frame_id {msg.header.frame_id!r}, expected {self.map_frame!r}')
            return None
        return OdomSample.from_pose(odometry_to_pose(msg))

    def _on_odom(self, msg: Odometry) -> None:
        s = self._odom_sample('odom', msg)
        if s is not None:
            self.core.on_odometry(self.now_ns(), s.x, s.y, s.yaw, s.speed,
                                  float(msg.twist.twist.angular.z))

    def _on_pred_odom(self, msg: Odometry) -> None:
        s = self._odom_sample('predecessor', msg)
        if s is not None:
            self.core.on_predecessor_odometry(self.now_ns(), s.x, s.y, s.yaw, s.speed)

    def _on_warnings(self, msg: DiagnosticArray) -> None:
        self.core.on_warnings(self.now_ns(), *warnings_for(msg, self.vehicle_id))

    def _on_advisory(self, msg: Path) -> None:
        if msg.header.frame_id != self.map_frame:
            self.drop('advisory', Cause.FRAME, f'advisory frame_id {msg.header.frame_id!r}, '
                                               f'expected {self.map_frame!r}')
            return
        self.core.on_advisory(self.now_ns(), *path_to_advisory(msg))

    def _on_evidence(self, msg: OccupancyGrid) -> None:
        if msg.header.frame_id != self.map_frame:
            self.drop('evidence', Cause.FRAME, f'evidence frame_id {msg.header.frame_id!r}, '
                                               f'expected {self.map_frame!r}')
            return
        spec, cells = grid_from_msg(msg)
        self.core.on_evidence(stamp_to_ns(msg.header.stamp), spec, cells)

    def _tick(self) -> None:
        cmd, drops = self.core.step(self.now_ns())
        self.drop_all(drops)
        if cmd is not None:
            self.cmd_pub.publish(command_to_twist(cmd, self.base_frame))

    # --------------------------------------------------------- diagnostics --

    def diagnostics_values(self) -> dict[str, object]:
        """FollowerCore.health (mode, input ages, last command, limit); the scaffold adds drops.*."""
        return self.core.health(self.now_ns())

    def diagnostics_summary(self, new_drops: int) -> tuple[Level, str]:
        """STALE without own odometry; WARN while the predecessor's odometry or (not in ego mode) the twin's
        warnings are missing or stale, or inputs were dropped; else OK with the limiting input."""
        last = self.core.last
        now = self.now_ns()
        own = self.core.own
        f = self.setup.follower
        if own is None:
            return Level.STALE, 'no odometry yet: no command'
        if (now - own.received_ns) * 1e-9 > self.setup.odom_max_age_s:
            return Level.STALE, 'odometry stale: no command'
        if last is not None and last.stale:
            return Level.WARN, f'ignoring stale {", ".join(last.stale)}'
        twin = self.core.warning_stamp_ns
        if f.mode is not FollowerMode.EGO and (twin is None or (now - twin) * 1e-9 > f.warning_max_age_s):
            return Level.WARN, 'no warnings from the twin' + ('' if twin is None else
                                                               f' for {(now - twin) * 1e-9:.1f} s') + ': ACC only'
        if new_drops:
            return Level.WARN, f'{new_drops} input(s) dropped since the last report'
        if last is None:
            return Level.OK, 'no command yet'
        return Level.OK, f'{last.target_speed_mps:.1f} m/s, limited by {last.limit.value}'


def create_node(**kwargs: Any) -> AdvisoryFollowerNode:
    """An AdvisoryFollowerNode for in-process composition; ``kwargs`` go to ``rclpy.node.Node``."""
    return AdvisoryFollowerNode(**kwargs)


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(AdvisoryFollowerNode, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
