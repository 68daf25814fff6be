"""Digital-twin prediction speed: 5 s rollout (dt 0.1 s) of 4 platoon vehicles and 20 tracks (with the
platoon alone in the same loop, for the conflict search), predicted grids at 4 horizons on a 200 m x 30 m
grid at 0.2 m (probabilities and OccupancyGrid cells), and the conflict search.

Prints a reference measured in the same run (a fixed numpy workload) so runs on
different machines compare by ratio, and ends with ``twin_ms=<x> speedup=<y>``
where speedup = predicted seconds per wall second = 5000 / twin_ms.

``--replay RESULT --scenario BAG``: instead, the twin node alone, lock-step, on recorded inputs as
it gets them live: the odometry and time references of the scenario bag ``BAG`` and the common grid
and radar targets of ``RESULT``, a result bag of ``cooperative-fusion run --bag BAG --record RESULT``,
fed as CDR bytes (``LockstepRunner.feed_serialized``: the raw subscriptions decode them as over DDS).
No one subscribes ``/twin/markers`` (as live without a viewer; ``--markers``: a subscriber); freed memory
is kept as in the node's process (``ros.node.keep_freed_memory``). Prints
the thread CPU time of each kind of callback per second of data (the grid's includes the cycle) and
per cycle: the whole grid callback, ``EdgeTwin.cycle`` (the core step and the self-check's
expectations) and the publishing; and a digest of the predicted grids, warnings and advisories
(equal digests: equal outputs). Last line:
``replay_cores=<c> cycle_ms=<a> step_ms=<s> publish_ms=<p> cycles=<n> digest=<d>``
(cores = CPU s of all callbacks per data s).

``--replay RESULT --scenario BAG --live``: the same inputs, merged into one bag, replayed over DDS on the
wall clock (``cooperative-fusion replay --wall-clock``) into the twin node running as its own process on
the system clock, as on the edge. Prints the node process's CPU (``/proc``, all threads) from the
replay's start to 1 s after its end per second of data. Last line: ``live_cores=<c> idle_cores=<i> cycles=<n>``.
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections import defaultdict
from typing import Any

import numpy as np

from cooperative_fusion.core.twin.conflicts import ConflictConfig, find_conflicts
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.twin.prediction import (ObstacleState, PlatoonState, PredictionConfig,
                                                     predicted_grids_percent, rollout)

RUNS = 30


def scene(rng: np.random.Generator) -> tuple[PlatoonState, ObstacleState]:
    n = 4
    pl = PlatoonState(tuple(f'v{i + 1}' for i in range(n)), 80.0 - np.arange(n) * 22.5, np.zeros(n),
                      np.full(n, 25.0), np.zeros(n), np.full(n, 4.5), np.full(n, 1.8), np.arange(n))
    k = 20
    trucks = rng.random(k) < 0.3
    obs = ObstacleState(np.arange(k), rng.uniform(0.0, 200.0, k),
                        rng.choice([-3.5, 0.0, 3.5], k) + rng.normal(0.0, 0.3, k),
                        rng.uniform(0.0, 30.0, k), rng.normal(0.0, 0.3, k),
                        np.where(trucks, 12.0, 4.5), np.where(trucks, 2.5, 1.8), rng.normal(0.0, 0.05, k),
                        np.zeros(k), np.full(k, 0.3))
    return pl, obs


def reference_ms() -> float:
    """Median ms of a fixed numpy workload (sort 1e6 float64 + a 1000 x 150 elementwise chain), for ratios."""
    rng = np.random.default_rng(1)
    a = rng.random(1_000_000)
    g = rng.random((150, 1000)).astype(np.float32)
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        np.sort(a)
        np.tanh(g * np.float32(0.5) + g * g)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    pl, obs = scene(rng)
    spec = GridSpec(0.0, -15.0, 0.2, 1000, 150)
    pcfg, ccfg = PredictionConfig(), ConflictConfig()
    parts = {'rollout': [], 'grids': [], 'conflicts': [], 'total': []}
    for _ in range(RUNS + 3):
        t0 = time.perf_counter()
        ro = rollout(pl, obs, pcfg, platoon_alone=ccfg.predecessor_reacts)     # as TwinCore.step
        t1 = time.perf_counter()
        grids, _ = predicted_grids_percent(ro, spec, pcfg)                      # probabilities and cells
        t2 = time.perf_counter()
        conflicts = find_conflicts(ro, ccfg)
        t3 = time.perf_counter()
        for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            parts[name].append(dt * 1e3)
    med = {name: statistics.median(v[3:]) for name, v in parts.items()}     # first 3 runs warm up
    ref = reference_ms()
    print(f'scene: {len(pl)} platoon vehicles, {len(obs)} tracks, {pcfg.steps} steps of {pcfg.dt_s} s, '
          f'{len(grids)} horizons on {spec.width}x{spec.height} cells, {len(conflicts)} conflicts')
    print(f'median over {RUNS} runs: rollout {med["rollout"]:.2f} ms, grids {med["grids"]:.2f} ms, '
          f'conflicts {med["conflicts"]:.2f} ms')
    print(f'reference (numpy sort 1e6 + tanh chain) {ref:.2f} ms; twin / reference = {med["total"] / ref:.2f}')
    print(f'twin_ms={med["total"]:.2f} speedup={pcfg.horizon_s * 1e3 / med["total"]:.0f}')


#: Input topics of the twin by suffix: from the scenario bag, and from the result bag.
_SCENARIO_TOPICS = ('/odom', '/time_reference')
_RESULT_TOPICS = ('/cooperative/grid', '/radar/targets')
#: Twin outputs in the digest (not /diagnostics: it carries timings; not markers: only with a viewer).
_DIGEST_TOPICS = ('/twin/predicted_grid', '/twin/warnings', '/twin/advisory')


def _inputs(result_bag: str, scenario_bag: str) -> tuple[list[tuple[int, int, str, str, bytes]], int, int]:
    """The twin's recorded inputs, (log time, source, topic, type, CDR bytes) in log-time order (at equal
    times the scenario's first), and the scenario's start and end, ns."""
    from node_alone import recorded_inputs

    msgs, start_ns, end_ns = recorded_inputs(result_bag, scenario_bag, _SCENARIO_TOPICS, _RESULT_TOPICS)
    if not any(m[2].endswith('/cooperative/grid') for m in msgs):
        raise SystemExit(f'{result_bag}: no /cooperative/grid recorded (a result bag of run --bag --record?)')
    return msgs, start_ns, end_ns


def _kind(topic: str) -> str:
    """The input kind of a topic: grid, odom, time_reference, radar."""
    if topic.endswith('/cooperative/grid'):
        return 'grid'
    return {'odom': 'odom', 'time_reference': 'time_reference'}.get(topic.rsplit('/', 1)[-1], 'radar')


def replay(result_bag: str, scenario_bag: str, markers: bool) -> None:
    """The twin node alone, lock-step, on the recorded inputs (see the module docstring)."""
    import importlib

    from cooperative_fusion.app.bringup import destroy_nodes, init_context, shutdown_context
    from cooperative_fusion.app.lockstep import LockstepRunner, SerializedMessage
    from cooperative_fusion.app.platoon import load_platoon_config
    from cooperative_fusion.core.platoon_config import NodeKind
    from cooperative_fusion.core.twin.edge import EdgeTwin
    from cooperative_fusion.ros.cdr import serialize_cdr
    from cooperative_fusion.ros.node import keep_freed_memory

    keep_freed_memory()       # as in the node's own process (spin_node)
    msgs, start_ns, end_ns = _inputs(result_bag, scenario_bag)
    cpu: dict[str, float] = defaultdict(float)          # callback kind -> thread CPU s
    per_cycle: dict[str, list[float]] = {'grid': [], 'cycle': [], 'publish': []}

    class TimedRunner(LockstepRunner):
        def _call_sub(self, sub: Any, msg: Any) -> None:
            t0 = time.thread_time()
            super()._call_sub(sub, msg)
            dt = time.thread_time() - t0
            cpu[_kind(sub.topic_name)] += dt
            if sub.topic_name.endswith('/cooperative/grid') and len(per_cycle['cycle']) > len(per_cycle['grid']):
                per_cycle['grid'].append(dt)           # a grid that cycled

        def _call_timer(self, timer: Any) -> None:
            t0 = time.thread_time()
            super()._call_timer(timer)
            cpu['timers'] += time.thread_time() - t0

    original_cycle = EdgeTwin.cycle

    def timed_cycle(self: EdgeTwin, now_ns: int) -> Any:
        t0 = time.thread_time()
        try:
            return original_cycle(self, now_ns)
        finally:
            per_cycle['cycle'].append(time.thread_time() - t0)

    spec = next(s for s in load_platoon_config(None).node_specs() if s.kind is NodeKind.TWIN)
    node_class = getattr(importlib.import_module(spec.kind.module), spec.kind.class_name)
    ctx = init_context(None, isolated=True)
    digest, counts = hashlib.sha1(), defaultdict(int)

    def record(topic: str, msg: Any, _t_ns: int) -> None:
        if topic.endswith(_DIGEST_TOPICS):
            counts[topic] += 1
            data = msg.data if isinstance(msg, SerializedMessage) else msg
            digest.update(topic.encode())
            digest.update(data if isinstance(data, bytes) else serialize_cdr(data))   # rclpy's leaves padding unset

    node = node_class(context=ctx, cli_args=spec.ros_args(True))
    try:
        EdgeTwin.cycle = timed_cycle
        runner = TimedRunner([node], record, publish_to_dds=False, start_ns=start_ns)
        if not markers:     # the recorder counts as a subscriber of every topic: not of the markers here
            node.markers_pub.get_subscription_count = lambda: 0
        c0 = time.process_time()
        for t_ns, _source, topic, msgtype, data in msgs:
            runner.feed_serialized(topic, msgtype, data, t_ns)
        runner.advance_to(end_ns + 1_000_000_000)
        process_s = time.process_time() - c0
    finally:
        EdgeTwin.cycle = original_cycle
        destroy_nodes([node])
        shutdown_context(ctx)
    data_s = (end_ns - start_ns) / 1e9
    total = sum(cpu.values())
    n = len(per_cycle['cycle'])
    grid_ms = 1e3 * float(np.mean(per_cycle['grid'])) if per_cycle['grid'] else float('nan')
    cycle_ms = 1e3 * float(np.mean(per_cycle['cycle'])) if n else float('nan')
    print(f'{data_s:.1f} s of data: {sum(1 for m in msgs if _kind(m[2]) == "grid")} grids in, {n} cycles; '
          f'out: ' + ', '.join(f'{counts[t]} {t}' for t in sorted(counts)))
    print('CPU s per data s by callback: ' + ', '.join(f'{k} {v / data_s:.4f}' for k, v in sorted(cpu.items()))
          + f'; all callbacks {total / data_s:.4f}, the process (feed, bag decoding, recorder) {process_s / data_s:.4f}')
    publish_ms = grid_ms - cycle_ms     # the grid callback of a cycle: decode + mirror + self-check + cycle + publish
    print(f'per cycle (thread CPU, mean): grid callback {grid_ms:.2f} ms, EdgeTwin.cycle {cycle_ms:.2f} ms, '
          f'the rest of the callback (decode, mirror, self-check observe, publishing) {publish_ms:.2f} ms')
    print(f'replay_cores={total / data_s:.4f} cycle_ms={grid_ms:.3f} step_ms={cycle_ms:.3f} '
          f'publish_ms={publish_ms:.3f} cycles={n} digest={digest.hexdigest()[:16]}')


def replay_live(result_bag: str, scenario_bag: str) -> None:
    """The twin node as its own process, fed the recorded inputs over DDS (see the module docstring)."""
    from node_alone import run_alone

    from cooperative_fusion.core.platoon_config import NodeKind

    msgs, start_ns, end_ns = _inputs(result_bag, scenario_bag)
    r = run_alone(NodeKind.TWIN, msgs, (end_ns - start_ns) / 1e9, status_name='twin_node',
                  ready=lambda listener: listener.count_subscribers('/cooperative/grid') >= 1)
    cycles = int(float(r.status.get('cycles', 0))) - int(float(r.status_start.get('cycles', 0)))
    print(f'twin node alone, live: {r.busy_cpu_s:.2f} CPU s over {r.data_s:.1f} s of data, idle {r.idle_cores:.3f} '
          f'cores, cycle_ms p50 {r.status.get("cycle_ms.p50")}')
    print(f'live_cores={r.cores:.3f} idle_cores={r.idle_cores:.3f} cycles={cycles}')

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--replay', metavar='RESULT', help='a result bag of run --bag --record: replay its common '
                        'grid and radar targets into the twin node (thread CPU per callback and per cycle)')
    parser.add_argument('--scenario', metavar='BAG', help='the scenario bag RESULT was made from (odometry, '
                        'time references); needed with --replay')
    parser.add_argument('--markers', action='store_true', help='with --replay: someone subscribes /twin/markers, '
                        'so the twin builds them (default: no one, as live without a viewer)')
    parser.add_argument('--live', action='store_true', help='with --replay: the node as its own process, '
                        'fed over DDS on the wall clock; its process CPU')
    args = parser.parse_args()
    if args.replay:
        if not args.scenario:
            parser.error('--replay needs --scenario BAG')
        if args.live and args.markers:
            parser.error('--markers is for the lock-step replay; --live has no marker subscriber')
        from cooperative_fusion.core.errors import CooperativeFusionError
        try:
            if args.live:
                replay_live(args.replay, args.scenario)
            else:
                replay(args.replay, args.scenario, args.markers)
        except CooperativeFusionError as exc:      # a missing or unreadable bag
            parser.exit(2, f'bench_twin.py: error: {exc}\n')
    elif args.scenario or args.live or args.markers:
        parser.error('--scenario, --live and --markers go with --replay RESULT')
    else:
        main()
