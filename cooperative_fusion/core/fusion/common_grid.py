"""Cooperative fusion of per-cycle evidence grids into one common log-odds grid.

Each vehicle sends this cycle's evidence only (never an accumulated grid), as
log-odds ``l_in`` (float32) plus a known mask on the global lattice
(:mod:`.grid`). :class:`CommonGrid` keeps the posterior ``L`` over a window
(:class:`FusionConfig.spec`, movable with :meth:`CommonGrid.recenter`) and, per
cell, whether any evidence was ever fused there (``observed``) and the stamp of
the newest occupied evidence (``occ``).

Update of one message from vehicle ``v`` with stamp ``s`` into a grid whose
contents are valid at time ``T`` (all on the cells where the message is known):

1. Time. If ``s > T`` the grid first decays to ``s`` (``T := s``). Decay
   towards unknown is ``L *= 0.5 ** (dt / half_life)``. Evidence older than
   ``T`` (out of order, but within ``max_age_ns`` of now) is fused at its own
   stamp: had it been added at ``s`` it would since have decayed by
   ``f = 0.5 ** ((T - s) / half_life)``, and because the update is additive the
   same result comes from adding ``f · l_in`` now.
2. Pose uncertainty. With ``sigma_pose = sqrt(λmax)`` of the vehicle's xy pose
   covariance, the evidence is blurred by a Gaussian of
   ``sigma_blur = sqrt(max(0, λmax - res²/12))`` (a cell already spreads a
   point uniformly, variance ``res²/12``), when ``sigma_blur >=
   pose_sigma_min_m``; capped at ``max_blur_sigma_m``. The blur is a
   normalised convolution over the known mask (``G*(l·k) / G*k``) and keeps the
   message's known support: free space stays free, a thin occupied line
   flattens, so a misregistered vehicle blurs instead of drawing a ghost.
3. Weight. ``w = vehicle_weights[v] · 1 / (1 + (sigma_pose / pose_sigma_ref_m)²)``
   (the second factor is 1 without a covariance); ``e = f · w · l_in``.
4. Fresh free wins. Where ``e <= -confident_logodds`` (confident free), ``L >
   free_reset_logodds`` and the cell's newest occupied evidence is older than
   ``s - free_wins_after_ns``, ``L`` is first lowered to ``free_reset_logodds``
   (0: unknown). A moving object therefore leaves no trail: the first
   confident free view after it has gone turns the cell free. Occupied
   evidence of about the same time (another vehicle, a slightly misregistered
   view, a late message older than the occupied one) is not reset but summed.
5. ``L += e``, clamped to ``[clamp_min, clamp_max]``; ``observed := True``
   where known, ``occ := max(occ, s)`` where ``e >= confident_logodds``.

A cell is reported unknown (-1) when it was never observed, or when its
log-odds has decayed to ``|L| < unknown_logodds`` (no information left).

Latency: every accepted message's stamp is kept until
:meth:`CommonGrid.latency_ms` is called at publish time, which returns
``publish - stamp`` in ms for each and forgets them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import ConfigError
from ..grid import YAW_TOLERANCE_RAD, GridSpec, mark_unknown, negated_logodds_to_percent, resample_nearest
from ..metrics import Box, footprint_window
from ..morphology import nonzero_box

#: Stamp of a cell that was never observed.
NEVER_NS = np.iinfo(np.int64).min
#: Fill of a cell entering the window: log-odds, observed, newest occupied stamp.
_FILLS = (np.float32(0.0), False, NEVER_NS)
#: Room kept around the window in its buffers on each side, as a share of its size: the window moves
#: within it by a recentre that fills only the strips entering it (no copy of the kept cells).
WINDOW_ROOM = 0.5


class DropCause(str, Enum):
    """Why an evidence message was not fused (the value is the diagnostics key)."""

    UNKNOWN_VEHICLE = 'unknown_vehicle'
    TOO_OLD = 'too_old'
    FUTURE = 'future'
    GEOMETRY = 'geometry'          # resolution not an integer multiple/fraction, origin off the lattice
    BAD_INPUT = 'bad_input'        # array shape or covariance does not match what is expected
    OUT_OF_WINDOW = 'out_of_window'  # no overlap with the common grid


@dataclass(frozen=True)
class FusionConfig:
    """Common-grid fusion parameters.

    spec : geometry of the common grid window in ``map``
    vehicle_weights : vehicle id -> reliability weight in (0, 1]; other ids are ignored
    clamp_min, clamp_max : log-odds bounds after every update
    half_life_s : decay of log-odds towards 0 (unknown), seconds
    max_age_ns : evidence older than now - max_age is dropped
    future_tolerance_ns : evidence stamped after now + tolerance is dropped
    vehicle_timeout_ns : a vehicle silent this long is flagged dropped
    pose_sigma_min_m : blur only when the pose sigma beyond a cell is at least this
    pose_sigma_ref_m : pose sigma at which the pose weight is 1/2
    max_blur_sigma_m : cap on the blur kernel sigma
    confident_logodds : |weighted evidence| from which it counts as confident free/occupied
    free_reset_logodds : occupied cells are lowered to this by fresh confident free evidence
    free_wins_after_ns : occupied evidence must be this much older than the free evidence to be reset
    unknown_logodds : |L| below this is reported unknown (-1)
    """

    spec: GridSpec
    vehicle_weights: Mapping[str, float] = field(default_factory=dict)
    clamp_min: float = -2.0
    clamp_max: float = 3.5
    half_life_s: float = 2.0
    max_age_ns: int = 500_000_000
    future_tolerance_ns: int = 50_000_000
    vehicle_timeout_ns: int = 2_000_000_000
    pose_sigma_min_m: float = 0.05
    pose_sigma_ref_m: float = 0.5
    max_blur_sigma_m: float = 1.0
    confident_logodds: float = 0.4
    free_reset_logodds: float = 0.0
    free_wins_after_ns: int = 50_000_000
    unknown_logodds: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.spec, GridSpec):
            raise ConfigError(f'spec must be a GridSpec, got {type(self.spec).__name__}')
        weights = dict(self.vehicle_weights)
        for vid, w in weights.items():
            if not isinstance(vid, str) or not vid:
                raise ConfigError(f'vehicle id must be a non-empty string, got {vid!r}')
            if not (0.0 < float(w) <= 1.0):
                raise ConfigError(f'weight of vehicle {vid!r} must be in (0, 1], got {w!r}')
        object.__setattr__(self, 'vehicle_weights', MappingProxyType({k: float(v) for k, v in weights.items()}))
        if not (self.clamp_min < 0.0 < self.clamp_max):
            raise ConfigError(f'clamp bounds must satisfy clamp_min < 0 < clamp_max, got '
                              f'[{self.clamp_min}, {self.clamp_max}]')
        for name in ('half_life_s', 'pose_sigma_ref_m', 'max_blur_sigma_m', 'confident_logodds',
                     'unknown_logodds'):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f'{name} must be a positive finite number, got {v!r}')
        for name in ('max_age_ns', 'future_tolerance_ns', 'vehicle_timeout_ns', 'free_wins_after_ns'):
            if getattr(self, name) < 0:
                raise ConfigError(f'{name} must be >= 0, got {getattr(self, name)}')
        if self.pose_sigma_min_m < 0:
            raise ConfigError(f'pose_sigma_min_m must be >= 0, got {self.pose_sigma_min_m}')
        if not (self.clamp_min <= self.free_reset_logodds <= self.clamp_max):
            raise ConfigError(f'free_reset_logodds {self.free_reset_logodds} lies outside the clamp '
                              f'[{self.clamp_min}, {self.clamp_max}]')


@dataclass(frozen=True)
class IntegrateResult:
    """Outcome of :meth:`CommonGrid.integrate`.

    accepted : True when the evidence was fused
    cause : why it was dropped (None when accepted)
    reason : human-readable detail for the log
    cells : known cells fused into the common grid
    weight : effective weight w·f applied (0 when dropped)
    blur_sigma_m : Gaussian blur sigma applied, metres (0 when none)
    """

    accepted: bool
    cause: DropCause | None = None
    reason: str = ''
    cells: int = 0
    weight: float = 0.0
    blur_sigma_m: float = 0.0


@dataclass(frozen=True)
class VehicleStatus:
    """Membership of one configured vehicle at a given time.

    active : accepted evidence within ``vehicle_timeout_ns`` (False before the first)
    last_seen_ns : ``now_ns`` of the last accepted message (None if never)
    last_stamp_ns : evidence stamp of the last accepted message (None if never)
    accepted : messages fused
    drops : cause value -> messages dropped
    rejoins : times the vehicle came back after having timed out
    """

    vehicle_id: str
    weight: float
    active: bool
    last_seen_ns: int | None
    last_stamp_ns: int | None
    accepted: int
    drops: Mapping[str, int]
    rejoins: int


class _Book:
    __slots__ = ('last_seen_ns', 'last_stamp_ns', 'accepted', 'drops', 'rejoins')

    def __init__(self) -> None:
        self.last_seen_ns: int | None = None
        self.last_stamp_ns: int | None = None
        self.accepted = 0
        self.drops: dict[str, int] = {c.value: 0 for c in DropCause if c is not DropCause.UNKNOWN_VEHICLE}
        self.rejoins = 0


def onto_yaw(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_], yaw: float,
             resolution: float | None = None) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """Evidence on ``spec`` brought onto the lattice of ``yaw`` (rad) at ``resolution`` (default its own):
    the window of that yaw holding ``spec``'s corners, each cell taking the evidence under its centre
    (nearest cell; a finer output cell lands within half a source cell of it). Unchanged when ``spec``
    already has that yaw."""
    if abs(spec.yaw - yaw) <= YAW_TOLERANCE_RAD:
        return spec, logodds, known
    corners = spec.to_map_frame(np.array([[spec.origin_x, spec.origin_y],
                                          [spec.origin_x + spec.size_x, spec.origin_y],
                                          [spec.origin_x, spec.origin_y + spec.size_y],
                                          [spec.origin_x + spec.size_x, spec.origin_y + spec.size_y]]))
    out = GridSpec.covering(corners, 0.0, 0.0, spec.resolution if resolution is None else resolution, yaw)
    return (out, resample_nearest(spec, np.asarray(logodds, dtype=np.float32), out, np.float32(0.0)),
            resample_nearest(spec, np.asarray(known, dtype=bool), out, False))


def resample_to_resolution(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_],
                           resolution: float, lattice: GridSpec | None = None
                           ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
    """Bring a grid to ``resolution`` when its own is an integer multiple or fraction of it.

    Coarser input is repeated k×k; finer input is padded with unknown cells to
    whole k×k blocks aligned on ``lattice`` (default: the lattice through
    (0, 0)) and averaged over the known cells of each block (a block is known
    when any of its cells is). Raises ConfigError for any other ratio or an
    origin off the lattice.
    """
    ratio = spec.resolution / resolution
    if math.isclose(ratio, 1.0, rel_tol=1e-6):
        return spec, logodds, known
    k_up = round(ratio)
    k_down = round(1.0 / ratio)
    if k_up >= 2 and math.isclose(ratio, k_up, rel_tol=1e-6):
        out = GridSpec(spec.origin_x, spec.origin_y, resolution, spec.width * k_up, spec.height * k_up, spec.yaw)
        def rep(a: NDArray) -> NDArray:       # each cell repeated k×k (two repeats: 4x faster than one strided copy)
            return np.repeat(np.repeat(np.asarray(a), k_up, axis=1), k_up, axis=0)
        return out, rep(logodds), rep(known)
    if k_down >= 2 and math.isclose(1.0 / ratio, k_down, rel_tol=1e-6):
        ref = lattice or GridSpec(0.0, 0.0, resolution, 1, 1)
        fx = (spec.origin_x - ref.origin_x) / spec.resolution
        fy = (spec.origin_y - ref.origin_y) / spec.resolution
        ox, oy = int(round(fx)), int(round(fy))
        if abs(fx - ox) > 1e-3 or abs(fy - oy) > 1e-3:
            raise ConfigError(f'grid origin ({spec.origin_x}, {spec.origin_y}) at {spec.resolution} m is off '
                              f'the lattice of ({ref.origin_x}, {ref.origin_y})')
        px0, py0 = ox % k_down, oy % k_down
        w = -(-(spec.width + px0) // k_down)
        h = -(-(spec.height + py0) // k_down)
        pad = ((py0, h * k_down - spec.height - py0), (px0, w * k_down - spec.width - px0))
        kk = np.pad(known, pad).reshape(h, k_down, w, k_down)
        ll = np.pad(np.where(known, logodds, 0.0).astype(np.float32), pad).reshape(h, k_down, w, k_down)
        count = kk.sum(axis=(1, 3))
        total = ll.sum(axis=(1, 3))
        out_known = count > 0
        out_l = np.where(out_known, total / np.maximum(count, 1), 0.0).astype(np.float32)
        out = GridSpec(ref.origin_x + (ox - px0) // k_down * resolution,
                       ref.origin_y + (oy - py0) // k_down * resolution, resolution, w, h, spec.yaw)
        return out, out_l, out_known
    raise ConfigError(f'resolution {spec.resolution} m is neither an integer multiple nor an integer '
                      f'fraction of the common {resolution} m')


class CommonGrid:
    """The fused posterior over the common window (see the module docstring for the maths)."""

    def __init__(self, config: FusionConfig) -> None:
        self.config = config
        self._spec = config.spec
        self._allocate(config.spec)
        self._time_ns: int | None = None
        self._books = {vid: _Book() for vid in config.vehicle_weights}
        self._pending_stamps: list[int] = []
        #: evidence grids of another yaw resampled onto the window's lattice; window turns (resampled)
        self.resampled_evidence = 0
        self.turns = 0

    # ------------------------------------------------------------ properties
    @property
    def spec(self) -> GridSpec:
        """Current window geometry."""
        return self._spec

    @property
    def logodds(self) -> NDArray[np.float32]:
        """Posterior log-odds, (height, width) float32, valid at :attr:`time_ns` (read-only view)."""
        view = self._l.view()
        view.flags.writeable = False
        return view

    @property
    def observed(self) -> NDArray[np.bool_]:
        """Cells that ever received known evidence (since they entered the window), (height, width)."""
        return self._observed.copy()

    @property
    def time_ns(self) -> int | None:
        """Common time at which the contents are valid (None before any evidence or advance)."""
        return self._time_ns

    # ---------------------------------------------------------------- update
    def advance(self, now_ns: int) -> None:
        """Decay the contents to ``now_ns``: ``L *= 0.5 ** (dt / half_life)``. Never moves back in time."""
        now_ns = int(now_ns)
        if self._time_ns is None:
            self._time_ns = now_ns
            return
        dt = now_ns - self._time_ns
        if dt <= 0:
            return
        self._l *= np.float32(0.5 ** (dt * 1e-9 / self.config.half_life_s))
        self._time_ns = now_ns

    def integrate(self, vehicle_id: str, spec: GridSpec, logodds: NDArray[np.float32],
                  known: NDArray[np.bool_], stamp_ns: int, now_ns: int,
                  pose_cov_xy: NDArray[np.floating] | None = None,
                  max_age_ns: int | None = None) -> IntegrateResult:
        """Fuse one vehicle's per-cycle evidence.

        spec : geometry of the evidence grid (same lattice; resolution an integer multiple/fraction)
        logodds : (height, width) float32 log-odds of this cycle's evidence
        known : (height, width) bool, cells that carry evidence
        stamp_ns : evidence stamp, common time, ns; now_ns : receive time, common time, ns
        pose_cov_xy : (2, 2) m², the vehicle's xy pose covariance, or None
        max_age_ns : this message's age limit (e.g. ``max_age_ns`` plus the link's measured latency);
            None: ``config.max_age_ns``
        Never raises on bad input: returns a dropped result with its cause.
        """
        cfg = self.config
        stamp_ns, now_ns = int(stamp_ns), int(now_ns)
        book = self._books.get(vehicle_id)
        if book is None:
            return IntegrateResult(False, DropCause.UNKNOWN_VEHICLE,
                                   f'vehicle {vehicle_id!r} is not in vehicle_weights {sorted(self._books)}')
        result = self._integrate(vehicle_id, book, spec, logodds, known, stamp_ns, now_ns, pose_cov_xy,
                                 cfg.max_age_ns if max_age_ns is None else int(max_age_ns))
        if result.accepted:
            if book.last_seen_ns is not None and now_ns - book.last_seen_ns > cfg.vehicle_timeout_ns:
                book.rejoins += 1
            book.last_seen_ns = now_ns if book.last_seen_ns is None else max(book.last_seen_ns, now_ns)
            book.last_stamp_ns = stamp_ns if book.last_stamp_ns is None else max(book.last_stamp_ns, stamp_ns)
            book.accepted += 1
            self._pending_stamps.append(stamp_ns)
        elif result.cause is not None:
            book.drops[result.cause.value] += 1
        return result

    def _integrate(self, vehicle_id: str, book: _Book, spec: GridSpec, logodds: NDArray[np.float32],
                   known: NDArray[np.bool_], stamp_ns: int, now_ns: int,
                   pose_cov_xy: NDArray[np.floating] | None, max_age_ns: int) -> IntegrateResult:
        cfg = self.config
        if now_ns - stamp_ns > max_age_ns:
            return IntegrateResult(False, DropCause.TOO_OLD,
                                   f'stamp {stamp_ns} is {(now_ns - stamp_ns) / 1e6:.1f} ms old, '
                                   f'max_age is {max_age_ns / 1e6:.1f} ms')
        if stamp_ns - now_ns > cfg.future_tolerance_ns:
            return IntegrateResult(False, DropCause.FUTURE,
                                   f'stamp {stamp_ns} is {(stamp_ns - now_ns) / 1e6:.1f} ms ahead of now {now_ns}, '
                                   f'tolerance is {cfg.future_tolerance_ns / 1e6:.1f} ms')
        logodds = np.asarray(logodds)
        known = np.asarray(known)
        if logodds.shape != spec.shape or known.shape != spec.shape:
            return IntegrateResult(False, DropCause.BAD_INPUT,
                                   f'evidence shapes {logodds.shape} / {known.shape} do not match the spec '
                                   f'(height, width) = {spec.shape}')
        sigma_pose, lam = 0.0, 0.0
        if pose_cov_xy is not None:
            cov = np.asarray(pose_cov_xy, dtype=np.float64)
            if cov.shape != (2, 2) or not np.all(np.isfinite(cov)):
                return IntegrateResult(False, DropCause.BAD_INPUT,
                                       f'pose_cov_xy must be a finite (2, 2) array, got shape {cov.shape}')
            lam = float(np.linalg.eigvalsh(0.5 * (cov + cov.T))[-1])
            if lam < -1e-9:
                return IntegrateResult(False, DropCause.BAD_INPUT,
                                       f'pose_cov_xy is not positive semi-definite (eigenvalue {lam:.3g})')
            sigma_pose = math.sqrt(max(lam, 0.0))
        res = self._spec.resolution
        if abs(spec.yaw - self._spec.yaw) > YAW_TOLERANCE_RAD:
            spec, logodds, known = onto_yaw(spec, logodds, known, self._spec.yaw, min(spec.resolution, res))
            self.resampled_evidence += 1
        try:
            spec, logodds, known = resample_to_resolution(spec, logodds, known, res, self._spec)
            ox, oy = self._spec.lattice_offset(spec)
        except ConfigError as exc:
            return IntegrateResult(False, DropCause.GEOMETRY, str(exc))

        # Overlap of the evidence with the common window, in common-grid cells.
        x0, x1 = max(ox, 0), min(ox + spec.width, self._spec.width)
        y0, y1 = max(oy, 0), min(oy + spec.height, self._spec.height)
        if x0 >= x1 or y0 >= y1:
            return IntegrateResult(False, DropCause.OUT_OF_WINDOW,
                                   f'evidence window at ({spec.origin_x}, {spec.origin_y}) does not overlap the '
                                   f'common grid at ({self._spec.origin_x}, {self._spec.origin_y})')

        # Only the known cells change the grid: update the bounding box of those in the overlap.
        box = nonzero_box(known[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
                          & np.isfinite(logodds[y0 - oy:y1 - oy, x0 - ox:x1 - ox]))
        if box is None:
            x1, y1 = x0, y0
        else:
            x0, x1 = x0 + box[1].start, x0 + box[1].stop
            y0, y1 = y0 + box[0].start, y0 + box[0].stop

        sigma_blur = math.sqrt(max(0.0, lam - res * res / 12.0)) if pose_cov_xy is not None else 0.0
        if sigma_blur < cfg.pose_sigma_min_m:
            sigma_blur = 0.0
        sigma_blur = min(sigma_blur, cfg.max_blur_sigma_m)
        if sigma_blur > 0.0 and box is not None:
            # Blur a margin around the overlap so the kernel sees the evidence next to it (what lies
            # further than the kernel's reach adds nothing).
            m = int(math.ceil(3.0 * sigma_blur / res))
            ex0, ex1 = max(x0 - ox - m, 0), min(x1 - ox + m, spec.width)
            ey0, ey1 = max(y0 - oy - m, 0), min(y1 - oy + m, spec.height)
            lin = logodds[ey0:ey1, ex0:ex1]
            k = known[ey0:ey1, ex0:ex1] & np.isfinite(lin)     # a NaN must not spread through the kernel
            kf = k.astype(np.float32)
            lin = np.where(k, lin, np.float32(0.0)).astype(np.float32, copy=False)
            s = sigma_blur / res
            num = ndimage.gaussian_filter(lin, s, truncate=3.0, mode='constant')
            den = ndimage.gaussian_filter(kf, s, truncate=3.0, mode='constant')
            cy0, cx0 = y0 - oy - ey0, x0 - ox - ex0
            sl = (slice(cy0, cy0 + y1 - y0), slice(cx0, cx0 + x1 - x0))
            k = k[sl]
            lin = np.where(k, num[sl] / np.maximum(den[sl], np.float32(1e-6)), np.float32(0.0)
                           ).astype(np.float32, copy=False)
            finite = np.isfinite(lin)
            k = k & finite
            # lin is a new array, 0 where k is False: when all finite it is already the masked evidence.
            masked = bool(finite.all())
        else:
            sl = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
            k = known[sl] & np.isfinite(logodds[sl])
            lin = logodds[sl]
            masked = False
        n_cells = int(np.count_nonzero(k))

        if self._time_ns is None or stamp_ns > self._time_ns:
            self.advance(stamp_ns)
        grid_ns = int(self._time_ns if self._time_ns is not None else stamp_ns)
        late = 1.0 if stamp_ns >= grid_ns else 0.5 ** ((grid_ns - stamp_ns) * 1e-9 / cfg.half_life_s)
        w_pose = 1.0 / (1.0 + (sigma_pose / cfg.pose_sigma_ref_m) ** 2)
        weight = cfg.vehicle_weights[vehicle_id] * w_pose * late
        e = lin if masked else np.where(k, lin, np.float32(0.0)).astype(np.float32, copy=False)
        e *= np.float32(weight)

        L = self._l[y0:y1, x0:x1]
        occ = self._occ[y0:y1, x0:x1]
        c = np.float32(cfg.confident_logodds)
        reset = np.float32(cfg.free_reset_logodds)
        fresh_free = e <= -c
        if fresh_free.any():
            fresh_free &= (L > reset) & (occ < stamp_ns - cfg.free_wins_after_ns)
            np.putmask(L, fresh_free, reset)
        L += e
        np.clip(L, cfg.clamp_min, cfg.clamp_max, out=L)
        # occ := max(occ, s) where confident occupied, as a masked copy (about half the time of a masked
        # maximum, a third of a gather and scatter of the confident cells)
        np.copyto(occ, stamp_ns, where=(e >= c) & (occ < stamp_ns))
        self._observed[y0:y1, x0:x1] |= k
        return IntegrateResult(True, None, '', n_cells, float(weight), float(sigma_blur))

    def recenter(self, new_spec: GridSpec) -> None:
        """Move the window to ``new_spec`` (same resolution and lattice; size may change).

        Contents shift by the lattice offset: cells leaving are dropped, cells
        entering are unknown. A window of another yaw (same resolution) takes the
        contents by :func:`~cooperative_fusion.core.grid.resample_nearest` (counted
        in :attr:`turns`). Raises ConfigError for a spec off the lattice.
        """
        old = self._spec
        if abs(new_spec.yaw - old.yaw) > YAW_TOLERANCE_RAD and \
                math.isclose(new_spec.resolution, old.resolution, rel_tol=1e-6):
            self._allocate(new_spec, resample_nearest(old, self._l, new_spec, np.float32(0.0)),
                           resample_nearest(old, self._observed, new_spec, False),
                           resample_nearest(old, self._occ, new_spec, np.int64(NEVER_NS)))
            self._spec = new_spec
            self.turns += 1
            return
        dx, dy = self._spec.lattice_offset(new_spec)   # new (0,0) in old cells
        # The cells kept: [y0, y1) x [x0, x1) in old cells, [r0, r1) x [c0, c1) in new ones (empty: none).
        x0, x1 = max(dx, 0), min(dx + new_spec.width, old.width)
        y0, y1 = max(dy, 0), min(dy + new_spec.height, old.height)
        kept = x0 < x1 and y0 < y1
        r0, r1, c0, c1 = (y0 - dy, y1 - dy, x0 - dx, x1 - dx) if kept else (0, 0, 0, 0)
        by, bx = self._at[0] + dy, self._at[1] + dx
        buf_h, buf_w = self._buffers[0].shape
        if 0 <= by <= buf_h - new_spec.height and 0 <= bx <= buf_w - new_spec.width:
            # Within the room around the window: the kept cells stay where they are in the buffers,
            # only the strips entering the window are filled.
            self._at = (by, bx)
            self._views(new_spec)
            for a, fill in zip((self._l, self._observed, self._occ), _FILLS):
                if not kept:
                    a.fill(fill)
                    continue
                a[:r0] = fill
                a[r1:] = fill
                a[r0:r1, :c0] = fill
                a[r0:r1, c1:] = fill
            self._spec = new_spec
            return

        def moved(a: NDArray, fill: float | int) -> NDArray:
            out = np.full(new_spec.shape, fill, dtype=a.dtype)
            if kept:
                out[r0:r1, c0:c1] = a[y0:y1, x0:x1]
            return out

        self._allocate(new_spec, *(moved(a, fill) for a, fill in zip((self._l, self._observed, self._occ), _FILLS)))
        self._spec = new_spec

    def _allocate(self, spec: GridSpec, logodds: NDArray[np.float32] | None = None,
                  observed: NDArray[np.bool_] | None = None, occ: NDArray[np.int64] | None = None) -> None:
        """New backing buffers with room (:data:`WINDOW_ROOM`) around a window of ``spec``'s shape in their
        middle; the window's cells from the arrays given (default: never observed)."""
        h, w = spec.shape
        my, mx = int(math.ceil(WINDOW_ROOM * h)), int(math.ceil(WINDOW_ROOM * w))
        shape = (h + 2 * my, w + 2 * mx)
        self._buffers = (np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=bool),
                         np.full(shape, NEVER_NS, dtype=np.int64))
        self._at = (my, mx)
        self._views(spec)
        for view, a in zip((self._l, self._observed, self._occ), (logodds, observed, occ)):
            if a is not None:
                view[...] = a

    def _views(self, spec: GridSpec) -> None:
        """``_l``, ``_observed``, ``_occ``: the window of ``spec``'s shape at ``_at`` in the buffers."""
        (by, bx), (h, w) = self._at, spec.shape
        self._l, self._observed, self._occ = (b[by:by + h, bx:bx + w] for b in self._buffers)

    # ---------------------------------------------------------------- output
    def known_mask(self) -> NDArray[np.bool_]:
        """Cells observed at least once and with ``|L| >= unknown_logodds``, (height, width)."""
        return self._observed & (np.abs(self._l) >= self.config.unknown_logodds)

    def posterior_percent(self) -> NDArray[np.int8]:
        """OccupancyGrid cells: round(100·p), -1 where unknown (see :meth:`known_mask`), (height, width) int8.

        :func:`~cooperative_fusion.core.grid.logodds_to_percent` in one float32 buffer (``L`` is never NaN:
        integrate fuses finite evidence only, and a NaN would fail the known mask anyway).
        """
        t = np.negative(self._l)       # the one pass over the window (a view into the buffers: strided)
        unknown = np.greater_equal(np.abs(t), self.config.unknown_logodds)   # known_mask, then its complement
        unknown &= self._observed
        np.logical_not(unknown, out=unknown)
        cells = negated_logodds_to_percent(t)
        mark_unknown(cells, unknown)
        return cells

    def latency_ms(self, publish_ns: int) -> NDArray[np.float64]:
        """``publish - stamp`` in ms of every message accepted since the previous call; forgets them."""
        stamps = np.array(self._pending_stamps, dtype=np.int64)
        self._pending_stamps = []
        return (int(publish_ns) - stamps).astype(np.float64) / 1e6

    def vehicles_status(self, now_ns: int) -> dict[str, VehicleStatus]:
        """Membership of every configured vehicle at ``now_ns`` (common time)."""
        cfg = self.config
        out = {}
        for vid, b in self._books.items():
            active = b.last_seen_ns is not None and int(now_ns) - b.last_seen_ns <= cfg.vehicle_timeout_ns
            out[vid] = VehicleStatus(vid, cfg.vehicle_weights[vid], active, b.last_seen_ns, b.last_stamp_ns,
                                     b.accepted, MappingProxyType(dict(b.drops)), b.rejoins)
        return out


