"""A/B timing: this checkout's fusion core against another checkout's, interleaved call by call.

Not one of ``make bench``'s benchmarks (``run_all.py`` runs ``bench_*.py``): it needs a second checkout.

On a shared machine the load changes from one minute to the next, so two runs of ``bench_fusion.py`` on two
checkouts do not compare. Here both cores (``core.fusion.cooperative.CooperativeFusion`` of this checkout and of
``--against DIR``, e.g. ``git worktree add /tmp/main main``) run in one process on the same inputs, taking
turns call by call, each timed in CPU time of this thread. Every published grid of the two is compared.

Synthetic (default): ``bench_fusion.py``'s cycles for ``--vehicles`` (one evidence grid per vehicle, then a
publish): median ms per evidence message (``add_odometry`` + ``add``) and per publish.

``--replay RESULT --scenario BAG``: the calls the fusion node makes into its core on ``bench_fusion.py
--replay``'s inputs (recorded once through this checkout's node, lock-step), replayed into both cores: ms per
evidence message of each method, summed over ``--reps`` passes.

Last line: ``ab_<n>_evidence_ms=<this>/<other> ...`` (synthetic) or ``ab_add_ms=<this>/<other>
ab_publish_ms=<this>/<other> mismatches=<m>`` (replay). ``mismatches`` counts published grids (and replay
results) that differ: 0 when the two cores compute the same.
"""
from __future__ import annotations

import argparse
import atexit
import dataclasses
import importlib
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fusion  # noqa: E402

OTHER = 'cooperative_fusion_other'
#: The core's methods the fusion node calls (nodes/fusion_node.py), recorded and replayed.
NODE_CALLS = ('add', 'add_odometry', 'add_radar', 'add_time_reference', 'coregister', 'publish', 'publish_due',
              'common_time', 'grid_values', 'vehicle_report')


def load_versions(against: str) -> dict[str, dict[str, ModuleType]]:
    """{'this': modules, 'other': modules} with the cooperative, config, grid and fusion_params modules of this
    checkout and of ``against`` (its package imported as ``cooperative_fusion_other``: the core uses relative
    imports only). Raises SystemExit when ``against`` holds no package."""
    package = Path(against).resolve() / 'cooperative_fusion'
    if not (package / '__init__.py').is_file():
        raise SystemExit(f'--against {against}: no cooperative_fusion package in it')
    links = Path(tempfile.mkdtemp(prefix='ab_fusion_'))
    atexit.register(shutil.rmtree, links, True)      # the link only: modules may import lazily until exit
    (links / OTHER).symlink_to(package, target_is_directory=True)
    sys.path.insert(0, str(links))
    names = {'cooperative': 'core.fusion.cooperative', 'config': 'core.fusion.config', 'grid': 'core.grid',
             'params': 'nodes.fusion_params'}
    return {key: {k: importlib.import_module(f'{top}.{m}') for k, m in names.items()}
            for key, top in (('this', 'cooperative_fusion'), ('other', OTHER))}


def same_grid(a: Any, b: Any) -> bool:
    """Two GridOutput equal: cells, stamp, latencies and geometry."""
    return (np.array_equal(a.cells, b.cells) and a.stamp_ns == b.stamp_ns
            and np.array_equal(a.latencies_ms, b.latencies_ms)
            and dataclasses.astuple(a.spec) == dataclasses.astuple(b.spec))


def synthetic(versions: dict[str, dict[str, ModuleType]], vehicles: list[int], cycles: int) -> None:
    """bench_fusion's cycles, both cores in turn (which goes first alternates)."""
    results = []
    mismatches = 0
    for n in vehicles:
        inputs = bench_fusion.make_inputs(n, np.random.default_rng(0))
        fusion, feed = {}, {}
        for key, mods in versions.items():
            values = {p.name: p.default for p in mods['params'].PARAMS}
            values.update({'vehicles': [f'v{i + 1}' for i in range(n)], 'vehicle_weights': [1.0] * n,
                           'grid.mode': 'fixed', 'grid.size_x_m': 200.0, 'grid.size_y_m': 30.0,
                           'grid.fixed_origin_x_m': -100.0, 'grid.fixed_origin_y_m': -15.0,
                           'grid.resolution_m': bench_fusion.RES})
            fusion[key] = mods['cooperative'].CooperativeFusion(mods['config'].config_from_params(values))
            feed[key] = [(vid, xy, mods['grid'].GridSpec(*dataclasses.astuple(spec)), lo, kn)
                         for vid, xy, spec, lo, kn in inputs]
        adds: dict[str, list[float]] = defaultdict(list)
        pubs: dict[str, list[float]] = defaultdict(list)
        for k in range(cycles + 3):
            now_ns = 1_000_000_000 + k * bench_fusion.CYCLE_NS
            grids = {}
            for key in (('this', 'other') if k % 2 == 0 else ('other', 'this')):
                t_add, t_pub = bench_fusion.one_cycle(fusion[key], feed[key], now_ns, bench_fusion.COV)
                grids[key] = fusion[key].publish(now_ns + 1)         # the same state: compare it
                if k >= 3:
                    adds[key].append(t_add / n)
                    pubs[key].append(t_pub)
            mismatches += not same_grid(grids['this'], grids['other'])
        a = {key: 1e3 * float(np.median(v)) for key, v in adds.items()}
        p = {key: 1e3 * float(np.median(v)) for key, v in pubs.items()}
        print(f'{n} vehicles: ms per evidence message {a["this"]:.2f} (this) / {a["other"]:.2f} (other) = '
              f'{a["this"] / a["other"]:.2f}; ms per publish {p["this"]:.2f} / {p["other"]:.2f}')
        results.append(f'ab_{n}_evidence_ms={a["this"]:.2f}/{a["other"]:.2f}')
    print(' '.join(results) + f' mismatches={mismatches}')


