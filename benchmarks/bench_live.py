"""Live benchmark: every node its own OS process, fed by a bag replayed at sensor rate.

Per platoon size N (``--vehicles 2 4 8``): simulate ``--duration`` s of a
``highway_occlusion`` variant with N vehicles; start the vehicle nodes, fusion
and twin as processes (bringup :class:`NodeSpec` commands, ``use_sim_time``, an
isolated ROS domain); replay the bag (``cooperative-fusion replay --rate R``);
listen from this process, which is not measured. ``--wall-clock``: as on a
vehicle, no /clock: the nodes run on the system clock (no ``use_sim_time``) and
the replay shifts every stamp onto it (``replay --wall-clock``, rate 1), so no
node pays a /clock callback and timers fire on time. Reported: evidence published /
fused, fusion drops by cause, data age (:func:`age_samples`) p50 / p95 / max and
trend, CPU cores per second of data of each process (``/proc/<pid>/stat``).
Reference, same run: the same bag and nodes in one process, lock-step
(``cooperative-fusion run --bag``), in cores per second of data.

Last line: ``live_n2_clock=sim|wall live_n2_fused=... live_n2_too_old=... live_n2_age_p95_ms=...
live_n2_cores_fusion=... ...``.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'config'
SCENARIO = CONFIG / 'scenarios' / 'highway_occlusion.yaml'
SEED = 7
NS_PER_S = 1_000_000_000


# ------------------------------------------------------------------ pure helpers --

def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100, linear interpolation) of ``values``; NaN when empty."""
    if len(values) == 0:
        return math.nan
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def trend_slope(times_s: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` over ``times_s`` (value units per second); NaN without two distinct times."""
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.size < 2 or float(np.ptp(t)) == 0.0:
        return math.nan
    tc = t - t.mean()
    return float(np.dot(tc, v - v.mean()) / np.dot(tc, tc))


def parse_proc_stat(text: str) -> tuple[int, int]:
    """``(utime, stime)`` in clock ticks from the text of ``/proc/<pid>/stat``.

    The command name (field 2) is in parentheses and may hold spaces or ')', so
    fields are counted after the last ')': utime and stime are fields 14 and 15.
    """
    close = text.rfind(')')
    if close < 0:
        raise ValueError(f'not a /proc/<pid>/stat line (no "(comm)"): {text[:80]!r}')
    rest = text[close + 1:].split()
    if len(rest) < 13:
        raise ValueError(f'/proc/<pid>/stat line has {len(rest) + 2} fields, expected at least 15')
    return int(rest[11]), int(rest[12])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far; NaN once it is gone."""
    try:
        utime, stime = parse_proc_stat(Path(f'/proc/{pid}/stat').read_text())
    except (OSError, ValueError):
        return math.nan
    return (utime + stime) / os.sysconf('SC_CLK_TCK')


def cdr_header_stamp_ns(raw: bytes) -> int:
    """``header.stamp`` in ns of a serialized (CDR) message that starts with a std_msgs/Header."""
    if len(raw) < 12:
        raise ValueError(f'{len(raw)} bytes: too short for a CDR header stamp')
    endian = '<' if raw[1] & 1 else '>'     # encapsulation id: 0x0001 CDR_LE, 0x0000 CDR_BE
    sec, nanosec = struct.unpack_from(f'{endian}iI', raw, 4)
    return sec * NS_PER_S + nanosec


def drop_counts(statuses: Iterable[Mapping[str, str]]) -> dict[str, int]:
    """Drops by cause summed over status value maps: every ``drops.<...>`` key but the totals.

    The cause is what follows ``drops.`` (``drops.too_old`` -> ``too_old``,
    ``drops.evidence.too_old`` -> ``evidence.too_old``).
    """
    out: dict[str, int] = {}
    for values in statuses:
        for key, value in values.items():
            if not key.startswith('drops.') or key == 'drops.total' or key.endswith('.total'):
                continue
            n = as_number(value)
            if math.isfinite(n):
                cause = key[len('drops.'):]
                out[cause] = out.get(cause, 0) + int(n)
    return out


def split_too_old(drops: Mapping[str, int]) -> tuple[int, int]:
    """``(too_old, everything else)`` of drops by cause (any cause naming too_old counts as too_old)."""
    too_old = sum(n for cause, n in drops.items() if 'too_old' in cause)
    return too_old, sum(drops.values()) - too_old


def as_number(value: str) -> float:
    """A diagnostics value as a float (NaN when it is not a number)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fusion_statuses(msg: Any) -> dict[str, dict[str, str]]:
    """The fusion node's statuses of a DiagnosticArray: '' (the node's own) or vehicle id -> values."""
    out = {}
    for status in msg.status:
        if status.name.startswith('fusion'):
            key = status.name.split(':', 1)[1].strip() if ':' in status.name else ''
            out[key] = {kv.key: kv.value for kv in status.values}
    return out


def age_samples(evidence_stamps: Mapping[str, Sequence[int]],
                diagnostics: Sequence[tuple[int, Mapping[str, Mapping[str, str]]]]
                ) -> list[tuple[int, float]]:
    """Data age samples ``(sim time ns, age ms)`` of the common grid, one per vehicle per fusion diagnostics.

    evidence_stamps : vehicle id -> sensor stamps (ns) of its evidence grids in publish order
    diagnostics : ``(the message's stamp: the fusion node's sim time when it reported, vehicle id ->
        that vehicle's fusion status values)`` in arrival order

    Age at a fusion /diagnostics message = (the fusion's sim time when it reported, which
    follows the replay's /clock) - (sensor stamp of the vehicle's newest evidence fused by
    then): how old the newest data of that vehicle in the common grid is. The
    fusion node reports no fused stamps, so the newest one is reconstructed from its
    counters: it takes each vehicle's evidence in order, so after ``received`` messages
    the newest it has seen is the received-th published one; it counts as fused when
    ``accepted`` grew since the previous report, else the previous newest stands.
    A node that falls behind shows: a backlog keeps ``received`` behind what was
    published, and evidence dropped as too old leaves the fused stamp where it was,
    so the age grows with sim time in both cases. For a node that keeps up it exceeds
    the age at the first grid holding the evidence by at most one evidence period;
    evidence lost in the fusion's full queue ("not taken in") makes it read high.
    """
    samples: list[tuple[int, float]] = []
    accepted_before: dict[str, float] = {}
    newest: dict[str, int] = {}
    for t_ns, per_vehicle in diagnostics:
        for vid, values in per_vehicle.items():
            stamps = evidence_stamps.get(vid, ())
            received = as_number(values.get('received', 'nan'))
            accepted = as_number(values.get('accepted', 'nan'))
            if not (math.isfinite(received) and math.isfinite(accepted)):
                continue
            if accepted > accepted_before.get(vid, 0.0) and received >= 1 and stamps:
                newest[vid] = stamps[min(int(received), len(stamps)) - 1]
            accepted_before[vid] = accepted
            if vid in newest:
                samples.append((t_ns, (t_ns - newest[vid]) / 1e6))
    return samples


# ----------------------------------------------------------------- inputs: files --

class _NoAliasDumper(yaml.SafeDumper):
    """ROS 2's params-file parser rejects YAML anchors and aliases: write repeated lists out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump_yaml(data: Any, sort_keys: bool = False) -> str:
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=sort_keys)


def _vehicle_entries(raw_scenario: dict[str, Any]) -> list[dict[str, Any]]:
    return raw_scenario['platoon']['vehicles']


def scenario_variant(raw: dict[str, Any], n: int) -> dict[str, Any]:
    """The parsed scenario ``raw`` with ``n`` platoon vehicles (a new dict).

    Fewer: the first ``n``. More: cars appended at the last follower's gap, ids v5, v6, ...,
    sensors, clock and localisation copied from the scenario's cars in turn.
    """
    if n < 1:
        raise ValueError(f'a platoon needs at least one vehicle, got {n}')
    out = copy.deepcopy(raw)
    vehicles = _vehicle_entries(out)
    cars = [v for v in vehicles if v.get('type') == 'car']
    gap = vehicles[-1].get('gap_m', 15.0)
    ids = {v['id'] for v in vehicles}
    k = len(vehicles)
    while len(vehicles) < n:
        k += 1
        vid = f'v{k}'
        if vid in ids:
            raise ValueError(f'vehicle id {vid} is taken')
        entry = copy.deepcopy(cars[(len(vehicles) - len(raw['platoon']['vehicles'])) % len(cars)])
        entry.update(id=vid, gap_m=gap)
        vehicles.append(entry)
    out['platoon']['vehicles'] = vehicles[:n]
    out['name'] = f'{raw.get("name", "scenario")}_n{n}'
    return out


def _renamed(value: Any, old: str, new: str) -> Any:
    """``value`` with the vehicle id ``old`` replaced by ``new`` in keys and strings (``/v1/...``, ``v1/lidar``)."""
    if isinstance(value, dict):
        return {_renamed(k, old, new): _renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    if isinstance(value, str):
        if value == old:
            return new
        return value.replace(f'/{old}/', f'/{new}/').replace(f'{old}/', f'{new}/') \
            if value.startswith((f'/{old}/', f'{old}/')) else value
    return value


def vehicle_params_file(template: Path, template_id: str, vid: str, out_dir: Path) -> Path:
    """A copy of the params file ``template`` (of ``template_id``) for vehicle ``vid`` in ``out_dir``."""
    data = yaml.safe_load(template.read_text())
    path = out_dir / f'{vid}.yaml'
    path.write_text(_dump_yaml(_renamed(data, template_id, vid), sort_keys=False))
    return path


def platoon_config_file(scenario: Any, raw_scenario: dict[str, Any], out_dir: Path,
                        base: Path = CONFIG / 'platoon.yaml') -> Path:
    """``out_dir/platoon.yaml``: ``base`` with the vehicle entries of ``scenario``'s platoon.

    An id of ``base`` keeps its entry; a new id copies the entry (and the own params file,
    renamed) of the first vehicle of ``base`` of the same type. Paths become absolute.
    """
    raw = yaml.safe_load(base.read_text())
    entries = {e['id']: e for e in raw['vehicles']}
    types = {v['id']: v.get('type', 'car') for v in _vehicle_entries(raw_scenario)}
    vehicles_dir = out_dir / 'vehicles'
    vehicles_dir.mkdir(parents=True, exist_ok=True)

    def absolute(p: str) -> str:
        return str((base.parent / p).resolve())

    out_entries = []
    for v in scenario.platoon.vehicles:
        if v.id in entries:
            entry = copy.deepcopy(entries[v.id])
            entry['params'] = [absolute(p) for p in entry['params']]
        else:
            template_id = next(t for t in entries if types.get(t, 'car') == v.type.value)
            entry = copy.deepcopy(entries[template_id])
            entry['id'] = v.id
            params = []
            for p in entry['params']:
                if Path(p).stem == template_id:
                    params.append(str(vehicle_params_file(base.parent / p, template_id, v.id, vehicles_dir)))
                else:
                    params.append(absolute(p))
            entry['params'] = params
        # the body the scenario gives the vehicle: fusion and twin take it from here (platoon parameters)
        entry['body'] = {'length_m': float(v.dimensions.length_m), 'width_m': float(v.dimensions.width_m),
                         'rear_overhang_m': float(v.dimensions.rear_overhang_m)}
        out_entries.append(entry)
    raw['vehicles'] = out_entries
    for key in ('fusion', 'twin'):
        params = raw[key]['params']
        params = [params] if isinstance(params, str) else list(params)
        raw[key]['params'] = [absolute(p) for p in params]
    path = out_dir / 'platoon.yaml'
    path.write_text(_dump_yaml(raw, sort_keys=False))
    return path


def simulate_bag(n: int, duration_s: float, out_dir: Path) -> tuple[Any, dict[str, Any], Path, dict[str, int]]:
    """Simulate ``duration_s`` of the N-vehicle variant into ``out_dir/scenario``.

    Returns (scenario, its raw dict, the bag, messages per topic).
    """
    from cooperative_fusion.core.config_files import read_yaml
    from cooperative_fusion.sim.bag_writer import write_simulation
    from cooperative_fusion.sim.scenario import scenario_from_dict
    from cooperative_fusion.sim.world import Simulation

    raw = scenario_variant(read_yaml(SCENARIO, 'scenario file'), n)
    scenario = scenario_from_dict(raw, f'{SCENARIO} with {n} vehicles')
    bag = out_dir / 'scenario'
    counts = write_simulation(Simulation(scenario, seed=SEED).events(duration_s=duration_s), bag,
                              progress=False, overwrite=True)
    return scenario, raw, bag, counts


# ------------------------------------------------------------------ live run --

@dataclass
class LiveResult:
    """What one live run measured (counts over the run; cores = CPU seconds per second of data)."""

    n: int
    data_s: float
    clock: str = 'sim'       # 'sim': nodes on the replay's /clock; 'wall': on the system clock
    sweeps: int = 0          # lidar sweeps in the bag: the evidence grids the vehicles could publish
    published: int = 0
    received: int = 0
    fused: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    grids: int = 0
    ages_ms: list[float] = field(default_factory=list)
    evidence_delay_ms: list[float] = field(default_factory=list)
    age_times_s: list[float] = field(default_factory=list)
    fusion_reported_ms: tuple[float, float] = (math.nan, math.nan)
    cores: dict[str, float] = field(default_factory=dict)
    reference: Reference | None = None

    @property
    def reference_cores(self) -> float:
        return self.reference.cores if self.reference is not None else math.nan

    @property
    def too_old(self) -> int:
        return split_too_old(self.drops)[0]

    @property
    def other_drops(self) -> int:
        return split_too_old(self.drops)[1]

    @property
    def lost(self) -> int:
        """Evidence published that the fusion never took in (its queue overflowed, or still queued at the end)."""
        return max(0, self.published - self.received)

    def vehicle_cores(self) -> list[float]:
        return [c for name, c in self.cores.items() if name.startswith('vehicle_node')]

    def pipeline_cores(self) -> float:
        return sum(c for name, c in self.cores.items() if name != 'replay')


class _Listener:
    """This process's view of the run: evidence and grid stamps, fusion diagnostics, on sim time (or, with
    ``wall_clock``, on the system clock)."""

    def __init__(self, context: Any, vehicles: Sequence[str], wall_clock: bool = False) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import OccupancyGrid, Odometry
        from rclpy.parameter import Parameter
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock

        from cooperative_fusion.ros.qos import clock_qos

        self.node = rclpy.create_node('bench_live_listener', context=context, parameter_overrides=[
            Parameter('use_sim_time', Parameter.Type.BOOL, not wall_clock)])
        self.vehicles = list(vehicles)
        self.evidence: dict[str, list[int]] = {v: [] for v in vehicles}      # sensor stamps, ns
        self.evidence_arrivals: list[tuple[int, int]] = []   # (sim time on arrival here, sensor stamp), ns
        self.grid_stamps: list[int] = []
        self.diagnostics: list[tuple[int, int, dict[str, dict[str, str]]]] = []
        self.first_input_wall: float | None = None      # monotonic s of the first /clock (wall: first odom)
        self.last_output_wall = time.monotonic()       # any output: evidence or a common grid
        self.last_evidence_wall = time.monotonic()

        def deep(durability: DurabilityPolicy) -> QoSProfile:
            return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                              reliability=ReliabilityPolicy.RELIABLE, durability=durability)

        for v in vehicles:
            self.node.create_subscription(OccupancyGrid, f'/{v}/evidence_grid', self._on_evidence(v),
                                          deep(DurabilityPolicy.VOLATILE), raw=True)
        self.node.create_subscription(OccupancyGrid, '/cooperative/grid', self._on_grid,
                                      deep(DurabilityPolicy.TRANSIENT_LOCAL), raw=True)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      deep(DurabilityPolicy.VOLATILE))
        if wall_clock:      # the first input marks the start: the first vehicle's odometry, 50 Hz
            self.node.create_subscription(Odometry, f'/{vehicles[0]}/odom', self._on_clock,
                                          deep(DurabilityPolicy.VOLATILE), raw=True)
            self.clock_pub = None
        else:
            self.node.create_subscription(Clock, '/clock', self._on_clock, clock_qos())
            self.clock_pub = self.node.create_publisher(Clock, '/clock', clock_qos())

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def _on_clock(self, _msg: Any) -> None:
        if self.first_input_wall is None:
            self.first_input_wall = time.monotonic()

    def _on_evidence(self, vid: str) -> Callable[[bytes], None]:
        def on_message(raw: bytes) -> None:
            stamp = cdr_header_stamp_ns(raw)
            self.evidence[vid].append(stamp)
            self.evidence_arrivals.append((self.now_ns(), stamp))
            self.last_output_wall = self.last_evidence_wall = time.monotonic()
        return on_message

    def _on_grid(self, raw: bytes) -> None:
        self.grid_stamps.append(cdr_header_stamp_ns(raw))
        self.last_output_wall = time.monotonic()

    def _on_diagnostics(self, msg: Any) -> None:
        fusion = fusion_statuses(msg)
        if fusion:
            stamp = msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec
            self.diagnostics.append((self.now_ns(), stamp, fusion))

    def latest_fusion_status(self) -> dict[str, dict[str, str]]:
        """The newest values of every fusion status ('' = the node's own, else a vehicle id)."""
        latest: dict[str, dict[str, str]] = {}
        for _, _, statuses in self.diagnostics:
            latest.update(statuses)
        return latest


def _stop(procs: Mapping[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 10.0
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _log_tails(logs: Mapping[str, Path]) -> str:
    return '\n'.join(f'--- {name}:\n' + path.read_text(errors='replace')[-1500:] for name, path in logs.items())


def run_live(n: int, duration_s: float, rate: float, work: Path, reference: bool = True,
             startup_timeout_s: float = 120.0, clock_hz: float | None = None,
             node_executor: str | None = None, wall_clock: bool = False) -> LiveResult:
    """Simulate, start the nodes as processes, replay at ``rate``, listen, measure. Raises RuntimeError on failure.

    clock_hz : the replay's ``--clock-hz`` (None: its default). A node's sim clock lags the bag by up to one
        clock period, so that period is added to every age and delay read on a sim clock (an upper bound).
    node_executor : the nodes' ``executor`` parameter (None: their default)
    wall_clock : nodes and this process on the system clock, ``replay --wall-clock`` (rate must be 1): ages are
        read on the wall clock, with no clock lag to add
    """
    if wall_clock and (rate != 1.0 or clock_hz is not None):
        raise ValueError('a wall-clock run replays at rate 1 and has no /clock rate')
    import rclpy

    from cooperative_fusion.app.player import DEFAULT_CLOCK_HZ
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rosgraph_msgs.msg import Clock

    from cooperative_fusion.app.platoon import load_platoon_config
    from cooperative_fusion.ros.bag import BagReader
    from cooperative_fusion.ros.time import ns_to_stamp

    work.mkdir(parents=True, exist_ok=True)
    scenario, raw, bag, counts = simulate_bag(n, duration_s, work)
    cfg_path = platoon_config_file(scenario, raw, work)
    cfg = load_platoon_config(cfg_path)
    with BagReader(bag) as reader:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
        inputs = sorted(t for t in reader.topics() if not t.startswith('/truth/'))
    result = LiveResult(n=n, data_s=(end_ns - start_ns) / NS_PER_S, clock='wall' if wall_clock else 'sim',
                        sweeps=sum(counts.get(f'/{v}/lidar/points', 0) for v in cfg.vehicles))

    domain = random.SystemRandom().randint(1, 101)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1')
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    listener = _Listener(ctx, cfg.vehicles, wall_clock)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(listener.node)
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}

    def start(name: str, cmd: list[str]) -> subprocess.Popen:
        logs[name] = work / f'{name}.log'
        with open(logs[name], 'w') as log:
            procs[name] = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        return procs[name]

    def spin_until(done: Callable[[], bool], timeout_s: float, on_spin: Callable[[], None] = lambda: None) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            for name, p in procs.items():
                if name != 'replay' and p.poll() is not None:
                    raise RuntimeError(f'{name} exited with {p.returncode}\n{_log_tails(logs)}')
            executor.spin_once(timeout_sec=0.02)
            on_spin()
        return True

    try:
        for spec in cfg.node_specs():
            extra = ['-p', f'executor:={node_executor}'] if node_executor else []
            start(f'{spec.kind.executable}{spec.namespace.replace("/", "_")}',
                  spec.command(sys.executable, use_sim_time=not wall_clock) + extra)
        node = listener.node
        if not spin_until(lambda: node.count_publishers('/cooperative/grid') >= 1
                          and node.count_subscribers('/cooperative/grid') >= 2      # the twin and this process
                          and all(node.count_subscribers(f'/{v}/lidar/points') >= 1 for v in cfg.vehicles),
                          startup_timeout_s):
            raise RuntimeError(f'nodes did not come up in {startup_timeout_s:.0f} s\n{_log_tails(logs)}')
        pipeline = dict(procs)
        cpu_start: dict[str, float] = {}

        def mark_start() -> None:
            if not cpu_start and listener.first_input_wall is not None:
                cpu_start.update({name: cpu_seconds(p.pid) for name, p in procs.items()})

        replay_cpu = [math.nan]

        def on_spin() -> None:
            mark_start()
            if (c := cpu_seconds(replay.pid)) == c:     # its /proc entry goes when it is reaped
                replay_cpu[0] = c

        clock_hz = DEFAULT_CLOCK_HZ if clock_hz is None else clock_hz
        timing = (['--wall-clock'] if wall_clock else
                  ['--rate', str(rate), '--clock-hz', str(clock_hz),
                   '--clock-subscribers', str(len(pipeline) + 1)])     # every node and this process
        replay = start('replay', [sys.executable, '-m', 'cooperative_fusion.cli', 'replay', str(bag),
                                  *timing, '--wait-for-subscribers', '30', '--topics', *inputs])
        if not spin_until(lambda: replay.poll() is not None, duration_s / rate + 90.0, on_spin):
            raise RuntimeError(f'replay did not finish\n{_log_tails(logs)}')
        if replay.returncode != 0 or not cpu_start:
            raise RuntimeError(f'replay failed (exit {replay.returncode})\n{_log_tails(logs)}')
        # queued work is part of the data's cost: wait until the outputs have been quiet for 1 s (on the wall
        # clock the fusion's heartbeat grids never stop: there, until the evidence has been)
        spin_until(lambda: time.monotonic() - (listener.last_evidence_wall if wall_clock
                                               else listener.last_output_wall) > 1.0, 30.0)
        for name, p in pipeline.items():
            result.cores[name] = (cpu_seconds(p.pid) - cpu_start[name]) / result.data_s
        result.cores['replay'] = (replay_cpu[0] - cpu_start['replay']) / result.data_s
        offset_ns = replay_offset_ns(logs['replay'].read_text()) if wall_clock else 0
        if wall_clock:      # the fusion's diagnostics timer reports the final counters on its own
            quiet_ns = time.time_ns()
            spin_until(lambda: any(s >= quiet_ns for _, s, _ in listener.diagnostics), 15.0)
        else:               # sim time past the end: the fusion's diagnostics timer reports the final counters
            listener.clock_pub.publish(Clock(clock=ns_to_stamp(end_ns + int(1.2 * NS_PER_S))))
            spin_until(lambda: any(s >= end_ns for _, s, _ in listener.diagnostics), 15.0)
    finally:
        _stop(procs)
        executor.remove_node(listener.node)
        listener.node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=ctx)

    _summarise(result, listener, cfg.vehicles, start_ns + offset_ns, end_ns + offset_ns,
               clock_lag_ns=int(round(NS_PER_S / clock_hz)) if clock_hz > 0 and not wall_clock else 0)
    if reference:
        result.reference = lockstep_reference(cfg_path, bag, result.data_s, work)
    return result


def replay_offset_ns(log: str) -> int:
    """The offset (ns) a ``replay --wall-clock`` added to every stamp, from its last output line."""
    marker = 'stamps shifted by '
    if marker not in log:
        raise RuntimeError(f'the wall-clock replay did not report its offset:\n{log[-1500:]}')
    return int(log.rsplit(marker, 1)[1].split()[0])


def _summarise(result: LiveResult, listener: _Listener, vehicles: Sequence[str], start_ns: int, end_ns: int,
               clock_lag_ns: int = 0) -> None:
    """Fill ``result``'s counts, drops and ages from what ``listener`` heard (the fusion's last report).

    start_ns, end_ns : the data's first and last stamp on the nodes' clock (a wall-clock run: bag times + the
        replay's offset)
    clock_lag_ns : how far a node's sim clock may lag the bag (one /clock period), added to each age and delay
        and to the fusion's own first-grid age (all upper bounds); 0 on the wall clock
    """
    final = listener.latest_fusion_status()

    def total(key: str) -> int:
        values = [as_number(final.get(v, {}).get(key, 'nan')) for v in vehicles]
        return int(sum(x for x in values if math.isfinite(x)))

    result.published = sum(len(s) for s in listener.evidence.values())
    # grids stamped within the data (on the wall clock the heartbeat also runs before and after it)
    result.grids = sum(1 for stamp in listener.grid_stamps if start_ns <= stamp <= end_ns)
    result.evidence_delay_ms = [(t + clock_lag_ns - stamp) / 1e6 for t, stamp in listener.evidence_arrivals
                                if t <= end_ns]
    result.received, result.fused = total('received'), total('accepted')
    result.drops = drop_counts(final.values())
    own = final.get('', {})
    result.fusion_reported_ms = (as_number(own.get('latency_ms.p50', 'nan')) + clock_lag_ns / 1e6,
                                 as_number(own.get('latency_ms.p95', 'nan')) + clock_lag_ns / 1e6)
    # after the run's end sim time moved on only to flush the counters: no delay or age samples there
    # timed by the fusion's own sim clock (the diagnostics stamp): this process's /clock may lag on a busy
    # machine and gave negative ages when it did
    diags = [(stamp, {v: s[v] for v in vehicles if v in s}) for t, stamp, s in listener.diagnostics if t <= end_ns]
    for t_ns, age in age_samples(listener.evidence, diags):
        result.age_times_s.append((t_ns - start_ns) / NS_PER_S)
        result.ages_ms.append(age + clock_lag_ns / 1e6)


#: Run in a fresh interpreter: the CPU seconds of a lock-step run, imports and interpreter start left out.
_LOCKSTEP = """
import sys, time
from cooperative_fusion.app.bringup import run_bag_lockstep
t = time.process_time()
run_bag_lockstep(sys.argv[1], sys.argv[2], sys.argv[3], progress=False)
print(f'cpu_s={time.process_time() - t}')
"""


@dataclass(frozen=True)
class Reference:
    """The lock-step run of the same bag: cores per second of data, evidence grids published and fused."""

    cores: float
    published: int
    fused: int


def lockstep_reference(config: Path, bag: Path, data_s: float, work: Path) -> Reference:
    """Run ``bag`` lock-step (every node in one process, as ``cooperative-fusion run --bag``) in a fresh
    process; its CPU seconds per second of data leave out the start-up and include recording the evidence
    grids and /diagnostics, which give the counts."""
    from cooperative_fusion.ros.bag import BagReader

    raw = yaml.safe_load(config.read_text())
    raw['record'] = {'topics': ['/<v>/evidence_grid', '/diagnostics']}
    ref_config = work / 'platoon_lockstep.yaml'
    ref_config.write_text(_dump_yaml(raw))
    record = work / 'lockstep_result'
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               ROS_DOMAIN_ID=str(random.SystemRandom().randint(1, 101)))
    proc = subprocess.run([sys.executable, '-c', _LOCKSTEP, str(ref_config), str(bag), str(record)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('cpu_s=')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'lock-step reference run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}')
    vehicles = [v['id'] for v in raw['vehicles']]
    published = 0
    final: dict[str, dict[str, str]] = {}
    with BagReader(record) as reader:
        for topic, msgtype, _, data in reader.messages():
            if topic == '/diagnostics':
                final.update(fusion_statuses(reader.deserialize(msgtype, data)))
            else:
                published += 1
    accepted = [as_number(final.get(v, {}).get('accepted', 'nan')) for v in vehicles]
    fused = int(sum(x for x in accepted if math.isfinite(x)))
    return Reference(float(lines[-1].split('=', 1)[1]) / data_s, published, fused)


# ------------------------------------------------------------------- output --

def _fmt(x: float, digits: int = 0) -> str:
    return 'nan' if not math.isfinite(x) else f'{x:.{digits}f}'


def table(results: Sequence[LiveResult]) -> list[str]:
    """Markdown table, one row per platoon size."""
    lines = ['| N | lidar sweeps | evidence published (lock-step) | fused (lock-step) | too_old | other drops '
             '| not taken in | grids '
             '| evidence delay p50 / p95 ms | age p50 / p95 / max ms | age trend ms/s '
             '| first-grid age (the fusion\'s; sim: + one /clock period) p50 / p95 ms '
             '| cores: vehicle (max) | fusion | twin | all nodes | lock-step ref | live / ref |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in results:
        vc = r.vehicle_cores()
        ages = r.ages_ms
        ratio = r.pipeline_cores() / r.reference_cores if r.reference_cores > 0 else math.nan
        ref_published, ref_fused = (r.reference.published, r.reference.fused) if r.reference else ('-', '-')
        lines.append(
            f'| {r.n} | {r.sweeps} | {r.published} ({ref_published}) | {r.fused} ({ref_fused}) | {r.too_old} '
            f'| {r.other_drops} | {r.lost} | {r.grids} '
            f'| {_fmt(percentile(r.evidence_delay_ms, 50))} / {_fmt(percentile(r.evidence_delay_ms, 95))} '
            f'| {_fmt(percentile(ages, 50))} / {_fmt(percentile(ages, 95))} / {_fmt(max(ages, default=math.nan))} '
            f'| {_fmt(trend_slope(r.age_times_s, ages), 1)} '
            f'| {_fmt(r.fusion_reported_ms[0])} / {_fmt(r.fusion_reported_ms[1])} '
            f'| {_fmt(float(np.mean(vc)) if vc else math.nan, 2)} ({_fmt(max(vc, default=math.nan), 2)}) '
            f'| {_fmt(r.cores.get("fusion_node", math.nan), 2)} | {_fmt(r.cores.get("twin_node", math.nan), 2)} '
            f'| {_fmt(r.pipeline_cores(), 2)} | {_fmt(r.reference_cores, 2)} | {_fmt(ratio, 2)} |')
    return lines


def result_line(results: Sequence[LiveResult]) -> str:
    """``live_n<N>_<key>=<value> ...`` for every N."""
    parts = []
    for r in results:
        vc = r.vehicle_cores()
        ages = r.ages_ms
        values = {
            'clock': r.clock, 'sweeps': str(r.sweeps), 'published': str(r.published), 'fused': str(r.fused),
            'too_old': str(r.too_old), 'drops_other': str(r.other_drops), 'not_taken_in': str(r.lost),
            'evidence_delay_p50_ms': _fmt(percentile(r.evidence_delay_ms, 50)),
            'age_p50_ms': _fmt(percentile(ages, 50)), 'age_p95_ms': _fmt(percentile(ages, 95)),
            'age_max_ms': _fmt(max(ages, default=math.nan)),
            'age_trend_ms_per_s': _fmt(trend_slope(r.age_times_s, ages), 1),
            'fusion_age_p50_ms': _fmt(r.fusion_reported_ms[0]), 'fusion_age_p95_ms': _fmt(r.fusion_reported_ms[1]),
            'cores_vehicle_max': _fmt(max(vc, default=math.nan), 3),
            'cores_fusion': _fmt(r.cores.get('fusion_node', math.nan), 3),
            'cores_twin': _fmt(r.cores.get('twin_node', math.nan), 3),
            'cores_all': _fmt(r.pipeline_cores(), 3),
            'ref_lockstep_cores': _fmt(r.reference_cores, 3),
            'ref_lockstep_published': str(r.reference.published) if r.reference else 'nan',
            'ref_lockstep_fused': str(r.reference.fused) if r.reference else 'nan',
        }
        parts += [f'live_n{r.n}_{k}={v}' for k, v in values.items()]
    return ' '.join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--vehicles', type=int, nargs='+', default=[2, 4, 8], metavar='N',
                        help='platoon sizes to run (default: 2 4 8)')
    parser.add_argument('--duration', type=float, default=12.0, help='seconds of simulated data (default 12)')
    parser.add_argument('--rate', type=float, default=1.0, help='replay rate (default 1.0: real time)')
    parser.add_argument('--no-reference', action='store_true', help='skip the lock-step reference runs')
    parser.add_argument('--clock-hz', type=float, default=None, metavar='HZ',
                        help="the replay's /clock rate (default: the replay's default; 0 = a tick per message)")
    parser.add_argument('--wall-clock', action='store_true',
                        help='nodes on the system clock, no /clock: `replay --wall-clock` (rate 1), as on a vehicle')
    parser.add_argument('--executor', choices=('events', 'single'), default=None,
                        help="the nodes' executor parameter (default: the nodes' default)")
    parser.add_argument('--keep', type=Path, default=None, metavar='DIR',
                        help='work in DIR and keep its bags, configs and node logs (default: a temp dir)')
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.vehicles) or not (args.duration > 0) or not (args.rate > 0):
        parser.error('--vehicles must be >= 1, --duration and --rate > 0')
    if args.wall_clock and (args.rate != 1.0 or args.clock_hz is not None):
        parser.error('--wall-clock replays at rate 1 with no /clock: no --rate or --clock-hz')
    results = []
    with tempfile.TemporaryDirectory(prefix='bench_live_') as tmp:
        root = args.keep if args.keep is not None else Path(tmp)
        for n in args.vehicles:
            print(f'N={n}: simulating {args.duration:g} s, replaying at rate {args.rate:g} '
                  f'({"wall clock" if args.wall_clock else "/clock"}) ...', flush=True)
            r = run_live(n, args.duration, args.rate, root / f'n{n}', reference=not args.no_reference,
                         clock_hz=args.clock_hz, node_executor=args.executor, wall_clock=args.wall_clock)
            drops = {cause: k for cause, k in r.drops.items() if k} or 'none'
            print(f'N={n}: {r.published} evidence grids, {r.fused} fused, drops {drops}; '
                  f'processes (cores per data s): '
                  + ', '.join(f'{k} {v:.3f}' for k, v in sorted(r.cores.items())), flush=True)
            results.append(r)
    when = ('the wall clock (nodes without use_sim_time, `replay --wall-clock`)' if args.wall_clock else
            'sim time (the replay\'s /clock) + one /clock period (the most a sim clock lags)')
    print(f'rate {args.rate:g}, {args.duration:g} s of data; age = the fusion\'s clock at each /diagnostics, on '
          f'{when}, - newest fused evidence stamp, per vehicle; '
          f'cores = CPU s per data s; lock-step ref = the same bag '
          f'and nodes in one process, deterministic (`cooperative-fusion run --bag`)')
    for line in table(results):
        print(line)
    print(result_line(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
