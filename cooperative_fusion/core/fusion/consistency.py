"""Cross-vehicle consistency: down-weight evidence that contradicts the others, score each source.

A faulty or rogue vehicle may report a ghost obstacle (occupied where the
others see free road) or hide one (free where the others see an object). With
each vehicle's latest evidence kept, an incoming evidence grid of vehicle ``v``
(log-odds + known mask on the global lattice, as fused) is compared per cell
with the evidence of the OTHER vehicles whose stamps lie within ``max_age_ns``
of its own, skipping vehicles that are themselves flagged.

Like with like in time. Two grids stamped ``dt`` apart disagree honestly
wherever something moved in between: at 25 m/s and dt = 0.1 s a car is 2.5 m
further along, so the free road a witness saw ahead of it is where ``v`` now
sees it (and the road ``v`` sees free behind it is where the witness saw it).
Cells swept by a moving object between the two stamps are evidence of nothing.
For each pair (``v``, witness ``w``) a vehicle's free cells do not count as free
within ``motion_margin_m`` (square: misregistration, a face one cell off) plus
``max_speed_mps · |dt|`` along the road (heading ``road_heading_rad``) of that
same vehicle's own confident occupied cells: an object that moved by at most
that much between the stamps was there, and a free cell next to one's own
sighting of it says nothing about the other's. Taking the speed bound for every
occupied cell (parked cars too) is the conservative choice: it costs only ghosts
placed within that distance of a real obstacle along the road (6.2 m at 30 m/s,
0.2 s; 3.2 m for the usual 0.1 s), and a ghost or a hidden car on open road is
still a conflict. Per pair:

* ``w`` says free against ``v``'s occupied cell: ``w`` free, ``w`` has no
  occupied cell within the swept distance (it did not see an object there that
  may have moved to where ``v`` sees it now);
* ``w`` says occupied against ``v``'s free cell: ``v`` has no occupied cell of
  its own within the swept distance (the object ``w`` saw has not just moved out
  from under ``v``'s view).

A cell is a conflict when at least ``min_witnesses`` witnesses say against
``v`` the same way. ``v``'s log-odds there are scaled
by ``conflict_weight`` before fusion. Scaling the log-odds before
:meth:`CommonGrid.integrate` is the same as a per-cell weight inside it: the
weight is a product (``e = w · l``), the confident tests of fresh-free-wins and
of the occupied stamp then see the scaled value (a down-weighted ghost neither
marks a cell occupied nor resets it), and only the optional pose blur mixes
neighbouring cells (a normalised convolution, so a scaled block stays scaled
inside and is softened at its rim).

Score. The compared cells are those where ``v`` and at least
``min_witnesses`` others have confident evidence (free within the swept distance
of one's own occupied cells is not confident) *and* an obstacle is claimed
(``v`` occupied, or ``min_witnesses`` others occupied). Free-free agreement is
left out on purpose: on an open road it is most of the grid and would keep
every score near 1 however large the ghost. Conflict components (8-connected)
smaller than ``score_min_area_m2`` are left out of the score (of both counts),
though their cells are down-weighted all the same: an honest radar's false
alarms (highway_occlusion: 2 per scan at 20 Hz, each a ~1.3 m² blob of
evidence, 8 cells at 0.4 m) land on road the others see free, and with the few
obstacle cells a highway scene offers for comparison (often 10-20) one such
blob made a sample of 0.5 and kept honest followers flagged; a ghost vehicle
is 4-8 m² and more. The per-message sample is ``1 -
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

from ..errors import ConfigError
from ..grid import GridSpec
from ..morphology import dilate_offsets, dilate_square, line_offsets

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class ConsistencyConfig:
    """confident_logodds : |evidence log-odds| from which a cell counts as confident free / occupied
    min_witnesses : other vehicles that must agree against ``v`` for a conflict
    max_age_ns : others' evidence further than this from ``v``'s stamp is not compared, ns
    conflict_weight : factor on ``v``'s log-odds in conflicting cells, in [0, 1]
    score_smoothing : weight of a new sample in the score's exponential average, in (0, 1]
    flag_below : a vehicle whose score is below this is flagged
    motion_margin_m : an occupied cell this close (square, metres) keeps a cell out of "free"
    max_speed_mps : bound on any object's speed along the road: a vehicle's free cells within
        ``max_speed_mps · |dt|`` along the road of its own occupied cells are not compared with evidence
        ``dt`` apart (swept by what may have moved), m/s; 0 compares free road at the margin only
    score_min_area_m2 : conflict components smaller than this (square metres) are down-weighted but
        left out of the score (sensor clutter); 0 scores every conflicting cell
    min_cells : compared cells needed for a score sample
    """

    confident_logodds: float = 0.4
    min_witnesses: int = 2
    max_age_ns: int = 200_000_000
    conflict_weight: float = 0.1
    score_smoothing: float = 0.3
    flag_below: float = 0.8
    motion_margin_m: float = 0.2
    max_speed_mps: float = 30.0
    score_min_area_m2: float = 2.0
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
        if not (math.isfinite(self.max_speed_mps) and self.max_speed_mps >= 0):
            raise ConfigError(f'max_speed_mps must be a finite number >= 0, got {self.max_speed_mps!r}')
        if not (math.isfinite(self.score_min_area_m2) and self.score_min_area_m2 >= 0):
            raise ConfigError(f'score_min_area_m2 must be a finite number >= 0, got {self.score_min_area_m2!r}')
        if self.min_cells < 1:
            raise ConfigError(f'min_cells must be >= 1, got {self.min_cells}')


@dataclass(frozen=True)
class ConsistencyResult:
    """Outcome of :meth:`ConsistencyChecker.check` for one evidence grid.

    logodds : (height, width) float32, the evidence with conflicting cells scaled by conflict_weight
    conflict : (height, width) bool, the conflicting cells
    conflict_cells : every conflicting cell; compared_cells : the compared cells the sample is taken
        over, without conflict components smaller than score_min_area_m2 (see the module docstring)
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


