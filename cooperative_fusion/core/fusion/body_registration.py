"""Body registration: platoon members localised by where the other members' evidence sees their bodies.

Member B's occupied cells on member A's box (a follower sees its predecessor's rear face; members in
curves or other lanes see sides), in A's body frame at A's odometry pose, are offset from A's odometry box
by ``o_AB = e_B - e_A`` (the two odometry errors): corrections ``c`` (``c = -e`` at best) satisfy the
relative measurement ``c_A - c_B = o_AB``.

Observable (:func:`fit_body`): the offset along a member from its rear or front face, across it only from a
side; a direction with too little information is not estimated (offset 0, information 0); the heading
never (a 2 m face does not give it). :func:`solve_bodies` combines the pairs with the accepted
static-structure fits by weighted least squares; the gauge of the relative chain is a weak prior
(``GAUGE_WEIGHT`` times the odometry information) towards each member's current correction. A rotating
lidar sees a face when its beam passes: :func:`face_points` moves cells back by the member's velocity times
their sweep phase and leaves out the sweep seam straight behind the observer (ambiguous by a period).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from .common_grid import Footprint
from .coregistration import CoregConfig
from .dynamic import sweep_phase_s

#: Gauge prior: this fraction of the odometry information pulls each member towards its current correction.
GAUGE_WEIGHT = 1e-3


@dataclass(frozen=True)
class BodyFit:
    """One member's body as another member's evidence sees it (body frame of the member's odometry).

    offset : (2,) metres, (along, across) the body: where the seen faces put the body minus the odometry box
    information : (2, 2) m⁻², ``JᵀJ / s²`` of the point-to-line rows, in the body frame (0 in a direction not
        estimated); points : cells used; rmse : metres; std_m : standard deviation along the weakest
        estimated direction, metres; observable : 'along', 'across', 'both' or 'none'
    accepted : passes the gates; reason : why not (or 'ok')
    """

    offset: NDArray[np.float64]
    information: NDArray[np.float64]
    points: int
    rmse: float
    std_m: float
    observable: str
    accepted: bool
    reason: str


def face_points(points_xy: NDArray[np.floating], member_pose: tuple[float, float, float], footprint: Footprint,
                margin_m: float, member_velocity_xy: NDArray[np.floating] | None = None,
                observer_pose: tuple[float, float, float] | None = None, period_s: float | None = None,
                behind_exclusion_deg: float = 10.0) -> NDArray[np.float64]:
    """The occupied cells (N, 2) metres in ``map`` within ``margin_m`` of the member's box at
    ``member_pose`` (x, y, yaw), in its body frame (x forward from base_link), (K, 2) metres.

    With ``observer_pose`` (x, y, heading of the observer's sensor) and ``period_s`` (its sweep period), a
    cell is moved back by ``member_velocity_xy`` (2,) m/s times when the sweep saw it, and cells within
    ``behind_exclusion_deg`` of straight behind the observer are left out (see the module docstring).
    """
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    x, y, yaw = member_pose
    c, s = math.cos(yaw), math.sin(yaw)
    rel = p - (x, y)
    bx = rel[:, 0] * c + rel[:, 1] * s
    by = -rel[:, 0] * s + rel[:, 1] * c
    near = (bx >= -footprint.rear_overhang_m - margin_m) & (bx <= footprint.length_m - footprint.rear_overhang_m
                                                           + margin_m) & (np.abs(by) <= 0.5 * footprint.width_m
                                                                          + margin_m)
    p = p[near]
    if observer_pose is not None and period_s is not None and len(p):
        ox, oy, heading = observer_pose
        d = p - (ox, oy)
        a = np.arctan2(d[:, 1], d[:, 0]) - heading
        a = (a + math.pi) % (2.0 * math.pi) - math.pi
        keep = np.abs(a) <= math.pi - math.radians(behind_exclusion_deg)
        p = p[keep]
        if member_velocity_xy is not None and len(p):
            phase = sweep_phase_s(p, np.array([ox, oy]), heading, period_s)
            p = p - phase[:, None] * np.asarray(member_velocity_xy, dtype=np.float64)[None, :]
    rel = p - (x, y)
    return np.column_stack([rel[:, 0] * c + rel[:, 1] * s, -rel[:, 0] * s + rel[:, 1] * c])


def may_hold_faces(member_pose: tuple[float, float, float], footprint: Footprint, margin_m: float,
                   lo: NDArray[np.floating], hi: NDArray[np.floating]) -> bool:
    """Whether :func:`face_points` could find a point of the bounding box ``lo``..``hi`` (2,) metres in
    ``map`` near the member's box at ``member_pose`` (grown by ``margin_m``): a circle about the box centre
    against that bounding box. False only when it would find none, so a caller may skip it (with 8 members
    most lie outside a vehicle's evidence window)."""
    x, y, yaw = member_pose
    mid = 0.5 * footprint.length_m - footprint.rear_overhang_m            # box centre ahead of base_link
    cx, cy = x + mid * math.cos(yaw), y + mid * math.sin(yaw)
    r = math.hypot(0.5 * footprint.length_m + margin_m, 0.5 * footprint.width_m + margin_m) + 1e-6
    return bool(lo[0] - r <= cx <= hi[0] + r and lo[1] - r <= cy <= hi[1] + r)


def visible_sides(member_pose: tuple[float, float, float], footprint: Footprint,
                  observer_xy: NDArray[np.floating]) -> NDArray[np.bool_]:
    """(4,) which sides of the member's box (rear, front, right, left) face the observer at ``observer_xy``
    (2,) metres in ``map``: only those can hold the cells the observer saw on the member."""
    x, y, yaw = member_pose
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = float(observer_xy[0]) - x, float(observer_xy[1]) - y
    bx, by = dx * c + dy * s, -dx * s + dy * c
    h = 0.5 * footprint.width_m
    return np.array([bx < -footprint.rear_overhang_m, bx > footprint.length_m - footprint.rear_overhang_m,
                     by < -h, by > h])


def _sides(q: NDArray[np.float64], fp: Footprint, depth_m: float, corner_m: float,
           visible: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Per body-frame point (N, 2): the unit normal (N, 2) of its side, the signed distance (N,) to that
    side's line (positive outwards) and whether it is used (N,). A point outside the box belongs to the side
    it is in front of; one inside, to the nearest side of those ``visible`` (N, 4) to its observer (rear,
    front, right, left). Not used: a point on a side its observer cannot see, a point beyond a corner (outside along and
    across: which side it belongs to is the question the fit answers), one within ``corner_m`` of both an
    end line and a side line (a cell there is as much end as side: one evidence cell), and one more than
    ``depth_m`` inside every visible side (a roof or bonnet seen from a higher lidar, not a face)."""
    x0, x1 = -fp.rear_overhang_m, fp.length_m - fp.rear_overhang_m
    h = 0.5 * fp.width_m
    d = np.column_stack([x0 - q[:, 0], q[:, 0] - x1, -h - q[:, 1], q[:, 1] - h])   # rear, front, right, left
    side = np.argmin(np.where(visible, np.abs(d), np.inf), axis=1)
    out_along = np.maximum(d[:, 0], d[:, 1]) > 0
    out_across = np.maximum(d[:, 2], d[:, 3]) > 0
    side = np.where(out_along & ~out_across, np.argmax(d[:, :2], axis=1), side)
    side = np.where(out_across & ~out_along, 2 + np.argmax(d[:, 2:], axis=1), side)
    normals = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])[side]
    deep = np.max(np.where(visible, d, -np.inf), axis=1) < -depth_m      # behind every face it could be on
    at_corner = (np.min(np.abs(d[:, :2]), axis=1) < corner_m) & (np.min(np.abs(d[:, 2:]), axis=1) < corner_m)
    seen = visible[np.arange(len(q)), side]
    return normals, d[np.arange(len(q)), side], ~(out_along & out_across) & ~deep & ~at_corner & seen


def fit_body(body_points: NDArray[np.floating], footprint: Footprint, cfg: CoregConfig | None = None,
             corner_m: float = 0.4, visible: NDArray[np.bool_] | None = None, iterations: int = 10) -> BodyFit:
    """The offset (along, across) of the member's body that fits ``body_points`` (K, 2) metres, body frame.

    Gauss-Newton, each cell point-to-line on its side of the footprint moved by the offset (:func:`_sides`); only
    the directions with at least ``body_min_constraint`` information per cell are estimated. Gates:
    ``body_min_points`` cells, rmse <= ``body_max_rmse_m``, offset <= ``body_max_offset_m``, standard
    deviation along the weakest estimated direction <= ``body_max_std_m``. ``corner_m``: the evidence's cell
    size, metres (cells this near a corner are not used, see :func:`_sides`); ``visible``: (K, 4) or (4,)
    the sides each cell's observer faces (:func:`visible_sides`), default all. Never raises on a poor scene.
    """
    cfg = cfg or CoregConfig()
    q = np.asarray(body_points, dtype=np.float64).reshape(-1, 2)
    vis = np.broadcast_to(np.ones(4, dtype=bool) if visible is None else np.asarray(visible, dtype=bool),
                          (len(q), 4))
    finite = np.all(np.isfinite(q), axis=1)
    q, vis = q[finite], vis[finite]
    zero2, zero22 = np.zeros(2), np.zeros((2, 2))
    if len(q) < cfg.body_min_points:
        return BodyFit(zero2, zero22, len(q), math.inf, math.inf, 'none', False,
                       f'too few face cells: {len(q)}, need {cfg.body_min_points}')
    o = np.zeros(2)
    basis = np.eye(2)
    # First with cells up to body_margin_m inside (the bias is not known yet), then up to one evidence
    # cell inside the fitted faces: deeper cells are the roof or the back window, not the face.
    for depth in (cfg.body_margin_m, corner_m):
        for _ in range(iterations):
            n, r, used = _sides(q - o, footprint, depth, corner_m, vis)
            n, r = n[used], r[used]
            jtj = n.T @ n / max(len(n), 1)
            vals, vecs = np.linalg.eigh(jtj)
            basis = vecs[:, vals >= cfg.body_min_constraint]
            if basis.shape[1] == 0:
                break
            # r_i(o + basis·t) ≈ r_i - (n_i · basis) t: least squares in the estimated directions only.
            a = n @ basis
            t = np.linalg.lstsq(a, r, rcond=None)[0]
            step = basis @ t
            o = o + step
            if float(np.hypot(*step)) < 1e-4:
                break
    observable = {0: 'none', 2: 'both'}.get(basis.shape[1])
    if observable is None:
        observable = 'along' if abs(basis[0, 0]) > abs(basis[1, 0]) else 'across'
    o = basis @ (basis.T @ o)                 # a direction not estimated in the end is not moved
    n, r, used = _sides(q - o, footprint, corner_m, corner_m, vis)
    n, r = n[used], r[used]
    if len(r) < cfg.body_min_points:
        return BodyFit(zero2, zero22, len(r), math.inf, math.inf, observable, False,
                       f'too few face cells off the corners: {len(r)}, need {cfg.body_min_points}')
    rmse = float(np.sqrt(np.mean(r ** 2)))
    if basis.shape[1] == 0:
        return BodyFit(zero2, zero22, len(q), rmse, math.inf, observable, False,
                       'no face constrains the body (too little information per cell in every direction)')
    a = n @ basis
    dof = max(len(r) - basis.shape[1], 1)
    s2 = max(float(np.sum(r ** 2)) / dof, 1e-6)
    info_sub = a.T @ a / s2
    std = float(math.sqrt(1.0 / np.linalg.eigvalsh(info_sub)[0]))
    info = basis @ info_sub @ basis.T
    fit = (o, info, len(r), rmse, std, observable)
    if rmse > cfg.body_max_rmse_m:
        return BodyFit(*fit, False, f'rmse {rmse:.3f} m above body_max_rmse {cfg.body_max_rmse_m} m')
    if float(np.hypot(*o)) > cfg.body_max_offset_m:
        return BodyFit(*fit, False, f'offset {float(np.hypot(*o)):.2f} m above body_max_offset '
                                    f'{cfg.body_max_offset_m} m')
    if std > cfg.body_max_std_m:
        return BodyFit(*fit, False, f'imprecise fit: standard deviation {std:.3f} m above body_max_std '
                                    f'{cfg.body_max_std_m} m')
    return BodyFit(*fit, True, 'ok')


@dataclass(frozen=True)
class PairMeasurement:
    """``c_member - c_observer = offset`` (2,) metres in ``map``, with information (2, 2) m⁻² in ``map``."""

    member: str
    observer: str
    offset: NDArray[np.float64]
    information: NDArray[np.float64]


def to_map(fit: BodyFit, member_yaw: float, member: str, observer: str) -> PairMeasurement:
    """A body-frame fit of ``member`` seen by ``observer`` as a relative measurement in ``map``."""
    c, s = math.cos(member_yaw), math.sin(member_yaw)
    rot = np.array([[c, -s], [s, c]])
    return PairMeasurement(member, observer, rot @ fit.offset, rot @ fit.information @ rot.T)


def solve_bodies(pairs: Sequence[PairMeasurement], current: Mapping[str, NDArray[np.floating]],
                 odometry_cov: Mapping[str, NDArray[np.floating] | None],
                 static: Mapping[str, tuple[NDArray[np.floating], float]] | None = None
                 ) -> dict[str, NDArray[np.float64]]:
    """Translation corrections (2,) metres in ``map`` of every member in ``pairs``, by weighted least squares.

    current : {member: its current correction (dx, dy)}, the gauge prior's centre (missing: 0)
    odometry_cov : {member: its odometry xy covariance (2, 2) m² or None (then 1 m²)}, the gauge prior's weight
    static : {member: (accepted static-structure estimate (dx, dy), its standard deviation m)}, absolute
    See the module docstring. Members in no pair are not returned.
    """
    members = sorted({p.member for p in pairs} | {p.observer for p in pairs})
    if not members:
        return {}
    index = {v: i for i, v in enumerate(members)}
    n = 2 * len(members)
    h = np.zeros((n, n))
    b = np.zeros(n)
    for p in pairs:
        i, j = 2 * index[p.member], 2 * index[p.observer]
        w = np.asarray(p.information, dtype=np.float64)
        wz = w @ p.offset
        h[i:i + 2, i:i + 2] += w
        h[j:j + 2, j:j + 2] += w
        h[i:i + 2, j:j + 2] -= w
        h[j:j + 2, i:i + 2] -= w
        b[i:i + 2] += wz
        b[j:j + 2] -= wz
    for v in members:
        i = 2 * index[v]
        cov = odometry_cov.get(v)
        cov = np.eye(2) if cov is None or not np.all(np.isfinite(cov)) else np.asarray(cov, dtype=np.float64)
        prior = GAUGE_WEIGHT * np.linalg.inv(cov + 1e-6 * np.eye(2))
        centre = np.asarray(current.get(v, np.zeros(2)), dtype=np.float64)
        h[i:i + 2, i:i + 2] += prior
        b[i:i + 2] += prior @ centre
        if static and v in static:
            xy, std = static[v]
            w = np.eye(2) / max(std, 1e-3) ** 2
            h[i:i + 2, i:i + 2] += w
            b[i:i + 2] += w @ np.asarray(xy, dtype=np.float64)
    x = np.linalg.solve(h, b)
    return {v: x[2 * index[v]:2 * index[v] + 2] for v in members}
