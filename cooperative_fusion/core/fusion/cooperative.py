"""The fusion node's whole work as one core object: evidence of every vehicle -> one common grid.

:class:`CooperativeFusion` owns the :class:`CommonGrid`, the consistency check,
the dynamic layer, co-registration and, per vehicle, its odometry, clock fit,
link statistics and latest evidence. The fusion node subscribes, converts
messages to arrays, calls :meth:`~CooperativeFusion.add` (and ``add_odometry``,
``add_radar``, ``add_time_reference``, ``coregister``), publishes what
:meth:`~CooperativeFusion.publish` returns and reports the health values. Stamps
are common time, int ns, unless named ``*_vehicle_ns``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from ..drops import Cause
from ..errors import ConfigError
from ..grid import YAW_TOLERANCE_RAD, GridSpec
from ..link import LinkMonitor, age_limit_ns
from ..timebase import ClockEstimator
from .common_grid import CommonGrid, DropCause, Footprint, draw_members, drop_member_hits, member_box_window, \
    onto_yaw, resample_to_resolution
from .config import FusionNodeConfig, WindowMode
from .consistency import ConsistencyChecker
from .body_registration import BodyFit, face_points, fit_body, may_hold_faces, solve_bodies, to_map, visible_sides
from .coregistration import CoregResult, occupied_points, persistent_points, register_platoon
from .correction import Correction, mask_on, warp_evidence
from .dynamic import SWEEP_PERIOD_RANGE_S, SWEEP_STAMPS_KEPT, DynamicLayer, RadarTargets, small_median
from ..morphology import column_bounds
from .publish_policy import PublishPolicy, PublishPolicyConfig
from .window import road_window


class InputDrop(str, Enum):
    """Drop causes of the fusion's inputs besides :class:`DropCause` (core.drops vocabulary, and two of its own)."""

    MALFORMED = Cause.MALFORMED.value    # OccupancyGrid whose layout does not match its fields
    FRAME = Cause.FRAME.value            # evidence or odometry not in the fusion frame
    COVARIANCE = Cause.COVARIANCE.value  # odometry xy covariance non-finite or not PSD (pose and last good cov kept)
    DUPLICATE = Cause.DUPLICATE.value    # evidence with the stamp of one already fused (a re-delivery)
    MALFORMED_ODOM = 'malformed_odom'    # odometry with a non-finite position / orientation / twist
    MALFORMED_RADAR = 'malformed_radar'  # radar targets without x, y, velocity or not in the fusion frame


#: Every cause a vehicle's drops are reported under (diagnostics ``drops.<cause>``, 0 when none).
VEHICLE_CAUSES: tuple[str, ...] = (*(c.value for c in DropCause if c is not DropCause.UNKNOWN_VEHICLE),
                                   *(c.value for c in InputDrop))


class Health(str, Enum):
    """A vehicle's health as /diagnostics reports it."""

    OK = 'ok'
    WARN = 'warn'
    STALE = 'stale'


@dataclass(frozen=True)
class AddResult:
    """What became of one input: accepted, or dropped with ``cause`` (a diagnostics key) and ``detail``.

    publish : evidence only: publish now (:class:`~.publish_policy.PublishPolicy`: the rate limit has passed)
    """

    accepted: bool
    cause: str | None = None
    detail: str = ''
    publish: bool = False


@dataclass(frozen=True)
class GridOutput:
    """One published common grid: cells (H, W) int8 percent (-1 unknown) on ``spec``, stamped ``stamp_ns``;
    latencies_ms : publish - sensor stamp of the evidence fused since the previous grid, ms."""

    spec: GridSpec
    cells: NDArray[np.int8]
    stamp_ns: int
    latencies_ms: NDArray[np.float64]


@dataclass(frozen=True)
class VehicleReport:
    """One vehicle's health: level, one-line message and the diagnostics values (see :meth:`vehicle_report`)."""

    health: Health
    state: str
    message: str
    values: dict[str, object]


@dataclass
class _Evidence:
    spec: GridSpec
    logodds: NDArray[np.float32]
    known: NDArray[np.bool_]
    stamp_ns: int


@dataclass
class VehicleState:
    """What the fusion keeps per configured vehicle: odometry, clock fit, link, latest evidence, correction."""

    position: NDArray[np.float64] | None = None
    yaw: float = 0.0
    speed: float = 0.0
    pose_ns: int | None = None
    cov_xy: NDArray[np.float64] | None = None
    evidence: _Evidence | None = None
    correction: Correction = Correction()
    coreg_last: CoregResult | None = None
    coreg_updates: int = 0
    coreg_static_points: int = 0
    # (stamp ns, occupied points (N, 2) m) of recent evidence, uncorrected: the static-structure filter
    coreg_history: deque[tuple[int, NDArray[np.float64]]] = field(default_factory=deque)
    # (stamp ns, static points (N, 2) m, odometry position (2,) m at the stamp) of recent evidence,
    # uncorrected: accumulated for registration
    coreg_static: deque[tuple[int, NDArray[np.float64], NDArray[np.float64]]] = field(default_factory=deque)
    # (stamp ns, observer id, cells (K, 2) m in this member's odometry body frame, the sides (4,) facing the
    # observer) of its faces in the others' evidence, uncorrected: body registration (core.fusion.body_registration)
    body_faces: deque[tuple[int, str, NDArray[np.float64], NDArray[np.bool_]]] = field(default_factory=deque)
    body_fits: dict[str, BodyFit] = field(default_factory=dict)     # observer -> the latest fit of this body
    body_updates: int = 0
    fused_stamps: deque[int] = field(default_factory=lambda: deque(maxlen=64))   # recent accepted, ns
    radar: deque[tuple[int, NDArray[np.float64]]] = field(default_factory=lambda: deque(maxlen=8))  # (stamp, xyv)
    # the vehicle's clock -> common time, from its time references: odometry stamps are in the vehicle clock
    clock: ClockEstimator = field(default_factory=ClockEstimator)
    # latency, loss, reordering of the evidence stream as it arrives
    link: LinkMonitor = field(default_factory=LinkMonitor)


