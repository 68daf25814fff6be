"""Binary dilations by shifted ORs: exact stand-ins for the scipy.ndimage calls on the hot paths of the
fusion and the twin.

A dilation by a small, point-symmetric structuring element is the OR of the
mask shifted by each of its offsets, with nothing coming in from outside the
array (scipy's ``border_value=0`` / ``mode='constant', cval=False``). On
grids of ~10^5 cells a handful of bool slice-ORs costs far less than
``ndimage.binary_dilation``'s generic loop; :func:`nonzero_box` lets callers
work on the bounding box of a sparse mask.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def nonzero_box(mask: NDArray[np.bool_], margin: int = 0) -> tuple[slice, slice] | None:
    """Slices (rows, cols) of the bounding box of ``mask``'s True cells grown by ``margin`` cells, clipped
    to the array; None when no cell is True."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, h)),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, w)))


def nonzero_cells(mask: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(iy, ix) of the True cells of a 2-D ``mask``, row-major: ``np.nonzero(mask)``, by the flat indices
    (numpy 2.4's 2-D ``nonzero`` takes 7-20x as long on the fusion's grids)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'nonzero_cells takes a 2-D mask, got shape {mask.shape}')
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def column_bounds(points: NDArray) -> tuple[NDArray, NDArray]:
    """(lo, hi) (2,) of points (N >= 1, 2) per column: ``points.min(axis=0)``, ``points.max(axis=0)``, a
    column at a time (numpy reduces a (N, 2) array over its long axis ~50x slower)."""
    return (np.array([points[:, 0].min(), points[:, 1].min()]),
            np.array([points[:, 0].max(), points[:, 1].max()]))


def _or_shifted(out: NDArray[np.bool_], src: NDArray[np.bool_], dy: int, dx: int) -> None:
    """out[y, x] |= src[y - dy, x - dx] where both lie in the array."""
    h, w = src.shape
    if abs(dy) >= h or abs(dx) >= w:
        return
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] |= \
        src[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]


def dilate_square(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """(H, W) bool: ``mask`` dilated by the (2·radius+1)² square, nothing from outside the array.

    The same as ``ndimage.binary_dilation(mask, np.ones((3, 3)), iterations=radius)`` and
    ``ndimage.maximum_filter(mask, size=2 * radius + 1, mode='constant', cval=False)``. A new array.
    """
    return dilate_rect(mask, radius, radius)


def dilate_rect(mask: NDArray[np.bool_], reach_rows: int, reach_cols: int) -> NDArray[np.bool_]:
    """(H, W) bool: ``mask`` dilated by the (2·reach_rows+1) x (2·reach_cols+1) rectangle, nothing from outside
    the array: ``ndimage.maximum_filter(mask, size=(2 * reach_rows + 1, 2 * reach_cols + 1), mode='constant',
    cval=False)``, along rows, then columns. A new array."""
    mask = np.asarray(mask, dtype=bool)
    rows = _dilate_along_x(mask, reach_cols)
    return np.ascontiguousarray(_dilate_along_x(rows.T, reach_rows).T)


def _dilate_along_x(mask: NDArray[np.bool_], reach: int) -> NDArray[np.bool_]:
    """``mask`` dilated by ``reach`` cells both ways along its second axis (a new array)."""
    if reach <= 0:
        return mask.copy()
    if reach >= 3:                      # runs by doubling: fewer slice-ORs than one per offset
        return _run_x(mask, -reach, reach)
    out = mask.copy()
    for d in range(1, reach + 1):
        _or_shifted(out, mask, 0, d)
        _or_shifted(out, mask, 0, -d)
    return out


def line_offsets(reach: int, heading_rad: float) -> NDArray[np.int64]:
    """(2·reach+1, 2) cell offsets (dy, dx) within ``reach`` cells of the centre along ``heading_rad``,
    both ways (rounded to the nearest cell: point-symmetric)."""
    k = np.arange(-reach, reach + 1)
    return np.stack([np.rint(k * math.sin(heading_rad)).astype(np.int64),
                     np.rint(k * math.cos(heading_rad)).astype(np.int64)], axis=1)


def line_element(reach: int, heading_rad: float) -> NDArray[np.bool_]:
    """The structuring element of :func:`line_offsets` as a (2·ry+1, 2·rx+1) bool array (centre in the
    middle), for ``ndimage`` calls and tests."""
    off = line_offsets(reach, heading_rad)
    ry, rx = int(np.abs(off[:, 0]).max()), int(np.abs(off[:, 1]).max())
    out = np.zeros((2 * ry + 1, 2 * rx + 1), dtype=bool)
    out[off[:, 0] + ry, off[:, 1] + rx] = True
    return out


def _run_x(mask: NDArray[np.bool_], lo: int, hi: int) -> NDArray[np.bool_]:
    """(H, W) bool: out[y, x] = OR of mask[y, x - d] for lo <= d <= hi, nothing from outside.

    Shifts by 1, 2, 4, ... on an array padded so that no shifted cell is lost on the way: log2 of
    the run's length slice-ORs instead of one per offset.
    """
    h, w = mask.shape
    pad = max(abs(lo), abs(hi))
    acc = np.zeros((h, w + 2 * pad), dtype=bool)
    acc[:, pad + lo:pad + lo + w] = mask
    length, span = hi - lo + 1, 1                     # acc holds the shifts lo .. lo + span - 1
    while span < length:
        step = min(span, length - span)
        acc[:, step:] |= acc[:, :-step].copy()
        span += step
    return acc[:, pad:pad + w]


def dilate_offsets(mask: NDArray[np.bool_], offsets: NDArray[np.integer]) -> NDArray[np.bool_]:
    """(H, W) bool: OR of ``mask`` shifted by every (dy, dx) in ``offsets`` (K, 2), nothing from outside.

    For a point-symmetric set (as :func:`line_offsets`) this is ``ndimage.binary_dilation`` by that
    element. Offsets sharing a dy with a run of 4 or more consecutive dx (a line near the x axis) are
    done as one run, a whole 3x3 or 5x5 square as :func:`dilate_square`. A new array.
    """
    mask = np.asarray(mask, dtype=bool)
    rows: dict[int, set[int]] = {}
    for dy, dx in np.asarray(offsets).reshape(-1, 2):
        rows.setdefault(int(dy), set()).add(int(dx))
    r = max(rows, default=0)
    if 0 < r < 3 and set(rows) == set(range(-r, r + 1)) and all(d == set(range(-r, r + 1)) for d in rows.values()):
        return dilate_square(mask, r)     # a whole square (a disc of up to 1.5 cells): rows, then columns
    out = np.zeros_like(mask)
    for dy, dxs in rows.items():
        lo, hi = min(dxs), max(dxs)
        if len(dxs) >= 4 and hi - lo + 1 == len(dxs):
            _or_shifted(out, _run_x(mask, lo, hi), dy, 0)
        else:
            for dx in dxs:
                _or_shifted(out, mask, dy, dx)
    return out
