"""In-process bringup: compose the platoon's nodes (``config/platoon.yaml``) and run them on a bag in lock-step.

:func:`compose_nodes` creates the nodes with the arguments the launch files give them
(:meth:`~.platoon.NodeSpec.ros_args`: params files, namespace, ``vehicle_id``, the
platoon parameters of fusion and twin); with ``--faults`` it points the faulted
vehicles' nodes at the raw topics and adds the injectors (:func:`load_faults`).

:func:`run_bag_lockstep` (``run --bag`` without ``--rate``) is deterministic: a
:class:`~.lockstep.LockstepRunner` is the executor, every bag message is delivered in
log-time order and all it causes is processed before sim time moves on. The same bag
gives the same result bag on any machine (``/diagnostics`` latencies aside), and the run
hears no other process on the host (:func:`init_context` with ``isolated``). A faulted
vehicle's ``/<v>/odom`` and ``/<v>/time_reference`` are fed as ``/<v>/raw/...``; the
fault models are seeded from the bag's start. With ``jobs`` >= 2 the vehicle nodes (and
injectors) run in a worker process, with the same result (:mod:`.lockstep_parallel`).
Live runs are in :mod:`.live`.
"""
from __future__ import annotations

import importlib
import math
import os
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterable, Iterator, TextIO

from ..core.errors import BagError, ConfigError
from ..ros import names
from .platoon import NodeKind, PlatoonConfig, load_platoon_config

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.node import Node

    from ..nodes.fault_injector import FaultPlan
    from ..ros.bag import BagWriter
    from .lockstep_parallel import WorkerArgs

#: Topics never fed from a bag: the run makes its own time; ground truth is for evaluation only.
_NEVER_FED_PREFIXES = (names.TRUTH_PREFIX,)
_NEVER_FED = frozenset({'/clock', '/parameter_events', '/rosout'})
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class RunSummary:
    """What a run did.

    sim_s : sim (bag) seconds processed; wall_s : wall seconds it took
    messages_in : bag messages fed to the nodes
    messages_out : messages the nodes published (lock-step: all of them; live: those on record topics)
    recorded : messages written to the --record bag
    """

    sim_s: float
    wall_s: float
    messages_in: int
    messages_out: int
    recorded: int = 0
    record_path: Path | None = None

    @property
    def ratio(self) -> float:
        """Sim seconds per wall second (> 1: faster than real time)."""
        return self.sim_s / self.wall_s if self.wall_s > 0 else math.inf

    def line(self) -> str:
        rec = f', {self.recorded} recorded to {self.record_path}' if self.record_path is not None else ''
        return (f'{self.sim_s:.2f} sim s in {self.wall_s:.2f} s wall ({self.ratio:.2f}x real time); '
                f'{self.messages_in} messages in, {self.messages_out} out{rec}')


# ------------------------------------------------------------- composition --

def load_faults(path: str | Path | None, config: PlatoonConfig | None = None) -> 'FaultPlan | None':
    """Validate the faults file (``--faults FILE``) and plan its injectors; None without a file.

    config : the platoon whose vehicles get injectors (None: just validate the file)
    Raises ConfigError naming the file, the key and the bad value.
    """
    if path is None:
        return None
    from ..nodes.fault_injector import plan_faults

    if config is None:
        return plan_faults(path, ())
    return plan_faults(path, config.vehicles, vehicle_nodes=config.run_vehicles)


def compose_nodes(config: PlatoonConfig, context: 'Context', use_sim_time: bool | None = None,
                  faults: 'FaultPlan | None' = None, origin_ns: int = 0, strict: bool = False,
                  kinds: Collection[NodeKind] | None = None, injectors: bool = True) -> list['Node']:
    """Create every node of ``config`` on ``context`` with its :meth:`NodeSpec.ros_args`.

    strict : ``-p strict_parameters:=true`` for every node (an unknown parameter is an error)
    kinds : only the nodes of these kinds (None: all); injectors : also the fault injectors of ``faults``

    On any failure the nodes already created are destroyed and a ConfigError
    names the node and its params files.
    """
    nodes: list[Node] = []
    try:
        for spec in config.node_specs():
            if kinds is not None and spec.kind not in kinds:
                continue
            if faults is not None and spec.kind is NodeKind.VEHICLE:   # outputs to raw/, onboard odometry
                spec = replace(spec, parameters=spec.parameters + faults.vehicle_parameters(spec.namespace[1:]))
            try:
                cls = getattr(importlib.import_module(spec.kind.module), spec.kind.class_name)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f'{config.path}: {spec.kind.value} node is not available '
                                  f'({spec.kind.module}.{spec.kind.class_name}: {exc}); '
                                  f'switch it off under run:') from exc
            try:
                strict_args = ['-p', 'strict_parameters:=true'] if strict else []
                nodes.append(cls(context=context, cli_args=spec.ros_args(use_sim_time) + strict_args))
            except ConfigError as exc:
                raise ConfigError(f'{spec.label} (params {", ".join(map(str, spec.params_files))}): '
                                  f'{exc}') from exc
            except Exception as exc:  # rcl rejects a params file with RCLError, ...
                raise ConfigError(f'{spec.label} (params {", ".join(map(str, spec.params_files))}): '
                                  f'cannot create the node: {type(exc).__name__}: {exc}') from exc
        if faults is not None and injectors:
            nodes += faults.create_injectors(context, use_sim_time, origin_ns)
    except BaseException:
        destroy_nodes(nodes)
        raise
    return nodes


