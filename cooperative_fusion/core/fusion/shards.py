"""Fusion shards: K fusion processes each fuse a disjoint part of the platoon; a combiner sums their evidence.

A shard (:class:`FusionShard`) runs the ordinary :class:`CooperativeFusion` on
its vehicles' evidence, but into an evidence accumulator (:class:`ShardGrid`:
no clamp, no fresh-free reset) that it empties at every output: the output
(:class:`ShardDelta`) is the weighted evidence fused since the previous one,
decayed to the delta's stamp, on the touched sub-window of the common lattice.
The combiner (:class:`ShardCombiner`) integrates each delta into its own
:class:`CommonGrid` as one evidence message of weight 1: it decays, clamps,
resets and publishes, as the single fusion does.

Exactness (docs/limits.md, "Edge shards"): decay is linear, so
``L(t) = sum_i e_i 0.5 ** ((t - s_i) / half_life)`` over every message ``i``
(weighted evidence ``e_i`` at stamp ``s_i``) whatever the order or grouping;
the combined grid equals the single-process grid up to float32 rounding while
neither the clamp nor the fresh-free reset acts (both are applied per message
in one process, per delta here). The consistency check and co-registration of
a shard see its own vehicles only. The dynamic layer works per vehicle: a
shard runs it on its vehicles and its delta carries their live moving objects,
which the combiner draws (with the duplicate check across all of them).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..grid import GridSpec
from .common_grid import NEVER_NS, CommonGrid, FusionConfig
from .config import FusionNodeConfig
from .cooperative import AddResult, CooperativeFusion, GridOutput, InputDrop
from .dynamic import DynamicLayer, MovingObject
from ..morphology import nonzero_box

#: An accumulator bound no evidence sum reaches (float32 max): the shard neither clamps nor resets.
UNBOUNDED_LOGODDS = float(np.finfo(np.float32).max)
#: A delta is evidence already decayed to its stamp: it never gets too old to add.
NO_AGE_LIMIT_NS = 1 << 62
#: Drop causes of the combiner besides the grid's (diagnostics keys).
UNKNOWN_SHARD = 'unknown_shard'


def shard_vehicles(vehicles: Sequence[str], index: int, count: int) -> tuple[str, ...]:
    """Shard ``index`` of ``count`` over the platoon list: contiguous blocks (neighbours see the same road,
    so a shard's touched window stays small), sizes differing by at most one. ConfigError when
    ``count`` is not in [1, len(vehicles)] or ``index`` not in [0, count)."""
    n = len(vehicles)
    if not 1 <= count <= n:
        raise ConfigError(f'shard.count {count} must be in [1, {n}] (the number of vehicles {list(vehicles)})')
    if not 0 <= index < count:
        raise ConfigError(f'shard.index {index} must be in [0, {count}) for shard.count {count}')
    lo, hi = index * n // count, (index + 1) * n // count
    return tuple(vehicles[lo:hi])


def shard_name(index: int) -> str:
    """The combiner's book name of shard ``index`` (diagnostics: ``shard<k>``)."""
    return f'shard{index}'


def accumulator_config(config: FusionConfig) -> FusionConfig:
    """``config`` for a shard's accumulator: unbounded clamp and a reset level nothing exceeds, so the shard's
    grid is the plain weighted, decayed sum of its evidence (the combiner clamps and resets)."""
    return replace(config, clamp_min=-UNBOUNDED_LOGODDS, clamp_max=UNBOUNDED_LOGODDS,
                   free_reset_logodds=UNBOUNDED_LOGODDS)


@dataclass(frozen=True)
class ShardDelta:
    """One shard output: the evidence it fused since its previous output, decayed to ``stamp_ns``.

    shard : index; seq : output count of this shard, from 0 (a gap = deltas lost on the way)
    stamp_ns : common time the log-odds are valid at, ns
    spec : the touched sub-window on the common lattice; None when nothing was touched (a heartbeat)
    logodds : (height, width) float32 summed weighted evidence, 0 where untouched
    known : (height, width) bool, cells that received known evidence
    evidence_stamps_ns : (N,) int64 sensor stamps of the evidence messages fused into it
    objects : the shard's live moving objects at ``stamp_ns`` (all of them, not a change: the newest delta's
        set replaces the previous one)
    """

    shard: int
    seq: int
    stamp_ns: int
    spec: GridSpec | None
    logodds: NDArray[np.float32]
    known: NDArray[np.bool_]
    evidence_stamps_ns: NDArray[np.int64]
    objects: tuple[MovingObject, ...] = ()


class ShardGrid(CommonGrid):
    """A shard's evidence accumulator: a CommonGrid with :func:`accumulator_config`, emptied by :meth:`take`."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__(accumulator_config(config))

    def take(self, now_ns: int) -> tuple[GridSpec | None, NDArray[np.float32], NDArray[np.bool_],
                                         NDArray[np.int64]]:
        """Decay to ``now_ns``, return (sub-window spec or None, log-odds, known, evidence stamps) of what was
        fused since the previous call, and empty the accumulator."""
        self.advance(now_ns)
        stamps = np.array(self._pending_stamps, dtype=np.int64)
        self._pending_stamps = []
        box = nonzero_box(self._observed)
        if box is None:
            return None, np.zeros((0, 0), np.float32), np.zeros((0, 0), bool), stamps
        spec = self.spec
        sub = GridSpec(spec.origin_x + box[1].start * spec.resolution, spec.origin_y + box[0].start * spec.resolution,
                       spec.resolution, box[1].stop - box[1].start, box[0].stop - box[0].start)
        logodds, known = self._l[box].copy(), self._observed[box].copy()
        self._l[box] = 0.0          # untouched cells hold 0 already
        self._observed[box] = False
        self._occ.fill(NEVER_NS)
        return sub, logodds, known, stamps


class FusionShard:
    """One shard's fusion: :attr:`fusion` (a CooperativeFusion over the whole platoon's odometry, fed the
    evidence of :attr:`vehicles` only) and its delta output (:meth:`take`)."""

    def __init__(self, config: FusionNodeConfig, index: int, count: int) -> None:
        self.index = index
        self.vehicles = shard_vehicles(config.vehicles, index, count)
        self.grid = ShardGrid(config.fusion)
        self.fusion = CooperativeFusion(config, grid=self.grid)
        self.seq = 0
        self._last_take_ns: int | None = None

    def add(self, vehicle_id: str, spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_],
            stamp_ns: int, now_ns: int) -> AddResult:
        """:meth:`CooperativeFusion.add`; ``publish``: take a delta now (publish_on_evidence, at least
        publish_min_interval_s after the previous one)."""
        result = self.fusion.add(vehicle_id, spec, logodds, known, stamp_ns, now_ns)
        gap = self.fusion.config.publish_min_interval_ns
        return replace(result, publish=result.accepted and gap is not None and (
            self._last_take_ns is None or now_ns - self._last_take_ns >= gap))

    def take(self, now_ns: int) -> ShardDelta:
        """The delta of everything fused since the previous call, stamped ``now_ns`` (window placed first)."""
        self.fusion.place_window()
        spec, logodds, known, stamps = self.grid.take(now_ns)
        objects = tuple(self.fusion.dynamic.objects(now_ns)) if self.fusion.dynamic is not None else ()
        delta = ShardDelta(self.index, self.seq, int(now_ns), spec, logodds, known, stamps, objects)
        self.seq += 1
        self._last_take_ns = int(now_ns)
        return delta


class RelayedObjects(DynamicLayer):
    """The combiner's dynamic layer: no evidence of its own, every shard's latest moving objects, drawn by
    :meth:`DynamicLayer.draw` (newest first, duplicates across shards left out)."""

    def relay(self, shard: int, objects: Sequence[MovingObject]) -> None:
        """Shard ``shard``'s live objects now: they replace its previous ones."""
        self._objects[shard_name(shard)] = list(objects)


