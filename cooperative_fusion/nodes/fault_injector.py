"""Fault injector: a relay between one vehicle and everyone else, applying ``config/faults/*.yaml``.

One node per vehicle, in ``/<v>``. It reads the vehicle's true streams under ``raw/``
(``raw/evidence_grid``, ``raw/radar/targets``, ``raw/odom``, ``raw/time_reference``) and
publishes them under DESIGN.md's names as the network makes them (delay, loss, reordering,
duplication, clock skew: :class:`~cooperative_fusion.core.faults.FaultModel`); odometry also
goes, pose-biased but at once, to ``onboard/odom`` for the vehicle node itself
(:func:`vehicle_parameters` and :func:`source_renames` give the wiring). Held messages are
released by a timer on the node clock, by due time, then arrival: nothing sleeps.

/diagnostics (``fault_injector: <v>``), per stream ``<s>``: ``<s>.in``, ``<s>.out``,
``<s>.lost``, ``<s>.silenced``, ``<s>.duplicated``, ``<s>.reordered``, ``<s>.delayed_mean_ms``;
``pending``, ``silent`` and the scaffold's ``drops.*`` (source: the stream's parameter suffix).

Run: ``fault_injector --ros-args -r __ns:=/v1 -p faults_file:=config/faults/lossy.yaml``.
"""
from __future__ import annotations

import heapq
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from nav_msgs.msg import OccupancyGrid, Odometry
from sensor_msgs.msg import PointCloud2, TimeReference

from ..core.errors import ConfigError
from ..core.faults import FaultModel, FaultsConfig, FaultSpec, apply_pose_bias, load_faults
from ..ros import names
from ..ros.diagnostics import Level
from ..ros.node import BaseNode, spin_node
from ..ros.params import Param
from ..ros.qos import evidence_qos, state_qos
from ..ros.time import ns_to_stamp, stamp_to_ns

NODE_NAME = 'fault_injector'
_NS_PER_MS = 1_000_000

RAW = 'raw/'
ONBOARD_ODOM = 'onboard/odom'
#: Stream name (core.faults.STREAMS) -> (message class, parameter suffix, output topic relative to /<v>);
#: the input is the output's name under raw/.
_STREAMS: dict[str, tuple[type, str, str]] = {
    'evidence_grid': (OccupancyGrid, 'evidence_grid', names.EVIDENCE_GRID),
    'radar/targets': (PointCloud2, 'radar_targets', names.RADAR_TARGETS),
    'odom': (Odometry, 'odom', names.ODOM),
    'time_reference': (TimeReference, 'time_reference', names.TIME_REFERENCE),
}

PARAMS: tuple[Param, ...] = (
    Param('vehicle_id', '', 'vehicle id (v1, ...); empty = the node namespace without its slash'),
    Param('faults_file', '', 'faults YAML (config/faults/*.yaml); required'),
    Param('seed', -1, 'seed of the fault model; -1 = the file\'s seed', -1, 2**62),
    Param('origin_ns', 0, 'common time (ns) of the run start, the zero of silence windows and skew drift; '
          '0 = the node clock at the first message', 0, 2**63 - 1),
    Param('release_period_s', 0.005, 'period of the timer releasing delayed messages, seconds', 0.001, 1.0),
    Param('relay_state', True, 'relay odometry and time references too (false: only evidence and radar targets, '
          'for sources that cannot be renamed to raw/)'),
    Param('diagnostics.period_s', 1.0, 'period of /diagnostics, seconds', 0.01, 3600.0),
    *(Param(f'topics.raw_{suffix}', '', f'true {name} in; empty = /<vehicle_id>/{RAW}{out}')
      for name, (_, suffix, out) in _STREAMS.items()),
    *(Param(f'topics.{suffix}', '', f'{name} out, with faults; empty = /<vehicle_id>/{out}')
      for name, (_, suffix, out) in _STREAMS.items()),
    Param('topics.onboard_odom', '', 'biased odometry for the vehicle node, no network faults; '
          'empty = /<vehicle_id>/onboard/odom'),
)


def vehicle_parameters(vehicle_id: str) -> tuple[tuple[str, str], ...]:
    """The vehicle node's topic parameters when an injector relays its streams (``-p name:=value`` pairs)."""
    def topic(name: str) -> str:
        return names.vehicle_topic(vehicle_id, name)
    return (('topics.evidence_grid', topic(RAW + names.EVIDENCE_GRID)),
            ('topics.radar_targets', topic(RAW + names.RADAR_TARGETS)),
            ('topics.odom', topic(ONBOARD_ODOM)), ('topics.time_reference', topic(RAW + names.TIME_REFERENCE)))


def source_renames(vehicle_id: str) -> dict[str, str]:
    """Source topic -> topic it must be published on when an injector relays ``vehicle_id``'s state."""
    return _to_raw(vehicle_id, (names.ODOM, names.TIME_REFERENCE))


def _to_raw(vehicle_id: str, relative: Sequence[str]) -> dict[str, str]:
    """``/<v>/<name>`` -> ``/<v>/raw/<name>`` for each relative name."""
    return {names.vehicle_topic(vehicle_id, n): names.vehicle_topic(vehicle_id, RAW + n) for n in relative}


