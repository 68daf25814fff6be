"""In-process bringup: compose the platoon's nodes from ``config/platoon.yaml`` and run them.

``config/platoon.yaml`` (:func:`load_platoon_config`) names the vehicles, the
ROS parameter files of every node and the topics to record. The nodes are
created with exactly the arguments the launch files give them
(:meth:`NodeSpec.ros_args`: ``--params-file`` per file, the vehicle's
namespace, ``-p vehicle_id:=<v>``), so ``cooperative-fusion run`` and
``ros2 launch`` configure them identically; :meth:`NodeSpec.command` gives
the same node as a separate OS process.

Three ways to run (``cooperative-fusion run``, :mod:`.run_cli`):

* :func:`run_bag_lockstep` -- ``--bag`` without ``--rate``: deterministic.
  A :class:`~.lockstep.LockstepRunner` is the executor; every input message of
  the bag is delivered in log-time order and everything it causes is processed
  before sim time moves on. The same bag gives the same result bag on any
  machine (except ``/diagnostics``, whose latency values are wall-clock
  measurements).
* :func:`run_bag_live` -- ``--bag --rate R``: the bag is published over DDS
  with ``/clock`` at rate R while one executor thread spins the nodes
  (``use_sim_time``), as a component container does. Results depend on load
  (how late the outputs come), not which sweeps give evidence: queued input is
  worked off before the run ends (see :func:`run_bag_live`).
* :func:`run_live` -- no bag: the nodes spin on the real sensor topics until
  Ctrl-C (or ``duration_s``).

Fault injection (``--faults FILE``, issue 7): :func:`load_faults` plans one
:class:`~.fault_injector.FaultInjector` per vehicle the file names (or all);
:func:`compose_nodes` points those vehicles' nodes at the raw topics and adds
the injectors; a bag's ``/<v>/odom`` and ``/<v>/time_reference`` of a faulted
vehicle are fed as ``/<v>/raw/...`` (lock-step) or published so (live rate).
The lock-step run stays deterministic: the fault models are seeded and their
origin is the bag's start. Live runs (no bag) need the sources to publish
``/<v>/raw/odom`` and ``/<v>/raw/time_reference`` themselves (launch remaps).
"""
from __future__ import annotations

import importlib
import math
import re
import sys
import threading
import time
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TextIO


from ..core.config_files import find_config, read_yaml
from ..core.errors import BagError, ConfigError
from ..ros import names

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.node import Node

    from ..ros.bag import BagWriter
    from ..nodes.fault_injector import FaultPlan

PACKAGE = 'cooperative_fusion'
DEFAULT_CONFIG = 'platoon.yaml'
#: Placeholder in record topics that expands to every vehicle id.
VEHICLE_PLACEHOLDER = '<v>'
#: Topics never fed from a bag: the run makes its own time; ground truth is for evaluation only.
_NEVER_FED_PREFIXES = (names.TRUTH_PREFIX,)
_NEVER_FED = frozenset({'/clock', '/parameter_events', '/rosout'})
_VEHICLE_ID = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
_NS_PER_S = 1_000_000_000


class NodeKind(str, Enum):
    """The node types a platoon bringup composes: module, class and console script of each."""

    VEHICLE = 'vehicle'
    FUSION = 'fusion'
    TWIN = 'twin'

    @property
    def module(self) -> str:
        return f'{PACKAGE}.nodes.{self.value}_node'

    @property
    def class_name(self) -> str:
        return f'{self.value.capitalize()}Node'

    @property
    def executable(self) -> str:
        """Console script (setup.py entry point) and launch ``executable``."""
        return f'{self.value}_node'