@dataclass
class ShardBook:
    """What the combiner knows of one shard: deltas received / applied, lost (sequence gaps), reordered,
    restarts (the sequence started again), drops by cause, the newest seq, when the last delta arrived
    (combiner's now, ns)."""

    received: int = 0
    applied: int = 0
    lost: int = 0
    reordered: int = 0
    restarts: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    last_seq: int | None = None
    last_arrival_ns: int | None = None
    last_stamp_ns: int | None = None
    seen: deque[int] = field(default_factory=lambda: deque(maxlen=64))


class ShardCombiner:
    """The shards' deltas -> the common grid: a CommonGrid with one weight-1 source per shard, a
    CooperativeFusion (no evidence of its own, so no consistency check or co-registration) for the window,
    the members' bodies and publishing, and the shards' moving objects (:class:`RelayedObjects`)."""

    def __init__(self, config: FusionNodeConfig, count: int) -> None:
        if count < 1:
            raise ConfigError(f'shard count {count} must be >= 1')
        self.count = count
        grid = CommonGrid(replace(config.fusion, vehicle_weights={shard_name(k): 1.0 for k in range(count)}))
        self.fusion = CooperativeFusion(replace(config, dynamic=None, consistency=None, coreg_enabled=False),
                                        grid=grid)
        self.books = [ShardBook() for _ in range(count)]
        self.objects = RelayedObjects(config.dynamic) if config.dynamic is not None else None
        self._pending: list[NDArray[np.int64]] = []
        self._last_publish_ns: int | None = None

    @property
    def grid(self) -> CommonGrid:
        """The combined grid."""
        return self.fusion.grid

    def add(self, delta: ShardDelta, now_ns: int) -> AddResult:
        """Integrate one delta at common time ``now_ns``; ``publish`` as the fusion's publish_on_evidence."""
        if not 0 <= delta.shard < self.count:
            return AddResult(False, UNKNOWN_SHARD, f'shard {delta.shard} is not in [0, {self.count})')
        book = self.books[delta.shard]
        book.received += 1
        book.last_arrival_ns = now_ns
        if book.last_seq is not None and delta.seq < book.last_seq - book.seen.maxlen:
            book.restarts += 1        # far behind anything reordering explains: the shard started again
            book.last_seq = None
            book.seen.clear()
        if delta.seq in book.seen:
            return self._drop(book, InputDrop.DUPLICATE.value, f'shard {delta.shard} delta {delta.seq} came twice')
        if book.last_seq is None or delta.seq > book.last_seq:
            if book.last_seq is not None:
                book.lost += delta.seq - book.last_seq - 1
            book.last_seq = delta.seq
            if self.objects is not None:
                self.objects.relay(delta.shard, delta.objects)
        else:
            book.reordered += 1       # counted lost when the gap was seen: it came after all
            book.lost = max(book.lost - 1, 0)
        book.seen.append(delta.seq)
        if delta.spec is not None:
            result = self.grid.integrate(shard_name(delta.shard), delta.spec, delta.logodds, delta.known,
                                         delta.stamp_ns, now_ns, None, max_age_ns=NO_AGE_LIMIT_NS)
            if not result.accepted:
                cause = result.cause.value if result.cause is not None else 'rejected'
                return self._drop(book, cause, result.reason)
        book.applied += 1
        book.last_stamp_ns = delta.stamp_ns if book.last_stamp_ns is None else max(book.last_stamp_ns,
                                                                                    delta.stamp_ns)
        self._pending.append(delta.evidence_stamps_ns)
        gap = self.fusion.config.publish_min_interval_ns
        fresh = delta.evidence_stamps_ns.size > 0
        return AddResult(True, publish=fresh and gap is not None and (
            self._last_publish_ns is None or now_ns - self._last_publish_ns >= gap))

    @staticmethod
    def _drop(book: ShardBook, cause: str, detail: str) -> AddResult:
        book.drops[cause] = book.drops.get(cause, 0) + 1
        return AddResult(False, cause, detail)

    def publish(self, now_ns: int) -> GridOutput:
        """The common grid at ``now_ns`` (window, decay, members' bodies, the shards' moving objects where they
        are at ``now_ns``); latencies_ms: publish - sensor stamp of the evidence the shards fused into the
        deltas applied since the previous grid."""
        out = self.fusion.publish(now_ns)
        cells = self.objects.draw(out.spec, out.cells, now_ns) if self.objects is not None else out.cells
        stamps = np.concatenate(self._pending) if self._pending else np.zeros(0, np.int64)
        self._pending = []
        self._last_publish_ns = now_ns
        return replace(out, cells=cells, latencies_ms=(now_ns - stamps).astype(np.float64) / 1e6)
