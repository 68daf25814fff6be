"""Pure helpers of ``cooperative-fusion evaluate``: ROI, stamp matching, latency, warnings.

Everything here works on numpy arrays and integer nanoseconds (common time);
the bag reading lives in :mod:`cooperative_fusion.evaluation.report`.

Region of interest (ROI), per truth frame, from the true platoon poses
(``/truth/odom/<v>``, base_link = rear axle): let ``u`` be the platoon's mean
heading (circular mean of the vehicles' yaws) and ``n`` its left normal,
``s_i = p_i · u`` and ``d_i = p_i · n`` the vehicles' along-track and lateral
coordinates. A cell (centre ``c``) is in the ROI when

    min_i s_i - behind_last_m  <=  c · u  <=  max_i s_i + ahead_of_leader_m
    |c · n - mean_i d_i|  <=  lateral_half_width_m

and it lies in the truth grid. Defaults: 20 m behind the last vehicle's
base_link, 100 m ahead of the leader's, 10.5 m either side of the platoon's
line (three 3.5 m lanes: the whole of a three-lane road from any of its lanes).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError, CooperativeFusionError
from .grid import GridSpec
from .metrics import Box
from .road import RoadConfig, RoadModel

#: A truth frame is compared with the newest grid published at or before it, if not older than this.
MAX_GRID_AGE_NS = 200_000_000
#: A predicted grid's target stamp matches the truth frame nearest to it within this.
PREDICTION_MATCH_NS = 50_000_000
#: Truth poses and objects match a truth frame within this.
TRUTH_MATCH_NS = 50_000_000
#: A gap longer than this between two warnings of one vehicle ends a warning episode.
EPISODE_GAP_NS = 1_000_000_000
#: Sensor position used for occlusion: this far behind the front face of the vehicle's own box.
SENSOR_BEHIND_FRONT_M = 1.5


@dataclass(frozen=True)
class RoiConfig:
    """The evaluation region around the platoon (see the module docstring), metres."""

    behind_last_m: float = 20.0
    ahead_of_leader_m: float = 100.0
    lateral_half_width_m: float = 10.5

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f'ROI {name} must be a finite number of metres >= 0, got {value!r}')

    def describe(self) -> dict[str, Any]:
        """The ROI as stated in the report."""
        return {**asdict(self),
                'definition': (f'cells of the truth grid whose centre lies between {self.behind_last_m:g} m behind '
                               f'the last platoon vehicle and {self.ahead_of_leader_m:g} m ahead of the leader '
                               f'(base_link, /truth/odom) along the platoon mean heading, and within '
                               f'{self.lateral_half_width_m:g} m of the platoon mean lateral position')}


def platoon_frame(positions_xy: NDArray[np.floating], yaws: NDArray[np.floating]
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit heading ``u`` (2,) and left normal ``n`` (2,) of a platoon: the circular mean of its yaws."""
    yaws = np.asarray(yaws, dtype=np.float64).reshape(-1)
    if yaws.size == 0 or np.asarray(positions_xy).reshape(-1, 2).shape[0] != yaws.size:
        raise ConfigError(f'platoon frame needs one yaw per position, got {yaws.size} yaws and '
                          f'{np.asarray(positions_xy).reshape(-1, 2).shape[0]} positions')
    heading = math.atan2(float(np.sin(yaws).sum()), float(np.cos(yaws).sum()))
    u = np.array([math.cos(heading), math.sin(heading)])
    return u, np.array([-u[1], u[0]])


