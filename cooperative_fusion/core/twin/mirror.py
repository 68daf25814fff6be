"""The twin's mirror of the common grid: stamp checks, replay restarts, arrival statistics, checksum.

A grid is checked before it changes anything (:meth:`GridMirror.admit`): one stamped
ahead of the receiver clock beyond the tolerance, before the latest grid, or over
:data:`RESTART_NS` before it (stale: one such grid does not reset the twin;
``restart_grids`` of them in a row, each newer than the one before, are a replay
restart) is refused with a :class:`~..drops.DroppedInput`. The mirror keeps the
received grid exactly (spec + int8 cells); :func:`grid_checksum` identifies it.
"""
from __future__ import annotations

import hashlib
import statistics
from collections import deque

import numpy as np
from numpy.typing import NDArray

from ..drops import Cause, DroppedInput
from ..grid import GridSpec

_NS_PER_S = 1_000_000_000
#: A grid stamp this far before the latest grid's is stale, or (``restart_grids`` in a row) a replay restart.
RESTART_NS = 5 * _NS_PER_S
#: Grid inter-arrival intervals kept for the median period (gap detection).
PERIOD_WINDOW = 50


def grid_checksum(spec: GridSpec, cells: NDArray[np.int8]) -> str:
    """sha256 hex digest of a grid's geometry and its int8 cells (height, width), row-major."""
    h = hashlib.sha256()
    geometry = (float(spec.origin_x), float(spec.origin_y), float(spec.resolution), int(spec.width), int(spec.height))
    h.update(repr(geometry + ((float(spec.yaw),) if spec.is_rotated else ())).encode())
    h.update(np.ascontiguousarray(cells, dtype=np.int8).tobytes())
    return h.hexdigest()


class GridMirror:
    """The latest admitted common grid, and how grids arrive (receiver clock, ns)."""

    def __init__(self, future_tolerance_ns: int, restart_grids: int, gap_factor: float) -> None:
        self.future_tolerance_ns = future_tolerance_ns
        self.restart_grids = restart_grids
        self.gap_factor = gap_factor
        self.spec: GridSpec | None = None
        self.cells: NDArray[np.int8] | None = None
        self.stamp_ns: int | None = None
        self.received = 0
        self.gaps = 0
        self.max_gap_s = 0.0
        self.intervals_ns: deque[int] = deque(maxlen=PERIOD_WINDOW)
        self._last_arrival_ns: int | None = None
        self._restart_run: list[int] = []      # stamps of consecutive stale grids (a replay restart if enough)

    def admit(self, stamp_ns: int, now_ns: int, last_cycle_ns: int | None) -> int | None:
        """Check a grid's stamp against the node clock, the latest grid and the last cycle's stamp.

        Returns None, or how far (ns) the stamp went back when this grid confirms a replay restart
        (the caller restarts; the mirror is cleared). Raises DroppedInput (cause ``future``, ``too_old`` or
        ``out_of_order``).
        """
        if stamp_ns - now_ns > self.future_tolerance_ns:
            raise DroppedInput(Cause.FUTURE, f'grid at {stamp_ns} ns is {(stamp_ns - now_ns) / 1e9:.3g} s ahead '
                                             f'of the node clock (tolerance {self.future_tolerance_ns / 1e9:g} s)')
        latest, back = self.stamp_ns, None
        if latest is not None:
            if stamp_ns < latest - RESTART_NS:
                if not self._restart_confirmed(stamp_ns):
                    raise DroppedInput(Cause.TOO_OLD, f'grid at {stamp_ns} ns is {(latest - stamp_ns) / 1e9:.1f} s '
                                                      f'before the latest; {self.restart_grids} such grids in a row '
                                                      f'restart the twin')
                back = latest - stamp_ns
                self.clear()
            elif stamp_ns < latest or (last_cycle_ns is not None and stamp_ns <= last_cycle_ns):
                raise DroppedInput(Cause.OUT_OF_ORDER, f'grid at {stamp_ns} ns is older than the latest at '
                                                       f'{latest} ns or not newer than the last cycle')
        self._restart_run.clear()
        return back

    def _restart_confirmed(self, stamp_ns: int) -> bool:
        """Note a stale grid; True when it is the ``restart_grids``-th in a row, each newer than the one before."""
        run = self._restart_run
        if run and not (run[-1] < stamp_ns <= run[-1] + RESTART_NS):
            run.clear()
        run.append(stamp_ns)
        return len(run) >= self.restart_grids

    def clear(self) -> None:
        """Forget the mirrored grid (a replay restarted); arrival statistics stay."""
        self.spec = self.cells = self.stamp_ns = None
        self._restart_run.clear()

    def store(self, spec: GridSpec, cells: NDArray[np.int8], stamp_ns: int, now_ns: int) -> None:
        """Mirror an admitted grid (the mirror owns ``cells``) that arrived at ``now_ns``."""
        self.spec, self.cells, self.stamp_ns = spec, cells, stamp_ns
        self.received += 1
        self.note_arrival(now_ns)

    def note_arrival(self, now_ns: int) -> None:
        """Inter-arrival bookkeeping; an interval above gap_factor x the median period is a gap."""
        if self._last_arrival_ns is not None:
            dt = now_ns - self._last_arrival_ns
            med = self.median_period_ns()
            if med is not None and len(self.intervals_ns) >= 3 and dt > self.gap_factor * med:
                self.gaps += 1
                self.max_gap_s = max(self.max_gap_s, dt / _NS_PER_S)
            if dt > 0:
                self.intervals_ns.append(dt)
        self._last_arrival_ns = now_ns

    def median_period_ns(self) -> int | None:
        """Median grid inter-arrival over recent grids, None with fewer than two grids."""
        return int(statistics.median(self.intervals_ns)) if self.intervals_ns else None

    def checksum(self) -> str | None:
        """:func:`grid_checksum` of the mirrored grid, None before the first one."""
        if self.spec is None or self.cells is None:
            return None
        return grid_checksum(self.spec, self.cells)
