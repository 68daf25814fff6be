"""Inverse sensor models: one cycle of measurements -> occupancy evidence on a grid.

Every ``*_evidence`` function returns ``(logodds, known)`` on a
:class:`~cooperative_fusion.core.grid.GridSpec`: ``logodds`` (height, width)
float32 is this cycle's evidence only (0 where there is none) and ``known``
(height, width) bool says where there is any, so the caller can publish -1
(unknown) there. Evidence layers add in log-odds (:func:`combine`); the fusion
node accumulates them over time and vehicles.

All geometry is 2-D in ``map``: the caller moves points into ``map``, splits
them into obstacle returns (*hits*) and ground returns (*free end points*) with
:func:`~cooperative_fusion.core.vehicle.ground.split_ground`, and adds a free end point
at ``max_range_m`` along every beam that returned nothing.

Lidar and camera use a **polar sweep** instead of per-ray traversal, so the
cost is O(cells + points) and fully vectorised:

1. returns are binned by azimuth around the sensor origin (bin width
   ``SensorModel.azimuth_resolution_rad``, which should be at least the
   sensor's angular step so no bin between two beams stays empty);
2. per bin: the range of the nearest hit (it blocks the view) and the *reach*,
   the farthest range known to be traversed (free end points, hits, and
   ``max_range_m`` for returns beyond it);
3. a grid cell is **free** when its centre's range r satisfies
   ``min_range_m <= r <= reach`` and ``r < nearest_hit - resolution / 2`` in
   the bin through its centre (where a cell spans several bins, near the
   sensor, the bin through its centre decides), **occupied** when a hit in
   ``[min_range_m, max_range_m]`` falls in it (occupied wins over free), and
   **unknown** otherwise: behind the nearest hit, beyond the reach, inside
   the blind zone ``r < min_range_m`` (which also keeps the sensor's own
   vehicle out of its evidence) and, for the camera, outside the field of view.
   Farther hits in the same bin are still occupied at their own cells.

A bin that received no return but whose two neighbours did (azimuth aliasing
between the beam pattern and the bins) takes the more cautious of its
neighbours: the smaller reach and the nearer hit. Wider gaps stay unknown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import ConfigError
from ..grid import GridSpec
from ..vehicle_defaults import MOVING_MIN_SPEED_MPS, MOVING_RADIUS_M
from .ground import GroundConfig, GroundMode, fit_ground_plane, split_ground

__all__ = [
    'SensorModel', 'default_lidar_model', 'default_radar_model', 'default_camera_model',
    'GroundMode', 'GroundConfig', 'split_ground', 'fit_ground_plane',
    'lidar_evidence', 'radar_evidence', 'camera_evidence', 'combine',
    'EvidencePatch', 'lidar_patch', 'radar_patch', 'camera_patch',
    'RADAR_KNOWN_FRACTION', 'RADAR_STATIC_KNOWN_FRACTION', 'RadarNoise', 'MovingReturns', 'moving_returns',
    'hits_to_stamp',
]

#: Radar cells whose spread evidence is below this fraction of logit(p_hit) count
#: as unknown (a Gaussian falls below 1 % at about 3 sigma).
RADAR_KNOWN_FRACTION = 0.01
#: A static radar detection's spread stops below this fraction of logit(p_hit) (about 1.2 sigma): see
#: :func:`radar_evidence`.
RADAR_STATIC_KNOWN_FRACTION = 0.5
#: Gaussian kernel radius in sigmas for the radar spread (scipy's default).
RADAR_TRUNCATE = 4.0

_TWO_PI = 2.0 * math.pi
#: Whole numbers up to here are exact in float32.
_FLOAT32_WHOLE = 1 << 24


@dataclass(frozen=True)
class SensorModel:
    """Inverse sensor model of one sensor.

    p_hit : probability that a cell holding a return is occupied, in (0.5, 1)
    p_miss : probability that a cell a beam passed through is occupied, in (0, 0.5)
    max_range_m : metres; returns beyond are not trusted as hits (the beam still
        counts as free out to here), free space stops here
    min_range_m : metres; blind zone: nearer returns are ignored, nearer cells get
        no evidence
    azimuth_resolution_rad : radians, width of the polar-sweep bins (lidar, camera);
        should be at least the angular step between the beams handed in
    """

    p_hit: float
    p_miss: float
    max_range_m: float
    min_range_m: float = 0.5
    azimuth_resolution_rad: float = math.radians(0.2)

    def __post_init__(self) -> None:
        for name in ('p_hit', 'p_miss', 'max_range_m', 'min_range_m', 'azimuth_resolution_rad'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value):
                raise ConfigError(f'SensorModel.{name} must be a finite number, got {value!r}')
        if not 0.5 < self.p_hit < 1.0:
            raise ConfigError(f'SensorModel.p_hit must be in (0.5, 1), got {self.p_hit!r}')
        if not 0.0 < self.p_miss < 0.5:
            raise ConfigError(f'SensorModel.p_miss must be in (0, 0.5), got {self.p_miss!r}')
        if not self.min_range_m >= 0.0:
            raise ConfigError(f'SensorModel.min_range_m must be >= 0, got {self.min_range_m!r}')
        if not self.max_range_m > self.min_range_m:
            raise ConfigError(
                f'SensorModel.max_range_m must be > min_range_m ({self.min_range_m}), got {self.max_range_m!r}')
        if not 0.0 < self.azimuth_resolution_rad <= math.pi:
            raise ConfigError(
                f'SensorModel.azimuth_resolution_rad must be in (0, pi], got {self.azimuth_resolution_rad!r}')

    @property
    def l_hit(self) -> float:
        """logit(p_hit): log-odds added at a return (> 0)."""
        return math.log(self.p_hit / (1.0 - self.p_hit))

    @property
    def l_miss(self) -> float:
        """logit(p_miss): log-odds added where a beam passed (< 0)."""
        return math.log(self.p_miss / (1.0 - self.p_miss))


def default_lidar_model() -> SensorModel:
    """Automotive 64-beam lidar: precise, so strong evidence both ways.

    p_hit 0.85, p_miss 0.35, 1.0-100 m (the 1 m blind zone drops returns off the
    sensor's own mount), bins of 0.2 deg (the azimuth step of a 64-beam lidar at
    10 Hz is 0.17-0.2 deg).
    """
    return SensorModel(p_hit=0.85, p_miss=0.35, max_range_m=100.0, min_range_m=1.0,
                       azimuth_resolution_rad=math.radians(0.2))


def default_radar_model() -> SensorModel:
    """Automotive radar: long range, coarse and cluttered, so weak occupied evidence.

    p_hit 0.65, p_miss 0.45 (unused: radar gives no free evidence), 0.5-150 m.
    """
    return SensorModel(p_hit=0.65, p_miss=0.45, max_range_m=150.0, min_range_m=0.5,
                       azimuth_resolution_rad=math.radians(1.0))


def default_camera_model() -> SensorModel:
    """Depth camera: dense but depth error grows with the square of range, so short range.

    p_hit 0.75, p_miss 0.40, 0.3-40 m, bins of 0.5 deg (pass depth columns at
    least that dense, e.g. every 2nd-3rd column of a 640-px, 90 deg image).
    """
    return SensorModel(p_hit=0.75, p_miss=0.40, max_range_m=40.0, min_range_m=0.3,
                       azimuth_resolution_rad=math.radians(0.5))


# ---------------------------------------------------------------- validation --

def _xy_rows(xy: NDArray[np.floating], name: str) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """``xy`` as (N, 2) float64 (empty: (0, 2)) and the (N,) mask of its finite rows."""
    arr = np.asarray(xy, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=bool)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ConfigError(f'{name} must have shape (N, 2), got {arr.shape}')
    # x + y is non-finite exactly when x or y is (inf - inf and anything + nan are nan).
    with np.errstate(invalid='ignore'):
        return arr, np.isfinite(arr[:, 0] + arr[:, 1])


def _as_xy(xy: NDArray[np.floating], name: str) -> NDArray[np.float64]:
    arr, finite = _xy_rows(xy, name)
    return arr if finite.all() else arr[finite]


def _as_origin(origin_xy: NDArray[np.floating]) -> NDArray[np.float64]:
    origin = np.asarray(origin_xy, dtype=np.float64).reshape(-1)
    if origin.shape != (2,) or not np.isfinite(origin).all():
        raise ConfigError(f'origin_xy must be 2 finite numbers (x, y) in metres, got {np.asarray(origin_xy).tolist()}')
    return origin


def _empty(spec: GridSpec) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    return np.zeros(spec.shape, dtype=np.float32), np.zeros(spec.shape, dtype=bool)


@dataclass(frozen=True, eq=False)
class EvidencePatch:
    """One sensor's evidence on part of a grid of ``shape``: what its ``*_evidence`` layer holds, without the
    zeros around it.

    rows, cols : the box (slices of the grid); logodds : (rows, cols) float32 and known : (rows, cols) bool
    in it; outside : flat indices of cells outside the box (repeats allowed) whose log-odds are
    ``outside_logodds`` (known); every other cell is 0 and unknown
    """

    shape: tuple[int, int]
    rows: slice
    cols: slice
    logodds: NDArray[np.float32]
    known: NDArray[np.bool_]
    outside: NDArray[np.intp]
    outside_logodds: np.float32 = np.float32(0.0)

    def add_to(self, total: NDArray[np.float32], known: NDArray[np.bool_]) -> None:
        """``total += logodds`` and ``known |= known`` of the whole layer, in place, cell by cell as
        :func:`combine` adds (a cell outside the patch adds 0, which changes no sum)."""
        box = total[self.rows, self.cols]
        box += self.logodds
        mask = known[self.rows, self.cols]
        mask |= self.known
        if self.outside.size:
            total.reshape(-1)[self.outside] += self.outside_logodds   # repeats add once, as in a layer
            known.reshape(-1)[self.outside] = True

    def layer(self) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """The whole (height, width) ``(logodds, known)`` layer."""
        logodds, known = np.zeros(self.shape, dtype=np.float32), np.zeros(self.shape, dtype=bool)
        logodds[self.rows, self.cols] = self.logodds
        known[self.rows, self.cols] = self.known
        if self.outside.size:
            logodds.reshape(-1)[self.outside] = self.outside_logodds
            known.reshape(-1)[self.outside] = True
        return logodds, known


_NO_CELLS = np.zeros(0, dtype=np.intp)


def _empty_patch(spec: GridSpec) -> EvidencePatch:
    return EvidencePatch(spec.shape, slice(0, 0), slice(0, 0), np.zeros((0, 0), dtype=np.float32),
                         np.zeros((0, 0), dtype=bool), _NO_CELLS)


def _wrap(angle: NDArray[np.floating]) -> NDArray[np.float64]:
    """Angles wrapped to [-pi, pi)."""
    return (angle + math.pi) % _TWO_PI - math.pi


def _in_fov(azimuth: NDArray[np.float32], yaw: float, half: float) -> NDArray[np.bool_]:
    """``np.abs(_wrap(azimuth - yaw)) <= half`` for float32 azimuths, bit for bit, with the remainder taken
    only where the shifted angle is outside [0, 2 pi) (elsewhere it is the angle itself): most points."""
    shifted = azimuth - yaw
    shifted += math.pi
    outside = (shifted < 0) | (shifted >= np.float32(_TWO_PI))
    if outside.any():
        shifted[outside] %= _TWO_PI
    shifted -= math.pi
    return np.abs(shifted) <= half


# ------------------------------------------------------------- polar sweep ----

@lru_cache(maxsize=8)
def _bin_edges(n_bins: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """cos and sin (n_bins + 1,) of the bin edges, from -pi."""
    edges = -math.pi + np.arange(n_bins + 1) * (_TWO_PI / n_bins)
    return np.cos(edges), np.sin(edges)


@lru_cache(maxsize=8)
def _ring(n_bins: int) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """Indices around the ring of bins: each bin's left and right neighbour (n_bins,), and for each of the
    n_bins + 1 edges from -pi the bins after and before it (the last edge is the first one again)."""
    index = np.arange(n_bins)
    left, right = np.roll(index, 1), np.roll(index, -1)
    after, before = np.append(index, 0), np.append(left, n_bins - 1)
    for a in (left, right, after, before):
        a.setflags(write=False)      # shared by the cache
    return left, right, after, before


def _bins_inside(n_bins: int, yaw: float, half_fov: float) -> NDArray[np.bool_]:
    """(n_bins,) True for the bins lying inside ``yaw ± half_fov`` with 1e-4 rad to spare (far more
    than the float32 error of a cell's azimuth), where a cell's own field-of-view test must pass."""
    centres = -math.pi + (np.arange(n_bins) + 0.5) * (_TWO_PI / n_bins)
    off = np.abs((centres - yaw + math.pi) % _TWO_PI - math.pi)
    return off <= half_fov - 0.5 * _TWO_PI / n_bins - 1e-4


def _index_range(lo_m: float, hi_m: float, origin_m: float, resolution: float, n: int) -> tuple[int, int]:
    """The cells ``[start, stop)`` of an axis whose centres may lie in ``[lo_m, hi_m]`` (one cell of margin)."""
    start = int(math.floor((lo_m - origin_m) / resolution - 0.5)) - 1
    stop = int(math.ceil((hi_m - origin_m) / resolution - 0.5)) + 2
    return max(start, 0), min(stop, n)


def _reach_box(spec: GridSpec, origin: NDArray[np.float64], limit: NDArray[np.float32],
               min_range_m: float) -> tuple[slice, slice] | None:
    """Rows and columns of the grid that hold every cell a bin's ``limit`` may reach, or None.

    The bounding box of the sensor and the ends of every bin's edges at that
    bin's limit, one cell wider: a cell centre can be free only within its
    bin's limit, and the arc between two edge ends bulges less than a
    millimetre beyond them at the bin widths used.
    """
    reaching = limit >= np.float32(min_range_m)
    if not reaching.any():
        return None
    cos_e, sin_e = _bin_edges(limit.size)
    r = np.where(reaching, limit, np.float32(0.0)).astype(np.float64)
    _, _, after, before = _ring(limit.size)
    r_edge = np.maximum(r.take(after), r.take(before))   # each edge at the larger limit of the two bins it bounds
    xs = origin[0] + r_edge * cos_e
    ys = origin[1] + r_edge * sin_e
    rows = _index_range(min(float(ys.min()), origin[1]), max(float(ys.max()), origin[1]),
                        spec.origin_y, spec.resolution, spec.height)
    cols = _index_range(min(float(xs.min()), origin[0]), max(float(xs.max()), origin[0]),
                        spec.origin_x, spec.resolution, spec.width)
    if rows[0] >= rows[1] or cols[0] >= cols[1]:
        return None
    return slice(*rows), slice(*cols)


def _polar_sweep(spec: GridSpec, origin_xy: NDArray[np.floating], hits_xy: NDArray[np.floating],
                 free_xy: NDArray[np.floating], model: SensorModel,
                 fov: tuple[float, float] | None) -> EvidencePatch:
    """Lidar / camera evidence; ``fov`` = (yaw, hfov) in radians or None for 360 deg."""
    origin = _as_origin(origin_xy)
    hits = _as_xy(hits_xy, 'hits_xy')
    free = _as_xy(free_xy, 'free_xy')
    if spec.is_rotated:
        # A grid turned by its yaw: sweep in its own frame, where it is axis-aligned.
        origin, hits, free = spec.to_grid_frame(origin), spec.to_grid_frame(hits), spec.to_grid_frame(free)
        if fov is not None:
            fov = (fov[0] - spec.yaw, fov[1])
        spec = spec.aligned()
    n_bins = max(1, int(math.ceil(_TWO_PI / model.azimuth_resolution_rad - 1e-9)))
    bin_width = _TWO_PI / n_bins
    to_bin_scale = np.float32(1.0 / bin_width)

    def polar(xy: NDArray[np.float64]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        # float32 is plenty here (1e-5 m at 100 m, 1e-7 rad) and halves the cost.
        # Absurd coordinates (1e30 m) overflow to an infinite range, which every caller drops as
        # beyond max range: that is the intended outcome, so the overflow is not reported.
        with np.errstate(over='ignore', invalid='ignore'):
            dx = (xy[:, 0] - origin[0]).astype(np.float32)
            dy = (xy[:, 1] - origin[1]).astype(np.float32)
            return np.sqrt(dx * dx + dy * dy), np.arctan2(dy, dx)

    def to_bin(azimuth: NDArray[np.float32], out: NDArray[np.float32] | None = None) -> NDArray[np.intp]:
        # float32 arctan2 gives [-pi, pi] rounded to float32, so the shifted azimuth is >= 0,
        # where truncation is floor; pi itself (the same edge as -pi) goes to the last bin.
        # out : scratch for the scaled azimuths (may be ``azimuth`` itself)
        scaled = np.add(azimuth, np.float32(math.pi), out=out)
        scaled *= to_bin_scale
        if n_bins <= _FLOAT32_WHOLE:
            # Capped before truncation: the same bins (n_bins - 1 is a float32), a float32 pass, not an int64 one.
            np.minimum(scaled, np.float32(n_bins - 1), out=scaled)
            return scaled.astype(np.intp)
        bins = scaled.astype(np.intp)
        return np.minimum(bins, n_bins - 1, out=bins)

    hit_r, hit_az = polar(hits)
    free_r, free_az = polar(free)
    if fov is not None:
        yaw, half = fov[0], 0.5 * fov[1]
        in_hit = _in_fov(hit_az, yaw, half)
        in_free = _in_fov(free_az, yaw, half)
        hits, hit_r, hit_az = hits[in_hit], hit_r[in_hit], hit_az[in_hit]
        free_r, free_az = free_r[in_free], free_az[in_free]

    valid = (hit_r >= model.min_range_m) & (hit_r <= model.max_range_m)
    beyond = hit_r > model.max_range_m
    hit_bin = to_bin(hit_az)
    free_bin = to_bin(free_az)

    nearest = np.full(n_bins, np.inf, dtype=np.float32)
    np.minimum.at(nearest, hit_bin[valid], hit_r[valid])
    reach = np.zeros(n_bins, dtype=np.float32)
    np.maximum.at(reach, free_bin, np.minimum(free_r, np.float32(model.max_range_m)))
    np.maximum.at(reach, hit_bin[valid], hit_r[valid])
    # A return beyond max_range is no trusted hit, but its beam did cross max_range.
    np.maximum.at(reach, hit_bin[beyond], np.float32(model.max_range_m))
    observed = np.zeros(n_bins, dtype=bool)
    observed[free_bin] = True
    observed[hit_bin[valid | beyond]] = True

    if n_bins >= 3:
        left, right, _, _ = _ring(n_bins)
        gap = ~observed & observed[left] & observed[right]
        nearest[gap] = np.minimum(nearest[left[gap]], nearest[right[gap]])
        reach[gap] = np.minimum(reach[left[gap]], reach[right[gap]])

    # Cells must lie more than half a cell before the nearest hit to be free:
    # r < nearest - res/2 is r <= the float32 just below it, so one limit per bin
    # holds both rules. Unobserved bins keep reach 0 and so stay unknown.
    blocked = nearest - np.float32(0.5 * spec.resolution)
    limit = np.minimum(reach, np.nextafter(blocked, np.float32(-np.inf)))

    box = _reach_box(spec, origin, limit, model.min_range_m)
    rows, cols = box if box is not None else (slice(0, 0), slice(0, 0))
    if box is not None:
        # Only the cells some bin can reach: the camera's field of view, not the whole window.
        xs, ys = spec.cell_centers()
        dx = (xs[cols] - origin[0]).astype(np.float32)
        dy = (ys[rows] - origin[1]).astype(np.float32)
        cell_r = np.add.outer(dy * dy, dx * dx)          # dx² + dy², as float32 adds it either way round
        np.sqrt(cell_r, out=cell_r)
        cell_az = np.arctan2(dy[:, None], dx[None, :])
        cell_bin = to_bin(cell_az, cell_az if fov is None else None)     # (the camera needs cell_az again)
        free_cells = cell_r >= model.min_range_m
        free_cells &= cell_r <= limit.take(cell_bin)
        if fov is not None:
            # The exact field-of-view test, only where a bin is not surely inside the field of view.
            unsure = ~_bins_inside(n_bins, fov[0], 0.5 * fov[1])
            candidates = np.flatnonzero(free_cells & unsure[cell_bin])
            free_cells.flat[candidates] = np.abs(_wrap(cell_az.flat[candidates] - fov[0])) <= 0.5 * fov[1]
        logodds = free_cells.view(np.uint8) * np.float32(model.l_miss)
        logodds += np.float32(0.0)                        # -0.0 (0 · l_miss) is +0.0 then, as in the layer
    else:
        free_cells, logodds = np.zeros((0, 0), dtype=bool), np.zeros((0, 0), dtype=np.float32)
    # Occupied wins over free: hits in the box overwrite it, the others lie outside it.
    l_hit = np.float32(model.l_hit)
    ix, iy = spec.world_to_cell(hits[valid])
    inside = spec.in_bounds(ix, iy)
    ix, iy = ix[inside], iy[inside]
    in_box = (iy >= rows.start) & (iy < rows.stop) & (ix >= cols.start) & (ix < cols.stop)
    logodds[iy[in_box] - rows.start, ix[in_box] - cols.start] = l_hit
    free_cells[iy[in_box] - rows.start, ix[in_box] - cols.start] = True
    in_box = ~in_box
    return EvidencePatch(spec.shape, rows, cols, logodds, free_cells, iy[in_box] * spec.width + ix[in_box], l_hit)


def lidar_evidence(spec: GridSpec, origin_xy: NDArray[np.floating], hits_xy: NDArray[np.floating],
                   free_xy: NDArray[np.floating],
                   model: SensorModel) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """One lidar scan's occupancy evidence (polar sweep, see the module docstring).

    spec : the evidence grid in ``map``
    origin_xy : (2,) metres, the sensor's position in ``map``
    hits_xy : (N, 2) metres in ``map``, obstacle returns
    free_xy : (M, 2) metres in ``map``, points up to which the beam crossed free
        space: ground returns, and the max-range point of beams without return
    Returns ``(logodds, known)``: (height, width) float32 with logit(p_hit) at
    returns, logit(p_miss) where free, 0 elsewhere; (height, width) bool.
    Non-finite points are skipped.
    """
    return lidar_patch(spec, origin_xy, hits_xy, free_xy, model).layer()


def lidar_patch(spec: GridSpec, origin_xy: NDArray[np.floating], hits_xy: NDArray[np.floating],
                free_xy: NDArray[np.floating], model: SensorModel) -> EvidencePatch:
    """:func:`lidar_evidence` as an :class:`EvidencePatch` (no full-grid arrays)."""
    return _polar_sweep(spec, origin_xy, hits_xy, free_xy, model, None)


def camera_evidence(spec: GridSpec, origin_xy: NDArray[np.floating], yaw: float, hfov_rad: float,
                    hits_xy: NDArray[np.floating], free_xy: NDArray[np.floating],
                    model: SensorModel) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """One depth image's occupancy evidence: the lidar rule inside the horizontal field of view.

    yaw : radians, heading of the optical axis in ``map``
    hfov_rad : radians, horizontal field of view, in (0, 2 pi]
    hits_xy / free_xy : (N, 2) / (M, 2) metres in ``map``: depth points on
        obstacles, and depth points on the ground (plus max-range points for
        columns without depth, if the caller trusts those)
    Other arguments and the return as :func:`lidar_evidence`; cells and points
    outside the field of view get no evidence.
    """
    return camera_patch(spec, origin_xy, yaw, hfov_rad, hits_xy, free_xy, model).layer()


def camera_patch(spec: GridSpec, origin_xy: NDArray[np.floating], yaw: float, hfov_rad: float,
                 hits_xy: NDArray[np.floating], free_xy: NDArray[np.floating], model: SensorModel) -> EvidencePatch:
    """:func:`camera_evidence` as an :class:`EvidencePatch` (no full-grid arrays)."""
    if not (math.isfinite(yaw)):
        raise ConfigError(f'camera yaw must be finite, got {yaw!r}')
    if not (0.0 < hfov_rad <= _TWO_PI):
        raise ConfigError(f'camera hfov_rad must be in (0, 2 pi], got {hfov_rad!r}')
    return _polar_sweep(spec, origin_xy, hits_xy, free_xy, model, (float(yaw), float(hfov_rad)))


# ------------------------------------------------------------------- radar ----

@lru_cache(maxsize=16)
def _gaussian_peak(sigma_cells: float) -> float:
    """Centre value of scipy's 2-D Gaussian filter applied to a unit impulse."""
    radius = int(RADAR_TRUNCATE * sigma_cells + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_cells) ** 2)
    return float((1.0 / kernel.sum()) ** 2)