# ----------------------------------------------------------- member footprints --
# Platoon members know where their own bodies are (pose and dimensions) far
# better than anyone else sees them: a follower sees only the rear face of its
# predecessor, and a moving face lands where it was at the evidence stamp,
# v·(publish - stamp) behind the body at publish time (2.5 m per 100 ms at
# 25 m/s). So the common grid (1) drops the occupied evidence that falls on a
# member's body at the evidence stamp (the body is drawn instead) and (2) draws
# each member's footprint, extrapolated to the publish time with its odometry
# speed, on top of the published grid.

@dataclass(frozen=True)
class Footprint:
    """A platoon member's body in its base_link frame (x forward): ``-rear_overhang_m`` to
    ``length_m - rear_overhang_m`` along x, ``±width_m/2`` along y; metres. ``lidar_x_m``, ``lidar_y_m``:
    where its rotating lidar sits in base_link (the dynamic layer's sweep phase and face thinning look
    from there), metres."""

    length_m: float
    width_m: float
    rear_overhang_m: float
    lidar_x_m: float = 0.0
    lidar_y_m: float = 0.0

    def __post_init__(self) -> None:
        for name in ('length_m', 'width_m'):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f'footprint {name} must be a positive finite number of metres, got {v!r}')
        if not (math.isfinite(self.rear_overhang_m) and 0 <= self.rear_overhang_m < self.length_m):
            raise ConfigError(f'footprint rear_overhang_m must be in [0, length_m = {self.length_m}), '
                              f'got {self.rear_overhang_m!r}')
        for name in ('lidar_x_m', 'lidar_y_m'):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise ConfigError(f'footprint {name} must be a finite number of metres, got {v!r}')


