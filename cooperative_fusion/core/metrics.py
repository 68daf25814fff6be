"""Evaluation metrics of an occupancy grid against ground truth.

Inputs per frame (one matching stamp): a grid of OccupancyGrid percent cells
(-1 unknown) on the lattice of the truth grid, the true objects as
:class:`Box` values, the true occupancy (default: the boxes' footprints), an
optional region of interest (ROI) and the platoon vehicles' sensor positions.
A cell is *occupied* when p >= 0.65 (cell >= 65), *free* when 0 <= p <= 0.35
(0 <= cell <= 35), *observed* when cell >= 0. A box's *footprint* is the set
of cells whose centre lies inside the box (at least the cell holding its
centre); *dilated by one cell* adds the 8-neighbours.

Definitions (counts are summed over frames, then divided; a ratio with a zero
denominator is reported as None):

- ``object_recall``: of the true objects inside the ROI (the centre's cell is
  in the ROI), the fraction with at least 3 occupied cells inside their
  footprint dilated by one cell.
- ``see_through_recall``: the same, restricted to objects occluded from a
  platoon vehicle, per vehicle, and ``"mean"`` pooled over all occluded
  (object, vehicle, time) triples. An object is occluded from vehicle v when
  at least 90 % of the sample points on its outline (8 per side) are hidden
  from v's sensor position: the 2-D segment from the sensor to the sample
  crosses another box (:func:`occluded_from`). Boxes that contain the sensor
  (v's own body) neither occlude nor count as targets for v.
- ``occupied_precision``: of the occupied cells in the ROI, the fraction that
  lie in the true occupancy dilated by one cell.
- ``free_accuracy``: of the truly free cells (not truly occupied) in the ROI
  that were observed, the fraction marked free.
- ``occupancy_iou``: over the observed cells in the ROI, |P ∩ T| / |P ∪ T|
  with P the occupied cells and T the truly occupied cells.
- ``see_through_object_recall``: per vehicle (and ``"mean"`` pooled), of the
  (frame, object) pairs with the object hidden from the vehicle in 3-D, the
  fraction with at least 3 occupied cells inside the object's own footprint (not
  dilated). Hidden in 3-D: at least 90 % of the sight lines from the sensor (at
  ``SENSOR_HEIGHT_M``) to the object's outline samples at 3 heights up to its top
  pass through another box below that box's height (:func:`hidden_from`).
- ``occupied_precision_away_from_platoon``: ``occupied_precision`` over the
  occupied cells in the ROI that are not on a platoon member's box (dilated by
  one cell): where the platoon's own bodies cannot make it look good.
- ``moving_position_error_m``: for each (frame, moving traffic object: faster
  than ``MOVING_SPEED_MPS``, not a platoon member) with occupied cells drawn for
  it (within ``DRAWN_RADIUS_M`` of its box and nearer to it than to any other
  box), the mean distance of those cells from its box (0 inside); the median over
  the pairs, metres. Cells further than that from every box are clutter and
  count against ``occupied_precision_away_from_platoon`` instead.

The same metrics of each vehicle's own (ego-only) grid are the baselines:
keys prefixed ``ego_only_``, each an object keyed by vehicle id; for
``ego_only_see_through_recall`` the objects are those occluded from that same
vehicle, plus ``"mean"`` pooled over vehicles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .errors import ConfigError
from .grid import YAW_TOLERANCE_RAD, GridSpec, resample_nearest

OCCUPIED_PERCENT = 65
FREE_PERCENT = 35
MIN_HIT_CELLS = 3
OCCLUDED_FRACTION = 0.9
SAMPLES_PER_SIDE = 8
#: Height of the sensors above the road for 3-D occlusion, metres (roof lidar of the simulated cars: 1.9 m,
#: the truck's cab lidar: 2.3 m).
SENSOR_HEIGHT_M = 2.0
#: Sample heights on a target's outline, as fractions of its height (its top included).
SAMPLE_HEIGHTS = (0.25, 0.6, 1.0)
#: A traffic object faster than this is moving, m/s.
MOVING_SPEED_MPS = 0.5
#: Occupied cells within this of a box (and nearest to it) are drawn for it, metres.
DRAWN_RADIUS_M = 3.0
_DILATE = np.ones((3, 3), dtype=bool)

REPORT_KEYS = ('object_recall', 'see_through_recall', 'occupied_precision', 'free_accuracy', 'occupancy_iou')
#: Keys of the fused grid only (no ego-only baseline).
FUSED_ONLY_KEYS = ('see_through_object_recall', 'occupied_precision_away_from_platoon', 'moving_position_error_m')


@dataclass(frozen=True)
class Box:
    """A true object's footprint: centre (metres, ``map``), length along its heading, width, yaw (rad);
    height (metres, standing on the ground; 0 = unknown) and velocity vx, vy (m/s, ``map``)."""

    center_x: float
    center_y: float
    length: float
    width: float
    yaw: float = 0.0
    id: str = ''
    kind: str = ''
    height: float = 0.0
    vx: float = 0.0
    vy: float = 0.0

    def __post_init__(self) -> None:
        if not (self.length > 0 and self.width > 0 and math.isfinite(self.length) and math.isfinite(self.width)):
            raise ConfigError(f'box {self.id!r} needs a positive finite size, got {self.length} x {self.width}')
        if not all(math.isfinite(v) for v in (self.center_x, self.center_y, self.yaw)):
            raise ConfigError(f'box {self.id!r} has a non-finite pose ({self.center_x}, {self.center_y}, {self.yaw})')

    def to_local(self, xy: NDArray[np.floating]) -> NDArray[np.float64]:
        """Points (..., 2) in the box frame (x along the heading)."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        d = np.asarray(xy, dtype=np.float64) - (self.center_x, self.center_y)
        return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], axis=-1)

    def contains(self, xy: NDArray[np.floating]) -> NDArray[np.bool_]:
        """Mask (...,) of points (..., 2) inside the box (boundary included)."""
        loc = self.to_local(xy)
        return (np.abs(loc[..., 0]) <= 0.5 * self.length) & (np.abs(loc[..., 1]) <= 0.5 * self.width)

    def corners(self) -> NDArray[np.float64]:
        """(4, 2) metres, counter-clockwise from rear-right."""
        hl, hw = 0.5 * self.length, 0.5 * self.width
        return self._from_local(np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw]]))

    def outline_samples(self, per_side: int = SAMPLES_PER_SIDE) -> NDArray[np.float64]:
        """(4·per_side, 2) points evenly spaced along the outline (corners included), metres."""
        hl, hw = 0.5 * self.length, 0.5 * self.width
        c = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw], [-hl, -hw]])
        f = np.arange(per_side)[None, :, None] / per_side
        local = (c[:-1, None, :] + (c[1:] - c[:-1])[:, None, :] * f).reshape(-1, 2)
        return self._from_local(local)

    def _from_local(self, local: NDArray[np.float64]) -> NDArray[np.float64]:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return local @ np.array([[c, -s], [s, c]]).T + (self.center_x, self.center_y)


