"""Obstacle detection on the common grid and multi-object Kalman tracking.

Detections are connected components of occupied cells of the common grid
(``map`` frame, x along the road). Cells under platoon members' footprints are
cleared first, so a platoon vehicle is never taken for an obstacle. Radar
targets near a detection give it a velocity hint. The tracker runs a Kalman
filter per track (constant velocity or constant acceleration), gates by
Mahalanobis distance, assigns with the Hungarian method, confirms a track after
M hits in its first N frames and deletes it after K consecutive misses.

All filter arithmetic is batched over tracks (stacked ``(T, n)`` states and
``(T, n, n)`` covariances); the only Python loop is over the short list of
output tracks when snapshots are built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigError, MessageFormatError, SyncError
from ..grid import GridSpec
from ..morphology import dilate_rect
from ..road import RoadModel

#: Cost given to pairs outside the gate; never chosen unless nothing else fits.
_FORBIDDEN = 1e12


@dataclass(frozen=True)
class OrientedBox:
    """A rectangle in ``map``: centre (metres), length along ``yaw``, width across, yaw (radians)."""

    center_x: float
    center_y: float
    length: float
    width: float
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if not (self.length >= 0 and self.width >= 0):
            raise ConfigError(f'box size must be non-negative, got length={self.length} width={self.width}')

    def dilated(self, margin_m: float) -> 'OrientedBox':
        """The same box grown by ``margin_m`` on every side."""
        return OrientedBox(self.center_x, self.center_y, self.length + 2.0 * margin_m,
                           self.width + 2.0 * margin_m, self.yaw)


@dataclass(frozen=True)
class Detections:
    """Objects found on one grid.

    xy : (N, 2) centroids (or, from ``extract_detections(box_centre=True)``, the centres of the boxes that
        ``length`` and ``width`` span), metres in ``map``
    length, width : (N,) extent along / across the principal axis, metres
    yaw : (N,) principal-axis angle in (-pi/2, pi/2], radians
    cell_count : (N,) occupied cells of each component
    velocity : (N, 2) m/s velocity hint in ``map``; NaN per component where unknown
    """

    xy: NDArray[np.float64]
    length: NDArray[np.float64]
    width: NDArray[np.float64]
    yaw: NDArray[np.float64]
    cell_count: NDArray[np.int64]
    velocity: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    @classmethod
    def empty(cls) -> 'Detections':
        z = np.zeros(0)
        return cls(np.zeros((0, 2)), z, z.copy(), z.copy(), np.zeros(0, np.int64), np.zeros((0, 2)))


def _box_mask(spec: GridSpec, box: OrientedBox) -> tuple[slice, slice, NDArray[np.bool_]] | None:
    """Cells of ``spec`` whose centres lie inside ``box``, computed over the box's bounding window only."""
    if spec.is_rotated:
        u, v = spec.to_grid_frame(np.array([box.center_x, box.center_y])).tolist()
        box, spec = replace(box, center_x=u, center_y=v, yaw=box.yaw - spec.yaw), spec.aligned()
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    hl, hw = 0.5 * box.length, 0.5 * box.width
    ex = abs(c) * hl + abs(s) * hw
    ey = abs(s) * hl + abs(c) * hw
    ix0, iy0 = spec.world_to_cell(np.array([box.center_x - ex, box.center_y - ey]))
    ix1, iy1 = spec.world_to_cell(np.array([box.center_x + ex, box.center_y + ey]))
    ix0, iy0 = max(int(ix0), 0), max(int(iy0), 0)
    ix1, iy1 = min(int(ix1) + 1, spec.width), min(int(iy1) + 1, spec.height)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    xs = spec.origin_x + (np.arange(ix0, ix1) + 0.5) * spec.resolution - box.center_x
    ys = spec.origin_y + (np.arange(iy0, iy1) + 0.5) * spec.resolution - box.center_y
    u = c * xs[None, :] + s * ys[:, None]
    v = -s * xs[None, :] + c * ys[:, None]
    return slice(iy0, iy1), slice(ix0, ix1), (np.abs(u) <= hl) & (np.abs(v) <= hw)


def _in_boxes(offsets: NDArray[np.float64], yaw: NDArray[np.float64], size: NDArray[np.float64],
              grow_m: float) -> NDArray[np.bool_]:
    """(A, K) whether each offset lies in box a, grown by ``grow_m`` on every side.

    offsets : (A, K, 2) points relative to box a's centre, metres; yaw : (A,) box headings, rad;
    size : (A, 2) box length and width, metres.
    """
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    u = c * offsets[..., 0] + s * offsets[..., 1]
    v = -s * offsets[..., 0] + c * offsets[..., 1]
    return (np.abs(u) <= 0.5 * size[:, 0:1] + grow_m) & (np.abs(v) <= 0.5 * size[:, 1:2] + grow_m)