@dataclass
class _StreamStats:
    n_in: int = 0
    out: int = 0
    lost: int = 0
    silenced: int = 0
    duplicated: int = 0
    reordered: int = 0
    delay_sum_ns: int = 0
    last_arrival_out: int = -1   # arrival index of the latest-arrived message published so far

    def values(self, prefix: str) -> dict[str, object]:
        mean = self.delay_sum_ns / self.out / _NS_PER_MS if self.out else math.nan
        return {f'{prefix}.in': self.n_in, f'{prefix}.out': self.out, f'{prefix}.lost': self.lost,
                f'{prefix}.silenced': self.silenced, f'{prefix}.duplicated': self.duplicated,
                f'{prefix}.reordered': self.reordered, f'{prefix}.delayed_mean_ms': mean}


class FaultInjector(BaseNode):
    """See the module docstring. ``kwargs`` go to ``rclpy.node.Node`` (context, cli_args,
    parameter_overrides, namespace, ...)."""

    default_name = NODE_NAME

    def _setup(self) -> None:
        values = self.declare_params(PARAMS)
        vid = self.vehicle_id_from(values['vehicle_id'])
        if not values['faults_file']:
            raise ConfigError('faults_file is empty: expected a faults YAML such as config/faults/lossy.yaml')
        self.vehicle_id = vid
        self.faults: FaultsConfig = load_faults(Path(values['faults_file']))
        spec = self.faults.for_vehicle(vid)
        if spec is None:
            self.get_logger().warning(f'{values["faults_file"]} names no faults for {vid}: relaying unimpaired')
            spec = FaultSpec()
        seed = self.faults.seed if values['seed'] < 0 else int(values['seed'])
        self.model = FaultModel(spec, seed, vid, int(values['origin_ns']) or None)
        self.stats: dict[str, _StreamStats] = {}
        self._pending: list[tuple[int, int, str, Any, int, int]] = []   # (due, seq, stream, msg, arrival_ns, index)
        self._seq = 0
        self.pubs: dict[str, Any] = {}
        streams = [s for s in _STREAMS if values['relay_state'] or s not in ('odom', 'time_reference')]
        for stream in streams:
            cls, suffix, out = _STREAMS[stream]
            qos = state_qos() if stream in ('odom', 'time_reference') else evidence_qos()
            self.stats[stream] = _StreamStats()
            self.pubs[stream] = self.create_publisher(cls, values[f'topics.{suffix}'] or names.vehicle_topic(vid, out),
                                                      qos)
            self.create_subscription(cls, values[f'topics.raw_{suffix}'] or names.vehicle_topic(vid, RAW + out),
                                     self.guard(suffix, lambda m, s=stream: self._on_message(s, m)), qos)
        onboard = values['topics.onboard_odom'] or names.vehicle_topic(vid, ONBOARD_ODOM)
        self.onboard_pub = self.create_publisher(Odometry, onboard, state_qos()) if 'odom' in streams else None
        self.release_timer = self.create_guarded_timer(values['release_period_s'], 'release', self._on_timer)
        self.start_diagnostics(values['diagnostics.period_s'], f'{NODE_NAME}: {vid}', hardware_id=vid)
        self.get_logger().info(f'fault injector for {vid}: {values["faults_file"]} (seed {seed}), '
                               f'streams {streams}')

    # ----------------------------------------------------------- callbacks --

    def _on_message(self, stream: str, msg: Any) -> None:
        now = self.now_ns()
        if self.model.origin_ns is None and now > 0:
            self.model.origin_ns = now
        st = self.stats[stream]
        index = st.n_in
        st.n_in += 1
        stamp = stamp_to_ns(msg.header.stamp)
        if stream == 'odom' and self.model.spec.pose_bias.active:
            p, q = msg.pose.pose.position, msg.pose.pose.orientation
            pos, quat = apply_pose_bias(np.array([p.x, p.y, p.z]), np.array([q.w, q.x, q.y, q.z]),
                                        self.model.spec.pose_bias)
            p.x, p.y, p.z = (float(v) for v in pos)
            q.w, q.x, q.y, q.z = (float(v) for v in quat)
        if stream == 'odom' and self.onboard_pub is not None:
            self.onboard_pub.publish(msg)
        skewed = self.model.skew_stamp(stream, stamp)
        if skewed != stamp:
            msg.header.stamp = ns_to_stamp(skewed)
        releases = self.model.decide(stream, stamp, now)
        if not releases:
            st.lost += 1
            if self.model.silent(now):
                st.silenced += 1
        if len(releases) > 1:
            st.duplicated += len(releases) - 1
        for due in releases:
            self._seq += 1
            heapq.heappush(self._pending, (due, self._seq, stream, msg, now, index))
        self._release(now)

    def _on_timer(self) -> None:
        self._release(self.now_ns())

    def _release(self, now: int) -> None:
        """Publish every held message due at ``now`` or earlier: by due time, then arrival."""
        while self._pending and self._pending[0][0] <= now:
            _, _, stream, msg, arrival_ns, index = heapq.heappop(self._pending)
            st = self.stats[stream]
            if index < st.last_arrival_out:
                st.reordered += 1
            st.last_arrival_out = max(st.last_arrival_out, index)
            st.out += 1
            st.delay_sum_ns += now - arrival_ns
            self.pubs[stream].publish(msg)

    # --------------------------------------------------------- diagnostics --

    def diagnostics_values(self) -> dict[str, object]:
        """Per-stream counters (see the module docstring), ``pending`` and ``silent``."""
        values: dict[str, object] = {}
        for stream, st in self.stats.items():
            values.update(st.values(stream))
        values['pending'] = len(self._pending)
        values['silent'] = self.model.silent(self.now_ns()) if self.model.origin_ns is not None else False
        return values

    def diagnostics_summary(self, new_drops: int) -> tuple[Level, str]:
        """WARN once any input could not be relayed; the message says what was lost and held."""
        lost = sum(st.lost for st in self.stats.values())
        total = self.drops.total
        silent = self.model.origin_ns is not None and self.model.silent(self.now_ns())
        message = (f'{lost} lost, {len(self._pending)} held' + (', silent' if silent else '')
                   + (f', {total} could not be relayed' if total else ''))
        return (Level.WARN if total else Level.OK), message


