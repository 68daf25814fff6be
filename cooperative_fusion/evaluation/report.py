"""``cooperative-fusion evaluate``: compare a result bag with the ground truth of a simulated bag.

Inputs: the truth bag written by ``cooperative-fusion simulate`` (``/truth/grid``,
``/truth/objects``, ``/truth/odom/<v>``, ``/truth/scenario``) and the result bag
written by ``cooperative-fusion run --record`` (log time = common time at
publish). Output: a JSON report whose top-level keys are DESIGN.md's:

- ``object_recall``, ``see_through_recall`` (per vehicle + ``"mean"``),
  ``occupied_precision``, ``free_accuracy``, ``occupancy_iou``
  (:mod:`cooperative_fusion.core.metrics`): for every truth frame, the newest
  ``/cooperative/grid`` published (log time) at or before the truth stamp and
  not older than 0.2 s, against the truth grid (occupied = cell >= 50) and the
  ``/truth/objects`` boxes, inside the ROI of
  :mod:`cooperative_fusion.core.evaluation` (20 m behind the last vehicle to
  100 m ahead of the leader, 10.5 m either side of the platoon's line; stated in
  the report's ``roi``). Sensor positions for occlusion: 1.5 m behind the front
  of each vehicle's own truth box. Also ``see_through_object_recall`` (hidden in
  3-D), ``occupied_precision_away_from_platoon`` and ``moving_position_error_m``
  (:mod:`cooperative_fusion.core.metrics`; ``docs/metrics.md``).
- ``ego_only_<metric>``: the same for each vehicle's own evidence fused alone:
  a :class:`~cooperative_fusion.core.fusion.common_grid.CommonGrid` fed only with
  ``/<v>/evidence_grid`` (stamp = header, now = log time, no pose covariance),
  with the fusion defaults (``config/fusion.yaml`` when it exists, else core
  defaults), sampled at every ``/cooperative/grid`` publication on its window
  (at every truth frame on the truth window when there is no common grid).
- ``fusion_latency_ms`` {p50, p95}: per evidence message, the log time of the
  first common grid published at or after the evidence's log time minus its stamp.
- ``bandwidth_bytes_per_s`` per vehicle: serialized bytes of
  ``/<v>/evidence_grid`` + ``/<v>/radar/targets`` over ``duration_s`` (the result
  bag's log-time span).
- ``prediction_iou`` per horizon: each ``/twin/predicted_grid`` (target =
  header.stamp, horizon = header.stamp - log time, rounded to the configured
  horizons) against the truth frame nearest the target within 50 ms,
  :func:`core.twin.prediction.iou` over the cells in the ROI covered by the predicted
  grid (unknown predicted cells count as free); mean over messages.
- ``twin_speedup``: median of the ``twin_speedup`` values in ``/diagnostics``.
- warnings (:mod:`cooperative_fusion.core.evaluation`; every key in ``docs/metrics.md``): each
  WARN/ERROR status on ``/twin/warnings`` is judged on the truth objects at its header stamp: *true*
  when its ``obstacle_x``, ``obstacle_y`` lie within 2 m of a truth object that, at constant
  velocities, would come within the conflict distance (the twin's ``conflicts.gap_error_m``, bumper
  gap) of the vehicle within the twin's horizon.
  ``warning_lead_time_s`` (per vehicle that would reach a hazard: that moment - its first true
  warning about a hazard, log time; plus ``"min"``), ``false_warnings`` (per vehicle and ``"total"``:
  episodes, one vehicle and one named object with gaps < 1 s, none of whose warnings is true; listed
  in ``false_warning_episodes``), ``missed_warnings`` (per vehicle and ``"total"``: conflicts truth
  shows with no true warning to the vehicle about that object at least 1 s before, or for one shown
  less than 1.5 s before its moment within 0.5 s of showing; listed in ``missed_warning_conflicts``),
  ``warning_delay_s`` (per vehicle and ``"max"``: the longest time from a truth conflict showing to
  the vehicle's first true warning about it; each conflict in ``conflict_warning_delays``).

Keys without data are null. Top-level imports stay light (the CLI imports this
module to build its parser); numpy, scipy, rclpy and rosbags load when it runs.
"""
from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from functools import cached_property
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..core.config_files import find_config, ros_parameters
from ..core.errors import BagError, ConfigError, CooperativeFusionError
from ..ros.names import (COMMON_GRID, PREDICTED_GRID, TRUTH_GRID, TRUTH_OBJECTS, TRUTH_ODOM_PREFIX, TRUTH_SCENARIO,
                         WARNINGS)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..core.evaluation import RoiConfig, SeeThroughSnapshot
    from ..core.grid import GridSpec
    from ..core.metrics import Box, TruthFrame

DIAGNOSTICS = '/diagnostics'
_EVIDENCE_RE = re.compile(r'^/([^/]+)/evidence_grid$')
_RADAR_TARGETS_RE = re.compile(r'^/([^/]+)/radar/targets$')
#: A result topic that belongs to one vehicle (DESIGN.md's outputs), group 1 = vehicle id.
_VEHICLE_OUTPUT_RE = re.compile(r'^/([^/]+)/(?:evidence_grid|radar/targets|twin/advisory|cooperative/cmd)$')
#: Truth grid cells at or above this percent are occupied.
TRUTH_OCCUPIED_PERCENT = 50
#: Vehicle of the see-through picture unless told otherwise.
DEFAULT_PLOT_VEHICLE = 'v3'
METRIC_KEYS = ('object_recall', 'see_through_recall', 'occupied_precision', 'free_accuracy', 'occupancy_iou')


def _shipped(name: str, flag: str) -> Path | None:
    try:
        return find_config(name, flag)
    except ConfigError:
        return None


def default_fusion_config_path() -> Path | None:
    """``config/fusion.yaml`` of the checkout (or the installed share directory) when it exists, else None
    (core defaults)."""
    return _shipped('fusion.yaml', '--fusion-config')


