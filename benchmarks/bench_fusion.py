"""Benchmark: one cooperative fusion cycle (core.fusion.cooperative.CooperativeFusion).

A cycle is the fusion node's whole work per common-grid publish, without ROS:
``add`` one evidence grid per vehicle (100 m × 40 m at 0.2 m, pose covariance
on, so each is blurred by the pose sigma; footprints, consistency check,
dynamic layer and co-registration bookkeeping as in ``config/fusion.yaml``'s
defaults), then ``publish(now)``. The common grid is a fixed 200 m × 30 m
window at 0.2 m. Median over >= 50 cycles, for 1, 2, 4, 8, 16 vehicles. The
reference, measured in the same run, is a plain numpy pass over the same data
(4 × percent_to_logodds of a vehicle grid + one float32 add over the common
grid): the ratio says how far the fusion is from the memory-bound floor on
this machine.

Last line: ``fusion_ms_4=<x> fusion_ms_16=<y>``. At 10 vehicle cycles per second the
node keeps real time on one core while fusion_ms_4 < 100 (the CommonGrid update
alone, which this benchmark timed before, stays within 10 ms).
"""
from __future__ import annotations

import time

import numpy as np

from cooperative_fusion.core.fusion.config import config_from_params
from cooperative_fusion.core.fusion.cooperative import CooperativeFusion
from cooperative_fusion.core.grid import GridSpec, percent_to_logodds
from cooperative_fusion.nodes.fusion_params import PARAMS

RES = 0.2
CYCLE_NS = 100_000_000
N_CYCLES = 60


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


def one_cycle(fusion: CooperativeFusion, inputs: list, now_ns: int, cov: np.ndarray) -> np.ndarray:
    for vid, xy, spec, logodds, known in inputs:
        # Standing still: every member's body is where its evidence was made.
        fusion.add_odometry(vid, np.array([xy[0], xy[1], 0.0]), np.array([1.0, 0.0, 0.0, 0.0]), 0.0, cov,
                            now_ns - 50_000_000, now_ns - 50_000_000)
        r = fusion.add(vid, spec, logodds, known, now_ns - 30_000_000, now_ns)
        if not r.accepted:
            raise RuntimeError(f'{vid}: {r.cause}: {r.detail}')
    return fusion.publish(now_ns).cells


def make_fusion(n_vehicles: int) -> CooperativeFusion:
    """The node's defaults on a fixed 200 m x 30 m window around (0, 0) for v1..v<n>."""
    vids = [f'v{i + 1}' for i in range(n_vehicles)]
    values = {p.name: p.default for p in PARAMS}
    values.update({'vehicles': vids, 'vehicle_weights': [1.0] * n_vehicles, 'grid.mode': 'fixed',
                   'grid.size_x_m': 200.0, 'grid.size_y_m': 30.0, 'grid.fixed_origin_x_m': -100.0,
                   'grid.fixed_origin_y_m': -15.0, 'grid.resolution_m': RES})
    return CooperativeFusion(config_from_params(values))


def bench(n_vehicles: int, rng: np.random.Generator) -> tuple[float, float]:
    gap = 150.0 / max(n_vehicles - 1, 1)
    positions = [(-75.0 + i * gap if n_vehicles > 1 else 0.0, 0.0) for i in range(n_vehicles)]
    fusion = make_fusion(n_vehicles)
    inputs = []
    cov = np.array([[0.04, 0.005], [0.005, 0.02]])   # sigma ~0.2 m: blur on
    for i, p in enumerate(positions):
        spec = GridSpec.centered(p[0], p[1], 100.0, 40.0, RES)
        logodds, known = percent_to_logodds(evidence_cells(spec, p, rng))
        inputs.append((f'v{i + 1}', p, spec, logodds, known))
    times = []
    for k in range(N_CYCLES + 3):
        t0 = time.perf_counter()
        one_cycle(fusion, inputs, 1_000_000_000 + k * CYCLE_NS, cov)
        if k >= 3:
            times.append(time.perf_counter() - t0)
    known_frac = float(np.mean([inp[4].mean() for inp in inputs]))
    return 1e3 * float(np.median(times)), known_frac


def reference_ms(rng: np.random.Generator) -> float:
    spec = GridSpec.centered(0.0, 0.0, 100.0, 40.0, RES)
    cells = evidence_cells(spec, (0.0, 0.0), rng)
    a = np.zeros((150, 1000), np.float32)
    b = np.ones_like(a)
    times = []
    for _ in range(N_CYCLES):
        t0 = time.perf_counter()
        for _ in range(4):
            percent_to_logodds(cells)
        np.add(a, b, out=a)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(0)
    ref = reference_ms(rng)
    print(f'reference (4 x percent_to_logodds + one common-grid add): {ref:.2f} ms')
    print('| vehicles | median ms/cycle | ratio to reference | mean known fraction |')
    print('|---:|---:|---:|---:|')
    results = {}
    for n in (1, 2, 4, 8, 16):
        ms, known = bench(n, rng)
        results[n] = ms
        print(f'| {n} | {ms:.2f} | {ms / ref:.1f} | {known:.2f} |')
    print(f'fusion_ms_4={results[4]:.2f} fusion_ms_16={results[16]:.2f}')


if __name__ == '__main__':
    main()
