"""Benchmark: one cooperative fusion cycle (core.fusion.cooperative.CooperativeFusion).

A cycle is the fusion node's whole work per common-grid publish, without ROS:
``add_odometry`` + ``add`` of one evidence grid per vehicle (100 m × 40 m at
0.2 m, pose covariance on, so each is blurred by the pose sigma; footprints,
consistency check, dynamic layer and co-registration bookkeeping as in
``config/fusion.yaml``'s defaults), then ``publish(now)``. The common grid is a
fixed 200 m × 30 m window at 0.2 m. Medians over >= 50 cycles, for 1, 2, 4, 8,
16 vehicles: ms per cycle, ms per evidence message (its add_odometry + add) and
ms per publish, all in CPU time of this thread (``time.thread_time``: on a shared
machine, wall time also counts the other processes' turns). The reference, measured in the same run on the same evidence, is
the plain ``CommonGrid.integrate`` of one evidence message (the update every
path ends in): the ratio says what the rest of the path costs on top of it,
whatever the machine's load.

Last lines: ``evidence_ms_4=<a> evidence_ms_16=<b> integrate_ms=<r>`` and
``fusion_ms_4=<x> fusion_ms_16=<y>``. Target (issue 12): at 10 Hz per vehicle,
<= 3 ms per evidence message with 4 vehicles (0.12 core) and 0.5 core with 16.

``--replay RESULT --scenario BAG``: instead, the fusion node alone, lock-step, on recorded
inputs: the odometry and time references of the scenario bag ``BAG`` (``/<v>/odom``,
``/<v>/time_reference``) and the evidence grids and
radar targets of ``RESULT``, a result bag of ``cooperative-fusion run --bag BAG --record RESULT``
(moving traffic, a window following the platoon, the node's timers). Prints the CPU seconds of the
feed, the core's ms per evidence (``CooperativeFusion.add``) and per publish (``publish``), thread
CPU time, and a digest of the published grids (equal digests: equal grids). Last line:
``replay_cpu_s=<c> add_ms=<a> publish_ms=<p> grids=<n> digest=<d>``.

``--replay RESULT --scenario BAG --live``: the same inputs, merged into one bag, replayed over DDS on the wall
clock (``cooperative-fusion replay --wall-clock``) into the fusion node running as its own process on the
system clock, as on the edge; this process takes ``/cooperative/grid`` (raw) and ``/diagnostics``. Prints
the node process's CPU (``/proc``, all threads) from the replay's start to 1 s after its end per second of
data, and before it, idle (heartbeat grids only) per wall second. Last line:
``live_cores=<c> idle_cores=<i> grids=<n> published=<p> too_old=<t> latency_p95_ms=<l>``.
"""
from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np

from cooperative_fusion.core.fusion.common_grid import CommonGrid
from cooperative_fusion.core.fusion.config import config_from_params
from cooperative_fusion.core.fusion.cooperative import CooperativeFusion
from cooperative_fusion.core.grid import GridSpec, percent_to_logodds
from cooperative_fusion.nodes.fusion_params import PARAMS

RES = 0.2
CYCLE_NS = 100_000_000
N_CYCLES = 60
COV = np.array([[0.04, 0.005], [0.005, 0.02]])   # sigma ~0.2 m: blur on


