"""The road's reference line in ``map``, taken from the platoon's own path.

:class:`RoadModel` is an immutable reference line (a straight line or a
circular arc, extended ahead and behind by its curvature) with road
coordinates ``s`` (metres along it, increasing with travel) and ``d`` (metres
to its left). :meth:`RoadModel.from_path` fits one to map points along the
travelled path; :class:`RoadTracker` keeps the platoon's recent odometry and
refits when the platoon has moved. A straight road along map +x through the
origin gives ``s == x`` and ``d == y`` exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import ConfigError, FrameError

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class RoadConfig:
    """How the road is fitted to the platoon's path.

    history_m, history_s : path kept behind the newest point of each vehicle (metres along the
        platoon's heading, and seconds of that vehicle's stamps)
    min_points, min_length_m : fewer path points, or a shorter path, give a straight road along
        the leader's heading
    sample_spacing_m : a vehicle's path point is kept only once it moved this far (a stopped
        platoon adds none, so the road stays as it was)
    max_curvature_per_m : a fit curving more sharply is refused (the last road is kept)
    weight_length_m : points this far behind the newest weigh 1/e (the fit follows the road near
        the platoon, smoothing noise over about this length)
    outlier_m : after a first fit, points further than this (or 2.5 robust sigmas, whichever is
        larger) from the line are left out: members in another lane, odometry jumps
    curvature_sigmas : the road is curved only where the fitted curvature exceeds this many of its
        standard errors; else it is a straight line (a short path, or per-vehicle odometry offsets,
        show curvature that is not there)
    axis_snap_heading_rad, axis_snap_curvature_per_m, axis_snap_offset_m : a fitted road this close
        to the map x axis (heading, curvature, offset of the line from the origin) is taken as the
        map x axis itself, so that s == x and d == y hold exactly there
    """

    history_m: float = 300.0
    history_s: float = 30.0
    min_points: int = 8
    min_length_m: float = 20.0
    sample_spacing_m: float = 1.0
    max_curvature_per_m: float = 0.01
    weight_length_m: float = 300.0
    outlier_m: float = 1.0
    curvature_sigmas: float = 3.0
    axis_snap_heading_rad: float = math.radians(0.25)
    axis_snap_curvature_per_m: float = 5e-5
    axis_snap_offset_m: float = 0.5

    def __post_init__(self) -> None:
        for name in ('history_m', 'history_s', 'min_length_m', 'sample_spacing_m', 'max_curvature_per_m',
                     'weight_length_m', 'outlier_m'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ConfigError(f'road.{name} must be a positive finite number, got {value!r}')
        for name in ('curvature_sigmas', 'axis_snap_heading_rad', 'axis_snap_curvature_per_m', 'axis_snap_offset_m'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f'road.{name} must be a finite number >= 0, got {value!r}')
        if self.min_points < 3:
            raise ConfigError(f'road.min_points must be at least 3, got {self.min_points!r}')
        if self.min_length_m >= self.history_m:
            raise ConfigError(f'road.min_length_m ({self.min_length_m}) must be below road.history_m '
                              f'({self.history_m})')


def _significant_curvature(design: NDArray[np.float64], v: NDArray[np.float64], w: NDArray[np.float64],
                           coef: NDArray[np.float64], sigmas: float) -> NDArray[np.float64]:
    """``coef`` (A, B, D) of the weighted fit when A exceeds ``sigmas`` standard errors, else the
    straight-line fit (0, B, D) on the same points and weights."""
    used = w > 0
    x, wu = design[used], w[used]
    n = x.shape[0]
    if n > 3:
        resid = x @ coef - v[used]
        s2 = float(resid @ resid) / (n - 3)
        m = np.linalg.pinv((x * wu[:, None]).T @ x)
        cov = s2 * m @ ((x * (wu * wu)[:, None]).T @ x) @ m
        if abs(coef[0]) > sigmas * math.sqrt(max(cov[0, 0], 0.0)):
            return coef
    sw = np.sqrt(wu)
    b, d = np.linalg.lstsq(x[:, 1:] * sw[:, None], v[used] * sw, rcond=None)[0]
    return np.array([0.0, b, d])


def _wrap(angle: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Angles wrapped to [-pi, pi), radians."""
    return (np.asarray(angle, dtype=np.float64) + math.pi) % (2.0 * math.pi) - math.pi


