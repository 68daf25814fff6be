"""What the twin knows of the platoon between cycles: odometry and clocks (core.platoon), latest radar targets.

:class:`TwinInputs` takes each vehicle's inputs as they arrive (rejecting bad stamps
with :class:`~..drops.DroppedInput`) and gives, at a grid's stamp, the platoon as the
twin core wants it (:class:`PlatoonState`, box centres) and the radar targets moved
to that stamp.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..drops import Cause, DroppedInput
from ..link import LinkMonitor
from ..platoon import Degradation, DegradedCause, Platoon, PlatoonConfig
from .prediction import PlatoonState
from .tracking import radar_to_stamp

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class RadarInputConfig:
    """How radar targets are used (times in ns).

    max_age_ns : targets within this of the grid stamp are used as they are
    max_late_ns : up to this they are moved to the stamp along the road at their speed; beyond, left out
    max_los_angle_deg : ... where line of sight and road are within this (see tracking.radar_to_stamp)
    """

    use: bool = True
    max_age_ns: int = 200_000_000
    max_late_ns: int = 1_000_000_000
    max_los_angle_deg: float = 25.0


@dataclass
class _Radar:
    """One vehicle's latest radar targets and their link statistics."""

    link: LinkMonitor
    stamp_ns: int | None = None
    xyv: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 3)))


class TwinInputs:
    """The platoon's odometry and clocks, and each vehicle's latest radar targets (map frame, common time)."""

    def __init__(self, platoon: PlatoonConfig, radar: RadarInputConfig) -> None:
        self.platoon = Platoon(platoon)
        self.radar_config = radar
        self.radar: dict[str, _Radar] = {}
        self.forget_streams()
        #: per vehicle, stamp - common stamp of the odometry used at the last :meth:`platoon_at`, ns
        self.odom_ages_ns: dict[str, int | None] = {v: None for v in platoon.vehicles}
        #: what was degraded at the last :meth:`platoon_at`
        self.degraded: list[Degradation] = []

    def forget_streams(self) -> None:
        """Drop odometry, radar targets and link statistics (a replay restarted); clock fits stay."""
        self.platoon.forget_streams()
        window = self.platoon.config.links_window_ns
        self.radar = {v: _Radar(LinkMonitor(window)) for v in self.platoon.config.vehicles}

    def clock_known(self, vehicle_id: str) -> bool:
        """True once a time reference of the vehicle was accepted."""
        return self.platoon.vehicles[vehicle_id].clock_known

    def add_radar(self, vehicle_id: str, stamp_ns: int, x: NDArray[np.floating], y: NDArray[np.floating],
                  velocity: NDArray[np.floating], now_ns: int) -> None:
        """Radar targets (map frame, common-time stamp, radial velocity m/s) that arrived at ``now_ns``.

        Raises DroppedInput ``future`` beyond the future tolerance, DroppedInput ``out_of_order`` when older than
        the latest targets (they still count as arrived in the link statistics).
        """
        tolerance = self.platoon.config.future_tolerance_ns
        ahead = stamp_ns - now_ns
        if ahead > tolerance:
            raise DroppedInput(Cause.FUTURE, f'{vehicle_id} radar targets are {ahead / 1e9:.3g} s ahead of the '
                                             f'node clock (tolerance {tolerance / 1e9:g} s)')
        radar = self.radar[vehicle_id]
        radar.link.add(stamp_ns, now_ns)
        if radar.stamp_ns is not None and stamp_ns < radar.stamp_ns:
            raise DroppedInput(Cause.OUT_OF_ORDER, f'{vehicle_id} radar targets at {stamp_ns} ns are older than '
                                                   f'the latest at {radar.stamp_ns} ns')
        radar.stamp_ns = stamp_ns
        radar.xyv = np.column_stack([x, y, velocity]).astype(np.float64)

    def link_degraded(self, vehicle_id: str, now_ns: int) -> list[Degradation]:
        """The vehicle's odometry late or missing (core.platoon), then its radar link's degradation."""
        return self.platoon.link_degraded(vehicle_id, now_ns) + self._radar_degraded(vehicle_id, now_ns)

    def _radar_degraded(self, vehicle_id: str, now_ns: int) -> list[Degradation]:
        """Radar targets arriving later than ``links_late_ns`` (median arrival - stamp), and what that
        means for their use."""
        rc, late_limit = self.radar_config, self.platoon.config.links_late_ns
        late = self.radar[vehicle_id].link.latency_ns(now_ns)
        if not (rc.use and late is not None and late > late_limit):
            return []
        note = ('' if late <= rc.max_age_ns else ' (beyond radar_max_age_s: moved to the grid time)'
                if late <= rc.max_late_ns else ' (beyond radar_max_late_s: unused)')
        return [Degradation(vehicle_id, DegradedCause.RADAR_LATE, late / 1e9, note)]

    def platoon_at(self, stamp_ns: int, now_ns: int) -> PlatoonState:
        """The platoon at ``stamp_ns`` (box centres, see Platoon.state_at); notes the odometry ages and
        :attr:`degraded` (each vehicle's reasons, then its radar link's when it is in the platoon state)."""
        snap = self.platoon.state_at(stamp_ns, now_ns)
        self.odom_ages_ns = {v: snap.ages_ns.get(v) for v in self.platoon.config.vehicles}
        degraded: list[Degradation] = []
        for v in self.platoon.config.vehicles:
            degraded.extend(d for d in snap.degraded if d.vehicle_id == v)
            if v in snap.ids:
                degraded.extend(self._radar_degraded(v, now_ns))
        self.degraded = degraded
        return PlatoonState(snap.ids, snap.x, snap.y, snap.speed, snap.heading, snap.length, snap.width,
                            np.arange(len(snap.ids)), snap.accel)

    def radar_at(self, stamp_ns: int, platoon: PlatoonState
                 ) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
        """Radar targets (M, 3) x, y, v_radial at the stamp, and (M, 2) sensor positions (each vehicle's
        box centre, where it was when its radar saw them); (None, None) when there are none.

        Each vehicle's latest targets within ``max_age_ns`` of the stamp are used as they are; up to
        ``max_late_ns`` (a slow link) they are moved to the stamp along the road at their speed
        (:func:`radar_to_stamp`), beyond that left out.
        """
        rc = self.radar_config
        xyv, sensor = [], []
        for v, radar in self.radar.items():
            if radar.stamp_ns is None or v not in platoon.ids or not len(radar.xyv):
                continue
            dt_ns = stamp_ns - radar.stamp_ns
            if abs(dt_ns) > max(rc.max_age_ns, rc.max_late_ns):
                continue
            i = platoon.ids.index(v)
            here = np.array([platoon.x[i], platoon.y[i]])
            if abs(dt_ns) <= rc.max_age_ns:
                xyv.append(radar.xyv)
                sensor.append(np.broadcast_to(here, (len(radar.xyv), 2)))
                continue
            dt_s = dt_ns / _NS_PER_S
            heading = np.array([math.cos(platoon.heading[i]), math.sin(platoon.heading[i])])
            moved, moved_sensor = radar_to_stamp(radar.xyv, here - platoon.speed[i] * dt_s * heading, dt_s,
                                                 rc.max_los_angle_deg)
            xyv.append(moved)
            sensor.append(moved_sensor)
        if not xyv:
            return None, None
        return np.concatenate(xyv), np.concatenate(sensor)