def member_box_window(spec: GridSpec, x: float, y: float, yaw: float, footprint: Footprint,
                      margin_m: float = 0.0, margin_behind_m: float = 0.0
                      ) -> tuple[tuple[slice, slice], NDArray[np.bool_]]:
    """:func:`member_box_mask` as (slice into the grid, mask over that slice); the slice may be empty."""
    length = footprint.length_m + 2.0 * margin_m + margin_behind_m
    width = footprint.width_m + 2.0 * margin_m
    ahead = footprint.length_m - footprint.rear_overhang_m + margin_m      # front, from base_link
    centre = ahead - 0.5 * length
    cx, cy = x + centre * math.cos(yaw), y + centre * math.sin(yaw)
    if spec.is_rotated or not (length > 0 and width > 0 and all(math.isfinite(v) for v in (cx, cy, yaw, length, width))):
        return footprint_window(spec, Box(cx, cy, length, width, yaw))
    # footprint_window of that Box, without making it (called for every member, evidence and publish): the
    # same cell test on a window one cell wider each way than its (its corners come from a matrix product,
    # these from their half extents: a last-bit difference must not cut a cell off). The extra cells lie
    # outside the box: the mask is the same there, False.
    c, s = math.cos(yaw), math.sin(yaw)
    ex = abs(c) * 0.5 * length + abs(s) * 0.5 * width
    ey = abs(s) * 0.5 * length + abs(c) * 0.5 * width
    res = spec.resolution
    x0 = max(math.floor((cx - ex - spec.origin_x) / res) - 2, 0)
    x1 = min(math.floor((cx + ex - spec.origin_x) / res) + 3, spec.width)
    y0 = max(math.floor((cy - ey - spec.origin_y) / res) - 2, 0)
    y1 = min(math.floor((cy + ey - spec.origin_y) / res) + 3, spec.height)
    if x0 >= x1 or y0 >= y1:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype=bool)
    dx = spec.origin_x + (np.arange(x0, x1) + 0.5) * res - cx
    dy = (spec.origin_y + (np.arange(y0, y1) + 0.5) * res - cy)[:, None]
    mask = (np.abs(c * dx + s * dy) <= 0.5 * length) & (np.abs(-s * dx + c * dy) <= 0.5 * width)
    cix = math.floor((cx - spec.origin_x) / res)
    ciy = math.floor((cy - spec.origin_y) / res)
    if x0 <= cix < x1 and y0 <= ciy < y1:
        mask[ciy - y0, cix - x0] = True
    return (slice(y0, y1), slice(x0, x1)), mask