@dataclass(frozen=True)
class RadarNoise:
    """A radar's measurement noise, which shapes a standing detection's footprint on the grid.

    range_sigma_m : metres, 1-sigma range error (> 0)
    azimuth_sigma_rad : radians, 1-sigma azimuth error (> 0)
    A radar measures range finely and angle coarsely: a detection at range r lies within an ellipse of
    ``range_sigma_m`` along the line of sight and ``r * azimuth_sigma_rad`` across it (0.15 m by 0.4 m at
    80 m for 0.15 m and 0.3 deg), not in a disc.
    """

    range_sigma_m: float = 0.15
    azimuth_sigma_rad: float = math.radians(0.3)

    def __post_init__(self) -> None:
        for name in ('range_sigma_m', 'azimuth_sigma_rad'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not (math.isfinite(value) and value > 0.0):
                raise ConfigError(f'RadarNoise.{name} must be a finite number > 0, got {value!r}')


def radar_evidence(spec: GridSpec, hits_xy: NDArray[np.floating], sigma_m: float, model: SensorModel,
                   origin_xy: NDArray[np.floating] | None = None, static: NDArray[np.bool_] | None = None,
                   noise: RadarNoise | None = None, moving_noise: RadarNoise | None = None
                   ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """One radar scan's occupied evidence, spread by the radar's position error.

    hits_xy : (N, 2) metres in ``map``, radar detections
    sigma_m : metres, 1-sigma position error of a detection (>= 0; 0 = one cell)
    origin_xy : optional (2,) metres, sensor position in ``map``; when given,
        detections outside [min_range_m, max_range_m] are dropped
    static : optional (N,) bool, the detections of standing things (Doppler, ego motion removed, below
        the moving threshold): their spread stops at ``RADAR_STATIC_KNOWN_FRACTION`` (see below)
    noise : optional, the radar's range and azimuth noise; when given (needs ``origin_xy``) each standing
        detection is spread by its own ellipse, ``range_sigma_m`` along the line of sight and range × azimuth
        sigma across it, instead of the disc of ``sigma_m`` (see below)
    moving_noise : optional, the same for the moving detections (needs ``origin_xy``): each spread by its own
        ellipse out to ``RADAR_KNOWN_FRACTION`` instead of the disc of ``sigma_m``
    Returns ``(logodds, known)`` like :func:`lidar_evidence`. Detections are
    counted per cell and blurred with a Gaussian normalised so that one
    detection gives exactly logit(p_hit) at its cell and decays outward; the
    result is capped at logit(p_hit), since detections of one object in one
    scan are not independent. Cells below ``RADAR_KNOWN_FRACTION`` of that are
    unknown (about 3 sigma out).

    A standing object is detected again every scan, and the fusion adds the scans up: at 20 Hz with a
    2 s half-life, 2 % of logit(p_hit) per scan already makes a cell occupied, so a 3-sigma spread would
    grow it by 1.4 m on every side. The scatter of its detections over the scans already draws their
    position error; a static detection's own spread therefore stops at half its peak (1.2 sigma), and with
    ``noise`` it is the radar's own error, not a disc: a radar measures range to a few centimetres and
    angle coarsely, so the disc drew a standing car 0.6 m deep in front of its face scan after scan, where
    0.15 m of range noise puts a detection in its own cell. Without ``moving_noise`` moving detections keep the
    disc of ``sigma_m`` out to 1 % of the peak (the fusion's dynamic layer draws a moving object from one scan);
    that disc reaches 1.5 m past a car's faces and sides, so the vehicle pipeline passes ``moving_noise`` by
    default (``radar.moving_range_sigma_m``). The vehicle pipeline passes no ``noise`` by default: the disc also covers
    errors beyond the radar's own (probe-ray azimuth steps, localisation bias), and small standing
    objects only the radar sees (guard-rail posts) lost their cells with the ellipse (docs/fusion.md).

    Radar gives no free evidence: it reports CFAR-thresholded detections, and a
    missing detection does not mean empty space (weak reflectors such as people,
    occlusion and multipath, suppressed stationary clutter).
    """
    return radar_patch(spec, hits_xy, sigma_m, model, origin_xy, static, noise, moving_noise).layer()


def radar_patch(spec: GridSpec, hits_xy: NDArray[np.floating], sigma_m: float, model: SensorModel,
                origin_xy: NDArray[np.floating] | None = None, static: NDArray[np.bool_] | None = None,
                noise: RadarNoise | None = None, moving_noise: RadarNoise | None = None) -> EvidencePatch:
    """:func:`radar_evidence` as an :class:`EvidencePatch` (no full-grid arrays)."""
    if not (math.isfinite(sigma_m) and sigma_m >= 0.0):
        raise ConfigError(f'radar sigma_m must be a finite number >= 0, got {sigma_m!r}')
    hits, finite = _xy_rows(hits_xy, 'hits_xy')
    fixed = np.zeros(len(hits), dtype=bool)
    if static is not None and len(hits):
        fixed = np.asarray(static, dtype=bool).reshape(-1)
        if fixed.shape != (len(hits),):
            raise ConfigError(f'radar static must have shape ({len(hits)},), got {fixed.shape}')
    hits, fixed = hits[finite], fixed[finite]
    if (noise is not None or moving_noise is not None) and origin_xy is None:
        raise ConfigError('radar noise needs origin_xy: the footprint is shaped along the line of sight')
    if origin_xy is not None:
        d = hits - _as_origin(origin_xy)
        r = np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)
        near = (r >= model.min_range_m) & (r <= model.max_range_m)
        hits, fixed = hits[near], fixed[near]
    boxes = []
    for part, floor, standing in ((~fixed, RADAR_KNOWN_FRACTION, False), (fixed, RADAR_STATIC_KNOWN_FRACTION, True)):
        if not part.any():
            continue
        shape = noise if standing else moving_noise
        if shape is not None:
            boxes += [(box, floor) for box in _radar_ellipses(spec, hits[part], _as_origin(origin_xy), shape)]
        else:
            boxes += [(box, floor) for box in _radar_weight(spec, hits[part], sigma_m / spec.resolution)]
    if not boxes:
        return _empty_patch(spec)
    # Only the union of the detections' boxes can be known: the rest of the grid stays 0 and unknown.
    r0, r1 = min(b[0] for b, _ in boxes), max(b[1] for b, _ in boxes)
    c0, c1 = min(b[2] for b, _ in boxes), max(b[3] for b, _ in boxes)
    weight = np.zeros((r1 - r0, c1 - c0), dtype=np.float32)
    for (g0, g1, h0, h1, w), floor in boxes:
        sub = weight[g0 - r0:g1 - r0, h0 - c0:h1 - c0]
        np.maximum(sub, np.where(w >= floor, w, np.float32(0.0)), out=sub)
    known = weight > 0
    return EvidencePatch(spec.shape, slice(r0, r1), slice(c0, c1),
                         np.where(known, weight * np.float32(model.l_hit), np.float32(0.0)), known, _NO_CELLS)


#: Up to this many detections are split into groups blurred apart (a scan has tens; the grouping is O(N²)).
_RADAR_GROUP_MAX = 256


def _radar_groups(ix: NDArray[np.int64], iy: NDArray[np.int64], gap: int) -> list[NDArray[np.intp]]:
    """Detections (cells ``ix``, ``iy``) in groups no two of which come within ``gap`` cells of each other
    along both axes: a blur of radius ``gap / 2`` then sees at every cell the detections of one group at most."""
    n = len(ix)
    if n < 2 or n > _RADAR_GROUP_MAX:
        return [np.arange(n)]
    near = (np.abs(ix[:, None] - ix[None, :]) <= gap) & (np.abs(iy[:, None] - iy[None, :]) <= gap)
    label = np.arange(n)
    while True:      # each detection takes the smallest label among its neighbours, until none changes
        new = np.where(near, label[None, :], n).min(axis=1)
        if np.array_equal(new, label):
            break
        label = new
    return [np.flatnonzero(label == g) for g in np.unique(label)]


def _radar_weight(spec: GridSpec, hits: NDArray[np.float64], sigma_cells: float
                  ) -> list[tuple[int, int, int, int, NDArray[np.float32]]]:
    """The detections (N, 2) counted per cell, blurred (peak 1 per detection), capped at 1: boxes ``(row0, row1,
    col0, col1, weight)`` with ``weight`` (row1 - row0, col1 - col0) float32, the parts of the grid they reach
    (0 elsewhere); none when they reach none of it.

    Only the padded bounding box of each group of detections is blurred (:func:`_radar_groups`): the blur of
    the whole window, bit for bit, since a cell's sum holds the same terms and the rest add zeros.
    """
    pad = int(RADAR_TRUNCATE * sigma_cells + 0.5) if sigma_cells > 0 else 0
    ix, iy = spec.world_to_cell(hits)
    ix, iy = ix + pad, iy + pad
    height, width = spec.height + 2 * pad, spec.width + 2 * pad
    inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    ix, iy = ix[inside], iy[inside]
    boxes = []
    # Groups apart by more than 2 pads would do; 4 also blurs nearby groups together, one scipy call each.
    for group in (_radar_groups(ix, iy, 4 * pad) if pad else [np.arange(len(ix))]):
        if group.size == 0:
            continue
        gx, gy = ix[group], iy[group]
        r0, r1 = max(int(gy.min()) - pad, 0), min(int(gy.max()) + pad + 1, height)
        c0, c1 = max(int(gx.min()) - pad, 0), min(int(gx.max()) + pad + 1, width)
        counts = np.bincount((gy - r0) * (c1 - c0) + (gx - c0), minlength=(r1 - r0) * (c1 - c0))
        density = counts.reshape(r1 - r0, c1 - c0).astype(np.float32)
        if sigma_cells > 0:
            density = ndimage.gaussian_filter(density, sigma_cells, mode='constant', truncate=RADAR_TRUNCATE)
            density /= np.float32(_gaussian_peak(sigma_cells))
        # the box in the unpadded grid
        g0, g1 = max(r0 - pad, 0), min(r1 - pad, spec.height)
        h0, h1 = max(c0 - pad, 0), min(c1 - pad, spec.width)
        if g0 < g1 and h0 < h1:
            boxes.append((g0, g1, h0, h1,
                          np.minimum(density[g0 + pad - r0:g1 + pad - r0, h0 + pad - c0:h1 + pad - c0], 1.0)))
    return boxes


def _radar_ellipses(spec: GridSpec, hits: NDArray[np.float64], origin: NDArray[np.float64], noise: RadarNoise
                    ) -> list[tuple[int, int, int, int, NDArray[np.float32]]]:
    """Like :func:`_radar_weight`, with each detection (N, 2) spread by its own ellipse (:class:`RadarNoise`)
    about its cell's centre: peak 1 there, summed over detections, capped at 1; one box (none when no ellipse
    reaches the grid)."""
    res = spec.resolution
    if not len(hits):
        return []
    los = spec.to_grid_frame(hits) - spec.to_grid_frame(origin[None, :])          # (N, 2) line of sight
    rng = np.maximum(np.hypot(los[:, 0], los[:, 1]), 1e-9)
    sig_r = np.full(len(rng), noise.range_sigma_m)
    sig_c = rng * noise.azimuth_sigma_rad
    pad = min(int(math.ceil(RADAR_TRUNCATE * float(max(sig_r.max(), sig_c.max())) / res)), max(spec.shape))
    # detections up to the kernel's radius beyond the edge still reach into the grid
    ix, iy = spec.world_to_cell(hits)
    inside = (ix >= -pad) & (ix < spec.width + pad) & (iy >= -pad) & (iy < spec.height + pad)
    if not inside.any():
        return []
    ix, iy, los, rng = ix[inside], iy[inside], los[inside], rng[inside]
    sig_r, sig_c = sig_r[inside], sig_c[inside]
    u = los / rng[:, None]                                                          # unit, grid frame
    r0, r1 = max(int(iy.min()) - pad, 0), min(int(iy.max()) + pad + 1, spec.height)
    c0, c1 = max(int(ix.min()) - pad, 0), min(int(ix.max()) + pad + 1, spec.width)
    off = np.arange(-pad, pad + 1)
    dx, dy = np.meshgrid(off * res, off * res)                                      # (K, K) metres, grid frame
    along = u[:, 0, None, None] * dx + u[:, 1, None, None] * dy                   # (N, K, K)
    across = u[:, 0, None, None] * dy - u[:, 1, None, None] * dx
    w = np.exp(-0.5 * ((along / sig_r[:, None, None]) ** 2 + (across / sig_c[:, None, None]) ** 2))
    w[w < np.exp(-0.5 * RADAR_TRUNCATE ** 2)] = 0.0                                 # the kernel's radius
    rows = iy[:, None, None] + off[None, :, None]
    cols = ix[:, None, None] + off[None, None, :]
    rows, cols = np.broadcast_to(rows, w.shape), np.broadcast_to(cols, w.shape)
    keep = (w > 0) & (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
    flat = (rows[keep] - r0) * (c1 - c0) + (cols[keep] - c0)
    weight = np.bincount(flat, weights=w[keep], minlength=(r1 - r0) * (c1 - c0)).reshape(r1 - r0, c1 - c0)
    return [(r0, r1, c0, c1, np.minimum(weight, 1.0).astype(np.float32))]


# ------------------------------------------------------- moving returns ----

@dataclass(frozen=True)
class MovingReturns:
    """One radar scan's moving returns: where they were and how they move.

    xy : (M, 2) metres in ``map`` at ``stamp_ns``; velocity : (M, 2) m/s in ``map``, the radial velocity
    (ego motion removed) along the line of sight: the part of the motion the radar measures, all of it
    for traffic ahead and behind on the same road
    """

    xy: NDArray[np.float64]
    velocity: NDArray[np.float64]
    stamp_ns: int


def moving_returns(targets_xy: NDArray[np.floating], sensor_xy: NDArray[np.floating],
                   radial_mps: NDArray[np.floating], stamp_ns: int,
                   min_speed_mps: float = MOVING_MIN_SPEED_MPS) -> MovingReturns:
    """The returns of one radar scan with ``|radial_mps| >= min_speed_mps``.

    targets_xy : (N, 2) metres in ``map``; sensor_xy : (2,) the radar in ``map``; radial_mps : (N,) m/s,
    + away, ego motion removed
    """
    xy = _as_xy(targets_xy, 'targets_xy')
    v = np.asarray(radial_mps, dtype=np.float64).reshape(-1)
    if v.shape != (len(xy),):
        raise ConfigError(f'radial_mps must have shape ({len(xy)},), got {v.shape}')
    los = xy - _as_origin(sensor_xy)[None, :]
    rng = np.hypot(los[:, 0], los[:, 1])
    keep = np.isfinite(v) & np.all(np.isfinite(xy), axis=1) & (np.abs(v) >= min_speed_mps) & (rng > 1e-6)
    unit = los[keep] / rng[keep, None]
    return MovingReturns(xy[keep], unit * v[keep, None], int(stamp_ns))


#: hits_to_stamp compares at most this many (hit, moving return) pairs at a time.
_HITS_TO_STAMP_CELLS = 1 << 16


def _nearest_mover(hits: NDArray[np.float64], dt_from_radar: NDArray[np.float64], movers: MovingReturns,
                   radius_m: float) -> NDArray[np.intp]:
    """(N,) index of the moving return nearest each hit (N, 2) at the hit's time within ``radius_m``; of equally
    near ones the last (as a scan over the returns that keeps any at least as near as the best so far); -1: none.

    Distances are the float64 steps of ``((hits - (xy + dt·v)) ** 2).sum(axis=1)`` per return, for all returns
    at once (N, M).
    """
    dt = dt_from_radar[:, None]
    ex = hits[:, 0, None] - (dt * movers.velocity[:, 0] + movers.xy[:, 0])
    ey = hits[:, 1, None] - (dt * movers.velocity[:, 1] + movers.xy[:, 1])
    ex *= ex
    ey *= ey
    d2 = ex + ey
    near = d2 <= radius_m * radius_m
    d2[~near] = np.inf
    last = len(movers.xy) - 1 - np.argmin(d2[:, ::-1], axis=1)
    return np.where(near[np.arange(len(hits)), last], last, -1)


def hits_to_stamp(hits_xy: NDArray[np.floating], hit_stamp_ns: int | NDArray[np.integer],
                  movers: MovingReturns | None, t_ns: int, radius_m: float = MOVING_RADIUS_M
                  ) -> NDArray[np.float64]:
    """Hits of moving objects moved to where they are at ``t_ns``: (N, 2) metres in ``map``.

    hits_xy : (N, 2) metres in ``map``, each where its object was at its own time ``hit_stamp_ns``
    (a scalar, or (N,) per point for a sweeping lidar). A hit within ``radius_m`` of a moving radar
    return (that return moved to the hit's time) moves with the nearest one: by ``velocity·(t - t_hit)``.
    Other hits are returned unchanged. So one cycle's evidence shows a moving car once, where it is at
    the cycle's stamp, instead of once per sensor at each sensor's stamp.
    """
    hits = _as_xy(hits_xy, 'hits_xy')
    if movers is None or len(movers.xy) == 0 or len(hits) == 0:
        return hits
    t_hit = np.broadcast_to(np.asarray(hit_stamp_ns, dtype=np.int64), (len(hits),))
    dt_from_radar = (t_hit - int(movers.stamp_ns)).astype(np.float64) * 1e-9          # (N,)
    out = hits.copy()
    which = np.empty(len(hits), dtype=np.intp)
    step = max(1, _HITS_TO_STAMP_CELLS // len(movers.xy))
    for start in range(0, len(hits), step):
        which[start:start + step] = _nearest_mover(hits[start:start + step], dt_from_radar[start:start + step],
                                                   movers, radius_m)
    moved = which >= 0
    dt_to_t = (int(t_ns) - t_hit[moved]).astype(np.float64) * 1e-9
    out[moved] += movers.velocity[which[moved]] * dt_to_t[:, None]
    return out


# ----------------------------------------------------------------- combine ----

def combine(layers: Sequence[tuple[NDArray[np.floating], NDArray[np.bool_]]]
            ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Sum of the layers' log-odds and union of their known masks.

    layers : (logodds, known) pairs of one grid, all (height, width)
    """
    if len(layers) == 0:
        raise ConfigError('combine needs at least one (logodds, known) layer, got none')
    shape = np.shape(layers[0][0])
    total = np.zeros(shape, dtype=np.float32)
    known = np.zeros(shape, dtype=bool)
    for i, (logodds, mask) in enumerate(layers):
        if np.shape(logodds) != shape or np.shape(mask) != shape:
            raise ConfigError(f'layer {i} has shapes {np.shape(logodds)} / {np.shape(mask)}, expected {shape}')
        total += np.asarray(logodds, dtype=np.float32)
        known |= np.asarray(mask, dtype=bool)
    return total, known