def segments_blocked(origin_xy: NDArray[np.floating], ends_xy: NDArray[np.floating],
                     boxes: Sequence[Box]) -> NDArray[np.bool_]:
    """(S, B) mask: does the segment origin -> ends[s] cross the interior of box b? Slab test in box frames."""
    t_in, t_out = segment_spans(origin_xy, ends_xy, boxes)
    return t_in < t_out - 1e-9


def segment_spans(origin_xy: NDArray[np.floating], ends_xy: NDArray[np.floating],
                  boxes: Sequence[Box]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(S, B) parameters t_in, t_out in [0, 1] where the segment origin -> ends[s] enters and leaves box b's
    footprint (no crossing: t_in >= t_out)."""
    ends = np.asarray(ends_xy, dtype=np.float64).reshape(-1, 2)
    if not boxes:
        return np.zeros((len(ends), 0)), np.zeros((len(ends), 0))
    cx = np.array([b.center_x for b in boxes])
    cy = np.array([b.center_y for b in boxes])
    cs, sn = np.cos([b.yaw for b in boxes]), np.sin([b.yaw for b in boxes])
    half = np.stack([[0.5 * b.length for b in boxes], [0.5 * b.width for b in boxes]])   # (2, B)
    o = np.asarray(origin_xy, dtype=np.float64)
    # Origin and ends in each box's frame: (B,) and (S, B).
    ox, oy = o[0] - cx, o[1] - cy
    p0 = np.stack([cs * ox + sn * oy, -sn * ox + cs * oy])                                # (2, B)
    ex, ey = ends[:, 0:1] - cx, ends[:, 1:2] - cy
    p1 = np.stack([cs * ex + sn * ey, -sn * ex + cs * ey])                                # (2, S, B)
    d = p1 - p0[:, None, :]
    with np.errstate(divide='ignore', invalid='ignore'):
        ta = (-half[:, None, :] - p0[:, None, :]) / d
        tb = (half[:, None, :] - p0[:, None, :]) / d
    parallel = np.abs(d) < 1e-12
    inside_slab = np.abs(p0)[:, None, :] < half[:, None, :]
    lo = np.where(parallel, np.where(inside_slab, -np.inf, np.inf), np.minimum(ta, tb))
    hi = np.where(parallel, np.where(inside_slab, np.inf, -np.inf), np.maximum(ta, tb))
    t_in = np.maximum(np.maximum(lo[0], lo[1]), 0.0)
    t_out = np.minimum(np.minimum(hi[0], hi[1]), 1.0)
    return t_in, t_out


def hidden_from(sensor_xyz: NDArray[np.floating], boxes: Sequence[Box], targets: NDArray[np.bool_]
                ) -> NDArray[np.bool_]:
    """(B,) which of the boxes flagged in ``targets`` are hidden in 3-D from a sensor at (x, y, z) metres.

    Each target's outline samples (8 per side) at ``SAMPLE_HEIGHTS`` of its height are seen along straight
    lines from the sensor; a line is blocked by another box (not the target, not one containing the sensor)
    when it crosses that box's footprint below the box's height (a height of 0 means unknown: as tall as
    needed). A target is hidden when at least ``OCCLUDED_FRACTION`` of its lines are blocked.
    """
    sensor = np.asarray(sensor_xyz, dtype=np.float64)
    xy, zs = sensor[:2], float(sensor[2])
    out = np.zeros(len(boxes), dtype=bool)
    own = np.array([bool(b.contains(xy)) for b in boxes], dtype=bool)
    occ_index = np.flatnonzero(~own)
    if occ_index.size == 0:
        return out
    occluders = [boxes[i] for i in occ_index]
    top = np.array([b.height if b.height > 0 else np.inf for b in occluders])
    for i in np.flatnonzero(np.asarray(targets, dtype=bool) & ~own):
        b = boxes[i]
        ends = b.outline_samples()                                                      # (P, 2)
        t_in, t_out = segment_spans(xy, ends, occluders)                                # (P, O)
        crosses = (t_in < t_out - 1e-9) & (occ_index != i)[None, :]
        h = b.height if b.height > 0 else zs
        z_end = np.array(SAMPLE_HEIGHTS)[:, None, None] * h                            # (Z, 1, 1)
        # The line's height is linear in t: its lowest point over the crossing is at an end of it.
        t_lo, t_hi = np.clip(t_in, 0.0, 1.0)[None], np.clip(t_out, 0.0, 1.0)[None]
        z_low = zs + (z_end - zs) * np.where(z_end > zs, t_lo, t_hi)                       # (Z, P, O)
        blocked = (crosses[None] & (z_low < top[None, None, :])).any(axis=2)            # (Z, P)
        out[i] = blocked.mean() >= OCCLUDED_FRACTION
    return out


def footprint_window(spec: GridSpec, box: Box, dilate_cells: int = 0
                     ) -> tuple[tuple[slice, slice], NDArray[np.bool_]]:
    """Footprint of one box as (slice into the grid, mask over that slice); the slice may be empty.
    ``footprint_mask(spec, [box], dilate_cells)[sl] == mask``, without a whole-grid array. Any grid yaw."""
    if spec.is_rotated:
        # In the grid's own frame the grid is axis-aligned and the box turned by -yaw.
        u, v = spec.to_grid_frame(np.array([box.center_x, box.center_y])).tolist()
        box = replace(box, center_x=u, center_y=v, yaw=box.yaw - spec.yaw)
        spec = spec.aligned()
    corners = box.corners()
    m = dilate_cells + 1
    (cx_min, cy_min), (cx_max, cy_max) = corners.min(axis=0).tolist(), corners.max(axis=0).tolist()
    res = spec.resolution
    # GridSpec.world_to_cell on python floats (the same double arithmetic).
    x0 = math.floor((cx_min - spec.origin_x) / res) - m
    x1 = math.floor((cx_max - spec.origin_x) / res) + m + 1
    y0 = math.floor((cy_min - spec.origin_y) / res) - m
    y1 = math.floor((cy_max - spec.origin_y) / res) + m + 1
    cx0, cx1 = max(x0, 0), min(x1, spec.width)
    cy0, cy1 = max(y0, 0), min(y1, spec.height)
    if cx0 >= cx1 or cy0 >= cy1:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype=bool)
    if dilate_cells == 0:
        x0, x1, y0, y1 = cx0, cx1, cy0, cy1      # nothing from outside the grid reaches in: the grid's part only
    # Box.contains on the cell centres, by broadcasting a row of x against a column of y.
    dx = spec.origin_x + (np.arange(x0, x1) + 0.5) * spec.resolution - box.center_x
    dy = (spec.origin_y + (np.arange(y0, y1) + 0.5) * spec.resolution - box.center_y)[:, None]
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    mask = (np.abs(c * dx + s * dy) <= 0.5 * box.length) & (np.abs(-s * dx + c * dy) <= 0.5 * box.width)
    cix = math.floor((box.center_x - spec.origin_x) / res)
    ciy = math.floor((box.center_y - spec.origin_y) / res)
    if x0 <= cix < x1 and y0 <= ciy < y1:
        mask[ciy - y0, cix - x0] = True
    if dilate_cells > 0:
        mask = ndimage.binary_dilation(mask, _DILATE, iterations=dilate_cells)
    return (slice(cy0, cy1), slice(cx0, cx1)), mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]


def footprint_mask(spec: GridSpec, boxes: Sequence[Box], dilate_cells: int = 0) -> NDArray[np.bool_]:
    """(height, width) bool: union of the boxes' footprints, dilated by ``dilate_cells`` (8-neighbour)."""
    if dilate_cells < 0:
        raise ConfigError(f'dilate_cells must be >= 0, got {dilate_cells}')
    out = np.zeros(spec.shape, dtype=bool)
    for box in boxes:
        sl, mask = footprint_window(spec, box, dilate_cells)
        out[sl] |= mask
    return out


def overlay(spec: GridSpec, cells: NDArray[np.integer], target: GridSpec, fill: int = -1) -> NDArray[np.int8]:
    """Cells of a grid on ``spec`` copied onto ``target`` (same lattice; a grid of another yaw is
    resampled, nearest cell); cells not covered get ``fill``."""
    cells = np.asarray(cells)
    if cells.shape != spec.shape:
        raise ConfigError(f'grid shape {cells.shape} does not match the spec (height, width) = {spec.shape}')
    if abs(spec.yaw - target.yaw) > YAW_TOLERANCE_RAD:
        return resample_nearest(spec, cells.astype(np.int8, copy=False), target, np.int8(fill))
    dx, dy = target.lattice_offset(spec)
    out = np.full(target.shape, fill, dtype=np.int8)
    x0, x1 = max(dx, 0), min(dx + spec.width, target.width)
    y0, y1 = max(dy, 0), min(dy + spec.height, target.height)
    if x0 < x1 and y0 < y1:
        out[y0:y1, x0:x1] = cells[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return out


@dataclass(frozen=True)
class TruthFrame:
    """Ground truth at one stamp, on the grid ``spec`` every evaluated grid is brought to.

    boxes : the objects to score
    sensors : vehicle id -> (2,) sensor position, metres (for see-through)
    truth_occupied : (height, width) bool; default: the boxes' footprints
    roi : (height, width) bool; default: the whole grid
    """

    spec: GridSpec
    boxes: Sequence[Box]
    sensors: Mapping[str, NDArray[np.floating]] = field(default_factory=dict)
    truth_occupied: NDArray[np.bool_] | None = None
    roi: NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        for name in ('truth_occupied', 'roi'):
            a = getattr(self, name)
            if a is not None and np.shape(a) != self.spec.shape:
                raise ConfigError(f'{name} shape {np.shape(a)} does not match the spec (height, width) '
                                  f'= {self.spec.shape}')

    @cached_property
    def occupied(self) -> NDArray[np.bool_]:
        return (np.asarray(self.truth_occupied, dtype=bool) if self.truth_occupied is not None
                else footprint_mask(self.spec, self.boxes, 0))

    @cached_property
    def occupied_dilated(self) -> NDArray[np.bool_]:
        return ndimage.binary_dilation(self.occupied, _DILATE)

    @cached_property
    def region(self) -> NDArray[np.bool_]:
        return np.ones(self.spec.shape, bool) if self.roi is None else np.asarray(self.roi, dtype=bool)

    @cached_property
    def dilated_boxes(self) -> list[tuple[tuple[slice, slice], NDArray[np.bool_]]]:
        return [footprint_window(self.spec, b, 1) for b in self.boxes]

    @cached_property
    def in_roi(self) -> NDArray[np.bool_]:
        """(B,) boxes whose centre cell is in the ROI."""
        if not self.boxes:
            return np.zeros(0, dtype=bool)
        ix, iy = self.spec.world_to_cell(np.array([[b.center_x, b.center_y] for b in self.boxes]))
        ok = self.spec.in_bounds(ix, iy)
        out = np.zeros(len(self.boxes), dtype=bool)
        out[ok] = self.region[iy[ok], ix[ok]]
        return out

    @cached_property
    def occluded(self) -> dict[str, NDArray[np.bool_]]:
        """vehicle id -> (B,) objects occluded from that vehicle (in the ROI, not containing its sensor)."""
        out = {}
        for vid, xy in self.sensors.items():
            xy = np.asarray(xy, dtype=np.float64)
            own = np.array([bool(b.contains(xy)) for b in self.boxes], dtype=bool)
            occluders = [b for b, o in zip(self.boxes, own) if not o]
            flags = np.zeros(len(self.boxes), dtype=bool)
            if occluders:
                samples = np.stack([b.outline_samples() for b in self.boxes])          # (B, S, 2)
                blocked = segments_blocked(xy, samples.reshape(-1, 2), occluders)
                blocked = blocked.reshape(len(self.boxes), -1, len(occluders))
                # A target never occludes itself.
                occ_index = np.flatnonzero(~own)
                self_hit = occ_index[None, :] == np.arange(len(self.boxes))[:, None]   # (B, O)
                blocked &= ~self_hit[:, None, :]
                flags = blocked.any(axis=2).mean(axis=1) >= OCCLUDED_FRACTION
            out[vid] = flags & ~own & self.in_roi
        return out

    @cached_property
    def hidden(self) -> dict[str, NDArray[np.bool_]]:
        """vehicle id -> (B,) objects hidden from that vehicle in 3-D (in the ROI, not its own box)."""
        out = {}
        for vid, xy in self.sensors.items():
            xyz = np.array([*np.asarray(xy, dtype=np.float64)[:2], SENSOR_HEIGHT_M])
            out[vid] = hidden_from(xyz, self.boxes, self.in_roi)
        return out

    @cached_property
    def platoon_area(self) -> NDArray[np.bool_]:
        """(height, width) bool: the platoon members' boxes (ids of ``sensors``) dilated by one cell."""
        return footprint_mask(self.spec, [b for b in self.boxes if b.id in self.sensors], 1)

    @cached_property
    def own_cells(self) -> list[tuple[tuple[slice, slice], NDArray[np.bool_]]]:
        return [footprint_window(self.spec, b, 0) for b in self.boxes]

    def footprint_hits(self, cells: NDArray[np.integer]) -> NDArray[np.bool_]:
        """(B,) objects with >= 3 occupied cells inside their own footprint (not dilated)."""
        occ = np.asarray(cells) >= OCCUPIED_PERCENT
        return np.array([int(np.count_nonzero(occ[sl][m])) >= MIN_HIT_CELLS for sl, m in self.own_cells],
                        dtype=bool)

    def moving_errors(self, cells: NDArray[np.integer]) -> list[float]:
        """Per moving traffic object in the ROI with occupied cells drawn for it: the mean distance (metres)
        of those cells from its box (see the module doc)."""
        occ = (np.asarray(cells) >= OCCUPIED_PERCENT) & self.region
        moving = [i for i, b in enumerate(self.boxes) if self.in_roi[i] and b.id not in self.sensors
                  and math.hypot(b.vx, b.vy) > MOVING_SPEED_MPS]
        if not moving or not occ.any():
            return []
        iy, ix = np.nonzero(occ)
        xy = self.spec.to_map_frame(np.stack([self.spec.origin_x + (ix + 0.5) * self.spec.resolution,
                                              self.spec.origin_y + (iy + 0.5) * self.spec.resolution], axis=1))
        dist = np.stack([_distance_to_box(b, xy) for b in self.boxes], axis=1)           # (N, B)
        nearest = dist.argmin(axis=1)
        out = []
        for i in moving:
            mine = (nearest == i) & (dist[:, i] <= DRAWN_RADIUS_M)
            if mine.any():
                out.append(float(dist[mine, i].mean()))
        return out

    def hits(self, cells: NDArray[np.integer]) -> NDArray[np.bool_]:
        """(B,) objects with >= 3 occupied cells in their footprint dilated by one cell."""
        occ = np.asarray(cells) >= OCCUPIED_PERCENT
        return np.array([int(np.count_nonzero(occ[sl][m])) >= MIN_HIT_CELLS for sl, m in self.dilated_boxes],
                        dtype=bool)


def _distance_to_box(box: Box, xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """(N,) distances of points (N, 2) from a box's footprint, 0 inside, metres."""
    loc = box.to_local(xy)
    dx = np.maximum(np.abs(loc[:, 0]) - 0.5 * box.length, 0.0)
    dy = np.maximum(np.abs(loc[:, 1]) - 0.5 * box.width, 0.0)
    return np.hypot(dx, dy)


@dataclass
class _Counts:
    objects: int = 0
    objects_hit: int = 0
    occluded: dict[str, int] = field(default_factory=dict)
    occluded_hit: dict[str, int] = field(default_factory=dict)
    occupied: int = 0
    occupied_true: int = 0
    free_observed: int = 0
    free_marked: int = 0
    inter: int = 0
    union: int = 0
    hidden: dict[str, int] = field(default_factory=dict)
    hidden_hit: dict[str, int] = field(default_factory=dict)
    away: int = 0
    away_true: int = 0
    moving_errors: list[float] = field(default_factory=list)

    def ratios(self) -> dict[str, Any]:
        vids = sorted(self.occluded)
        see = {v: _ratio(self.occluded_hit[v], self.occluded[v]) for v in vids}
        see['mean'] = _ratio(sum(self.occluded_hit.values()), sum(self.occluded.values()))
        return {'object_recall': _ratio(self.objects_hit, self.objects),
                'see_through_recall': see,
                'occupied_precision': _ratio(self.occupied_true, self.occupied),
                'free_accuracy': _ratio(self.free_marked, self.free_observed),
                'occupancy_iou': _ratio(self.inter, self.union)}

    def fused_only(self) -> dict[str, Any]:
        vids = sorted(self.hidden)
        see = {v: _ratio(self.hidden_hit[v], self.hidden[v]) for v in vids}
        see['mean'] = _ratio(sum(self.hidden_hit.values()), sum(self.hidden.values()))
        return {'see_through_object_recall': see,
                'occupied_precision_away_from_platoon': _ratio(self.away_true, self.away),
                'moving_position_error_m': (float(np.median(self.moving_errors)) if self.moving_errors else None)}


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


class Accumulator:
    """Sums metric counts over frames for the fused grid and for each vehicle's ego-only grid."""

    def __init__(self) -> None:
        self._fused = _Counts()
        self._ego: dict[str, _Counts] = {}
        self.frames = 0

    def add(self, truth: TruthFrame, cells: NDArray[np.integer], spec: GridSpec | None = None,
            ego_vehicle: str | None = None) -> None:
        """Count one grid at one stamp.

        cells : (height, width) int8 percent (-1 unknown) on ``spec`` (default ``truth.spec``; any
            spec on the same lattice is overlaid onto the truth grid, unseen cells unknown)
        ego_vehicle : None for the fused grid; a vehicle id for that vehicle's ego-only grid
        """
        cells = np.asarray(cells)
        if spec is not None and spec != truth.spec:
            cells = overlay(spec, cells, truth.spec)
        elif cells.shape != truth.spec.shape:
            raise ConfigError(f'grid shape {cells.shape} does not match the truth spec {truth.spec.shape}')
        if ego_vehicle is None:
            c, vids = self._fused, list(truth.sensors)
            self.frames += 1
            self._add_fused_only(c, truth, cells)
        else:
            c, vids = self._ego.setdefault(ego_vehicle, _Counts()), [ego_vehicle]
        roi = truth.region
        observed = (cells >= 0) & roi
        pred = (cells >= OCCUPIED_PERCENT) & roi
        free = observed & (cells <= FREE_PERCENT)
        hits = truth.hits(cells)
        c.objects += int(truth.in_roi.sum())
        c.objects_hit += int((hits & truth.in_roi).sum())
        for vid in vids:
            occl = truth.occluded.get(vid)
            if occl is None:
                raise ConfigError(f'vehicle {vid!r} has no sensor position in the truth frame '
                                  f'(known: {sorted(truth.sensors)})')
            c.occluded[vid] = c.occluded.get(vid, 0) + int(occl.sum())
            c.occluded_hit[vid] = c.occluded_hit.get(vid, 0) + int((hits & occl).sum())
        c.occupied += int(pred.sum())
        c.occupied_true += int((pred & truth.occupied_dilated).sum())
        truly_free = observed & ~truth.occupied
        c.free_observed += int(truly_free.sum())
        c.free_marked += int((truly_free & free).sum())
        c.inter += int((pred & truth.occupied & observed).sum())
        c.union += int(((pred | truth.occupied) & observed).sum())

    @staticmethod
    def _add_fused_only(c: _Counts, truth: TruthFrame, cells: NDArray[np.integer]) -> None:
        hits = truth.footprint_hits(cells)
        for vid, hidden in truth.hidden.items():
            c.hidden[vid] = c.hidden.get(vid, 0) + int(hidden.sum())
            c.hidden_hit[vid] = c.hidden_hit.get(vid, 0) + int((hits & hidden).sum())
        away = (cells >= OCCUPIED_PERCENT) & truth.region & ~truth.platoon_area
        c.away += int(away.sum())
        c.away_true += int((away & truth.occupied_dilated).sum())
        c.moving_errors += truth.moving_errors(cells)

    def report(self) -> dict[str, Any]:
        """The DESIGN.md keys: fused metrics (with ``FUSED_ONLY_KEYS``), then ``ego_only_*`` objects keyed by
        vehicle id (if any)."""
        out = {**self._fused.ratios(), **self._fused.fused_only()}
        if self._ego:
            per = {v: c.ratios() for v, c in sorted(self._ego.items())}
            for key in REPORT_KEYS:
                if key == 'see_through_recall':
                    value: dict[str, Any] = {v: r[key][v] for v, r in per.items()}
                    value['mean'] = _ratio(sum(c.occluded_hit.get(v, 0) for v, c in self._ego.items()),
                                           sum(c.occluded.get(v, 0) for v, c in self._ego.items()))
                else:
                    value = {v: r[key] for v, r in per.items()}
                out[f'ego_only_{key}'] = value
        return out
