"""The edge twin's whole work between messages: inputs, the grid mirror, the cycle, the self-check, health.

:class:`EdgeTwin` is what the twin node calls: it takes each input as it arrives
(bad stamps raise :class:`~..drops.DroppedInput`), decides per mirrored grid whether
to cycle (at most one cycle per ``min_cycle_period_ns`` of grid time; held while no
odometry arrived since the last cycle), runs :meth:`TwinCore.step` on it and returns
everything the node publishes (:class:`CycleOutput`).
"""
from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ..errors import SyncError
from ..grid import GridSpec
from ..platoon import OdomSample
from .config import TwinNodeConfig
from .conflicts import Advisory
from .inputs import RadarInputConfig, TwinInputs
from .mirror import PERIOD_WINDOW, GridMirror
from .prediction import probability_to_percent
from .self_check import SelfCheck
from .twin_core import TwinCore, TwinResult
from .warnings import TwinWarning, advisory_of_base_link, warning_of

_NS_PER_S = 1_000_000_000


class GridAction(Enum):
    """What an admitted grid leads to."""

    CYCLE = 'cycle'
    THROTTLED = 'throttled'      # less than a cycle period of grid time after the last cycle
    HELD = 'held'                # no odometry since the last cycle


@dataclass(frozen=True)
class PredictedGrid:
    """One predicted grid: its horizon (s), target stamp (ns, common time) and cells (H, W) int8 percent."""

    horizon_s: float
    target_ns: int
    percent: NDArray[np.int8]


@dataclass(frozen=True)
class CycleOutput:
    """What one cycle publishes: predicted grids (on ``spec``, the cycled grid's), a warning per conflict,
    advisories as base_link poses."""

    result: TwinResult
    spec: GridSpec
    predicted: list[PredictedGrid]
    warnings: list[TwinWarning]
    advisories: dict[str, Advisory]