def roi_mask(spec: GridSpec, positions_xy: NDArray[np.floating], yaws: NDArray[np.floating],
             roi: RoiConfig | None = None) -> NDArray[np.bool_]:
    """(height, width) bool: the ROI on ``spec`` for platoon base_link positions (V, 2) m and yaws (V,) rad."""
    roi = roi or RoiConfig()
    pos = np.asarray(positions_xy, dtype=np.float64).reshape(-1, 2)
    u, n = platoon_frame(pos, yaws)
    s, d = pos @ u, pos @ n
    if spec.is_rotated:
        x, y = spec.cell_centers_map()
        cs, cd = x * u[0] + y * u[1], x * n[0] + y * n[1]
    else:
        xs, ys = spec.cell_centers()
        cs = xs[None, :] * u[0] + ys[:, None] * u[1]
        cd = xs[None, :] * n[0] + ys[:, None] * n[1]
    return ((cs >= s.min() - roi.behind_last_m) & (cs <= s.max() + roi.ahead_of_leader_m)
            & (np.abs(cd - d.mean()) <= roi.lateral_half_width_m))


def sensor_position(base_xy: NDArray[np.floating], own_box: Box | None) -> NDArray[np.float64]:
    """Where a vehicle's sensors are taken to be, (2,) metres: ``SENSOR_BEHIND_FRONT_M`` behind the
    front face of its own box, on its centre line (the box centre for a box shorter than twice that);
    the base_link position when the box is unknown.

    The simulated cars carry lidar, camera and radar 1.2–3.4 m ahead of a rear axle about 3.5 m behind
    the front; the truck its lidar 1.5 m behind its front.
    """
    if own_box is None:
        return np.asarray(base_xy, dtype=np.float64)[:2].copy()
    ahead = max(0.5 * own_box.length - SENSOR_BEHIND_FRONT_M, 0.0)
    return np.array([own_box.center_x + ahead * math.cos(own_box.yaw),
                     own_box.center_y + ahead * math.sin(own_box.yaw)])


def nearest_within(times_ns: NDArray[np.integer], t_ns: int, tolerance_ns: int) -> int:
    """Index of the element of the sorted ``times_ns`` nearest to ``t_ns`` within ``tolerance_ns``; -1 if none."""
    times = np.asarray(times_ns, dtype=np.int64)
    if times.size == 0:
        return -1
    i = int(np.searchsorted(times, int(t_ns)))
    best = -1
    for j in (i - 1, i):
        if 0 <= j < times.size and abs(int(times[j]) - int(t_ns)) <= tolerance_ns:
            if best < 0 or abs(int(times[j]) - int(t_ns)) < abs(int(times[best]) - int(t_ns)):
                best = j
    return best


def fusion_latencies_ms(evidence_log_ns: NDArray[np.integer], evidence_stamp_ns: NDArray[np.integer],
                        publish_log_ns: NDArray[np.integer]) -> NDArray[np.float64]:
    """Per evidence message: log time of the first common grid published at or after the evidence's log
    time, minus the evidence stamp, in ms. Evidence after the last publication has no latency (dropped)."""
    log = np.asarray(evidence_log_ns, dtype=np.int64)
    stamp = np.asarray(evidence_stamp_ns, dtype=np.int64)
    pub = np.sort(np.asarray(publish_log_ns, dtype=np.int64))
    if log.shape != stamp.shape:
        raise ConfigError(f'evidence log times {log.shape} and stamps {stamp.shape} differ in shape')
    idx = np.searchsorted(pub, log, side='left')
    ok = idx < pub.size
    return (pub[idx[ok]] - stamp[ok]).astype(np.float64) / 1e6