def default_twin_config_path() -> Path | None:
    """``config/twin.yaml`` of the checkout (or the installed share directory) when it exists, else None
    (core defaults)."""
    return _shipped('twin.yaml', '--twin-config')


# --------------------------------------------------------------------------------- config files

def fusion_overrides(path: Path | None) -> tuple[dict[str, Any], dict[str, float]]:
    """The FusionConfig fields a fusion parameter file sets away from the core defaults, and the vehicle weights.

    The file is read as the fusion node reads it: its values over the node's parameter defaults, through
    :func:`~cooperative_fusion.core.fusion.config.config_from_params`. Raises ConfigError naming the file.
    """
    if path is None:
        return {}, {}
    from ..core.fusion.common_grid import FusionConfig
    from ..core.fusion.config import config_from_params
    from ..nodes.fusion_params import PARAMS

    try:
        fusion = config_from_params({**{p.name: p.default for p in PARAMS}, **ros_parameters(path)}).fusion
    except ConfigError as exc:
        raise ConfigError(f'{path}: {exc}') from exc
    core = FusionConfig(spec=fusion.spec)
    out = {f.name: getattr(fusion, f.name) for f in fields(FusionConfig)
           if f.name not in ('spec', 'vehicle_weights') and getattr(fusion, f.name) != getattr(core, f.name)}
    return out, dict(fusion.vehicle_weights)


def twin_judgement(path: Path | None) -> tuple[float, float]:
    """The twin's rollout ``horizon_s`` and its ERROR gap ``conflicts.gap_error_m`` (the conflict distance)
    from a twin parameter file (missing names at their defaults)."""
    from ..core.config_files import ros_parameters
    from ..core.twin.config import twin_config_from_params, with_defaults

    twin = twin_config_from_params(with_defaults(ros_parameters(path) if path is not None else {}))
    return float(twin.prediction.horizon_s), float(twin.conflicts.gap_error_m)


def prediction_horizons(path: Path | None) -> tuple[float, ...]:
    """``output_horizons_s`` of the twin's config from a twin parameter file (the node's own parameter ->
    config mapping, missing names at their defaults), else of the defaults."""
    from ..core.config_files import ros_parameters
    from ..core.twin.config import twin_config_from_params, with_defaults

    values = with_defaults(ros_parameters(path) if path is not None else {})
    return twin_config_from_params(values).prediction.output_horizons_s


# ---------------------------------------------------------------------------------- truth bag

