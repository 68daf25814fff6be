"""Platoon world: vehicle motion, sensors and ground truth as a stream of SimEvents.

Motion
------
Vehicles move along the road in road coordinates (s along, d to the left),
integrated in fixed 10 ms steps. The platoon leader follows its speed
profile; followers use the IDM (:mod:`cooperative_fusion.core.twin.idm`) behind
the nearest vehicle ahead in their lane (the predecessor, or a car that has
cut in — a lane-changing car belongs to its target lane from half-way through
the manoeuvre). Other traffic drives at constant speed (in closed loop: by
the IDM behind the mover ahead in its lane, its constant speed as desired
speed); a lane change follows a half-cosine lateral profile. NOBODY reacts to a hazard: a vehicle that
reaches one drives through it (the boxes overlap). The common time at which a
platoon vehicle's front first reaches a hazard's rear face in its lane is
computed by a first pass over the motion (cheap: kinematics only), over the
scenario's duration (or the run's, if longer), and published once in
TRUTH_META (null for a vehicle that does not reach a hazard in that time).

Closed loop
-----------
With a :class:`Control` (``events(control=...)``), a platoon vehicle that has a
command drives through :class:`~.dynamics.LongitudinalDynamics` instead of its
script or IDM, and traffic follows whoever is ahead in its lane (IDM, braking at most
``vehicle_dynamics.max_decel_mps2``) instead of passing through a platoon vehicle that stops: the world asks the control for the commands issued up to the end
of each physics step before it integrates the next one (lock-step, no threads).
Until its first command acts, a vehicle drives as in open loop. The meeting
times in TRUTH_META stay the open-loop ones (where it would meet a hazard if
nobody reacted).

Events
------
:meth:`Simulation.events` advances the world step by step and yields events in
nondecreasing ``log_time_ns`` (common time); only a few scans are buffered, so
memory does not grow with the duration. Sensors trigger on their own period
with a random phase per vehicle and sensor. A lidar scan is logged at its end
(stamp = scan start, points carry ``t``); everything else is logged at its
measurement time. Vehicle topics are stamped in the vehicle's clock
(:mod:`.clocks`); ``/truth/*`` in common time. A vehicle's own box occludes its
sensors (the truck's lidar cannot see the road behind it through its trailer)
but gives no returns (self-filtered).
"""
from __future__ import annotations

import dataclasses
import heapq
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol

import numpy as np
import transforms3d
from numpy.typing import NDArray

from ..core.errors import ConfigError
from ..core.grid import GridSpec
from ..core.twin.idm import idm_acceleration, idm_step
from ..core.se3 import from_xy_yaw, from_xyz_rpy
from ..core.types import PoseSample
from ..ros import names
from .clocks import VehicleClock
from .dynamics import LongitudinalDynamics, SpeedCommand
from .events import EventKind, SimEvent
from .scenario import GridWindowMode, MountPose, PlatoonVehicle, Road, Scenario, load_scenario
from .sensors import BoxSet, DepthCameraModel, LidarModel, RadarModel

__all__ = ['Control', 'Simulation', 'load_scenario', 'sensor_extrinsics', 'OPTICAL2BODY', 'PHYSICS_DT_NS']

#: Physics step, ns.
PHYSICS_DT_NS = 10_000_000
#: camera_optical -> camera body (REP-103: optical z forward, x right, y down): rpy = (-90°, 0, -90°).
OPTICAL2BODY = from_xyz_rpy((0.0, 0.0, 0.0), (-math.pi / 2, 0.0, -math.pi / 2))
#: Rate of /<v>/time_reference, Hz.
TIME_REFERENCE_RATE_HZ = 1.0


class Control(Protocol):
    """What closes the loop: the platoon's longitudinal commands, read by the world between physics steps."""

    def commands(self, t_ns: int) -> Iterable[tuple[str, SpeedCommand]]:
        """``(vehicle id, command)`` of every command issued since the last call, up to common time ``t_ns``
        (inclusive), in issue order; the world does not advance past ``t_ns`` before it asks again."""
        ...


def _mount2base(mount: MountPose) -> NDArray[np.float64]:
    return from_xyz_rpy(mount.xyz_m, np.deg2rad(mount.rpy_deg))


def _six(t: NDArray[np.float64]) -> list[float]:
    r, p, y = transforms3d.euler.mat2euler(t[:3, :3], axes='sxyz')
    return [float(t[0, 3]), float(t[1, 3]), float(t[2, 3]), float(r), float(p), float(y)]


