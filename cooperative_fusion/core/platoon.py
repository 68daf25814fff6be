"""The platoon's state at a common-time stamp, from each vehicle's odometry and time references.

Per vehicle, :class:`Platoon` keeps a clock fit (vehicle clock -> common time,
:class:`~.timebase.ClockEstimator`), its recent odometry in vehicle-clock stamps
and a :class:`~.link.LinkMonitor` of how that odometry arrives.
:meth:`Platoon.state_at` maps the odometry to common time and gives each
vehicle's box centre, speed, heading and acceleration at a stamp, and the reasons
vehicles are degraded or left out (:class:`Degradation`, plain data).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from .drops import Cause, DroppedInput
from .errors import ConfigError
from .link import LinkMonitor
from .timebase import ClockEstimator, ClockFitConfig
from .types import PoseSample

_NS_PER_S = 1_000_000_000


class OdomSample(NamedTuple):
    """One odometry sample: base_link in ``map`` at a vehicle-clock stamp."""

    stamp_vehicle_ns: int
    x: float
    y: float
    yaw: float            # radians
    speed: float          # m/s, forward

    @classmethod
    def from_pose(cls, pose: PoseSample) -> OdomSample:
        """The sample of a pose (stamp in the vehicle's clock); yaw from its quaternion, speed = forward velocity."""
        w, x, y, z = pose.quat_wxyz.tolist()
        yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        return cls(int(pose.stamp_ns), float(pose.position[0]), float(pose.position[1]), yaw,
                   float(pose.linear_velocity[0]))


@dataclass(frozen=True)
class PlatoonConfig:
    """The platoon and how its odometry is used (times in ns).

    vehicles : ids in platoon order (leader first); lengths_m, widths_m, rear_overhangs_m : per vehicle,
        metres (rear overhang = rear face to base_link, the odometry origin)
    stale_odom_ns : older odometry at the stamp is reported stale; odom_max_age_ns : ... left out
    accel_window_ns : acceleration = speed change over at least this much odometry
    future_tolerance_ns : odometry (clock known) further ahead of the receiver clock is rejected
    links_* : arrival statistics window, and the latency / missing share reported as degraded
    history : odometry samples kept per vehicle
    """

    vehicles: tuple[str, ...]
    lengths_m: tuple[float, ...]
    widths_m: tuple[float, ...]
    rear_overhangs_m: tuple[float, ...]
    stale_odom_ns: int = 500_000_000
    odom_max_age_ns: int = 5 * _NS_PER_S
    accel_window_ns: int = 300_000_000
    future_tolerance_ns: int = 2 * _NS_PER_S
    clock: ClockFitConfig = field(default_factory=ClockFitConfig)
    links_window_ns: int = 2 * _NS_PER_S
    links_late_ns: int = 250_000_000
    links_missing_share: float = 0.2
    history: int = 64

    def __post_init__(self) -> None:
        n = len(self.vehicles)
        for name in ('lengths_m', 'widths_m', 'rear_overhangs_m'):
            if len(getattr(self, name)) != n:
                raise ConfigError(f'{name} must hold one value per vehicle {list(self.vehicles)}, '
                                  f'got {list(getattr(self, name))}')
        if self.history < 2:
            raise ConfigError(f'history must keep at least 2 odometry samples, got {self.history}')

    def base_to_centre_m(self, vehicle_id: str) -> float:
        """Distance from base_link forward to the centre of the vehicle's box, metres."""
        i = self.vehicles.index(vehicle_id)
        return 0.5 * self.lengths_m[i] - self.rear_overhangs_m[i]


class DegradedCause(Enum):
    """Why a vehicle's input is degraded."""

    NO_ODOMETRY = 'no_odometry'
    CLOCK_UNKNOWN = 'clock_unknown'
    ODOMETRY_TOO_OLD = 'odometry_too_old'      # the vehicle is left out
    ODOMETRY_STALE = 'odometry_stale'
    ODOMETRY_LATE = 'odometry_late'
    ODOMETRY_MISSING = 'odometry_missing'
    RADAR_LATE = 'radar_late'


_TEXT = {
    DegradedCause.NO_ODOMETRY: lambda v: 'no odometry',
    DegradedCause.CLOCK_UNKNOWN: lambda v: 'clock unknown (no time reference)',
    DegradedCause.ODOMETRY_TOO_OLD: lambda v: f'odometry {v:.2f} s old, left out',
    DegradedCause.ODOMETRY_STALE: lambda v: f'odometry stale ({v:.2f} s)',
    DegradedCause.ODOMETRY_LATE: lambda v: f'odometry late {v:.2f} s',
    DegradedCause.ODOMETRY_MISSING: lambda v: f'{100.0 * v:.0f} % of odometry missing',
    DegradedCause.RADAR_LATE: lambda v: f'radar late {v:.2f} s',
}


@dataclass(frozen=True)
class Degradation:
    """One reason a vehicle's input is degraded; ``str()`` is the line diagnostics show.

    value : seconds (age, latency) or a share in [0, 1] (missing), NaN when the cause has none
    note : what follows from it, appended to the text
    """

    vehicle_id: str
    cause: DegradedCause
    value: float = math.nan
    note: str = ''

    def __str__(self) -> str:
        return f'{self.vehicle_id}: {_TEXT[self.cause](self.value)}{self.note}'


@dataclass(frozen=True)
class PlatoonSnapshot:
    """The platoon at ``stamp_ns`` (common time): the vehicles with usable odometry, in platoon order.

    ids : (V,) vehicle ids; x, y : (V,) box centres in ``map``, metres; speed : (V,) m/s, >= 0;
    heading : (V,) radians; length, width : (V,) metres; accel : (V,) m/s^2
    ages_ns : stamp - common stamp of the odometry sample used, for every vehicle with odometry
        (also those left out), ns
    degraded : why vehicles are degraded or left out, in platoon order
    """

    stamp_ns: int
    ids: tuple[str, ...]
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    speed: NDArray[np.float64]
    heading: NDArray[np.float64]
    length: NDArray[np.float64]
    width: NDArray[np.float64]
    accel: NDArray[np.float64]
    ages_ns: dict[str, int]
    degraded: tuple[Degradation, ...]


class VehicleOdometry:
    """One vehicle's clock fit, recent odometry (vehicle stamps, increasing) and odometry link statistics."""

    def __init__(self, clock: ClockFitConfig, links_window_ns: int, history: int = 64) -> None:
        self.clock = ClockEstimator(clock)
        self._links_window_ns = links_window_ns
        self._history = history
        self.forget_streams()

    def forget_streams(self) -> None:
        """Drop the odometry and its link statistics (arrival times went back); the clock fit stays."""
        self.link = LinkMonitor(self._links_window_ns)
        self.odom: deque[OdomSample] = deque(maxlen=self._history)

    @property
    def clock_known(self) -> bool:
        """True once a time reference was accepted."""
        return self.clock.n_samples > 0

    def to_common(self, stamps_vehicle_ns: NDArray[np.int64]) -> NDArray[np.int64]:
        """Vehicle stamps in common time; unchanged (clock taken as common) before any time reference."""
        if not self.clock_known:
            return stamps_vehicle_ns
        return np.asarray(self.clock.to_common(stamps_vehicle_ns), dtype=np.int64)


class Platoon:
    """Odometry and clocks of the platoon's vehicles -> the platoon's state at a common-time stamp."""

    def __init__(self, config: PlatoonConfig) -> None:
        self.config = config
        self.vehicles = {v: VehicleOdometry(config.clock, config.links_window_ns, config.history)
                         for v in config.vehicles}
        #: odometry samples accepted so far
        self.received = 0

    def add_time_reference(self, vehicle_id: str, stamp_vehicle_ns: int, common_ns: int) -> None:
        """One (vehicle clock, common time) pair. Raises DroppedInput ``outlier`` when it is off the clock
        fit, SyncError for a stamp that is not a non-negative integer."""
        if not self.vehicles[vehicle_id].clock.add(stamp_vehicle_ns, common_ns):
            raise DroppedInput(Cause.OUTLIER, f'{vehicle_id} pair ({stamp_vehicle_ns}, {common_ns}) ns is off '
                                              f'the clock fit by more than the outlier threshold')

    def add_odometry(self, vehicle_id: str, sample: OdomSample, now_ns: int) -> None:
        """One odometry sample that arrived at ``now_ns`` (common time).

        Raises DroppedInput ``future`` when, with the vehicle's clock known, it is stamped further than
        ``future_tolerance_ns`` ahead of ``now_ns``; DroppedInput ``out_of_order`` when it is not newer than
        the latest sample (it still counts as arrived in the link statistics).
        """
        veh, cfg = self.vehicles[vehicle_id], self.config
        if veh.clock_known:
            common = veh.clock.to_common(int(sample.stamp_vehicle_ns))     # the scalar path: the same ns
            ahead = common - now_ns
            if ahead > cfg.future_tolerance_ns:
                raise DroppedInput(Cause.FUTURE, f'{vehicle_id} odometry is {ahead / 1e9:.3g} s ahead of the '
                                                 f'node clock (tolerance {cfg.future_tolerance_ns / 1e9:g} s)')
            # Only with a known clock: the lateness of a vehicle stamp taken as common time would be
            # its clock offset.
            veh.link.add(common, now_ns)
        if veh.odom and sample.stamp_vehicle_ns <= veh.odom[-1].stamp_vehicle_ns:
            raise DroppedInput(Cause.OUT_OF_ORDER, f'{vehicle_id} odometry at {sample.stamp_vehicle_ns} ns is not '
                                                   f'newer than {veh.odom[-1].stamp_vehicle_ns} ns')
        veh.odom.append(sample)
        self.received += 1

    def forget_streams(self) -> None:
        """Every vehicle's odometry and link statistics go (a replay restarted); clock fits stay."""
        for veh in self.vehicles.values():
            veh.forget_streams()

    def link_degraded(self, vehicle_id: str, now_ns: int) -> list[Degradation]:
        """The vehicle's odometry arriving late (median arrival - stamp above ``links_late_ns``) or
        missing (share above ``links_missing_share``), measured up to ``now_ns``."""
        cfg, link = self.config, self.vehicles[vehicle_id].link
        out = []
        late = link.latency_ns(now_ns)
        if late is not None and late > cfg.links_late_ns:
            out.append(Degradation(vehicle_id, DegradedCause.ODOMETRY_LATE, late / 1e9))
        missing = link.missing_share(now_ns)
        if math.isfinite(missing) and missing > cfg.links_missing_share:
            out.append(Degradation(vehicle_id, DegradedCause.ODOMETRY_MISSING, missing))
        return out

    def state_at(self, stamp_ns: int, now_ns: int) -> PlatoonSnapshot:
        """The platoon at ``stamp_ns`` (common time); link statistics measured up to ``now_ns``.

        Per vehicle: the odometry sample nearest the stamp (its vehicle stamp mapped to common
        time), extrapolated along its heading at its speed to the stamp, and moved from base_link
        to the centre of the vehicle's box (``length / 2 - rear overhang`` ahead); acceleration from
        the speed change over at least ``accel_window_ns``. Vehicles without odometry, or with
        odometry older than ``odom_max_age_ns``, are left out; ``degraded`` says why, and which are
        stale, have an unknown clock or a degraded link.
        """
        cfg = self.config
        rows: list[tuple[str, float, float, float, float, float, float, float]] = []
        degraded: list[Degradation] = []
        ages: dict[str, int] = {}
        for i, v in enumerate(cfg.vehicles):
            veh = self.vehicles[v]
            if not veh.odom:
                degraded.append(Degradation(v, DegradedCause.NO_ODOMETRY))
                continue
            if not veh.clock_known:
                degraded.append(Degradation(v, DegradedCause.CLOCK_UNKNOWN))
            common = veh.to_common(np.array([s.stamp_vehicle_ns for s in veh.odom], dtype=np.int64))
            k = int(np.argmin(np.abs(common - stamp_ns)))
            age = int(stamp_ns - common[k])
            ages[v] = age
            if age > cfg.odom_max_age_ns:
                degraded.append(Degradation(v, DegradedCause.ODOMETRY_TOO_OLD, age / 1e9))
                continue
            if age > cfg.stale_odom_ns:
                degraded.append(Degradation(v, DegradedCause.ODOMETRY_STALE, age / 1e9))
            degraded.extend(self.link_degraded(v, now_ns))
            _, x, y, yaw, speed = veh.odom[k]
            older = np.nonzero(common <= common[k] - cfg.accel_window_ns)[0]
            accel = 0.0
            if older.size:
                j = int(older[-1])
                accel = (speed - veh.odom[j].speed) / ((common[k] - common[j]) / _NS_PER_S)
            ahead = speed * age / _NS_PER_S + 0.5 * cfg.lengths_m[i] - cfg.rear_overhangs_m[i]
            rows.append((v, x + ahead * math.cos(yaw), y + ahead * math.sin(yaw), max(speed, 0.0), yaw,
                         cfg.lengths_m[i], cfg.widths_m[i], accel))
        if rows:
            ids, *cols = zip(*rows)
            arrays = [np.array(c) for c in cols]
        else:
            ids, arrays = (), [np.zeros(0) for _ in range(7)]
        return PlatoonSnapshot(int(stamp_ns), tuple(ids), *arrays, ages_ns=ages, degraded=tuple(degraded))
