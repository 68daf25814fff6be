"""What a vehicle shares of its evidence: coarser cells, fewer messages, a smaller window (V2V bandwidth).

The vehicle pipeline makes one evidence grid per cycle (100 × 40 m at 0.2 m is
100 kB as an OccupancyGrid, 1 MB/s at 10 Hz). :class:`EvidenceSharer` turns the
cycles into the published ``/<v>/evidence_grid`` messages:

1. **period** (``period_cycles`` = N): every N-th cycle it publishes the *sum* of the
   log-odds of the N cycles since the last share, on the union of their windows.
   Every cycle's evidence is sent exactly once (the stream stays per-interval
   evidence, never accumulated twice). The sum is stamped at the last cycle:
   a moving object's N positions are summed into one message (a smear of
   speed × (N-1) cycle periods).
2. **resolution** (``resolution_m`` = k × the grid resolution): k×k blocks of the
   global lattice become one cell (:func:`downsample`), so the coarse lattice
   is a sub-lattice of the fine one (origins are whole multiples of the coarse
   resolution) and the fusion node repeats each coarse cell k×k
   (``core.fusion.common_grid.resample_to_resolution``). A block holding a confident
   occupied cell takes the block's largest log-odds (*occupied wins*); any other
   block with known cells takes their mean. A one-cell object seen by a lidar
   (log-odds +1.73) among three free cells (-0.62 each) would become -0.03
   with the mean and -0.13 with the sum: lost; occupied wins keeps +1.73.
3. **crop**: ``none`` keeps the window; ``known`` keeps the bounding box of the
   known cells (lossless); ``corridor`` keeps the cells within
   ``corridor_half_width_m`` of the vehicle's y in ``map`` (a straight road
   along map x: on a curve or a road along y this cuts the road itself) and
   then their known bounding box.

Pure numpy; the node converts the result to percent cells with
``core.grid.logodds_to_percent``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..grid import GridSpec, resample_nearest

__all__ = ['CropMode', 'ShareConfig', 'SharedEvidence', 'EvidenceSharer', 'downsample', 'downsample_known',
           'block_reduce',
           'crop_to_known', 'crop_to_corridor', 'sum_on_union', 'lattice_factor']


class CropMode(Enum):
    NONE = 'none'
    KNOWN = 'known'
    CORRIDOR = 'corridor'


@dataclass(frozen=True)
class ShareConfig:
    """How the per-cycle evidence is shared.

    resolution_m : metres, cell size of the shared grid; a whole multiple of the
        evidence grid's resolution (equal: the cycle's own cells)
    period_cycles : publish every N-th cycle the sum of the N cycles' evidence
    crop : CropMode (a string value such as ``'known'`` is converted)
    corridor_half_width_m : metres, corridor crop: cells within this of the vehicle's y
    occupied_logodds : a k×k block with a cell at or above this log-odds takes
        the block's maximum (occupied wins); 0.4 is p = 0.6
    """

    resolution_m: float = 0.2
    period_cycles: int = 1
    crop: CropMode = CropMode.NONE
    corridor_half_width_m: float = 10.0
    occupied_logodds: float = 0.4

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, 'crop', CropMode(self.crop))
        except ValueError as exc:
            expected = ', '.join(m.value for m in CropMode)
            raise ConfigError(f'share crop must be one of {expected}, got {self.crop!r}') from exc
        for name in ('resolution_m', 'corridor_half_width_m', 'occupied_logodds'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value) or value <= 0:
                raise ConfigError(f'share {name} must be a finite number > 0, got {value!r}')
        if isinstance(self.period_cycles, bool) or not isinstance(self.period_cycles, (int, np.integer)) \
                or self.period_cycles < 1:
            raise ConfigError(f'share period_cycles must be an integer >= 1, got {self.period_cycles!r}')


def lattice_factor(coarse_m: float, fine_m: float) -> int:
    """The integer k with ``coarse_m = k · fine_m``; ConfigError when there is none."""
    ratio = coarse_m / fine_m
    k = int(round(ratio))
    if k < 1 or abs(ratio - k) > 1e-6 * max(1.0, ratio):
        raise ConfigError(f'share resolution {coarse_m} m must be a whole multiple (1, 2, 3, ...) of the grid '
                          f'resolution {fine_m} m')
    return k


@dataclass(frozen=True, eq=False)
class SharedEvidence:
    """One shared evidence grid.

    spec : geometry (on the global lattice at the share resolution)
    logodds : (height, width) float32, summed over ``cycles`` cycles; 0 where unknown
    known : (height, width) bool
    stamp_vehicle_ns : stamp of the last cycle summed (vehicle clock)
    cycles : how many cycles it holds
    """

    spec: GridSpec
    logodds: NDArray[np.float32]
    known: NDArray[np.bool_]
    stamp_vehicle_ns: int
    cycles: int


def _lattice_index(value_m: float, resolution: float) -> int:
    f = value_m / resolution
    i = int(round(f))
    if abs(f - i) > 1e-3:
        raise ConfigError(f'grid origin {value_m} m is off the global lattice of {resolution} m')
    return i


#: Largest block side whose float32 sums :func:`block_reduce` adds in numpy's own order
#: (``reshape(h, k, w, k).sum(axis=(1, 3))``: sequential up to 7 terms, pairwise beyond).
_SEQUENTIAL_SUM_MAX = 7


def block_reduce(a: NDArray, k: int, op: np.ufunc) -> NDArray:
    """``op``-reduction (np.add, np.maximum, ...) of each k×k block of ``a`` (h·k, w·k) -> (h, w).

    Strided slices instead of a (h, k, w, k) reshape, whose reduction over two
    short axes costs ~10x more. Blocks are combined in numpy's order (along a
    block row first, then across the rows), so float32 sums are bit-identical to
    ``a.reshape(h, k, w, k).sum(axis=(1, 3))``; for k = 1 and k > 7 that reshape is used.
    """
    rows, cols = a.shape
    if k < 1 or rows % k or cols % k:
        raise ConfigError(f'block_reduce needs a shape divisible by k = {k}, got {a.shape}')
    if k == 1 or k > _SEQUENTIAL_SUM_MAX:     # (k = 1: a sum starts from +0.0, so -0.0 becomes +0.0)
        return op.reduce(op.reduce(a.reshape(rows // k, k, cols // k, k), axis=3), axis=1)
    out = None
    for i in range(k):
        band = a[i::k]
        acc = band[:, 0::k].copy()
        for j in range(1, k):
            op(acc, band[:, j::k], out=acc)
        out = acc if out is None else op(out, acc, out=out)
    return out


def _padded(a: NDArray, pad: tuple[tuple[int, int], tuple[int, int]], fill: float | int = 0) -> NDArray:
    """``np.pad(a, pad, constant_values=fill)`` without its overhead; ``a`` itself when nothing is padded."""
    (top, bottom), (left, right) = pad
    if not (top or bottom or left or right):
        return a
    out = np.full((a.shape[0] + top + bottom, a.shape[1] + left + right), fill, dtype=a.dtype)
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return out


def downsample(spec: GridSpec, logodds: NDArray[np.floating], known: NDArray[np.bool_], factor: int,
               occupied_logodds: float = 0.4) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """k×k blocks of the global lattice -> one cell (k = ``factor``); see the module docstring.

    spec must lie on the global lattice (origin a whole multiple of its resolution).
    The output's origin is a whole multiple of ``factor × spec.resolution``; edge
    blocks only partly covered by the input use the cells they have. A block is
    known when any of its cells is; it takes the largest log-odds of its known
    cells when that reaches ``occupied_logodds``, else their mean.
    """
    k = int(factor)
    if k < 1:
        raise ConfigError(f'downsample factor must be >= 1, got {factor!r}')
    logodds = np.asarray(logodds, dtype=np.float32)
    known = np.asarray(known, dtype=bool) & np.isfinite(logodds)
    if k == 1:
        return spec, np.where(known, logodds, 0.0).astype(np.float32), known
    i0 = _lattice_index(spec.origin_x, spec.resolution)
    j0 = _lattice_index(spec.origin_y, spec.resolution)
    px, py = i0 % k, j0 % k
    w = -(-(spec.width + px) // k)
    h = -(-(spec.height + py) // k)
    pad = ((py, h * k - spec.height - py), (px, w * k - spec.width - px))
    count = block_reduce(_padded(known.view(np.uint8) if k * k < 256 else known.astype(np.int32), pad), k, np.add)
    total = block_reduce(_padded(np.where(known, logodds, np.float32(0.0)), pad), k, np.add)
    peak = block_reduce(_padded(np.where(known, logodds, np.float32(-np.inf)), pad, -np.inf), k, np.maximum)
    out_known = count > 0
    # float64 mean, as float32 / int64 gives
    mean = total / np.maximum(count, 1).astype(np.float64)
    out = np.where(peak >= np.float32(occupied_logodds), peak, mean)
    out = np.where(out_known, out, 0.0).astype(np.float32)
    res = k * spec.resolution
    out_spec = GridSpec((i0 - px) // k * res, (j0 - py) // k * res, res, w, h, spec.yaw)
    return out_spec, out, out_known


def downsample_known(spec: GridSpec, logodds: NDArray[np.floating], known: NDArray[np.bool_], factor: int,
                     occupied_logodds: float = 0.4) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """``crop_to_known(*downsample(*sum_on_union([(spec, logodds, known)]), factor, occupied_logodds))``, bit for
    bit, with only the blocks around the known cells downsampled (a lidar window is about half unknown)."""
    k = int(factor)
    known = np.asarray(known, dtype=bool) & np.isfinite(logodds)
    rows = np.flatnonzero(known.any(axis=1))
    if k < 2 or rows.size == 0:
        return crop_to_known(*downsample(*sum_on_union([(spec, logodds, known)]), k, occupied_logodds))
    cols = np.flatnonzero(known.any(axis=0))
    i0 = _lattice_index(spec.origin_x, spec.resolution)
    j0 = _lattice_index(spec.origin_y, spec.resolution)
    px, py = i0 % k, j0 % k
    # The coarse blocks holding known cells, and the fine cells of those blocks.
    b0, b1 = (int(rows[0]) + py) // k, (int(rows[-1]) + py) // k + 1
    a0, a1 = (int(cols[0]) + px) // k, (int(cols[-1]) + px) // k + 1
    f0, f1 = max(b0 * k - py, 0), min(b1 * k - py, spec.height)
    e0, e1 = max(a0 * k - px, 0), min(a1 * k - px, spec.width)
    part = GridSpec(spec.origin_x + e0 * spec.resolution, spec.origin_y + f0 * spec.resolution, spec.resolution,
                    e1 - e0, f1 - f0, spec.yaw)
    sub_known = known[f0:f1, e0:e1]
    _, out, out_known = downsample(part, np.where(sub_known, logodds[f0:f1, e0:e1], 0.0).astype(np.float32),
                                   sub_known, k, occupied_logodds)
    # The spec exactly as crop_to_known (_crop) cuts it from the whole window's downsampled spec.
    res = k * spec.resolution
    whole_x, whole_y = (i0 - px) // k * res, (j0 - py) // k * res
    return GridSpec(whole_x + a0 * res, whole_y + b0 * res, res, a1 - a0, b1 - b0, spec.yaw), out, out_known


def _crop(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_], rows: slice, cols: slice
          ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    r0, c0 = rows.start, cols.start
    out = GridSpec(spec.origin_x + c0 * spec.resolution, spec.origin_y + r0 * spec.resolution, spec.resolution,
                   cols.stop - c0, rows.stop - r0, spec.yaw)
    return out, logodds[rows, cols], known[rows, cols]


def crop_to_known(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_]
                  ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """The bounding box of the known cells (whole cells: the origin stays on the lattice).

    With no known cell, the first cell alone (unknown), so a message can still be sent.
    """
    rows = np.flatnonzero(known.any(axis=1))
    if rows.size == 0:
        return _crop(spec, logodds, known, slice(0, 1), slice(0, 1))
    cols = np.flatnonzero(known.any(axis=0))
    return _crop(spec, logodds, known, slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))


def crop_to_corridor(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_], center_y_m: float,
                     half_width_m: float) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """Rows overlapping ``|y - center_y_m| <= half_width_m`` (a straight road along the grid's x; y in
    the grid frame), then their known bounding box. Cells outside the band are dropped even when known."""
    lo = int(math.floor((center_y_m - half_width_m - spec.origin_y) / spec.resolution))
    hi = int(math.ceil((center_y_m + half_width_m - spec.origin_y) / spec.resolution))
    lo, hi = max(lo, 0), min(hi, spec.height)
    if lo >= hi:
        return _crop(spec, logodds, np.zeros_like(known), slice(0, 1), slice(0, 1))
    band = _crop(spec, logodds, known, slice(lo, hi), slice(0, spec.width))
    return crop_to_known(*band)


def sum_on_union(cycles: list[tuple[GridSpec, NDArray[np.floating], NDArray[np.bool_]]]
                 ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """The log-odds sum of same-resolution grids on the bounding box of their windows (one lattice).

    A cell is known when any grid knows it; each grid's known cells are added once. A grid of another
    yaw than the last one (the window turned within the period) is resampled onto the last one's window
    (nearest cell).
    """
    if not cycles:
        raise ConfigError('sum_on_union needs at least one grid')
    last = cycles[-1][0]
    if any(spec.yaw != last.yaw for spec, _, _ in cycles):
        cycles = [c if c[0].yaw == last.yaw else
                  (last, resample_nearest(c[0], np.asarray(c[1], dtype=np.float32), last, np.float32(0.0)),
                   resample_nearest(c[0], np.asarray(c[2], dtype=bool), last, False)) for c in cycles]
    res = cycles[0][0].resolution
    if len(cycles) == 1:
        spec, l, k = cycles[0]
        k = np.asarray(k, dtype=bool) & np.isfinite(l)
        return spec, np.where(k, l, 0.0).astype(np.float32), k
    idx = []
    for spec, _, _ in cycles:
        if not math.isclose(spec.resolution, res, rel_tol=1e-6):
            raise ConfigError(f'cannot sum grids of {spec.resolution} m and {res} m')
        idx.append((_lattice_index(spec.origin_x, res), _lattice_index(spec.origin_y, res), spec.width, spec.height))
    x0 = min(i for i, _, _, _ in idx)
    y0 = min(j for _, j, _, _ in idx)
    x1 = max(i + w for i, _, w, _ in idx)
    y1 = max(j + h for _, j, _, h in idx)
    out_l = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    out_k = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for (spec, l, k), (i, j, w, h) in zip(cycles, idx):
        k = np.asarray(k, dtype=bool) & np.isfinite(l)
        sl = (slice(j - y0, j - y0 + h), slice(i - x0, i - x0 + w))
        out_l[sl] += np.where(k, l, 0.0).astype(np.float32)
        out_k[sl] |= k
    return GridSpec(x0 * res, y0 * res, res, x1 - x0, y1 - y0, last.yaw), out_l, out_k


class EvidenceSharer:
    """Collects cycles and hands back the evidence to publish every ``period_cycles`` cycles."""

    def __init__(self, cfg: ShareConfig, grid_resolution_m: float) -> None:
        self.cfg = cfg
        self.factor = lattice_factor(cfg.resolution_m, grid_resolution_m)
        self._pending: list[tuple[GridSpec, NDArray[np.floating], NDArray[np.bool_]]] = []

    @property
    def pending(self) -> int:
        """Cycles collected since the last share."""
        return len(self._pending)

    def add(self, spec: GridSpec, logodds: NDArray[np.floating], known: NDArray[np.bool_], stamp_vehicle_ns: int,
            vehicle_y_m: float, vehicle_x_m: float = 0.0) -> SharedEvidence | None:
        """Add one cycle's evidence; returns the evidence to share when the period is complete, else None.

        vehicle_x_m, vehicle_y_m : the vehicle's position in map at this cycle (the corridor crop's centre
        line runs through it along the grid's x)
        """
        self._pending.append((spec, logodds, known))
        if len(self._pending) < self.cfg.period_cycles:
            return None
        cycles, self._pending = self._pending, []
        if self.cfg.crop is CropMode.KNOWN and len(cycles) == 1:
            out = downsample_known(*cycles[0], self.factor, self.cfg.occupied_logodds)
            return SharedEvidence(out[0], out[1], out[2], int(stamp_vehicle_ns), 1)
        out = downsample(*sum_on_union(cycles), self.factor, self.cfg.occupied_logodds)
        if self.cfg.crop is CropMode.KNOWN:
            out = crop_to_known(*out)
        elif self.cfg.crop is CropMode.CORRIDOR:
            center = float(out[0].to_grid_frame(np.array([vehicle_x_m, vehicle_y_m]))[1]) if out[0].is_rotated \
                else vehicle_y_m
            out = crop_to_corridor(*out, center, self.cfg.corridor_half_width_m)
        return SharedEvidence(out[0], out[1], out[2], int(stamp_vehicle_ns), len(cycles))