def label_components(occupied: NDArray[np.bool_], reach: int | tuple[int, int] = 0
                     ) -> tuple[NDArray[np.int32], int, int, int]:
    """8-connected components of ``occupied`` (H, W), those at most ``2 * reach`` cells apart merged.

    reach : cells each side, one number or (across rows, along columns): (1, 2) merges components at
        most 2 rows or 4 columns apart.
    Works on the bounding box of the occupied cells grown by ``reach`` (clipped to the grid):
    returns that window's labels (1..n in raster order, 0 elsewhere, as ``ndimage.label`` numbers
    them on the whole grid), n and the window's first row and column.
    """
    reach_r, reach_c = (reach, reach) if isinstance(reach, (int, np.integer)) else reach
    rows = np.flatnonzero(occupied.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), np.int32), 0, 0, 0
    cols = np.flatnonzero(occupied[rows[0]:rows[-1] + 1].any(axis=0))
    r0, c0 = max(int(rows[0]) - reach_r, 0), max(int(cols[0]) - reach_c, 0)
    r1 = min(int(rows[-1]) + reach_r + 1, occupied.shape[0])
    c1 = min(int(cols[-1]) + reach_c + 1, occupied.shape[1])
    window = occupied[r0:r1, c0:c1]
    eight = np.ones((3, 3), dtype=bool)
    if reach_r > 0 or reach_c > 0:
        labels, n = ndimage.label(dilate_rect(window, reach_r, reach_c), structure=eight)
        labels[~window] = 0
    else:
        labels, n = ndimage.label(window, structure=eight)
    return labels, int(n), r0, c0


def extract_detections(cells_percent: NDArray[np.int8], spec: GridSpec, occupied_threshold: int = 65,
                       min_cells: int = 3, exclude_boxes: Sequence[OrientedBox] = (),
                       exclude_margin_m: float = 0.5, max_length_m: float = 25.0,
                       merge_gap_m: float = 0.0, merge_gap_across_m: float | None = None,
                       box_centre: bool = False,
                       road_heading: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None
                       ) -> Detections:
    """Connected components (8-connectivity) of occupied cells, as detections.

    cells_percent : (H, W) int8 OccupancyGrid cells, 0..100, -1 unknown
    spec : geometry of that grid
    occupied_threshold : a cell is occupied when its percent is >= this
    min_cells : smaller components are dropped as noise
    exclude_boxes : platoon footprints (from odometry); their cells, grown by
        ``exclude_margin_m`` metres, are cleared before labelling
    max_length_m : longer components (guard rails, walls: static structure, not
        road users) are dropped
    merge_gap_m : components separated by at most this (rounded down to an even number
        of cells) are one object: the common grid often shows a car as stripes or pieces
        a cell or two apart, each of which would otherwise be tracked with its own noisy
        velocity. The merged object's statistics come from its occupied cells only.
    merge_gap_across_m : the same across the grid's rows (across the road on a grid that follows it);
        None: ``merge_gap_m``. Smaller than ``merge_gap_m``: the pieces of one car lie one behind the
        other, but two cars in adjacent lanes are drawn only 0.6-1.0 m apart, and merged they are one
        object 5 m wide whose centre lies between the lanes.
    box_centre : a detection's position is the centre of the box its length and width span, not the mean
        of its cells. A car on the common grid is mostly its dense rear face (seen by the vehicle behind it)
        with thinner side and front strips: the mean lies up to 1 m behind the middle of the cells, and a
        box of the cells' length centred on it reaches that far behind the car's drawn rear (the gap to
        the vehicle behind reads 1 m short) and short of its front.
    road_heading : the road's heading (radians in ``map``) at points (K, 2); when given, a detection's axes
        are the road's at its cells' mean instead of their principal axes. The cells of a car seen in part
        (a rear face, an L of rear and side) have principal axes 0.3 rad or more off its heading, or across
        it; the box spanned along such axes is wider and longer than the cells, and its extent along the
        road reaches up to 1 m behind them. Traffic drives along the road: its cells' spans along and
        across the road are its extent there, which is what gaps and lanes are measured by.
    Extent and yaw come from the principal axes (PCA) of each component's cell
    centres (or the road's); length and width are the spans along those axes plus one cell.
    """
    cells = np.asarray(cells_percent)
    if cells.shape != spec.shape:
        raise MessageFormatError(f'grid cells have shape {cells.shape}, expected {spec.shape} from the grid spec')
    if not 0 < occupied_threshold <= 100:
        raise ConfigError(f'occupied_threshold must be in 1..100 percent, got {occupied_threshold}')
    if min_cells < 1:
        raise ConfigError(f'min_cells must be >= 1, got {min_cells}')
    occupied = cells >= np.int8(occupied_threshold)          # 1..100: exact in int8
    for box in exclude_boxes:
        hit = _box_mask(spec, box.dilated(exclude_margin_m))
        if hit is not None:
            rows, cols, mask = hit
            occupied[rows, cols] &= ~mask
    if not (0.0 <= merge_gap_m < math.inf):
        raise ConfigError(f'merge_gap_m must be a finite number of metres >= 0, got {merge_gap_m}')
    across = merge_gap_m if merge_gap_across_m is None else merge_gap_across_m
    if not (0.0 <= across < math.inf):
        raise ConfigError(f'merge_gap_across_m must be a finite number of metres >= 0, got {merge_gap_across_m}')
    reach = (int(across / (2.0 * spec.resolution) + 1e-9),           # cells each side: rows, columns
             int(merge_gap_m / (2.0 * spec.resolution) + 1e-9))
    labels, n, row0, col0 = label_components(occupied, reach)
    if n == 0:
        return Detections.empty()
    iy, ix = np.nonzero(labels)
    lab = labels[iy, ix] - 1
    iy, ix = iy + row0, ix + col0
    x = spec.origin_x + (ix + 0.5) * spec.resolution
    y = spec.origin_y + (iy + 0.5) * spec.resolution
    if spec.is_rotated:
        xy = spec.to_map_frame(np.stack([x, y], axis=1))       # cell centres in map
        x, y = xy[:, 0], xy[:, 1]
    count = np.bincount(lab, minlength=n).astype(np.float64)
    mx = np.bincount(lab, x, n) / count
    my = np.bincount(lab, y, n) / count
    dx, dy = x - mx[lab], y - my[lab]
    sxx = np.bincount(lab, dx * dx, n) / count
    syy = np.bincount(lab, dy * dy, n) / count
    sxy = np.bincount(lab, dx * dy, n) / count
    if road_heading is None:
        yaw = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    else:
        heading = np.asarray(road_heading(np.stack([mx, my], axis=1)), dtype=np.float64).reshape(-1)
        if heading.shape != (n,) or not np.all(np.isfinite(heading)):
            raise ConfigError(f'road_heading gave {heading.shape} headings for {n} components (finite expected)')
        yaw = np.pi / 2 - (np.pi / 2 - heading) % np.pi        # the same axis, in (-pi/2, pi/2]
    c, s = np.cos(yaw)[lab], np.sin(yaw)[lab]
    u = c * dx + s * dy
    v = -s * dx + c * dy
    length = np.full(n, -np.inf)
    width = np.full(n, -np.inf)
    np.maximum.at(length, lab, u)
    np.maximum.at(width, lab, v)
    umin = np.full(n, np.inf)
    vmin = np.full(n, np.inf)
    np.minimum.at(umin, lab, u)
    np.minimum.at(vmin, lab, v)
    if box_centre:
        # The spans' midpoints (u, v in the principal frame, about the mean) moved back into map.
        mu, mv = 0.5 * (length + umin), 0.5 * (width + vmin)
        cy, sy = np.cos(yaw), np.sin(yaw)
        mx, my = mx + cy * mu - sy * mv, my + sy * mu + cy * mv
    length = length - umin + spec.resolution
    width = width - vmin + spec.resolution
    keep = (count >= min_cells) & (length <= max_length_m)
    return Detections(xy=np.stack([mx, my], axis=1)[keep], length=length[keep], width=width[keep],
                      yaw=yaw[keep], cell_count=count[keep].astype(np.int64),
                      velocity=np.full((int(keep.sum()), 2), np.nan))


