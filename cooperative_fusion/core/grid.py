"""Grid geometry shared by every layer, and log-odds helpers.

Convention (the same as nav_msgs/OccupancyGrid): a grid is an array of shape
(height, width) indexed ``[iy, ix]``; cell (0, 0) has its lower-left corner at
``origin`` in the grid frame; x grows with ``ix`` (columns), y with ``iy`` (rows).
The grid frame is ``map`` rotated by the grid's ``yaw`` about the map origin
(yaw 0: the grid frame is ``map``). Grids of one yaw live on one global lattice
(origins are whole multiples of the resolution in that frame), so two grids of
the same resolution and yaw overlay by an integer cell offset; grids of
different yaws meet only through :func:`resample_nearest`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError

#: Largest yaw difference at which two grids count as sharing a lattice, radians.
YAW_TOLERANCE_RAD = 1e-9

#: Probability clamp used when turning percent cells into log-odds.
P_MIN = 0.01
P_MAX = 0.99


@dataclass(frozen=True)
class GridSpec:
    """Geometry of a 2-D grid in ``map``.

    origin_x, origin_y : metres, lower-left corner of cell (0, 0) in the grid frame
        (``map`` rotated by ``yaw`` about the map origin; with yaw 0, map coordinates)
    resolution : metres per cell
    width, height : cells along the grid frame's x and y
    yaw : radians, rotation of the grid frame in ``map`` (0: axis-aligned)
    """

    origin_x: float
    origin_y: float
    resolution: float
    width: int
    height: int
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if not (self.resolution > 0 and math.isfinite(self.resolution)):
            raise ConfigError(f'grid resolution must be a positive finite number, got {self.resolution!r}')
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f'grid size must be positive, got width={self.width} height={self.height}')
        if not (math.isfinite(self.origin_x) and math.isfinite(self.origin_y)):
            raise ConfigError(f'grid origin must be finite, got ({self.origin_x}, {self.origin_y})')
        if not (math.isfinite(self.yaw) and -math.pi <= self.yaw <= math.pi):
            raise ConfigError(f'grid yaw must be a finite angle in [-pi, pi] rad, got {self.yaw!r}')

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

    @property
    def is_rotated(self) -> bool:
        """True when the grid frame is not ``map`` (yaw != 0)."""
        return self.yaw != 0.0

    @property
    def origin_map(self) -> tuple[float, float]:
        """Lower-left corner of cell (0, 0) in ``map``, metres (the OccupancyGrid origin position)."""
        if not self.is_rotated:
            return (self.origin_x, self.origin_y)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return (c * self.origin_x - s * self.origin_y, s * self.origin_x + c * self.origin_y)

    @classmethod
    def centered(cls, center_x: float, center_y: float, size_x: float, size_y: float,
                 resolution: float, yaw: float = 0.0) -> 'GridSpec':
        """A window of about ``size_x`` × ``size_y`` metres (along the grid frame's axes) around the
        map point (``center_x``, ``center_y``), rotated by ``yaw`` rad, snapped to the lattice."""
        if yaw != 0.0:
            c, s = math.cos(yaw), math.sin(yaw)
            center_x, center_y = c * center_x + s * center_y, -s * center_x + c * center_y
        width = max(1, int(round(size_x / resolution)))
        height = max(1, int(round(size_y / resolution)))
        origin_x = math.floor((center_x - 0.5 * width * resolution) / resolution) * resolution
        origin_y = math.floor((center_y - 0.5 * height * resolution) / resolution) * resolution
        return cls(origin_x, origin_y, resolution, width, height, yaw)

    @classmethod
    def covering(cls, points_xy: NDArray[np.floating], margin_x: float, margin_y: float, resolution: float,
                 yaw: float | None = None) -> 'GridSpec':
        """The smallest window rotated by ``yaw`` (default: the direction from the first point to the
        last, the chord of a path) that holds map ``points_xy`` (N, 2) metres with ``margin_x`` /
        ``margin_y`` metres to spare along its axes, snapped outwards to the lattice."""
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        if pts.shape[0] == 0 or not np.isfinite(pts).all():
            raise ConfigError(f'covering: expected finite (N >= 1, 2) points, got shape {pts.shape}')
        if yaw is None:
            dx, dy = pts[-1] - pts[0]
            yaw = math.atan2(dy, dx) if dx != 0.0 or dy != 0.0 else 0.0
        uv = cls(0.0, 0.0, resolution, 1, 1, yaw).to_grid_frame(pts)
        lo = np.floor((uv.min(axis=0) - (margin_x, margin_y)) / resolution)
        hi = np.ceil((uv.max(axis=0) + (margin_x, margin_y)) / resolution)
        return cls(float(lo[0] * resolution), float(lo[1] * resolution), resolution,
                   max(1, int(hi[0] - lo[0])), max(1, int(hi[1] - lo[1])), float(yaw))

    def aligned(self) -> 'GridSpec':
        """This grid in its own frame: the same cells with yaw 0 (for code that works on grid-frame
        coordinates, see :meth:`to_grid_frame`)."""
        return self if not self.is_rotated else GridSpec(self.origin_x, self.origin_y, self.resolution,
                                                         self.width, self.height)

    def to_grid_frame(self, xy: NDArray[np.floating]) -> NDArray[np.float64]:
        """Map points ``xy`` (..., 2) metres in the grid frame (unchanged, as float64, for yaw 0)."""
        xy = np.asarray(xy, dtype=np.float64)
        if not self.is_rotated:
            return xy
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.stack([c * xy[..., 0] + s * xy[..., 1], -s * xy[..., 0] + c * xy[..., 1]], axis=-1)

    def to_map_frame(self, uv: NDArray[np.floating]) -> NDArray[np.float64]:
        """Grid-frame points ``uv`` (..., 2) metres in ``map`` (inverse of :meth:`to_grid_frame`)."""
        uv = np.asarray(uv, dtype=np.float64)
        if not self.is_rotated:
            return uv
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.stack([c * uv[..., 0] - s * uv[..., 1], s * uv[..., 0] + c * uv[..., 1]], axis=-1)

    def world_to_cell(self, xy: NDArray[np.floating]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Cell indices ``(ix, iy)`` of map points ``xy`` : (N, 2) metres. May lie outside the grid."""
        xy = self.to_grid_frame(xy)
        ix = np.floor((xy[..., 0] - self.origin_x) / self.resolution).astype(np.int64)
        iy = np.floor((xy[..., 1] - self.origin_y) / self.resolution).astype(np.int64)
        return ix, iy

    def in_bounds(self, ix: NDArray[np.integer], iy: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Mask of cell indices that lie inside the grid."""
        return (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)

    def cell_centers(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Centre coordinates ``(xs, ys)`` in the grid frame: xs (width,), ys (height,), metres
        (map coordinates for yaw 0; see :meth:`cell_centers_map` otherwise)."""
        xs = self.origin_x + (np.arange(self.width) + 0.5) * self.resolution
        ys = self.origin_y + (np.arange(self.height) + 0.5) * self.resolution
        return xs, ys

    def cell_centers_map(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Centre coordinates ``(x, y)`` in ``map``, each (height, width), metres, for any yaw."""
        xs, ys = self.cell_centers()
        uv = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), axis=-1)
        xy = self.to_map_frame(uv)
        return xy[..., 0], xy[..., 1]

    def lattice_offset(self, other: 'GridSpec') -> tuple[int, int]:
        """Integer cell offset ``(dx, dy)`` of ``other``'s cell (0,0) in this grid.

        Raises ConfigError when the grids do not share resolution, yaw and lattice (grids of
        different yaws: :func:`resample_nearest`).
        """
        if not math.isclose(self.resolution, other.resolution, rel_tol=1e-6):
            raise ConfigError(f'resolution {other.resolution} m does not match {self.resolution} m')
        if abs(other.yaw - self.yaw) > YAW_TOLERANCE_RAD:
            raise ConfigError(f'grid yaw {other.yaw:.6g} rad does not match {self.yaw:.6g} rad: grids of '
                              f'different yaws do not share a lattice (resample one onto the other)')
        fx = (other.origin_x - self.origin_x) / self.resolution
        fy = (other.origin_y - self.origin_y) / self.resolution
        dx, dy = int(round(fx)), int(round(fy))
        if abs(fx - dx) > 1e-3 or abs(fy - dy) > 1e-3:
            raise ConfigError(
                f'grid origin ({other.origin_x}, {other.origin_y}) is off the lattice of '
                f'({self.origin_x}, {self.origin_y}) at {self.resolution} m')
        return dx, dy


def wrap_angle(angle: float) -> float:
    """``angle`` in [-pi, pi), radians."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def follow_yaw(heading: float, step: float, current: float | None, hysteresis: float) -> float:
    """A grid yaw that follows ``heading`` (rad) in steps of ``step`` rad: ``current`` is kept while the
    heading stays within ``step / 2 + hysteresis`` of it, so the lattice does not flip every cycle;
    otherwise the nearest multiple of ``step``. Always in [-pi, pi]; 0 for a heading near 0.
    """
    if not (math.isfinite(heading) and step > 0):
        raise ConfigError(f'follow_yaw: heading {heading!r} rad and step {step!r} rad must be finite, step > 0')
    if current is not None and abs(wrap_angle(heading - current)) <= 0.5 * step + hysteresis:
        return current
    k = round(wrap_angle(heading) / step)
    yaw = k * step
    if yaw > math.pi:
        yaw -= 2.0 * math.pi
    if yaw < -math.pi:
        yaw += 2.0 * math.pi
    return 0.0 if k == 0 else float(yaw)


def resample_nearest(src: GridSpec, values: NDArray, dst: GridSpec, fill: float | int | bool
                     ) -> NDArray:
    """``values`` (src.height, src.width) on ``dst``'s cells: each dst cell takes the src cell under its
    centre (nearest cell), ``fill`` where that lies outside ``src``. Any yaws and resolutions."""
    values = np.asarray(values)
    if values.shape != src.shape:
        raise ConfigError(f'values have shape {values.shape}: expected {src.shape} (height, width) of the source')
    x, y = dst.cell_centers_map()
    ix, iy = src.world_to_cell(np.stack([x, y], axis=-1))
    inside = src.in_bounds(ix, iy)
    out = np.full(dst.shape, fill, dtype=values.dtype)
    out[inside] = values[iy[inside], ix[inside]]
    return out


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
    unknown = np.isnan(logodds)
    has_nan = bool(unknown.any())
    # NaN as 0 (nan_to_num, only when there is one: ±inf give the same p either way).
    cells = negated_logodds_to_percent(np.negative(np.nan_to_num(logodds) if has_nan else logodds))
    if known is not None:
        unknown |= ~known
    if has_nan or known is not None:
        mark_unknown(cells, unknown)
    return cells


def negated_logodds_to_percent(t: NDArray[np.float32]) -> NDArray[np.int8]:
    """round(100 / (1 + exp(t))) of ``t`` = -log-odds, float32, computed in ``t``'s own buffer (overwritten),
    step by step as :func:`logodds_to_prob` (the same values)."""
    np.exp(t, out=t)
    t += np.float32(1.0)
    np.divide(np.float32(1.0), t, out=t)
    t *= np.float32(100.0)
    np.rint(t, out=t)
    return t.astype(np.int8)


def mark_unknown(cells: NDArray[np.int8], unknown: NDArray[np.bool_]) -> None:
    """Set ``cells`` to -1 where ``unknown``, in place, by OR-ing all bits set (a bool negated as int8 is 0 or
    -1): a masked assignment costs ~40x more on a scattered mask."""
    np.bitwise_or(cells, np.negative(unknown.view(np.int8)), out=cells)


def percent_to_logodds(cells: NDArray[np.integer]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Inverse of :func:`logodds_to_percent`: log-odds (0 where unknown) and the known mask."""
    cells = np.asarray(cells)
    if cells.dtype == np.int8:
        # An OccupancyGrid's cells: a look-up of each of the 256 values, computed once the same way.
        index = cells.view(np.uint8)
        return np.take(_INT8_LOGODDS, index), np.take(_INT8_KNOWN, index)
    return _percent_to_logodds(cells)


def _percent_to_logodds(cells: NDArray[np.integer]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    known = (cells >= 0) & (cells <= 100)
    p = np.where(known, cells, 50).astype(np.float32) / 100.0
    return np.where(known, prob_to_logodds(p), 0.0).astype(np.float32), known


#: :func:`percent_to_logodds` of every int8 value, indexed by its bits as uint8.
_INT8_LOGODDS, _INT8_KNOWN = _percent_to_logodds(np.arange(256, dtype=np.uint8).view(np.int8))