@dataclass(frozen=True)
class NodeSpec:
    """One node of the bringup and the ROS arguments it is started with.

    params_files : ROS parameter files, applied in order (a later one wins)
    namespace : '' (root) or '/<vehicle_id>'
    parameters : ``(name, value)`` pairs passed as ``-p name:=value`` (after the files, so they win)
    """

    kind: NodeKind
    params_files: tuple[Path, ...]
    namespace: str = ''
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f'{self.kind.executable}{" in " + self.namespace if self.namespace else ""}'

    def ros_args(self, use_sim_time: bool | None = None) -> list[str]:
        """``['--ros-args', '--params-file', F, ..., '-r', '__ns:=/v1', '-p', 'k:=v', ...]``.

        use_sim_time : add ``-p use_sim_time:=true|false`` (None: leave it to the params files)
        """
        args = ['--ros-args']
        for path in self.params_files:
            args += ['--params-file', str(path)]
        if self.namespace:
            args += ['-r', f'__ns:={self.namespace}']
        for name, value in self.parameters:
            args += ['-p', f'{name}:={value}']
        if use_sim_time is not None:
            args += ['-p', f'use_sim_time:={"true" if use_sim_time else "false"}']
        return args

    def command(self, python: str = sys.executable, use_sim_time: bool | None = None) -> list[str]:
        """Command line running this node as its own OS process (``python -m <module> --ros-args ...``)."""
        return [python, '-m', self.kind.module, *self.ros_args(use_sim_time)]


@dataclass(frozen=True)
class PlatoonConfig:
    """``config/platoon.yaml``, validated; paths are absolute.

    vehicles : vehicle ids, in file order
    vehicle_params : vehicle id -> its params files
    run_vehicles, run_fusion, run_twin : which nodes to start
    record_topics : topics written to a --record bag, ``<v>`` expanded
    drain_s : sim seconds run on after the last message of a bag
    """

    path: Path
    vehicles: tuple[str, ...]
    vehicle_params: dict[str, tuple[Path, ...]]
    fusion_params: tuple[Path, ...]
    twin_params: tuple[Path, ...]
    run_vehicles: bool = True
    run_fusion: bool = True
    run_twin: bool = True
    record_topics: tuple[str, ...] = ()
    drain_s: float = 0.5

    def node_specs(self) -> list[NodeSpec]:
        """The nodes to start: every vehicle (in order), then fusion, then twin, as enabled."""
        specs: list[NodeSpec] = []
        if self.run_vehicles:
            specs += [NodeSpec(NodeKind.VEHICLE, self.vehicle_params[v], f'/{v}', (('vehicle_id', v),))
                      for v in self.vehicles]
        if self.run_fusion:
            specs.append(NodeSpec(NodeKind.FUSION, self.fusion_params))
        if self.run_twin:
            specs.append(NodeSpec(NodeKind.TWIN, self.twin_params))
        return specs


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


# ------------------------------------------------------------------ config --

def default_config_path() -> Path:
    """``config/platoon.yaml`` of a source checkout, else of the installed share dir (ConfigError if neither)."""
    return find_config(DEFAULT_CONFIG, '--config FILE')


_TOP_KEYS = {'run', 'vehicles', 'fusion', 'twin', 'record', 'drain_s'}


def _fail(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f'{path}: {key}: {problem}')


def _mapping(path: Path, raw: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, key, f'expected a mapping, got {type(raw).__name__} {raw!r}')
    unknown = sorted(str(k) for k in set(raw) - allowed)
    if unknown:
        raise _fail(path, f'{key}.{unknown[0]}' if key else unknown[0],
                    f'unknown key; expected one of {sorted(allowed)}')
    return raw


def _check_params_file(path: Path, key: str, file: Path) -> None:
    """A ROS 2 params file: a mapping of node names to ``{ros__parameters: mapping}``."""
    if not file.is_file():
        raise _fail(path, key, f'params file {file} does not exist')
    try:
        data = read_yaml(file, 'params file')
    except ConfigError as exc:
        raise _fail(path, key, str(exc)) from exc
    if not isinstance(data, dict) or not data:
        raise _fail(path, key, f'params file {file} is not a ROS 2 parameter file '
                               f'(expected a mapping of node names, got {type(data).__name__})')
    for node, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get('ros__parameters'), dict):
            raise _fail(path, key, f'params file {file}: node {node!r} has no ros__parameters mapping')


def _params_list(path: Path, raw: Any, key: str, check: bool) -> tuple[Path, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) and p for p in raw):
        raise _fail(path, key, f'expected a params file name or a non-empty list of them, got {raw!r}')
    files = tuple((path.parent / p).resolve() for p in raw)
    if check:
        for i, f in enumerate(files):
            _check_params_file(path, f'{key}[{i}]', f)
    return files


