"""A vehicle's co-registration correction and how evidence is moved through it.

:func:`warp_evidence` resamples an evidence grid through a :class:`Correction`
with nearest-cell lookup (order 0): values never mix, so a one-cell wall keeps
its full log-odds; the price is at most half a cell of position error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..grid import YAW_TOLERANCE_RAD, GridSpec, resample_nearest
from .coregistration import CoregResult


@dataclass(frozen=True)
class Correction:
    """A vehicle's pose correction ``p -> R(dyaw)·(p - pivot) + pivot + (dx, dy)`` (core.fusion.coregistration's form).

    dx, dy : metres; dyaw : radians. A pose error travels with the vehicle (its odometry is off by the
    same offset and heading wherever it is), so the correction does too: it turns about the vehicle's
    position at the stamp of whatever it corrects (:meth:`at`); ``pivot`` (x, y) metres in ``map`` is
    where the latest estimate was made, for /diagnostics.
    """

    dx: float = 0.0
    dy: float = 0.0
    dyaw: float = 0.0
    pivot: tuple[float, float] = (0.0, 0.0)

    @property
    def is_identity(self) -> bool:
        return self.dx == 0.0 and self.dy == 0.0 and self.dyaw == 0.0

    def at(self, pivot: tuple[float, float] | NDArray[np.floating]) -> 'Correction':
        """The same correction turning about ``pivot`` (the vehicle's position at a given stamp)."""
        return Correction(self.dx, self.dy, self.dyaw, (float(pivot[0]), float(pivot[1])))

    def blend(self, estimate: CoregResult, alpha: float) -> 'Correction':
        """Exponential average towards ``estimate`` (weight ``alpha``), component by component.

        Estimates are absolute (raw evidence against the reference), so the
        average converges to the estimate instead of integrating it.
        """
        return Correction(self.dx + alpha * (estimate.dx - self.dx), self.dy + alpha * (estimate.dy - self.dy),
                          self.dyaw + alpha * (estimate.dyaw - self.dyaw), estimate.pivot)

    def as_result(self) -> CoregResult:
        return CoregResult(self.dx, self.dy, self.dyaw, 1.0, 0.0, True, 'ok', self.pivot)


def warp_evidence(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_], corr: Correction
                  ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """The evidence grid moved through ``corr``, nearest-cell resampled onto the same lattice.

    spec : evidence geometry; logodds : (height, width) float32; known : (height, width) bool
    Returns a spec grown by a margin that holds the moved cells, and its
    (height', width') log-odds and known mask. A corrected cell takes the value
    of the source cell its centre maps back into (order 0: values never mix).
    A grid with a yaw is warped in its own frame (the correction turned into it).
    A pure translation (``dyaw`` 0) moves every cell by the same whole number of cells: then the result is
    a view of the cells that land (:func:`_shifted_block`) on a spec moved by those cells, no copy; the
    known cells are those of the grown grid, and an unknown cell keeps the log-odds it had.
    """
    if corr.is_identity:
        return spec, logodds, known
    res = spec.resolution
    # The grid frame is map turned about the map origin: one rotation takes points and vectors into it.
    c = spec.to_grid_frame(np.asarray(corr.pivot, dtype=np.float64))
    t = spec.to_grid_frame(np.array([corr.dx, corr.dy]))
    reach = float(np.hypot(*t))
    if corr.dyaw != 0.0:
        corners = np.array([[spec.origin_x, spec.origin_y], [spec.origin_x + spec.size_x, spec.origin_y],
                            [spec.origin_x, spec.origin_y + spec.size_y],
                            [spec.origin_x + spec.size_x, spec.origin_y + spec.size_y]])
        reach += abs(corr.dyaw) * float(np.max(np.hypot(*(corners - c).T)))
    m = int(math.ceil(reach / res)) + 1
    out = GridSpec(spec.origin_x - m * res, spec.origin_y - m * res, res, spec.width + 2 * m, spec.height + 2 * m,
                   spec.yaw)
    # Output cell index i (x, y) -> centre q -> source point p = R(-dyaw)(q - c - t) + c -> source index.
    cs, sn = math.cos(-corr.dyaw), math.sin(-corr.dyaw)
    r_inv = np.array([[cs, -sn], [sn, cs]])
    o_in = np.array([spec.origin_x, spec.origin_y])
    o_out = np.array([out.origin_x, out.origin_y])
    offset_xy = (r_inv @ (o_out + 0.5 * res - c - t) + c - o_in) / res - 0.5
    # Arrays are [iy, ix]: swap both the matrix axes and the offset.
    matrix = r_inv[::-1, ::-1]
    offset = offset_xy[::-1]
    if corr.dyaw == 0.0:
        block = _shifted_block(offset, np.shape(logodds), out.shape)
        if block is not None:
            (y0, x0), src = block
            moved = GridSpec(out.origin_x + x0 * res, out.origin_y + y0 * res, res, src[1].stop - src[1].start,
                             src[0].stop - src[0].start, spec.yaw)
            return moved, logodds[src], known[src]
    # One pass: unknown travels as NaN (order 0 copies values, so NaN never spreads).
    lin = ndimage.affine_transform(np.where(known, logodds, np.nan).astype(np.float32), matrix, offset,
                                   output_shape=out.shape, order=0, mode='constant', cval=np.nan)
    kin = ~np.isnan(lin)
    return out, np.where(kin, lin, 0.0).astype(np.float32), kin


def _shifted_block(offset: NDArray[np.floating], in_shape: tuple[int, ...], out_shape: tuple[int, int]
                   ) -> tuple[tuple[int, int], tuple[slice, slice]] | None:
    """A pure translation onto the grown grid as a block: ((iy, ix) of the output cell that the block's first
    cell lands on, the source block's (rows, cols) slices); every other output cell is unknown. The general
    path's rule: output index i reads source coordinate ``c = i + offset`` (per axis) at index
    ``floor(c + 0.5)``, and nothing where ``c`` lies outside ``[0, n - 1]`` (ndimage's order-0 rule and its
    constant-mode bounds: a source row or column at an edge may be left out). None when the indices are not
    consecutive (float rounding at a tie) or nothing lands, for the general path.
    """
    first, block = [], []
    for axis in (0, 1):
        c = np.arange(out_shape[axis], dtype=np.float64) + offset[axis]
        sel = np.flatnonzero((c >= 0.0) & (c <= in_shape[axis] - 1))
        if sel.size == 0:
            return None
        idx = np.floor(c[sel] + 0.5).astype(np.int64)
        if sel[-1] - sel[0] != sel.size - 1 or np.any(np.diff(idx) != 1):
            return None
        first.append(int(sel[0]))
        block.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return (first[0], first[1]), (block[0], block[1])


def mask_on(src: GridSpec, mask: NDArray[np.bool_], dst: GridSpec) -> NDArray[np.bool_]:
    """``mask`` (src.height, src.width) read at the centre of every cell of ``dst``: (dst.height, dst.width);
    False outside ``src``. Carries a per-cell flag onto another resolution, lattice or yaw."""
    if abs(src.yaw - dst.yaw) > YAW_TOLERANCE_RAD:
        return resample_nearest(src, np.asarray(mask, dtype=bool), dst, False)
    ix = np.floor((dst.origin_x + (np.arange(dst.width) + 0.5) * dst.resolution - src.origin_x)
                  / src.resolution).astype(np.int64)
    iy = np.floor((dst.origin_y + (np.arange(dst.height) + 0.5) * dst.resolution - src.origin_y)
                  / src.resolution).astype(np.int64)
    okx, oky = (ix >= 0) & (ix < src.width), (iy >= 0) & (iy < src.height)
    # Rows then columns (two 1-D takes are cheaper than one broadcast 2-D gather).
    out = np.asarray(mask, dtype=bool).take(np.clip(iy, 0, src.height - 1), axis=0).take(
        np.clip(ix, 0, src.width - 1), axis=1)
    return out & oky[:, None] & okx[None, :]
