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

A localisation error travels with the vehicle: the same offset and heading
error wherever it is. So points the vehicle sensed from different places (its
static cells accumulated over a few seconds of driving) each turn about where
the vehicle was when it sensed them (per-point pivots): about one fixed point, a
1 deg heading error of sightings 50 m back reads as 0.9 m sideways.

Registration sees only relative offsets. :func:`register_platoon` registers
every vehicle against the others' points moved by their latest estimates and
then removes the platoon's median correction (a rigid transform of ``map``),
so one biased vehicle among three or more neither pulls the honest ones
towards it nor moves the frame.

It is accepted only when the fit is good and well posed:
enough points, fitness (fraction of vehicle points with a correspondence) >=
``min_fitness``, inlier RMSE <= ``max_rmse_m``, a correction within
``max_correction_m`` / ``max_correction_deg``, and a scene that constrains x,
y and yaw. The last test uses the reference normals n_i at the matches and
the point-to-line information matrix ``H = mean_i J_iᵀ J_i`` with ``J_i = (n_x, n_y, ((p_i - c_i) × n_i) / r)`` (r the
RMS radius of the points about their pivots, so the three axes share units); the scene is
degenerate when the smallest eigenvalue of H is below ``min_constraint``. A
single straight wall (every normal the same) leaves the motion along it free
and is rejected.

