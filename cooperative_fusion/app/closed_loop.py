"""Closed-loop simulation: the simulated world and the platoon's nodes in lock-step, into one bag.

sensors -> vehicle nodes -> fusion -> twin -> advisory followers -> vehicle dynamics -> sensors ...

:func:`run_closed_loop` composes the bringup's nodes (:func:`~.bringup.compose_nodes`, with
``--faults`` as in ``run``) plus one ``advisory_follower`` per vehicle (:func:`compose_followers`,
``mode`` set on each), drives them with a :class:`~.lockstep.LockstepRunner`, and pulls the
world's events (:meth:`~..sim.world.Simulation.events`) one by one: each event is written to the
bag and, on a node input topic, fed to the nodes at its log time with all it causes. Before each
physics step the world asks :class:`CommandTap` for the commands issued up to the step's end; the
tap advances the runner (timers) to that time first. No wall clock, no threads: the same scenario,
seed, mode, faults and config give the same bag (``/diagnostics`` latencies aside).

The bag holds the simulation's topics (inputs, ``/truth/*``), the config's record topics and
``/<v>/cooperative/cmd``: ``evaluate --truth BAG --result BAG`` reads it as both.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, TextIO

from ..core.config_files import find_config
from ..core.errors import ConfigError
from ..ros import names
from . import bringup
from .platoon import PlatoonConfig, format_parameter, load_platoon_config

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.node import Node

    from ..nodes.fault_injector import FaultPlan
    from ..sim.dynamics import SpeedCommand
    from ..sim.scenario import Scenario

#: Follower modes (``FollowerMode`` values of :mod:`cooperative_fusion.core.vehicle.follower`; kept here
#: as strings so the CLI builds its parser without numpy).
MODES = ('ego', 'cooperative', 'cooperative+advisory')
DEFAULT_MODE = 'cooperative+advisory'
FOLLOWER_MODULE = 'cooperative_fusion.nodes.advisory_follower'
FOLLOWER_CLASS = 'AdvisoryFollowerNode'
FOLLOWER_PARAMS = 'advisory_follower.yaml'


def command_topic(vehicle_id: str) -> str:
    """``/<v>/cooperative/cmd``."""
    return names.vehicle_topic(vehicle_id, names.COOPERATIVE_CMD)


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else ConfigError."""
    if mode not in MODES:
        raise ConfigError(f'--mode {mode!r}: expected one of {", ".join(MODES)}')
    return mode


def follower_args(vehicle_id: str, mode: str, platoon_file: Path, faults: 'FaultPlan | None' = None,
                  params_files: Sequence[Path] | None = None) -> list[str]:
    """ROS arguments of ``vehicle_id``'s advisory_follower: params files (default
    ``config/advisory_follower.yaml``), namespace, ``vehicle_id``, ``platoon_file``, ``follower.mode``;
    with faults, its own odometry from the injector's onboard topic and its own evidence grid from the
    vehicle node's raw one (on board: no network faults)."""
    if params_files is None:
        params_files = (find_config(FOLLOWER_PARAMS, '--config FILE'),)
    args = ['--ros-args']
    for path in params_files:
        args += ['--params-file', str(path)]
    args += ['-r', f'__ns:=/{vehicle_id}', '-p', f'vehicle_id:={format_parameter(vehicle_id)}',
             '-p', f'platoon_file:={format_parameter(str(platoon_file))}',
             '-p', f'follower.mode:={format_parameter(mode)}', '-p', 'use_sim_time:=true']
    if faults is not None and vehicle_id in faults_vehicles(faults):
        from ..nodes.fault_injector import ONBOARD_ODOM
        args += ['-p', f'topics.odom:={format_parameter(names.vehicle_topic(vehicle_id, ONBOARD_ODOM))}']
    evidence = dict(faults.vehicle_parameters(vehicle_id)).get('topics.evidence_grid') if faults else None
    if evidence is not None:
        args += ['-p', f'topics.evidence_grid:={format_parameter(evidence)}']
    return args