def evidence_cells(spec: GridSpec, sensor_xy: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Lidar-like evidence: free out to 45 m in a ±60° front and ±40° rear fan, car outlines occupied,
    unknown behind them and elsewhere. int8 percent cells, -1 unknown."""
    xs, ys = spec.cell_centers()
    gx, gy = np.meshgrid(xs - sensor_xy[0], ys - sensor_xy[1])
    r = np.hypot(gx, gy)
    ang = np.arctan2(gy, gx)
    fan = (np.abs(ang) < np.radians(60)) | (np.abs(ang) > np.radians(140))
    cells = np.full(spec.shape, -1, dtype=np.int8)
    cells[(r < 45.0) & fan] = 30
    for _ in range(12):   # cars: occupied outline, shadow behind is unknown
        cx = sensor_xy[0] + rng.choice([-1.0, 1.0]) * rng.uniform(8.0, 40.0)
        cy = sensor_xy[1] + rng.choice([-3.5, 0.0, 3.5])
        box = (np.abs(gx + sensor_xy[0] - cx) < 2.3) & (np.abs(gy + sensor_xy[1] - cy) < 1.0)
        d_box = np.hypot(cx - sensor_xy[0], cy - sensor_xy[1])
        ang_box = np.arctan2(cy - sensor_xy[1], cx - sensor_xy[0])
        shadow = (r > d_box + 1.0) & (np.abs(np.angle(np.exp(1j * (ang - ang_box)))) < 2.3 / max(d_box, 3.0))
        cells[shadow & (cells >= 0)] = -1
        cells[box & (r < 45.0) & fan] = 85
    return cells


def one_cycle(fusion: CooperativeFusion, inputs: list, now_ns: int, cov: np.ndarray) -> tuple[float, float]:
    """One cycle at ``now_ns``: (seconds in add_odometry + add, all vehicles; seconds in publish)."""
    t0 = time.thread_time()
    for vid, xy, spec, logodds, known in inputs:
        # Standing still: every member's body is where its evidence was made.
        fusion.add_odometry(vid, np.array([xy[0], xy[1], 0.0]), np.array([1.0, 0.0, 0.0, 0.0]), 0.0, cov,
                            now_ns - 50_000_000, now_ns - 50_000_000)
        r = fusion.add(vid, spec, logodds, known, now_ns - 30_000_000, now_ns)
        if not r.accepted:
            raise RuntimeError(f'{vid}: {r.cause}: {r.detail}')
    t1 = time.thread_time()
    fusion.publish(now_ns)
    return t1 - t0, time.thread_time() - t1


def make_fusion(n_vehicles: int) -> CooperativeFusion:
    """The node's defaults on a fixed 200 m x 30 m window around (0, 0) for v1..v<n>."""
    vids = [f'v{i + 1}' for i in range(n_vehicles)]
    values = {p.name: p.default for p in PARAMS}
    values.update({'vehicles': vids, 'vehicle_weights': [1.0] * n_vehicles, 'grid.mode': 'fixed',
                   'grid.size_x_m': 200.0, 'grid.size_y_m': 30.0, 'grid.fixed_origin_x_m': -100.0,
                   'grid.fixed_origin_y_m': -15.0, 'grid.resolution_m': RES})
    return CooperativeFusion(config_from_params(values))


def make_inputs(n_vehicles: int, rng: np.random.Generator) -> list:
    """(vehicle id, position, spec, logodds, known) of one evidence grid per vehicle, spread over 150 m."""
    gap = 150.0 / max(n_vehicles - 1, 1)
    positions = [(-75.0 + i * gap if n_vehicles > 1 else 0.0, 0.0) for i in range(n_vehicles)]
    inputs = []
    for i, p in enumerate(positions):
        spec = GridSpec.centered(p[0], p[1], 100.0, 40.0, RES)
        logodds, known = percent_to_logodds(evidence_cells(spec, p, rng))
        inputs.append((f'v{i + 1}', p, spec, logodds, known))
    return inputs


def bench(n_vehicles: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Medians (ms per cycle, ms per evidence message, ms per publish) and the mean known fraction."""
    fusion = make_fusion(n_vehicles)
    inputs = make_inputs(n_vehicles, rng)
    cycles, adds, publishes = [], [], []
    for k in range(N_CYCLES + 3):
        t_add, t_pub = one_cycle(fusion, inputs, 1_000_000_000 + k * CYCLE_NS, COV)
        if k >= 3:
            cycles.append(t_add + t_pub)
            adds.append(t_add / n_vehicles)
            publishes.append(t_pub)
    known_frac = float(np.mean([inp[4].mean() for inp in inputs]))
    return (1e3 * float(np.median(cycles)), 1e3 * float(np.median(adds)), 1e3 * float(np.median(publishes)),
            known_frac)


def reference_ms(rng: np.random.Generator) -> float:
    """Median ms of one plain CommonGrid.integrate of the benchmark's evidence (4 vehicles, blur on)."""
    inputs = make_inputs(4, rng)
    config = make_fusion(4).config.fusion
    grid = CommonGrid(config)
    times = []
    for k in range(N_CYCLES + 3):
        now_ns = 1_000_000_000 + k * CYCLE_NS
        for vid, _xy, spec, logodds, known in inputs:
            t0 = time.thread_time()
            r = grid.integrate(vid, spec, logodds, known, now_ns - 30_000_000, now_ns, COV)
            if k >= 3:
                times.append(time.thread_time() - t0)
            if not r.accepted:
                raise RuntimeError(f'{vid}: {r.cause}: {r.reason}')
    return 1e3 * float(np.median(times))


def replay(result_bag: str, scenario_bag: str) -> None:
    """The fusion node alone, lock-step, on the recorded inputs (see the module docstring)."""
    import importlib

    from cooperative_fusion.app.bringup import destroy_nodes, init_context, shutdown_context
    from cooperative_fusion.app.lockstep import LockstepRunner
    from cooperative_fusion.app.platoon import load_platoon_config
    from cooperative_fusion.core.platoon_config import NodeKind
    from cooperative_fusion.ros.bag import BagReader

    msgs = []      # (log time, source, topic, message): at equal times the scenario's first
    with BagReader(scenario_bag) as reader:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
        topics = [t for t in reader.topics() if t.endswith(('/odom', '/time_reference'))]
        msgs += [(ts, 0, t, reader.deserialize(ty, raw)) for t, ty, ts, raw in reader.messages(topics)]
    with BagReader(result_bag) as reader:
        topics = [t for t in reader.topics() if t.endswith(('/evidence_grid', '/radar/targets'))]
        msgs += [(ts, 1, t, reader.deserialize(ty, raw)) for t, ty, ts, raw in reader.messages(topics)]
    msgs.sort(key=lambda m: (m[0], m[1]))
    times: dict[str, list[float]] = {'add': [], 'publish': []}
    originals = {name: getattr(CooperativeFusion, name) for name in times}

    def timed(name: str):
        def call(*args, **kwargs):
            t0 = time.thread_time()
            out = originals[name](*args, **kwargs)
            times[name].append(time.thread_time() - t0)
            return out
        return call

    spec = next(s for s in load_platoon_config(None).node_specs() if s.kind is NodeKind.FUSION)
    node_class = getattr(importlib.import_module(spec.kind.module), spec.kind.class_name)
    ctx = init_context(None, isolated=True)
    digest, grids = hashlib.sha1(), [0]

    def record(topic: str, msg, _t_ns: int) -> None:
        if topic == spec_output:
            grids[0] += 1
            if isinstance(msg.data, bytes):     # the grid published as CDR bytes: its cells, as a message's
                from cooperative_fusion.ros.cdr_decode import decode_occupancy_grid
                msg = decode_occupancy_grid(msg.data)
            digest.update(bytes(memoryview(msg.data)))

    node = node_class(context=ctx, cli_args=spec.ros_args(True))
    spec_output = node.cfg.output_topic
    try:
        for name in times:
            setattr(CooperativeFusion, name, timed(name))
        runner = LockstepRunner([node], record, publish_to_dds=False, start_ns=start_ns)
        c0 = time.process_time()
        for t_ns, _source, topic, msg in msgs:
            runner.feed(topic, msg, t_ns)
        runner.advance_to(end_ns + 1_000_000_000)
        cpu_s = time.process_time() - c0
    finally:
        for name, f in originals.items():
            setattr(CooperativeFusion, name, f)
        destroy_nodes([node])
        shutdown_context(ctx)
    add_ms, publish_ms = (1e3 * float(np.mean(times[k])) if times[k] else float('nan') for k in ('add', 'publish'))
    print(f'{len(times["add"])} evidence messages, {len(times["publish"])} publishes, {grids[0]} grids recorded')
    print(f'replay_cpu_s={cpu_s:.3f} add_ms={add_ms:.3f} publish_ms={publish_ms:.3f} grids={grids[0]} '
          f'digest={digest.hexdigest()[:16]}')


def replay_live(result_bag: str, scenario_bag: str) -> None:
    """The fusion node as its own process, fed the recorded inputs over DDS (see the module docstring)."""
    from nav_msgs.msg import OccupancyGrid
    from node_alone import recorded_inputs, run_alone

    from cooperative_fusion.core.platoon_config import NodeKind
    from cooperative_fusion.ros.qos import latched_qos

    msgs, start_ns, end_ns = recorded_inputs(result_bag, scenario_bag, ('/odom', '/time_reference'),
                                             ('/evidence_grid', '/radar/targets'))
    r = run_alone(NodeKind.FUSION, msgs, (end_ns - start_ns) / 1e9, status_name='fusion_node',
                  ready=lambda listener: listener.count_publishers('/cooperative/grid') >= 1,
                  count=('/cooperative/grid', OccupancyGrid, latched_qos()))
    too_old = sum(int(v) for k, v in r.status.items() if k.endswith('too_old'))
    print(f'fusion node alone, live: {r.busy_cpu_s:.2f} CPU s over {r.data_s:.1f} s of data, '
          f'idle {r.idle_cores:.3f} cores')
    print(f'live_cores={r.cores:.3f} idle_cores={r.idle_cores:.3f} grids={r.received} '
          f'published={r.status.get("published")} too_old={too_old} latency_p95_ms={r.status.get("latency_ms.p95")}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--replay', metavar='RESULT', help='a result bag of run --bag: replay it into the fusion node')
    parser.add_argument('--scenario', metavar='BAG', help='the scenario bag RESULT was made from (odometry, '
                        'time references); needed with --replay')
    parser.add_argument('--live', action='store_true', help='with --replay: the node as its own process, '
                        'fed over DDS on the wall clock; its process CPU')
    args = parser.parse_args()
    if args.replay:
        if not args.scenario:
            parser.error('--replay needs --scenario BAG')
        (replay_live if args.live else replay)(args.replay, args.scenario)
        return
    rng = np.random.default_rng(0)
    ref = reference_ms(rng)
    print(f'reference: CommonGrid.integrate of one evidence message (blur on): {ref:.2f} ms')
    print('| vehicles | median ms/cycle | ms/evidence | ratio evidence/integrate | ms/publish | '
          'mean known fraction |')
    print('|---:|---:|---:|---:|---:|---:|')
    results = {}
    for n in (1, 2, 4, 8, 16):
        cycle, per_evidence, publish, known = bench(n, rng)
        results[n] = cycle, per_evidence
        print(f'| {n} | {cycle:.2f} | {per_evidence:.2f} | {per_evidence / ref:.1f} | {publish:.2f} | {known:.2f} |')
    print(f'evidence_ms_4={results[4][1]:.2f} evidence_ms_16={results[16][1]:.2f} integrate_ms={ref:.2f}')
    print(f'fusion_ms_4={results[4][0]:.2f} fusion_ms_16={results[16][0]:.2f}')


if __name__ == '__main__':
    main()
