"""The twin's self-check: its predicted grids scored against the mirrored grid at their target time.

Each predicted grid waits (:meth:`SelfCheck.expect`) until a mirrored grid stamped at
or after its target (within half a grid period) arrives (:meth:`SelfCheck.observe`);
IoU and Brier score against it (:func:`.prediction.iou`, :func:`.prediction.brier`, from the observed
counts of each grid and the cells a prediction is not 0 at) are kept per horizon over the last ``window``
predictions.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, MessageFormatError
from ..grid import GridSpec

#: Self-check scores kept per horizon for the reported mean.
SELF_CHECK_WINDOW = 50


def horizon_key(horizon_s: float) -> str:
    """``'1.0'`` for 1.0 s, ``'0.5'`` for 0.5 s, ``'0.25'`` for 0.25 s (diagnostics key suffix)."""
    s = f'{horizon_s:g}'
    return s if '.' in s or 'e' in s else f'{s}.0'


def overlap(a: GridSpec, b: GridSpec) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Slices of ``a`` and of ``b`` over their common cells (same lattice), or None when disjoint.

    Raises ConfigError when the grids do not share a lattice.
    """
    dx, dy = a.lattice_offset(b)       # b's cell (0, 0) in a
    x0, x1 = max(0, dx), min(a.width, dx + b.width)
    y0, y1 = max(0, dy), min(a.height, dy + b.height)
    if x0 >= x1 or y0 >= y1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - dy, y1 - dy), slice(x0 - dx, x1 - dx))


#: Percent cells at or above this are occupied at the 0.5 threshold: float32(c) / 100 >= 0.5 exactly when c >= 50.
_OCCUPIED_PERCENT = 50


def _iou_brier_percent(predicted: NDArray[np.int8], occupied: NDArray[np.bool_]) -> tuple[float, float]:
    """:func:`.prediction.iou` and :func:`.prediction.brier` (threshold 0.5) of predicted percent cells (K,) int8
    against the observed cells' occupancy (K,) bool (percent >= 50), over observed cells; the Brier score
    summed in float64 (:func:`.prediction.brier` takes a float32 mean: equal to about 1e-7)."""
    return _Observed.of(occupied).scores(predicted)


class _Observed:
    """The observed cells of one mirrored grid, for scoring predicted percent cells on the same cells.

    A predicted grid is 0 outside its boxes' windows, and a cell predicted 0 scores (0 - o)^2 = o:
    the scores need the observed count and the cells the prediction is not 0 at only.
    """

    __slots__ = ('known', 'occupied', 'n_known', 'n_occupied')

    def __init__(self, known: NDArray[np.bool_], occupied: NDArray[np.bool_]) -> None:
        self.known = known.ravel()              # (H * W,) observed (0..100)
        self.occupied = occupied.ravel()        # (H * W,) observed and >= 50
        self.n_known = int(np.count_nonzero(self.known))
        self.n_occupied = int(np.count_nonzero(self.occupied))

    @classmethod
    def of_cells(cls, cells: NDArray[np.int8]) -> _Observed:
        """Of OccupancyGrid cells (H, W) int8: observed 0..100 (-1 and other negatives are >= 128 as uint8)."""
        u = cells.view(np.uint8)
        known = u <= 100
        return cls(known, known & (u >= _OCCUPIED_PERCENT))

    @classmethod
    def of(cls, occupied: NDArray[np.bool_]) -> _Observed:
        """Of the occupancy (K,) of cells that are all observed."""
        return cls(np.ones(occupied.shape, bool), np.asarray(occupied, dtype=bool))

    def scores(self, predicted: NDArray[np.int8]) -> tuple[float, float]:
        """(IoU, Brier) of predicted percent cells (the observed cells' shape) over the observed cells."""
        flat = predicted.ravel()
        nz = np.flatnonzero(flat != 0)          # on bool: several times faster than on int8
        nz = nz[self.known[nz]]                 # observed cells the prediction is not 0 at
        p, o = flat[nz], self.occupied[nz]
        a = p >= _OCCUPIED_PERCENT
        both = int(np.count_nonzero(a & o))
        union = int(np.count_nonzero(a)) + self.n_occupied - both
        iou = float(both) / union if union else float('nan')
        if not self.n_known:
            return iou, float('nan')
        # Σ (p/100 - o)^2: the cells at 0 add their outcome o, the others their square
        err = p / 100.0 - o
        err *= err                              # not np.dot: BLAS may wake its threads for it
        total = float(self.n_occupied - np.count_nonzero(o)) + float(err.sum())
        return iou, total / self.n_known