def sensor_extrinsics(scenario: Scenario, vehicle_id: str) -> dict[str, list[float]]:
    """Mounts of a platoon vehicle's sensors relative to base_link.

    Returns ``{'lidar': [...], 'radar': [...], 'camera_optical': [...]}``, each
    ``[x, y, z, roll, pitch, yaw]`` in metres and radians (static axes), i.e. the
    ``sensor2base`` transform of frames ``<v>/lidar``, ``<v>/radar`` and
    ``<v>/camera_optical``; the camera entry includes the optical rotation.
    """
    for v in scenario.platoon.vehicles:
        if v.id == vehicle_id:
            s = v.sensors
            return {'lidar': _six(_mount2base(s.lidar.mount)), 'radar': _six(_mount2base(s.radar.mount)),
                    'camera_optical': _six(_mount2base(s.camera.mount) @ OPTICAL2BODY)}
    raise ConfigError(f'vehicle {vehicle_id!r} is not in the platoon of scenario {scenario.name!r}; '
                      f'expected one of {list(scenario.vehicle_ids)}')


def road_to_map(s: NDArray[np.floating], d: NDArray[np.floating],
                curvature: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Road coordinates (s along, d left; metres) to map ``(x, y, heading)`` of a road of ``curvature``
    (1/m) that starts at the map origin heading +x (:meth:`Road.to_map` for any start)."""
    return Road(curvature_per_m=curvature).to_map(s, d)


def truth_window(scenario: Scenario, base_s_m: float, base_x_m: float, base_y_m: float) -> GridSpec:
    """The truth grid window in follow mode for a platoon whose base_link centroid is at road s
    ``base_s_m`` and map (``base_x_m``, ``base_y_m``); fixed mode ignores them.

    On a road at the origin along x the window is axis-aligned, its centre ``grid_center_ahead_m`` ahead
    of the centroid and ``grid_center_y_m`` from lane 0's centre. On any other road it is aligned with
    the chord of the road stretch it covers and widened by the bulge of the arc, so that stretch
    (``grid_size_x_m`` long, ``grid_size_y_m`` wide about that line) stays inside.
    """
    tc = scenario.truth
    road = scenario.road
    if tc.grid_mode is not GridWindowMode.FOLLOW:
        return GridSpec.centered(tc.grid_center_x_m, tc.grid_center_y_m, tc.grid_size_x_m, tc.grid_size_y_m,
                                 tc.grid_resolution_m)
    if road.at_origin_along_x and abs(road.curvature_per_m) < 1e-12:
        lane_d = scenario.platoon.lane * road.lane_width_m
        return GridSpec.centered(base_x_m + tc.grid_center_ahead_m, base_y_m - lane_d + tc.grid_center_y_m,
                                 tc.grid_size_x_m, tc.grid_size_y_m, tc.grid_resolution_m)
    mid = base_s_m + tc.grid_center_ahead_m
    s = np.linspace(mid - 0.5 * tc.grid_size_x_m, mid + 0.5 * tc.grid_size_x_m, 49)
    x, y, _ = road.to_map(s, np.full(s.size, tc.grid_center_y_m))
    return GridSpec.covering(np.stack([x, y], axis=1), 0.0, 0.5 * tc.grid_size_y_m, tc.grid_resolution_m)


class _Kinematics:
    """Road-coordinate state of all movers (platoon first, then traffic), stepped at PHYSICS_DT_NS."""

    def __init__(self, scn: Scenario, dynamics: LongitudinalDynamics | None = None) -> None:
        self.scn = scn
        self.dynamics = dynamics
        w = scn.road.lane_width_m
        p = scn.platoon
        self.n_platoon = len(p.vehicles)
        dims = [v.dimensions for v in p.vehicles] + [t.dimensions for t in scn.traffic]
        self.front = np.array([dm.front_m for dm in dims])
        self.rear = np.array([dm.rear_overhang_m for dm in dims])
        s = [p.x_m]
        for prev, v in zip(p.vehicles[:-1], p.vehicles[1:]):
            s.append(s[-1] - prev.dimensions.rear_overhang_m - v.gap_m - v.dimensions.front_m)
        self.s = np.array(s + [t.x_m for t in scn.traffic], dtype=np.float64)
        # The leader drives platoon.speed_profile; a follower with its own profile drives that (scripted).
        self.scripted = {0: p.speed_profile}
        self.scripted.update({i: v.speed_profile for i, v in enumerate(p.vehicles) if i and v.speed_profile})
        v0 = [self._profile(0.0, self.scripted.get(i, p.speed_profile)) for i in range(self.n_platoon)]
        self.v = np.array(v0 + [t.speed_mps for t in scn.traffic], dtype=np.float64)
        self.traffic_speed = np.array([t.speed_mps for t in scn.traffic], dtype=np.float64)   # scripted, m/s
        self.a = np.zeros_like(self.v)
        self.d_from = np.array([p.lane * w] * self.n_platoon + [t.lane * w for t in scn.traffic], dtype=np.float64)
        self.d_to = self.d_from.copy()
        self.lc_t0 = np.full(self.s.size, np.inf)
        self.lc_dur = np.ones(self.s.size)
        for k, t in enumerate(scn.traffic):
            if t.lane_change is not None:
                i = self.n_platoon + k
                self.d_to[i] = t.lane_change.to_lane * w
                self.lc_t0[i] = t.lane_change.t_s
                self.lc_dur[i] = t.lane_change.duration_s
        self.is_traffic = np.arange(self.s.size) >= self.n_platoon
        self.t = 0.0            # seconds since the scenario start

    @staticmethod
    def _profile(t: float, prof: tuple[tuple[float, float], ...]) -> float:
        return float(np.interp(t, [p[0] for p in prof], [p[1] for p in prof]))

    def lateral(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lateral position d (m) and rate (m/s) of every mover at scenario time t."""
        u = np.clip((t - self.lc_t0) / self.lc_dur, 0.0, 1.0)
        delta = self.d_to - self.d_from
        d = self.d_from + delta * 0.5 * (1.0 - np.cos(np.pi * u))
        moving = (u > 0) & (u < 1)
        d_dot = np.where(moving, delta * np.pi / (2.0 * self.lc_dur) * np.sin(np.pi * u), 0.0)
        return d, d_dot

    def lanes(self, t: float) -> NDArray[np.int64]:
        """Lane each mover belongs to (a lane changer joins its target lane half-way)."""
        u = (t - self.lc_t0) / self.lc_dur
        return np.rint(np.where(u >= 0.5, self.d_to, self.d_from) / self.scn.road.lane_width_m).astype(np.int64)

    def step(self, t_ns: int | None = None) -> None:
        """Advance one physics step; ``t_ns`` (common time of the step start) is needed with dynamics."""
        dt = PHYSICS_DT_NS * 1e-9
        t1 = self.t + dt
        n = self.n_platoon
        # Followers: IDM behind the nearest mover ahead in the same lane.
        lanes = self.lanes(self.t)
        front_s = self.s + self.front
        rear_s = self.s - self.rear
        gap = rear_s[None, :] - front_s[:, None]                          # [i, j]: gap from i to j
        ahead = (self.s[None, :] > self.s[:, None]) & (lanes[None, :] == lanes[:, None])
        np.fill_diagonal(ahead, False)
        gap = np.where(ahead, gap, np.inf)
        j = gap.argmin(axis=1)
        g = gap[np.arange(gap.shape[0]), j]
        a = np.zeros_like(self.v)
        if n > 1:
            a[1:n] = idm_acceleration(self.v[1:n], self.v[j[1:n]], g[1:n], self.scn.platoon.idm)
        if self.dynamics is not None:
            # Closed loop: moving traffic follows the mover ahead in its lane (a platoon vehicle that brakes,
            # too) by the IDM at its scripted speed, braking at most as hard as a platoon vehicle can.
            m = n + np.nonzero(self.traffic_speed > 0.0)[0]
            if m.size:
                a[m] = np.maximum(idm_acceleration(self.v[m], self.v[j[m]], g[m], self.scn.platoon.idm,
                                                   v0_mps=self.traffic_speed[m - n]),
                                  -self.dynamics.config.max_decel_mps2)
        controlled = np.zeros(self.v.size, dtype=bool)
        if self.dynamics is not None and t_ns is not None:
            controlled[:n] = self.dynamics.controlled(t_ns)
        v_script = {i: self._profile(t1, prof) for i, prof in self.scripted.items() if not controlled[i]}
        for i, v1 in v_script.items():
            a[i] = (v1 - self.v[i]) / dt
        if controlled.any():
            cruise = {i: (self._profile(self.t, prof), (self._profile(t1, prof) - self._profile(self.t, prof)) / dt)
                      for i, prof in self.scripted.items() if controlled[i]}
            a_dyn = self.dynamics.accelerations(t_ns, self.v[:n], self.a[:n], dt, cruise)
            a[:n] = np.where(controlled[:n], a_dyn, a[:n])
        s_new, v_new = idm_step(self.s, self.v, a, dt)
        for i, v1 in v_script.items():
            v_new[i] = v1
        if controlled.any():
            top = self.dynamics.config.max_speed_mps
            v_new = np.where(controlled, np.minimum(v_new, top), v_new)
            a = np.where(controlled, (v_new - self.v) / dt, a)      # what the limits let through
        if self.dynamics is None:
            s_new[n:] = self.s[n:] + self.v[n:] * dt       # open loop: traffic at constant speed
            v_new[n:] = self.v[n:]
            a[n:] = 0.0
        self.s, self.v, self.a, self.t = s_new, v_new, a, t1

    def longitudinal(self, tau: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(s, v) at ``tau`` seconds after the current step start (constant acceleration, v >= 0)."""
        v = np.maximum(self.v + self.a * tau, 0.0)
        s = self.s + 0.5 * (self.v + v) * tau
        return s, v


@dataclass(frozen=True)
class _WorldState:
    """Poses and boxes at one instant (common time ``t_ns``)."""

    t_ns: int
    base2map: list[NDArray[np.float64]]          # per platoon vehicle
    velocity: NDArray[np.float64]                # (n_platoon, 3) map m/s
    speed: NDArray[np.float64]                   # (n_platoon,) m/s along the heading
    yaw_rate: NDArray[np.float64]                # (n_platoon,) rad/s
    boxes: BoxSet
    road_s: NDArray[np.float64]                  # (n_platoon,) road coordinate of base_link, m


class Simulation:
    """A scenario's world, sensors and ground truth as a stream of :class:`SimEvent`."""

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.vehicle_ids: tuple[str, ...] = scenario.vehicle_ids
        self._mounts = {v.id: {'lidar': _mount2base(v.sensors.lidar.mount), 'radar': _mount2base(v.sensors.radar.mount),
                               'camera_optical': _mount2base(v.sensors.camera.mount) @ OPTICAL2BODY}
                        for v in scenario.platoon.vehicles}
        self._lidar = {v.id: LidarModel(v.sensors.lidar) for v in scenario.platoon.vehicles}
        self._radar = {v.id: RadarModel(v.sensors.radar) for v in scenario.platoon.vehicles}
        self._camera = {v.id: DepthCameraModel(v.sensors.camera) for v in scenario.platoon.vehicles}
        for v in scenario.platoon.vehicles:
            dm = v.dimensions
            center = np.array([dm.length_m / 2 - dm.rear_overhang_m, 0.0, dm.height_m / 2])
            half = np.array([dm.length_m / 2, dm.width_m / 2, dm.height_m / 2])
            for name, model in (('lidar', self._lidar[v.id]), ('radar', self._radar[v.id]),
                                ('camera_optical', self._camera[v.id])):
                model.occlude_with_own_body(self._mounts[v.id][name], center, half)
        start_ns = int(round(scenario.start_time_s * 1e9))
        for v in scenario.platoon.vehicles:
            earliest = start_ns * (1.0 + v.clock.drift_ppm * 1e-6) + (v.clock.offset_ms - 3.0 * v.clock.jitter_ms) * 1e6
            if earliest < 0:
                raise ConfigError(
                    f'{scenario.source}: vehicle {v.id!r}: clock offset {v.clock.offset_ms} ms at start_time_s = '
                    f'{scenario.start_time_s} s gives negative vehicle stamps ({earliest / 1e9:.3f} s); expected '
                    f'start_time_s >= {-(v.clock.offset_ms - 3.0 * v.clock.jitter_ms) / 1e3:.3f} s')

    # -- world geometry -------------------------------------------------------------------------

    def _state(self, kin: _Kinematics, t_ns: int, start_ns: int) -> _WorldState:
        scn = self.scenario
        kappa = scn.road.curvature_per_m
        t_rel = (t_ns - start_ns) * 1e-9
        s, v = kin.longitudinal(t_rel - kin.t)
        d, d_dot = kin.lateral(t_rel)
        x, y, th = scn.road.to_map(s, d)
        along = v * (1.0 - kappa * d)
        yaw = th + np.arctan2(d_dot, np.maximum(along, 1e-6))
        vel = np.stack([along * np.cos(th) - d_dot * np.sin(th), along * np.sin(th) + d_dot * np.cos(th),
                        np.zeros_like(s)], axis=1)
        dims = [vv.dimensions for vv in scn.platoon.vehicles] + [tt.dimensions for tt in scn.traffic]
        ids = [vv.id for vv in scn.platoon.vehicles] + [tt.id for tt in scn.traffic]
        kinds = [vv.type.value for vv in scn.platoon.vehicles] + [tt.type.value for tt in scn.traffic]
        half = np.array([[dm.length_m / 2, dm.width_m / 2, dm.height_m / 2] for dm in dims])
        off = np.array([dm.length_m / 2 - dm.rear_overhang_m for dm in dims])
        centers = np.stack([x + off * np.cos(yaw), y + off * np.sin(yaw), half[:, 2]], axis=1)
        # Static boxes: hazards, then roadside rows (kind 'roadside': landmarks, not hazards).
        static = [(h.id, h.kind.value, h.x_m + h.dimensions.length_m / 2,
                   h.lane * scn.road.lane_width_m + h.lateral_offset_m, h.dimensions) for h in scn.hazards]
        static += [(bid, 'roadside', bs, bd, row.dimensions) for row in scn.roadside for bid, bs, bd in row.boxes(scn.road)]
        if static:
            hx, hy, hth = scn.road.to_map(np.array([b[2] for b in static]), np.array([b[3] for b in static]))
            hhalf = np.array([[b[4].length_m / 2, b[4].width_m / 2, b[4].height_m / 2] for b in static])
            centers = np.concatenate([centers, np.stack([hx, hy, hhalf[:, 2]], axis=1)])
            half = np.concatenate([half, hhalf])
            yaw_all = np.concatenate([yaw, hth])
            vel_all = np.concatenate([vel, np.zeros((len(static), 3))])
            ids += [b[0] for b in static]
            kinds += [b[1] for b in static]
        else:
            yaw_all, vel_all = yaw, vel
        n = kin.n_platoon
        boxes = BoxSet(tuple(ids), tuple(kinds), centers, half, yaw_all, vel_all)
        return _WorldState(t_ns, [from_xy_yaw(float(x[i]), float(y[i]), float(yaw[i])) for i in range(n)],
                           vel[:n], along[:n], kappa * along[:n], boxes, s[:n].copy())

    def meeting_times_ns(self, duration_s: float | None = None) -> dict[str, int | None]:
        """Per platoon vehicle: common time (ns) at which its front first reaches the rear face of
        a hazard in its lane, from the simulated motion; None if not within the duration."""
        scn = self.scenario
        duration_s = scn.duration_s if duration_s is None else duration_s
        start_ns = int(round(scn.start_time_s * 1e9))
        kin = _Kinematics(scn)
        n = kin.n_platoon
        out: dict[str, int | None] = {vid: None for vid in self.vehicle_ids}
        if not scn.hazards:
            return out
        w = scn.road.lane_width_m
        h_rear = np.array([h.x_m for h in scn.hazards])
        h_d = np.array([h.lane * w + h.lateral_offset_m for h in scn.hazards])
        h_half_w = np.array([h.dimensions.width_m / 2 for h in scn.hazards])
        widths = np.array([v.dimensions.width_m / 2 for v in scn.platoon.vehicles])
        steps = int(math.ceil(duration_s * 1e9 / PHYSICS_DT_NS))
        front_prev = kin.s[:n] + kin.front[:n]
        for k in range(steps + 1):
            d, _ = kin.lateral(kin.t)
            front = kin.s[:n] + kin.front[:n]
            overlap = np.abs(d[:n, None] - h_d[None, :]) < widths[:, None] + h_half_w[None, :]
            reached = overlap & (front[:, None] >= h_rear[None, :]) & (front_prev[:, None] <= h_rear[None, :]) \
                | overlap & (front[:, None] >= h_rear[None, :]) & (k == 0)
            for i in np.nonzero(reached.any(axis=1))[0]:
                vid = self.vehicle_ids[i]
                if out[vid] is not None:
                    continue
                rear = h_rear[reached[i]].min()
                if k == 0 or front[i] == front_prev[i]:
                    frac = 1.0
                else:
                    frac = (rear - front_prev[i]) / (front[i] - front_prev[i])
                t_ns = start_ns + int(round((k - 1 + frac) * PHYSICS_DT_NS)) if k else start_ns
                if t_ns <= start_ns + duration_s * 1e9:
                    out[vid] = t_ns
            front_prev = front
            if k < steps:
                kin.step()
        return out

    # -- event generation -----------------------------------------------------------------------

    def events(self, duration_s: float | None = None, control: Control | None = None,
               meta: dict[str, Any] | None = None) -> Iterator[SimEvent]:
        """Yield the scenario's events in nondecreasing log_time_ns over ``duration_s`` seconds
        (default: the scenario's), starting at ``start_time_s``. Same seed -> same events.

        control : closed loop (module docstring): the platoon's commands, asked for before every physics
            step; with the same commands the same events
        meta : closed loop: extra JSON-able keys for TRUTH_META (what drives the commands, e.g. the mode)
        """
        scn = self.scenario
        duration_s = scn.duration_s if duration_s is None else float(duration_s)
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise ConfigError(f'duration_s must be a finite number of seconds > 0, got {duration_s!r}')
        start_ns = int(round(scn.start_time_s * 1e9))
        end_ns = start_ns + int(round(duration_s * 1e9))
        # A property of the scenario: computed over its whole duration even for a shorter run.
        meeting = self.meeting_times_ns(max(duration_s, scn.duration_s))
        seq = np.random.SeedSequence(self.seed)
        children = iter(seq.spawn(1 + 6 * len(self.vehicle_ids)))
        phase_rng = np.random.default_rng(next(children))
        dynamics = LongitudinalDynamics(len(self.vehicle_ids), scn.dynamics) if control is not None else None
        kin = _Kinematics(scn, dynamics)
        index = {vid: i for i, vid in enumerate(self.vehicle_ids)}
        heap: list[tuple[int, int, SimEvent]] = []
        counter = [0]

        def push(ev: SimEvent) -> None:
            if ev.log_time_ns < end_ns:
                heapq.heappush(heap, (ev.log_time_ns, counter[0], ev))
                counter[0] += 1

        streams: list[list] = []       # [next_ns, period_ns, handler]

        def add(rate_hz: float, handler: Callable[[int, _WorldState], None], phase: bool) -> None:
            period = int(round(1e9 / rate_hz))
            first = start_ns + (int(phase_rng.integers(0, period)) if phase else 0)
            streams.append([first, period, handler])

        for v in scn.platoon.vehicles:
            self._add_vehicle_streams(v, add, push, children)
        self._add_truth_streams(add, push)

        info = {'scenario': scn.name, 'seed': self.seed, 'vehicle_ids': list(self.vehicle_ids),
                'hazard_ids': [h.id for h in scn.hazards], 'traffic_ids': [t.id for t in scn.traffic],
                'start_time_ns': start_ns, 'duration_s': duration_s,
                'meeting_time_ns': meeting,
                'meeting_time_s': {k: (None if t is None else (t - start_ns) * 1e-9) for k, t in meeting.items()},
                'note': 'nobody reacts to a hazard; a vehicle that reaches one drives through it'}
        if control is not None:
            info['closed_loop'] = True
            info['vehicle_dynamics'] = dataclasses.asdict(scn.dynamics)
            info.update(meta or {})
            info['note'] = ('closed loop: platoon vehicles follow their /<v>/cooperative/cmd through the vehicle '
                            'dynamics; meeting times are where they would meet a hazard if nobody reacted')
        yield SimEvent(names.TRUTH_SCENARIO, EventKind.TRUTH_META, start_ns, start_ns, '', {'json': json.dumps(info)})

        t_ns = start_ns
        while t_ns < end_ns:
            t_next = min(t_ns + PHYSICS_DT_NS, end_ns)
            due = sorted((s for s in streams if s[0] < t_next), key=lambda s: s[0])
            cache: dict[int, _WorldState] = {}
            for st in due:
                while st[0] < t_next:
                    trig = st[0]
                    if trig not in cache:
                        cache[trig] = self._state(kin, trig, start_ns)
                    st[2](trig, cache[trig])
                    st[0] += st[1]
            while heap and heap[0][0] < t_next:
                yield heapq.heappop(heap)[2]
            if control is not None:
                for vid, command in control.commands(t_next):
                    if vid not in index:
                        raise ConfigError(f'closed loop: a command for {vid!r}, which is not a platoon vehicle '
                                          f'of scenario {scn.name!r} ({", ".join(self.vehicle_ids)})')
                    dynamics.receive(index[vid], command)
            kin.step(t_ns)
            t_ns = t_next
        while heap:
            yield heapq.heappop(heap)[2]

    def _add_vehicle_streams(self, v: PlatoonVehicle, add: Callable[..., None], push: Callable[[SimEvent], None],
                             children: Iterator[np.random.SeedSequence]) -> None:
        vid = v.id
        i = self.vehicle_ids.index(vid)
        clock = VehicleClock(v.clock, np.random.default_rng(next(children)))
        rngs = {name: np.random.default_rng(next(children)) for name in ('lidar', 'radar', 'camera', 'odom', 'tref')}
        mounts = self._mounts[vid]
        sensors = v.sensors
        lidar, radar, camera = self._lidar[vid], self._radar[vid], self._camera[vid]
        lidar_period_ns = int(round(1e9 / sensors.lidar.rate_hz))

        def on_lidar(t: int, st: _WorldState) -> None:
            pts, _ = lidar.scan(st.base2map[i] @ mounts['lidar'], st.velocity[i], st.boxes.without(vid), rngs['lidar'])
            push(SimEvent(names.vehicle_topic(vid, names.LIDAR), EventKind.LIDAR, clock.to_vehicle_ns(t), t + lidar_period_ns,
                          f'{vid}/lidar', {'points': pts}))

        def on_radar(t: int, st: _WorldState) -> None:
            pts, _ = radar.scan(st.base2map[i] @ mounts['radar'], st.velocity[i], st.boxes.without(vid), rngs['radar'])
            push(SimEvent(names.vehicle_topic(vid, names.RADAR), EventKind.RADAR, clock.to_vehicle_ns(t), t, f'{vid}/radar',
                          {'points': pts}))

        def on_camera(t: int, st: _WorldState) -> None:
            depth, _ = camera.render(st.base2map[i] @ mounts['camera_optical'], st.boxes.without(vid), rngs['camera'])
            stamp = clock.to_vehicle_ns(t)
            frame = f'{vid}/camera_optical'
            push(SimEvent(names.vehicle_topic(vid, names.DEPTH_IMAGE), EventKind.DEPTH, stamp, t, frame, {'depth': depth}))
            push(SimEvent(names.vehicle_topic(vid, names.CAMERA_INFO), EventKind.CAMERA_INFO, stamp, t, frame,
                          {'K': camera.K.copy(), 'width': sensors.camera.width, 'height': sensors.camera.height}))

        loc = v.localization
        sxy, syaw = loc.noise_xy_m, math.radians(loc.noise_yaw_deg)
        cov = np.diag([sxy ** 2, sxy ** 2, 1e-4, 1e-4, 1e-4, syaw ** 2])

        def on_odom(t: int, st: _WorldState) -> None:
            rng = rngs['odom']
            n = rng.standard_normal(4)
            pose = st.base2map[i]
            yaw = math.atan2(pose[1, 0], pose[0, 0]) + math.radians(loc.bias_yaw_deg) + syaw * n[2]
            pos = np.array([pose[0, 3] + loc.bias_x_m + sxy * n[0], pose[1, 3] + loc.bias_y_m + sxy * n[1], 0.0])
            sample = PoseSample(clock.to_vehicle_ns(t), pos, np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]),
                                cov.copy(), np.array([st.speed[i] + loc.speed_noise_mps * n[3], 0.0, 0.0]),
                                np.array([0.0, 0.0, st.yaw_rate[i]]))
            push(SimEvent(names.vehicle_topic(vid, names.ODOM), EventKind.ODOM, sample.stamp_ns, t, 'map',
                          {'pose': sample, 'child_frame_id': f'{vid}/base_link'}))

        def on_tref(t: int, st: _WorldState) -> None:
            push(SimEvent(names.vehicle_topic(vid, names.TIME_REFERENCE), EventKind.TIME_REFERENCE, clock.to_vehicle_ns(t), t, '',
                          {'time_ref_ns': t, 'source': 'gnss'}))

        if sensors.lidar.enabled:
            add(sensors.lidar.rate_hz, on_lidar, True)
        if sensors.radar.enabled:
            add(sensors.radar.rate_hz, on_radar, True)
        if sensors.camera.enabled:
            add(sensors.camera.rate_hz, on_camera, True)
        add(loc.rate_hz, on_odom, True)
        add(TIME_REFERENCE_RATE_HZ, on_tref, False)

    def _add_truth_streams(self, add: Callable[..., None], push: Callable[[SimEvent], None]) -> None:
        scn = self.scenario
        tc = scn.truth

        def on_truth_odom(t: int, st: _WorldState) -> None:
            for i, vid in enumerate(self.vehicle_ids):
                pose = st.base2map[i]
                yaw = math.atan2(pose[1, 0], pose[0, 0])
                sample = PoseSample(t, pose[:3, 3].copy(), np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]),
                                    np.zeros((6, 6)), np.array([st.speed[i], 0.0, 0.0]),
                                    np.array([0.0, 0.0, st.yaw_rate[i]]))
                push(SimEvent(names.truth_odom(vid), EventKind.TRUTH_ODOM, t, t, 'map',
                              {'pose': sample, 'child_frame_id': f'{vid}/base_link'}))

        def on_grid(t: int, st: _WorldState) -> None:
            xs = np.array([p[0, 3] for p in st.base2map])
            ys = np.array([p[1, 3] for p in st.base2map])
            spec = truth_window(scn, float(st.road_s.mean()), xs.mean(), ys.mean())
            push(SimEvent(names.TRUTH_GRID, EventKind.TRUTH_GRID, t, t, 'map',
                          {'spec': spec, 'cells': rasterize_boxes(spec, st.boxes)}))

        def on_objects(t: int, st: _WorldState) -> None:
            b = st.boxes
            boxes = [{'id': b.ids[m], 'kind': b.kinds[m], 'center': b.centers[m].tolist(),
                      'size': (2.0 * b.half_sizes[m]).tolist(), 'yaw': float(b.yaws[m]),
                      'velocity': b.velocities[m, :2].tolist()} for m in range(len(b))]
            push(SimEvent(names.TRUTH_OBJECTS, EventKind.TRUTH_OBJECTS, t, t, 'map', {'boxes': boxes}))

        add(tc.odom_rate_hz, on_truth_odom, False)
        add(tc.grid_rate_hz, on_grid, False)
        add(tc.objects_rate_hz, on_objects, False)