class EdgeTwin:
    """Inputs, mirror, tracker and self-check of the twin (see the module docstring)."""

    def __init__(self, config: TwinNodeConfig) -> None:
        cfg = self.cfg = config
        self.platoon_config = cfg.platoon
        self.core = TwinCore(cfg.twin)
        self.inputs = TwinInputs(self.platoon_config, RadarInputConfig(
            cfg.use_radar, cfg.radar_max_age_ns, cfg.radar_max_late_ns, cfg.twin.radar_max_los_angle_deg))
        self.mirror = GridMirror(cfg.future_tolerance_ns, cfg.restart_grids, cfg.gap_factor)
        self.self_check = SelfCheck(cfg.twin.prediction.output_horizons_s)
        self.cycles = 0
        self.cycles_throttled = 0
        self.cycles_held = 0              # grids without any odometry since the last cycle
        self.warnings_withheld = 0        # cycles whose conflicts were dropped: a vehicle's clock unknown
        self.restarts = 0
        self.last_result: TwinResult | None = None
        self.last_step_ms = math.nan
        self._step_ms: deque[float] = deque(maxlen=PERIOD_WINDOW)
        self._last_cycle_stamp_ns: int | None = None
        self._odom_at_last_cycle = 0

    # -------------------------------------------------------------- inputs --

    def add_time_reference(self, vehicle_id: str, stamp_vehicle_ns: int, common_ns: int) -> None:
        """See Platoon.add_time_reference."""
        self.inputs.platoon.add_time_reference(vehicle_id, stamp_vehicle_ns, common_ns)

    def add_odometry(self, vehicle_id: str, sample: OdomSample, now_ns: int) -> None:
        """See Platoon.add_odometry."""
        self.inputs.platoon.add_odometry(vehicle_id, sample, now_ns)

    def add_radar(self, vehicle_id: str, stamp_ns: int, x: NDArray[np.floating], y: NDArray[np.floating],
                  velocity: NDArray[np.floating], now_ns: int) -> None:
        """See TwinInputs.add_radar."""
        self.inputs.add_radar(vehicle_id, stamp_ns, x, y, velocity, now_ns)

    # ---------------------------------------------------------------- grid --

    def on_grid(self, spec: GridSpec, cells: NDArray[np.int8], stamp_ns: int, now_ns: int
                ) -> tuple[GridAction, int | None]:
        """Admit, mirror (a copy of ``cells``) and self-check a grid that arrived at ``now_ns``.

        Returns the action it leads to and, when it confirmed a replay restart (tracker, pending
        self-checks, odometry and radar forgotten), how far its stamp went back, ns.
        Raises DroppedInput (see GridMirror.admit) before anything changes.
        """
        cfg = self.cfg
        back = self.mirror.admit(stamp_ns, now_ns, self._last_cycle_stamp_ns)
        if back is not None:
            self.restart()
        cells = cells.copy()      # the mirror owns its cells: an in-process publisher may reuse its message
        self.mirror.store(spec, cells, stamp_ns, now_ns)
        if cfg.self_check:
            self.self_check.observe(spec, cells, stamp_ns, self.mirror.median_period_ns() or cfg.min_cycle_period_ns)
        last = self._last_cycle_stamp_ns
        if last is not None:
            if stamp_ns - last < 0.9 * cfg.min_cycle_period_ns:
                self.cycles_throttled += 1
                return GridAction.THROTTLED, back
            if self.inputs.platoon.received == self._odom_at_last_cycle:
                # No vehicle reported since the last cycle: the platoon would only be extrapolated
                # and the grid holds no newer evidence of it either (its cells freeze while the
                # vehicles drive on: stationary ghosts in their lane). Mirror, but do not cycle.
                self.cycles_held += 1
                return GridAction.HELD, back
        return GridAction.CYCLE, back

    def restart(self) -> None:
        """A replay restarted: forget tracks, pending self-checks, the mirror, odometry and radar."""
        self.core = TwinCore(self.cfg.twin)
        self.self_check.forget_pending()
        self.mirror.clear()
        self._last_cycle_stamp_ns = None
        self.inputs.forget_streams()
        self.restarts += 1

    def cycle(self, now_ns: int) -> CycleOutput:
        """One twin step on the mirrored grid, with the platoon and radar at its stamp.

        Conflicts of a platoon with a vehicle whose clock is unknown are withheld: its odometry
        stamps are taken as common time, so its box can be off by its clock offset times its speed
        (5 m for 0.2 s at 25 m/s) and its own cells then become obstacles.
        Raises the core's errors (SyncError, ...) before any cycle state changes.
        """
        cfg, spec, cells, stamp = self.cfg, self.mirror.spec, self.mirror.cells, self.mirror.stamp_ns
        if spec is None or cells is None or stamp is None:
            raise SyncError('no grid mirrored yet: nothing to cycle on')
        platoon = self.inputs.platoon_at(stamp, now_ns)
        radar_xyv, radar_xy = self.inputs.radar_at(stamp, platoon) if cfg.use_radar else (None, None)
        t0 = time.perf_counter()
        result = self.core.step(cells, spec, stamp, platoon, radar_xyv, radar_xy)
        self.last_step_ms = 1e3 * (time.perf_counter() - t0)
        self._step_ms.append(self.last_step_ms)
        if result.conflicts and any(not self.inputs.clock_known(v) for v in result.rollout.platoon.ids):
            self.warnings_withheld += 1
            result = replace(result, conflicts=[], advisories={})
        self._last_cycle_stamp_ns = stamp
        self._odom_at_last_cycle = self.inputs.platoon.received
        self.last_result = result
        self.cycles += 1
        predicted = []
        for h, prob in result.grids.items():
            percent = result.percent.get(h)
            if percent is None:
                percent = probability_to_percent(prob)
            predicted.append(PredictedGrid(h, stamp + int(round(h * _NS_PER_S)), percent))
            if cfg.self_check:
                self.self_check.expect(h, predicted[-1].target_ns, spec, percent)
        warnings = [warning_of(c, result.advisories.get(c.vehicle_id)) for c in result.conflicts]
        advisories = {v: advisory_of_base_link(adv, self.platoon_config.base_to_centre_m(v))
                      for v, adv in result.advisories.items()}
        return CycleOutput(result, spec, predicted, warnings, advisories)

    # -------------------------------------------------------------- health --

    def degraded(self, now_ns: int) -> list[str]:
        """Inputs that are missing or stale now: the grid, then each vehicle (from the last cycle)."""
        out: list[str] = []
        if self.mirror.stamp_ns is None:
            out.append('grid: none received')
        elif now_ns - self.mirror.stamp_ns > self.cfg.stale_grid_ns:
            out.append(f'grid: stale ({(now_ns - self.mirror.stamp_ns) / 1e9:.2f} s old)')
        return out + [str(d) for d in self.inputs.degraded]

    def health(self, now_ns: int, grid_rate_hz: float, cycle_ms: dict[str, float]) -> dict[str, object]:
        """The twin's health values for /diagnostics (the node adds drops.*); ``grid_rate_hz`` and
        ``cycle_ms`` (step + publishing) are the node's measurements.

        grid.* : mirror rate, age (now - stamp), staleness, gaps, size; cycles, cycles_throttled,
        cycles_held (grids with no odometry since the last cycle); restarts; warnings_withheld;
        tracks and conflicts of the last cycle; step_ms (TwinCore.step); twin_speedup = horizon_s /
        median step time (predicted seconds per wall second); vehicle.<v>.* odometry age and clock
        fit, and the links as received: odom_late_s / radar_late_s (median arrival - stamp),
        odom_missing_share, odom_reordered, odom_duplicates; road.* : the road fitted to the platoon's
        path (heading_deg at the leader, curvature_per_m, map_x: it is the map x axis, refused_fits,
        rejected_samples); self_check.*; degraded.
        """
        cfg, m = self.cfg, self.mirror
        values: dict[str, object] = {'grid.received': m.received, 'grid.rate_hz': grid_rate_hz}
        if m.stamp_ns is not None and m.spec is not None:
            age = (now_ns - m.stamp_ns) / _NS_PER_S
            values.update({'grid.age_s': age, 'grid.stale': age > cfg.stale_grid_ns / _NS_PER_S,
                           'grid.width': m.spec.width, 'grid.height': m.spec.height})
        else:
            values.update({'grid.age_s': math.nan, 'grid.stale': True})
        med = m.median_period_ns()
        values.update({'grid.period_s': math.nan if med is None else med / _NS_PER_S, 'grid.gaps': m.gaps,
                       'grid.max_gap_s': m.max_gap_s, 'cycles': self.cycles,
                       'cycles_throttled': self.cycles_throttled, 'cycles_held': self.cycles_held,
                       'warnings_withheld': self.warnings_withheld, 'restarts': self.restarts})
        r = self.last_result
        values['tracks'] = 0 if r is None else len(r.tracks)
        values['conflicts'] = 0 if r is None else len(r.conflicts)
        values['step_ms'] = self.last_step_ms
        values.update(cycle_ms)
        step = statistics.median(self._step_ms) if self._step_ms else math.nan
        values['twin_speedup'] = cfg.twin.prediction.horizon_s * 1e3 / step if step > 0 else math.nan
        for v, veh in self.inputs.platoon.vehicles.items():
            age = self.inputs.odom_ages_ns[v]
            values[f'vehicle.{v}.odom_age_s'] = math.nan if age is None else age / _NS_PER_S
            values[f'vehicle.{v}.clock_samples'] = veh.clock.n_samples
            values[f'vehicle.{v}.clock_offset_ms'] = veh.clock.offset_ns / 1e6 if veh.clock.n_samples else math.nan
            values[f'vehicle.{v}.clock_drift_ppm'] = veh.clock.drift_ppm
            late = veh.link.latency_ns(now_ns)
            values[f'vehicle.{v}.odom_late_s'] = math.nan if late is None else late / _NS_PER_S
            values[f'vehicle.{v}.odom_missing_share'] = veh.link.missing_share(now_ns)
            values[f'vehicle.{v}.odom_reordered'] = veh.link.reordered
            values[f'vehicle.{v}.odom_duplicates'] = veh.link.duplicates
            late = self.inputs.radar[v].link.latency_ns(now_ns)
            values[f'vehicle.{v}.radar_late_s'] = math.nan if late is None else late / _NS_PER_S
        road_tracker = self.core.road_tracker
        road = road_tracker.model()
        lead = road_tracker.leader()
        s_lead = (road.to_road(np.array(road_tracker.position(lead)))[0]
                  if road is not None and lead is not None else math.nan)
        values.update({
            'road.heading_deg': math.nan if road is None else math.degrees(float(road.heading_at(s_lead))),
            'road.curvature_per_m': math.nan if road is None else road.curvature,
            'road.map_x': road is not None and road.is_map_x,
            'road.refused_fits': road_tracker.refused_fits, 'road.rejected_samples': road_tracker.rejected})
        values.update(self.self_check.values())
        values['degraded'] = '; '.join(self.degraded(now_ns)) or 'none'
        return values