class RoadModel:
    """A reference line in ``map``: through ``(x0, y0)`` at ``s0`` with heading ``heading0`` and constant
    signed ``curvature`` (1/m, + turning left; 0 = straight). Immutable."""

    __slots__ = ('x0', 'y0', 'heading0', 'curvature', 's0', '_t', '_n', '_d_off', '_centre')

    def __init__(self, x0: float, y0: float, heading0: float, curvature: float = 0.0, s0: float | None = None
                 ) -> None:
        values = (x0, y0, heading0, curvature) + (() if s0 is None else (s0,))
        if not all(math.isfinite(float(v)) for v in values):
            raise FrameError(f'a road needs finite x0, y0, heading0, curvature, s0; got {values}')
        heading0 = float(_wrap(float(heading0)))
        t = (math.cos(heading0), math.sin(heading0))
        n = (-t[1], t[0])
        set_ = object.__setattr__
        set_(self, 'x0', float(x0))
        set_(self, 'y0', float(y0))
        set_(self, 'heading0', heading0)
        set_(self, 'curvature', float(curvature))
        # s0 defaults to the reference point's distance along the heading from the origin, so that the
        # straight line s = p . t needs no offset and a line along +x has s == x.
        set_(self, 's0', float(x0 * t[0] + y0 * t[1]) if s0 is None else float(s0))
        set_(self, '_t', t)
        set_(self, '_n', n)
        set_(self, '_d_off', float(x0 * n[0] + y0 * n[1]))
        centre = None if curvature == 0.0 else (x0 + n[0] / curvature, y0 + n[1] / curvature)
        set_(self, '_centre', centre)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f'RoadModel is immutable (tried to set {name})')

    def __repr__(self) -> str:
        return (f'RoadModel(x0={self.x0:.3f}, y0={self.y0:.3f}, heading0={self.heading0:.6f}, '
                f'curvature={self.curvature:.3e}, s0={self.s0:.3f})')

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, RoadModel) and (self.x0, self.y0, self.heading0, self.curvature, self.s0)
                == (other.x0, other.y0, other.heading0, other.curvature, other.s0))

    def __hash__(self) -> int:
        return hash((self.x0, self.y0, self.heading0, self.curvature, self.s0))

    @property
    def is_map_x(self) -> bool:
        """True when the road is the map x axis itself (s == x, d == y)."""
        return self.curvature == 0.0 and self.heading0 == 0.0 and self.y0 == 0.0 and self.s0 == self.x0

    @classmethod
    def straight(cls, x0: float, y0: float, heading: float) -> RoadModel:
        """The straight road through ``(x0, y0)`` with ``heading`` (radians); along +x through the origin
        it is the identity."""
        return cls(x0, y0, heading, 0.0)

    @classmethod
    def map_x(cls) -> RoadModel:
        """The map x axis: s == x, d == y."""
        return cls(0.0, 0.0, 0.0, 0.0)

    @classmethod
    def from_path(cls, xy: ArrayLike, cfg: RoadConfig | None = None,
                  weights: ArrayLike | None = None) -> RoadModel:
        """The line or arc that fits ``xy`` ((N, 2) map points ordered along travel), anchored at the last.

        Points are weighed by ``exp(-distance behind the last point / weight_length_m)`` (times
        ``weights`` when given), and those off the first fit by more than ``outlier_m`` are left out.
        Raises FrameError for too few points, too short a path, or a path curving more sharply than
        ``max_curvature_per_m``. A fit close to the map x axis is snapped to it (see RoadConfig).
        """
        cfg = cfg or RoadConfig()
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        w_in = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
        finite = np.isfinite(pts).all(axis=1) & np.isfinite(w_in) & (w_in > 0)
        pts, w_in = pts[finite], w_in[finite]
        if len(pts) < cfg.min_points:
            raise FrameError(f'a road needs at least {cfg.min_points} path points, got {len(pts)}')
        chord = pts[-1] - pts[0]
        length = math.hypot(*chord)
        if length < cfg.min_length_m:
            raise FrameError(f'a road needs a path of at least {cfg.min_length_m} m, got {length:.1f} m')
        return cls._fit(pts, w_in, pts[-1], math.atan2(chord[1], chord[0]), cfg)

    @classmethod
    def _fit(cls, pts: NDArray[np.float64], w_in: NDArray[np.float64], anchor: NDArray[np.float64],
             direction: float, cfg: RoadConfig) -> RoadModel:
        """Weighted robust fit of v = A (u^2 + v^2) + B u + D in a frame at ``anchor`` along ``direction``
        (a circle, or a line when A = 0), given as the road at the anchor's foot on it."""
        c, s = math.cos(direction), math.sin(direction)
        rel = pts - anchor
        u = rel[:, 0] * c + rel[:, 1] * s
        v = -rel[:, 0] * s + rel[:, 1] * c
        w = w_in * np.exp(-np.maximum(-u, 0.0) / cfg.weight_length_m)
        design = np.column_stack([u * u + v * v, u, np.ones_like(u)])
        keep = np.ones(len(u), dtype=bool)
        coef = np.zeros(3)
        for it in range(10):
            sw = np.sqrt(w * keep)
            if np.count_nonzero(sw) < cfg.min_points:
                raise FrameError(f'a road needs at least {cfg.min_points} path points on one line, '
                                 f'got {np.count_nonzero(sw)} after leaving out outliers')
            coef = np.linalg.lstsq(design * sw[:, None], v * sw, rcond=None)[0]
            a, b, _ = coef
            grad = np.hypot(2.0 * a * u + b, 2.0 * a * v - 1.0)
            resid = np.abs(design @ coef - v) / grad
            if it == 0:
                # Refit on the better half first: a member in another lane would bias the first fit
                # so much that no point looks off it.
                keep = resid <= np.median(resid)
                continue
            sigma = 1.4826 * float(np.median(resid[keep]))
            kept = resid <= max(cfg.outlier_m, 2.5 * sigma)
            if np.array_equal(kept, keep):
                break
            keep = kept
        coef = _significant_curvature(design, v, w * keep, coef, cfg.curvature_sigmas)
        a, b, d = (float(x) for x in coef)
        root = b * b + 1.0 - 4.0 * a * d
        if root <= 0.0:
            raise FrameError(f'the path gives no road (degenerate circle fit A={a:.3g}, B={b:.3g}, D={d:.3g})')
        kappa = 2.0 * a / math.sqrt(root)
        if abs(kappa) > cfg.max_curvature_per_m:
            raise FrameError(f'the path curves by {kappa:.3g} 1/m, more than road.max_curvature_per_m '
                             f'{cfg.max_curvature_per_m:g}')
        if abs(kappa) < 1e-12:
            # Line v = B u + D: the foot of the anchor, heading along +u.
            foot = np.array([-b * d, d]) / (1.0 + b * b)
            heading_local = math.atan(b)
            kappa = 0.0
        else:
            centre = np.array([-b / (2.0 * a), 1.0 / (2.0 * a)])
            radius = math.sqrt(root) / (2.0 * abs(a))
            dist = math.hypot(*centre)
            foot = centre - centre / dist * radius
            # Left normal points to the centre when turning left (kappa > 0), away from it otherwise.
            n = (centre - foot) / radius * (1.0 if kappa > 0 else -1.0)
            heading_local = math.atan2(-n[0], n[1])
        x0 = anchor[0] + foot[0] * c - foot[1] * s
        y0 = anchor[1] + foot[0] * s + foot[1] * c
        model = cls(x0, y0, direction + heading_local, kappa)
        return model._snapped(cfg)

    def _snapped(self, cfg: RoadConfig) -> RoadModel:
        """The map x axis when this road is within the snap tolerances of it, else self."""
        if (abs(self.curvature) <= cfg.axis_snap_curvature_per_m
                and abs(self.heading0) <= cfg.axis_snap_heading_rad
                and abs(self._d_off) <= cfg.axis_snap_offset_m):
            return RoadModel.map_x()
        return self

    def snapped(self, cfg: RoadConfig | None = None) -> RoadModel:
        """The map x axis when this road is within ``cfg``'s snap tolerances of it, else self."""
        return self._snapped(cfg or RoadConfig())

    def to_road(self, xy: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Map points ``(..., 2)`` -> ``(s, d)``, each shaped ``(...)``: metres along the road and to its left.

        On an arc, points are placed by their angle about its centre within half a turn of the
        reference point.
        """
        p = np.asarray(xy, dtype=np.float64)
        px, py = p[..., 0], p[..., 1]
        t, n = self._t, self._n
        if self._centre is None:
            return px * t[0] + py * t[1] + (self.s0 - (self.x0 * t[0] + self.y0 * t[1])), \
                px * n[0] + py * n[1] - self._d_off
        k = self.curvature
        sgn = 1.0 if k > 0 else -1.0
        vx, vy = px - self._centre[0], py - self._centre[1]
        r = np.hypot(vx, vy)
        d = 1.0 / k - sgn * r
        heading = np.arctan2(sgn * vx, -sgn * vy)
        s = self.s0 + _wrap(heading - self.heading0) / k
        return s, d

    def to_map(self, s: ArrayLike, d: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                          NDArray[np.float64]]:
        """Road coordinates (metres, broadcast together) -> map ``x``, ``y`` and the road's heading there."""
        s = np.asarray(s, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        s, d = np.broadcast_arrays(s, d)
        t, n = self._t, self._n
        if self._centre is None:
            along = s - (self.s0 - (self.x0 * t[0] + self.y0 * t[1]))
            across = d + self._d_off
            return along * t[0] + across * n[0], along * t[1] + across * n[1], \
                np.full(s.shape, self.heading0)
        k = self.curvature
        heading = self.heading0 + k * (s - self.s0)
        arm = 1.0 / k - d
        x = self._centre[0] + arm * np.sin(heading)
        y = self._centre[1] - arm * np.cos(heading)
        return x, y, _wrap(heading)

    def heading_at(self, s: ArrayLike) -> NDArray[np.float64]:
        """The road's heading at ``s`` (radians, in [-pi, pi))."""
        s = np.asarray(s, dtype=np.float64)
        if self.curvature == 0.0:
            return np.full(s.shape, self.heading0)
        return _wrap(self.heading0 + self.curvature * (s - self.s0))

    def curvature_at(self, s: ArrayLike) -> NDArray[np.float64]:
        """The road's signed curvature at ``s``, 1/m (+ turning left)."""
        return np.full(np.shape(s), self.curvature)

    def velocity_to_road(self, xy: ArrayLike, vxy: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Map velocities ``(..., 2)`` at map points ``(..., 2)`` -> along- and across-road speeds (m/s)
        on the road's heading at each point's ``s``."""
        v = np.asarray(vxy, dtype=np.float64)
        if self.is_map_x:
            return v[..., 0].copy(), v[..., 1].copy()
        s, _ = self.to_road(xy)
        h = self.heading_at(s)
        c, sn = np.cos(h), np.sin(h)
        return v[..., 0] * c + v[..., 1] * sn, -v[..., 0] * sn + v[..., 1] * c


class _Path:
    """One vehicle's path points, oldest first: stamps (ns, increasing) and map xy (metres) in numpy buffers,
    so a refit reads them as views instead of rebuilding arrays from tuples every cycle."""

    __slots__ = ('stamps', 'xy', 'start', 'end', 'last_xy')

    def __init__(self, capacity: int = 64) -> None:
        self.stamps = np.zeros(capacity, dtype=np.int64)
        self.xy = np.zeros((capacity, 2))
        self.start = self.end = 0
        self.last_xy: tuple[float, float] | None = None     # the newest point, as floats

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, stamp_ns: int, x: float, y: float) -> None:
        if self.end == len(self.stamps):
            n = self.end - self.start
            if 2 * n > len(self.stamps):
                stamps, xy = np.zeros(2 * len(self.stamps), dtype=np.int64), np.zeros((2 * len(self.stamps), 2))
            else:
                stamps, xy = self.stamps, self.xy
            stamps[:n], xy[:n] = self.stamps[self.start:self.end], self.xy[self.start:self.end]
            self.stamps, self.xy, self.start, self.end = stamps, xy, 0, n
        self.stamps[self.end] = stamp_ns
        self.xy[self.end] = (x, y)
        self.end += 1
        self.last_xy = (x, y)

    def drop_older(self, oldest_ns: int) -> None:
        """Drop the points stamped before ``oldest_ns``."""
        stamps = self.stamps
        while self.start < self.end and stamps[self.start] < oldest_ns:
            self.start += 1
        if self.start == self.end:
            self.last_xy = None

    def points(self) -> NDArray[np.float64]:
        """(N, 2) map xy, oldest first (a view)."""
        return self.xy[self.start:self.end]


class RoadTracker:
    """The platoon's recent path (odometry of every vehicle) -> the current :class:`RoadModel`.

    ``vehicles`` : ids in platoon order, leader first (when not given, the first id seen leads).
    The leader's newest sample anchors the road; its yaw gives the direction of travel and the
    straight road used while the path is too short. Samples not newer than a vehicle's last are
    refused and counted in ``rejected``.
    """

    def __init__(self, cfg: RoadConfig | None = None, vehicles: Sequence[str] = ()) -> None:
        self.cfg = cfg or RoadConfig()
        self._order: list[str] = list(vehicles)
        self._paths: dict[str, _Path] = {}
        self._last: dict[str, tuple[int, float, float, float]] = {}
        self._model: RoadModel | None = None
        self._dirty = False
        #: samples refused (stamp not newer than the vehicle's last, or not finite)
        self.rejected = 0
        #: fits refused (too sharp a curve, degenerate); the last road was kept
        self.refused_fits = 0

    def update(self, stamp_ns: int, vehicle_id: str, x: float, y: float, yaw: float) -> None:
        """One odometry sample of ``vehicle_id`` (base_link or box centre in ``map``, yaw in radians)."""
        last = self._last.get(vehicle_id)
        if (last is not None and stamp_ns <= last[0]) or not all(map(math.isfinite, (x, y, yaw))):
            self.rejected += 1
            return
        if vehicle_id not in self._order:
            self._order.append(vehicle_id)
        self._last[vehicle_id] = (int(stamp_ns), float(x), float(y), float(yaw))
        path = self._paths.get(vehicle_id)
        if path is None:
            path = self._paths[vehicle_id] = _Path()
        last_xy = path.last_xy
        if last_xy is None or math.hypot(x - last_xy[0], y - last_xy[1]) >= self.cfg.sample_spacing_m:
            path.append(int(stamp_ns), float(x), float(y))
            self._dirty = True
        elif self._model is None:
            self._dirty = True
        path.drop_older(stamp_ns - int(self.cfg.history_s * _NS_PER_S))

    def update_platoon(self, stamp_ns: int, ids: Sequence[str], x: ArrayLike, y: ArrayLike, yaw: ArrayLike
                       ) -> None:
        """One sample of each vehicle, ``ids`` in platoon order (leader first; sets the order)."""
        self._order = list(ids) + [v for v in self._order if v not in ids]
        for v, xi, yi, yawi in zip(ids, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                                   np.asarray(yaw, dtype=np.float64)):
            self.update(stamp_ns, v, float(xi), float(yi), float(yawi))

    def position(self, vehicle_id: str) -> tuple[float, float]:
        """The vehicle's latest map position, metres; KeyError before its first sample."""
        _, x, y, _ = self._last[vehicle_id]
        return x, y

    def leader(self) -> str | None:
        """The first vehicle in platoon order that has sent odometry."""
        return next((v for v in self._order if v in self._last), None)

    def model(self) -> RoadModel | None:
        """The current road: None before any odometry; a straight road along the leader's heading
        while the path is short; otherwise the fit (refitted only after the platoon moved)."""
        if self._dirty:
            self._dirty = False
            self._model = self._refit()
        return self._model

    def _refit(self) -> RoadModel | None:
        lead = self.leader()
        if lead is None:
            return self._model
        _, lx, ly, lyaw = self._last[lead]
        heading = (math.cos(lyaw), math.sin(lyaw))
        paths = [path.points() for path in self._paths.values() if len(path)]
        xy = np.concatenate(paths) if paths else np.zeros((0, 2))
        behind = (xy[:, 0] - lx) * heading[0] + (xy[:, 1] - ly) * heading[1]
        xy, behind = xy[behind >= -self.cfg.history_m], behind[behind >= -self.cfg.history_m]
        length = float(behind.max() - behind.min()) if len(xy) else 0.0
        if len(xy) < self.cfg.min_points or length < self.cfg.min_length_m:
            # A platoon that just started: straight along the leader; a stopped one keeps its road.
            return self._model if self._model is not None else RoadModel.straight(lx, ly, lyaw)._snapped(self.cfg)
        try:
            return RoadModel._fit(xy, np.ones(len(xy)), np.array([lx, ly]), lyaw, self.cfg)
        except FrameError:
            self.refused_fits += 1
            return self._model if self._model is not None else RoadModel.straight(lx, ly, lyaw)._snapped(self.cfg)