def rasterize_boxes(spec: GridSpec, boxes: BoxSet) -> NDArray[np.int8]:
    """(H, W) int8 grid: 100 in cells whose centre lies in a box footprint, 0 elsewhere (any grid yaw)."""
    cells = np.zeros(spec.shape, dtype=np.int8)
    res = spec.resolution
    centers = spec.to_grid_frame(boxes.centers[:, :2])
    yaws = boxes.yaws - spec.yaw if spec.is_rotated else boxes.yaws
    lattice = spec.aligned()
    for m in range(len(boxes)):
        if spec.is_rotated:
            c, s = math.cos(yaws[m]), math.sin(yaws[m])
            hx, hy = boxes.half_sizes[m, 0], boxes.half_sizes[m, 1]
            ex, ey = abs(c) * hx + abs(s) * hy, abs(s) * hx + abs(c) * hy
            lo, hi = centers[m] - (ex, ey), centers[m] + (ex, ey)
        else:
            corners = boxes.corners(m)[:, :2]
            lo, hi = corners.min(axis=0), corners.max(axis=0)
        ix0, iy0 = lattice.world_to_cell(lo)
        ix1, iy1 = lattice.world_to_cell(hi)
        ix0, ix1 = max(int(ix0), 0), min(int(ix1) + 1, spec.width)
        iy0, iy1 = max(int(iy0), 0), min(int(iy1) + 1, spec.height)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        xs = spec.origin_x + (np.arange(ix0, ix1) + 0.5) * res - centers[m, 0]
        ys = spec.origin_y + (np.arange(iy0, iy1) + 0.5) * res - centers[m, 1]
        c, s = math.cos(yaws[m]), math.sin(yaws[m])
        lx = c * xs[None, :] + s * ys[:, None]
        ly = -s * xs[None, :] + c * ys[:, None]
        inside = (np.abs(lx) <= boxes.half_sizes[m, 0]) & (np.abs(ly) <= boxes.half_sizes[m, 1])
        cells[iy0:iy1, ix0:ix1][inside] = 100
    return cells