def percentiles(values: Sequence[float] | NDArray[np.floating]) -> dict[str, float] | None:
    """``{"p50", "p95"}`` (linear interpolation) of the finite values; None when there are none."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return {'p50': float(np.percentile(v, 50)), 'p95': float(np.percentile(v, 95))}


def warning_episodes(times_ns: Sequence[int] | NDArray[np.integer], gap_ns: int = EPISODE_GAP_NS
                     ) -> list[tuple[int, int]]:
    """(start, end) ns of each episode of the warning log times: consecutive warnings no more than
    ``gap_ns`` apart belong to one episode."""
    t = np.sort(np.asarray(times_ns, dtype=np.int64).reshape(-1))
    if t.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) > gap_ns)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [t.size - 1]])
    return [(int(t[a]), int(t[b])) for a, b in zip(starts, ends)]


def lead_times_s(meeting_ns: Mapping[str, int | None], first_warning_ns: Mapping[str, int]
                 ) -> dict[str, float | None]:
    """Per vehicle with a meeting time: meeting - first warning, seconds (None if never warned);
    plus ``"min"`` over the vehicles that have a value (None if none)."""
    out: dict[str, float | None] = {}
    for vid, meet in sorted(meeting_ns.items()):
        if meet is None:
            continue
        first = first_warning_ns.get(vid)
        out[vid] = None if first is None else (int(meet) - int(first)) * 1e-9
    values = [v for v in out.values() if v is not None]
    out['min'] = min(values) if values else None
    return out


def horizon_key(offset_ns: int, horizons_s: Sequence[float], tolerance_s: float = 0.1) -> float | None:
    """The configured horizon (s) nearest to ``offset_ns`` (header stamp - publish time), None if none
    lies within ``tolerance_s``."""
    if not horizons_s:
        return None
    dt = int(offset_ns) * 1e-9
    best = min(horizons_s, key=lambda h: abs(h - dt))
    return float(best) if abs(best - dt) <= tolerance_s else None


def cells_on(spec: GridSpec, cells: NDArray[np.integer], target: GridSpec) -> tuple[GridSpec, NDArray[np.int8]]:
    """``cells`` of a grid brought to ``target``'s resolution: unchanged when equal, each cell repeated
    k×k when its resolution is an integer multiple k of the target's. ConfigError otherwise."""
    cells = np.asarray(cells)
    ratio = spec.resolution / target.resolution
    if math.isclose(ratio, 1.0, rel_tol=1e-6):
        return spec, cells.astype(np.int8, copy=False)
    k = int(round(ratio))
    if k >= 2 and math.isclose(ratio, k, rel_tol=1e-6):
        out = np.repeat(np.repeat(cells, k, axis=0), k, axis=1).astype(np.int8, copy=False)
        return GridSpec(spec.origin_x, spec.origin_y, target.resolution, spec.width * k, spec.height * k,
                        spec.yaw), out
    raise ConfigError(f'grid resolution {spec.resolution} m is not an integer multiple of the truth '
                      f'grid resolution {target.resolution} m')


def median_or_none(values: Sequence[float]) -> float | None:
    """Median of the finite values, None when there are none."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=np.float64)
    return float(np.median(v)) if v.size else None


@dataclass(frozen=True)
class SeeThroughSnapshot:
    """What the see-through picture shows: one truth frame and the grids compared with it.

    spec : the truth grid; truth_cells, common_cells, ego_cells : (height, width) int8 percent on it
        (-1 unknown; ego_cells None when the vehicle has no evidence)
    boxes : the true objects; platoon_ids, hazard_ids : which of them are platoon vehicles / hazards
    roi : (height, width) bool; reason : why this frame was chosen
    """

    stamp_ns: int
    vehicle: str
    spec: GridSpec
    truth_cells: NDArray[np.int8]
    common_cells: NDArray[np.int8]
    ego_cells: NDArray[np.int8] | None
    boxes: tuple[Box, ...]
    platoon_ids: tuple[str, ...]
    hazard_ids: tuple[str, ...]
    roi: NDArray[np.bool_]
    reason: str


# ------------------------------------------------------------------ warnings judged against truth

#: Bumper gap (metres) within which a vehicle and an object are in conflict: the twin's ERROR gap
#: (``conflicts.gap_error_m``; ``evaluate`` takes it from the twin's config).
CONFLICT_DISTANCE_M = 5.0
#: A warning's obstacle position names a truth object when it lies within this of the object's box, metres.
OBSTACLE_MATCH_M = 2.0
#: A conflict is missed unless a true warning about it came at least this long before it, ns ...
MIN_WARNING_NS = 1_000_000_000
#: ... or, for one that truth shows too late for that (a car cutting in close ahead), within this of showing, ns.
SUDDEN_WARNING_NS = 500_000_000
#: Time step of the no-reaction judgement, seconds.
JUDGE_STEP_S = 0.05
#: An object moving across the road moves by at most this in the judgement (one lane change), metres.
LANE_CHANGE_M = 3.5


def box_distance(box: Box, xy: NDArray[np.floating]) -> float:
    """Distance (metres) from a point (2,) to a box's footprint, 0 inside it."""
    loc = box.to_local(np.asarray(xy, dtype=np.float64))
    dx = max(abs(float(loc[0])) - 0.5 * box.length, 0.0)
    dy = max(abs(float(loc[1])) - 0.5 * box.width, 0.0)
    return math.hypot(dx, dy)