def _bool(path: Path, raw: dict[str, Any], key: str, prefix: str) -> bool:
    value = raw.get(key, True)
    if not isinstance(value, bool):
        raise _fail(path, f'{prefix}.{key}', f'expected true or false, got {value!r}')
    return value


def load_platoon_config(path: str | Path | None = None) -> PlatoonConfig:
    """Read and validate a bringup config (None: :func:`default_config_path`).

    Params files of the nodes that run must exist and look like ROS 2 params
    files. Raises ConfigError naming the file and the key.
    """
    path = Path(path) if path is not None else default_config_path()
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f'{path}: bringup config does not exist')
    raw = read_yaml(path, 'bringup config')
    if not isinstance(raw, dict):
        raise ConfigError(f'{path}: expected a mapping at the top level, got {type(raw).__name__}')
    raw = _mapping(path, raw, '', _TOP_KEYS)

    run = _mapping(path, raw.get('run'), 'run', {'vehicles', 'fusion', 'twin'})
    run_vehicles, run_fusion, run_twin = (_bool(path, run, k, 'run') for k in ('vehicles', 'fusion', 'twin'))
    if not (run_vehicles or run_fusion or run_twin):
        raise _fail(path, 'run', 'every node is switched off; enable vehicles, fusion or twin')

    vehicles_raw = raw.get('vehicles')
    if not isinstance(vehicles_raw, list) or not vehicles_raw:
        raise _fail(path, 'vehicles', f'expected a non-empty list of {{id, params}}, got {vehicles_raw!r}')
    ids: list[str] = []
    vehicle_params: dict[str, tuple[Path, ...]] = {}
    for i, entry in enumerate(vehicles_raw):
        key = f'vehicles[{i}]'
        entry = _mapping(path, entry, key, {'id', 'params'})
        vid = entry.get('id')
        if not isinstance(vid, str) or not _VEHICLE_ID.match(vid):
            raise _fail(path, f'{key}.id', f'expected a vehicle id like v1 (letter, then letters, digits, '
                                          f'_), got {vid!r}')
        if vid in vehicle_params:
            raise _fail(path, f'{key}.id', f'vehicle id {vid!r} appears twice')
        if 'params' not in entry:
            raise _fail(path, f'{key}.params', 'missing; list the vehicle params files (e.g. [vehicle.yaml])')
        vehicle_params[vid] = _params_list(path, entry['params'], f'{key}.params', run_vehicles)
        ids.append(vid)

    def node_params(name: str, enabled: bool) -> tuple[Path, ...]:
        section = _mapping(path, raw.get(name), name, {'params'})
        if 'params' not in section:
            if enabled:
                raise _fail(path, f'{name}.params', f'missing; list the {name} params files')
            return ()
        return _params_list(path, section['params'], f'{name}.params', enabled)

    fusion_params = node_params('fusion', run_fusion)
    twin_params = node_params('twin', run_twin)

    record = _mapping(path, raw.get('record'), 'record', {'topics'})
    topics_raw = record.get('topics', [])
    if not isinstance(topics_raw, list):
        raise _fail(path, 'record.topics', f'expected a list of topic names, got {topics_raw!r}')
    topics: list[str] = []
    for i, t in enumerate(topics_raw):
        if not isinstance(t, str) or not t.startswith('/') or ' ' in t:
            raise _fail(path, f'record.topics[{i}]', f'expected an absolute topic name (/...), got {t!r}')
        expanded = [t.replace(VEHICLE_PLACEHOLDER, v) for v in ids] if VEHICLE_PLACEHOLDER in t else [t]
        topics += [x for x in expanded if x not in topics]

    drain_s = raw.get('drain_s', 0.5)
    if isinstance(drain_s, bool) or not isinstance(drain_s, (int, float)) or not (0 <= drain_s < 3600):
        raise _fail(path, 'drain_s', f'expected seconds in [0, 3600), got {drain_s!r}')

    return PlatoonConfig(path=path, vehicles=tuple(ids), vehicle_params=vehicle_params,
                         fusion_params=fusion_params, twin_params=twin_params, run_vehicles=run_vehicles,
                         run_fusion=run_fusion, run_twin=run_twin, record_topics=tuple(topics),
                         drain_s=float(drain_s))


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


