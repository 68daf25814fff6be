"""Dynamic layer of the common grid: moving objects kept apart and drawn where they are at publish time.

A moving face fused into the static :class:`~.fusion.CommonGrid` stays where it
was at its evidence stamp. The grid is published 50-150 ms later (lidar logged
at scan end, sync, the publish cadence), which at 25 m/s puts the face
1.25-3.75 m behind the object, and fresh-free-wins then clears it as soon as
another view sees free road there. So each incoming evidence grid is split
(:meth:`DynamicLayer.split`):

1. Components. The cells with evidence log-odds ``>= occupied_logodds`` are
   labelled (8-connectivity; cells at most ``merge_gap_m`` apart join, so an
   object's rear and side faces are one component). Components with fewer than
   ``min_cells`` cells or longer than ``max_length_m`` along the road (guard
   rails, walls) stay static.
2. Velocity, along the road (the heading of the vehicle that sent the
   evidence: traffic drives along its lane). From radar first: the same
   vehicle's targets (``map``, radial velocity with ego motion removed, + away)
   stamped within ``radar_max_dt_ns`` of the evidence (a vehicle sends its
   targets after its grid, so these are usually the previous cycle's, moved
   along the road at their own speed to the evidence stamp), each given to the
   component with the nearest cell within ``radar_radius_m``. A target moving
   along the road at speed ``s`` has ``v_r = s·cos(a)``, ``a`` the angle
   between line of sight and road, so ``s = v_r / cos(a)``, used only where
   ``a <= max_los_angle_deg`` (1/cos amplifies noise; across the road ``s`` is
   unobservable). A component's speed is the median over its targets. Without
   a usable target: from tracking, the nearest component of the same vehicle's
   previous evidence (predicted along the road at its speed, laterally within
   ``track_lateral_gate_m``, along the road within ``max_speed_mps·dt``); the
   centroid's displacement along the road over ``dt`` is a speed measurement,
   averaged into the previous speed with weight ``track_smoothing``.
3. A component is moving when ``|speed| >= min_speed_mps`` (from tracking only:
   for its last two estimates, so one noisy centroid step does not make a
   static object move). Moving cells are taken out of the evidence (unknown):
   they are not fused into the static grid, so they leave no trail and do not
   fight fresh-free-wins; the free evidence around them still is fused. Static
   components are fused as before.
4. Moving components are kept as :class:`MovingObject` (cells, log-odds times
   the vehicle weight, velocity, stamp), per vehicle. A vehicle's newer
   evidence that observes (occupied or free) at least half of an object's
   cells, moved to the new stamp, replaces that object (the vehicle's newest
   view of it is kept); objects older than ``max_age_ns`` expire. An object
   may carry its own, longer limit (:meth:`DynamicLayer.split`'s
   ``max_age_ns``: the node adds the vehicle's measured link latency, so
   evidence that spent 0.4 s in the network is not dead on arrival) until the
   same vehicle's newer evidence arrives: an older object that evidence does
   not replace falls back to ``max_age_ns`` (the extension bridges the wait
   for the vehicle's next view, it does not keep views the vehicle has since
   superseded: extrapolated for longer, they would be drawn as ghost copies
   beside the newer ones). The stamp-to-stamp replacement and tracking gates
   keep ``max_age_ns``.

Where each cell is drawn. A cycle's evidence describes its stamp (lidar stamp + half a sweep), but its
sensors saw a moving car at other times: radar and camera at their own stamps (up to 100 ms earlier),
a rotating lidar at each point's firing time. The vehicle moves the hits near a moving radar return to
the stamp with that return's Doppler (:func:`~..vehicle.sensor_models.hits_to_stamp`). Hits the radar
does not cover (cars behind and beside) stay where the lidar saw them; with ``sweep_phase`` the cells of
a tracked object are moved back by ``v·a/(2 pi)·T`` (:func:`sweep_phase_s`: ``a`` the cell's azimuth
from the vehicle's heading, ``T`` the vehicle's evidence period), and its tracking speed is measured
over the interval between those seen times. With ``thin_faces`` a moving object loses the cells that
make a face two cells deep on the sensor's side (:func:`near_layer`): shared 0.4 m cells and range
noise draw a face thicker than it is, in front of the surface.

:meth:`DynamicLayer.draw` puts every live object into the published cells at
its position at the publish time ``t``: cells moved by ``v·(t - stamp)``, at
the object's evidence probability (a cell shows the larger of that and the
static grid). Vehicles are independent: two vehicles seeing the same car keep
an object each; the draw takes the newest as the car's view, unless an older
one is another vehicle's fuller view (radar speed, more cells): then that one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ..errors import ConfigError
from ..grid import GridSpec, logodds_to_percent
from ..morphology import dilate_square, nonzero_box, nonzero_cells

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class DynamicConfig:
    """Dynamic-layer parameters (see the module docstring).

    occupied_logodds : evidence log-odds from which a cell belongs to a component
    merge_gap_m : occupied cells at most this far apart (gap between cells) are one component, metres
    min_cells : smaller components stay static; max_length_m : longer ones (along the road) too, metres
    radar_radius_m : a radar target joins the component with the nearest cell within this, metres
    radar_max_dt_ns : radar targets stamped further than this from the evidence are not used, ns
    max_los_angle_deg : radar speed only where line of sight and road are closer than this, degrees
    min_speed_mps : along-road speed from which a component is moving, m/s
    max_speed_mps : tracking gate along the road is max_speed_mps·dt, m/s
    track_lateral_gate_m : tracking gate across the road, metres
    track_smoothing : weight of a new tracking speed in the component's speed, (0, 1]
    max_age_ns : a moving object not renewed for this long expires, ns
    duplicate_radius_m : an object with half its cells this close to a newer object's is not drawn (unless it
        is another vehicle's fuller view, see :meth:`DynamicLayer.draw`), metres
    sweep_phase : a tracked object's cells are moved to the evidence stamp from the time a rotating lidar
        saw them (see :func:`sweep_phase_s`)
    thin_faces : a moving object's cells two or more deep along the line of sight lose the one nearest the
        sensor (see :func:`near_layer`)
    moved_radius_m, moved_min_speed_mps : the vehicles' ``moving_radius_m`` and ``moving_min_speed_mps``:
        cells this close to a radar target at least this fast were moved to the stamp by their vehicle
        (:func:`~..vehicle.sensor_models.hits_to_stamp`), so the sweep phase leaves them (metres, m/s)
    """

    occupied_logodds: float = 0.4
    merge_gap_m: float = 0.4
    min_cells: int = 3
    max_length_m: float = 20.0
    radar_radius_m: float = 2.0
    radar_max_dt_ns: int = 150_000_000
    max_los_angle_deg: float = 25.0
    min_speed_mps: float = 3.0
    max_speed_mps: float = 50.0
    track_lateral_gate_m: float = 1.0
    track_smoothing: float = 0.5
    max_age_ns: int = 300_000_000
    duplicate_radius_m: float = 1.0
    sweep_phase: bool = True
    thin_faces: bool = True
    moved_radius_m: float = 2.5
    moved_min_speed_mps: float = 1.0

    def __post_init__(self) -> None:
        for name in ('occupied_logodds', 'max_length_m', 'radar_radius_m', 'min_speed_mps', 'max_speed_mps',
                     'track_lateral_gate_m'):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f'dynamic {name} must be a positive finite number, got {v!r}')
        for name in ('merge_gap_m', 'duplicate_radius_m', 'moved_radius_m', 'moved_min_speed_mps'):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f'dynamic {name} must be a finite number >= 0, got {v!r}')
        if self.min_cells < 1:
            raise ConfigError(f'dynamic min_cells must be >= 1, got {self.min_cells}')
        if not (0.0 < self.max_los_angle_deg < 90.0):
            raise ConfigError(f'dynamic max_los_angle_deg must be in (0, 90), got {self.max_los_angle_deg!r}')
        if not (0.0 < self.track_smoothing <= 1.0):
            raise ConfigError(f'dynamic track_smoothing must be in (0, 1], got {self.track_smoothing!r}')
        for name in ('radar_max_dt_ns', 'max_age_ns'):
            if getattr(self, name) < 0:
                raise ConfigError(f'dynamic {name} must be >= 0, got {getattr(self, name)}')


@dataclass(frozen=True)
class RadarTargets:
    """One vehicle's radar targets of one cycle.

    stamp_ns : common time; xyv : (M, 3) x, y in ``map`` (metres) and radial velocity (m/s, + away
    from the sensor, ego motion removed); sensor_xy : (2,) the radar's position in ``map``, metres
    """

    stamp_ns: int
    xyv: NDArray[np.float64]
    sensor_xy: NDArray[np.float64]


@dataclass(frozen=True)
class MovingObject:
    """A moving component of one vehicle's evidence.

    cells_xy : (K, 2) cell centres in ``map`` at ``stamp_ns``, metres; logodds : (K,) float32 (times the
    vehicle weight); velocity : (2,) m/s in ``map``; source : 'radar' or 'track'; max_age_ns : drawn while
    at most this old (None: the layer's ``max_age_ns``), ns
    """

    vehicle_id: str
    cells_xy: NDArray[np.float64]
    logodds: NDArray[np.float32]
    velocity: NDArray[np.float64]
    stamp_ns: int
    source: str
    max_age_ns: int | None = None

    def cells_at(self, t_ns: int) -> NDArray[np.float64]:
        """(K, 2) cell centres moved to common time ``t_ns``, metres."""
        return self.cells_xy + self.velocity * ((int(t_ns) - self.stamp_ns) * 1e-9)

    @cached_property
    def percent(self) -> NDArray[np.int8]:
        """(K,) the cells' log-odds as OccupancyGrid percent (drawn every publish: converted once)."""
        return logodds_to_percent(self.logodds)


@dataclass(frozen=True)
class SplitResult:
    """Outcome of :meth:`DynamicLayer.split`.

    logodds, known : (height, width) the static part of the evidence (moving cells unknown), on ``spec``
    moving : the moving objects found; components : components considered (size/length gates passed)
    radar_speeds, track_speeds : components whose speed came from radar / from tracking
    """

    spec: GridSpec
    logodds: NDArray[np.float32]
    known: NDArray[np.bool_]
    moving: tuple[MovingObject, ...]
    components: int
    radar_speeds: int
    track_speeds: int


@dataclass
class _Seen:
    centroid: NDArray[np.float64]
    speed: float | None          # along the road, m/s
    moving: bool
    phase: float | None = None   # mean time its cells were seen after the stamp (sweep_phase_s), s


@dataclass
class _VehicleTracks:
    stamp_ns: int
    heading: NDArray[np.float64]
    seen: list[_Seen] = field(default_factory=list)


def radar_speeds(radar: RadarTargets, heading_rad: float, max_los_angle_deg: float
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Along-road speeds ``v_r / cos(a)`` of the usable targets: returns ((U, 2) xy, (U,) m/s)."""
    xyv = np.asarray(radar.xyv, dtype=np.float64).reshape(-1, 3)
    ok = np.all(np.isfinite(xyv), axis=1)
    xyv = xyv[ok]
    los = xyv[:, :2] - np.asarray(radar.sensor_xy, dtype=np.float64)[None, :]
    rng = np.linalg.norm(los, axis=1)
    road = np.array([math.cos(heading_rad), math.sin(heading_rad)])
    cos_a = np.divide(los @ road, rng, out=np.zeros_like(rng), where=rng > 1e-6)
    use = np.abs(cos_a) >= math.cos(math.radians(max_los_angle_deg))
    return xyv[use, :2], xyv[use, 2] / cos_a[use]


#: Beyond this angle between line of sight and road a target's radial velocity is not taken as motion
#: along the road (1/cos <= 2.9; across the road v_r says little about it), degrees.
ALONG_ROAD_MAX_DEG = 70.0


def moved_by_vehicle(radar: RadarTargets, x: NDArray[np.float64], y: NDArray[np.float64], heading_rad: float,
                     stamp_ns: int, radius_m: float, min_speed_mps: float) -> NDArray[np.bool_]:
    """(N,) the cells (centres x, y in ``map``, metres) within ``radius_m`` of a radar target with
    ``|v_r| >= min_speed_mps``, the targets moved to ``stamp_ns`` (along the road by ``v_r / cos(a)``, or
    along the line of sight across it): hits their vehicle already moved to its stamp with that target."""
    xyv = np.asarray(radar.xyv, dtype=np.float64).reshape(-1, 3)
    xyv = xyv[np.all(np.isfinite(xyv), axis=1) & (np.abs(xyv[:, 2]) >= min_speed_mps)] if xyv.size else xyv
    out = np.zeros(np.shape(x), dtype=bool)
    if xyv.shape[0] == 0 or out.size == 0:
        return out
    los = xyv[:, :2] - np.asarray(radar.sensor_xy, dtype=np.float64)[None, :]
    rng = np.maximum(np.linalg.norm(los, axis=1), 1e-6)
    unit = los / rng[:, None]
    road = np.array([math.cos(heading_rad), math.sin(heading_rad)])
    cos_a = unit @ road
    velocity = unit * xyv[:, 2, None]
    along = np.abs(cos_a) >= math.cos(math.radians(ALONG_ROAD_MAX_DEG))
    velocity[along] = (xyv[along, 2] / cos_a[along])[:, None] * road[None, :]
    txy = xyv[:, :2] + velocity * ((int(stamp_ns) - int(radar.stamp_ns)) * 1e-9)
    lo = np.array([np.min(x), np.min(y)]) - radius_m
    hi = np.array([np.max(x), np.max(y)]) + radius_m
    txy = txy[np.all((txy >= lo) & (txy <= hi), axis=1)]
    if txy.shape[0] == 0:
        return out
    # (targets, cells) planes: each target's dx² + dy² <= r², the same values as one target at a time.
    dx = np.ravel(x)[None, :] - txy[:, 0, None]
    dy = np.ravel(y)[None, :] - txy[:, 1, None]
    dx *= dx
    dy *= dy
    dx += dy
    return np.any(dx <= radius_m * radius_m, axis=0).reshape(np.shape(x))


def small_median(values: NDArray[np.float64]) -> float:
    """``np.median`` of a short finite 1-D array, float or integer (the same value), without its overhead."""
    v = np.sort(values)
    mid = v.size // 2
    return float(v[mid]) if v.size % 2 else float((v[mid - 1] + v[mid]) / 2.0)


#: A vehicle's sweep period is the median of its last few evidence intervals, used only within these
#: bounds (a 5-50 Hz lidar), seconds.
SWEEP_PERIOD_RANGE_S = (0.02, 0.2)
SWEEP_STAMPS_KEPT = 9


def sweep_phase_s(xy: NDArray[np.float64], sensor_xy: NDArray[np.float64], heading_rad: float,
                  period_s: float) -> NDArray[np.float64]:
    """(N,) when a rotating lidar saw each point (N, 2), seconds after the evidence stamp.

    The lidar sweeps counter-clockwise from straight behind over one period and the evidence is stamped
    when it looks straight ahead (half a sweep after its start: the vehicle's output stamp offset), so a
    point at azimuth ``a`` (radians from the heading, in (-pi, pi]) was seen ``a / (2 pi) · period`` after
    the stamp. A moving object seen behind-left is seen up to half a period late, behind-right up to half
    a period early: at 27 m/s and 10 Hz, 1.35 m ahead of or behind where it is at the stamp.
    """
    d = np.asarray(xy, dtype=np.float64) - np.asarray(sensor_xy, dtype=np.float64)[None, :]
    a = np.arctan2(d[:, 1], d[:, 0]) - heading_rad
    a = (a + math.pi) % (2.0 * math.pi) - math.pi
    return a / (2.0 * math.pi) * period_s


def near_layer(ix: NDArray[np.int64], iy: NDArray[np.int64], sensor_ix: float, sensor_iy: float,
               labels: NDArray[np.integer] | None = None) -> NDArray[np.bool_]:
    """(K,) the cells of one object (cell indices) that face the sensor in front of another of its cells.

    Per cell, one step along the axis nearer its line of sight from the sensor (at cell coordinates
    ``sensor_ix, sensor_iy``, in the grid's own frame): a cell is in the near layer when the cell one step
    towards the sensor is not the object's and the cell one step away is. A face drawn one cell thick is
    kept whole. Evidence shared on a coarser lattice (``share.resolution_m`` 0.4 m: two fine cells) and
    range noise draw a face thicker than it is, and the excess lies in front of the surface: on the
    sensor's side. ``labels`` (K,) >= 0: the cells of several objects at once, each cell's object (a cell of
    another object is not the cell's object's); the same as one call per object.
    """
    ix = np.asarray(ix, dtype=np.int64)
    iy = np.asarray(iy, dtype=np.int64)
    if ix.size == 0:
        return np.zeros(0, dtype=bool)
    dx = ix + 0.5 - sensor_ix
    dy = iy + 0.5 - sensor_iy
    along_x = np.abs(dx) >= np.abs(dy)
    sx = np.where(along_x, np.sign(dx), 0).astype(np.int64)
    sy = np.where(along_x, 0, np.sign(dy)).astype(np.int64)
    x0, y0 = int(ix.min()) - 1, int(iy.min()) - 1
    shape = (int(iy.max()) - y0 + 2, int(ix.max()) - x0 + 2)
    if labels is None:
        mask = np.zeros(shape, dtype=bool)
        mask[iy - y0, ix - x0] = True
        toward = mask[iy - sy - y0, ix - sx - x0]
        away = mask[iy + sy - y0, ix + sx - x0]
    else:
        own = np.asarray(labels, dtype=np.int64) + 1          # 0: no object's cell
        grid = np.zeros(shape, dtype=np.int64)
        grid[iy - y0, ix - x0] = own
        toward = grid[iy - sy - y0, ix - sx - x0] == own
        away = grid[iy + sy - y0, ix + sx - x0] == own
    return ~toward & away


def occupied_components(occ: NDArray[np.bool_], grow_cells: int
                        ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]:
    """Components of the True cells of ``occ`` (H, W), 8-connected after a dilation by ``grow_cells``
    (cells at most 2·grow_cells apart join): (iy, ix) of every True cell in row-major order, its component
    (0..n-1, numbered in raster order of the components' first cells, as ``ndimage.label``) and n."""
    box = nonzero_box(occ, max(grow_cells, 0))
    if box is None:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy(), 0
    # On the bounding box only: every grown cell lies inside it, and raster order is kept there.
    occ_box = occ[box]
    labels, n = ndimage.label(dilate_square(occ_box, grow_cells), structure=_EIGHT)
    iy, ix = nonzero_cells(occ_box)
    lab = labels[iy, ix].astype(np.int64) - 1
    return iy.astype(np.int64) + box[0].start, ix.astype(np.int64) + box[1].start, lab, int(n)


def _with_percent_of(new: MovingObject, old: MovingObject) -> MovingObject:
    """``new`` (a copy of ``old`` with another age limit) holding ``old``'s percent if already converted."""
    if 'percent' in old.__dict__:
        new.__dict__['percent'] = old.__dict__['percent']      # the cached_property's slot: same cells
    return new


class DynamicLayer:
    """Per-vehicle component tracks and moving objects (see the module docstring)."""

    def __init__(self, config: DynamicConfig) -> None:
        self.config = config
        self._tracks: dict[str, _VehicleTracks] = {}
        self._stamps: dict[str, list[int]] = {}
        self._objects: dict[str, list[MovingObject]] = {}
        self.moving_total = 0

    def objects(self, t_ns: int | None = None) -> list[MovingObject]:
        """Every kept object (live at ``t_ns`` when given: ``0 <= t - stamp <= max_age`` (the object's own
        limit when it has one), 50 ms early allowed)."""
        out = [o for objs in self._objects.values() for o in objs]
        if t_ns is None:
            return out
        base = self.config.max_age_ns
        return [o for o in out
                if -50_000_000 <= int(t_ns) - o.stamp_ns <= (base if o.max_age_ns is None else o.max_age_ns)]

    def split(self, vehicle_id: str, spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_],
              stamp_ns: int, heading_rad: float, radar: RadarTargets | None = None,
              weight: float = 1.0, static_zone: NDArray[np.bool_] | None = None,
              max_age_ns: int | None = None, sensor_xy: NDArray[np.floating] | None = None) -> SplitResult:
        """Split one vehicle's evidence (on ``spec``) into its static part and moving objects.

        heading_rad : the road direction at the vehicle (its heading), radians in ``map``
        radar : the same vehicle's targets of about the same stamp, or None
        weight : the vehicle's reliability weight, applied to the kept objects' log-odds
        static_zone : (height, width) bool, cells where a component stays static whatever its speed
            (around the platoon members: their bodies are drawn from odometry, and a face of theirs
            that the member margins missed must not become an object)
        max_age_ns : the new objects are drawn while at most this old (the vehicle's link latency added
            to the layer's ``max_age_ns``); None: the layer's ``max_age_ns``
        sensor_xy : (2,) the vehicle's lidar at ``stamp_ns`` in ``map`` (not its base_link: a truck's lidar
            sits 10 m or more ahead of it), metres: with ``sweep_phase``, a tracked object's cells are moved by
            its velocity from when the lidar saw them to the stamp; with ``thin_faces``, the sensor side
        Raises ConfigError when the arrays do not match ``spec``.
        """
        cfg = self.config
        stamp_ns = int(stamp_ns)
        logodds = np.asarray(logodds, dtype=np.float32)
        known = np.asarray(known, dtype=bool)
        if logodds.shape != spec.shape or known.shape != spec.shape:
            raise ConfigError(f'evidence shapes {logodds.shape} / {known.shape} do not match the spec '
                              f'(height, width) = {spec.shape}')
        res = spec.resolution
        road = np.array([math.cos(heading_rad), math.sin(heading_rad)])
        # Known, finite and at least occupied_logodds (NaN compares False, +inf is excluded).
        occ = known & (logodds >= cfg.occupied_logodds) & (logodds < np.inf)
        iy, ix, lab, n = occupied_components(occ, int(math.ceil(cfg.merge_gap_m / (2.0 * res) - 1e-9)))
        x = spec.origin_x + (ix + 0.5) * res
        y = spec.origin_y + (iy + 0.5) * res
        if spec.is_rotated:
            xy = spec.to_map_frame(np.stack([x, y], axis=1))      # cell centres in map
            x, y = xy[:, 0], xy[:, 1]
        count = np.bincount(lab, minlength=n).astype(np.float64)
        safe = np.maximum(count, 1.0)
        centroid = np.stack([np.bincount(lab, x, n) / safe, np.bincount(lab, y, n) / safe], axis=1)
        u = x * road[0] + y * road[1]
        umax = np.full(n, -np.inf)
        umin = np.full(n, np.inf)
        np.maximum.at(umax, lab, u)
        np.minimum.at(umin, lab, u)
        valid = (count >= cfg.min_cells) & (umax - umin + res <= cfg.max_length_m)
        period = self._sweep_period_s(vehicle_id, stamp_ns)
        phase = np.zeros(x.shape)            # per cell, seconds after the stamp
        phased = cfg.sweep_phase and sensor_xy is not None and period is not None
        if phased and n > 0:
            phase = sweep_phase_s(np.stack([x, y], axis=1), np.asarray(sensor_xy, dtype=np.float64)[:2],
                                  heading_rad, period)
            if radar is not None and abs(int(radar.stamp_ns) - stamp_ns) <= cfg.radar_max_dt_ns:
                phase[moved_by_vehicle(radar, x, y, heading_rad, stamp_ns, cfg.moved_radius_m,
                                       cfg.moved_min_speed_mps)] = 0.0
        mean_phase = np.bincount(lab, phase, n) / safe
        pinned = np.zeros(n, dtype=bool)
        if static_zone is not None and n > 0:
            pinned[np.unique(lab[np.asarray(static_zone, dtype=bool)[iy, ix]])] = True

        # Radar speeds: each usable target to the component with its nearest cell within the radius.
        speed_radar = np.full(n, np.nan)
        if radar is not None and abs(int(radar.stamp_ns) - stamp_ns) <= cfg.radar_max_dt_ns and n > 0:
            txy, tspeed = radar_speeds(radar, heading_rad, cfg.max_los_angle_deg)
            # Targets of another cycle (a vehicle sends its targets after its grid) moved along the
            # road at their own speed to the evidence stamp.
            txy = txy + (tspeed * ((stamp_ns - int(radar.stamp_ns)) * 1e-9))[:, None] * road[None, :]
            cell_ok = valid[lab]
            cxy = np.stack([x, y], axis=1)[cell_ok]
            clab = lab[cell_ok]
            if txy.shape[0] and cxy.shape[0]:
                # Squared distances (targets, cells): dx² + dy², two (T, C) planes (a sum over a last axis of
                # two is numpy's slow case; the same values).
                dx = txy[:, 0, None] - cxy[None, :, 0]
                dy = txy[:, 1, None] - cxy[None, :, 1]
                dx *= dx
                dy *= dy
                d2 = dx + dy
                j = np.argmin(d2, axis=1)
                near = d2[np.arange(txy.shape[0]), j] <= cfg.radar_radius_m ** 2
                near_lab, near_speed = clab[j[near]], tspeed[near]
                for c in np.unique(near_lab):
                    speed_radar[c] = small_median(near_speed[near_lab == c])

        # Tracking: the same vehicle's previous components, predicted along the road.
        prev = self._tracks.get(vehicle_id)
        dt = (stamp_ns - prev.stamp_ns) * 1e-9 if prev is not None else 0.0
        use_prev = prev is not None and 0.0 < dt <= cfg.max_age_ns * 1e-9 and bool(prev.seen)
        if use_prev:
            p_xy = np.array([s.centroid for s in prev.seen])
            p_speed = np.array([0.0 if s.speed is None else s.speed for s in prev.seen])
            p_moved = (p_speed * dt)[:, None] * road[None, :]      # each previous component's predicted step
            along_gate = cfg.max_speed_mps * dt
        seen: list[_Seen] = []
        moving_label = np.zeros(n, dtype=bool)
        objects: list[MovingObject] = []
        n_radar = n_track = 0
        speeds = np.full(n, np.nan)
        sources = [''] * n
        for c in np.flatnonzero(valid):
            match = None
            if use_prev:
                d = centroid[c][None, :] - p_xy
                along_raw = d @ road
                pred = d - p_moved
                along = pred @ road
                lateral = np.abs(pred[:, 0] * road[1] - pred[:, 1] * road[0])
                ok = (lateral <= cfg.track_lateral_gate_m) & (np.abs(along_raw) <= along_gate)
                cand = np.flatnonzero(ok)
                if cand.size:
                    match = int(cand[np.argmin(np.abs(along[cand]))])
            before = prev.seen[match] if match is not None else None
            if math.isfinite(speed_radar[c]):
                speed, source, moving = float(speed_radar[c]), 'radar', abs(speed_radar[c]) >= cfg.min_speed_mps
                n_radar += 1
            elif before is not None:
                # Seen at stamp + phase: the centroids moved by v·(dt + phase - phase before).
                # (A view without a sweep period yet counts as seen at the same phase.)
                seen_dt = dt if before.phase is None or not phased else dt + mean_phase[c] - before.phase
                meas = float((centroid[c] - before.centroid) @ road) / max(seen_dt, 0.5 * dt)
                speed = meas if before.speed is None else before.speed + cfg.track_smoothing * (meas - before.speed)
                source = 'track'
                moving = (abs(speed) >= cfg.min_speed_mps and before.speed is not None
                          and abs(before.speed) >= cfg.min_speed_mps)
                n_track += 1
            else:
                speed, source, moving = None, '', False
            moving = moving and not pinned[c]
            seen.append(_Seen(centroid[c].copy(), speed, moving, float(mean_phase[c]) if phased else None))
            if moving:
                moving_label[c] = True
                speeds[c] = speed
                sources[c] = source
        if prev is None or stamp_ns > prev.stamp_ns:
            self._tracks[vehicle_id] = _VehicleTracks(stamp_ns, road, seen)

        static_known, static_l = known, logodds
        if moving_label.any():
            cell_moving = moving_label[lab]
            my, mx = iy[cell_moving], ix[cell_moving]
            static_known = known.copy()
            static_known[my, mx] = False
            static_l = logodds.copy()
            static_l[my, mx] = np.float32(0.0)
            thin = cfg.thin_faces and sensor_xy is not None
            if thin:
                # The sensor in the grid's own frame (ix, iy count along it on a turned grid), in cells.
                sensor = spec.to_grid_frame(np.asarray(sensor_xy, dtype=np.float64)[:2])
                sensor_ix, sensor_iy = (sensor[0] - spec.origin_x) / res, (sensor[1] - spec.origin_y) / res
            # The moving cells grouped by component (ascending), raster order kept within each: one pass for
            # every object's cells, sweep-phase shift and face thinning, then one slice per object.
            members = np.flatnonzero(cell_moving)
            members = members[np.argsort(lab[members], kind='stable')]
            m_lab = lab[members]
            cells_all = np.stack([x[members], y[members]], axis=1)
            tracked = np.array([sources[c] == 'track' for c in range(n)], dtype=bool)[m_lab]
            if tracked.any():
                # Radar objects were moved to the stamp by their vehicle (sensor_models.hits_to_stamp).
                cells_all[tracked] = cells_all[tracked] - (speeds[m_lab[tracked]] * phase[members[tracked]]
                                                           )[:, None] * road[None, :]
            keep_all = np.ones(members.size, dtype=bool)
            if thin:
                keep_all = ~near_layer(ix[members], iy[members], sensor_ix, sensor_iy, m_lab)
            lo_all = logodds[iy[members], ix[members]]
            comps = np.flatnonzero(moving_label)
            ends = np.cumsum(np.bincount(m_lab, minlength=n)[comps]).tolist()
            start = 0
            for c, end in zip(comps.tolist(), ends):
                keep = keep_all[start:end]
                objects.append(MovingObject(
                    vehicle_id, cells_all[start:end][keep],
                    (lo_all[start:end][keep] * np.float32(weight)).astype(np.float32),
                    float(speeds[c]) * road, stamp_ns, sources[c],
                    None if max_age_ns is None else max(int(max_age_ns), cfg.max_age_ns)))
                start = end
        self._replace(vehicle_id, spec, known, stamp_ns, objects)
        self.moving_total += len(objects)
        return SplitResult(spec, static_l, static_known, tuple(objects), int(np.count_nonzero(valid)),
                           n_radar, n_track)

    def _sweep_period_s(self, vehicle_id: str, stamp_ns: int) -> float | None:
        """The vehicle's sweep period: the median interval of its last evidence stamps (this one added),
        seconds; None while unknown or outside ``SWEEP_PERIOD_RANGE_S``."""
        stamps = self._stamps.setdefault(vehicle_id, [])
        if stamp_ns not in stamps:
            stamps.append(stamp_ns)
            stamps.sort()
            del stamps[:-SWEEP_STAMPS_KEPT]
        if len(stamps) < 2:
            return None
        period = small_median(np.diff(np.asarray(stamps, dtype=np.float64)) * 1e-9)
        lo, hi = SWEEP_PERIOD_RANGE_S
        return period if lo <= period <= hi else None

    def _replace(self, vehicle_id: str, spec: GridSpec, known: NDArray[np.bool_], stamp_ns: int,
                 new: list[MovingObject]) -> None:
        """Keep the vehicle's older objects its new evidence does not observe (and not expired; they lose
        their own age limit); add ``new``."""
        live = [o for o in self._objects.get(vehicle_id, []) if stamp_ns - o.stamp_ns <= self.config.max_age_ns]
        older = [i for i, o in enumerate(live) if o.stamp_ns < stamp_ns]
        observed_share: dict[int, float] = {}
        if older:
            # Every older object's cells at the stamp looked up in one pass; a share per object.
            moved = [live[i].cells_at(stamp_ns) for i in older]
            sizes = np.array([len(c) for c in moved])
            ix, iy = spec.world_to_cell(np.concatenate(moved))
            inside = spec.in_bounds(ix, iy)
            observed = np.zeros(ix.shape, dtype=bool)
            observed[inside] = known[iy[inside], ix[inside]]
            hits = np.bincount(np.repeat(np.arange(len(older)), sizes)[observed], minlength=len(older))
            observed_share = {i: float(h) / float(n) for i, h, n in zip(older, hits.tolist(), sizes.tolist()) if n}
        kept = []
        older_set = set(older)
        for i, o in enumerate(live):
            if i in older_set:
                if observed_share.get(i, 0.0) >= 0.5:
                    continue
                if o.max_age_ns is not None:
                    o = _with_percent_of(replace(o, max_age_ns=None), o)
            kept.append(o)
        self._objects[vehicle_id] = kept + new

    def draw(self, spec: GridSpec, cells: NDArray[np.int8], t_ns: int) -> NDArray[np.int8]:
        """Published cells (int8 percent, -1 unknown) with every live object at its position at ``t_ns``.

        Newest first; an object with at least half its cells within ``duplicate_radius_m`` of the cells of
        newer objects (another vehicle's or an older view of the same car) is a duplicate, and is not drawn,
        unless it is another vehicle's fuller view: its speed from radar (moved to ``t_ns`` reliably), no
        cell of its own vehicle's newer objects within that radius of its bounding box, and more cells than
        the other vehicles' newer objects drew there. That view is drawn instead of those objects (the
        same car): a leader's view of a car's rear and side is not dropped for a follower's newer sliver
        of its rear face, often drawn just behind the car.
        """
        out = np.array(cells, dtype=np.int8, copy=True)
        near_drawn = np.zeros(spec.shape, dtype=bool)     # within duplicate_radius_m (square) of a drawn cell
        drawn_as = np.zeros(spec.shape, dtype=np.int32)   # 1 + index in ``draws`` of a drawn cell's object, 0: none
        draws: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int8]]] = []
        owners: list[str] = []                             # the vehicle of each of ``draws``
        replaced: set[int] = set()
        r = max(int(round(self.config.duplicate_radius_m / spec.resolution)), 0)
        objects = sorted(self.objects(t_ns), key=lambda ob: -ob.stamp_ns)
        if not objects:
            return out
        # Every object's cells at t_ns (its own MovingObject.cells_at, element by element) in one pass.
        sizes = [len(o.cells_xy) for o in objects]
        shift = np.stack([o.velocity * ((int(t_ns) - o.stamp_ns) * 1e-9) for o in objects])
        all_ix, all_iy = spec.world_to_cell(np.concatenate([o.cells_xy for o in objects])
                                            + np.repeat(shift, sizes, axis=0))
        all_inside = spec.in_bounds(all_ix, all_iy)
        # Per object: its cells inside the grid (count, index bounds), each bound in one pass over all.
        owner = np.repeat(np.arange(len(objects)), sizes)
        n_inside = np.bincount(owner[all_inside], minlength=len(objects)).tolist()
        big = np.iinfo(np.int64).max
        starts = np.cumsum([0, *sizes[:-1]])
        nonempty = np.flatnonzero(np.asarray(sizes) > 0)
        bounds = np.zeros((4, len(objects)), dtype=np.int64)
        if nonempty.size:
            seg = starts[nonempty]      # strictly increasing: each segment is one non-empty object's cells
            bounds[0, nonempty] = np.minimum.reduceat(np.where(all_inside, all_ix, big), seg)
            bounds[1, nonempty] = np.maximum.reduceat(np.where(all_inside, all_ix, -big), seg)
            bounds[2, nonempty] = np.minimum.reduceat(np.where(all_inside, all_iy, big), seg)
            bounds[3, nonempty] = np.maximum.reduceat(np.where(all_inside, all_iy, -big), seg)
        ix_min, ix_max, iy_min, iy_max = bounds.tolist()
        ends = np.cumsum(sizes).tolist()
        for j, (o, start, stop) in enumerate(zip(objects, starts.tolist(), ends)):
            n = n_inside[j]
            if n == 0:
                continue
            inside = all_inside[start:stop]
            ix, iy = all_ix[start:stop], all_iy[start:stop]
            if n < stop - start:
                ix, iy = ix[inside], iy[inside]
            x0, x1 = max(ix_min[j] - r, 0), min(ix_max[j] + r + 1, spec.width)
            y0, y1 = max(iy_min[j] - r, 0), min(iy_max[j] + r + 1, spec.height)
            # At least half its cells near drawn ones (nothing is near before the first draw).
            if draws and 2 * np.count_nonzero(near_drawn[iy, ix]) >= n:
                if o.source != 'radar':
                    continue                               # a tracked duplicate: no costlier test
                near_as = drawn_as[y0:y1, x0:x1]
                near = np.unique(near_as[near_as > 0]).tolist()
                if not self._fuller_view(o, ix, iy, near_as, [owners[k - 1] for k in near], spec.width):
                    continue
                replaced.update(near)
            draws.append((ix, iy, o.percent if n == stop - start else o.percent[inside]))
            owners.append(o.vehicle_id)
            drawn_as[iy, ix] = len(draws)
            local = np.zeros((y1 - y0, x1 - x0), dtype=bool)
            local[iy - y0, ix - x0] = True
            if r > 0:
                # dilate_square's square, by scipy's separable running maximum (faster on windows this small).
                local = ndimage.maximum_filter1d(local, 2 * r + 1, axis=1, mode='constant', cval=0)
                local = ndimage.maximum_filter1d(local, 2 * r + 1, axis=0, mode='constant', cval=0)
            near_drawn[y0:y1, x0:x1] |= local
        for k, (ix, iy, pct) in enumerate(draws, start=1):
            if k not in replaced:
                out[iy, ix] = np.maximum(out[iy, ix], pct)
        return out

    @staticmethod
    def _fuller_view(o: MovingObject, ix: NDArray[np.int64], iy: NDArray[np.int64], near_as: NDArray[np.int32],
                     near_owners: list[str], width: int) -> bool:
        """Is ``o`` (cells ``ix``, ``iy``, its speed from radar: :meth:`draw` asks only then) a fuller view of
        a car that other vehicles' newer objects drew around it? ``near_as``: the drawn cells in the window
        around it (> 0), ``near_owners``: the vehicles of the objects that drew them. See :meth:`draw`."""
        if o.vehicle_id in near_owners:
            return False
        return np.unique(iy * width + ix).size > np.count_nonzero(near_as)