def associate_radar(detections: Detections, radar_xyv: NDArray[np.floating], sensor_xy: NDArray[np.floating],
                    radius_m: float = 2.0, max_los_angle_deg: float = 25.0,
                    road_heading_rad: float | NDArray[np.floating] = 0.0) -> Detections:
    """Attach a velocity hint from radar targets to nearby detections.

    radar_xyv : (M, 3) map-frame target x, y (metres) and radial velocity
        (m/s, + away from the sensor, ego-motion removed)
    sensor_xy : (2,) or (M, 2) position of the radar that saw each target, metres in ``map``
    A radial velocity is the projection of the target's velocity on the line of
    sight. Assuming the target moves along the road (heading
    ``road_heading_rad``), its along-road speed is ``v_r / cos(angle)`` between
    line of sight and road; this is only trusted where that angle is below
    ``max_los_angle_deg`` (the division amplifies noise by 1/cos). Each target
    goes to the nearest detection within ``radius_m``; a detection's hint is
    the mean over its targets, expressed as ``(vx, vy)`` along the road. The
    across-road component is not observable this way and is left NaN.
    ``road_heading_rad`` may also be (M,), the road's heading at each target (a curved road).
    """
    radar = np.asarray(radar_xyv, dtype=np.float64)
    if radar.ndim != 2 or radar.shape[1] != 3:
        raise MessageFormatError(f'radar_xyv must have shape (M, 3), got {radar.shape}')
    sensor = np.broadcast_to(np.asarray(sensor_xy, dtype=np.float64), (radar.shape[0], 2))
    n = len(detections)
    if n == 0 or radar.shape[0] == 0:
        return detections
    finite = np.all(np.isfinite(radar), axis=1) & np.all(np.isfinite(sensor), axis=1)
    per_target = np.ndim(road_heading_rad) > 0
    if per_target:
        heading = np.broadcast_to(np.asarray(road_heading_rad, dtype=np.float64), (radar.shape[0],))
        finite &= np.isfinite(heading)
        heading = heading[finite]
    radar, sensor = radar[finite], sensor[finite]
    if radar.shape[0] == 0:
        return detections
    los = radar[:, :2] - sensor
    rng = np.linalg.norm(los, axis=1)
    if per_target:
        road_m = np.column_stack([np.cos(heading), np.sin(heading)])
        cos_angle = np.divide((los * road_m).sum(axis=1), rng, out=np.zeros_like(rng), where=rng > 1e-6)
    else:
        road = np.array([math.cos(road_heading_rad), math.sin(road_heading_rad)])
        cos_angle = np.divide(los @ road, rng, out=np.zeros_like(rng), where=rng > 1e-6)
    usable = np.abs(cos_angle) >= math.cos(math.radians(max_los_angle_deg))
    d2 = ((radar[:, None, :2] - detections.xy[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argmin(d2, axis=1)
    usable &= d2[np.arange(radar.shape[0]), nearest] <= radius_m ** 2
    if not usable.any():
        return detections
    along = radar[usable, 2] / cos_angle[usable]
    idx = nearest[usable]
    cnt = np.bincount(idx, minlength=n)
    mean_along = np.bincount(idx, along, n) / np.maximum(cnt, 1)
    velocity = detections.velocity.copy()
    has = cnt > 0
    if per_target:
        # Each target's speed along the road where it is; a detection's hint is their mean vector.
        vec = along[:, None] * road_m[usable]
        velocity[has, 0] = (np.bincount(idx, vec[:, 0], n) / np.maximum(cnt, 1))[has]
        velocity[has, 1] = (np.bincount(idx, vec[:, 1], n) / np.maximum(cnt, 1))[has]
        return Detections(detections.xy, detections.length, detections.width, detections.yaw,
                          detections.cell_count, velocity)
    velocity[has, 0] = mean_along[has] * road[0]
    # Across-road: only known when the road is not along x; keep NaN on a road along x.
    if abs(road[1]) > 1e-9:
        velocity[has, 1] = mean_along[has] * road[1]
    return Detections(detections.xy, detections.length, detections.width, detections.yaw,
                      detections.cell_count, velocity)


def radar_to_stamp(radar_xyv: NDArray[np.floating], sensor_xy: NDArray[np.floating], dt_s: float,
                   max_los_angle_deg: float = 25.0,
                   road_heading_rad: float = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Radar targets moved ``dt_s`` seconds later (earlier if negative) along the road at their speed.

    radar_xyv : (M, 3) map-frame x, y (metres) and radial velocity (m/s, + away, ego-motion removed)
    sensor_xy : (2,) or (M, 2) where the radar was when it saw them, metres in ``map``
    Targets on a straight road (heading ``road_heading_rad``) move along it at
    ``v_r / cos(angle)`` (see :func:`associate_radar`); only targets whose line of
    sight is within ``max_los_angle_deg`` of the road have a known speed, the
    others are left out (:func:`associate_radar` would not use them either). Each
    sensor position moves with its target, so line of sight, angle and the speed
    :func:`associate_radar` derives stay those that were measured. Returns the
    moved (K, 3) targets and (K, 2) sensor positions, K <= M.
    """
    radar = np.asarray(radar_xyv, dtype=np.float64)
    if radar.ndim != 2 or radar.shape[1] != 3:
        raise MessageFormatError(f'radar_xyv must have shape (M, 3), got {radar.shape}')
    if not math.isfinite(dt_s):
        raise ConfigError(f'dt_s must be a finite number of seconds, got {dt_s!r}')
    sensor = np.broadcast_to(np.asarray(sensor_xy, dtype=np.float64), (radar.shape[0], 2))
    los = radar[:, :2] - sensor
    rng = np.linalg.norm(los, axis=1)
    road = np.array([math.cos(road_heading_rad), math.sin(road_heading_rad)])
    with np.errstate(invalid='ignore'):
        cos_angle = np.divide(los @ road, rng, out=np.zeros_like(rng), where=rng > 1e-6)
        usable = (np.all(np.isfinite(radar), axis=1) & np.all(np.isfinite(sensor), axis=1)
                  & (np.abs(cos_angle) >= math.cos(math.radians(max_los_angle_deg))))
    shift = (radar[usable, 2] / cos_angle[usable] * dt_s)[:, None] * road[None, :]
    out = radar[usable].copy()
    out[:, :2] += shift
    return out, sensor[usable] + shift


class MotionModel(Enum):
    """Kalman motion model: constant velocity or constant acceleration."""

    CV = 'cv'
    CA = 'ca'


@dataclass(frozen=True)
class TrackerConfig:
    """Multi-object tracker settings.

    process_noise_accel : CV: std of the white acceleration (m/s^2);
        CA: std of the white jerk (m/s^3)
    meas_noise_m : std of a detection centroid, metres
    meas_noise_vel_mps : std of a velocity hint, m/s
    gate_chi2 : Mahalanobis gate on the position innovation (2 dof; 9.21 = 99 %)
    confirm_hits, confirm_window : a track is confirmed after that many hits
        within its first ``confirm_window`` frames, else it is dropped
    max_misses : a confirmed track is deleted after this many consecutive misses
    init_velocity_std_mps, init_accel_std_mps2 : prior std of a new track's velocity / acceleration
    size_smoothing : weight of a new detection's extent in the track's size (0..1)
    spawn_radius_m : a new track without a velocity hint within this of a confirmed track starts at that
        track's velocity, not at rest (its prior std stays ``init_velocity_std_mps``): on the common grid a
        car is often seen in pieces (rear face, side, front), and a new piece moves with the car; from rest
        it takes seconds of detections to reach the car's speed and meanwhile closes on whatever is behind
        it. 0: every new track starts at rest
    merge_tracks : a detection whose box (grown by ``meas_noise_m``) holds the predicted positions of several
        tracks is the pieces of one object seen whole: the track with the most hits takes it, moved onto
        its centroid with its velocity kept (the jump from a piece's centre to the whole's is a change of
        the point measured, not motion); the other tracks coast at their own velocity, left out of
        :meth:`tracks` (the object is the whole's track), and take their pieces again when it splits (or
        end after ``max_misses``). Else a front piece's track that
        takes the whole car reads the 1-2 m slide back as a speed 2-3 m/s too low for seconds. The same
        re-anchoring when a track's box holds another detection besides its own (split into pieces again)
    extent_noise : in the Kalman update, a detection whose extent (along map x, y) differs from its track's
        adds the centroid shift that difference allows to its measurement noise: a variance of
        ``(difference)^2 / 12`` per axis (the visible part's centroid anywhere in a band of that width).
        On the common grid a car is seen as its rear face (2 x 1 m) in one grid and whole (5 x 2 m) in the
        next; its centroid moves 1-2 m without the car moving, which a 0.3 m centroid noise takes for
        motion (a jump in speed, with a speed std that stays small). The gate keeps ``meas_noise_m``: with
        the wider noise there too, the scenario set got more false warnings (docs/twin.md). False: the
        centroid noise is ``meas_noise_m`` alone
    """

    model: MotionModel = MotionModel.CV
    process_noise_accel: float = 1.0
    meas_noise_m: float = 0.3
    meas_noise_vel_mps: float = 1.0
    gate_chi2: float = 9.21
    confirm_hits: int = 3
    confirm_window: int = 5
    max_misses: int = 5
    init_velocity_std_mps: float = 10.0
    init_accel_std_mps2: float = 3.0
    size_smoothing: float = 0.3
    spawn_radius_m: float = 0.0
    merge_tracks: bool = False
    extent_noise: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, MotionModel):
            raise ConfigError(f'model must be a MotionModel, got {self.model!r}')
        for name in ('process_noise_accel', 'meas_noise_m', 'meas_noise_vel_mps', 'gate_chi2',
                     'init_velocity_std_mps', 'init_accel_std_mps2'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f'{name} must be a positive finite number, got {value!r}')
        if not 1 <= self.confirm_hits <= self.confirm_window:
            raise ConfigError(f'confirm_hits must be in 1..confirm_window ({self.confirm_window}), '
                              f'got {self.confirm_hits}')
        if self.max_misses < 1:
            raise ConfigError(f'max_misses must be >= 1, got {self.max_misses}')
        if not 0.0 <= self.size_smoothing <= 1.0:
            raise ConfigError(f'size_smoothing must be in [0, 1], got {self.size_smoothing}')
        if not (0.0 <= self.spawn_radius_m < math.inf):
            raise ConfigError(f'spawn_radius_m must be a finite number of metres >= 0, got {self.spawn_radius_m!r}')

    @property
    def state_dim(self) -> int:
        return 4 if self.model is MotionModel.CV else 6


@dataclass(frozen=True)
class Track:
    """Snapshot of one track.

    state : (4,) x, y, vx, vy or (6,) x, y, vx, vy, ax, ay; metres, m/s, m/s^2 in ``map``
    covariance : (n, n) state covariance
    age : frames since birth (including the birth frame); hits, misses : counts
        (misses: consecutive); length, width : metres; yaw : radians
    """

    track_id: int
    state: NDArray[np.float64]
    covariance: NDArray[np.float64]
    age: int
    hits: int
    misses: int
    length: float
    width: float
    yaw: float
    confirmed: bool
    stamp_ns: int = 0
    model: MotionModel = field(default=MotionModel.CV)

    @property
    def x(self) -> float:
        return float(self.state[0])

    @property
    def y(self) -> float:
        return float(self.state[1])

    @property
    def vx(self) -> float:
        return float(self.state[2])

    @property
    def vy(self) -> float:
        return float(self.state[3])

    @property
    def ax(self) -> float:
        return float(self.state[4]) if self.state.shape[0] > 4 else 0.0

    @property
    def ay(self) -> float:
        return float(self.state[5]) if self.state.shape[0] > 4 else 0.0

    @property
    def position_std_m(self) -> float:
        """sqrt of the mean position variance, metres."""
        return float(math.sqrt(max(0.5 * (self.covariance[0, 0] + self.covariance[1, 1]), 0.0)))


def _model_matrices(cfg: TrackerConfig, dt: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Transition F and process noise Q for state order (x, y, vx, vy[, ax, ay])."""
    if cfg.model is MotionModel.CV:
        f1 = np.array([[1.0, dt], [0.0, 1.0]])
        g = np.array([0.5 * dt * dt, dt])
    else:
        f1 = np.array([[1.0, dt, 0.5 * dt * dt], [0.0, 1.0, dt], [0.0, 0.0, 1.0]])
        g = np.array([dt ** 3 / 6.0, 0.5 * dt * dt, dt])
    q1 = cfg.process_noise_accel ** 2 * np.outer(g, g)
    eye2 = np.eye(2)
    return np.kron(f1, eye2), np.kron(q1, eye2)


def _along_road(x: NDArray[np.float64], road: RoadModel, dt: float
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One CV/CA step of (T, n) map states in ``road``'s coordinates: speed and acceleration along and
    across the road are kept, so a car following its lane on an arc stays in it (a map-frame CV step goes
    along the tangent, and the filter's velocity then lags the turn: about 1-2 m towards the outside of an
    R = 500 m curve at 27 m/s). Returns the new states and (T, n, n) Jacobians that turn the velocity (and
    acceleration) blocks with the road's heading."""
    n = x.shape[1]
    s, d = road.to_road(x[:, :2])
    h0 = road.heading_at(s)
    c0, s0 = np.cos(h0), np.sin(h0)
    v_s, v_d = c0 * x[:, 2] + s0 * x[:, 3], -s0 * x[:, 2] + c0 * x[:, 3]
    a_s, a_d = ((c0 * x[:, 4] + s0 * x[:, 5], -s0 * x[:, 4] + c0 * x[:, 5]) if n == 6
                else (np.zeros_like(s), np.zeros_like(s)))
    # Arc length advances faster than the speed inside the curve (offset d to the left, curvature + left).
    stretch = 1.0 / np.maximum(1.0 - road.curvature * d, 0.1)
    px, py, h1 = road.to_map(s + (v_s * dt + 0.5 * a_s * dt * dt) * stretch, d + v_d * dt + 0.5 * a_d * dt * dt)
    v_s, v_d = v_s + a_s * dt, v_d + a_d * dt
    c1, s1 = np.cos(h1), np.sin(h1)
    out = np.empty_like(x)
    out[:, 0], out[:, 1] = px, py
    out[:, 2], out[:, 3] = c1 * v_s - s1 * v_d, s1 * v_s + c1 * v_d
    if n == 6:
        out[:, 4], out[:, 5] = c1 * a_s - s1 * a_d, s1 * a_s + c1 * a_d
    turn = np.broadcast_to(np.eye(n), (x.shape[0], n, n)).copy()
    dh = h1 - h0
    rot = np.stack([np.stack([np.cos(dh), -np.sin(dh)], -1), np.stack([np.sin(dh), np.cos(dh)], -1)], -2)
    for k in range(2, n, 2):
        turn[:, k:k + 2, k:k + 2] = rot
    return out, turn


def _as_xy(name: str, array: NDArray[np.floating] | None, n: int | None = None,
           allow_nan: bool = False) -> NDArray[np.float64]:
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 1 and a.shape[0] == 0:
        a = a.reshape(0, 2)
    if a.ndim != 2 or a.shape[1] != 2:
        raise MessageFormatError(f'{name} must have shape (N, 2), got {a.shape}')
    if n is not None and a.shape[0] != n:
        raise MessageFormatError(f'{name} has {a.shape[0]} rows, expected {n} (one per detection)')
    bad = ~np.isfinite(a) if not allow_nan else np.isinf(a)
    if bad.any():
        raise MessageFormatError(f'{name} holds {int(bad.any(axis=1).sum())} non-finite rows')
    return a


def _extent_noise(track_size: NDArray[np.float64], track_yaw: NDArray[np.float64],
                  det_size: NDArray[np.float64], det_yaw: NDArray[np.float64]) -> NDArray[np.float64]:
    """(A, 2, 2) centroid covariance, m^2, of A track-detection pairs, from the difference of the extents along
    map x and y of the track's box (A, 2 length, width; (A,) yaw) and the detection's (A, 2; (A,)): diagonal
    ``(difference)^2 / 12`` (see ``TrackerConfig.extent_noise``). A track without a size (0) adds nothing."""
    def extents(size: NDArray[np.float64], yaw: NDArray[np.float64]) -> NDArray[np.float64]:
        c, s = np.abs(np.cos(yaw)), np.abs(np.sin(yaw))
        return np.stack([c * size[:, 0] + s * size[:, 1], s * size[:, 0] + c * size[:, 1]], axis=1)

    et, ed = extents(track_size, track_yaw), extents(det_size, det_yaw)
    diff = np.abs(et - ed)                                                          # (A, 2)
    diff[~(track_size > 0).all(axis=1)] = 0.0
    out = np.zeros(diff.shape + (2,))
    out[..., 0, 0], out[..., 1, 1] = diff[..., 0] ** 2 / 12.0, diff[..., 1] ** 2 / 12.0
    return out


class MultiObjectTracker:
    """Kalman multi-object tracker over map-frame detections (see module doc)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        n = self.config.state_dim
        self._x = np.zeros((0, n))
        self._p = np.zeros((0, n, n))
        self._ids = np.zeros(0, np.int64)
        self._age = np.zeros(0, np.int64)
        self._hits = np.zeros(0, np.int64)
        self._misses = np.zeros(0, np.int64)
        self._confirmed = np.zeros(0, bool)
        self._inside = np.zeros(0, bool)      # coasting inside an object another track took whole (not output)
        self._size = np.zeros((0, 2))
        self._yaw = np.zeros(0)
        self._next_id = 1
        self._stamp_ns: int | None = None

    @property
    def stamp_ns(self) -> int | None:
        """Stamp of the last update, or None before the first."""
        return self._stamp_ns

    def predict_to(self, stamp_ns: int, road: RoadModel | None = None) -> None:
        """Propagate every track to ``stamp_ns`` (common time, ns). Raises SyncError if it goes back in time.

        On a curved ``road`` the motion model runs in its coordinates (:func:`_along_road`): a car
        keeping its lane turns with the road instead of leaving it along its tangent.
        """
        stamp_ns = int(stamp_ns)
        if self._stamp_ns is not None:
            if stamp_ns < self._stamp_ns:
                raise SyncError(f'tracker stamp {stamp_ns} ns is before the last update {self._stamp_ns} ns')
            dt = (stamp_ns - self._stamp_ns) * 1e-9
            if dt > 0 and self._x.shape[0]:
                f, q = _model_matrices(self.config, dt)
                p = f @ self._p @ f.T + q
                if road is not None and road.curvature != 0.0:
                    self._x, turn = _along_road(self._x, road, dt)
                    p = turn @ p @ np.transpose(turn, (0, 2, 1))
                else:
                    self._x = self._x @ f.T
                self._p = p
        self._stamp_ns = stamp_ns

    def update(self, detections_xy: NDArray[np.floating], stamp_ns: int,
               velocities: NDArray[np.floating] | None = None,
               sizes: NDArray[np.floating] | None = None,
               yaws: NDArray[np.floating] | None = None) -> list[Track]:
        """One tracking cycle; returns the confirmed tracks.

        detections_xy : (N, 2) centroids, metres in ``map``
        stamp_ns : common time of the grid, ns (non-decreasing)
        velocities : (N, 2) m/s velocity hints, NaN per component where unknown
        sizes : (N, 2) length, width in metres; yaws : (N,) radians
        """
        cfg = self.config
        z = _as_xy('detections_xy', detections_xy)
        nd = z.shape[0]
        vel = _as_xy('velocities', velocities, nd, allow_nan=True) if velocities is not None else None
        size = _as_xy('sizes', sizes, nd) if sizes is not None else None
        yaw = np.asarray(yaws, dtype=np.float64).reshape(-1) if yaws is not None else None
        if yaw is not None and yaw.shape[0] != nd:
            raise MessageFormatError(f'yaws has {yaw.shape[0]} entries, expected {nd}')
        self.predict_to(stamp_ns)

        nt = self._x.shape[0]
        r = cfg.meas_noise_m ** 2 * np.eye(2)
        rows = cols = np.zeros(0, np.int64)
        if nt and nd:
            s = self._p[:, :2, :2] + r
            s_inv = np.linalg.inv(s)
            d = z[None, :, :] - self._x[:, None, :2]
            maha = np.einsum('tni,tij,tnj->tn', d, s_inv, d)
            # Negative log-likelihood, not the Mahalanobis distance alone: that one favours the most
            # uncertain track, so a young fragment track of an object takes the detection of the
            # settled track beside it (which then coasts and dies) and reads its jump as a speed change.
            log_det = np.log(np.linalg.det(s))[:, None]
            cost = np.where(maha <= cfg.gate_chi2, maha + log_det - log_det.min(), _FORBIDDEN)
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < _FORBIDDEN
            rows, cols = rows[ok], cols[ok]
        merged = np.zeros(nt, bool)
        if rows.size and cfg.merge_tracks and size is not None:
            rows, merged, absorbed = self._merge_covered(rows, cols, z, size, yaw)
            self._inside |= absorbed
        if rows.size:
            whole = merged[rows]
            if whole.any():
                # Re-anchored on the whole object: position onto the centroid, velocity kept.
                self._x[rows[whole], :2] = z[cols[whole]]
                self._p[rows[whole], :2, :] = 0.0
                self._p[rows[whole], :, :2] = 0.0
                self._p[rows[whole], 0, 0] = self._p[rows[whole], 1, 1] = cfg.meas_noise_m ** 2
            upd = ~whole
            extra = None
            if cfg.extent_noise and size is not None:
                ru, cu = rows[upd], cols[upd]
                extra = _extent_noise(self._size[ru], self._yaw[ru], size[cu],
                                      yaw[cu] if yaw is not None else np.zeros(len(cu)))
            self._kalman_update(rows[upd], z[cols[upd]], vel[cols[upd]] if vel is not None else None, extra)
            if size is not None:
                a = cfg.size_smoothing
                self._size[rows] = (1.0 - a) * self._size[rows] + a * size[cols]
            if yaw is not None:
                self._yaw[rows] = yaw[cols]

        assigned = np.zeros(nt, bool)
        assigned[rows] = True
        self._age += 1
        self._hits += assigned
        self._misses = np.where(assigned, 0, self._misses + 1)
        self._confirmed |= (~self._confirmed) & (self._hits >= cfg.confirm_hits) & (self._age <= cfg.confirm_window)
        hopeless = (~self._confirmed) & (self._hits + (cfg.confirm_window - self._age) < cfg.confirm_hits)
        self._inside &= ~assigned
        dead = (self._confirmed & (self._misses >= cfg.max_misses)) | hopeless
        if dead.any():
            self._keep(~dead)

        new = np.ones(nd, bool)
        new[cols] = False
        if new.any():
            self._birth(z[new], None if vel is None else vel[new], None if size is None else size[new],
                        None if yaw is None else yaw[new])
        return self.tracks()

    def tracks(self, include_tentative: bool = False) -> list[Track]:
        """Snapshots of the current tracks (confirmed ones not coasting inside an object another track took
        whole, see ``TrackerConfig.merge_tracks``; all with ``include_tentative``), by id."""
        sel = np.nonzero((self._confirmed & ~self._inside) | include_tentative)[0]
        stamp = self._stamp_ns or 0
        return [Track(int(self._ids[i]), self._x[i].copy(), self._p[i].copy(), int(self._age[i]),
                      int(self._hits[i]), int(self._misses[i]), float(self._size[i, 0]), float(self._size[i, 1]),
                      float(self._yaw[i]), bool(self._confirmed[i]), stamp, self.config.model)
                for i in sel]

    def _merge_covered(self, rows: NDArray[np.int64], cols: NDArray[np.int64], z: NDArray[np.float64],
                       size: NDArray[np.float64], yaw: NDArray[np.float64] | None
                       ) -> tuple[NDArray[np.int64], NDArray[np.bool_], NDArray[np.bool_]]:
        """See ``TrackerConfig.merge_tracks``: the assigned rows with each whole object's detection given to
        its track with the most hits, a (T,) mask of the tracks re-anchored (seen whole or split) and one of
        the tracks that lost the whole object's detection to it (they coast)."""
        nt = self._x.shape[0]
        absorbed = np.zeros(nt, bool)
        merged = np.zeros(nt, bool)
        grow = self.config.meas_noise_m
        # (A, T): the tracks' predicted positions inside each assigned detection's box
        inside = _in_boxes(self._x[None, :, :2] - z[cols][:, None, :],
                           np.zeros(len(cols)) if yaw is None else yaw[cols], size[cols], grow)
        inside[np.arange(len(rows)), rows] = True
        taken = np.zeros(nt, bool)
        taken[rows] = True
        rows = rows.copy()
        for a in np.nonzero(inside.sum(axis=1) >= 2)[0]:
            # Only tracks that took no other detection this cycle are pieces of this one.
            group = np.nonzero(inside[a] & (~taken | (np.arange(nt) == rows[a])))[0]
            if group.size < 2:
                continue
            keep = group[np.argmax(self._hits[group])]
            absorbed[group[group != keep]] = True
            taken[group] = True
            rows[a] = keep
            merged[keep] = True
        # The other way round: a track whose object shows as several pieces again takes one of them; the
        # others inside its box are new (spawn_radius_m) or taken by tracks that coasted while it was whole.
        loose = np.ones(len(z), bool)
        loose[cols] = self._misses[rows] > 0
        if loose.any():
            # (A, K): the loose detections inside each assigned track's box
            within = _in_boxes(z[loose][None, :, :] - self._x[rows][:, None, :2], self._yaw[rows],
                               self._size[rows], grow)
            own = np.flatnonzero(loose)[None, :] == cols[:, None]                 # a track's own detection
            merged[rows[(within & ~own).any(axis=1)]] = True
        return rows, merged, absorbed

    def _kalman_update(self, rows: NDArray[np.int64], z: NDArray[np.float64],
                       vel: NDArray[np.float64] | None, extra: NDArray[np.float64] | None = None) -> None:
        """Position update of tracks ``rows`` by centroids ``z`` (A, 2), then the velocity hints; ``extra``:
        (A, 2, 2) measurement covariance added per pair (``TrackerConfig.extent_noise``)."""
        cfg = self.config
        n = cfg.state_dim
        x, p = self._x[rows], self._p[rows]
        r = cfg.meas_noise_m ** 2 * np.eye(2)
        if extra is not None:
            r = r + extra                                        # (A, 2, 2)
        s = p[:, :2, :2] + r
        k = p[:, :, :2] @ np.linalg.inv(s)                       # (A, n, 2)
        x = x + np.einsum('aij,aj->ai', k, z - x[:, :2])
        i_kh = np.eye(n)[None] - np.concatenate([k, np.zeros((len(rows), n, n - 2))], axis=2)
        p = i_kh @ p @ np.transpose(i_kh, (0, 2, 1)) + k @ r @ np.transpose(k, (0, 2, 1))   # Joseph form
        if vel is not None:
            # Velocity hints: scalar sequential updates per component (exact, noises independent). A hint
            # outside the gate (its 1-D innovation squared over its variance above gate_chi2) is another
            # object's or clutter's return near the detection (a stationary false alarm beside a car), not
            # this track's speed: it is left out.
            for comp in (0, 1):
                c = 2 + comp
                s_all = p[:, c, c] + cfg.meas_noise_vel_mps ** 2
                with np.errstate(invalid='ignore'):
                    m = np.isfinite(vel[:, comp]) & ((vel[:, comp] - x[:, c]) ** 2 <= cfg.gate_chi2 * s_all)
                if not m.any():
                    continue
                pm, xm = p[m], x[m]
                s_c = pm[:, c, c] + cfg.meas_noise_vel_mps ** 2
                k_c = pm[:, :, c] / s_c[:, None]
                xm = xm + k_c * (vel[m, comp] - xm[:, c])[:, None]
                pm = pm - k_c[:, :, None] * pm[:, c, None, :]
                x[m], p[m] = xm, 0.5 * (pm + np.transpose(pm, (0, 2, 1)))
        self._x[rows], self._p[rows] = x, p

    def _birth(self, z: NDArray[np.float64], vel: NDArray[np.float64] | None,
               size: NDArray[np.float64] | None, yaw: NDArray[np.float64] | None) -> None:
        cfg = self.config
        nb, n = z.shape[0], cfg.state_dim
        x = np.zeros((nb, n))
        x[:, :2] = z
        var = np.zeros((nb, n))
        var[:, :2] = cfg.meas_noise_m ** 2
        var[:, 2:4] = cfg.init_velocity_std_mps ** 2
        if n == 6:
            var[:, 4:6] = cfg.init_accel_std_mps2 ** 2
        if cfg.spawn_radius_m > 0 and self._confirmed.any():
            # A piece of an object already tracked: start at that track's velocity (see spawn_radius_m).
            parents = np.nonzero(self._confirmed)[0]
            d2 = ((z[:, None, :] - self._x[parents][None, :, :2]) ** 2).sum(axis=2)
            near = np.argmin(d2, axis=1)
            close = d2[np.arange(nb), near] <= cfg.spawn_radius_m ** 2
            x[close, 2:4] = self._x[parents[near[close]], 2:4]
        if vel is not None:
            known = np.isfinite(vel)
            x[:, 2:4] = np.where(known, vel, x[:, 2:4])
            var[:, 2:4] = np.where(known, cfg.meas_noise_vel_mps ** 2, var[:, 2:4])
        p = np.zeros((nb, n, n))
        p[:, np.arange(n), np.arange(n)] = var
        self._x = np.concatenate([self._x, x])
        self._p = np.concatenate([self._p, p])
        self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + nb)])
        self._next_id += nb
        self._age = np.concatenate([self._age, np.ones(nb, np.int64)])
        self._hits = np.concatenate([self._hits, np.ones(nb, np.int64)])
        self._misses = np.concatenate([self._misses, np.zeros(nb, np.int64)])
        self._confirmed = np.concatenate([self._confirmed, np.full(nb, cfg.confirm_hits <= 1)])
        self._inside = np.concatenate([self._inside, np.zeros(nb, bool)])
        self._size = np.concatenate([self._size, size if size is not None else np.zeros((nb, 2))])
        self._yaw = np.concatenate([self._yaw, yaw if yaw is not None else np.zeros(nb)])

    def _keep(self, keep: NDArray[np.bool_]) -> None:
        for name in ('_x', '_p', '_ids', '_age', '_hits', '_misses', '_confirmed', '_inside', '_size', '_yaw'):
            setattr(self, name, getattr(self, name)[keep])

    def update_detections(self, detections: Detections, stamp_ns: int) -> list[Track]:
        """:meth:`update` from a :class:`Detections` (centroids, velocity hints, extents, yaws)."""
        return self.update(detections.xy, stamp_ns, detections.velocity,
                           np.stack([detections.length, detections.width], axis=1)
                           if len(detections) else np.zeros((0, 2)), detections.yaw)
