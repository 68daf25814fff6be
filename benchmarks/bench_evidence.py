"""Benchmark: one lidar scan -> occupancy evidence, against OctoMap in the same run.

Builds a synthetic 64-beam scan (64 elevations from -25 to +3 deg, 1875 azimuth
steps = 120 000 beams) from a sensor 1.8 m above a flat road, with a few
car- and truck-sized boxes, 2 cm range noise, and no return beyond 100 m.
Times the whole evidence step of the vehicle node — ground split (height band)
plus :func:`lidar_evidence` into a 100 m x 40 m grid at 0.2 m ahead of the
sensor — over 30 runs (for information also as the pipeline runs it, the scan's
patch added into the cycle grid, and with RANSAC ground over 10), and
pyoctomap's ``OcTree(0.2).insertPointCloud`` of the same scan from the same
origin with max range 100 m over 3 runs (it takes seconds). OctoMap gets the
same information: every return, plus each no-return beam as a point beyond max
range, which it truncates to a free ray. OctoMap builds a 3-D map, so the ratio
compares the 2-D evidence step with the 3-D tool it replaces, not equal work.

Run: ``python benchmarks/bench_evidence.py``. The last line is
``evidence_ms=<median> octomap_ms=<median> ratio=<octomap/evidence>``.
"""
from __future__ import annotations

import math
import statistics
import sys
import time

import numpy as np
from numpy.typing import NDArray

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.sensor_models import (GroundConfig, GroundMode, default_lidar_model,
                                                           lidar_evidence, lidar_patch, split_ground)

SENSOR = np.array([12.3, -4.1, 1.8])          # lidar position in map, metres
MAX_RANGE_M = 100.0
EVIDENCE_RUNS = 30
RANSAC_RUNS = 10
OCTOMAP_RUNS = 3
# Boxes (min corner, max corner) in map, metres: cars and a truck ahead, a car beside, a wall far off.
BOXES = np.array([
    [[32.3, -5.0, 0.0], [36.8, -3.2, 1.5]],
    [[52.3, -9.0, 0.0], [64.3, -6.5, 4.0]],
    [[20.3, -1.5, 0.0], [24.8, 0.3, 1.6]],
    [[8.0, -9.5, 0.0], [12.5, -7.7, 1.5]],
    [[82.0, 6.0, 0.0], [90.0, 8.0, 2.5]],
    [[-2.0, -4.9, 0.0], [2.5, -3.1, 1.5]],
])


def synthetic_scan(rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Returns (points (N, 3) in map, no_return_ends (M, 3) at max range along beams without return)."""
    elevation = np.radians(np.linspace(-25.0, 3.0, 64))
    azimuth = np.linspace(-math.pi, math.pi, 1875, endpoint=False)
    el, az = np.meshgrid(elevation, azimuth, indexing='ij')
    d = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)
    t = np.full(len(d), np.inf)
    down = d[:, 2] < 0
    t[down] = -SENSOR[2] / d[down, 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        inv = 1.0 / d
        for lo, hi in BOXES:                       # ray / axis-aligned box slabs, all rays at once
            t1 = (lo - SENSOR) * inv
            t2 = (hi - SENSOR) * inv
            t_near = np.nanmax(np.minimum(t1, t2), axis=1)
            t_far = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (t_near <= t_far) & (t_far > 0)
            t = np.where(hit, np.minimum(t, np.maximum(t_near, 0.0)), t)
    returned = t <= MAX_RANGE_M
    t_noisy = t[returned] + rng.normal(0.0, 0.02, returned.sum())
    points = SENSOR + d[returned] * t_noisy[:, None]
    no_return = SENSOR + d[~returned] * MAX_RANGE_M
    return points, no_return


def evidence_step(points: NDArray[np.float64], no_return: NDArray[np.float64], spec: GridSpec,
                  cfg: GroundConfig):
    obstacle, ground = split_ground(points, cfg)
    free = np.concatenate([points[ground, :2], no_return[:, :2]])
    return lidar_evidence(spec, SENSOR[:2], points[obstacle, :2], free, default_lidar_model())


def patch_step(points: NDArray[np.float64], no_return: NDArray[np.float64], spec: GridSpec, cfg: GroundConfig):
    """The same step as the vehicle pipeline runs it: the scan's patch added into the cycle's grid."""
    obstacle, ground = split_ground(points, cfg)
    free = np.concatenate([points[ground, :2], no_return[:, :2]])
    logodds, known = np.zeros(spec.shape, np.float32), np.zeros(spec.shape, bool)
    lidar_patch(spec, SENSOR[:2], points[obstacle, :2], free, default_lidar_model()).add_to(logodds, known)
    return logodds, known


def main() -> int:
    rng = np.random.default_rng(0)
    points, no_return = synthetic_scan(rng)
    spec = GridSpec.centered(SENSOR[0] + 40.0, SENSOR[1], 100.0, 40.0, 0.2)
    cfg = GroundConfig()
    print(f'scan: {len(points)} returns + {len(no_return)} no-return beams; grid {spec.width}x{spec.height} '
          f'at {spec.resolution} m')

    logodds, known = evidence_step(points, no_return, spec, cfg)      # warm-up
    occupied = int((logodds > 0).sum())
    free = int((logodds < 0).sum())
    print(f'evidence: {occupied} occupied, {free} free, {int((~known).sum())} unknown cells')

    times = []
    for _ in range(EVIDENCE_RUNS):
        start = time.perf_counter()
        evidence_step(points, no_return, spec, cfg)
        times.append((time.perf_counter() - start) * 1e3)
    evidence_ms = statistics.median(times)
    print(f'evidence step over {EVIDENCE_RUNS} runs: median {evidence_ms:.3f} ms, '
          f'min {min(times):.3f} ms, max {max(times):.3f} ms')

    patch_times = []
    for _ in range(EVIDENCE_RUNS):
        start = time.perf_counter()
        patch_step(points, no_return, spec, cfg)
        patch_times.append((time.perf_counter() - start) * 1e3)
    print(f'evidence step as the pipeline runs it (patch into the cycle grid) over {EVIDENCE_RUNS} runs: '
          f'median {statistics.median(patch_times):.3f} ms')

    ransac = GroundConfig(mode=GroundMode.RANSAC)
    ransac_times = []
    for _ in range(RANSAC_RUNS):
        start = time.perf_counter()
        evidence_step(points, no_return, spec, ransac)
        ransac_times.append((time.perf_counter() - start) * 1e3)
    print(f'evidence step with RANSAC ground over {RANSAC_RUNS} runs: median {statistics.median(ransac_times):.3f} ms')

    try:
        import pyoctomap
    except ImportError as exc:
        print(f'pyoctomap not available ({exc}); no reference', file=sys.stderr)
        return 1
    cloud = np.ascontiguousarray(np.concatenate([points, SENSOR + (no_return - SENSOR) * 1.01]))
    octo_times = []
    for i in range(OCTOMAP_RUNS):
        tree = pyoctomap.OcTree(0.2)
        start = time.perf_counter()
        tree.insertPointCloud(cloud, SENSOR.copy(), max_range=MAX_RANGE_M)
        octo_times.append((time.perf_counter() - start) * 1e3)
        print(f'octomap run {i + 1}: {octo_times[-1]:.1f} ms, {tree.size()} nodes')
    octomap_ms = statistics.median(octo_times)
    print(f'evidence_ms={evidence_ms:.3f} octomap_ms={octomap_ms:.3f} ratio={octomap_ms / evidence_ms:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
