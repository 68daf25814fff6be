"""The nearest obstacle a vehicle itself perceives in its lane ahead (the advisory
follower's own perception, every mode).

:func:`nearest_in_corridor` reads one evidence grid (percent cells, -1 unknown,
as ``/<v>/evidence_grid``, in any grid yaw) and returns the gap from the
vehicle's front bumper to the nearest cluster of occupied cells in a corridor
along its path: straight along its heading, or an arc of the curvature it
drives (yaw rate / speed) on a curved road. The grid carries no velocity: the
caller tracks what it finds over successive grids for its speed, and ends the
corridor in front of the predecessor, whose motion V2V tells
(:class:`~.follower_core.FollowerCore`).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..grid import GridSpec

#: Below this curvature (1/m) the corridor is straight.
_STRAIGHT_PER_M = 1e-6


def path_coordinates(dx: NDArray[np.floating], dy: NDArray[np.floating], yaw: float,
                     curvature_per_m: float = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Arc length along and signed offset across (left +) a path from the origin heading ``yaw`` with
    constant ``curvature_per_m`` (1/m, left +), of points at map offsets ``dx``, ``dy`` from its start, metres.

    Points behind the start or more than half a turn around get negative along values.
    """
    c, s = math.cos(yaw), math.sin(yaw)
    a = np.asarray(dx, dtype=np.float64) * c + np.asarray(dy, dtype=np.float64) * s
    b = -np.asarray(dx, dtype=np.float64) * s + np.asarray(dy, dtype=np.float64) * c
    k = float(curvature_per_m)
    if abs(k) < _STRAIGHT_PER_M:
        return a, b
    r = 1.0 / k                                                   # centre of the turn at (0, r)
    # angle swept from the start about the centre, in the direction of travel
    phi = np.arctan2(a, (r - b) * np.sign(r))
    along = phi * abs(r)
    across = r - np.sign(r) * np.hypot(a, b - r)
    return along, across


def nearest_in_corridor(percent: NDArray[np.integer], spec: GridSpec, x: float, y: float, yaw: float,
                        front_m: float, half_width_m: float = 1.5, max_range_m: float = 120.0,
                        occupied_percent: int = 65, min_cells: int = 2,
                        skip: tuple[float, float] | None = None, curvature_per_m: float = 0.0) -> float | None:
    """Gap (m) from the front bumper to the nearest occupied cells in the lane ahead, or None.

    percent : (H, W) cells 0..100, -1 unknown (``spec`` places them in ``map``, any yaw)
    x, y, yaw : the vehicle's base_link in ``map`` (m, rad); front_m : base_link to front bumper, m
    half_width_m : corridor half width across the path; max_range_m : how far along it to look
    occupied_percent : a cell at or above this is occupied; min_cells : occupied cells within 1 m along
        the path that make an obstacle (one stray cell does not)
    skip : (near, far) gaps, m, to ignore (far may be inf: the corridor ends at near)
    curvature_per_m : curvature of the path the vehicle drives (yaw rate / speed), 1/m, left +
    """
    grid = np.asarray(percent)
    if grid.shape != spec.shape:
        raise ConfigError(f'evidence grid shape {grid.shape} does not match its spec {spec.shape}')
    if not math.isfinite(curvature_per_m):
        raise ConfigError(f'corridor curvature must be finite, got {curvature_per_m!r} 1/m')
    rows, cols = np.nonzero(grid >= occupied_percent)
    if rows.size == 0:
        return None
    uv = np.stack([spec.origin_x + (cols + 0.5) * spec.resolution,
                   spec.origin_y + (rows + 0.5) * spec.resolution], axis=-1)
    xy = spec.to_map_frame(uv)
    along, across = path_coordinates(xy[:, 0] - x, xy[:, 1] - y, yaw, curvature_per_m)
    along = along - front_m
    keep = (along > 0.0) & (along <= max_range_m) & (np.abs(across) <= half_width_m)
    if skip is not None:
        keep &= ~((along >= skip[0]) & (along <= skip[1]))
    ahead = np.sort(along[keep])
    if ahead.size < min_cells:
        return None
    count = np.searchsorted(ahead, ahead + 1.0, side='right') - np.arange(ahead.size)
    hits = np.nonzero(count >= min_cells)[0]
    return float(ahead[hits[0]]) if hits.size else None