def record_node_calls(result_bag: str, scenario_bag: str) -> tuple[dict[str, Any], list]:
    """The fusion node's parameter values and its outermost calls into this checkout's core on bench_fusion's
    replay inputs: (values, [(method, args, kwargs)]), GridSpecs as ('GridSpec', fields), arrays copied."""
    from cooperative_fusion.core.fusion import cooperative
    from cooperative_fusion.core.grid import GridSpec
    from cooperative_fusion.nodes import fusion_node

    calls: list = []
    values: list[dict[str, Any]] = []
    depth = [0]

    def plain(a: Any) -> Any:
        if isinstance(a, GridSpec):
            return ('GridSpec', dataclasses.astuple(a))
        return a.copy() if isinstance(a, np.ndarray) else a

    def recording(name: str, f: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if depth[0] == 0:
                calls.append((name, [plain(a) for a in args], {k: plain(v) for k, v in kwargs.items()}))
            depth[0] += 1
            try:
                return f(self, *args, **kwargs)
            finally:
                depth[0] -= 1
        return call

    originals = {name: getattr(cooperative.CooperativeFusion, name) for name in NODE_CALLS}
    from_params = fusion_node.config_from_params
    fusion_node.config_from_params = lambda v: (values.append(dict(v)), from_params(v))[1]
    try:
        for name, f in originals.items():
            setattr(cooperative.CooperativeFusion, name, recording(name, f))
        bench_fusion.replay(result_bag, scenario_bag)
    finally:
        for name, f in originals.items():
            setattr(cooperative.CooperativeFusion, name, f)
        fusion_node.config_from_params = from_params
    return values[0], calls


def replayed(versions: dict[str, dict[str, ModuleType]], result_bag: str, scenario_bag: str, reps: int) -> None:
    """The node's recorded calls into both cores, in turn call by call; ms per evidence message per method."""
    values, calls = record_node_calls(result_bag, scenario_bag)
    cpu: dict[str, dict[str, float]] = {key: defaultdict(float) for key in versions}
    count: dict[str, int] = defaultdict(int)
    mismatches = 0
    for rep in range(reps):
        core = {key: mods['cooperative'].CooperativeFusion(mods['config'].config_from_params(values))
                for key, mods in versions.items()}
        args = {key: [([mods['grid'].GridSpec(*a[1]) if isinstance(a, tuple) and a[:1] == ('GridSpec',) else a
                        for a in pos], kw) for _name, pos, kw in calls] for key, mods in versions.items()}
        for i, (name, _pos, _kw) in enumerate(calls):
            out = {}
            for key in (('this', 'other') if i % 2 == 0 else ('other', 'this')):
                pos, kw = args[key][i]
                t0 = time.thread_time()
                out[key] = getattr(core[key], name)(*pos, **kw)
                cpu[key][name] += time.thread_time() - t0
            count[name] += rep == 0
            a, b = out['this'], out['other']
            if name == 'publish':
                mismatches += not same_grid(a, b)
            elif name == 'add':
                mismatches += (a.accepted, a.cause, a.publish) != (b.accepted, b.cause, b.publish)
            elif name in ('coregister', 'publish_due', 'common_time'):
                mismatches += a != b
    n = count['add'] * reps
    print(f'{count["add"]} evidence messages, {count["publish"]} publishes, {reps} pass(es); '
          f'ms per evidence message, this / other:')
    for name in sorted(count, key=lambda m: -cpu['other'][m]):
        t, o = (1e3 * cpu[key][name] / n for key in ('this', 'other'))
        print(f'  {name:20s} {t:7.3f} / {o:7.3f} = {t / o if o else float("nan"):.2f}')
    add = [1e3 * cpu[key]['add'] / n for key in ('this', 'other')]
    pub = [1e3 * cpu[key]['publish'] / n for key in ('this', 'other')]
    print(f'ab_add_ms={add[0]:.3f}/{add[1]:.3f} ab_publish_ms={pub[0]:.3f}/{pub[1]:.3f} mismatches={mismatches}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--against', metavar='DIR', required=True,
                        help='a checkout of the other version (holding its cooperative_fusion package)')
    parser.add_argument('--vehicles', type=int, nargs='+', default=[4, 16],
                        help='synthetic: platoon sizes (default: 4 16)')
    parser.add_argument('--cycles', type=int, default=bench_fusion.N_CYCLES,
                        help=f'synthetic: timed cycles per size (default {bench_fusion.N_CYCLES})')
    parser.add_argument('--replay', metavar='RESULT', help='a result bag of run --bag: replay the node\'s calls '
                        'on its inputs instead (see the module docstring)')
    parser.add_argument('--scenario', metavar='BAG', help='with --replay: the scenario bag RESULT was made from')
    parser.add_argument('--reps', type=int, default=1, help='with --replay: passes over the calls (default 1)')
    args = parser.parse_args()
    if args.replay and not args.scenario:
        parser.error('--replay needs --scenario BAG')
    if min(args.vehicles) < 1 or args.cycles < 1 or args.reps < 1:
        parser.error('--vehicles, --cycles and --reps must be >= 1')
    versions = load_versions(args.against)
    if args.replay:
        replayed(versions, args.replay, args.scenario, args.reps)
    else:
        synthetic(versions, args.vehicles, args.cycles)


if __name__ == '__main__':
    main()
