"""Edge benchmark: fusion (one process, or K shards + the combiner) and twin fed by synthetic vehicles at 10 Hz.

Per configuration (``--vehicles 4 16 32`` x ``--shards 1 2``): one process
publishes ``/<v>/evidence_grid`` and ``/<v>/odom`` of N vehicles at 10 Hz on
wall time (evidence as a vehicle node shares it: 0.4 m cells, a ~82 x 40 m
cropped window, ~88 % known, guard rails and passing traffic that moves, the
vehicles driving at 25 m/s on four lanes, rows 20 m apart); the fusion (1
process, or K ``fusion_node`` shards + ``fusion_combiner``) and the twin run as
their own processes with the shipped config files, on an isolated ROS domain;
this process listens and is not measured. Reported: evidence published /
fused, drops by cause, data age p50 / p95 / max and its trend (at each fusion
/diagnostics report, per vehicle: report time - sensor stamp of the newest
evidence fused by then, :func:`bench_live.age_samples`), the grid latency the
node publishing /cooperative/grid reports (sensor stamp -> the grid holding
it, p50 / p95 of its last 1000), and the CPU cores each process used per
second of data (``/proc/<pid>/stat``). First, :func:`core_cost` times each
fusion process's work alone in this process (CPU time: what a busy machine
distorts least), which says where one process stops keeping up. The reference
in the same run is the single-process row of the same N.

Last line: ``edge_n4_k1_core_cores_max=... edge_n4_k1_fused=... edge_n4_k1_age_p95_ms=... ...``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_live import (_dump_yaml, _log_tails, _stop, age_samples, as_number, cpu_seconds,  # noqa: E402
                        percentile, split_too_old, trend_slope)

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'config'
NS_PER_S = 1_000_000_000
RATE_HZ = 10.0
LANES_Y = (-5.25, -1.75, 1.75, 5.25)       # four lanes, metres
ROW_GAP_M = 20.0                           # rows of the formation along x, metres
SPEED_MPS = 25.0
EVIDENCE_RES = 0.4                         # what a vehicle node shares (config/vehicle.yaml share.resolution_m)
EVIDENCE_BEHIND_M, EVIDENCE_AHEAD_M, EVIDENCE_HALF_WIDTH_M = 20.0, 62.0, 20.0
FREE, OCC = 25, 90


# ---------------------------------------------------------------- the vehicles --

def vehicle_ids(n: int) -> list[str]:
    return [f'v{i + 1}' for i in range(n)]


def vehicle_xy(i: int, t_s: float) -> tuple[float, float]:
    """Map position (m) of vehicle i (0-based) at wall second t_s: lane i % 4, row i // 4 (v1 leads)."""
    return 100.0 + SPEED_MPS * t_s - ROW_GAP_M * (i // len(LANES_Y)), LANES_Y[i % len(LANES_Y)]


#: Other traffic on the two outer lanes (y = +-8.75 m): (x at t=0 m, y m, speed m/s), 4.5 x 1.8 m boxes.
TRAFFIC = [(160.0, 8.75, 20.0), (130.0, -8.75, 30.0), (60.0, 8.75, 22.0), (20.0, -8.75, 28.0),
           (-40.0, 8.75, 21.0), (-80.0, -8.75, 31.0), (190.0, -8.75, 18.0), (0.0, 8.75, 33.0)]
RAILS_Y = (-11.0, 11.0)


def evidence_cells(x: float, t_s: float) -> tuple[float, float, np.ndarray]:
    """(origin_x, origin_y, cells (H, W) int8 percent, -1 unknown) of the evidence of a vehicle at x, time t_s:
    free road, guard rails at y = +-11 m, passing traffic occupied with an unknown shadow ahead of it, the
    far corners unknown."""
    ox = math.floor((x - EVIDENCE_BEHIND_M) / EVIDENCE_RES) * EVIDENCE_RES
    oy = -EVIDENCE_HALF_WIDTH_M
    w = int(round((EVIDENCE_BEHIND_M + EVIDENCE_AHEAD_M) / EVIDENCE_RES))
    h = int(round(2 * EVIDENCE_HALF_WIDTH_M / EVIDENCE_RES))
    cells = np.full((h, w), FREE, np.int8)
    cells[:h // 5, :w // 4] = -1
    cells[-h // 5:, :w // 4] = -1
    for y in RAILS_Y:
        cells[int((y - oy) / EVIDENCE_RES), :] = OCC
    for x0, y, v in TRAFFIC:
        tx = x0 + v * t_s
        ix0, ix1 = int((tx - 2.25 - ox) / EVIDENCE_RES), int((tx + 2.25 - ox) / EVIDENCE_RES)
        iy0, iy1 = int((y - 0.9 - oy) / EVIDENCE_RES), int((y + 0.9 - oy) / EVIDENCE_RES)
        if ix1 <= 0 or ix0 >= w:
            continue
        cells[iy0:iy1, max(ix0, 0):max(min(ix1 + 25, w), 0)] = -1       # its shadow
        cells[iy0:iy1, max(ix0, 0):max(min(ix1, w), 0)] = OCC
    return ox, oy, cells


def publish_vehicles(n: int, duration_s: float, stamps_file: Path) -> int:
    """The synthetic vehicles (a subprocess): evidence and odometry of n vehicles at 10 Hz for duration_s,
    staggered over the period, on wall time; prints ``publishing`` when it starts and writes the evidence
    stamps (vehicle id -> ns, in publish order) to ``stamps_file`` at the end."""
    import rclpy
    from nav_msgs.msg import OccupancyGrid, Odometry

    from cooperative_fusion.core.grid import GridSpec
    from cooperative_fusion.ros.grid import grid_to_msg
    from cooperative_fusion.ros.qos import evidence_qos, state_qos
    from cooperative_fusion.ros.time import ns_to_stamp

    rclpy.init()
    node = rclpy.create_node('bench_edge_vehicles')
    ids = vehicle_ids(n)
    ev = [node.create_publisher(OccupancyGrid, f'/{v}/evidence_grid', evidence_qos()) for v in ids]
    od = [node.create_publisher(Odometry, f'/{v}/odom', state_qos()) for v in ids]
    period_ns = int(NS_PER_S / RATE_HZ)
    stamps: dict[str, list[int]] = {v: [] for v in ids}
    print('publishing', flush=True)
    start = time.time_ns()
    k = 0
    while True:
        # vehicle i's k-th message is due at start + k period + i/n of a period
        i, cycle = k % n, k // n
        due = start + cycle * period_ns + i * period_ns // n
        if due - start >= duration_s * NS_PER_S:
            break
        delay = (due - time.time_ns()) / NS_PER_S
        if delay > 0:
            time.sleep(delay)
        now = time.time_ns()
        t_s = (now - start) / NS_PER_S
        x, y = vehicle_xy(i, t_s)
        o = Odometry()
        o.header.stamp = ns_to_stamp(now)
        o.header.frame_id = 'map'
        o.child_frame_id = f'{ids[i]}/base_link'
        o.pose.pose.position.x, o.pose.pose.position.y = x, y
        o.pose.pose.orientation.w = 1.0
        o.pose.covariance = [0.0025 if j in (0, 7) else 0.0 for j in range(36)]
        o.twist.twist.linear.x = SPEED_MPS
        od[i].publish(o)
        ox, oy, cells = evidence_cells(x, t_s)
        ev[i].publish(grid_to_msg(GridSpec(ox, oy, EVIDENCE_RES, cells.shape[1], cells.shape[0]), cells, now))
        stamps[ids[i]].append(now)
        k += 1
    stamps_file.write_text(json.dumps(stamps))
    print(f'published={k}', flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# ------------------------------------------------- the core work, in this process --

def fusion_config(n: int, dynamic: bool = False) -> Any:
    """The fusion node's config for n vehicles: config/fusion.yaml, the platoon's ids, weights and bodies."""
    import yaml

    from cooperative_fusion.core.fusion.config import config_from_params
    from cooperative_fusion.nodes.fusion_params import PARAMS

    values = {p.name: p.default for p in PARAMS}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(f'{prefix}{k}.', v)
            else:
                values[f'{prefix}{k}'] = v
    walk('', yaml.safe_load((CONFIG / 'fusion.yaml').read_text())['/**']['ros__parameters'])
    ids = vehicle_ids(n)
    values.update({'vehicles': ids, 'vehicle_weights': [1.0] * n, 'footprints.vehicles': ids,
                   'footprints.length_m': [4.5] * n, 'footprints.width_m': [1.8] * n,
                   'footprints.rear_overhang_m': [1.0] * n, 'footprints.lidar_x_m': [1.2] * n,
                   'footprints.lidar_y_m': [0.0] * n, 'dynamic.enabled': dynamic})
    return config_from_params(values)


def core_cost(n: int, shards: int, seconds: float = 3.0, dynamic: bool = True) -> dict[str, float]:
    """CPU seconds per second of data of each fusion process's work, timed here with ``time.process_time``
    (a busy machine slows it less than wall time): the synthetic evidence of n vehicles at 10 Hz (message
    in: deserialised, converted), fused, the grid (shards: the deltas) out every 100 ms and after evidence
    (publish_on_evidence), serialised; the combiner deserialises the deltas, adds them, publishes the grid."""
    from nav_msgs.msg import OccupancyGrid
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Float32MultiArray

    from cooperative_fusion.core.fusion.cooperative import CooperativeFusion
    from cooperative_fusion.core.fusion.shards import FusionShard, ShardCombiner
    from cooperative_fusion.core.grid import GridSpec, percent_to_logodds
    from cooperative_fusion.ros.grid import grid_from_msg, grid_to_msg
    from cooperative_fusion.ros.shard_delta import delta_from_msg, delta_to_msg

    cfg = fusion_config(n, dynamic)
    period = int(NS_PER_S / RATE_HZ)
    t0 = 1000 * NS_PER_S
    cpu: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        c = time.process_time()
        out = fn()
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - c
        return out

    single = CooperativeFusion(cfg) if shards <= 1 else None
    parts = [FusionShard(cfg, k, shards) for k in range(shards)] if shards > 1 else []
    owner = {v: k for k, part in enumerate(parts) for v in part.vehicles}
    combiner = ShardCombiner(cfg, shards) if shards > 1 else None
    fusions = [single] if single is not None else [*(p.fusion for p in parts), combiner.fusion]

    def grid_out(name: str, out: Any) -> None:
        timed(name, lambda: serialize_message(grid_to_msg(out.spec, out.cells, out.stamp_ns)))

    def delta_out(k: int, now: int) -> None:
        raw = timed(f'fusion_shard_{k}', lambda: serialize_message(delta_to_msg(parts[k].take(now))))
        delta = timed('fusion_combiner', lambda: delta_from_msg(deserialize_message(raw, Float32MultiArray)))
        if timed('fusion_combiner', lambda: combiner.add(delta, now)).publish:
            grid_out('fusion_combiner', timed('fusion_combiner', lambda: combiner.publish(now)))

    for step in range(int(seconds * RATE_HZ) * n):
        i, cycle = step % n, step // n
        now = t0 + cycle * period + i * period // n
        if i == 0:
            if single is not None:
                grid_out('fusion_node', timed('fusion_node', lambda: single.publish(now)))
            else:
                for k in range(shards):
                    delta_out(k, now)
                grid_out('fusion_combiner', timed('fusion_combiner', lambda: combiner.publish(now)))
        x, y = vehicle_xy(i, (now - t0) / NS_PER_S)
        for f in fusions:
            f.add_odometry(f'v{i + 1}', np.array([x, y, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]), SPEED_MPS,
                           np.eye(2) * 0.0025, now, now)
        ox, oy, cells = evidence_cells(x, (now - t0) / NS_PER_S)
        raw = serialize_message(grid_to_msg(GridSpec(ox, oy, EVIDENCE_RES, cells.shape[1], cells.shape[0]), cells,
                                            now))
        name = 'fusion_node' if single is not None else f'fusion_shard_{owner[f"v{i + 1}"]}'

        def fuse() -> Any:
            spec, c = grid_from_msg(deserialize_message(raw, OccupancyGrid))
            logodds, known = percent_to_logodds(c)
            if single is not None:
                return single.add(f'v{i + 1}', spec, logodds, known, now, now + 5_000_000)
            return parts[owner[f'v{i + 1}']].add(f'v{i + 1}', spec, logodds, known, now, now + 5_000_000)
        if timed(name, fuse).publish:
            if single is not None:
                grid_out(name, timed(name, lambda: single.publish(now + 5_000_000)))
            else:
                delta_out(owner[f'v{i + 1}'], now + 5_000_000)
    return {name: c / seconds for name, c in sorted(cpu.items())}


# -------------------------------------------------------------------- a run --

@dataclass
class EdgeResult:
    """One configuration: N vehicles, K fusion shards (1 = one fusion_node)."""

    n: int
    shards: int
    data_s: float
    published: int = 0
    received: int = 0
    fused: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    grids: int = 0
    ages_ms: list[float] = field(default_factory=list)
    age_times_s: list[float] = field(default_factory=list)
    grid_latency_ms: tuple[float, float] = (math.nan, math.nan)
    cores: dict[str, float] = field(default_factory=dict)

    @property
    def fusion_cores(self) -> dict[str, float]:
        return {k: v for k, v in self.cores.items() if k.startswith('fusion')}

    @property
    def max_fusion_core(self) -> float:
        return max(self.fusion_cores.values(), default=math.nan)

    @property
    def fusion_ms_per_evidence(self) -> float:
        """CPU ms of all fusion processes per evidence message taken in: what a message costs, however busy
        the machine (10 N of them per second: 10 N times this in cores, the publishing not included)."""
        return 1e3 * sum(self.fusion_cores.values()) * self.data_s / self.received if self.received else math.nan


def write_platoon(n: int, work: Path, dynamic: bool) -> Path:
    """``work/platoon.yaml``: n cars (no vehicle nodes: the synthetic publisher stands in), fusion and twin with
    the shipped files (+ ``work/fusion_bench.yaml``: diagnostics every 0.25 s, the dynamic layer as asked)."""
    override = work / 'fusion_bench.yaml'
    override.write_text(_dump_yaml({'/**': {'ros__parameters': {
        'diagnostics': {'period_s': 0.25}, 'dynamic': {'enabled': dynamic}}}}))
    raw = {'run': {'vehicles': False, 'fusion': True, 'twin': True},
           'vehicles': [{'id': v, 'params': [str(CONFIG / 'vehicle.yaml')],
                         'body': {'length_m': 4.5, 'width_m': 1.8, 'rear_overhang_m': 1.0}, 'weight': 1.0}
                        for v in vehicle_ids(n)],
           'fusion': {'params': [str(CONFIG / 'fusion.yaml'), str(override)]},
           'twin': {'params': [str(CONFIG / 'twin.yaml')]}}
    path = work / 'platoon.yaml'
    path.write_text(_dump_yaml(raw))
    return path


def edge_commands(platoon_file: Path, shards: int) -> dict[str, list[str]]:
    """Process name -> command line of the edge: fusion_node (or fusion_shard_<k> + fusion_combiner), twin_node."""
    from cooperative_fusion.app.platoon import NodeKind, load_platoon_config

    specs = {s.kind: s for s in load_platoon_config(platoon_file).node_specs()}
    fusion = specs[NodeKind.FUSION].command(sys.executable, use_sim_time=False)
    cmds: dict[str, list[str]] = {}
    if shards <= 1:
        cmds['fusion_node'] = fusion
    else:
        for k in range(shards):
            cmds[f'fusion_shard_{k}'] = [*fusion, '-r', f'__node:=fusion_shard_{k}', '-p', f'shard.index:={k}',
                                         '-p', f'shard.count:={shards}']
        combiner = [sys.executable, '-m', 'cooperative_fusion.nodes.fusion_combiner', *fusion[3:]]
        cmds['fusion_combiner'] = [*combiner, '-p', f'shard.count:={shards}']
    cmds['twin_node'] = specs[NodeKind.TWIN].command(sys.executable, use_sim_time=False)
    return cmds


class _Listener:
    """This process's view: evidence stamps per vehicle, grid arrivals, the fusion statuses on /diagnostics."""

    def __init__(self, context: Any, vehicles: Sequence[str]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import OccupancyGrid
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        self.node = rclpy.create_node('bench_edge_listener', context=context)
        self.grids = 0
        self.diagnostics: list[tuple[int, dict[str, dict[str, str]]]] = []   # (report stamp, name -> values)
        self.received = 0.0                       # evidence taken in by the fusion (its counters), all vehicles
        self.last_input_wall = time.monotonic()   # when that last grew

        def deep(durability: DurabilityPolicy) -> QoSProfile:
            return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=500, reliability=ReliabilityPolicy.RELIABLE,
                              durability=durability)

        self.node.create_subscription(OccupancyGrid, '/cooperative/grid', self._on_grid,
                                      deep(DurabilityPolicy.TRANSIENT_LOCAL), raw=True)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      deep(DurabilityPolicy.VOLATILE))

    def _on_grid(self, _raw: bytes) -> None:
        self.grids += 1

    def _on_diagnostics(self, msg: Any) -> None:
        statuses = {s.name: {kv.key: kv.value for kv in s.values} for s in msg.status if s.name.startswith('fusion')}
        if statuses:
            self.diagnostics.append((msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec, statuses))
            received = sum(as_number(v.get('received', '0')) for name, v in self.latest().items()
                           if name.startswith('fusion_node: '))
            if received != self.received:
                self.received = received
                self.last_input_wall = time.monotonic()

    def latest(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for _, statuses in self.diagnostics[-50:]:
            out.update(statuses)
        return out


def run_edge(n: int, shards: int, duration_s: float, work: Path, dynamic: bool = True,
             startup_timeout_s: float = 120.0) -> EdgeResult:
    """Start the edge for n vehicles and K shards, feed it duration_s of synthetic evidence, measure."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    work.mkdir(parents=True, exist_ok=True)
    vehicles = vehicle_ids(n)
    platoon_file = write_platoon(n, work, dynamic)
    result = EdgeResult(n=n, shards=shards, data_s=duration_s)
    domain = random.SystemRandom().randint(1, 101)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', PYTHONUNBUFFERED='1')
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    listener = _Listener(ctx, vehicles)
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
                if name != 'vehicles' and p.poll() is not None:
                    raise RuntimeError(f'{name} exited with {p.returncode}\n{_log_tails(logs)}')
            executor.spin_once(timeout_sec=0.02)
            on_spin()
        return True

    try:
        for name, cmd in edge_commands(platoon_file, shards).items():
            start(name, cmd)
        node = listener.node
        if not spin_until(lambda: node.count_publishers('/cooperative/grid') >= 1
                          and node.count_subscribers('/cooperative/grid') >= 2
                          and all(node.count_subscribers(f'/{v}/evidence_grid') >= 1 for v in vehicles)
                          and all(node.count_subscribers(f'/{v}/odom') >= 1 + shards + (shards > 1)
                                  for v in vehicles),
                          startup_timeout_s):
            raise RuntimeError(f'edge did not come up in {startup_timeout_s:.0f} s\n{_log_tails(logs)}')
        edge = dict(procs)
        stamps_file = work / 'evidence_stamps.json'
        publisher = start('vehicles', [sys.executable, str(Path(__file__).resolve()), '--publish', str(n),
                                       '--duration', str(duration_s), '--stamps', str(stamps_file)])
        cpu_start: dict[str, float] = {}

        def mark_start() -> None:
            if not cpu_start and 'publishing' in logs['vehicles'].read_text():
                cpu_start.update({name: cpu_seconds(p.pid) for name, p in procs.items()})

        publisher_cpu = [math.nan]

        def on_spin() -> None:
            mark_start()
            if (c := cpu_seconds(publisher.pid)) == c:
                publisher_cpu[0] = c

        if not spin_until(lambda: publisher.poll() is not None, duration_s + 60.0, on_spin):
            raise RuntimeError(f'the vehicle publisher did not finish\n{_log_tails(logs)}')
        if publisher.returncode != 0 or not cpu_start:
            raise RuntimeError(f'the vehicle publisher failed (exit {publisher.returncode})\n{_log_tails(logs)}')
        # queued work is part of the data's cost: wait until the fusion has taken nothing in for 1 s
        spin_until(lambda: time.monotonic() - listener.last_input_wall > 1.0, 30.0)
        for name, p in edge.items():
            result.cores[name] = (cpu_seconds(p.pid) - cpu_start[name]) / duration_s
        result.cores['vehicles'] = (publisher_cpu[0] - cpu_start['vehicles']) / duration_s
        spin_until(lambda: False, 0.6)             # one more diagnostics report with the final counters
        evidence = {v: [int(t) for t in ts] for v, ts in json.loads(stamps_file.read_text()).items()}
    finally:
        _stop(procs)
        executor.remove_node(listener.node)
        listener.node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=ctx)
    _summarise(result, listener, evidence, shards)
    return result


def _summarise(result: EdgeResult, listener: _Listener, evidence: dict[str, list[int]], shards: int) -> None:
    """Counts, drops and ages from the publisher's stamps and the fusion's reports (up to the data's end)."""
    vehicles = list(evidence)
    final = listener.latest()
    per_vehicle = {v: final.get(f'fusion_node: {v}', {}) for v in vehicles}

    def total(key: str) -> int:
        values = [as_number(s.get(key, 'nan')) for s in per_vehicle.values()]
        return int(sum(x for x in values if math.isfinite(x)))

    result.published = sum(len(s) for s in evidence.values())
    result.received, result.fused = total('received'), total('accepted')
    drops: dict[str, int] = {}
    for name, values in final.items():
        if name.startswith('fusion_node: ') or name.startswith('fusion_combiner: '):
            for key, value in values.items():
                if key.startswith('drops.') and key != 'drops.total' and math.isfinite(as_number(value)):
                    drops[key[6:]] = drops.get(key[6:], 0) + int(as_number(value))
    result.drops = drops
    result.grids = listener.grids
    out = final.get('fusion_node' if shards <= 1 else 'fusion_combiner', {})
    result.grid_latency_ms = (as_number(out.get('latency_ms.p50', 'nan')), as_number(out.get('latency_ms.p95', 'nan')))
    start_ns = min(ts[0] for ts in evidence.values() if ts)
    end_ns = max(ts[-1] for ts in evidence.values() if ts)
    diags = [(stamp, {v: s[f'fusion_node: {v}'] for v in vehicles if f'fusion_node: {v}' in s})
             for stamp, s in listener.diagnostics if start_ns <= stamp <= end_ns]
    for t, age in age_samples(evidence, diags):
        result.age_times_s.append((t - start_ns) / NS_PER_S)
        result.ages_ms.append(age)


# ------------------------------------------------------------------- output --

def _fmt(x: float, digits: int = 0) -> str:
    return 'nan' if not math.isfinite(x) else f'{x:.{digits}f}'


def row(r: EdgeResult) -> str:
    too_old, other = split_too_old(r.drops)
    ages = r.ages_ms
    fusion = ' + '.join(f'{v:.2f}' for _, v in sorted(r.fusion_cores.items()))
    return (f'| {r.n} | {r.shards} | {r.fused} / {r.published} | {too_old} | {other} | {max(0, r.published - r.received)} '
            f'| {_fmt(percentile(ages, 50))} / {_fmt(percentile(ages, 95))} / {_fmt(max(ages, default=math.nan))} '
            f'| {_fmt(trend_slope(r.age_times_s, ages), 1)} '
            f'| {_fmt(r.grid_latency_ms[0])} / {_fmt(r.grid_latency_ms[1])} | {r.grids} '
            f'| {fusion} | {_fmt(r.fusion_ms_per_evidence, 1)} | {_fmt(r.cores.get("twin_node", math.nan), 2)} | {_fmt(r.cores.get("vehicles", math.nan), 2)} |')


HEADER = ['| N | fusion processes | fused / published | too_old | other drops | not taken in '
          '| age p50 / p95 / max ms | age trend ms/s | grid latency p50 / p95 ms | grids '
          '| cores: fusion (each; shards + combiner) | fusion CPU ms per evidence | twin | synthetic vehicles |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']


def result_line(results: Sequence[EdgeResult]) -> str:
    parts = []
    for r in results:
        too_old, other = split_too_old(r.drops)
        values = {'published': str(r.published), 'fused': str(r.fused), 'too_old': str(too_old),
                  'drops_other': str(other), 'age_p50_ms': _fmt(percentile(r.ages_ms, 50)),
                  'age_p95_ms': _fmt(percentile(r.ages_ms, 95)), 'age_max_ms': _fmt(max(r.ages_ms, default=math.nan)),
                  'age_trend_ms_per_s': _fmt(trend_slope(r.age_times_s, r.ages_ms), 1),
                  'cores_fusion_max': _fmt(r.max_fusion_core, 3),
                  'cores_fusion_sum': _fmt(sum(r.fusion_cores.values()), 3),
                  'fusion_cpu_ms_per_evidence': _fmt(r.fusion_ms_per_evidence, 2),
                  'cores_twin': _fmt(r.cores.get('twin_node', math.nan), 3)}
        parts += [f'edge_n{r.n}_k{r.shards}_{k}={v}' for k, v in values.items()]
    return ' '.join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--vehicles', type=int, nargs='+', default=[4, 16, 32], metavar='N',
                        help='platoon sizes (default: 4 16 32)')
    parser.add_argument('--shards', type=int, nargs='+', default=[1, 2], metavar='K',
                        help='fusion processes: 1 = one fusion_node, K >= 2 = K shards + fusion_combiner '
                             '(default: 1 2)')
    parser.add_argument('--duration', type=float, default=15.0, help='seconds of synthetic data (default 15)')
    parser.add_argument('--no-dynamic', action='store_true',
                        help='turn the fusion\'s dynamic layer off (default: on, as config/fusion.yaml ships it)')
    parser.add_argument('--no-live', action='store_true',
                        help='only the core work timed in this process (no processes, no DDS)')
    parser.add_argument('--keep', type=Path, default=None, metavar='DIR',
                        help='work in DIR and keep configs and node logs (default: a temp dir)')
    parser.add_argument('--publish', type=int, default=None, help=argparse.SUPPRESS)   # the vehicles' process
    parser.add_argument('--stamps', type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish is not None:
        return publish_vehicles(args.publish, args.duration, args.stamps)
    if any(n < 1 for n in args.vehicles) or any(k < 1 for k in args.shards) or not args.duration > 0:
        parser.error('--vehicles and --shards must be >= 1, --duration > 0')
    configs = [(n, k) for n in args.vehicles for k in args.shards if k <= n]
    costs = {}
    for n, k in configs:
        costs[(n, k)] = core_cost(n, k, dynamic=not args.no_dynamic)
        print(f'N={n} K={k}: core work, cores per data s: '
              + ', '.join(f'{name} {c:.3f}' for name, c in costs[(n, k)].items()), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix='bench_edge_') as tmp:
        root = args.keep if args.keep is not None else Path(tmp)
        for n, k in ([] if args.no_live else configs):
            print(f'N={n} K={k}: {args.duration:g} s of synthetic evidence at {RATE_HZ:g} Hz ...', flush=True)
            r = run_edge(n, k, args.duration, root / f'n{n}_k{k}', dynamic=not args.no_dynamic)
            print(f'N={n} K={k}: {r.fused} / {r.published} fused, drops '
                  f'{ {c: m for c, m in r.drops.items() if m} or "none"}; cores per data s: '
                  + ', '.join(f'{name} {c:.3f}' for name, c in sorted(r.cores.items())), flush=True)
            results.append(r)
    print('Core work (`core_cost`: 3 s of data, each process\'s share timed with process_time in one process, '
          'messages (de)serialised, no DDS); a process keeps up while it needs well under 1 core:')
    print('| N | fusion processes | cores per process (fusion node, or shards + combiner) | busiest | all |')
    print('|---|---|---|---|---|')
    for (n, k), c in costs.items():
        print(f'| {n} | {k} | {" + ".join(f"{v:.2f}" for v in c.values())} | {max(c.values()):.2f} '
              f'| {sum(c.values()):.2f} |')
    load = os.getloadavg()
    print(f'{args.duration:g} s of data per row; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} '
          f'on {os.cpu_count()} cores at the end; age = fusion /diagnostics report time - newest fused sensor '
          f'stamp, per vehicle (in the shard for K >= 2); grid latency = sensor stamp -> /cooperative/grid, '
          f'reported by its publisher; cores = CPU s per data s; dynamic layer {"off" if args.no_dynamic else "on"}')
    if results:
        for line in (*HEADER, *(row(r) for r in results)):
            print(line)
    core = ' '.join(f'edge_n{n}_k{k}_core_cores_max={max(c.values()):.3f}' for (n, k), c in costs.items())
    print(' '.join(x for x in (core, result_line(results)) if x))
    return 0


if __name__ == '__main__':
    sys.exit(main())