def moved(box: Box, dt_s: float) -> Box:
    """The box ``dt_s`` seconds later at its velocity."""
    return replace(box, center_x=box.center_x + box.vx * dt_s, center_y=box.center_y + box.vy * dt_s)


def _relative(vehicle: Box, other: Box, road: RoadModel | None
              ) -> tuple[float, float, float, float, float, float]:
    """``other`` relative to ``vehicle``: position along / across (m), velocity along / across (m/s), and
    the half extents of the pair along / across (m). In the vehicle's frame, or along ``road`` when given
    (positions as road coordinates, velocities and yaws on the road's heading where each box is)."""
    if road is None:
        c, s = math.cos(vehicle.yaw), math.sin(vehicle.yaw)
        rx, ry = other.center_x - vehicle.center_x, other.center_y - vehicle.center_y
        dvx, dvy = other.vx - vehicle.vx, other.vy - vehicle.vy
        yaw_v, yaw_o = 0.0, other.yaw - vehicle.yaw
        px0, py0, vxl, vyl = c * rx + s * ry, -s * rx + c * ry, c * dvx + s * dvy, -s * dvx + c * dvy
    else:
        xy = np.array([[vehicle.center_x, vehicle.center_y], [other.center_x, other.center_y]])
        sd, dd = road.to_road(xy)
        vs, vd = road.velocity_to_road(xy, np.array([[vehicle.vx, vehicle.vy], [other.vx, other.vy]]))
        heading = road.heading_at(sd)
        yaw_v, yaw_o = vehicle.yaw - float(heading[0]), other.yaw - float(heading[1])
        px0, py0 = float(sd[1] - sd[0]), float(dd[1] - dd[0])
        vxl, vyl = float(vs[1] - vs[0]), float(vd[1] - vd[0])

    def extents(box: Box, yaw: float) -> tuple[float, float]:
        c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
        return 0.5 * (c * box.length + s * box.width), 0.5 * (s * box.length + c * box.width)

    (av, cv), (ao, co) = extents(vehicle, yaw_v), extents(other, yaw_o)
    return px0, py0, vxl, vyl, av + ao, cv + co


def conflict_time_s(vehicle: Box, other: Box, horizon_s: float, distance_m: float = CONFLICT_DISTANCE_M,
                    step_s: float = JUDGE_STEP_S, road: RoadModel | None = None) -> float:
    """Seconds until ``other`` comes within ``distance_m`` (bumper gap) of ``vehicle`` in front of it, both
    keeping their velocities (no reaction), within ``horizon_s``; inf when it does not.

    In the vehicle's frame, or along ``road`` when given (both keep their speeds along the road and their
    lateral offsets from it: on a curve they follow the road, not their headings' straight lines): the
    other's centre is ahead of the vehicle's centre now, the boxes overlap across the road at that time,
    and the gap along it is at most ``distance_m``. Motion across is a lane change, not a drift: towards
    the vehicle's centre line it stops there (a car merging into the vehicle's lane ends in it), away from
    it after ``LANE_CHANGE_M``.
    """
    px0, py0, vxl, vyl, along, across = _relative(vehicle, other, road)
    if px0 <= 0.0:
        return math.inf
    t = np.arange(int(math.floor(horizon_s / step_s + 1e-9)) + 1) * step_s
    shift = np.clip(vyl * t, -LANE_CHANGE_M, LANE_CHANGE_M)
    if py0 * vyl < 0:
        shift = np.clip(shift, -abs(py0), abs(py0))
    px, py = px0 + vxl * t, py0 + shift
    hit = (np.abs(px) - along <= distance_m) & (np.abs(py) < across)
    return float(t[np.argmax(hit)]) if hit.any() else math.inf


