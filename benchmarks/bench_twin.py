"""Digital-twin prediction speed: 5 s rollout (dt 0.1 s) of 4 platoon vehicles and 20 tracks (with the
platoon alone in the same loop, for the conflict search), predicted grids at 4 horizons on a 200 m x 30 m
grid at 0.2 m (probabilities and OccupancyGrid cells), and the conflict search.

Prints a reference measured in the same run (a fixed numpy workload) so runs on
different machines compare by ratio, and ends with ``twin_ms=<x> speedup=<y>``
where speedup = predicted seconds per wall second = 5000 / twin_ms.
"""
from __future__ import annotations

import statistics
import time

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


if __name__ == '__main__':
    main()