class _Stored:
    """One vehicle's classified evidence; its free cells away from its own occupied ones, per swept length."""

    def __init__(self, spec: GridSpec, stamp_ns: int, free: NDArray[np.bool_], occ: NDArray[np.bool_],
                 near: NDArray[np.bool_]) -> None:
        self.spec = spec
        self.stamp_ns = stamp_ns
        self.free = free              # confident free
        self.occ = occ                # confident occupied
        self.near = near              # within motion_margin_m (square) of an own occupied cell
        self._clear: dict[tuple[int, float], NDArray[np.bool_]] = {}

    def clear_free(self, reach: int, heading_rad: float) -> NDArray[np.bool_]:
        """Free cells with no own occupied cell within the margin, nor ``reach`` cells along the road."""
        key = (reach, round(heading_rad, 2))
        out = self._clear.get(key)
        if out is None:
            near = self.near
            if reach > 0 and near.any():
                near = dilate_offsets(near, line_offsets(reach, heading_rad))
            out = self.free & ~near
            self._clear[key] = out
        return out


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

    def _classify(self, spec: GridSpec, logodds: NDArray[np.floating], known: NDArray[np.bool_],
                  stamp_ns: int) -> _Stored:
        c = self.config.confident_logodds
        lin = np.asarray(logodds, dtype=np.float32)
        known = np.asarray(known, dtype=bool)
        occ = known & (lin >= c)         # +inf counts as occupied, -inf as free, NaN as neither
        free = known & (lin <= -c)
        near = occ
        m = int(math.ceil(self.config.motion_margin_m / spec.resolution - 1e-9))
        if m > 0 and occ.any():
            near = dilate_square(occ, m)
        return _Stored(spec, stamp_ns, free, occ, near)

    def check(self, vehicle_id: str, spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_],
              stamp_ns: int, road_heading_rad: float = 0.0) -> ConsistencyResult:
        """Compare ``vehicle_id``'s evidence with the others', update its score, keep it as its latest.

        spec : evidence geometry; logodds : (height, width) float32; known : (height, width) bool;
        stamp_ns : evidence stamp, common time; road_heading_rad : direction of the road (traffic moves
        along it; the vehicle's heading), radians in the grid's frame.
        Raises ConfigError for arrays that do not match the spec.
        """
        cfg = self.config
        logodds = np.asarray(logodds, dtype=np.float32)
        known = np.asarray(known, dtype=bool)
        if logodds.shape != spec.shape or known.shape != spec.shape:
            raise ConfigError(f'evidence shapes {logodds.shape} / {known.shape} do not match the spec '
                              f'(height, width) = {spec.shape}')
        stamp_ns = int(stamp_ns)
        book = self._books.setdefault(vehicle_id, _Book())
        mine_st = self._classify(spec, logodds, known, stamp_ns)
        occ = mine_st.occ
        pairs = []              # (overlap in mine (y0, y1, x0, x1), their clear free and occupied there, reach)
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
            theirs = (slice(y0 - dy, y1 - dy), slice(x0 - dx, x1 - dx))
            # Swept along the road between the two stamps, in cells (the square margin comes on top).
            reach = int(math.ceil(cfg.max_speed_mps * abs(other.stamp_ns - stamp_ns) * 1e-9 / spec.resolution
                                  - 1e-9))
            pairs.append(((y0, y1, x0, x1), other.clear_free(reach, road_heading_rad)[theirs], other.occ[theirs],
                          reach))
        witnesses = len(pairs)
        k = cfg.min_witnesses
        # Nothing is compared outside the witnesses' overlaps (every count 0 there, and k >= 1): count, test
        # and label on their bounding box only.
        conflict = np.zeros(spec.shape, dtype=bool)
        n_conflict = n_scored_conflict = 0
        scored = None
        if pairs:
            by0, by1 = min(p[0][0] for p in pairs), max(p[0][1] for p in pairs)
            bx0, bx1 = min(p[0][2] for p in pairs), max(p[0][3] for p in pairs)
            box = (slice(by0, by1), slice(bx0, bx1))
            count = np.uint8 if len(self._latest) < 255 else np.int32
            shape = (by1 - by0, bx1 - bx0)
            n_free = np.zeros(shape, dtype=count)      # witnesses saying free where v is occupied
            n_occ = np.zeros(shape, dtype=count)       # witnesses saying occupied where v is free
            n_both = np.zeros(shape, dtype=count)      # witnesses occupied where v is occupied
            for (y0, y1, x0, x1), w_free, w_occ, reach in pairs:
                mine = (slice(y0, y1), slice(x0, x1))
                local = (slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0))
                v_free = mine_st.clear_free(reach, road_heading_rad)[mine]
                v_occ = occ[mine]
                n_free[local] += v_occ & w_free
                n_occ[local] += v_free & w_occ
                n_both[local] += v_occ & w_occ
            conflict_box = (n_free >= k) | (n_occ >= k)
            conflict[box] = conflict_box
            # Free and occupied are disjoint: witnesses confident where v is occupied are n_free + n_both,
            # witnesses occupied where v is confident n_occ + n_both.
            scored = (occ[box] & (n_free + n_both >= k)) | (n_occ + n_both >= k)
            n_conflict = n_scored_conflict = int(np.count_nonzero(conflict_box))
            min_cells_area = cfg.score_min_area_m2 / (spec.resolution * spec.resolution)
            if n_conflict and min_cells_area > 1.0:
                labels, n = ndimage.label(conflict_box, structure=_EIGHT)
                small = np.bincount(labels.ravel(), minlength=n + 1) < min_cells_area
                small[0] = False
                clutter = small[labels]
                scored = scored & ~clutter
                n_scored_conflict = n_conflict - int(np.count_nonzero(clutter))
        n_compared = int(np.count_nonzero(scored)) if scored is not None else 0
        sample = None
        if n_compared >= cfg.min_cells:
            sample = 1.0 - n_scored_conflict / n_compared
            book.score += cfg.score_smoothing * (sample - book.score)
            book.samples += 1
        book.flagged = book.score < cfg.flag_below
        if book.flagged and book.first_flagged_ns is None:
            book.first_flagged_ns = stamp_ns
        book.last_conflicts = n_conflict
        book.total_conflicts += n_conflict
        previous = self._latest.get(vehicle_id)
        if previous is None or stamp_ns >= previous.stamp_ns:
            self._latest[vehicle_id] = mine_st
        out = logodds
        if n_conflict:
            out = np.where(conflict, logodds * np.float32(cfg.conflict_weight), logodds).astype(np.float32)
        return ConsistencyResult(out, conflict, n_conflict, n_compared, witnesses, sample, book.score, book.flagged)

    def status(self, vehicle_id: str) -> VehicleConsistency:
        """The standing of ``vehicle_id`` (score 1, not flagged, before any evidence)."""
        b = self._books.get(vehicle_id) or _Book()
        return VehicleConsistency(b.score, b.flagged, b.samples, b.last_conflicts, b.total_conflicts,
                                  b.first_flagged_ns)