# ------------------------------------------------------------- composition --

def compose_nodes(config: PlatoonConfig, context: 'Context', use_sim_time: bool | None = None,
                  faults: 'FaultPlan | None' = None, origin_ns: int = 0) -> list['Node']:
    """Create every node of ``config`` on ``context`` with its :meth:`NodeSpec.ros_args`.

    On any failure the nodes already created are destroyed and a ConfigError
    names the node and its params files.
    """
    nodes: list[Node] = []
    try:
        for spec in config.node_specs():
            if faults is not None and spec.kind is NodeKind.VEHICLE:   # outputs to raw/, onboard odometry
                spec = replace(spec, parameters=spec.parameters + faults.vehicle_parameters(spec.namespace[1:]))
            try:
                cls = getattr(importlib.import_module(spec.kind.module), spec.kind.class_name)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f'{config.path}: {spec.kind.value} node is not available '
                                  f'({spec.kind.module}.{spec.kind.class_name}: {exc}); '
                                  f'switch it off under run:') from exc
            try:
                nodes.append(cls(context=context, cli_args=spec.ros_args(use_sim_time)))
            except ConfigError as exc:
                raise ConfigError(f'{spec.label} (params {", ".join(map(str, spec.params_files))}): '
                                  f'{exc}') from exc
            except Exception as exc:  # rcl rejects a params file with RCLError, ...
                raise ConfigError(f'{spec.label} (params {", ".join(map(str, spec.params_files))}): '
                                  f'cannot create the node: {type(exc).__name__}: {exc}') from exc
        if faults is not None:
            nodes += faults.create_injectors(context, use_sim_time, origin_ns)
    except BaseException:
        _destroy(nodes)
        raise
    return nodes


def _destroy(nodes: Iterable['Node']) -> None:
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


