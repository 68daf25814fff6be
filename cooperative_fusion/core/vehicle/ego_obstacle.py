"""The nearest obstacle a vehicle itself perceives in its lane ahead (ego mode of the advisory follower).

:func:`nearest_in_corridor` reads one evidence grid (percent cells, -1 unknown,
as ``/<v>/evidence_grid``) and returns the gap from the vehicle's front bumper
to the nearest cluster of occupied cells in a corridor along its heading. The
predecessor is in that corridor too: its along-range interval is skipped (its
own odometry tells the follower where it is). The grid carries no velocity:
the obstacle is taken as standing (conservative).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..grid import GridSpec


def nearest_in_corridor(percent: NDArray[np.integer], spec: GridSpec, x: float, y: float, yaw: float,
                        front_m: float, half_width_m: float = 1.5, max_range_m: float = 120.0,
                        occupied_percent: int = 65, min_cells: int = 2,
                        skip: tuple[float, float] | None = None) -> float | None:
    """Gap (m) from the front bumper to the nearest occupied cells in the lane ahead, or None.

    percent : (H, W) cells 0..100, -1 unknown (``spec`` places them in ``map``)
    x, y, yaw : the vehicle's base_link in ``map`` (m, rad); front_m : base_link to front bumper, m
    half_width_m : corridor half width across the heading; max_range_m : how far ahead to look
    occupied_percent : a cell at or above this is occupied; min_cells : occupied cells within 1 m along
        the road that make an obstacle (one stray cell does not)
    skip : (near, far) gaps, m, to ignore (the predecessor's body)
    """
    grid = np.asarray(percent)
    if grid.shape != spec.shape:
        raise ConfigError(f'evidence grid shape {grid.shape} does not match its spec {spec.shape}')
    rows, cols = np.nonzero(grid >= occupied_percent)
    if rows.size == 0:
        return None
    cx = spec.origin_x + (cols + 0.5) * spec.resolution - x
    cy = spec.origin_y + (rows + 0.5) * spec.resolution - y
    c, s = math.cos(yaw), math.sin(yaw)
    along = cx * c + cy * s - front_m
    across = -cx * s + cy * c
    keep = (along > 0.0) & (along <= max_range_m) & (np.abs(across) <= half_width_m)
    if skip is not None:
        keep &= ~((along >= skip[0]) & (along <= skip[1]))
    ahead = np.sort(along[keep])
    if ahead.size < min_cells:
        return None
    count = np.searchsorted(ahead, ahead + 1.0, side='right') - np.arange(ahead.size)
    hits = np.nonzero(count >= min_cells)[0]
    return float(ahead[hits[0]]) if hits.size else None