@dataclass
class _Truth:
    """Everything read from a truth bag; grids are kept bit-packed (occupied or not)."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    grid_stamps: list[int] = field(default_factory=list)
    grid_specs: list['GridSpec'] = field(default_factory=list)
    grid_bits: list[Any] = field(default_factory=list)
    object_stamps: list[int] = field(default_factory=list)
    objects: list[tuple['Box', ...]] = field(default_factory=list)
    odom: dict[str, list[tuple[int, float, float, float]]] = field(default_factory=dict)
    #: vehicle id -> (stamp ns, true speed m/s: the odometry's twist.linear.x) for the outcome keys
    speed: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def occupied(self, k: int) -> 'NDArray[np.bool_]':
        import numpy as np

        spec = self.grid_specs[k]
        n = spec.width * spec.height
        return np.unpackbits(self.grid_bits[k], count=n).astype(bool).reshape(spec.shape)


def read_truth(path: str | Path) -> _Truth:
    """Read the truth topics of a simulated bag. BagError naming the file when it cannot be used."""
    import numpy as np

    from ..ros.bag import BagReader
    from ..ros.grid import grid_from_msg
    from ..ros.time import stamp_to_ns
    from ..ros.truth import cube_boxes, yaw_of_quaternion

    truth = _Truth(Path(path))
    with BagReader(path) as bag:
        topics = bag.topics()
        if TRUTH_GRID not in topics:
            raise BagError(f'{path}: no {TRUTH_GRID} topic: not a truth bag written by `cooperative-fusion '
                           f'simulate` (topics: {", ".join(sorted(topics)) or "none"})')
        wanted = [t for t in topics if t in (TRUTH_GRID, TRUTH_OBJECTS, TRUTH_SCENARIO)
                  or t.startswith(TRUTH_ODOM_PREFIX)]
        for topic, msgtype, log_ns, raw in bag.messages(wanted):
            try:
                msg = bag.deserialize(msgtype, raw)
                if topic == TRUTH_GRID:
                    spec, cells = grid_from_msg(msg)
                    truth.grid_stamps.append(stamp_to_ns(msg.header.stamp))
                    truth.grid_specs.append(spec)
                    truth.grid_bits.append(np.packbits((cells >= TRUTH_OCCUPIED_PERCENT).ravel()))
                elif topic == TRUTH_OBJECTS:
                    stamps = [stamp_to_ns(m.header.stamp) for m in msg.markers]
                    truth.object_stamps.append(stamps[0] if stamps else log_ns)
                    truth.objects.append(cube_boxes(msg))
                elif topic == TRUTH_SCENARIO:
                    meta = json.loads(msg.data)
                    if not isinstance(meta, dict):
                        raise ConfigError(f'scenario JSON is a {type(meta).__name__}, expected an object')
                    truth.meta = meta
                else:
                    p, q = msg.pose.pose.position, msg.pose.pose.orientation
                    vid, stamp = topic[len(TRUTH_ODOM_PREFIX):], stamp_to_ns(msg.header.stamp)
                    truth.odom.setdefault(vid, []).append((stamp, float(p.x), float(p.y), yaw_of_quaternion(q)))
                    truth.speed.setdefault(vid, []).append((stamp, float(msg.twist.twist.linear.x)))
            except (CooperativeFusionError, json.JSONDecodeError, ValueError) as exc:
                raise BagError(f'{path}: {topic} at log time {log_ns} ns: {exc}') from exc
    if not truth.grid_stamps:
        raise BagError(f'{path}: {TRUTH_GRID} holds no messages')
    order = np.argsort(truth.grid_stamps, kind='stable')
    if np.any(np.diff(order) < 0):
        truth.grid_stamps = [truth.grid_stamps[i] for i in order]
        truth.grid_specs = [truth.grid_specs[i] for i in order]
        truth.grid_bits = [truth.grid_bits[i] for i in order]
    return truth


def check_result_matches_truth(truth: _Truth, result_path: Path, topics: Mapping[str, str],
                               start_ns: int | None, end_ns: int | None) -> None:
    """BagError unless the result bag can be a run of the truth bag's scenario.

    Its vehicles (from the per-vehicle output topics) must be among the truth's, and its
    log-time span [start_ns, end_ns] (common time, None when empty) must overlap the truth
    grid stamps.
    """
    truth_ids = truth.meta.get('vehicle_ids')
    truth_ids = {str(v) for v in truth_ids} if isinstance(truth_ids, list) and truth_ids else set(truth.odom)
    result_ids = {m.group(1) for t in topics if (m := _VEHICLE_OUTPUT_RE.match(t))}
    if truth_ids and result_ids - truth_ids:
        raise BagError(f'{result_path}: vehicles {", ".join(sorted(result_ids))} do not match the truth bag '
                       f'{truth.path} (vehicles {", ".join(sorted(truth_ids))}): a result of another scenario?')
    if start_ns is not None and end_ns is not None and truth.grid_stamps:
        t0, t1 = truth.grid_stamps[0], truth.grid_stamps[-1]
        if end_ns < t0 or start_ns > t1:
            raise BagError(f'{result_path}: log times {start_ns * 1e-9:.3f} .. {end_ns * 1e-9:.3f} s do not overlap '
                           f'the truth of {truth.path} ({t0 * 1e-9:.3f} .. {t1 * 1e-9:.3f} s): '
                           f'a result of another scenario?')


# ------------------------------------------------------------------------------- evaluation

class _Evaluator:
    """One pass over the result bag in log-time order, scoring truth frames as time passes them."""

    def __init__(self, truth: _Truth, result_path: Path, roi: 'RoiConfig', fusion_config: Path | None,
                 horizons: tuple[float, ...], plot_vehicle: str | None, horizon_s: float = 6.0,
                 conflict_distance_m: float = 5.0) -> None:
        import numpy as np

        from ..core.metrics import Accumulator

        self.truth = truth
        self.result_path = result_path
        self.roi = roi
        self.horizons = horizons
        self.plot_vehicle = plot_vehicle
        self.acc = Accumulator()
        self.stamps = np.asarray(truth.grid_stamps, dtype=np.int64)
        self.object_stamps = np.asarray(truth.object_stamps, dtype=np.int64)
        self.odom = {v: np.asarray(rows, dtype=np.float64) for v, rows in truth.odom.items()}
        self.odom_t = {v: np.asarray([r[0] for r in rows], dtype=np.int64) for v, rows in truth.odom.items()}
        self.fusion_config = fusion_config
        self.fusion_overrides, self.fusion_weights = fusion_overrides(fusion_config)
        self._frames: OrderedDict[int, Any] = OrderedDict()
        self.next_frame = 0
        self.has_common = False
        self.common: tuple[int, GridSpec, Any] | None = None
        self.ego: dict[str, Any] = {}
        self.ego_latest: dict[str, tuple[int, GridSpec, Any]] = {}
        self.evidence_vehicles: list[str] = []
        self.publish_ns: list[int] = []
        self.evidence_log_ns: list[int] = []
        self.evidence_stamp_ns: list[int] = []
        self.bytes: dict[str, int] = {}
        self.warnings: dict[str, list[int]] = {}
        self.warning_records: list[Any] = []
        self.horizon_s = horizon_s
        self.conflict_distance_m = conflict_distance_m
        self.end_ns: int | None = None
        self.speedups: list[float] = []
        self.pred: dict[float, list[float]] = {h: [] for h in horizons}
        self.pred_unmatched = 0
        self.snapshot: SeeThroughSnapshot | None = None
        self._fallback: SeeThroughSnapshot | None = None
        self._fallback_rank = -1
        self.duration_s: float | None = None

    # -- truth frames -------------------------------------------------------------------------
    def frame(self, k: int) -> 'TruthFrame | None':
        """The TruthFrame of truth grid k (None when no objects or no platoon pose match it)."""
        if k in self._frames:
            self._frames.move_to_end(k)
            return self._frames[k]
        tf = self._build_frame(k)
        self._frames[k] = tf
        if len(self._frames) > 48:
            self._frames.popitem(last=False)
        return tf

    def _build_frame(self, k: int) -> 'TruthFrame | None':
        import numpy as np

        from ..core.evaluation import TRUTH_MATCH_NS, nearest_within, roi_mask, sensor_position
        from ..core.metrics import TruthFrame

        t = int(self.stamps[k])
        j = nearest_within(self.object_stamps, t, TRUTH_MATCH_NS)
        if j < 0:
            return None
        boxes = self.truth.objects[j]
        poses = {}
        for vid in self.vehicle_ids:
            if vid not in self.odom_t:
                continue
            i = nearest_within(self.odom_t[vid], t, TRUTH_MATCH_NS)
            if i >= 0:
                poses[vid] = self.odom[vid][i, 1:4]
        if not poses:
            return None
        spec = self.truth.grid_specs[k]
        pos = np.array([p[:2] for p in poses.values()])
        yaws = np.array([p[2] for p in poses.values()])
        roi = roi_mask(spec, pos, yaws, self.roi)
        by_id = {b.id: b for b in boxes}
        sensors = {vid: sensor_position(p[:2], by_id.get(vid)) for vid, p in poses.items()}
        return TruthFrame(spec, boxes, sensors, self.truth.occupied(k), roi)

    @property
    def vehicle_ids(self) -> list[str]:
        ids = self.truth.meta.get('vehicle_ids')
        if isinstance(ids, list) and ids:
            return [str(v) for v in ids]
        return sorted(set(self.truth.odom) | set(self.evidence_vehicles))

    # -- result bag -----------------------------------------------------------------------------
    def run(self) -> None:
        from ..ros.bag import BagReader

        with BagReader(self.result_path) as bag:
            topics = bag.topics()
            self.has_common = COMMON_GRID in topics
            self.evidence_vehicles = sorted(m.group(1) for t in topics if (m := _EVIDENCE_RE.match(t)))
            radar = [t for t in topics if _RADAR_TARGETS_RE.match(t)]
            wanted = [t for t in topics if t in (COMMON_GRID, PREDICTED_GRID, WARNINGS, DIAGNOSTICS)
                      or _EVIDENCE_RE.match(t)] + radar
            span = (bag.start_time_ns, bag.end_time_ns) if bag.message_count > 0 else (None, None)
            check_result_matches_truth(self.truth, self.result_path, topics, *span)
            if bag.message_count > 0:
                self.duration_s = (bag.end_time_ns - bag.start_time_ns) * 1e-9
                self.end_ns = int(bag.end_time_ns)
            for topic, msgtype, log_ns, raw in bag.messages(wanted):
                self.flush(log_ns)
                try:
                    self.handle(bag, topic, msgtype, log_ns, raw)
                except (CooperativeFusionError, ValueError) as exc:
                    raise BagError(f'{self.result_path}: {topic} at log time {log_ns} ns: {exc}') from exc
        self.flush(None)

    def handle(self, bag: Any, topic: str, msgtype: str, log_ns: int, raw: bytes) -> None:
        from ..ros.diagnostics import Level, status_level
        from ..ros.grid import grid_from_msg
        from ..ros.time import stamp_to_ns

        m = _EVIDENCE_RE.match(topic)
        if m:
            vid = m.group(1)
            self.bytes[vid] = self.bytes.get(vid, 0) + len(raw)
            msg = bag.deserialize(msgtype, raw)
            stamp = stamp_to_ns(msg.header.stamp)
            self.evidence_log_ns.append(log_ns)
            self.evidence_stamp_ns.append(stamp)
            self.integrate_ego(vid, *grid_from_msg(msg), stamp, log_ns)
            return
        m = _RADAR_TARGETS_RE.match(topic)
        if m:
            self.bytes[m.group(1)] = self.bytes.get(m.group(1), 0) + len(raw)
            return
        msg = bag.deserialize(msgtype, raw)
        if topic == COMMON_GRID:
            spec, cells = grid_from_msg(msg)
            self.common = (log_ns, spec, cells.copy())
            self.publish_ns.append(log_ns)
            self.ego_tick(log_ns, spec)
        elif topic == PREDICTED_GRID:
            spec, cells = grid_from_msg(msg)
            self.score_prediction(spec, cells, stamp_to_ns(msg.header.stamp), log_ns)
        elif topic == WARNINGS:
            for status in msg.status:
                if status_level(status) in (Level.WARN, Level.ERROR):
                    self.warnings.setdefault(str(status.name), []).append(log_ns)
                    self.warning_records.append(_warning_record(status, stamp_to_ns(msg.header.stamp), log_ns))
        elif topic == DIAGNOSTICS:
            for status in msg.status:
                for kv in status.values:
                    if kv.key == 'twin_speedup':
                        try:
                            value = float(kv.value)
                        except ValueError:
                            continue
                        if math.isfinite(value):
                            self.speedups.append(value)

    # -- ego-only grids -------------------------------------------------------------------------
    def _new_ego(self, vid: str, spec: 'GridSpec') -> Any:
        from ..core.fusion.common_grid import CommonGrid, FusionConfig

        try:
            cfg = FusionConfig(spec=spec, vehicle_weights={vid: self.fusion_weights.get(vid, 1.0)},
                               **self.fusion_overrides)
        except TypeError as exc:
            raise ConfigError(f'{self.fusion_config}: {exc}') from exc
        return CommonGrid(cfg)

    def integrate_ego(self, vid: str, spec: 'GridSpec', cells: Any, stamp_ns: int, log_ns: int) -> None:
        from ..core.grid import percent_to_logodds

        grid = self.ego.get(vid)
        if grid is None:
            window = self.common[1] if self.common is not None else self.truth.grid_specs[
                min(int(self.stamps.searchsorted(log_ns)), len(self.stamps) - 1)]
            grid = self.ego[vid] = self._new_ego(vid, window)
        logodds, known = percent_to_logodds(cells)
        grid.integrate(vid, spec, logodds, known, stamp_ns, log_ns)

    def ego_tick(self, t_ns: int, spec: 'GridSpec') -> None:
        """Sample every ego grid at ``t_ns`` on the window ``spec`` (as the fusion node publishes)."""
        for vid, grid in list(self.ego.items()):
            if grid.spec != spec:
                try:
                    grid.recenter(spec)
                except ConfigError:
                    # Another resolution or lattice: start over on the new window.
                    grid = self.ego[vid] = self._new_ego(vid, spec)
            grid.advance(t_ns)
            self.ego_latest[vid] = (t_ns, grid.spec, grid.posterior_percent())

    # -- scoring --------------------------------------------------------------------------------
    def flush(self, until_ns: int | None) -> None:
        """Score the truth frames stamped before ``until_ns`` (all when None)."""
        n = len(self.stamps)
        while self.next_frame < n and (until_ns is None or int(self.stamps[self.next_frame]) < until_ns):
            k = self.next_frame
            self.next_frame += 1
            if not self.has_common:
                self.ego_tick(int(self.stamps[k]), self.truth.grid_specs[k])
            self.score_frame(k)

    def _fresh(self, item: tuple[int, 'GridSpec', Any] | None, t_ns: int) -> tuple['GridSpec', Any] | None:
        from ..core.evaluation import MAX_GRID_AGE_NS

        if item is None or item[0] > t_ns or t_ns - item[0] > MAX_GRID_AGE_NS:
            return None
        return item[1], item[2]

    def score_frame(self, k: int) -> None:
        from ..core.evaluation import cells_on

        tf = self.frame(k)
        if tf is None:
            return
        t = int(self.stamps[k])
        common = self._fresh(self.common, t)
        if common is not None:
            spec, cells = cells_on(*common, tf.spec)
            self.acc.add(tf, cells, spec)
        ego_cells = {}
        for vid in self.ego_latest:
            ego = self._fresh(self.ego_latest[vid], t)
            if ego is not None and vid in tf.sensors:
                spec, cells = cells_on(*ego, tf.spec)
                self.acc.add(tf, cells, spec, ego_vehicle=vid)
                ego_cells[vid] = (spec, cells)
        if common is not None and self.plot_vehicle is not None and self.snapshot is None:
            self._maybe_snapshot(k, tf, cells_on(*common, tf.spec), ego_cells.get(self.plot_vehicle))

    def _maybe_snapshot(self, k: int, tf: 'TruthFrame', common: tuple['GridSpec', Any],
                        ego: tuple['GridSpec', Any] | None) -> None:
        import numpy as np

        from ..core.evaluation import SeeThroughSnapshot
        from ..core.metrics import OCCUPIED_PERCENT, overlay

        vid = self.plot_vehicle
        occluded = tf.occluded.get(vid) if vid is not None else None
        if occluded is None:
            return
        hazards = tuple(str(h) for h in self.truth.meta.get('hazard_ids', []) or [])
        is_hazard = np.array([b.id in hazards for b in tf.boxes], dtype=bool)
        # A hazard hidden from the vehicle is the picture wanted (the first such frame). Without one,
        # the first frame that shows the most of: an object hidden from it, an occupied common cell
        # in the ROI, an ego grid.
        common_cells = overlay(*common, tf.spec)
        hidden_hazard = occluded & is_hazard
        if hidden_hazard.any() and (hidden_hazard & tf.hits(common_cells)).any():
            rank = 10
            reason = f'first frame with a hazard ({", ".join(hazards)}) occluded from {vid} and in the common grid'
        elif hidden_hazard.any():
            rank = 9
            reason = f'a hazard ({", ".join(hazards)}) occluded from {vid}; the common grid does not show it yet'
        else:
            shows = {'an object occluded from it': bool(occluded.any()),
                     'occupied common cells': bool(((common_cells >= OCCUPIED_PERCENT) & tf.region).any()),
                     'its ego grid': ego is not None}
            rank = sum(shows.values())
            have = [name for name, shown in shows.items() if shown]
            reason = (f'no hazard occluded from {vid}: first frame with '
                      + (', '.join(have) if have else 'a common grid'))
        if rank <= self._fallback_rank:
            return
        truth_cells = np.where(tf.occupied, 100, 0).astype(np.int8)
        snap = SeeThroughSnapshot(
            int(self.stamps[k]), str(vid), tf.spec, truth_cells, common_cells,
            None if ego is None else overlay(*ego, tf.spec), tuple(tf.boxes),
            tuple(self.vehicle_ids), hazards, tf.region.copy(), reason)
        self._fallback_rank = rank
        if rank == 10:
            self.snapshot = snap
        else:
            self._fallback = snap

    def score_prediction(self, spec: 'GridSpec', cells: Any, target_ns: int, log_ns: int) -> None:
        import numpy as np

        from ..core.evaluation import PREDICTION_MATCH_NS, cells_on, horizon_key, nearest_within
        from ..core.metrics import overlay
        from ..core.twin.prediction import iou

        h = horizon_key(target_ns - log_ns, self.horizons)
        k = nearest_within(self.stamps, target_ns, PREDICTION_MATCH_NS) if h is not None else -1
        tf = self.frame(k) if k >= 0 else None
        if tf is None or h is None:
            self.pred_unmatched += 1
            return
        spec, cells = cells_on(spec, cells, tf.spec)
        covered = overlay(spec, np.ones(spec.shape, np.int8), tf.spec, fill=0) > 0
        pred = overlay(spec, cells, tf.spec, fill=-1)
        prob = np.clip(pred, 0, 100).astype(np.float32) / 100.0
        observed = np.where(tf.region & covered, np.where(tf.occupied, 100, 0), -1).astype(np.int8)
        value = iou(prob, observed)
        if math.isfinite(value):
            self.pred[h].append(value)

    # -- warnings ---------------------------------------------------------------------------------
    def judge(self, w: Any) -> Any:
        """A warning judged on the truth objects nearest its stamp, moved to the stamp at their velocities."""
        from ..core.evaluation import TRUTH_MATCH_NS, Judgement, judge_warning, moved, nearest_within

        j = nearest_within(self.object_stamps, w.stamp_ns, TRUTH_MATCH_NS)
        if j < 0:
            return Judgement(w, (), ())
        dt = (w.stamp_ns - int(self.object_stamps[j])) * 1e-9
        road = self.truth_road.at(w.stamp_ns) if self.truth_road is not None else None
        return judge_warning(w, [moved(b, dt) for b in self.truth.objects[j]], self.horizon_s,
                             self.conflict_distance_m, road=road)

    @cached_property
    def truth_road(self) -> Any:
        """The road the platoon leader truly drove (core.evaluation.TruthRoad), None without its odometry."""
        from ..core.evaluation import TruthRoad

        ids = [str(v) for v in self.truth.meta.get('vehicle_ids') or []]
        leader = next((v for v in ids if v in self.odom), None) or next(iter(sorted(self.odom)), None)
        if leader is None or len(self.odom[leader]) == 0:
            return None
        rows = self.odom[leader]
        return TruthRoad(self.odom_t[leader], rows[:, 1:3])

    def warning_report(self, vids: list[str]) -> dict[str, Any]:
        """warning_lead_time_s, false_warnings, missed_warnings and their lists (docs/metrics.md)."""
        from ..core.evaluation import (episodes_of, hazard_lead_times_s, missed_conflicts, truth_conflicts,
                                      warning_deadline_ns, warning_delays_ns)

        meta = self.truth.meta
        hazards = [str(h) for h in meta.get('hazard_ids') or []]
        judged = [self.judge(w) for w in self.warning_records]
        episodes = episodes_of(judged)
        conflicts = truth_conflicts(list(zip(self.truth.object_stamps, self.truth.objects)), vids, self.horizon_s,
                                    self.conflict_distance_m, road=self.truth_road)
        # Conflicts whose warning deadline lies after the result bag's end cannot have been warned yet: not judged.
        judgeable = [c for c in conflicts if self.end_ns is None or warning_deadline_ns(c) <= self.end_ns]
        missed = missed_conflicts(judgeable, judged)
        delays = warning_delays_ns(judgeable, judged)
        meeting = meta.get('meeting_time_ns')
        meeting = ({str(k): (None if t is None else int(t)) for k, t in meeting.items()}
                   if isinstance(meeting, Mapping) else {})
        reach: dict[str, int | None] = {}
        for vid in vids:
            hazard_moments = [c.moment_ns for c in conflicts if c.vehicle == vid and c.object in hazards]
            reach[vid] = meeting.get(vid) if meeting.get(vid) is not None else (
                min(hazard_moments) if hazard_moments else None)
        false = [e for e in episodes if not e.true]

        def per_vehicle(items: list[Any]) -> dict[str, int]:
            counts = {v: sum(1 for i in items if i.vehicle == v) for v in vids}
            return {**counts, 'total': len(items)}

        def episode(e: Any) -> dict[str, Any]:
            return {'vehicle': e.vehicle, 'start_s': e.start_ns * 1e-9, 'end_s': e.end_ns * 1e-9,
                    'object': e.object, 'truth_objects': list(e.truth_ids), 'warnings': e.count,
                    'true_share': e.true_share, 'reason': e.reason}

        def longest(vid: str | None) -> float | None:
            values = [d for c, d in delays if d is not None and vid in (None, c.vehicle)]
            return max(values) * 1e-9 if values else None

        return {
            'warning_lead_time_s': hazard_lead_times_s(judged, hazards, reach, vids),
            'warning_delay_s': {**{v: longest(v) for v in vids}, 'max': longest(None)},
            'conflict_warning_delays': [{'vehicle': c.vehicle, 'object': c.object, 'first_shown_s': c.first_ns * 1e-9,
                                         'moment_s': c.moment_ns * 1e-9,
                                         'delay_s': None if d is None else d * 1e-9} for c, d in delays],
            'false_warnings': per_vehicle(false),
            'false_warning_episodes': [episode(e) for e in false],
            'missed_warnings': per_vehicle(missed),
            'missed_warning_conflicts': [{'vehicle': c.vehicle, 'object': c.object, 'first_shown_s': c.first_ns * 1e-9,
                                          'moment_s': c.moment_ns * 1e-9} for c in missed],
            'warning_episodes': len(episodes),
            'true_warning_episodes': sum(1 for e in episodes if e.true),
            'truth_conflicts': len(judgeable),
        }

    # -- report ---------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        import numpy as np

        from ..core.evaluation import fusion_latencies_ms, median_or_none, percentiles

        vids = self.vehicle_ids
        meta = self.truth.meta
        out: dict[str, Any] = {
            'scenario': meta.get('scenario'),
            'seed': meta.get('seed'),
            'vehicles': vids,
            'duration_s': self.duration_s,
            'frames_evaluated': self.acc.frames,
            'truth_frames': len(self.stamps),
            'roi': self.roi.describe(),
        }
        metrics = self.acc.report()
        see = metrics['see_through_recall']
        out['object_recall'] = metrics['object_recall']
        out['see_through_recall'] = {**{v: see.get(v) for v in vids}, 'mean': see.get('mean')}
        for key in METRIC_KEYS:
            if key != 'see_through_recall':
                out[key] = metrics[key]
        hidden = metrics['see_through_object_recall']
        out['see_through_object_recall'] = {**{v: hidden.get(v) for v in vids}, 'mean': hidden.get('mean')}
        out['occupied_precision_away_from_platoon'] = metrics['occupied_precision_away_from_platoon']
        out['moving_position_error_m'] = metrics['moving_position_error_m']
        for key in METRIC_KEYS:
            ego = metrics.get(f'ego_only_{key}', {})
            value = {v: ego.get(v) for v in vids}
            if key == 'see_through_recall':
                value['mean'] = ego.get('mean')
            out[f'ego_only_{key}'] = value
        out['ego_only_fusion'] = {
            'config': str(self.fusion_config) if self.fusion_config else 'core defaults (no config/fusion.yaml)',
            'overrides': self.fusion_overrides, 'vehicle_weights': {v: self.fusion_weights.get(v, 1.0) for v in vids},
            'cadence': COMMON_GRID if self.has_common else TRUTH_GRID,
            'vehicles_with_evidence': self.evidence_vehicles}
        lat = fusion_latencies_ms(self.evidence_log_ns, self.evidence_stamp_ns, self.publish_ns)
        out['fusion_latency_ms'] = percentiles(lat)
        out['fusion_latency_samples'] = int(lat.size)
        duration = self.duration_s
        out['bandwidth_bytes_per_s'] = (
            {v: self.bytes.get(v, 0) / duration for v in sorted(set(vids) | set(self.bytes))}
            if duration and self.bytes else None)
        out['prediction_iou'] = {str(h): (float(np.mean(v)) if v else None) for h, v in self.pred.items()}
        out['prediction_samples'] = {str(h): len(v) for h, v in self.pred.items()}
        out['twin_speedup'] = median_or_none(self.speedups)
        out.update(self.warning_report(vids))
        out['meeting_time_s'] = meta.get('meeting_time_s')
        out['warnings_by_vehicle'] = {v: len(ts) for v, ts in sorted(self.warnings.items())}
        out.update(outcome_keys(self.truth, vids))
        return out


def outcome_keys(truth: _Truth, vids: list[str]) -> dict[str, Any]:
    """The outcome keys (:func:`cooperative_fusion.core.outcome.outcome_report`) of the truth: the
    ``/truth/objects`` boxes in stamp order and each vehicle's ``/truth/odom/<v>`` speed."""
    import numpy as np

    from ..core.outcome import outcome_report

    order = sorted(range(len(truth.object_stamps)), key=truth.object_stamps.__getitem__)
    frames = [(truth.object_stamps[i], truth.objects[i]) for i in order]
    speeds = {v: (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows]))
              for v, rows in truth.speed.items()}
    return outcome_report(vids, frames, speeds)