def destroy_nodes(nodes: Iterable['Node']) -> None:
    """Destroy every node; one that cannot be (its context is gone) is skipped."""
    for node in nodes:
        try:
            node.destroy_node()
        except Exception:  # a context already shut down (Ctrl-C): nothing left to free
            pass


def published_topics(nodes: Iterable['Node']) -> dict[str, type]:
    """``{topic: message class}`` of every publisher of ``nodes``."""
    return {pub.topic_name: pub.msg_type for node in nodes for pub in node.publishers}


def input_topics(nodes: Iterable['Node']) -> set[str]:
    """Topics a bag may feed to ``nodes``: what they subscribe to, minus /clock, /truth/*
    and what the nodes publish themselves (a recorded output is recomputed, not replayed)."""
    nodes = list(nodes)
    subscribed = {sub.topic_name for node in nodes for sub in node.subscriptions}
    own = set(published_topics(nodes))
    return {t for t in subscribed
            if t not in _NEVER_FED and not t.startswith(_NEVER_FED_PREFIXES) and t not in own}


def init_context(domain_id: int | None, isolated: bool = False) -> 'Context':
    """A fresh rclpy context on ``domain_id`` (None: ROS_DOMAIN_ID, as any ROS 2 node) for the run's nodes.

    isolated : automatic discovery off (``ROS_AUTOMATIC_DISCOVERY_RANGE=OFF``, no static peers) for
        this context: it neither hears nor is heard by any other process; its own nodes still see
        each other (one participant)
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    ctx = Context()
    isolation = {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'OFF', 'ROS_STATIC_PEERS': None} if isolated else {}
    saved = {k: os.environ.get(k) for k in isolation}
    try:
        _set_env(isolation)      # rcl reads the discovery options from the environment at init
        # No rclpy signal handlers: Ctrl-C stays a plain KeyboardInterrupt, so the run cleans up itself.
        rclpy.init(context=ctx, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    finally:
        _set_env(saved)
    return ctx


def _set_env(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@contextmanager
def node_log_level(quiet: bool) -> Iterator[None]:
    """With ``quiet``, in-process nodes (every logger without a level of its own) log warnings and errors only."""
    if not quiet:
        yield
        return
    import rclpy.logging

    previous = rclpy.logging.get_logger_level('')
    rclpy.logging.set_logger_level('', rclpy.logging.LoggingSeverity.WARN)
    try:
        yield
    finally:
        rclpy.logging.set_logger_level('', previous)


def shutdown_context(ctx: 'Context') -> None:
    """Shut ``ctx`` down; a context already shut down (Ctrl-C) is fine."""
    import rclpy

    try:
        rclpy.try_shutdown(context=ctx)
    except Exception:
        pass


class Progress:
    """Prints sim seconds processed and wall time every ``every_s`` sim seconds."""

    def __init__(self, enabled: bool, total_s: float, every_s: float = 2.0, stream: TextIO | None = None,
                 label: str = 'run') -> None:
        self.enabled = enabled
        self.total_s = total_s
        self.every_s = every_s
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.start = time.perf_counter()
        self._next = every_s

    def update(self, sim_s: float) -> None:
        if self.enabled and sim_s >= self._next:
            wall = time.perf_counter() - self.start
            print(f'{self.label}: {sim_s:6.1f} / {self.total_s:.1f} sim s, {wall:6.1f} s wall',
                  file=self.stream, flush=True)
            self._next = (math.floor(sim_s / self.every_s) + 1) * self.every_s

    def restart(self) -> None:
        self.start = time.perf_counter()

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.start


def open_writer(record_path: str | Path | None, overwrite: bool) -> 'BagWriter | None':
    """An open bag writer at ``record_path`` (None: no recording)."""
    if record_path is None:
        return None
    from ..ros.bag import BagWriter

    return BagWriter(record_path, overwrite=overwrite).open()


def close_writer(writer: 'BagWriter | None') -> None:
    """Close ``writer`` (metadata written: the bag is readable); None is fine."""
    if writer is not None:
        writer.close()


# ----------------------------------------------------------------- lock-step --

def run_bag_lockstep(config_path: str | Path | None, bag_path: str | Path, record_path: str | Path | None,
                     progress: bool = True, *, faults: str | Path | None = None, domain_id: int | None = None,
                     overwrite: bool = False, publish_to_dds: bool = False, strict: bool = False,
                     progress_stream: TextIO | None = None, jobs: int = 1, quiet: bool = False) -> RunSummary:
    """Run ``bag_path`` through the composed nodes deterministically (see the module docstring).

    Every bag message on an :func:`input_topics` topic is fed at its log time (as
    CDR bytes: :meth:`~.lockstep.LockstepRunner.feed_serialized`); then sim time runs
    on ``drain_s`` past the bag's end. Messages the nodes publish on the config's
    record topics are written to ``record_path`` (None: no recording) with log time = sim time.

    The run's context has discovery off: it hears no other process on the host (nor is heard),
    unless ``publish_to_dds``: also publish the nodes' outputs over DDS (to watch in RViz); slower.
    strict : unknown parameters in the params files are errors (:func:`compose_nodes`)
    jobs : 2 (or more) runs the vehicle nodes in a worker process (:mod:`.lockstep_parallel`), with the
        same result; 1, or with ``publish_to_dds`` or no vehicle nodes, everything runs in this process
    quiet : the worker's nodes log warnings and errors only (as :func:`node_log_level` does here)
    Raises ConfigError / BagError for a bad config or bag, WorkerError when the worker fails.
    """
    from ..ros.bag import BagReader
    from .lockstep import LockstepRunner, write_published

    if not (isinstance(jobs, int) and jobs >= 1):
        raise ConfigError(f'jobs must be an integer >= 1, got {jobs!r}')
    config = load_platoon_config(config_path)
    plan = load_faults(faults, config)
    renames = plan.renames() if plan is not None else {}
    record = set(config.record_topics)
    parallel = jobs > 1 and not publish_to_dds and config.run_vehicles
    with BagReader(bag_path) as reader, ExitStack() as stack:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
        stop_ns = end_ns + int(round(config.drain_s * NS_PER_S))
        bag_topics = reader.topics()
        worker = None
        if parallel:
            from .lockstep_parallel import VehicleWorker, WorkerArgs

            worker = stack.enter_context(VehicleWorker(WorkerArgs(
                config_path=Path(config_path) if config_path is not None else None, bag_path=Path(bag_path),
                faults=Path(faults) if faults is not None else None, domain_id=domain_id, strict=strict,
                quiet=quiet, start_ns=start_ns)))
        ctx = init_context(domain_id, isolated=not publish_to_dds)
        nodes: list[Node] = []
        writer = None
        counts = {'in': 0, 'out': 0, 'recorded': 0, 'bad': 0}
        meter = Progress(progress, (end_ns - start_ns) / NS_PER_S, stream=progress_stream)
        try:
            local_kinds = None if worker is None else set(NodeKind) - {NodeKind.VEHICLE}
            nodes = compose_nodes(config, ctx, use_sim_time=True, faults=plan, origin_ns=start_ns, strict=strict,
                                  kinds=local_kinds, injectors=worker is None)
            everyone: list[Any] = list(nodes)
            if worker is not None:
                with_worker = _with_worker(worker, config, nodes, bag_topics, renames, stop_ns,
                                           lambda: runner.now_ns)
                if isinstance(with_worker, str):     # the vehicle nodes hear the others: one process after all
                    worker.stop()
                    worker = None
                    if not quiet:
                        print(f'run: --jobs {jobs}: one process ({with_worker})', file=progress_stream or sys.stderr)
                    destroy_nodes(nodes)
                    nodes = []
                    nodes = compose_nodes(config, ctx, use_sim_time=True, faults=plan, origin_ns=start_ns,
                                          strict=strict)
                    everyone = list(nodes)
                else:
                    everyone = with_worker
            inputs = input_topics(everyone)
            feed = sorted(t for t in bag_topics if renames.get(t, t) in inputs)
            writer = open_writer(record_path, overwrite)
            meter.restart()   # wall time of the run itself, without node start-up

            def recorder(topic: str, msg: Any, t_ns: int) -> None:
                counts['out'] += 1
                if writer is not None and topic in record:
                    write_published(writer, topic, msg, t_ns)   # deterministic CDR: equal runs, equal bytes
                    counts['recorded'] += 1

            runner = LockstepRunner(everyone, recorder, publish_to_dds=publish_to_dds, start_ns=start_ns)
            for topic, msgtype, log_time_ns, raw in reader.messages(feed):
                try:
                    runner.feed_serialized(renames.get(topic, topic), msgtype, raw, log_time_ns)
                except BagError as exc:
                    counts['bad'] += 1
                    if counts['bad'] == 1:
                        print(f'run: skipping undecodable messages (first: {topic} at {log_time_ns} ns: {exc})',
                              file=progress_stream or sys.stderr)
                    continue
                counts['in'] += 1
                meter.update((log_time_ns - start_ns) / NS_PER_S)
            runner.advance_to(stop_ns)
            if worker is not None:
                worker.finish()
            close_writer(writer)
            writer = None
        finally:
            if writer is not None:   # interrupted or failed: keep what was recorded, readable
                try:
                    writer.close()
                except BagError:
                    pass
            destroy_nodes(nodes)
            shutdown_context(ctx)
    return RunSummary(sim_s=(stop_ns - start_ns) / NS_PER_S, wall_s=meter.wall_s, messages_in=counts['in'],
                      messages_out=counts['out'], recorded=counts['recorded'],
                      record_path=Path(record_path) if record_path is not None else None)


@contextmanager
def worker_nodes(args: 'WorkerArgs') -> Iterator[list['Node']]:
    """The nodes of a ``--jobs`` worker (:mod:`.lockstep_parallel`): the vehicle nodes of the platoon, then the
    fault injectors, composed as :func:`run_bag_lockstep` composes them, on a context of their own."""
    config = load_platoon_config(args.config_path)
    plan = load_faults(args.faults, config)
    ctx = init_context(args.domain_id, isolated=True)
    nodes: list[Node] = []
    try:
        with node_log_level(args.quiet):
            nodes = compose_nodes(config, ctx, use_sim_time=True, faults=plan, origin_ns=args.start_ns,
                                  strict=args.strict, kinds={NodeKind.VEHICLE})
            yield nodes
    finally:
        destroy_nodes(nodes)
        shutdown_context(ctx)


def lockstep_worker() -> None:
    """Entry point of the ``--jobs`` worker process (started by :class:`.lockstep_parallel.VehicleWorker`)."""
    from .lockstep_parallel import worker_process

    worker_process(worker_nodes)


def _with_worker(worker: Any, config: PlatoonConfig, nodes: list['Node'], bag_topics: Iterable[str],
                 renames: dict[str, str], stop_ns: int, now_ns: Any) -> list[Any] | str:
    """The serial run's node list with the worker's nodes as stand-ins, once the worker has its plan;
    or why the worker's nodes cannot run apart (it then waits for nothing: stop it).

    nodes : this process's nodes (every non-vehicle node, in spec order); the worker has the vehicle
        nodes, then the fault injectors
    """
    from .lockstep_parallel import WorkerPlan, independent, remote_stand_ins, shape_of

    remote = worker.shapes()
    order: list[tuple[str, int]] = []
    n_remote = n_local = 0
    for spec in config.node_specs():
        if spec.kind is NodeKind.VEHICLE:
            order.append(('remote', n_remote))
            n_remote += 1
        else:
            order.append(('local', n_local))
            n_local += 1
    order += [('remote', i) for i in range(n_remote, len(remote))]     # the injectors come last
    if n_local != len(nodes):
        raise ConfigError(f'--jobs: {len(nodes)} nodes in the main process, expected {n_local}')
    local = [shape_of(n) for n in nodes]
    why_not = independent(remote, local)
    if why_not is not None:
        return why_not
    stand_ins = remote_stand_ins(worker, order, remote, now_ns)
    everyone = [stand_ins[k] if side == 'remote' else nodes[i] for k, (side, i) in enumerate(order)]
    inputs = input_topics(everyone)
    feed = tuple((t, renames.get(t, t)) for t in sorted(bag_topics) if renames.get(t, t) in inputs)
    worker.send_plan(WorkerPlan(order=tuple(order), local=tuple(local), feed=feed, stop_ns=stop_ns, recorder=True))
    return everyone
