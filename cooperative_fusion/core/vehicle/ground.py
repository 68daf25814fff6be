"""Ground removal: split a point cloud in ``map`` into obstacle and ground points.

Two modes:

* ``HEIGHT_BAND`` — the road is the plane ``z = ground_z_m`` in ``map``. Cheap
  and right on a flat road with a good pose.
* ``RANSAC`` — fit the dominant near-horizontal plane with open3d's RANSAC
  (``segment_plane``) and measure heights from it; right on a slope or when the
  pose's z / pitch drifts.

Both then apply the same height rule, with ``h`` the signed height above the
ground (metres)::

    |h| <  min_obstacle_height_m                   -> ground
    min_obstacle_height_m <= h <= max_obstacle_height_m -> obstacle
    h > max_obstacle_height_m                      -> overhang (bridge, sign, tree): neither
    h <= -min_obstacle_height_m                    -> below the road (multipath, noise): neither

Ground points are the free-space end points of the inverse sensor models;
obstacle points are their hits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError

#: Most points handed to open3d's RANSAC; larger clouds are strided down to this
#: for the fit (the fit needs a few thousand points, not 120k), and heights are
#: then measured for every point.
RANSAC_MAX_FIT_POINTS = 20000
#: Refits after rejecting a plane that is not near-horizontal (a wall, a truck side).
RANSAC_MAX_ATTEMPTS = 3


class GroundMode(Enum):
    HEIGHT_BAND = 'height_band'
    RANSAC = 'ransac'


@dataclass(frozen=True)
class GroundConfig:
    """How to tell ground from obstacles.

    mode : GroundMode (a string value such as ``'ransac'`` is accepted and converted)
    ground_z_m : metres, road height in ``map`` (HEIGHT_BAND; also the RANSAC fallback)
    min_obstacle_height_m : metres; closer to the ground than this is ground
    max_obstacle_height_m : metres; higher than this is overhang, ignored
    ransac_distance_m : metres, RANSAC inlier distance
    ransac_iterations : RANSAC iterations per attempt
    ransac_max_tilt_deg : degrees; a fitted plane whose normal leans further from
        vertical than this is not the road and is rejected
    """

    mode: GroundMode = GroundMode.HEIGHT_BAND
    ground_z_m: float = 0.0
    min_obstacle_height_m: float = 0.3
    max_obstacle_height_m: float = 3.0
    ransac_distance_m: float = 0.15
    ransac_iterations: int = 100
    ransac_max_tilt_deg: float = 20.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, 'mode', GroundMode(self.mode))
        except ValueError as exc:
            expected = ', '.join(m.value for m in GroundMode)
            raise ConfigError(f'GroundConfig.mode must be one of {expected}, got {self.mode!r}') from exc
        if not math.isfinite(self.ground_z_m):
            raise ConfigError(f'GroundConfig.ground_z_m must be finite, got {self.ground_z_m!r}')
        if not (self.min_obstacle_height_m > 0 and math.isfinite(self.min_obstacle_height_m)):
            raise ConfigError(f'GroundConfig.min_obstacle_height_m must be > 0, got {self.min_obstacle_height_m!r}')
        if not (self.max_obstacle_height_m > self.min_obstacle_height_m
                and math.isfinite(self.max_obstacle_height_m)):
            raise ConfigError(
                f'GroundConfig.max_obstacle_height_m must be > min_obstacle_height_m '
                f'({self.min_obstacle_height_m}), got {self.max_obstacle_height_m!r}')
        if not (self.ransac_distance_m > 0 and math.isfinite(self.ransac_distance_m)):
            raise ConfigError(f'GroundConfig.ransac_distance_m must be > 0, got {self.ransac_distance_m!r}')
        if isinstance(self.ransac_iterations, bool) or not isinstance(self.ransac_iterations, (int, np.integer)) \
                or self.ransac_iterations < 1:
            raise ConfigError(f'GroundConfig.ransac_iterations must be an integer >= 1, got {self.ransac_iterations!r}')
        if not (0 < self.ransac_max_tilt_deg < 90):
            raise ConfigError(f'GroundConfig.ransac_max_tilt_deg must be in (0, 90), got {self.ransac_max_tilt_deg!r}')


def _check_points(points_map: NDArray[np.floating]) -> NDArray[np.float64]:
    pts = np.asarray(points_map)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ConfigError(f'points must have shape (N, 3), got {pts.shape}')
    return pts


def fit_ground_plane(points_map: NDArray[np.floating], cfg: GroundConfig) -> NDArray[np.float64] | None:
    """Fit the road plane with RANSAC.

    points_map : (N, 3) metres in ``map``. Non-finite rows are skipped.
    Returns ``(a, b, c, d)`` with ``a x + b y + c z + d = 0``, ``(a, b, c)`` a
    unit normal pointing up (c > 0), so ``a x + b y + c z + d`` is the signed
    height above the plane in metres. None when no near-horizontal plane is
    found (fewer than 3 points, or every fitted plane is too steep).

    open3d's RANSAC is seeded (``open3d.utility.random.seed(0)``) on every call,
    so the same cloud gives the same plane.
    """
    import open3d as o3d  # heavy import, only for this mode

    pts = _check_points(points_map)
    if len(pts) > RANSAC_MAX_FIT_POINTS:
        # A deterministic stride keeps the spatial spread of the whole scan.
        pts = pts[:: int(math.ceil(len(pts) / RANSAC_MAX_FIT_POINTS))]
    pts = pts[np.isfinite(pts).all(axis=1)]
    min_up = math.cos(math.radians(cfg.ransac_max_tilt_deg))
    for _ in range(RANSAC_MAX_ATTEMPTS):
        if len(pts) < 3:
            return None
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(pts, dtype=np.float64)))
        o3d.utility.random.seed(0)
        plane, inliers = cloud.segment_plane(distance_threshold=float(cfg.ransac_distance_m), ransac_n=3,
                                             num_iterations=int(cfg.ransac_iterations))
        plane = np.asarray(plane, dtype=np.float64).reshape(4)
        norm = float(np.linalg.norm(plane[:3]))
        if not np.isfinite(norm) or norm < 1e-12:
            return None
        plane /= norm
        if plane[2] < 0:
            plane = -plane
        if plane[2] >= min_up:
            return plane
        keep = np.ones(len(pts), dtype=bool)
        keep[np.asarray(inliers, dtype=np.int64)] = False
        pts = pts[keep]
    return None


def split_ground(points_map: NDArray[np.floating],
                 cfg: GroundConfig) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Obstacle and ground masks of a cloud in ``map``.

    points_map : (N, 3) metres in ``map``
    Returns ``(obstacle, ground)``: two (N,) bool masks, never both True; a point
    that is neither is overhang, below the road, or non-finite. In RANSAC mode,
    when no near-horizontal plane is found (see :func:`fit_ground_plane`), the
    height band around ``ground_z_m`` is used instead.
    """
    pts = _check_points(points_map)
    plane = fit_ground_plane(pts, cfg) if cfg.mode is GroundMode.RANSAC else None
    with np.errstate(invalid='ignore'):         # inf·0 and inf - inf: NaN heights, as wanted
        if plane is not None:
            height = pts @ plane[:3] + plane[3]
        else:
            # Adding 0·(x + y) turns a point with a non-finite x or y into a NaN height too.
            height = pts[:, 2] - cfg.ground_z_m + 0.0 * (pts[:, 0] + pts[:, 1])
    # NaN and infinite heights fail the comparisons below, so non-finite points are neither.
    ground = np.abs(height) < cfg.min_obstacle_height_m
    obstacle = (height >= cfg.min_obstacle_height_m) & (height <= cfg.max_obstacle_height_m)
    return obstacle, ground