def _init_context(domain_id: int | None) -> 'Context':
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    ctx = Context()
    # No rclpy signal handlers: Ctrl-C stays a plain KeyboardInterrupt, so the run cleans up itself.
    rclpy.init(context=ctx, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    return ctx


class _Progress:
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


def _open_writer(record_path: str | Path | None, overwrite: bool) -> 'BagWriter | None':
    if record_path is None:
        return None
    from ..ros.bag import BagWriter

    return BagWriter(record_path, overwrite=overwrite).open()


def _write(writer: 'BagWriter', topic: str, msg: Any, t_ns: int) -> None:
    """``writer.write``: deterministic CDR (ros.bag.serialize), so equal runs give equal bytes."""
    writer.write(topic, msg, t_ns)


def _close_writer(writer: 'BagWriter | None') -> None:
    if writer is not None:
        writer.close()


# ----------------------------------------------------------------- lock-step --

def run_bag_lockstep(config_path: str | Path | None, bag_path: str | Path, record_path: str | Path | None,
                     progress: bool = True, *, faults: str | Path | None = None, domain_id: int | None = None,
                     overwrite: bool = False, publish_to_dds: bool = False,
                     progress_stream: TextIO | None = None) -> RunSummary:
    """Run ``bag_path`` through the composed nodes deterministically (see the module docstring).

    Every bag message on an :func:`input_topics` topic is deserialized and fed
    at its log time; then sim time runs on ``drain_s`` past the bag's end.
    Messages the nodes publish on the config's record topics are written to
    ``record_path`` (None: no recording) with log time = sim time.

    publish_to_dds : also publish the nodes' outputs over DDS (to watch in RViz); slower
    Raises ConfigError / BagError for a bad config or bag.
    """
    from ..ros.bag import BagReader
    from .lockstep import LockstepRunner

    config = load_platoon_config(config_path)
    plan = load_faults(faults, config)
    renames = plan.renames() if plan is not None else {}
    record = set(config.record_topics)
    with BagReader(bag_path) as reader:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
        bag_topics = reader.topics()
        ctx = _init_context(domain_id)
        nodes: list[Node] = []
        writer = None
        counts = {'in': 0, 'out': 0, 'recorded': 0, 'bad': 0}
        meter = _Progress(progress, (end_ns - start_ns) / _NS_PER_S, stream=progress_stream)
        try:
            nodes = compose_nodes(config, ctx, use_sim_time=True, faults=plan, origin_ns=start_ns)
            inputs = input_topics(nodes)
            feed = sorted(t for t in bag_topics if renames.get(t, t) in inputs)
            writer = _open_writer(record_path, overwrite)
            meter.restart()   # wall time of the run itself, without node start-up

            def recorder(topic: str, msg: Any, t_ns: int) -> None:
                counts['out'] += 1
                if writer is not None and topic in record:
                    _write(writer, topic, msg, t_ns)
                    counts['recorded'] += 1

            runner = LockstepRunner(nodes, recorder, publish_to_dds=publish_to_dds, start_ns=start_ns)
            for topic, msgtype, log_time_ns, raw in reader.messages(feed):
                try:
                    msg = reader.deserialize(msgtype, raw)
                except BagError as exc:
                    counts['bad'] += 1
                    if counts['bad'] == 1:
                        print(f'run: skipping undecodable messages (first: {topic} at {log_time_ns} ns: {exc})',
                              file=progress_stream or sys.stderr)
                    continue
                runner.feed(renames.get(topic, topic), msg, log_time_ns)
                counts['in'] += 1
                meter.update((log_time_ns - start_ns) / _NS_PER_S)
            stop_ns = end_ns + int(round(config.drain_s * _NS_PER_S))
            runner.advance_to(stop_ns)
            _close_writer(writer)
            writer = None
        finally:
            if writer is not None:   # interrupted or failed: keep what was recorded, readable
                try:
                    writer.close()
                except BagError:
                    pass
            _destroy(nodes)
            _shutdown(ctx)
    return RunSummary(sim_s=(stop_ns - start_ns) / _NS_PER_S, wall_s=meter.wall_s, messages_in=counts['in'],
                      messages_out=counts['out'], recorded=counts['recorded'],
                      record_path=Path(record_path) if record_path is not None else None)


def _shutdown(ctx: 'Context') -> None:
    import rclpy

    try:
        rclpy.try_shutdown(context=ctx)
    except Exception:
        pass


# ---------------------------------------------------------------- live runs --

class _Recorder:
    """A node subscribing to the record topics and writing them to a bag (log time = its clock)."""

    def __init__(self, context: 'Context', topics: dict[str, type], writer: 'BagWriter | None',
                 use_sim_time: bool) -> None:
        from rclpy.node import Node
        from rclpy.parameter import Parameter

        from ..ros.bag import message_type_name, topic_qos

        self.node = Node('run_recorder', context=context,
                         parameter_overrides=[Parameter('use_sim_time', Parameter.Type.BOOL, use_sim_time)])
        self.writer = writer
        self.count = 0
        for topic, cls in sorted(topics.items()):
            msgtype = message_type_name(cls)
            # raw=True: write the received CDR bytes, no deserialize / serialize round trip.
            self.node.create_subscription(cls, topic, self._callback(topic, msgtype), topic_qos(topic), raw=True)

    def _callback(self, topic: str, msgtype: str) -> Callable[[bytes], None]:
        def on_message(raw: bytes) -> None:
            self.count += 1
            if self.writer is not None:
                t_ns = max(0, int(self.node.get_clock().now().nanoseconds))
                self.writer.write_serialized(topic, msgtype, raw, t_ns)

        return on_message


class _Spinner:
    """A SingleThreadedExecutor spinning nodes in a background thread until :meth:`stop`.

    Single-threaded on purpose (ROS 2's default component container is too): under the
    GIL a MultiThreadedExecutor runs no Python in parallel, but hands every callback to
    a pool thread and lets one node's callbacks race for its mutually exclusive group.
    Measured on two loaded cores, that used ~1.5x the CPU and let the vehicle's 50 Hz
    odometry lose the race to its sweeps and /clock (rclpy takes one message per
    subscription per wait), so odometry fell 1-2 s behind. One thread takes every
    ready subscription in turn on each wait.
    """

    def __init__(self, context: 'Context', nodes: Sequence['Node']) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=context)
        self.nodes = list(nodes)
        for node in self.nodes:
            self.executor.add_node(node)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, name='run-executor', daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            while not self._stop.is_set() and self.executor.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            pass
        except BaseException as exc:  # reported by the caller; the thread must not print a traceback
            self.error = exc

    def stop(self) -> None:
        """Stop spinning, let running callbacks finish, and detach the nodes (they can then be destroyed)."""
        self._stop.set()
        self.thread.join(timeout=10.0)
        try:
            self.executor.shutdown(timeout_sec=5.0)
        except Exception:
            pass
        for node in self.nodes:
            try:
                self.executor.remove_node(node)
            except Exception:
                pass