#: The truth road is fitted to the leader's true path this long either side of the judged moment, seconds.
TRUTH_ROAD_WINDOW_S = 10.0
#: A fitted truth road curving less than this (1/m; radius 5 km) is not used: the vehicle's own frame judges
#: a straight road as well, and a lane change of the leader does not make a curve.
TRUTH_ROAD_MIN_CURVATURE_PER_M = 2e-4


class TruthRoad:
    """The road as the platoon leader truly drove it: per stamp, a line or arc (:class:`RoadModel`) fitted
    to the leader's true positions within ``TRUTH_ROAD_WINDOW_S`` either side (the future included: this
    is truth, not a prediction). :meth:`at` gives None where the path is straight (the vehicle's frame then
    judges as well) or cannot be fitted."""

    def __init__(self, stamps_ns: NDArray[np.integer], xy: NDArray[np.floating],
                 window_s: float = TRUTH_ROAD_WINDOW_S) -> None:
        self.t = np.asarray(stamps_ns, dtype=np.int64)
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.window_ns = int(window_s * 1e9)
        # every path point weighs the same; outliers are not expected in truth
        self.cfg = RoadConfig(weight_length_m=1e9, axis_snap_heading_rad=0.0, axis_snap_curvature_per_m=0.0,
                              axis_snap_offset_m=0.0)
        self._cache: dict[int, RoadModel | None] = {}

    def at(self, t_ns: int) -> RoadModel | None:
        key = int(t_ns) // 500_000_000                # one fit per half second
        if key in self._cache:
            return self._cache[key]
        mid = key * 500_000_000 + 250_000_000
        sel = (self.t >= mid - self.window_ns) & (self.t <= mid + self.window_ns)
        pts = self.xy[sel]
        road: RoadModel | None = None
        if len(pts) >= self.cfg.min_points:
            try:
                road = RoadModel.from_path(pts, self.cfg)
            except CooperativeFusionError:
                road = None
            if road is not None and abs(float(road.curvature_at(0.0))) < TRUTH_ROAD_MIN_CURVATURE_PER_M:
                road = None
        self._cache[key] = road
        return road


@dataclass(frozen=True)
class WarningRecord:
    """One WARN/ERROR status of ``/twin/warnings``: log (publish) and header stamps (ns), the warned vehicle,
    the object it names and that object's position at the stamp (NaN when not given), the message."""

    log_ns: int
    stamp_ns: int
    vehicle: str
    object: str
    obstacle_x: float
    obstacle_y: float
    message: str = ''


@dataclass(frozen=True)
class Judgement:
    """A warning judged against truth: the truth objects its obstacle names, and which of those would come
    within the conflict distance of the vehicle within the horizon (then the warning is true)."""

    warning: WarningRecord
    named: tuple[str, ...]
    conflicting: tuple[str, ...]

    @property
    def true(self) -> bool:
        return bool(self.conflicting)


