"""One digital-twin cycle: grid -> detections -> tracks -> rollout -> predicted grids -> conflicts -> advice.

:class:`TwinCore` holds the tracker and the road (:class:`~..road.RoadTracker`, fed
the platoon's positions each cycle) between cycles; the twin node feeds it the
common grid, the platoon's odometry (at the grid's stamp) and, optionally,
radar targets, and publishes what :meth:`TwinCore.step` returns. Rollout and
conflicts run in the road's coordinates; what is published is in ``map``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from .conflicts import Advisory, Conflict, ConflictConfig, advise, advisory_in_map, conflict_in_map, find_conflicts
from ..errors import ConfigError
from ..grid import GridSpec
from ..road import RoadConfig, RoadModel, RoadTracker
from .prediction import (ObstacleState, PlatoonState, PredictionConfig, Rollout, along_road_half_length,
                         predicted_grids_percent, rollout, velocity_variance_along)
from .tracking import Detections, MultiObjectTracker, Track, TrackerConfig, associate_radar, extract_detections


@dataclass(frozen=True)
class TwinConfig:
    """Settings of every twin stage.

    occupied_threshold, min_cells : detection on the common grid (percent, cells)
    exclude_margin_m : platoon footprints are grown by this before their cells are cleared
    exclude_trail_s : platoon footprints also reach back over the distance each vehicle covered in
        this many seconds: the common grid fuses evidence that is up to the fusion latency old, so a
        moving vehicle's cells trail behind where its odometry puts it (a ghost moving with it)
    exclude_front_m : ... and reach this far ahead of each vehicle's front: near-field returns of
        its own front sensors (bumper zone) show up there and move with it
    merge_gap_m : occupied components this close are one object (see tracking.extract_detections)
    merge_gap_across_m : ... this close across the road (None: ``merge_gap_m``); two cars in adjacent
        lanes are drawn under 1 m apart
    box_centre : a detection lies at the centre of its cells' box, not at their mean (see
        tracking.extract_detections: a car drawn mostly as its rear face is otherwise boxed up to 1 m behind)
    road_axes : a detection's box is spanned along and across the road (the fitted road's heading at it;
        the grid's axes before a road is fitted), not along its cells' principal axes
    pieces_move_together, piece_gap_m, piece_across_m : a track whose box comes within ``piece_gap_m``
        along the road (or overlaps) of the box of a track with more detections, centres within
        ``piece_across_m`` across it, is a piece of that object: it moves at that track's along-road speed
        and acceleration in the rollout (see :func:`pieces_move_together`; False: each at its own)
    radar_radius_m, radar_max_los_angle_deg : radar velocity hints (see tracking.associate_radar)
    include_platoon_in_grids : draw the platoon vehicles in the predicted grids
    road : how the road is fitted to the platoon's path (core.road)
    """

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    prediction: PredictionConfig = field(default_factory=PredictionConfig)
    conflicts: ConflictConfig = field(default_factory=ConflictConfig)
    occupied_threshold: int = 65
    min_cells: int = 3
    exclude_margin_m: float = 0.5
    exclude_trail_s: float = 0.0
    exclude_front_m: float = 0.0
    merge_gap_m: float = 0.0
    merge_gap_across_m: float | None = None
    box_centre: bool = False
    road_axes: bool = False
    pieces_move_together: bool = False
    piece_gap_m: float = 1.0
    piece_across_m: float = 1.0
    radar_radius_m: float = 2.0
    radar_max_los_angle_deg: float = 25.0
    include_platoon_in_grids: bool = True
    road: RoadConfig = field(default_factory=RoadConfig)

    def __post_init__(self) -> None:
        if not 0 < self.occupied_threshold <= 100:
            raise ConfigError(f'occupied_threshold must be in 1..100 percent, got {self.occupied_threshold}')
        if not 0 <= self.exclude_trail_s < math.inf:
            raise ConfigError(f'exclude_trail_s must be a finite number of seconds >= 0, got {self.exclude_trail_s}')
        if not 0 <= self.exclude_front_m < math.inf:
            raise ConfigError(f'exclude_front_m must be a finite number of metres >= 0, got {self.exclude_front_m}')
        if not 0 <= self.merge_gap_m < math.inf:
            raise ConfigError(f'merge_gap_m must be a finite number of metres >= 0, got {self.merge_gap_m}')
        if self.merge_gap_across_m is not None and not 0 <= self.merge_gap_across_m < math.inf:
            raise ConfigError(f'merge_gap_across_m must be a finite number of metres >= 0, got '
                              f'{self.merge_gap_across_m}')
        for name in ('piece_gap_m', 'piece_across_m'):
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(f'{name} must be a finite number of metres >= 0, got {getattr(self, name)}')
        if self.exclude_margin_m < 0 or self.radar_radius_m <= 0:
            raise ConfigError(f'exclude_margin_m must be >= 0 and radar_radius_m > 0, got '
                              f'{self.exclude_margin_m} and {self.radar_radius_m}')


def road_heading(road: RoadModel | None, spec: GridSpec) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """The road's heading (radians in ``map``) at points (K, 2) in ``map``: ``road``'s, or the grid's yaw while no
    road is fitted (the grid follows the platoon's heading)."""
    def heading(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        if road is None:
            return np.full(len(xy), spec.yaw)
        return np.asarray(road.heading_at(road.to_road(xy)[0]), dtype=np.float64).reshape(-1)
    return heading


@dataclass(frozen=True)
class TwinResult:
    """Everything one cycle produced. grids : horizon (s) -> (H, W) float32 probabilities on the input grid;
    percent : horizon (s) -> the same as (H, W) int8 OccupancyGrid cells (prediction.probability_to_percent)."""

    stamp_ns: int
    detections: Detections
    tracks: list[Track]
    rollout: Rollout            # in the road's coordinates (rollout.road; its poses methods give map)
    grids: dict[float, NDArray[np.float32]]
    conflicts: list[Conflict]
    advisories: dict[str, Advisory]
    percent: dict[float, NDArray[np.int8]] = field(default_factory=dict)


def mature_tracks(tracks: list[Track], cfg: ConflictConfig, road: RoadModel | None = None) -> NDArray[np.bool_]:
    """Which tracks may raise conflicts: (N,) bool, in the order of ``tracks``.

    A track is mature from ``cfg.min_track_hits`` detections on, or from ``cfg.known_velocity_hits``
    (when > 0) once the 1-sigma std of its velocity along the road (``road``'s heading at the track;
    map x without a road) is at most ``cfg.known_velocity_std_mps``: a time to collision needs the
    closing speed, not a track's age. Either way only while it missed at most ``cfg.max_track_misses``
    grids in a row (a coasting track is extrapolated, not seen).
    """
    if not tracks:
        return np.zeros(0, dtype=bool)
    hits = np.array([t.hits for t in tracks])
    seen = np.array([t.misses for t in tracks]) <= cfg.max_track_misses
    mature = hits >= cfg.min_track_hits
    if cfg.known_velocity_hits > 0:
        cov = np.stack([t.covariance[2:4, 2:4] for t in tracks])
        if road is None:
            heading = np.zeros(len(tracks))
        else:
            heading = road.heading_at(road.to_road(np.array([[t.x, t.y] for t in tracks]))[0])
        var = velocity_variance_along(cov, np.cos(heading), np.sin(heading))
        known = var <= cfg.known_velocity_std_mps ** 2
        mature |= (hits >= cfg.known_velocity_hits) & known
    return mature & seen


def pieces_move_together(obstacles: ObstacleState, hits: NDArray[np.integer], gap_m: float,
                         across_m: float) -> ObstacleState:
    """The obstacles (road coordinates) with each piece of an object moving as the object's best-known track.

    On the common grid a car is its rear face plus side and front strips seen from other vehicles, and
    the tracker follows them as separate tracks whose pieces hand over from cycle to cycle: a young
    piece's along-road speed is read from its centre sliding over the car (a front piece that takes the
    whole car, or a piece born behind a settled track, reads 2-8 m/s slow), not from the car's motion.
    A track whose box comes within ``gap_m`` of another's along the road (or overlaps it), centres
    within ``across_m`` across it, is one object with it (two cars in one lane are never that close
    while moving): every such track takes ``vx``, ``ax`` and ``vx_std`` of the one with the most
    detections ``hits`` (N,) among them (itself when that is its own). Lateral motion stays each
    track's own.
    """
    n = len(obstacles)
    if n < 2:
        return obstacles
    hits = np.asarray(hits, dtype=np.int64).reshape(n)
    half = along_road_half_length(obstacles.length, obstacles.width, obstacles.yaw)
    gap = np.abs(obstacles.x[:, None] - obstacles.x[None, :]) - half[:, None] - half[None, :]
    one = (gap <= gap_m) & (np.abs(obstacles.y[:, None] - obstacles.y[None, :]) <= across_m)   # (N, N), symmetric
    # the best-known track among each one's pieces: the most hits (a tie keeps its own speed)
    rank = np.where(one, hits[None, :], -1)
    best = np.argmax(rank, axis=1)
    best = np.where(rank[np.arange(n), best] > hits, best, np.arange(n))
    if np.all(best == np.arange(n)):
        return obstacles
    return replace(obstacles, vx=obstacles.vx[best], ax=obstacles.ax[best], vx_std=obstacles.vx_std[best])


class TwinCore:
    """Stateful twin pipeline (the tracker persists across cycles)."""

    def __init__(self, config: TwinConfig | None = None) -> None:
        self.config = config or TwinConfig()
        self.tracker = MultiObjectTracker(self.config.tracker)
        self.road_tracker = RoadTracker(self.config.road)

    def road_at(self, platoon: PlatoonState, stamp_ns: int) -> RoadModel | None:
        """Feed the platoon's positions at ``stamp_ns`` to the road tracker; the road, or None when it is
        the map x axis (or not known yet): then map coordinates are road coordinates."""
        by_order = np.argsort(platoon.order)
        self.road_tracker.update_platoon(stamp_ns, [platoon.ids[i] for i in by_order], platoon.x[by_order],
                                         platoon.y[by_order], platoon.heading[by_order])
        road = self.road_tracker.model()
        return None if road is None or road.is_map_x else road

    def step(self, cells_percent: NDArray[np.int8], spec: GridSpec, stamp_ns: int, platoon: PlatoonState,
             radar_xyv: NDArray[np.floating] | None = None,
             radar_sensor_xy: NDArray[np.floating] | None = None) -> TwinResult:
        """Run one cycle on the common grid at ``stamp_ns`` (common time, ns).

        cells_percent : (H, W) int8 grid cells; spec : its geometry
        platoon : the platoon's state at ``stamp_ns``
        radar_xyv : (M, 3) map-frame targets x, y, radial velocity; radar_sensor_xy : (2,) or (M, 2) metres
        """
        cfg = self.config
        road = self.road_at(platoon, stamp_ns)
        heading = road_heading(road, spec) if cfg.road_axes else None
        dets = extract_detections(cells_percent, spec, cfg.occupied_threshold, cfg.min_cells,
                                  platoon.footprints(cfg.exclude_trail_s, cfg.exclude_front_m), cfg.exclude_margin_m,
                                  merge_gap_m=cfg.merge_gap_m, merge_gap_across_m=cfg.merge_gap_across_m,
                                  box_centre=cfg.box_centre, road_heading=heading)
        if radar_xyv is not None and len(dets):
            if radar_sensor_xy is None:
                raise ConfigError('radar targets given without the position of the radar that saw them')
            heading = 0.0 if road is None else road.heading_at(road.to_road(np.asarray(radar_xyv)[:, :2])[0])
            dets = associate_radar(dets, radar_xyv, radar_sensor_xy, cfg.radar_radius_m, cfg.radar_max_los_angle_deg,
                                   road_heading_rad=heading)
        self.tracker.predict_to(stamp_ns, road)             # tracks follow the road's curve
        tracks = self.tracker.update_detections(dets, stamp_ns)
        obstacles = ObstacleState.from_tracks(tracks, road=road)
        if cfg.pieces_move_together:
            obstacles = pieces_move_together(obstacles, np.array([t.hits for t in tracks], np.int64), cfg.piece_gap_m,
                                             cfg.piece_across_m)
        ro = rollout(platoon.in_road(road), obstacles, cfg.prediction, road=road,
                     platoon_alone=cfg.conflicts.predecessor_reacts)
        grids, percent = predicted_grids_percent(ro, spec, cfg.prediction, include_platoon=cfg.include_platoon_in_grids)
        mature = mature_tracks(tracks, cfg.conflicts, road)
        conflicts = find_conflicts(ro, cfg.conflicts, mature)
        # Advice along the road (x = s), then its poses and the conflicts' points in map.
        advisories = {c.vehicle_id: advisory_in_map(advise(ro.platoon.vehicle(c.vehicle_id), c, cfg.conflicts), road)
                      for c in conflicts}
        conflicts = [conflict_in_map(c, road) for c in conflicts]
        return TwinResult(int(stamp_ns), dets, tracks, ro, grids, conflicts, advisories, percent)