def evaluate(truth_bag: str | Path, result_bag: str | Path, *, roi: 'RoiConfig | None' = None,
             fusion_config: str | Path | None = None, twin_config: str | Path | None = None,
             plots_dir: str | Path | None = None, plot_vehicle: str = DEFAULT_PLOT_VEHICLE) -> dict[str, Any]:
    """The evaluation report (a JSON-ready dict) of ``result_bag`` against the truth in ``truth_bag``.

    fusion_config : fusion parameter YAML for the ego-only baselines (default ``config/fusion.yaml`` if
        present, else the core defaults); twin_config : YAML with ``output_horizons_s`` (default
        ``config/twin.yaml`` if present, else the core defaults)
    plots_dir : when given, ``see_through.png`` and ``metrics.png`` are written there
    Raises BagError naming the file when a bag cannot be read or is not what it should be.
    """
    from ..core.evaluation import RoiConfig

    roi = roi or RoiConfig()
    fusion_path = Path(fusion_config) if fusion_config is not None else default_fusion_config_path()
    twin_path = Path(twin_config) if twin_config is not None else default_twin_config_path()
    truth = read_truth(truth_bag)
    ev = _Evaluator(truth, Path(result_bag), roi, fusion_path, prediction_horizons(twin_path),
                    plot_vehicle if plots_dir is not None else None, *twin_judgement(twin_path))
    ev.run()
    report = ev.report()
    report['truth_bag'] = str(truth_bag)
    report['result_bag'] = str(result_bag)
    if plots_dir is not None:
        from .plots import plot_metrics, plot_see_through

        out = Path(plots_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [str(plot_metrics(out / 'metrics.png', report))]
        snap = ev.snapshot or ev._fallback
        if snap is not None:
            written.insert(0, str(plot_see_through(out / 'see_through.png', snap)))
        report['plots'] = written
        report['see_through_plot'] = None if snap is None else {
            'vehicle': snap.vehicle, 'stamp_s': snap.stamp_ns * 1e-9, 'reason': snap.reason}
    return _json_ready(report)


def _warning_record(status: Any, stamp_ns: int, log_ns: int) -> Any:
    """A /twin/warnings status as a WarningRecord: the object it names (``object``, else ``track_<track_id>``
    or ``predecessor``) and ``obstacle_x``, ``obstacle_y`` (NaN when absent or not numbers)."""
    from ..core.evaluation import WarningRecord

    values = {kv.key: kv.value for kv in status.values}

    def number(key: str) -> float:
        try:
            return float(values[key])
        except (KeyError, ValueError):
            return math.nan

    obj = values.get('object') or (f"track_{values['track_id']}" if 'track_id' in values
                                   else values.get('predecessor', ''))
    return WarningRecord(int(log_ns), int(stamp_ns), str(status.name), str(obj), number('obstacle_x'),
                         number('obstacle_y'), str(status.message))


def _json_ready(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become None (a key without data is null)."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if hasattr(value, 'dtype') and getattr(value.dtype, 'kind', '') in 'iu':
        return int(value)
    return f if math.isfinite(f) else None


# ------------------------------------------------------------------------------------ output

def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def report_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown tables: cooperative vs ego-only, latency, bandwidth, prediction, twin, warnings."""
    vids = list(report.get('vehicles') or [])
    lines = [f"## Evaluation: {report.get('scenario') or 'unknown scenario'}", '',
             f"{report.get('frames_evaluated', 0)} truth frames scored over "
             f"{_fmt(report.get('duration_s'), 1)} s; ROI: {(report.get('roi') or {}).get('definition', 'n/a')}.",
             '', '| metric | cooperative | ' + ' | '.join(f'ego-only {v}' for v in vids) + ' |',
             '|---|---|' + '---|' * len(vids)]
    for key in METRIC_KEYS:
        coop = report.get(key)
        ego = report.get(f'ego_only_{key}') or {}
        if key == 'see_through_recall':
            coop = (coop or {}).get('mean')
            key = 'see_through_recall (mean)'
        lines.append(f'| {key} | {_fmt(coop)} | ' + ' | '.join(_fmt(ego.get(v)) for v in vids) + ' |')
    see, ego_see = report.get('see_through_recall') or {}, report.get('ego_only_see_through_recall') or {}
    lines += ['', '| see-through recall | ' + ' | '.join(vids) + ' |', '|---|' + '---|' * len(vids),
              '| cooperative | ' + ' | '.join(_fmt(see.get(v)) for v in vids) + ' |',
              '| ego-only | ' + ' | '.join(_fmt(ego_see.get(v)) for v in vids) + ' |']
    lat = report.get('fusion_latency_ms') or {}
    bw = report.get('bandwidth_bytes_per_s') or {}
    lines += ['', '| quantity | value |', '|---|---|',
              f"| fusion latency p50 / p95 (ms) | {_fmt(lat.get('p50'), 1)} / {_fmt(lat.get('p95'), 1)} |"]
    for v in vids:
        kb = bw.get(v)
        lines.append(f'| bandwidth {v} (kB/s) | {_fmt(None if kb is None else kb / 1000.0, 1)} |')
    for h, value in (report.get('prediction_iou') or {}).items():
        lines.append(f'| prediction IoU at {h} s | {_fmt(value)} |')
    lines.append(f"| twin speedup (predicted s per wall s) | {_fmt(report.get('twin_speedup'), 1)} |")
    lead = report.get('warning_lead_time_s') or {}
    for v, value in lead.items():
        lines.append(f'| warning lead time {v} (s) | {_fmt(value, 2)} |')
    false = report.get('false_warnings') or {}
    missed = report.get('missed_warnings') or {}
    lines.append(f"| false warnings (episodes) | {_fmt(false.get('total'))} |")
    lines.append(f"| missed warnings (conflicts) | {_fmt(missed.get('total'))} |")
    delay = report.get('warning_delay_s') or {}
    lines.append(f"| longest warning delay after a conflict shows (s) | {_fmt(delay.get('max'), 2)} |")
    for key in ('see_through_object_recall', 'occupied_precision_away_from_platoon', 'moving_position_error_m'):
        value = report.get(key)
        if isinstance(value, Mapping):
            value = ', '.join(f'{v} {_fmt(x)}' for v, x in value.items())
        lines.append(f'| {key} | {_fmt(value)} |')
    lines += outcome_markdown(report)
    episodes = report.get('false_warning_episodes') or []
    if episodes:
        lines += ['', '| false warning: vehicle | start (s) | end (s) | object | reason |', '|---|---|---|---|---|']
        lines += [f"| {e['vehicle']} | {_fmt(e['start_s'], 2)} | {_fmt(e['end_s'], 2)} | {e['object']} | "
                  f"{e['reason']} |" for e in episodes]
    return '\n'.join(lines) + '\n'


#: Outcome keys (core/outcome.py) and their row labels.
OUTCOME_LABELS = {'min_gap_m': 'min gap (m)', 'min_ttc_s': 'min ttc (s)', 'max_decel_mps2': 'max decel (m/s²)',
                  'collision': 'collision', 'time_headway_s': 'time headway p5 / p50 / p95 (s)'}


def outcome_cell(key: str, value: Any) -> str:
    """One vehicle's value of an outcome key as table text (``n/a`` without data)."""
    if value is None:
        return 'n/a'
    if key == 'collision':
        return '**yes**' if value else 'no'
    if key == 'time_headway_s' and isinstance(value, Mapping):
        return ' / '.join(_fmt(value.get(p), 2) for p in ('p5', 'p50', 'p95'))
    return _fmt(float(value), 2 if key != 'max_decel_mps2' else 1)


def outcome_markdown(report: Mapping[str, Any]) -> list[str]:
    """Markdown lines of the outcome keys (vehicles as columns); none when the report has none."""
    vids = list(report.get('vehicles') or [])
    if not any(isinstance(report.get(k), Mapping) for k in OUTCOME_LABELS):
        return []
    lines = ['', '| outcome (truth) | ' + ' | '.join(vids) + ' |', '|---|' + '---|' * len(vids)]
    for key, label in OUTCOME_LABELS.items():
        values = report.get(key) or {}
        lines.append(f'| {label} | ' + ' | '.join(outcome_cell(key, values.get(v)) for v in vids) + ' |')
    return lines


def summary_table(report: Mapping[str, Any]) -> str:
    """A short plain-text table for the terminal."""
    vids = list(report.get('vehicles') or [])
    width = max([len(k) for k in METRIC_KEYS] + [22])
    head = f"{'metric':<{width}}  {'coop':>6}  " + '  '.join(f'{"ego " + v:>7}' for v in vids)
    rows = [f"scenario {report.get('scenario')}: {report.get('frames_evaluated')} frames, "
            f"{_fmt(report.get('duration_s'), 1)} s", head]
    for key in METRIC_KEYS:
        coop = report.get(key)
        ego = report.get(f'ego_only_{key}') or {}
        if key == 'see_through_recall':
            coop = (coop or {}).get('mean')
        rows.append(f'{key:<{width}}  {_fmt(coop):>6}  ' + '  '.join(f'{_fmt(ego.get(v)):>7}' for v in vids))
    lat = report.get('fusion_latency_ms') or {}
    rows.append(f"{'fusion latency ms':<{width}}  p50 {_fmt(lat.get('p50'), 1)}  p95 {_fmt(lat.get('p95'), 1)}")
    bw = report.get('bandwidth_bytes_per_s') or {}
    rows.append(f"{'bandwidth kB/s':<{width}}  " + '  '.join(
        f"{v} {_fmt(None if bw.get(v) is None else bw[v] / 1000.0, 1)}" for v in vids))
    pred = report.get('prediction_iou') or {}
    rows.append(f"{'prediction IoU':<{width}}  " + '  '.join(f'{h}s {_fmt(v, 2)}' for h, v in pred.items()))
    lead = report.get('warning_lead_time_s') or {}
    rows.append(f"{'twin speedup':<{width}}  {_fmt(report.get('twin_speedup'), 1)}")
    rows.append(f"{'warning lead s':<{width}}  " + ('  '.join(f'{v} {_fmt(t, 2)}' for v, t in lead.items())
                                                     or 'n/a'))
    rows.append(f"{'false warnings':<{width}}  " + '  '.join(
        f'{v} {n}' for v, n in (report.get('false_warnings') or {}).items()))
    rows.append(f"{'missed warnings':<{width}}  " + '  '.join(
        f'{v} {n}' for v, n in (report.get('missed_warnings') or {}).items()))
    rows.append(f"{'warning delay s':<{width}}  " + '  '.join(
        f'{v} {_fmt(t, 2)}' for v, t in (report.get('warning_delay_s') or {}).items()))
    for key, label in (('min_gap_m', 'min gap m (truth)'), ('max_decel_mps2', 'max decel m/s² (truth)'),
                       ('collision', 'collision (truth)')):
        values = report.get(key)
        if isinstance(values, Mapping):
            rows.append(f'{label:<{width}}  ' + '  '.join(
                f'{v} {outcome_cell(key, values.get(v)).strip("*")}' for v in vids))
    return '\n'.join(rows)


# ---------------------------------------------------------------------------------------- CLI
