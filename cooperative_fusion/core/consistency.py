"""Cross-vehicle consistency: down-weight evidence that contradicts the others, score each source.

A faulty or rogue vehicle may report a ghost obstacle (occupied where the
others see free road) or hide one (free where the others see an object). With
each vehicle's latest evidence kept, an incoming evidence grid of vehicle ``v``
(log-odds + known mask on the global lattice, as fused) is compared per cell
with the evidence of the OTHER vehicles whose stamps lie within ``max_age_ns``
of its own (evidence of about the same time, so a moving object is where the
others saw it), skipping vehicles that are themselves flagged:

* ``others_free``: other vehicles saying confidently free (``l <= -c``) with no
  confident occupied cell of their own within ``motion_margin_m`` (one cell by
  default: a slightly misregistered or moved face is not "free by others");
* ``others_occ``: other vehicles saying confidently occupied (``l >= c``).

A cell is a conflict when ``v`` says occupied and ``others_free >=
min_witnesses``, or ``v`` says free (with no occupied cell of ``v`` within the
margin) and ``others_occ >= min_witnesses``. ``v``'s log-odds there are scaled
by ``conflict_weight`` before fusion. Scaling the log-odds before
:meth:`CommonGrid.integrate` is the same as a per-cell weight inside it: the
weight is a product (``e = w · l``), the confident tests of fresh-free-wins and
of the occupied stamp then see the scaled value (a down-weighted ghost neither
marks a cell occupied nor resets it), and only the optional pose blur mixes
neighbouring cells (a normalised convolution, so a scaled block stays scaled
inside and is softened at its rim).

Score. The compared cells are those where ``v`` and at least
``min_witnesses`` others have confident evidence *and* an obstacle is claimed
(``v`` occupied, or ``min_witnesses`` others occupied). Free-free agreement is
left out on purpose: on an open road it is most of the grid and would keep
every score near 1 however large the ghost. The per-message sample is ``1 -
conflicts / compared`` (only when at least ``min_cells`` are compared); the
score is its exponential average (``score_smoothing`` = weight of the new
sample, starting at 1), and the vehicle is flagged while the score is below
``flag_below``. The sample depends on the scene: a ghost among many honest
obstacles dilutes it, but its cells are down-weighted all the same.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .errors import ConfigError
from .grid import GridSpec


@dataclass(frozen=True)
class ConsistencyConfig:
    """confident_logodds : |evidence log-odds| from which a cell counts as confident free / occupied
    min_witnesses : other vehicles that must agree against ``v`` for a conflict
    max_age_ns : others' evidence further than this from ``v``'s stamp is not compared, ns
    conflict_weight : factor on ``v``'s log-odds in conflicting cells, in [0, 1]
    score_smoothing : weight of a new sample in the score's exponential average, in (0, 1]
    flag_below : a vehicle whose score is below this is flagged
    motion_margin_m : an occupied cell this close (square, metres) keeps a cell out of "free"
    min_cells : compared cells needed for a score sample
    """

    confident_logodds: float = 0.4
    min_witnesses: int = 2
    max_age_ns: int = 200_000_000
    conflict_weight: float = 0.1
    score_smoothing: float = 0.3
    flag_below: float = 0.8
    motion_margin_m: float = 0.2
    min_cells: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.confident_logodds) and self.confident_logodds > 0):
            raise ConfigError(f'confident_logodds must be a positive finite number, got {self.confident_logodds!r}')
        if self.min_witnesses < 1:
            raise ConfigError(f'min_witnesses must be >= 1, got {self.min_witnesses}')
        if self.max_age_ns < 0:
            raise ConfigError(f'max_age_ns must be >= 0, got {self.max_age_ns}')
        if not (0.0 <= self.conflict_weight <= 1.0):
            raise ConfigError(f'conflict_weight must be in [0, 1], got {self.conflict_weight!r}')
        if not (0.0 < self.score_smoothing <= 1.0):
            raise ConfigError(f'score_smoothing must be in (0, 1], got {self.score_smoothing!r}')
        if not (0.0 <= self.flag_below <= 1.0):
            raise ConfigError(f'flag_below must be in [0, 1], got {self.flag_below!r}')
        if not (math.isfinite(self.motion_margin_m) and self.motion_margin_m >= 0):
            raise ConfigError(f'motion_margin_m must be a finite number >= 0, got {self.motion_margin_m!r}')
        if self.min_cells < 1:
            raise ConfigError(f'min_cells must be >= 1, got {self.min_cells}')


@dataclass(frozen=True)
class ConsistencyResult:
    """Outcome of :meth:`ConsistencyChecker.check` for one evidence grid.

    logodds : (height, width) float32, the evidence with conflicting cells scaled by conflict_weight
    conflict : (height, width) bool, the conflicting cells
    conflict_cells, compared_cells : counts (see the module docstring)
    witnesses : other vehicles compared against
    sample : this message's score sample, None when fewer than min_cells were compared
    score : the vehicle's smoothed score after this message; flagged : score < flag_below
    """

    logodds: NDArray[np.float32]
    conflict: NDArray[np.bool_]
    conflict_cells: int
    compared_cells: int
    witnesses: int
    sample: float | None
    score: float
    flagged: bool


@dataclass(frozen=True)
class VehicleConsistency:
    """One vehicle's standing: score (1 = consistent), flagged, samples taken, conflict cells of the
    latest checked message and in total, and when (evidence stamp, ns) it was first flagged (None if never)."""

    score: float
    flagged: bool
    samples: int
    last_conflict_cells: int
    total_conflict_cells: int
    first_flagged_stamp_ns: int | None


@dataclass
class _Stored:
    spec: GridSpec
    stamp_ns: int
    free: NDArray[np.bool_]       # confident free, no own occupied cell within the margin
    occ: NDArray[np.bool_]        # confident occupied
    confident: NDArray[np.bool_]  # confident free or occupied


class _Book:
    __slots__ = ('score', 'flagged', 'samples', 'last_conflicts', 'total_conflicts', 'first_flagged_ns')

    def __init__(self) -> None:
        self.score = 1.0
        self.flagged = False
        self.samples = 0
        self.last_conflicts = 0
        self.total_conflicts = 0
        self.first_flagged_ns: int | None = None


class ConsistencyChecker:
    """Per-vehicle latest evidence and consistency scores (see the module docstring)."""

    def __init__(self, config: ConsistencyConfig) -> None:
        self.config = config
        self._latest: dict[str, _Stored] = {}
        self._books: dict[str, _Book] = {}

    def _classify(self, spec: GridSpec, logodds: NDArray[np.floating], known: NDArray[np.bool_]
                  ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
        c = self.config.confident_logodds
        lin = np.where(known, np.nan_to_num(np.asarray(logodds, dtype=np.float32)), 0.0)
        occ = lin >= c
        free = lin <= -c
        confident = occ | free
        m = int(math.ceil(self.config.motion_margin_m / spec.resolution - 1e-9))
        if m > 0 and occ.any():
            near = ndimage.maximum_filter(occ, size=2 * m + 1, mode='constant', cval=False)
            free = free & ~near
        return free, occ, confident

    def check(self, vehicle_id: str, spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_],
              stamp_ns: int) -> ConsistencyResult:
        """Compare ``vehicle_id``'s evidence with the others', update its score, keep it as its latest.

        spec : evidence geometry; logodds : (height, width) float32; known : (height, width) bool;
        stamp_ns : evidence stamp, common time. Raises ConfigError for arrays that do not match the spec.
        """
        cfg = self.config
        logodds = np.asarray(logodds, dtype=np.float32)
        known = np.asarray(known, dtype=bool)
        if logodds.shape != spec.shape or known.shape != spec.shape:
            raise ConfigError(f'evidence shapes {logodds.shape} / {known.shape} do not match the spec '
                              f'(height, width) = {spec.shape}')
        stamp_ns = int(stamp_ns)
        book = self._books.setdefault(vehicle_id, _Book())
        free, occ, confident = self._classify(spec, logodds, known)
        n_free = np.zeros(spec.shape, dtype=np.int16)
        n_occ = np.zeros(spec.shape, dtype=np.int16)
        n_conf = np.zeros(spec.shape, dtype=np.int16)
        witnesses = 0
        for oid, other in self._latest.items():
            if oid == vehicle_id or abs(other.stamp_ns - stamp_ns) > cfg.max_age_ns:
                continue
            ob = self._books.get(oid)
            if ob is not None and ob.flagged:
                continue
            try:
                dx, dy = spec.lattice_offset(other.spec)
            except ConfigError:
                continue                       # another resolution or lattice: not comparable cell by cell
            x0, x1 = max(dx, 0), min(dx + other.spec.width, spec.width)
            y0, y1 = max(dy, 0), min(dy + other.spec.height, spec.height)
            if x0 >= x1 or y0 >= y1:
                continue
            mine = (slice(y0, y1), slice(x0, x1))
            theirs = (slice(y0 - dy, y1 - dy), slice(x0 - dx, x1 - dx))
            n_free[mine] += other.free[theirs]
            n_occ[mine] += other.occ[theirs]
            n_conf[mine] += other.confident[theirs]
            witnesses += 1
        k = cfg.min_witnesses
        conflict = (occ & (n_free >= k)) | (free & (n_occ >= k))
        compared = confident & ((occ & (n_conf >= k)) | (n_occ >= k))
        n_conflict = int(np.count_nonzero(conflict))
        n_compared = int(np.count_nonzero(compared))
        sample = None
        if n_compared >= cfg.min_cells:
            sample = 1.0 - n_conflict / n_compared
            book.score += cfg.score_smoothing * (sample - book.score)
            book.samples += 1
        book.flagged = book.score < cfg.flag_below
        if book.flagged and book.first_flagged_ns is None:
            book.first_flagged_ns = stamp_ns
        book.last_conflicts = n_conflict
        book.total_conflicts += n_conflict
        previous = self._latest.get(vehicle_id)
        if previous is None or stamp_ns >= previous.stamp_ns:
            self._latest[vehicle_id] = _Stored(spec, stamp_ns, free, occ, confident)
        out = logodds
        if n_conflict:
            out = np.where(conflict, logodds * np.float32(cfg.conflict_weight), logodds).astype(np.float32)
        return ConsistencyResult(out, conflict, n_conflict, n_compared, witnesses, sample, book.score, book.flagged)

    def status(self, vehicle_id: str) -> VehicleConsistency:
        """The standing of ``vehicle_id`` (score 1, not flagged, before any evidence)."""
        b = self._books.get(vehicle_id) or _Book()
        return VehicleConsistency(b.score, b.flagged, b.samples, b.last_conflicts, b.total_conflicts,
                                  b.first_flagged_ns)