def judge_warning(w: WarningRecord, boxes: Sequence[Box], horizon_s: float,
                  distance_m: float = CONFLICT_DISTANCE_M, match_m: float = OBSTACLE_MATCH_M,
                  road: RoadModel | None = None) -> Judgement:
    """Judge one warning on the truth ``boxes`` at its stamp (each carrying its velocity), along ``road`` when
    given (a curve). The vehicle's own box is never the named obstacle; a warning without a vehicle box or an
    obstacle position is not true."""
    own = next((b for b in boxes if b.id == w.vehicle), None)
    if own is None or not (math.isfinite(w.obstacle_x) and math.isfinite(w.obstacle_y)):
        return Judgement(w, (), ())
    xy = np.array([w.obstacle_x, w.obstacle_y])
    named = tuple(b.id for b in boxes if b.id != w.vehicle and box_distance(b, xy) <= match_m)
    by_id = {b.id: b for b in boxes}
    conflicting = tuple(i for i in named
                        if math.isfinite(conflict_time_s(own, by_id[i], horizon_s, distance_m, road=road)))
    return Judgement(w, named, conflicting)


@dataclass(frozen=True)
class Episode:
    """A run of warnings to one vehicle about one object (log-time gaps below 1 s).

    true : at least one of its warnings is true; true_share : the fraction that are
    truth_ids : the truth objects its warnings named; reason : the first warning's message
    """

    vehicle: str
    object: str
    start_ns: int
    end_ns: int
    count: int
    true_share: float
    truth_ids: tuple[str, ...]
    reason: str

    @property
    def true(self) -> bool:
        return self.true_share > 0.0


def episodes_of(judged: Sequence[Judgement], gap_ns: int = EPISODE_GAP_NS) -> list[Episode]:
    """Warning episodes: per (vehicle, object), runs of warnings whose log times are less than ``gap_ns``
    apart; in start order."""
    groups: dict[tuple[str, str], list[Judgement]] = {}
    for j in sorted(judged, key=lambda j: j.warning.log_ns):
        groups.setdefault((j.warning.vehicle, j.warning.object), []).append(j)
    out = []
    for (vid, obj), js in groups.items():
        run: list[Judgement] = []
        for j in js + [None]:
            if j is not None and (not run or j.warning.log_ns - run[-1].warning.log_ns < gap_ns):
                run.append(j)
                continue
            ids = sorted({i for r in run for i in r.named})
            out.append(Episode(vid, obj, run[0].warning.log_ns, run[-1].warning.log_ns, len(run),
                               sum(r.true for r in run) / len(run), tuple(ids), run[0].warning.message))
            run = [j] if j is not None else []
    return sorted(out, key=lambda e: (e.start_ns, e.vehicle, e.object))


@dataclass(frozen=True)
class TruthConflict:
    """A conflict truth shows: ``vehicle`` would come within the conflict distance of ``object`` within the
    horizon if nobody braked, over the truth frames first_ns..last_ns; at ``moment_ns`` at the earliest."""

    vehicle: str
    object: str
    first_ns: int
    last_ns: int
    moment_ns: int


def truth_conflicts(frames: Sequence[tuple[int, Sequence[Box]]], vehicles: Sequence[str], horizon_s: float,
                    distance_m: float = CONFLICT_DISTANCE_M, gap_ns: int = EPISODE_GAP_NS,
                    road: TruthRoad | None = None) -> list[TruthConflict]:
    """Conflicts in the truth frames (stamp ns, boxes with velocities), per (vehicle, object): frames showing
    one less than ``gap_ns`` apart are one conflict; its moment is the earliest frame stamp + time to it.
    ``road``: judged along the true road where it curves (:class:`TruthRoad`).
    In each frame only the object a vehicle would reach first counts (what lies beyond it is reached, if at
    all, through it)."""
    found: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for stamp, boxes in sorted(frames, key=lambda f: f[0]):
        by_id = {b.id: b for b in boxes}
        at = road.at(int(stamp)) if road is not None else None
        for vid in vehicles:
            own = by_id.get(vid)
            if own is None:
                continue
            times = {b.id: conflict_time_s(own, b, horizon_s, distance_m, road=at) for b in boxes if b.id != vid}
            first = min(times.values(), default=math.inf)
            for bid, t in times.items():
                if math.isfinite(t) and t <= first + 1e-9:
                    found.setdefault((vid, bid), []).append((int(stamp), int(stamp) + int(round(t * 1e9))))
    out = []
    for (vid, obj), rows in found.items():
        run: list[tuple[int, int]] = []
        for row in rows + [None]:
            if row is not None and (not run or row[0] - run[-1][0] < gap_ns):
                run.append(row)
                continue
            out.append(TruthConflict(vid, obj, run[0][0], run[-1][0], min(m for _, m in run)))
            run = [row] if row is not None else []
    return sorted(out, key=lambda c: (c.moment_ns, c.vehicle, c.object))