def faults_vehicles(faults: 'FaultPlan') -> set[str]:
    """Vehicle ids whose odometry an injector relays (their own odometry is under ``onboard/``)."""
    return {topic.split('/')[1] for topic in faults.renames() if topic.endswith('/' + names.ODOM)}


def compose_followers(config: PlatoonConfig, context: 'Context', mode: str,
                      faults: 'FaultPlan | None' = None) -> list['Node']:
    """One advisory_follower per platoon vehicle, in ``/<v>``, in ``mode``; ConfigError if it cannot be created."""
    check_mode(mode)
    try:
        cls = getattr(importlib.import_module(FOLLOWER_MODULE), FOLLOWER_CLASS)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f'the advisory_follower node is not available ({FOLLOWER_MODULE}.{FOLLOWER_CLASS}: '
                          f'{exc})') from exc
    nodes: list[Node] = []
    try:
        for vid in config.vehicles:
            try:
                nodes.append(cls(context=context, cli_args=follower_args(vid, mode, config.path, faults)))
            except ConfigError as exc:
                raise ConfigError(f'advisory_follower in /{vid}: {exc}') from exc
            except Exception as exc:  # rcl rejects a parameter with RCLError, ...
                raise ConfigError(f'advisory_follower in /{vid}: cannot create the node: '
                                  f'{type(exc).__name__}: {exc}') from exc
    except BaseException:
        bringup.destroy_nodes(nodes)
        raise
    return nodes


def twist_to_command(msg: Any, t_ns: int, period_s: float) -> 'SpeedCommand':
    """A command message (``ros/command.py``: target speed ``linear.x``, implied acceleration ``linear.z``)
    as the simulator's :class:`~..sim.dynamics.SpeedCommand`, received at ``t_ns``; ``period_s`` is the
    follower's command period (the target is the speed one period on)."""
    from ..ros.command import twist_to_speed_accel
    from ..sim.dynamics import SpeedCommand

    _, speed, accel = twist_to_speed_accel(msg)
    return SpeedCommand(int(t_ns), speed, accel, float(period_s))


class CommandTap:
    """The world's :class:`~..sim.world.Control`: collects the followers' commands as the runner publishes them.

    periods_s : vehicle id -> its follower's command period, s; :meth:`on_published` is the runner's
        recorder hook
    """

    def __init__(self, periods_s: dict[str, float]) -> None:
        self._periods = dict(periods_s)
        self._topics = {command_topic(v): v for v in periods_s}
        self._new: list[tuple[str, SpeedCommand]] = []
        self.runner: Any = None
        self.received = 0

    def on_published(self, topic: str, msg: Any, t_ns: int) -> None:
        """Keep ``msg`` (a message object or a :class:`~.lockstep.SerializedMessage`) if it is a follower's
        command (``t_ns``: sim time it was published)."""
        vid = self._topics.get(topic)
        if vid is not None:
            from .lockstep import published_message
            self._new.append((vid, twist_to_command(published_message(msg), t_ns, self._periods[vid])))
            self.received += 1

    def commands(self, t_ns: int) -> list[tuple[str, 'SpeedCommand']]:
        """The commands published since the last call, after the nodes' timers up to ``t_ns`` have fired."""
        if self.runner is not None and t_ns > self.runner.now_ns:
            self.runner.advance_to(t_ns)
        out, self._new = self._new, []
        return out


@dataclass(frozen=True)
class ClosedLoopSummary:
    """What a closed-loop run did: :class:`~.bringup.RunSummary` fields plus the mode and command count."""

    run: bringup.RunSummary
    mode: str
    commands: int
    simulated: int

    def line(self) -> str:
        return f'closed loop ({self.mode}): {self.simulated} simulated messages, {self.commands} commands; ' \
               f'{self.run.line()}'