def source_renames_all(vehicle_id: str) -> dict[str, str]:
    """Like :func:`source_renames`, plus the vehicle node's outputs (for a bag that already holds them)."""
    return {**source_renames(vehicle_id), **_to_raw(vehicle_id, (names.EVIDENCE_GRID, names.RADAR_TARGETS))}


@dataclass(frozen=True)
class FaultPlan:
    """How a bringup wires fault injectors into a platoon (``cooperative-fusion run --faults``).

    path : the faults file (absolute); config : its contents
    vehicles : the ids that get an injector (named in the file, or all with ``all_vehicles``)
    vehicle_nodes : whether vehicle nodes run (if not, a bag's evidence is relayed too)
    """

    path: Path
    config: FaultsConfig
    vehicles: tuple[str, ...]
    vehicle_nodes: bool = True

    def vehicle_parameters(self, vehicle_id: str) -> tuple[tuple[str, str], ...]:
        """Extra ``-p`` pairs of that vehicle's node (its raw outputs, onboard odometry); () if not faulted."""
        return vehicle_parameters(vehicle_id) if vehicle_id in self.vehicles else ()

    def renames(self) -> dict[str, str]:
        """Source (bag) topic -> the topic it must be fed or published on, for every faulted vehicle."""
        out: dict[str, str] = {}
        for v in self.vehicles:
            out.update(source_renames(v) if self.vehicle_nodes else source_renames_all(v))
        return out

    def remap_args(self) -> list[str]:
        """``['--ros-args', '-r', 'from:=to', ...]`` renaming a replay node's publishers (empty: none)."""
        rules = [a for src, dst in sorted(self.renames().items()) for a in ('-r', f'{src}:={dst}')]
        return ['--ros-args', *rules] if rules else []

    def create_injectors(self, context: Any, use_sim_time: bool | None = None,
                         origin_ns: int = 0) -> list['FaultInjector']:
        return create_injectors(self.path, self.vehicles, context, use_sim_time, origin_ns)


def plan_faults(path: str | Path, vehicle_ids: Sequence[str], vehicle_nodes: bool = True) -> FaultPlan:
    """Load and validate ``path`` (ConfigError names file, key and value) and plan the injectors of ``vehicle_ids``."""
    path = Path(path).resolve()
    cfg = load_faults(path)
    return FaultPlan(path, cfg, tuple(cfg.faulted(list(vehicle_ids))), vehicle_nodes)


def create_injectors(faults_path: str | Path, vehicle_ids: Sequence[str], context: Any,
                     use_sim_time: bool | None = None, origin_ns: int = 0) -> list[FaultInjector]:
    """One FaultInjector per vehicle of ``vehicle_ids`` the faults file names (or all, with ``all_vehicles``).

    On failure the injectors already created are destroyed and ConfigError names the vehicle.
    """
    faults_path = Path(faults_path).resolve()
    cfg = load_faults(faults_path)
    nodes: list[FaultInjector] = []
    try:
        for vid in cfg.faulted(list(vehicle_ids)):
            args = ['--ros-args', '-r', f'__ns:=/{vid}', '-p', f'vehicle_id:={vid}',
                    '-p', f'faults_file:={faults_path}', '-p', f'origin_ns:={int(origin_ns)}']
            if use_sim_time is not None:
                args += ['-p', f'use_sim_time:={"true" if use_sim_time else "false"}']
            try:
                nodes.append(FaultInjector(context=context, cli_args=args))
            except ConfigError as exc:
                raise ConfigError(f'fault_injector in /{vid}: {exc}') from exc
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: init, spin until Ctrl-C or shutdown, clean up."""
    return spin_node(FaultInjector, NODE_NAME, args)


if __name__ == '__main__':
    sys.exit(main())
