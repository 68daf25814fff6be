"""Co-registration: estimate a vehicle's planar pose error against the others' evidence.

The vehicle's occupied cells (p >= 0.65) are registered to the occupied cells
of the OTHER vehicles (the caller builds that reference, e.g. from their latest
evidence grids, so a vehicle is never registered to itself) by 2-D
point-to-line ICP: nearest neighbours from a KD-tree within
``max_correspondence_m``, reference normals from the PCA of up to 8 neighbours
within ``normal_radius_m``, and a
Gauss–Newton step in (x, y, yaw) per iteration, until the update is below
0.1 mm / 0.0001°. Point-to-point ICP on cell centres locks onto the 0.2 m
lattice (points slide along walls by whole cells at zero cost); point-to-line
lets them slide, so the ends of the structures decide the motion along them.
A reference point without a line around it (fewer than 3 neighbours within
``normal_radius_m``, or a spread that is not elongated: an isolated post, a
corner) has no normal: it is matched point-to-point (one row along x and one
along y), so a row of posts 10 m apart pins the motion along the road instead
of reading as one long line.

Only structure that is static should be registered: a moving car seen by two
vehicles at different stamps is in two places. :func:`persistent_points` keeps
the points of a vehicle's evidence that its own evidence of some time earlier
also holds (a static landmark stays put in ``map``, a car moves metres).

The correction maps vehicle points onto the reference, rotating about a pivot
``c`` (the vehicle position if given, else the centroid of its points)::

    p_corrected = R(dyaw) · (p - c) + c + (dx, dy)

It is accepted only when the fit is good and well posed:
enough points, fitness (fraction of vehicle points with a correspondence) >=
``min_fitness``, inlier RMSE <= ``max_rmse_m``, a correction within
``max_correction_m`` / ``max_correction_deg``, and a scene that constrains x,
y and yaw. The last test uses the reference normals n_i at the matches and
the point-to-line information matrix ``H = mean_i J_iᵀ J_i`` with ``J_i = (n_x, n_y, ((p_i - c) × n_i) / r)`` (r the
RMS radius of the points about c, so the three axes share units); the scene is
degenerate when the smallest eigenvalue of H is below ``min_constraint``. A
single straight wall (every normal the same) leaves the motion along it free
and is rejected.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from .errors import ConfigError
from .grid import GridSpec

#: Probability from which a cell counts as occupied (the same as the metrics).
P_OCCUPIED = 0.65


@dataclass(frozen=True)
class CoregConfig:
    """min_points : points needed on each side and as correspondences
    max_correspondence_m : ICP match radius, metres
    min_fitness : fraction of vehicle points matched, to accept
    max_rmse_m : RMS distance of the matches, to accept
    max_correction_m, max_correction_deg : largest correction accepted
    min_constraint : smallest eigenvalue of the normalised information matrix
    max_iterations : ICP iterations
    normal_radius_m : neighbours of a reference point for its normal, metres (see the module docstring)
    """

    min_points: int = 30
    max_correspondence_m: float = 1.0
    min_fitness: float = 0.5
    max_rmse_m: float = 0.25
    max_correction_m: float = 2.0
    max_correction_deg: float = 5.0
    min_constraint: float = 0.02
    max_iterations: int = 50
    normal_radius_m: float = 1.0

    def __post_init__(self) -> None:
        if self.min_points < 3:
            raise ConfigError(f'min_points must be >= 3, got {self.min_points}')
        if self.max_iterations < 1:
            raise ConfigError(f'max_iterations must be >= 1, got {self.max_iterations}')
        for name in ('max_correspondence_m', 'max_rmse_m', 'max_correction_m', 'max_correction_deg',
                     'normal_radius_m'):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f'{name} must be a positive finite number, got {v!r}')
        if not (0.0 <= self.min_fitness <= 1.0):
            raise ConfigError(f'min_fitness must be in [0, 1], got {self.min_fitness}')
        if self.min_constraint < 0:
            raise ConfigError(f'min_constraint must be >= 0, got {self.min_constraint}')


@dataclass(frozen=True)
class CoregResult:
    """dx, dy : metres; dyaw : radians, about ``pivot`` (see the module docstring)
    fitness : fraction of vehicle points with a match; rmse : metres, over the matches
    accepted : True when the correction should be applied; reason : why not (or 'ok')
    pivot : (x, y) metres
    """

    dx: float
    dy: float
    dyaw: float
    fitness: float
    rmse: float
    accepted: bool
    reason: str
    pivot: tuple[float, float] = (0.0, 0.0)


def occupied_points(spec: GridSpec, cells: NDArray[np.integer] | None = None,
                    logodds: NDArray[np.floating] | None = None, known: NDArray[np.bool_] | None = None,
                    p_min: float = P_OCCUPIED) -> NDArray[np.float64]:
    """Centres (N, 2), metres in ``map``, of cells with p >= ``p_min``.

    Give either ``cells`` (OccupancyGrid percent, -1 unknown) or ``logodds``
    (with an optional ``known`` mask), each of shape (height, width).
    """
    if (cells is None) == (logodds is None):
        raise ConfigError('give exactly one of cells (percent) or logodds')
    if cells is not None:
        arr = np.asarray(cells)
        mask = arr >= int(math.ceil(100.0 * p_min - 1e-9))
    else:
        arr = np.asarray(logodds)
        mask = arr >= math.log(p_min / (1.0 - p_min)) - 1e-5   # float32 log-odds of exactly p_min
        if known is not None:
            mask &= np.asarray(known, dtype=bool)
    if arr.shape != spec.shape:
        raise ConfigError(f'grid shape {arr.shape} does not match the spec (height, width) = {spec.shape}')
    iy, ix = np.nonzero(mask)
    return np.stack([spec.origin_x + (ix + 0.5) * spec.resolution,
                     spec.origin_y + (iy + 0.5) * spec.resolution], axis=1)


def _rot(yaw: float) -> NDArray[np.float64]:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s], [s, c]])


#: A neighbourhood is a line when its spread across is at most this fraction of its spread along (variances).
_LINE_RATIO = 0.1


def _normals(points: NDArray[np.float64], tree: cKDTree, radius: float, k: int = 8
             ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Unit normals (N, 2) of points (N, 2) and whether each lies on a line (N,).

    The normal is the least-spread direction of the (up to) k nearest neighbours within ``radius``;
    a point with fewer than 3 of them, or whose neighbourhood is not elongated, is not on a line.
    """
    k = min(k, len(points))
    d, nb = tree.query(points, k=k, distance_upper_bound=radius)
    d, nb = d.reshape(len(points), k), nb.reshape(len(points), k)
    valid = np.isfinite(d)
    count = valid.sum(axis=1)
    nb = np.where(valid, nb, np.arange(len(points))[:, None])
    w = valid[..., None].astype(np.float64)
    nbp = points[nb]                                                  # (N, k, 2)
    mean = (nbp * w).sum(axis=1) / np.maximum(count, 1)[:, None]
    dev = (nbp - mean[:, None, :]) * w
    vals, vecs = np.linalg.eigh(np.einsum('nki,nkj->nij', dev, dev))
    line = (count >= 3) & (vals[:, 0] <= _LINE_RATIO * vals[:, 1])
    return vecs[:, :, 0], line