def member_box_mask(spec: GridSpec, x: float, y: float, yaw: float, footprint: Footprint,
                    margin_m: float = 0.0, margin_behind_m: float = 0.0) -> NDArray[np.bool_]:
    """(height, width) bool: cells whose centre lies in the member's body at base_link (x, y, yaw),
    grown by ``margin_m`` on every side and ``margin_behind_m`` more behind (at least the cell of the
    body's centre when that lies in the grid)."""
    out = np.zeros(spec.shape, dtype=bool)
    sl, mask = member_box_window(spec, x, y, yaw, footprint, margin_m, margin_behind_m)
    out[sl] = mask
    return out


def drop_member_hits(spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_],
                     members: Sequence[tuple[float, float, float, Footprint]], margin_m: float,
                     margin_behind_m: float) -> tuple[NDArray[np.float32], NDArray[np.bool_], int]:
    """Evidence without its occupied cells on the members' bodies (x, y, yaw, footprint) at its stamp.

    Free evidence is kept. Returns (logodds, known, cells dropped); the inputs are not modified.
    """
    if not members:
        return logodds, known, 0
    hits = []          # (window, cells to drop in it): only the members' windows are looked at
    for x, y, yaw, fp in members:
        sl, body = member_box_window(spec, x, y, yaw, fp, margin_m, margin_behind_m)
        hit = body & known[sl] & (logodds[sl] > 0)           # NaN is not > 0, +inf is
        if hit.any():
            hits.append((sl, hit))
    if not hits:
        return logodds, known, 0
    out_l = np.array(logodds, dtype=np.float32)
    out_k = np.array(known, dtype=bool)
    dropped = 0
    for sl, hit in hits:
        # Windows may overlap: count only what is still known (every dropped cell was known).
        dropped += int(np.count_nonzero(out_k[sl][hit]))
        out_l[sl][hit] = 0.0
        out_k[sl][hit] = False
    return out_l, out_k, dropped


def draw_members(spec: GridSpec, cells: NDArray[np.int8],
                 members: Sequence[tuple[float, float, float, Footprint]], percent: int) -> NDArray[np.int8]:
    """Published cells (int8 percent, -1 unknown) with every member's body at least ``percent``."""
    out = np.array(cells, dtype=np.int8, copy=True)
    for x, y, yaw, fp in members:
        sl, m = member_box_window(spec, x, y, yaw, fp)
        window = out[sl]
        window[m] = np.maximum(window[m], np.int8(percent))
    return out