def _wait_until_quiet(count: Callable[[], int], quiet_s: float, max_s: float,
                      should_continue: Callable[[], bool] = lambda: True) -> bool:
    """Sleep until ``count()`` has not changed for ``quiet_s`` wall seconds (True), or ``max_s`` passed (False)."""
    start = last_change = time.monotonic()
    seen = count()
    while should_continue():
        now = time.monotonic()
        if now - last_change >= quiet_s:
            return True
        if now - start >= max_s:
            return False
        time.sleep(min(0.05, quiet_s))
        if (n := count()) != seen:
            seen, last_change = n, time.monotonic()
    return False


def run_bag_live(config_path: str | Path | None, bag_path: str | Path, rate: float,
                 record_path: str | Path | None, progress: bool = True, *, faults: str | Path | None = None,
                 domain_id: int | None = None, overwrite: bool = False, wait_for_subscribers_s: float = 15.0,
                 drain_wall_s: float = 1.0, max_drain_wall_s: float = 30.0,
                 progress_stream: TextIO | None = None) -> RunSummary:
    """Replay ``bag_path`` over DDS with /clock at ``rate`` into the nodes, spun by one executor thread.

    The nodes run with ``use_sim_time``; a recorder node writes the record
    topics with log time = its sim clock. After the last message the nodes
    first work off what is still queued, with /clock held at the last
    message (a clock jump would time out streams whose messages are merely
    queued); then /clock is advanced ``drain_s`` past the bag's end. Each of
    the two drains lasts until the recorded outputs have been quiet for
    ``drain_wall_s`` wall seconds, at most ``max_drain_wall_s``. Ctrl-C stops
    it cleanly (KeyboardInterrupt is re-raised after cleanup, the record bag is
    closed readable).
    """
    from rosgraph_msgs.msg import Clock

    from ..ros.bag import BagReader
    from ..ros.time import ns_to_stamp
    from .player import BagPlayer, ReplayPublisher

    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise ConfigError(f'--rate must be a finite number > 0, got {rate!r}')
    config = load_platoon_config(config_path)
    plan = load_faults(faults, config)
    renames = plan.renames() if plan is not None else {}
    with BagReader(bag_path) as reader:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
        bag_topics = reader.topics()
        ctx = _init_context(domain_id)
        nodes: list[Node] = []
        extra: list[Node] = []
        writer = None
        spinner = None
        meter = _Progress(progress, (end_ns - start_ns) / _NS_PER_S, stream=progress_stream)
        last_ns = start_ns
        try:
            import rclpy
            from rclpy.qos import DurabilityPolicy

            nodes = compose_nodes(config, ctx, use_sim_time=True, faults=plan, origin_ns=start_ns)
            inputs = input_topics(nodes)
            feed = {t: bag_topics[t] for t in sorted(bag_topics) if renames.get(t, t) in inputs}
            record = {t: c for t, c in published_topics(nodes).items() if t in set(config.record_topics)}
            writer = _open_writer(record_path, overwrite)
            recorder = _Recorder(ctx, record, writer, use_sim_time=True)
            extra.append(recorder.node)
            # a faulted vehicle's odometry / time reference go out as /<v>/raw/... (remap rules)
            player_node = rclpy.create_node('run_replay', context=ctx,
                                            cli_args=plan.remap_args() if plan is not None else None)
            extra.append(player_node)
            latched = [t for t in feed if (q := reader.offered_qos(t)) is not None
                       and q.durability == DurabilityPolicy.TRANSIENT_LOCAL]
            out = ReplayPublisher(player_node, feed, latched)
            spinner = _Spinner(ctx, [*nodes, recorder.node])
            # every in-process subscriber of a topic, not just one: the bag's first messages (the one
            # time reference that lets the vehicle publish for a second) must reach all of them
            expected: dict[str, int] = {}
            for node in (*nodes, recorder.node):
                for sub in node.subscriptions:
                    expected[sub.topic_name] = expected.get(sub.topic_name, 0) + 1
            if not out.wait_for_subscribers(wait_for_subscribers_s, ctx.ok, expected):
                player_node.get_logger().warning('not every input topic has a subscriber yet; replaying anyway')
            player = BagPlayer(reader, rate=rate, topics=list(out.publishers))
            for log_time_ns, topic, _msgtype, raw in player:
                if not player.wait_until(log_time_ns, ctx.ok):
                    break
                out.publish(log_time_ns, topic, raw)
                last_ns = log_time_ns
                meter.update((log_time_ns - start_ns) / _NS_PER_S)
            out.wait_for_acked(2.0)
            _wait_until_quiet(lambda: recorder.count, drain_wall_s, max_drain_wall_s, ctx.ok)
            last_ns = end_ns + int(round(config.drain_s * _NS_PER_S))
            out.clock_pub.publish(Clock(clock=ns_to_stamp(last_ns)))
            _wait_until_quiet(lambda: recorder.count, drain_wall_s, max_drain_wall_s, ctx.ok)
            spinner.stop()
            if spinner.error is not None:
                raise spinner.error
            spinner = None
            _close_writer(writer)
            writer = None
            return RunSummary(sim_s=(last_ns - start_ns) / _NS_PER_S, wall_s=meter.wall_s,
                              messages_in=out.published, messages_out=recorder.count,
                              recorded=recorder.count if record_path is not None else 0,
                              record_path=Path(record_path) if record_path is not None else None)
        finally:
            if spinner is not None:
                spinner.stop()
            if writer is not None:
                try:
                    writer.close()
                except BagError:
                    pass
            _destroy([*nodes, *extra])
            _shutdown(ctx)