def quat_wxyz_yaw(q: NDArray[np.floating]) -> float:
    """Yaw (rad) of a unit quaternion (w, x, y, z)."""
    w, x, y, z = (float(v) for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def platoon_center(positions: Sequence[NDArray[np.floating]], yaws: Sequence[float], forward_offset_m: float
                   ) -> NDArray[np.float64]:
    """Centroid of the vehicle positions (N, 2), moved ``forward_offset_m`` along the mean heading."""
    p = np.mean(np.asarray(positions, dtype=np.float64).reshape(-1, 2), axis=0)
    h = np.array([np.mean(np.cos(yaws)), np.mean(np.sin(yaws))])
    n = float(np.hypot(*h))
    return p + (forward_offset_m * h / n if n > 1e-6 else 0.0)


class CooperativeFusion:
    """Every configured vehicle's evidence, odometry and radar targets -> the common grid (README: fusion)."""

    def __init__(self, config: FusionNodeConfig, grid: CommonGrid | None = None) -> None:
        """``grid``: the common grid to fuse into (default: a CommonGrid of ``config.fusion``; a fusion shard
        passes its evidence accumulator, :mod:`.shards`)."""
        cfg = self.config = config
        self.grid = grid if grid is not None else CommonGrid(cfg.fusion)
        self.consistency = ConsistencyChecker(cfg.consistency) if cfg.consistency is not None else None
        self.dynamic = DynamicLayer(cfg.dynamic) if cfg.dynamic is not None else None
        self.vehicles = {v: VehicleState(link=LinkMonitor(cfg.link_window_ns, min_samples=cfg.link_min_samples))
                         for v in cfg.vehicles}
        #: the node clock -> common time (time_reference_topic); None: the node clock is common time
        self.clock_map = ClockEstimator() if cfg.time_reference_topic else None
        # A member's body is as certain as the grid allows: the upper clamp.
        self._body_percent = int(round(100.0 / (1.0 + math.exp(-cfg.fusion.clamp_max))))
        self._placed = cfg.window_mode is WindowMode.FIXED
        self._window_center: NDArray[np.float64] | None = None
        #: evidence grids brought from another yaw onto the common lattice (nearest cell)
        self.resampled_evidence = 0
        self._grown: dict[Footprint, Footprint] = {}     # a member's footprint -> its dynamic-layer zone
        #: when to publish between heartbeats: on new evidence, rate-limited, with a deadline
        self.publish_policy = PublishPolicy(PublishPolicyConfig(min_interval_ns=cfg.publish_min_interval_ns,
                                                                max_delay_ns=cfg.publish_max_delay_ns))

    # ------------------------------------------------------------------ time --

    def add_time_reference(self, stamp_vehicle_ns: int, common_ns: int, vehicle_id: str | None = None) -> None:
        """One (clock, common time) pair: of ``vehicle_id``'s clock, or of the node clock when None."""
        if vehicle_id is not None:
            # an outlier is rejected by the fit and shows as clock.rejected
            self.vehicles[vehicle_id].clock.add(stamp_vehicle_ns, common_ns)
        elif self.clock_map is not None:
            self.clock_map.add(stamp_vehicle_ns, common_ns)

    def common_time(self, node_clock_ns: int) -> int:
        """Common time of a node clock reading, ns (the reading itself until a time reference is heard)."""
        if self.clock_map is not None and self.clock_map.n_samples > 0:
            return int(self.clock_map.to_common(node_clock_ns))
        return node_clock_ns

    def evidence_max_age_ns(self, vehicle_id: str, now_ns: int) -> int:
        """Age limit of the vehicle's evidence: fusion.max_age_s with its link allowance, ns."""
        return self._with_link_allowance(self.config.fusion.max_age_ns, self.vehicles[vehicle_id], now_ns)

    def object_max_age_ns(self, vehicle_id: str, now_ns: int) -> int | None:
        """Age limit of the vehicle's moving objects: dynamic.max_age_s with its link allowance, ns."""
        if self.config.dynamic is None:
            return None
        return self._with_link_allowance(self.config.dynamic.max_age_ns, self.vehicles[vehicle_id], now_ns)

    def _with_link_allowance(self, base_ns: int, st: VehicleState, now_ns: int) -> int:
        """``base_ns`` + the vehicle's evidence latency (median arrival - stamp over link.window_s)
        beyond link.nominal_latency_s, capped by link.latency_allowance_max_s, ns."""
        return self._age_limit(base_ns, st.link.latency_ns(now_ns))

    def _age_limit(self, base_ns: int, latency_ns: int | None) -> int:
        """``base_ns`` + the evidence latency ``latency_ns`` beyond link.nominal_latency_s, capped, ns."""
        return age_limit_ns(base_ns, latency_ns, self.config.latency_allowance_max_ns,
                            self.config.nominal_latency_ns)

    # ---------------------------------------------------------------- inputs --

    def add_odometry(self, vehicle_id: str, position: NDArray[np.floating], quat_wxyz: NDArray[np.floating],
                     speed_mps: float, cov_xy: NDArray[np.floating] | None, stamp_vehicle_ns: int,
                     now_ns: int) -> None:
        """The vehicle's latest pose: position (>= 2,) m in map, orientation (w, x, y, z), forward speed m/s,
        xy covariance (2, 2) m² (None: unusable, the last good one is kept: none at all would fuse the
        vehicle unblurred at full weight)."""
        st = self.vehicles[vehicle_id]
        st.position = np.asarray(position, dtype=np.float64)[:2].copy()
        st.yaw = quat_wxyz_yaw(quat_wxyz)
        st.speed = float(speed_mps) if math.isfinite(speed_mps) else 0.0
        # The stamp is in the vehicle clock: through the vehicle's clock fit it says when the pose was
        # true, however late the message came (a delayed link); until a time reference has been heard,
        # the receive time stands in for it. Never later than now.
        st.pose_ns = min(int(st.clock.to_common(stamp_vehicle_ns)), now_ns) if st.clock.n_samples else now_ns
        if cov_xy is not None:
            st.cov_xy = np.asarray(cov_xy, dtype=np.float64)

    def add_radar(self, vehicle_id: str, stamp_ns: int, xyv: NDArray[np.floating]) -> None:
        """The vehicle's radar targets in map: xyv (N, 3) x, y (m), radial velocity (m/s, ego-motion removed)."""
        self.vehicles[vehicle_id].radar.append((stamp_ns, np.asarray(xyv, dtype=np.float64)))

    def add(self, vehicle_id: str, spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_],
            stamp_ns: int, now_ns: int) -> AddResult:
        """Fuse one evidence grid of ``vehicle_id``: logodds (H, W) float32, known (H, W) bool on ``spec``.

        Its co-registration correction is applied (about the vehicle's odometry position at the stamp),
        hits on platoon members dropped, cells contradicting the others scaled down, moving components
        handed to the dynamic layer, the rest integrated into the common grid.
        """
        st = self.vehicles.get(vehicle_id)
        if st is None:
            return AddResult(False, DropCause.UNKNOWN_VEHICLE.value,
                             f'vehicle {vehicle_id!r} is not configured: expected one of {list(self.vehicles)}')
        cfg = self.config
        if stamp_ns - now_ns <= cfg.fusion.future_tolerance_ns:
            st.link.add(stamp_ns, now_ns)      # a stamp from the future says nothing about the link
        if stamp_ns in st.fused_stamps:
            return AddResult(False, InputDrop.DUPLICATE.value,
                             f'evidence at {stamp_ns} ns was fused already: fusing it twice would count it twice')
        st.evidence = _Evidence(spec, logodds, known, stamp_ns)
        self._remember_for_coregistration(vehicle_id, st)
        placing = not self._placed
        if placing:
            # follow_platoon before any odometry: start the window on the first evidence (and its yaw).
            mid = spec.to_map_frame(np.array([spec.origin_x + 0.5 * spec.size_x, spec.origin_y + 0.5 * spec.size_y]))
            self._place(mid, None if cfg.road_window is None else GridSpec.centered(
                float(mid[0]), float(mid[1]), cfg.size_x_m, cfg.size_y_m, cfg.resolution_m, spec.yaw))
        if abs(spec.yaw - self.grid.spec.yaw) > YAW_TOLERANCE_RAD and np.shape(logodds) == spec.shape \
                and np.shape(known) == spec.shape:
            # Another lattice (a vehicle's window turned by another step than the common one): every later
            # step works on the common lattice.
            spec, logodds, known = onto_yaw(spec, logodds, known, self.grid.spec.yaw,
                                            min(spec.resolution, self.grid.spec.resolution))
            self.resampled_evidence += 1
        members = self.member_poses(stamp_ns)         # the platoon at the stamp, for both steps below
        spec, logodds, known = self._prepare(vehicle_id, st, spec, logodds, known, stamp_ns, members)
        latency_ns = st.link.latency_ns(now_ns)       # one quantile for both age limits
        max_age_ns = self._age_limit(cfg.fusion.max_age_ns, latency_ns)
        if self.dynamic is not None:
            spec, logodds, known = self._split_moving(vehicle_id, st, spec, logodds, known, stamp_ns, now_ns,
                                                      max_age_ns,
                                                      self._age_limit(cfg.dynamic.max_age_ns, latency_ns), members)
        result = self.grid.integrate(vehicle_id, spec, logodds, known, stamp_ns, now_ns, st.cov_xy,
                                     max_age_ns=max_age_ns)
        if result.accepted:
            st.fused_stamps.append(stamp_ns)
            return AddResult(True, publish=self.publish_policy.evidence(now_ns))
        if placing:
            self._placed = False      # rejected evidence must not place the window: the next input does
        return AddResult(False, result.cause.value if result.cause is not None else None, result.reason)

    def _prepare(self, vehicle_id: str, st: VehicleState, spec: GridSpec, logodds: NDArray[np.float32],
                 known: NDArray[np.bool_], stamp_ns: int, members: list[tuple[float, float, float, Footprint]]
                 ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
        """The evidence corrected, without hits on ``members`` (:meth:`member_poses` at the stamp) and with
        conflicting cells scaled down."""
        cfg = self.config
        # What the consistency check compares: the evidence on its own lattice (the others' are on theirs).
        checked = None
        if not st.correction.is_identity:
            # About where the vehicle was at the stamp (the pose error travels with it).
            at = self._odom_at(st, stamp_ns)
            corr = st.correction.at(at[:2]) if at is not None else st.correction
            fine = self._fine(spec, logodds, known)
            if fine is not None:
                # Nearest-cell warping on a 0.4 m lattice would move the evidence by whole 0.4 m cells (a
                # 0.25 m correction by 0.4 m): warp on the common lattice; check the coarse warp.
                if self.consistency is not None:
                    checked = warp_evidence(spec, logodds, known, corr)
                spec, logodds, known = fine
            spec, logodds, known = warp_evidence(spec, logodds, known, corr)
        if cfg.footprints is not None:
            # The members' bodies are drawn at publish time; their faces seen at this stamp would lag.
            logodds, known, _ = drop_member_hits(spec, logodds, known, members, cfg.footprint_margin_m,
                                                 cfg.footprint_margin_behind_m)
            if checked is not None:
                checked = (checked[0], *drop_member_hits(*checked, members, cfg.footprint_margin_m,
                                                         cfg.footprint_margin_behind_m)[:2])
        if self.consistency is not None:
            # Cells contradicting two or more other vehicles are scaled down (the per-cell weight); free
            # road swept by what may have moved between two vehicles' stamps (along the vehicle's heading)
            # is not compared.
            pose = self._pose_at(st, stamp_ns)
            heading = (pose[2] if pose is not None else 0.0) - spec.yaw     # in the grid's frame
            if checked is None:
                logodds = self.consistency.check(vehicle_id, spec, logodds, known, stamp_ns, heading).logodds
            else:
                checked_result = self.consistency.check(vehicle_id, *checked, stamp_ns, heading)
                if checked_result.conflict_cells:
                    weight = self.consistency.config.conflict_weight
                    logodds = np.where(mask_on(checked[0], checked_result.conflict, spec),
                                       logodds * np.float32(weight), logodds).astype(np.float32)
        return spec, logodds, known

    def _fine(self, spec: GridSpec, logodds: NDArray[np.float32], known: NDArray[np.bool_]
              ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]] | None:
        """The evidence repeated onto the common resolution when it is coarser (a whole multiple), else None."""
        if spec.resolution <= self.grid.spec.resolution * (1.0 + 1e-6) or np.shape(logodds) != spec.shape \
                or np.shape(known) != spec.shape:
            return None
        try:
            return resample_to_resolution(spec, logodds, known, self.grid.spec.resolution, self.grid.spec)
        except ConfigError:
            return None          # not a whole multiple: integrate drops it with its cause

    def _split_moving(self, vehicle_id: str, st: VehicleState, spec: GridSpec, logodds: NDArray[np.float32],
                      known: NDArray[np.bool_], stamp_ns: int, now_ns: int, max_age_ns: int,
                      object_max_age_ns: int, members: list[tuple[float, float, float, Footprint]]
                      ) -> tuple[GridSpec, NDArray[np.float32], NDArray[np.bool_]]:
        """The static part of the evidence (on the common resolution); its moving components go to the
        dynamic layer (drawn while at most ``object_max_age_ns`` old; none next to ``members``). Evidence that
        integrate will drop (older than ``max_age_ns``, future, bad shape or geometry) is returned unchanged,
        so it is dropped with its cause and leaves no object."""
        cfg = self.config
        if now_ns - stamp_ns > max_age_ns \
                or stamp_ns - now_ns > cfg.fusion.future_tolerance_ns \
                or np.shape(logodds) != spec.shape or np.shape(known) != spec.shape:
            return spec, logodds, known
        try:
            r_spec, r_l, r_k = resample_to_resolution(spec, logodds, known, self.grid.spec.resolution,
                                                      self.grid.spec)
            self.grid.spec.lattice_offset(r_spec)
        except ConfigError:
            return spec, logodds, known
        pose = self._pose_at(st, stamp_ns)
        heading = pose[2] if pose is not None else 0.0
        radar = None
        if pose is not None and st.radar:
            r_stamp, xyv = min(st.radar, key=lambda item: abs(item[0] - stamp_ns))
            fp = cfg.footprints.get(vehicle_id) if cfg.footprints is not None else None
            # The radar sits at the front of the body (config/scenarios: 3.4 of 3.5 m, 9.55 of 9.5 m).
            front = fp.length_m - fp.rear_overhang_m if fp is not None else 0.0
            sensor = np.array([pose[0] + front * math.cos(heading), pose[1] + front * math.sin(heading)])
            radar = RadarTargets(r_stamp, xyv, sensor)
        zone = None
        if members:
            # Around each member's body (footprint margins + member_margin_m ahead and behind) a component
            # is a face of the member the margins missed (sensor timing): fused static, never an object.
            m = cfg.dynamic_member_margin_m
            zone = np.zeros(r_spec.shape, dtype=bool)
            for x, y, yaw, fp in members:
                grown = self._grown.get(fp)
                if grown is None:
                    grown = self._grown[fp] = Footprint(fp.length_m + 2.0 * m, fp.width_m, fp.rear_overhang_m + m)
                sl, body = member_box_window(r_spec, x, y, yaw, grown, cfg.footprint_margin_m,
                                             cfg.footprint_margin_behind_m)
                zone[sl] |= body
        lidar = None
        if pose is not None:
            # Sweep phase and face thinning look from the lidar, not base_link (a truck's sits 10-12 m ahead).
            fp = cfg.footprints.get(vehicle_id) if cfg.footprints is not None else None
            lx, ly = (fp.lidar_x_m, fp.lidar_y_m) if fp is not None else (0.0, 0.0)
            c, s = math.cos(heading), math.sin(heading)
            lidar = np.array([pose[0] + c * lx - s * ly, pose[1] + s * lx + c * ly])
        split = self.dynamic.split(vehicle_id, r_spec, r_l, r_k, stamp_ns, heading, radar,
                                   cfg.fusion.vehicle_weights.get(vehicle_id, 1.0), zone,
                                   max_age_ns=object_max_age_ns, sensor_xy=lidar)
        return split.spec, split.logodds, split.known

    # --------------------------------------------------------------- members --

    def _odom_at(self, st: VehicleState, t_ns: int) -> tuple[float, float, float] | None:
        """(x, y, yaw) of the vehicle's odometry at common time ``t_ns`` (its latest pose moved at its speed),
        uncorrected; None without odometry or when it is older than the vehicle timeout."""
        if st.position is None or st.pose_ns is None \
                or abs(t_ns - st.pose_ns) > self.config.fusion.vehicle_timeout_ns:
            return None
        dt = (t_ns - st.pose_ns) * 1e-9
        xy = st.position + st.speed * dt * np.array([math.cos(st.yaw), math.sin(st.yaw)])
        return float(xy[0]), float(xy[1]), st.yaw

    def _pose_at(self, st: VehicleState, t_ns: int) -> tuple[float, float, float] | None:
        """(x, y, yaw) of the vehicle at common time ``t_ns``: its odometry there through its co-registration
        correction (about itself: an offset and a heading change); None without recent odometry."""
        pose = self._odom_at(st, t_ns)
        if pose is None:
            return None
        c = st.correction
        return pose[0] + c.dx, pose[1] + c.dy, pose[2] + c.dyaw

    def member_poses(self, t_ns: int) -> list[tuple[float, float, float, Footprint]]:
        """(x, y, yaw, footprint) of every member with odometry, its latest pose moved at its odometry
        speed to common time ``t_ns`` and through its co-registration correction; members whose pose is
        older than ``fusion.vehicle_timeout_s`` are left out."""
        out: list[tuple[float, float, float, Footprint]] = []
        if self.config.footprints is None:
            return out
        for vid, st in self.vehicles.items():
            fp = self.config.footprints.get(vid)
            pose = self._pose_at(st, t_ns) if fp is not None else None
            if pose is not None:
                out.append((*pose, fp))
        return out

    # --------------------------------------------------------------- publish --

    def _place(self, center: NDArray[np.float64], spec: GridSpec | None = None) -> None:
        """Recentre the window on ``center`` (x, y) when it moved by a cell or more (or turned): to ``spec``,
        default the axis-aligned window of the configured size around ``center``."""
        cfg = self.config
        if self._window_center is not None and self._placed and \
                float(np.max(np.abs(center - self._window_center))) < cfg.resolution_m and \
                (spec is None or spec.yaw == self.grid.spec.yaw):
            return
        if spec is None:
            spec = GridSpec.centered(float(center[0]), float(center[1]), cfg.size_x_m, cfg.size_y_m,
                                     cfg.resolution_m)
        if spec != self.grid.spec:
            self.grid.recenter(spec)
        self._window_center = np.asarray(center, dtype=np.float64).copy()
        self._placed = True

    @property
    def publish_holding(self) -> bool:
        """True while fused evidence waits for a grid (the check timer reads the clock only then)."""
        return self.publish_policy.holding

    def publish_due(self, now_ns: int) -> bool:
        """True when a grid is due at common time ``now_ns`` (the node's check timer): held evidence whose rate
        limit or deadline has passed."""
        return self.publish_policy.due(now_ns)

    def place_window(self) -> None:
        """follow_platoon: recentre the window on the platoon (odometry of every vehicle heard); fixed: nothing."""
        cfg = self.config
        if cfg.window_mode is WindowMode.FOLLOW_PLATOON:
            known = [st for st in self.vehicles.values() if st.position is not None]
            if known and cfg.road_window is not None:
                self._place(*road_window([st.position for st in known], [st.yaw for st in known],
                                         cfg.road_window, self.grid.spec.yaw if self._placed else None))
            elif known:
                self._place(platoon_center([st.position for st in known], [st.yaw for st in known],
                                           cfg.forward_offset_m))

    def publish(self, now_ns: int) -> GridOutput:
        """One fusion cycle at common time ``now_ns``: place the window, decay, draw the moving objects
        where they are now and the members' bodies; the grid to publish."""
        cfg = self.config
        self.place_window()
        self.grid.advance(now_ns)
        cells = self.grid.posterior_percent()
        if self.dynamic is not None:
            cells = self.dynamic.draw(self.grid.spec, cells, now_ns)
        if cfg.footprints is not None:
            cells = draw_members(self.grid.spec, cells, self.member_poses(now_ns), self._body_percent)
        self.publish_policy.published(now_ns)
        return GridOutput(self.grid.spec, cells, now_ns, self.grid.latency_ms(now_ns))

    # -------------------------------------------------------- co-registration --

    def _remember_for_coregistration(self, vehicle_id: str, st: VehicleState) -> None:
        """Keep the occupied cells of the vehicle's latest evidence for the static-structure filter
        (as long as the filter may still need them: static_min_age + a vehicle timeout), its static
        cells for accumulation (accumulate_s; the latest only when 0) and, with body registration, the
        cells on the other members' bodies."""
        cfg = self.config
        if not cfg.coreg_enabled or st.evidence is None:
            return
        ev = st.evidence
        points = occupied_points(ev.spec, logodds=ev.logodds, known=ev.known)
        if cfg.coreg.body_enabled:
            self._remember_faces(vehicle_id, st, points, ev.stamp_ns)
        static = self._static_points(st, points, ev.stamp_ns, ev.spec.resolution)
        if cfg.coreg_static_min_age_ns > 0:
            st.coreg_history.append((ev.stamp_ns, points))
            keep = cfg.coreg_static_min_age_ns + cfg.fusion.vehicle_timeout_ns
            while st.coreg_history and ev.stamp_ns - st.coreg_history[0][0] > keep:
                st.coreg_history.popleft()
        if static is not None:
            # Where the vehicle was: its correction turns these points about there (NaN: no odometry yet,
            # the points are not registered).
            at = self._odom_at(st, ev.stamp_ns)
            st.coreg_static.append((ev.stamp_ns, static, np.array(at[:2] if at is not None else (math.nan,) * 2)))
        while st.coreg_static and ev.stamp_ns - st.coreg_static[0][0] > cfg.coreg_accumulate_ns:
            st.coreg_static.popleft()

    def _sweep_period_s(self, st: VehicleState) -> float | None:
        """The vehicle's evidence period (median of its last accepted intervals), seconds; None outside
        dynamic.SWEEP_PERIOD_RANGE_S or before two evidence grids."""
        stamps = list(st.fused_stamps)[-SWEEP_STAMPS_KEPT:]
        if len(stamps) < 2:
            return None
        period = small_median(np.diff(np.asarray(stamps, dtype=np.int64))) * 1e-9
        return period if SWEEP_PERIOD_RANGE_S[0] <= period <= SWEEP_PERIOD_RANGE_S[1] else None

    def _remember_faces(self, vehicle_id: str, st: VehicleState, points: NDArray[np.float64], stamp_ns: int) -> None:
        """The occupied cells (N, 2) m of ``vehicle_id``'s evidence at ``stamp_ns`` on each other member's
        body, in that member's odometry body frame (uncorrected on both sides: the relative measurement of
        their odometry errors), kept by the member for accumulate_s."""
        cfg = self.config
        observer = self._odom_at(st, stamp_ns)
        period = self._sweep_period_s(st)
        if cfg.footprints is None or observer is None or period is None or not len(points):
            return
        keep_ns = max(cfg.coreg_accumulate_ns, int(cfg.coreg_period_s * 1e9))
        lo, hi = column_bounds(points)
        for vid, other in self.vehicles.items():
            fp = cfg.footprints.get(vid)
            pose = self._odom_at(other, stamp_ns) if vid != vehicle_id and fp is not None else None
            if pose is not None and may_hold_faces(pose, fp, cfg.coreg.body_margin_m, lo, hi):
                velocity = other.speed * np.array([math.cos(pose[2]), math.sin(pose[2])])
                faces = face_points(points, pose, fp, cfg.coreg.body_margin_m, velocity, observer, period,
                                    cfg.coreg.body_behind_exclusion_deg)
                if len(faces):
                    other.body_faces.append((stamp_ns, vehicle_id, faces, visible_sides(pose, fp, observer[:2])))
            while other.body_faces and stamp_ns - other.body_faces[0][0] > keep_ns:
                other.body_faces.popleft()

    def _accumulated_static(self, st: VehicleState) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
        """The union (N, 2), metres, of the vehicle's static cells over its evidence of the last accumulate_s
        (one point per cell, oldest evidence first) and, per point, the vehicle's odometry position (N, 2)
        at the stamp of the newest evidence holding it; None before any evidence has static cells."""
        if not st.coreg_static:
            return None
        points = np.concatenate([p for _t, p, _c in st.coreg_static])
        pivots = np.concatenate([np.broadcast_to(c, p.shape) for _t, p, c in st.coreg_static])
        # Newest first into unique: each cell keeps its newest sighting.
        q = 0.01 * self.config.resolution_m
        _, first = np.unique(np.round(points[::-1] / q).astype(np.int64), axis=0, return_index=True)
        keep = len(points) - 1 - np.sort(first)[::-1]
        return points[keep], pivots[keep]

    def _static_points(self, st: VehicleState, points: NDArray[np.float64], stamp_ns: int, resolution_m: float
                       ) -> NDArray[np.float64] | None:
        """The points (cell centres at ``resolution_m``) of the evidence at ``stamp_ns`` that the vehicle's
        evidence at least ``static_min_age`` older also holds; all of them when the filter is off; None
        while no evidence is that old yet."""
        min_age = self.config.coreg_static_min_age_ns
        if min_age <= 0:
            return points
        earlier = [p for t, p in st.coreg_history if stamp_ns - t >= min_age]
        if not earlier:
            return None
        return persistent_points(points, earlier[-1], self.config.coreg_static_tolerance_m, resolution_m)

    def coregister(self, now_ns: int) -> bool:
        """One co-registration round over all fresh vehicles' static structure
        (:func:`~cooperative_fusion.core.fusion.coregistration.register_platoon`) and, with body registration,
        of the members' bodies in the others' evidence (:meth:`_register_bodies`); False when neither ran
        (fewer than two vehicles with static structure, no member's body seen well)."""
        cfg = self.config
        points: dict[str, NDArray[np.float64]] = {}
        pivots: dict[str, NDArray[np.float64]] = {}
        for vid, st in self.vehicles.items():
            ev = st.evidence
            if ev is not None and now_ns - ev.stamp_ns <= cfg.fusion.vehicle_timeout_ns:
                static = self._accumulated_static(st)
                if static is not None:
                    points[vid], pivots[vid] = static
                    st.coreg_static_points = len(static[0])
        # Each vehicle against the others' evidence moved by their estimates of this round, then the
        # platoon's median correction removed: registering to evidence as received pulled honest vehicles
        # towards a biased one (v2 +0.6-0.9 m towards a 0.5 m biased v1 on highway_occlusion_landmarks),
        # and registering to corrected evidence without an anchor let all corrections drift together.
        current = {vid: self.vehicles[vid].correction.as_result() for vid in points}
        results = register_platoon(points, pivots, current, cfg.coreg, cfg.coreg_sweeps) if len(points) >= 2 else {}
        bodies = self._register_bodies(now_ns, results) if cfg.coreg.body_enabled else {}
        if not results and not bodies:
            return False
        for vid, result in results.items():
            st = self.vehicles[vid]
            st.coreg_last = result
            if result.accepted and vid not in bodies:
                st.correction = st.correction.blend(result, cfg.coreg_smoothing)
                st.coreg_updates += 1
        for vid, (xy, dyaw) in bodies.items():
            st = self.vehicles[vid]
            target = CoregResult(float(xy[0]), float(xy[1]), dyaw, 1.0, 0.0, True, 'ok', st.correction.pivot)
            st.correction = st.correction.blend(target, cfg.coreg_smoothing)
            st.body_updates += 1
        return True

    @staticmethod
    def _neighbours(vid: str, poses: dict[str, tuple[float, float, float] | None]) -> set[str]:
        """The members nearest behind and nearest ahead of ``vid`` (along its heading, at ``poses``): only they
        see its rear / front face whole; a member further back sees it past the nearer one, partly hidden,
        and at a slant in a curve (on ``highway_occlusion_curve`` seed 3 v4's view of the truck v2 read
        -0.64 / -0.33 m for a true +0.2 / +0.05 m)."""
        own = poses[vid]
        if own is None:
            return set()
        u = np.array([math.cos(own[2]), math.sin(own[2])])
        along = {o: float(np.dot(np.array(p[:2]) - own[:2], u)) for o, p in poses.items() if o != vid and p is not None}
        behind = [o for o, a in along.items() if a < 0]
        ahead = [o for o, a in along.items() if a > 0]
        out = set()
        if behind:
            out.add(max(behind, key=along.__getitem__))
        if ahead:
            out.add(min(ahead, key=along.__getitem__))
        return out

    def _register_bodies(self, now_ns: int, static: dict[str, CoregResult]
                         ) -> dict[str, tuple[NDArray[np.float64], float]]:
        """{member: (translation correction (2,) m, heading correction rad)} of every member that the others'
        evidence saw well (:mod:`.body_registration`), combined with this round's accepted static fits;
        the heading is the static fit's when accepted, else the current one (a face does not give it)."""
        cfg = self.config
        keep_ns = max(cfg.coreg_accumulate_ns, int(cfg.coreg_period_s * 1e9))
        fits = []
        poses = {v: self._odom_at(st, now_ns) for v, st in self.vehicles.items()}
        for vid, st in self.vehicles.items():
            fp = cfg.footprints.get(vid) if cfg.footprints is not None else None
            pose = poses[vid]
            st.body_fits = {}
            if fp is None or pose is None:
                continue
            recent = [(o, p, s) for t, o, p, s in st.body_faces if now_ns - t <= keep_ns]
            for observer in sorted({o for o, _p, _s in recent} & self._neighbours(vid, poses)):
                cells = np.concatenate([p for o, p, _s in recent if o == observer])
                sides = np.concatenate([np.broadcast_to(s, (len(p), 4)) for o, p, s in recent if o == observer])
                seen = self.vehicles[observer].evidence
                cell_m = seen.spec.resolution if seen is not None else cfg.resolution_m
                fit = st.body_fits[observer] = fit_body(cells, fp, cfg.coreg, corner_m=cell_m, visible=sides)
                if fit.accepted and poses[observer] is not None:
                    fits.append((fit, vid, observer))
        if not fits:
            return {}
        # All pairs along and across the platoon's mean heading: each in its own member's heading, an
        # along-only pair would constrain the across offsets of an inconsistent loop through the members'
        # small heading differences (a 0.5 m loop residual turned into metres across).
        yaws = [p[2] for p in poses.values() if p is not None]
        heading = math.atan2(float(np.mean(np.sin(yaws))), float(np.mean(np.cos(yaws))))
        pairs = [to_map(fit, heading, vid, observer) for fit, vid, observer in fits]
        current = {v: np.array([st.correction.dx, st.correction.dy]) for v, st in self.vehicles.items()}
        anchors = {v: (np.array([r.dx, r.dy]), r.std_m) for v, r in static.items() if r.accepted}
        solved = solve_bodies(pairs, current, {v: st.cov_xy for v, st in self.vehicles.items()}, anchors)
        out = {}
        for vid, xy in solved.items():
            r = static.get(vid)
            dyaw = r.dyaw if r is not None and r.accepted else self.vehicles[vid].correction.dyaw
            out[vid] = (xy, dyaw)
        return out

    # ---------------------------------------------------------------- health --

    def grid_values(self, now_ns: int) -> dict[str, object]:
        """grid.* : window geometry; dynamic.objects : moving objects drawn now, dynamic.moving_total :
        moving components so far (with the dynamic layer)."""
        spec = self.grid.spec
        values: dict[str, object] = {
            'grid.width': spec.width, 'grid.height': spec.height, 'grid.resolution_m': spec.resolution,
            'grid.origin_x': spec.origin_x, 'grid.origin_y': spec.origin_y,
            'grid.yaw_deg': math.degrees(spec.yaw), 'grid.turns': self.grid.turns,
            'grid.resampled_evidence': self.resampled_evidence + self.grid.resampled_evidence}
        if self.dynamic is not None:
            values['dynamic.objects'] = len(self.dynamic.objects(now_ns))
            values['dynamic.moving_total'] = self.dynamic.moving_total
        return values

    def vehicle_report(self, vehicle_id: str, now_ns: int) -> VehicleReport:
        """Health, message and values of one vehicle (drop counts are the node's).

        state : active / dropped (silent longer than the timeout: WARN) / never_seen (STALE);
        last_seen_age_s; accepted; rejoins; weight;
        link.latency_ms / link.latency_p95_ms : evidence arrival - stamp (median / p95 over link.window_s),
        link.missing_share : share of the evidence stream missing over the window, link.reordered /
        link.duplicates : counts so far, link.evidence_max_age_s / link.object_max_age_s : the age limits
        in force (fusion.max_age_s / dynamic.max_age_s + the latency beyond link.nominal_latency_s, capped);
        clock.samples, clock.rejected, clock.offset_ms : the vehicle clock's fit to common time;
        coreg.dx, coreg.dy (m), coreg.dyaw_deg : the correction applied, about coreg.pivot_x/_y;
        coreg.fitness, coreg.rmse (m), coreg.accepted, coreg.reason : the latest estimate;
        coreg.updates : accepted estimates so far; coreg.static_points : static cells registered last;
        consistency.score (1 = agrees with the others), consistency.conflict_cells (latest message),
        consistency.conflict_cells_total, consistency.flagged (score below consistency.flag_below: WARN).
        """
        st = self.vehicles[vehicle_id]
        book = self.grid.vehicles_status(now_ns)[vehicle_id]
        if book.last_seen_ns is None:
            health, state, message = Health.STALE, 'never_seen', 'no evidence fused yet'
        elif book.active:
            health, state, message = Health.OK, 'active', f'{book.accepted} grids fused'
        else:
            health, state = Health.WARN, 'dropped'
            message = f'silent for {(now_ns - book.last_seen_ns) / 1e9:.1f} s: dropped from the fusion'
        cons = self.consistency.status(vehicle_id) if self.consistency is not None else None
        if cons is not None and cons.flagged and health is not Health.WARN:
            health = Health.WARN
            message = (f'inconsistent: score {cons.score:.2f} < {self.consistency.config.flag_below:g}, '
                       f'{cons.last_conflict_cells} cells contradict the others')
        values: dict[str, object] = {
            'state': state,
            'last_seen_age_s': math.nan if book.last_seen_ns is None else (now_ns - book.last_seen_ns) / 1e9,
            'accepted': book.accepted, 'rejoins': book.rejoins, 'weight': book.weight}
        lat = st.link.latency_ns(now_ns)
        values.update({'link.latency_ms': math.nan if lat is None else lat / 1e6,
                       'link.latency_p95_ms': (math.nan if lat is None
                                               else st.link.latency_ns(now_ns, 0.95) / 1e6),
                       'link.missing_share': st.link.missing_share(now_ns),
                       'link.reordered': st.link.reordered, 'link.duplicates': st.link.duplicates,
                       'link.evidence_max_age_s': self.evidence_max_age_ns(vehicle_id, now_ns) / 1e9})
        obj_age = self.object_max_age_ns(vehicle_id, now_ns)
        if obj_age is not None:
            values['link.object_max_age_s'] = obj_age / 1e9
        values.update({'clock.samples': st.clock.n_samples, 'clock.rejected': st.clock.n_rejected,
                       'clock.offset_ms': st.clock.offset_ns / 1e6 if st.clock.n_samples else math.nan})
        corr = st.correction
        values.update({'coreg.dx': corr.dx, 'coreg.dy': corr.dy, 'coreg.dyaw_deg': math.degrees(corr.dyaw),
                       'coreg.pivot_x': corr.pivot[0], 'coreg.pivot_y': corr.pivot[1],
                       'coreg.updates': st.coreg_updates, 'coreg.static_points': st.coreg_static_points})
        last = st.coreg_last
        values.update({'coreg.fitness': math.nan if last is None else last.fitness,
                       'coreg.rmse': math.nan if last is None else last.rmse,
                       'coreg.accepted': False if last is None else last.accepted,
                       'coreg.reason': 'not run' if last is None else last.reason})
        if self.config.coreg.body_enabled:
            # Body registration: how the others' evidence saw this member's body (offset along, across it).
            fits = st.body_fits
            accepted = [f for f in fits.values() if f.accepted]
            values.update({'coreg.body.updates': st.body_updates,
                           'coreg.body.observers': len(fits), 'coreg.body.accepted': len(accepted),
                           'coreg.body.reason': '; '.join(f'{o}: {f.reason} ({f.observable}, '
                                                          f'{f.offset[0]:+.2f}/{f.offset[1]:+.2f} m, '
                                                          f'std {f.std_m:.3f} m)'
                                                          for o, f in sorted(fits.items())) or 'not seen'})
        if cons is not None:
            values.update({'consistency.score': cons.score, 'consistency.conflict_cells': cons.last_conflict_cells,
                           'consistency.conflict_cells_total': cons.total_conflict_cells,
                           'consistency.flagged': cons.flagged})
        return VehicleReport(health, state, message, values)