Well posed is not yet well determined: a few dozen cells of one stopped car,
seen from behind, tell a heading error from a sideways shift only through
the change of the lever arm as the vehicles drive up to it, and the cells'
0.4 m lattice and range noise are larger than the biases sought. So the fit
must also be precise: with the point-to-line residuals' variance ``s²`` (M
rows, 3 unknowns) the estimate's covariance is ``s² (Σ J_iᵀ J_i)⁻¹``; its
standard deviation along the weakest direction (metres; the yaw axis scaled by
r, so at the points' mean distance) must be at most ``max_std_m``. Without it a
correction of noise was applied whole (``highway_occlusion`` seed 3: the truck
moved 0.5 m sideways on one car's cells, its drawn body and its evidence with
it; docs/fusion.md).

Where static structure is missing, the members are also localised by their bodies in each other's
evidence (:mod:`.body_registration`, parameters ``body_*``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from ..errors import ConfigError
from ..grid import GridSpec
from ..morphology import column_bounds, dilate_offsets, nonzero_cells

#: Probability from which a cell counts as occupied (the same as the metrics).
P_OCCUPIED = 0.65
#: Largest raster (cells) :func:`persistent_points` draws on the lattice before it uses the KD-tree.
_MAX_RASTER_CELLS = 4_000_000


@dataclass(frozen=True)
class CoregConfig:
    """min_points : points needed on each side and as correspondences
    max_correspondence_m : ICP match radius, metres
    min_fitness : fraction of vehicle points matched, to accept
    max_rmse_m : RMS distance of the matches, to accept
    max_correction_m, max_correction_deg : largest correction accepted
    min_constraint : smallest eigenvalue of the normalised information matrix
    max_std_m : largest standard deviation of the estimate along its weakest direction, to accept, metres
        (the yaw axis at the points' RMS distance from their pivots; see the module docstring)
    max_iterations : ICP iterations
    normal_radius_m : neighbours of a reference point for its normal, metres (see the module docstring)
    min_span_m : matched static cells spanning less than this along their longest direction are one object
        (a stopped car: 2-5 m), whose fit is not applied, metres: its cells (0.4 m lattice, range noise) are
        noisier than the biases sought and tell a heading error from a sideways shift only through the
        lever arm (on highway_occlusion_curve seed 3 such fits passed every other gate and turned v1 by 1 deg)
    body_enabled : also localise members by where the others' evidence sees their bodies (:mod:`.body_registration`)
    body_margin_m : cells within this outside a member's odometry box, or this shallow inside it, are its faces
        (deeper: a roof seen from a higher lidar), metres
    body_min_points : face cells needed (accumulated over the round's window) per (member, observer) pair
    body_max_rmse_m : RMS point-to-side distance of the face cells, to accept, metres
    body_max_std_m : largest standard deviation of a pair's offset along its weakest estimated direction, metres
    body_max_offset_m : largest offset accepted, metres
    body_min_constraint : a direction is estimated when the face cells give it at least this information per
        cell (the share of cells on sides across it: a rear face alone leaves the across offset unestimated)
    body_behind_exclusion_deg : cells within this of straight behind the observer are not used (the sweep's
        start and end meet there: the cell's time is ambiguous by a sweep period)
    """

    min_points: int = 30
    max_correspondence_m: float = 1.0
    min_fitness: float = 0.5
    max_rmse_m: float = 0.25
    max_correction_m: float = 2.0
    max_correction_deg: float = 5.0
    min_constraint: float = 0.02
    max_std_m: float = 0.1
    max_iterations: int = 50
    normal_radius_m: float = 1.0
    min_span_m: float = 10.0
    body_enabled: bool = True
    body_margin_m: float = 0.8
    body_min_points: int = 20
    body_max_rmse_m: float = 0.35
    body_max_std_m: float = 0.05
    body_max_offset_m: float = 1.0
    body_min_constraint: float = 0.25
    body_behind_exclusion_deg: float = 10.0

    def __post_init__(self) -> None:
        if self.min_points < 3:
            raise ConfigError(f'min_points must be >= 3, got {self.min_points}')
        if self.max_iterations < 1:
            raise ConfigError(f'max_iterations must be >= 1, got {self.max_iterations}')
        for name in ('max_correspondence_m', 'max_rmse_m', 'max_correction_m', 'max_correction_deg',
                     'normal_radius_m', 'max_std_m', 'body_margin_m', 'body_max_rmse_m', 'body_max_std_m',
                     'body_max_offset_m'):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f'{name} must be a positive finite number, got {v!r}')
        if not (0.0 <= self.min_fitness <= 1.0):
            raise ConfigError(f'min_fitness must be in [0, 1], got {self.min_fitness}')
        if self.min_constraint < 0:
            raise ConfigError(f'min_constraint must be >= 0, got {self.min_constraint}')
        if not (self.min_span_m >= 0 and math.isfinite(self.min_span_m)):
            raise ConfigError(f'min_span_m must be a finite number >= 0, got {self.min_span_m!r}')
        if self.body_min_points < 3:
            raise ConfigError(f'body_min_points must be >= 3, got {self.body_min_points}')
        if not (0.0 < self.body_min_constraint <= 1.0):
            raise ConfigError(f'body_min_constraint must be in (0, 1], got {self.body_min_constraint}')
        if not (0.0 <= self.body_behind_exclusion_deg < 180.0):
            raise ConfigError(f'body_behind_exclusion_deg must be in [0, 180), got {self.body_behind_exclusion_deg}')


@dataclass(frozen=True)
class CoregResult:
    """dx, dy : metres; dyaw : radians, about ``pivot`` (see the module docstring)
    fitness : fraction of vehicle points with a match; rmse : metres, over the matches
    accepted : True when the correction should be applied; reason : why not (or 'ok')
    pivot : (x, y) metres; std_m : the fit's standard deviation along its weakest direction, metres (inf when
    not computed)
    """

    dx: float
    dy: float
    dyaw: float
    fitness: float
    rmse: float
    accepted: bool
    reason: str
    pivot: tuple[float, float] = (0.0, 0.0)
    std_m: float = math.inf


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
    iy, ix = nonzero_cells(mask)
    return spec.to_map_frame(np.stack([spec.origin_x + (ix + 0.5) * spec.resolution,
                                       spec.origin_y + (iy + 0.5) * spec.resolution], axis=1))


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


def _rows(line: NDArray[np.bool_], normals: NDArray[np.float64], *per_match: NDArray[np.float64]
          ) -> list[NDArray[np.float64]]:
    """Residual rows: one point-to-line row per match on a line, two (x and y) per match that is not.

    line : (M,) whether each match's reference point lies on a line; normals : (M, 2) their normals;
    per_match : arrays (M, ...) with one entry per match, each repeated the same way.
    Returns the rows' normals (M', 2) (the x and y axes for the point-to-point rows), then each
    per_match array expanded to (M', ...).
    """
    pt = ~line
    axes = np.broadcast_to(np.eye(2), (int(pt.sum()), 2, 2)).reshape(-1, 2)
    return [np.concatenate([normals[line], axes])] + [
        np.concatenate([a[line], np.repeat(a[pt], 2, axis=0)]) for a in per_match]


def persistent_points(points_xy: NDArray[np.floating], earlier_xy: NDArray[np.floating], tolerance_m: float,
                      resolution_m: float | None = None) -> NDArray[np.float64]:
    """The points (N, 2) of a vehicle's evidence that its earlier evidence also holds within ``tolerance_m``.

    A static landmark stays put in ``map`` (the vehicle's own pose bias is the same in both), a car at
    road speed has moved metres: registering only these keeps traffic from pulling the estimate.
    resolution_m : when the points are cell centres of this lattice (:func:`occupied_points`), the
        neighbours are found by whole-cell offsets (the same points, faster)
    """
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    e = np.asarray(earlier_xy, dtype=np.float64).reshape(-1, 2)
    if len(p) == 0 or len(e) == 0:
        return p[:0]
    if resolution_m is not None:
        keep = _near_on_lattice(p, e, tolerance_m, resolution_m)
        if keep is not None:
            return p[keep]
    d, _ = cKDTree(e).query(p, distance_upper_bound=tolerance_m)
    return p[np.isfinite(d)]


@lru_cache(maxsize=16)
def _disc_offsets(tolerance_m: float, resolution_m: float) -> NDArray[np.int64] | None:
    """(K, 2) whole-cell offsets (dy, dx) within ``tolerance_m`` (a disc: point-symmetric), read-only and
    computed once per tolerance; None when a lattice distance is too close to the tolerance to decide."""
    reach = int(math.floor(tolerance_m / resolution_m)) + 1
    k = np.arange(-reach, reach + 1)
    dx, dy = (a.ravel() for a in np.meshgrid(k, k))
    dist = resolution_m * np.hypot(dx, dy)
    if np.any(np.abs(dist - tolerance_m) <= 1e-6 * max(tolerance_m, resolution_m)):
        return None
    within = dist <= tolerance_m
    offsets = np.stack([dy[within], dx[within]], axis=1)
    offsets.flags.writeable = False
    return offsets


def _near_on_lattice(p: NDArray[np.float64], e: NDArray[np.float64], tolerance_m: float, resolution_m: float
                     ) -> NDArray[np.bool_] | None:
    """Mask (N,) of the points ``p`` with a point of ``e`` within ``tolerance_m``, when both are cell centres
    of the ``resolution_m`` lattice through (0, 0): ``e`` rasterised and dilated by the whole-cell offsets
    within the tolerance, instead of a KD-tree. None (use the tree) when a point is off the lattice, a
    lattice distance is too close to the tolerance to decide it the way the tree's float distances would,
    or the points spread over more than _MAX_RASTER_CELLS."""
    fp, fe = p / resolution_m - 0.5, e / resolution_m - 0.5
    ip, ie = np.rint(fp), np.rint(fe)
    if np.max(np.abs(fp - ip)) > 1e-6 or np.max(np.abs(fe - ie)) > 1e-6:
        return None
    offsets = _disc_offsets(tolerance_m, resolution_m)
    if offsets is None:
        return None
    ip, ie = ip.astype(np.int64), ie.astype(np.int64)
    (lo_p, hi_p), (lo_e, hi_e) = column_bounds(ip), column_bounds(ie)
    lo, hi = np.minimum(lo_p, lo_e), np.maximum(hi_p, hi_e)
    width, height = int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1
    if width * height > _MAX_RASTER_CELLS:
        return None
    raster = np.zeros((height, width), dtype=bool)
    raster[ie[:, 1] - lo[1], ie[:, 0] - lo[0]] = True
    near = dilate_offsets(raster, offsets)
    return near[ip[:, 1] - lo[1], ip[:, 0] - lo[0]]


def _gauss_newton_step(residual_vec: NDArray[np.float64], lever: NDArray[np.float64],
                       normals: NDArray[np.float64]) -> NDArray[np.float64]:
    """Step (dx, dy, dyaw) minimising sum (n_i · (moved_i - q_i))², linearised in yaw.

    residual_vec : (M, 2) moved_i - q_i; lever : (M, 2) the rotated point about its pivot, R·(p_i - c_i);
    normals : (M, 2). Point-to-line lets points slide along walls and box sides, so the ends of the
    structures, not the lattice of the cells, decide the motion along them.
    """
    r = np.sum(normals * residual_vec, axis=1)
    j = np.column_stack([normals, lever[:, 0] * normals[:, 1] - lever[:, 1] * normals[:, 0]])
    h = j.T @ j + 1e-9 * np.eye(3)
    return np.linalg.solve(h, -j.T @ r)


def _reject(reason: str, pivot: NDArray[np.float64], dx: float = 0.0, dy: float = 0.0, dyaw: float = 0.0,
            fitness: float = 0.0, rmse: float = math.inf) -> CoregResult:
    return CoregResult(dx, dy, dyaw, fitness, rmse, False, reason, (float(pivot[0]), float(pivot[1])))


def estimate_offset(vehicle_points_xy: NDArray[np.floating], reference_points_xy: NDArray[np.floating],
                    cfg: CoregConfig | None = None, pivot_xy: NDArray[np.floating] | None = None) -> CoregResult:
    """Correction (dx, dy, dyaw about the pivot) that registers the vehicle's points to the reference.

    vehicle_points_xy : (N, 2) metres in ``map``, this vehicle's occupied cells
    reference_points_xy : (M, 2) metres, the other vehicles' occupied cells
    pivot_xy : (2,) metres, the vehicle position; or (N, 2), one per vehicle point: the vehicle position
        when that point was sensed (see :func:`apply_correction`); default the vehicle points' centroid
    With per-point pivots, the result's pivot is the last row (pass the points oldest first).
    Never raises on a poor scene: returns ``accepted=False`` with the reason.
    """
    cfg = cfg or CoregConfig()
    src = np.asarray(vehicle_points_xy, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(reference_points_xy, dtype=np.float64).reshape(-1, 2)
    if pivot_xy is None:
        finite = src[np.all(np.isfinite(src), axis=1)]
        pivots = np.broadcast_to(finite.mean(axis=0) if len(finite) else np.zeros(2), src.shape)
    else:
        pivots = np.asarray(pivot_xy, dtype=np.float64)
        if pivots.shape not in ((2,), src.shape):
            raise ConfigError(f'pivot_xy must have shape (2,) or {src.shape} (one per vehicle point), '
                              f'got {pivots.shape}')
        pivots = np.broadcast_to(pivots, src.shape)
    ok = np.all(np.isfinite(src), axis=1) & np.all(np.isfinite(pivots), axis=1)
    src, pivots = src[ok], pivots[ok]
    ref = ref[np.all(np.isfinite(ref), axis=1)]
    pivot = pivots[-1] if len(pivots) else np.zeros(2)
    if len(src) < cfg.min_points or len(ref) < cfg.min_points:
        return _reject(f'too few points: vehicle {len(src)}, reference {len(ref)}, need {cfg.min_points}', pivot)
    # Work about the (last) pivot: coordinates stay small. Each point turns about its own pivot:
    # moved_i = R(yaw)·(p_i - c_i) + c_i + t.
    arm = src - pivots
    base = pivots - pivot
    ref_c = ref - pivot
    tree = cKDTree(ref_c)
    normals, line = _normals(ref_c, tree, cfg.normal_radius_m)
    x = np.zeros(3)                                                   # dx, dy, dyaw
    for _ in range(cfg.max_iterations):
        lever = arm @ _rot(x[2]).T
        moved = lever + base + x[:2]
        d, idx = tree.query(moved, distance_upper_bound=cfg.max_correspondence_m)
        m = np.isfinite(d)
        if m.sum() < cfg.min_points:
            return _reject(f'too few correspondences within {cfg.max_correspondence_m} m: {int(m.sum())}, '
                           f'need {cfg.min_points}', pivot, x[0], x[1], x[2], float(m.mean()))
        n, res, lev = _rows(line[idx[m]], normals[idx[m]], moved[m] - ref_c[idx[m]], lever[m])
        step = _gauss_newton_step(res, lev, n)
        x += step
        if np.hypot(*step[:2]) < 1e-4 and abs(step[2]) < math.radians(1e-4):
            break
    lever = arm @ _rot(x[2]).T
    moved = lever + base + x[:2]
    d, idx = tree.query(moved, distance_upper_bound=cfg.max_correspondence_m)
    m = np.isfinite(d)
    fitness = float(m.mean())
    rmse = float(np.sqrt(np.mean(d[m] ** 2))) if m.any() else math.inf
    dx, dy, yaw = (float(v) for v in x)
    args = (pivot, dx, dy, yaw, fitness, rmse)
    if m.sum() < cfg.min_points:
        return _reject(f'too few correspondences within {cfg.max_correspondence_m} m: {int(m.sum())}, '
                       f'need {cfg.min_points}', *args)
    if fitness < cfg.min_fitness:
        return _reject(f'fitness {fitness:.2f} below min_fitness {cfg.min_fitness}', *args)
    if rmse > cfg.max_rmse_m:
        return _reject(f'rmse {rmse:.3f} m above max_rmse {cfg.max_rmse_m} m', *args)
    shift = math.hypot(dx, dy)
    if shift > cfg.max_correction_m or abs(math.degrees(yaw)) > cfg.max_correction_deg:
        return _reject(f'correction {shift:.2f} m / {math.degrees(yaw):.2f} deg exceeds '
                       f'{cfg.max_correction_m} m / {cfg.max_correction_deg} deg', *args)
    n, lev, res = _rows(line[idx[m]], normals[idx[m]], lever[m], moved[m] - ref_c[idx[m]])
    weakest = _weakest_constraint(lev, n)
    if weakest < cfg.min_constraint:
        return _reject(f'degenerate scene: weakest constraint {weakest:.3f} below {cfg.min_constraint} '
                       f'(e.g. a single straight wall leaves the motion along it free)', *args)
    std = estimate_std_m(lev, n, np.sum(n * res, axis=1))
    if std > cfg.max_std_m:
        return _reject(f'imprecise fit: standard deviation {std:.3f} m along the weakest direction above '
                       f'max_std {cfg.max_std_m} m (too few or too noisy static cells for this correction)', *args)
    span = scene_span_m(moved[m])
    if span < cfg.min_span_m:
        return _reject(f'small scene: the matched static cells span {span:.1f} m, need {cfg.min_span_m} m '
                       f'(one object cannot tell a heading error from a sideways shift)', *args)
    return CoregResult(dx, dy, yaw, fitness, rmse, True, 'ok', (float(pivot[0]), float(pivot[1])), std)


def register_platoon(points_xy: Mapping[str, NDArray[np.floating]], pivots_xy: Mapping[str, NDArray[np.floating]],
                     current: Mapping[str, CoregResult], cfg: CoregConfig | None = None, sweeps: int = 3
                     ) -> dict[str, CoregResult]:
    """Every vehicle's correction at once, in the frame the majority of the platoon agrees on.

    points_xy : {vehicle: (N, 2) metres in ``map``}, its static cells as it reported them (uncorrected)
    pivots_xy : {vehicle: (N, 2) or (2,) metres}, where it was when it sensed each point
    current : {vehicle: its correction so far} (missing: none), the starting point
    Returns {vehicle: result}; a rejected vehicle's result carries the reason and its current
    correction as dx, dy, dyaw.

    Registration only sees relative offsets: a vehicle registered against the others' evidence as they
    reported it is pulled towards a biased one, and registered against their corrected evidence the
    corrections can drift together. So: ``sweeps`` Gauss-Seidel sweeps in which each vehicle in turn is
    registered against the union of the others' points moved by their newest estimates (a biased
    vehicle's points are moved back before they become anyone's reference), then the rigid map
    transform that brings the median correction to zero is applied to all of them (the gauge: the
    majority defines ``map``; one biased vehicle in three or more cannot move it).
    """
    if sweeps < 1:
        raise ConfigError(f'sweeps must be >= 1, got {sweeps}')
    cfg = cfg or CoregConfig()
    vids = list(points_xy)
    if not vids:
        return {}
    identity = CoregResult(0.0, 0.0, 0.0, 0.0, math.inf, False, 'not run')
    est = {v: current.get(v, identity) for v in vids}
    moved = {v: apply_correction(points_xy[v], est[v], pivots_xy[v]) for v in vids}
    results: dict[str, CoregResult] = {}
    for _ in range(sweeps):
        # Gauss-Seidel: each vehicle against the others' points moved by their newest estimates (all at
        # once, Jacobi, a biased and an honest vehicle swap their errors every sweep).
        for v in vids:
            others = [moved[o] for o in vids if o != v]
            # Vehicles share the lattice: cells two vehicles report alike would only skew the normals.
            ref = np.unique(np.round(np.concatenate(others) / 0.01), axis=0) * 0.01
            r = estimate_offset(points_xy[v], ref, cfg, pivot_xy=pivots_xy[v])
            results[v] = r
            if r.accepted:
                est[v] = r
                moved[v] = apply_correction(points_xy[v], r, pivots_xy[v])
    gauge = _median_gauge([est[v] for v in vids])
    out = {}
    for v in vids:
        r, e = results[v], _compose(gauge, est[v])
        out[v] = CoregResult(e.dx, e.dy, e.dyaw, r.fitness, r.rmse, r.accepted, r.reason, e.pivot, r.std_m)
    return out


def _compose(gauge: tuple[float, float, float, NDArray[np.float64]], corr: CoregResult) -> CoregResult:
    """``gauge`` (dx, dy, dyaw about a point) applied after ``corr``, written about ``corr``'s pivot."""
    gx, gy, gyaw, centre = gauge
    c = np.asarray(corr.pivot, dtype=np.float64)
    # corr maps its pivot c to c + t; the gauge maps that on; the rotations add.
    moved = _rot(gyaw) @ (c + (corr.dx, corr.dy) - centre) + centre + (gx, gy)
    t = moved - c
    return CoregResult(float(t[0]), float(t[1]), corr.dyaw + gyaw, corr.fitness, corr.rmse, corr.accepted,
                       corr.reason, corr.pivot)


def _median_gauge(corrections: list[CoregResult]) -> tuple[float, float, float, NDArray[np.float64]]:
    """The map transform (dx, dy, dyaw about the pivots' centroid) that brings the median correction to zero.

    Registration fixes the vehicles only relative to each other: all of them turned and shifted together
    fit as well. The rotation is the median heading correction; the shift, after it, the median of where
    the pivots land: one vehicle in three or more cannot move either.
    """
    centre = np.mean([c.pivot for c in corrections], axis=0)
    gyaw = -float(np.median([c.dyaw for c in corrections]))
    landed = [_rot(gyaw) @ (np.asarray(c.pivot) + (c.dx, c.dy) - centre) + centre - c.pivot for c in corrections]
    shift = -np.median(landed, axis=0)
    return float(shift[0]), float(shift[1]), gyaw, centre


def scene_span_m(points_xy: NDArray[np.float64]) -> float:
    """Extent (metres) of points (N, 2) along their principal direction; 0 for fewer than 2."""
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if len(p) < 2:
        return 0.0
    c = p - p.mean(axis=0)
    axis = np.linalg.eigh(c.T @ c)[1][:, -1]
    proj = c @ axis
    return float(proj.max() - proj.min())


def _weakest_constraint(lever: NDArray[np.float64], normals: NDArray[np.float64]) -> float:
    """Smallest eigenvalue of the normalised point-to-line information matrix at the matches.

    lever : (M, 2) each matched point about its pivot (rotated); normals : (M, 2) the rows' normals.
    """
    r = float(np.sqrt(np.mean(np.sum(lever ** 2, axis=1)))) or 1.0
    cross = (lever[:, 0] * normals[:, 1] - lever[:, 1] * normals[:, 0]) / r
    j = np.column_stack([normals, cross])
    return float(np.linalg.eigvalsh(j.T @ j / len(j))[0])


def estimate_std_m(lever: NDArray[np.float64], normals: NDArray[np.float64],
                   residuals: NDArray[np.float64]) -> float:
    """Standard deviation (metres) of a point-to-line fit along its least determined direction.

    lever : (M, 2) each matched point about its pivot (rotated); normals : (M, 2) the rows' normals;
    residuals : (M,) the rows' signed distances at the solution, metres. The covariance of (dx, dy,
    r·dyaw) is ``s² (JᵀJ)⁻¹`` with ``s²`` the residual variance over M - 3 degrees of freedom (r the
    points' RMS distance from their pivots, so the yaw axis is in metres there); returns the square root
    of its largest eigenvalue, inf with fewer than 4 rows or a singular system.
    """
    m = len(residuals)
    if m < 4:
        return math.inf
    r = float(np.sqrt(np.mean(np.sum(lever ** 2, axis=1)))) or 1.0
    cross = (lever[:, 0] * normals[:, 1] - lever[:, 1] * normals[:, 0]) / r
    j = np.column_stack([normals, cross])
    smallest = float(np.linalg.eigvalsh(j.T @ j)[0])
    if not smallest > 0:
        return math.inf
    variance = float(np.sum(np.asarray(residuals, dtype=np.float64) ** 2)) / (m - 3)
    return math.sqrt(variance / smallest)


def apply_correction(points_xy: NDArray[np.floating], result: CoregResult,
                     pivot_xy: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
    """Corrected points (N, 2) metres: ``R(dyaw) · (p - pivot) + pivot + (dx, dy)``.

    pivot_xy : (2,) or (N, 2) metres instead of ``result.pivot``. A pose error travels with the vehicle
    (its odometry is off by the same offset and heading wherever it is), so the correction turns each
    point about where the vehicle was when it sensed that point, not about one fixed point in ``map``.
    """
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    c = np.asarray(result.pivot if pivot_xy is None else pivot_xy, dtype=np.float64)
    return (p - c) @ _rot(result.dyaw).T + c + (result.dx, result.dy)