def run_live(config_path: str | Path | None, record_path: str | Path | None = None, *,
             faults: str | Path | None = None, domain_id: int | None = None, overwrite: bool = False,
             duration_s: float | None = None, should_continue: Callable[[], bool] | None = None) -> RunSummary:
    """Spin the composed nodes on the live sensor topics until Ctrl-C (or ``duration_s`` wall seconds).

    Time is whatever the params files say (wall time unless they set use_sim_time).
    Record topics go to ``record_path`` with log time = the recorder's clock.
    """
    config = load_platoon_config(config_path)
    plan = load_faults(faults, config)
    ctx = _init_context(domain_id)
    nodes: list[Node] = []
    extra: list[Node] = []
    writer = None
    spinner = None
    start = time.perf_counter()
    try:
        nodes = compose_nodes(config, ctx, faults=plan)
        sim = any(n.get_parameter('use_sim_time').value for n in nodes)
        record = {t: c for t, c in published_topics(nodes).items() if t in set(config.record_topics)}
        writer = _open_writer(record_path, overwrite)
        recorder = _Recorder(ctx, record, writer, use_sim_time=bool(sim))
        extra.append(recorder.node)
        spinner = _Spinner(ctx, [*nodes, recorder.node])
        keep_going = should_continue or (lambda: True)
        while ctx.ok() and spinner.thread.is_alive() and keep_going():
            if duration_s is not None and time.perf_counter() - start >= duration_s:
                break
            time.sleep(0.05)
        spinner.stop()
        if spinner.error is not None:
            raise spinner.error
        spinner = None
        _close_writer(writer)
        writer = None
        wall = time.perf_counter() - start
        return RunSummary(sim_s=wall, wall_s=wall, messages_in=0, messages_out=recorder.count,
                          recorded=recorder.count if record_path is not None else 0,
                          record_path=Path(record_path) if record_path is not None else None)
    finally:
        if spinner is not None:
            spinner.stop()
        if writer is not None:
            try:
                writer.close()
            except BagError:
                pass
        _destroy([*nodes, *extra])
        _shutdown(ctx)