@dataclass(frozen=True)
class _Pending:
    """A predicted grid waiting for the mirrored grid at its target stamp."""

    horizon_s: float
    spec: GridSpec
    percent: NDArray[np.int8]


class SelfCheck:
    """Predicted grids waiting for their target time, and the scores of those that met it."""

    def __init__(self, horizons_s: Sequence[float], window: int = SELF_CHECK_WINDOW) -> None:
        self._window = window
        self._pending: dict[int, list[_Pending]] = {}
        self._scores: dict[float, dict[str, deque[float]]] = {h: self._new_scores() for h in horizons_s}
        #: predictions that met no mirrored grid within half a period, or one on another lattice or area
        self.missed = 0

    def _new_scores(self) -> dict[str, deque[float]]:
        return {'iou': deque(maxlen=self._window), 'brier': deque(maxlen=self._window)}

    def expect(self, horizon_s: float, target_ns: int, spec: GridSpec, percent: NDArray[np.int8]) -> None:
        """Keep a predicted grid (percent cells on ``spec``) until the mirror reaches ``target_ns``."""
        self._pending.setdefault(target_ns, []).append(_Pending(horizon_s, spec, percent))

    def forget_pending(self) -> None:
        """Drop every waiting prediction (a replay restarted); the scores stay."""
        self._pending.clear()

    def observe(self, spec: GridSpec, cells: NDArray[np.int8], stamp_ns: int, period_ns: int) -> None:
        """Score the predictions whose target is at most half a period before ``stamp_ns`` against this grid."""
        if not self._pending:
            return
        half = period_ns // 2
        for target in sorted(self._pending):
            if target > stamp_ns:
                break
            entries = self._pending.pop(target)
            if stamp_ns - target > half:
                self.missed += len(entries)
                continue
            observed: dict[tuple, _Observed] = {}
            for e in entries:
                try:
                    ov = overlap(spec, e.spec) if e.spec != spec else ((slice(None),) * 2, (slice(None),) * 2)
                except ConfigError:
                    ov = None
                if ov is None:
                    self.missed += 1
                    continue
                key = tuple((sl.start, sl.stop) for sl in ov[0])
                obs = cells[ov[0]]
                if key not in observed:
                    observed[key] = _Observed.of_cells(obs)
                percent = e.percent[ov[1]]
                if percent.shape != obs.shape:
                    raise MessageFormatError(f'predicted grid shape {percent.shape} does not match observed '
                                             f'{obs.shape}')
                scores = self._scores.setdefault(e.horizon_s, self._new_scores())
                iou, brier = observed[key].scores(percent)
                scores['iou'].append(iou)
                scores['brier'].append(brier)

    def values(self) -> dict[str, float | int]:
        """``self_check.iou_<h>s`` / ``self_check.brier_<h>s`` (mean of recent finite scores, NaN if none),
        ``self_check.count_<h>s`` and ``self_check.missed``."""
        out: dict[str, float | int] = {}
        for h, scores in sorted(self._scores.items()):
            key = horizon_key(h)
            for name in ('iou', 'brier'):
                finite = [s for s in scores[name] if math.isfinite(s)]
                out[f'self_check.{name}_{key}s'] = float(np.mean(finite)) if finite else math.nan
            out[f'self_check.count_{key}s'] = len(scores['brier'])
        out['self_check.missed'] = self.missed
        return out