def _rows(src: NDArray[np.float64], dst: NDArray[np.float64], normals: NDArray[np.float64],
          line: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Residual rows: one point-to-line row per match on a line, two (x and y) per match that is not."""
    pt = ~line
    axes = np.broadcast_to(np.eye(2), (int(pt.sum()), 2, 2)).reshape(-1, 2)
    return (np.concatenate([src[line], np.repeat(src[pt], 2, axis=0)]),
            np.concatenate([dst[line], np.repeat(dst[pt], 2, axis=0)]),
            np.concatenate([normals[line], axes]))


def persistent_points(points_xy: NDArray[np.floating], earlier_xy: NDArray[np.floating], tolerance_m: float
                      ) -> NDArray[np.float64]:
    """The points (N, 2) of a vehicle's evidence that its earlier evidence also holds within ``tolerance_m``.

    A static landmark stays put in ``map`` (the vehicle's own pose bias is the same in both), a car at
    road speed has moved metres: registering only these keeps traffic from pulling the estimate.
    """
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    e = np.asarray(earlier_xy, dtype=np.float64).reshape(-1, 2)
    if len(p) == 0 or len(e) == 0:
        return p[:0]
    d, _ = cKDTree(e).query(p, distance_upper_bound=tolerance_m)
    return p[np.isfinite(d)]


def _point_to_line_step(src: NDArray[np.float64], dst: NDArray[np.float64], normals: NDArray[np.float64]
                        ) -> tuple[float, NDArray[np.float64]]:
    """Gauss-Newton step (yaw, translation) minimising sum (n_i · (R p_i + t - q_i))², linearised in yaw.

    Point-to-line lets points slide along walls and box sides, so the ends of
    the structures, not the lattice of the cells, decide the motion along them.
    """
    r = np.sum(normals * (src - dst), axis=1)
    j = np.column_stack([normals, src[:, 0] * normals[:, 1] - src[:, 1] * normals[:, 0]])
    h = j.T @ j + 1e-9 * np.eye(3)
    tx, ty, yaw = np.linalg.solve(h, -j.T @ r)
    # Re-orthogonalise: rotate about the origin by yaw, then translate.
    return float(yaw), np.array([tx, ty])


def _reject(reason: str, pivot: NDArray[np.float64], dx: float = 0.0, dy: float = 0.0, dyaw: float = 0.0,
            fitness: float = 0.0, rmse: float = math.inf) -> CoregResult:
    return CoregResult(dx, dy, dyaw, fitness, rmse, False, reason, (float(pivot[0]), float(pivot[1])))


def estimate_offset(vehicle_points_xy: NDArray[np.floating], reference_points_xy: NDArray[np.floating],
                    cfg: CoregConfig | None = None, pivot_xy: NDArray[np.floating] | None = None) -> CoregResult:
    """Correction (dx, dy, dyaw about the pivot) that registers the vehicle's points to the reference.

    vehicle_points_xy : (N, 2) metres in ``map``, this vehicle's occupied cells
    reference_points_xy : (M, 2) metres, the other vehicles' occupied cells
    pivot_xy : (2,) metres, the vehicle position; default the vehicle points' centroid
    Never raises on a poor scene: returns ``accepted=False`` with the reason.
    """
    cfg = cfg or CoregConfig()
    src = np.asarray(vehicle_points_xy, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(reference_points_xy, dtype=np.float64).reshape(-1, 2)
    src = src[np.all(np.isfinite(src), axis=1)]
    ref = ref[np.all(np.isfinite(ref), axis=1)]
    pivot = np.asarray(pivot_xy, dtype=np.float64) if pivot_xy is not None else (
        src.mean(axis=0) if len(src) else np.zeros(2))
    if len(src) < cfg.min_points or len(ref) < cfg.min_points:
        return _reject(f'too few points: vehicle {len(src)}, reference {len(ref)}, need {cfg.min_points}', pivot)
    # Work about the pivot: coordinates stay small, yaw and translation decouple.
    src_c, ref_c = src - pivot, ref - pivot
    tree = cKDTree(ref_c)
    normals, line = _normals(ref_c, tree, cfg.normal_radius_m)
    yaw, t = 0.0, np.zeros(2)
    for _ in range(cfg.max_iterations):
        moved = src_c @ _rot(yaw).T + t
        d, idx = tree.query(moved, distance_upper_bound=cfg.max_correspondence_m)
        m = np.isfinite(d)
        if m.sum() < cfg.min_points:
            return _reject(f'too few correspondences within {cfg.max_correspondence_m} m: {int(m.sum())}, '
                           f'need {cfg.min_points}', pivot, t[0], t[1], yaw, float(m.mean()))
        dyaw, dt = _point_to_line_step(*_rows(moved[m], ref_c[idx[m]], normals[idx[m]], line[idx[m]]))
        yaw += dyaw
        t = _rot(dyaw) @ t + dt
        if np.hypot(*dt) < 1e-4 and abs(dyaw) < math.radians(1e-4):
            break
    moved = src_c @ _rot(yaw).T + t
    d, idx = tree.query(moved, distance_upper_bound=cfg.max_correspondence_m)
    m = np.isfinite(d)
    fitness = float(m.mean())
    rmse = float(np.sqrt(np.mean(d[m] ** 2))) if m.any() else math.inf
    args = (pivot, float(t[0]), float(t[1]), float(yaw), fitness, rmse)
    if m.sum() < cfg.min_points:
        return _reject(f'too few correspondences within {cfg.max_correspondence_m} m: {int(m.sum())}, '
                       f'need {cfg.min_points}', *args)
    if fitness < cfg.min_fitness:
        return _reject(f'fitness {fitness:.2f} below min_fitness {cfg.min_fitness}', *args)
    if rmse > cfg.max_rmse_m:
        return _reject(f'rmse {rmse:.3f} m above max_rmse {cfg.max_rmse_m} m', *args)
    shift = float(np.hypot(*t))
    if shift > cfg.max_correction_m or abs(math.degrees(yaw)) > cfg.max_correction_deg:
        return _reject(f'correction {shift:.2f} m / {math.degrees(yaw):.2f} deg exceeds '
                       f'{cfg.max_correction_m} m / {cfg.max_correction_deg} deg', *args)
    rows = _rows(moved[m], ref_c[idx[m]], normals[idx[m]], line[idx[m]])
    weakest = _weakest_constraint(rows[1], rows[2])
    if weakest < cfg.min_constraint:
        return _reject(f'degenerate scene: weakest constraint {weakest:.3f} below {cfg.min_constraint} '
                       f'(e.g. a single straight wall leaves the motion along it free)', *args)
    return CoregResult(float(t[0]), float(t[1]), float(yaw), fitness, rmse, True, 'ok',
                       (float(pivot[0]), float(pivot[1])))


def _weakest_constraint(matched: NDArray[np.float64], normals: NDArray[np.float64]) -> float:
    """Smallest eigenvalue of the normalised point-to-line information matrix at the matched points."""
    r = float(np.sqrt(np.mean(np.sum(matched ** 2, axis=1)))) or 1.0
    cross = (matched[:, 0] * normals[:, 1] - matched[:, 1] * normals[:, 0]) / r
    j = np.column_stack([normals, cross])
    return float(np.linalg.eigvalsh(j.T @ j / len(j))[0])


def correction_matrix(result: CoregResult) -> NDArray[np.float64]:
    """The correction as a 4×4 transform ``map -> map`` (apply as ``corrected_base2map = C @ base2map``)."""
    c = np.asarray(result.pivot)
    rot = _rot(result.dyaw)
    out = np.eye(4)
    out[:2, :2] = rot
    out[:2, 3] = c - rot @ c + (result.dx, result.dy)
    return out


def apply_correction(points_xy: NDArray[np.floating], result: CoregResult) -> NDArray[np.float64]:
    """Corrected points (N, 2) metres: ``R(dyaw) · (p - pivot) + pivot + (dx, dy)``."""
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    c = np.asarray(result.pivot)
    return (p - c) @ _rot(result.dyaw).T + c + (result.dx, result.dy)