def run_closed_loop(scenario: 'Scenario', out_bag: str | Path, *, mode: str = DEFAULT_MODE, seed: int | None = None,
                    duration_s: float | None = None, config_path: str | Path | None = None,
                    faults: str | Path | None = None, progress: bool = True, overwrite: bool = False,
                    domain_id: int | None = None, strict: bool = False,
                    progress_stream: TextIO | None = None) -> ClosedLoopSummary:
    """Simulate ``scenario`` in closed loop with the platoon's nodes into ``out_bag`` (module docstring).

    The bringup config's platoon must be the scenario's (same vehicle ids, same order).
    Raises ConfigError / BagError for a bad input (nothing is written then).
    """
    from ..ros.bag import BagWriter
    from ..sim.bag_writer import event_to_message
    from ..sim.world import Simulation
    from .lockstep import LockstepRunner, write_published

    check_mode(mode)
    config = load_platoon_config(config_path)
    if tuple(config.vehicles) != tuple(scenario.vehicle_ids):
        raise ConfigError(f'{config.path}: platoon {list(config.vehicles)} is not the scenario '
                          f'{scenario.name!r} platoon {list(scenario.vehicle_ids)}; the closed loop needs the same '
                          f'vehicles in the same order')
    plan = bringup.load_faults(faults, config)
    renames = plan.renames() if plan is not None else {}
    sim = Simulation(scenario, seed=seed)
    duration = float(duration_s) if duration_s is not None else float(scenario.duration_s)
    start_ns = int(round(scenario.start_time_s * 1e9))
    end_ns = start_ns + int(round(duration * 1e9))
    record = set(config.record_topics) | {command_topic(v) for v in scenario.vehicle_ids}
    counts = {'in': 0, 'out': 0, 'recorded': 0, 'sim': 0}
    ctx = bringup.init_context(domain_id, isolated=True)
    nodes: list[Node] = []
    writer = None
    meter = bringup.Progress(progress, duration, stream=progress_stream, label='closed loop')
    try:
        nodes = bringup.compose_nodes(config, ctx, use_sim_time=True, faults=plan, origin_ns=start_ns, strict=strict)
        followers = compose_followers(config, ctx, mode, plan)
        nodes += followers
        tap = CommandTap({vid: float(node.get_parameter('follower.command_period_s').value)
                          for vid, node in zip(config.vehicles, followers)})
        inputs = bringup.input_topics(nodes)
        writer = BagWriter(out_bag, overwrite=overwrite).open()
        meter.restart()

        def recorder(topic: str, msg: Any, t_ns: int) -> None:
            counts['out'] += 1
            tap.on_published(topic, msg, t_ns)
            if topic in record:
                write_published(writer, topic, msg, t_ns)
                counts['recorded'] += 1

        runner = LockstepRunner(nodes, recorder, publish_to_dds=False, start_ns=start_ns)
        tap.runner = runner
        loop_meta = {'mode': mode, 'faults': None if faults is None else Path(faults).name}
        for event in sim.events(duration, control=tap, meta=loop_meta):
            msg = event_to_message(event)
            writer.write(event.topic, msg, event.log_time_ns)
            counts['sim'] += 1
            topic = renames.get(event.topic, event.topic)
            if topic in inputs:
                runner.feed(topic, msg, event.log_time_ns)
                counts['in'] += 1
            meter.update((event.log_time_ns - start_ns) / bringup.NS_PER_S)
        runner.advance_to(end_ns)
        writer.close()
        writer = None
        counts['commands'] = tap.received
    finally:
        if writer is not None:   # interrupted or failed: keep what was written, readable
            try:
                writer.close()
            except Exception:
                pass
        bringup.destroy_nodes(nodes)
        bringup.shutdown_context(ctx)
    run = bringup.RunSummary(sim_s=duration, wall_s=meter.wall_s, messages_in=counts['in'],
                             messages_out=counts['out'], recorded=counts['recorded'] + counts['sim'],
                             record_path=Path(out_bag))
    return ClosedLoopSummary(run, mode, counts['commands'], counts['sim'])
