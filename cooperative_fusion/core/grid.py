"""Grid geometry shared by every layer, and log-odds helpers.

Convention (the same as nav_msgs/OccupancyGrid): a grid is an array of shape
(height, width) indexed ``[iy, ix]``; cell (0, 0) has its lower-left corner at
``origin`` in ``map``; x grows with ``ix`` (columns), y with ``iy`` (rows).
Grids of all vehicles live on one global lattice (origins are whole multiples
of the resolution), so two grids of the same resolution overlay by an integer
cell offset, never by resampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError

#: Probability clamp used when turning percent cells into log-odds.
P_MIN = 0.01
P_MAX = 0.99


@dataclass(frozen=True)
class GridSpec:
    """Geometry of a 2-D grid in ``map``.

    origin_x, origin_y : metres, lower-left corner of cell (0, 0)
    resolution : metres per cell
    width, height : cells along x and along y
    """

    origin_x: float
    origin_y: float
    resolution: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (self.resolution > 0 and math.isfinite(self.resolution)):
            raise ConfigError(f'grid resolution must be a positive finite number, got {self.resolution!r}')
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f'grid size must be positive, got width={self.width} height={self.height}')
        if not (math.isfinite(self.origin_x) and math.isfinite(self.origin_y)):
            raise ConfigError(f'grid origin must be finite, got ({self.origin_x}, {self.origin_y})')

    @property
    def shape(self) -> tuple[int, int]:
        """Array shape ``(height, width)``."""
        return (self.height, self.width)

    @property
    def size_x(self) -> float:
        return self.width * self.resolution

    @property
    def size_y(self) -> float:
        return self.height * self.resolution

    @classmethod
    def centered(cls, center_x: float, center_y: float, size_x: float, size_y: float,
                 resolution: float) -> 'GridSpec':
        """A window of about ``size_x`` × ``size_y`` metres around a point, snapped to the lattice."""
        width = max(1, int(round(size_x / resolution)))
        height = max(1, int(round(size_y / resolution)))
        origin_x = math.floor((center_x - 0.5 * width * resolution) / resolution) * resolution
        origin_y = math.floor((center_y - 0.5 * height * resolution) / resolution) * resolution
        return cls(origin_x, origin_y, resolution, width, height)

    def world_to_cell(self, xy: NDArray[np.floating]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Cell indices ``(ix, iy)`` of points ``xy`` : (N, 2) metres. May lie outside the grid."""
        xy = np.asarray(xy, dtype=np.float64)
        ix = np.floor((xy[..., 0] - self.origin_x) / self.resolution).astype(np.int64)
        iy = np.floor((xy[..., 1] - self.origin_y) / self.resolution).astype(np.int64)
        return ix, iy

    def in_bounds(self, ix: NDArray[np.integer], iy: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Mask of cell indices that lie inside the grid."""
        return (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)

    def cell_centers(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Centre coordinates ``(xs, ys)``: xs (width,), ys (height,), metres."""
        xs = self.origin_x + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.origin_y + (np.arange(self.height) + 0.5) * self.resolution
        return xs, ys

    def lattice_offset(self, other: 'GridSpec') -> tuple[int, int]:
        """Integer cell offset ``(dx, dy)`` of ``other``'s cell (0,0) in this grid.

        Raises ConfigError when the grids do not share resolution and lattice.
        """
        if not math.isclose(self.resolution, other.resolution, rel_tol=1e-6):
            raise ConfigError(f'resolution {other.resolution} m does not match {self.resolution} m')
        fx = (other.origin_x - self.origin_x) / self.resolution
        fy = (other.origin_y - self.origin_y) / self.resolution
        dx, dy = int(round(fx)), int(round(fy))
        if abs(fx - dx) > 1e-3 or abs(fy - dy) > 1e-3:
            raise ConfigError(
                f'grid origin ({other.origin_x}, {other.origin_y}) is off the lattice of '
                f'({self.origin_x}, {self.origin_y}) at {self.resolution} m')
        return dx, dy


def prob_to_logodds(p: NDArray[np.floating]) -> NDArray[np.float32]:
    """log(p / (1 - p)), with p clamped to [P_MIN, P_MAX]."""
    p = np.clip(np.asarray(p, dtype=np.float32), P_MIN, P_MAX)
    return np.log(p / (1.0 - p)).astype(np.float32)


def logodds_to_prob(logodds: NDArray[np.floating]) -> NDArray[np.float32]:
    """1 / (1 + exp(-l))."""
    return (1.0 / (1.0 + np.exp(-np.asarray(logodds, dtype=np.float32)))).astype(np.float32)


def logodds_to_percent(logodds: NDArray[np.floating], known: NDArray[np.bool_] | None = None) -> NDArray[np.int8]:
    """OccupancyGrid cells: round(100·p), -1 where ``known`` is False (or where logodds is NaN)."""
    logodds = np.asarray(logodds, dtype=np.float32)
    cells = np.rint(100.0 * logodds_to_prob(np.nan_to_num(logodds))).astype(np.int8)
    unknown = np.isnan(logodds)
    if known is not None:
        unknown |= ~known
    cells[unknown] = -1
    return cells


def percent_to_logodds(cells: NDArray[np.integer]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Inverse of :func:`logodds_to_percent`: log-odds (0 where unknown) and the known mask."""
    cells = np.asarray(cells)
    known = (cells >= 0) & (cells <= 100)
    p = np.where(known, cells, 50).astype(np.float32) / 100.0
    return np.where(known, prob_to_logodds(p), 0.0).astype(np.float32), known