def warning_deadline_ns(c: TruthConflict, min_warning_ns: int = MIN_WARNING_NS,
                        sudden_ns: int = SUDDEN_WARNING_NS) -> int:
    """Latest log time of a true warning in time for conflict ``c``: ``min_warning_ns`` before its moment, or,
    when truth shows it later than ``sudden_ns`` before that (a car cutting in close ahead: nobody can warn
    1 s ahead of a conflict that exists for less than that), ``sudden_ns`` after it first shows."""
    return max(c.moment_ns - min_warning_ns, c.first_ns + sudden_ns)


def _true_warning_times(judged: Sequence[Judgement]) -> dict[tuple[str, str], list[int]]:
    """(vehicle, truth object) -> sorted log times of the true warnings to the vehicle about that object."""
    out: dict[tuple[str, str], list[int]] = {}
    for j in judged:
        for obj in j.conflicting:
            out.setdefault((j.warning.vehicle, obj), []).append(int(j.warning.log_ns))
    return {k: sorted(v) for k, v in out.items()}


def missed_conflicts(conflicts: Sequence[TruthConflict], judged: Sequence[Judgement],
                     min_warning_ns: int = MIN_WARNING_NS, sudden_ns: int = SUDDEN_WARNING_NS
                     ) -> list[TruthConflict]:
    """The conflicts for which the vehicle got no true warning naming that object (log time) by
    :func:`warning_deadline_ns`."""
    times = _true_warning_times(judged)
    return [c for c in conflicts
            if (c.vehicle, c.object) not in times
            or times[(c.vehicle, c.object)][0] > warning_deadline_ns(c, min_warning_ns, sudden_ns)]


def warning_delays_ns(conflicts: Sequence[TruthConflict], judged: Sequence[Judgement],
                      gap_ns: int = EPISODE_GAP_NS) -> list[tuple[TruthConflict, int | None]]:
    """Per conflict, how long after truth first showed it the vehicle got its first true warning about that
    object (log time minus ``first_ns``, ns; <= 0 when warned as it showed), None when none came while it
    lasted (true warnings from ``gap_ns`` before it showed to ``gap_ns`` after its last frame count)."""
    times = _true_warning_times(judged)
    out: list[tuple[TruthConflict, int | None]] = []
    for c in conflicts:
        during = [t for t in times.get((c.vehicle, c.object), []) if c.first_ns - gap_ns <= t <= c.last_ns + gap_ns]
        out.append((c, during[0] - c.first_ns if during else None))
    return out


def hazard_lead_times_s(judged: Sequence[Judgement], hazard_ids: Sequence[str],
                        reach_ns: Mapping[str, int | None], vehicles: Sequence[str]) -> dict[str, float | None]:
    """Per vehicle with a moment it would reach a hazard (``reach_ns``): that moment minus the log time of its
    first true warning about a hazard, seconds (None if it got none); plus ``"min"`` over the values."""
    hazards = set(hazard_ids)
    first: dict[str, int] = {}
    for j in judged:
        if hazards & set(j.conflicting):
            v = j.warning.vehicle
            first[v] = min(first.get(v, j.warning.log_ns), j.warning.log_ns)
    out: dict[str, float | None] = {}
    for vid in vehicles:
        meet = reach_ns.get(vid)
        if meet is None:
            continue
        out[vid] = None if vid not in first else (int(meet) - first[vid]) * 1e-9
    values = [v for v in out.values() if v is not None]
    out['min'] = min(values) if values else None
    return out
