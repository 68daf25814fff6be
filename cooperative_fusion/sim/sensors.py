"""Sensor models by vectorised ray casting against oriented boxes and the ground plane.

The world is a set of oriented 3-D boxes (vehicles, hazards), each resting on
the ground, rotated about z only, moving at a constant velocity over one scan,
and the ground plane z = 0. :func:`raycast` intersects rays with it using the
slab method, vectorised over rays for each box; each sensor first culls, per
box, the rays that can possibly hit it (azimuth span for the lidar, image
rectangle for the camera), so the work grows with what the sensor sees, not
with rays × boxes. Occlusion is not modelled separately: it is what the
nearest hit along a ray gives.

Every model returns measurements in its own SENSOR frame:

* lidar: x forward, y left, z up; structured float32 x, y, z, intensity, t,
  where t is seconds after the scan start (the header stamp). The scan sweeps
  azimuth from −180° (behind) counter-clockwise to +180° over one period. Each
  point is in the sensor frame AT ITS OWN FIRING TIME (a raw sweep, not
  deskewed: the sensor and the objects move during it).
* radar: same axes; float32 x, y, z, velocity (radial, m/s, + away, relative
  to the moving sensor: not ego-motion compensated), rcs (dBsm).
* depth camera: optical frame (z forward, x right, y down); depth is the
  z-depth (along the optical axis) in metres, NaN where there is no return.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..core.errors import ConfigError
from .scenario import CameraConfig, LidarConfig, RadarConfig

LIDAR_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('intensity', '<f4'), ('t', '<f4')])
RADAR_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('velocity', '<f4'), ('rcs', '<f4')])

#: Hit codes in the per-ray hit index besides box indices >= 0.
HIT_GROUND = -1
HIT_NONE = -2

#: Lidar reflectivity (0..1) per object kind; intensity = 255 · reflectivity · cos(incidence).
REFLECTIVITY = {'ground': 0.12, 'car': 0.5, 'truck': 0.6, 'stopped_car': 0.5, 'debris': 0.3}
#: Mean radar cross-section per object kind, dBsm.
RCS_DBSM = {'car': 10.0, 'truck': 20.0, 'stopped_car': 10.0, 'debris': -5.0}


@dataclass(frozen=True)
class BoxSet:
    """Oriented boxes in ``map`` at one instant.

    ids, kinds : (M,) names
    centers : (M, 3) metres (box centre, so z = height / 2 for a box on the ground)
    half_sizes : (M, 3) metres (half length, half width, half height)
    yaws : (M,) radians, rotation about z
    velocities : (M, 3) m/s in map
    """

    ids: tuple[str, ...]
    kinds: tuple[str, ...]
    centers: NDArray[np.float64]
    half_sizes: NDArray[np.float64]
    yaws: NDArray[np.float64]
    velocities: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ids)

    def without(self, box_id: str) -> 'BoxSet':
        """All boxes but ``box_id`` (a sensor does not see its own vehicle)."""
        keep = np.array([i != box_id for i in self.ids], dtype=bool)
        return BoxSet(tuple(i for i, k in zip(self.ids, keep) if k), tuple(k_ for k_, k in zip(self.kinds, keep) if k),
                      self.centers[keep], self.half_sizes[keep], self.yaws[keep], self.velocities[keep])

    def corners(self, index: int, dt: float = 0.0) -> NDArray[np.float64]:
        """(8, 3) corners of box ``index`` in map after moving for ``dt`` seconds."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
        c, s = math.cos(self.yaws[index]), math.sin(self.yaws[index])
        local = signs * self.half_sizes[index]
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return local @ rot.T + self.centers[index] + self.velocities[index] * dt


@dataclass(frozen=True)
class RayHits:
    """ranges : (N,) metres along each unit ray (inf: no hit); hit : (N,) int, box index,
    HIT_GROUND or HIT_NONE; cos_incidence : (N,) |cos| of the angle to the surface normal."""

    ranges: NDArray[np.float64]
    hit: NDArray[np.int64]
    cos_incidence: NDArray[np.float64]


def raycast(origin: NDArray[np.floating], dirs: NDArray[np.floating], boxes: BoxSet,
            candidates: list[NDArray[np.int64] | None] | None = None,
            ray_times: NDArray[np.floating] | None = None,
            origin_velocity: NDArray[np.floating] | None = None, ground_z: float | None = 0.0) -> RayHits:
    """Nearest intersection of rays with boxes and the ground plane.

    origin : (3,) metres in map, ray origin at time 0
    dirs : (N, 3) unit directions in map
    candidates : per box, the indices of the rays to test against it (None: all rays)
    ray_times : (N,) seconds; ray i is fired at ray_times[i], when the origin has moved by
        origin_velocity·t and each box by its velocity·t (a rotating scan)
    ground_z : height of the ground plane, or None for no ground
    A ray that starts inside a box does not hit it.
    """
    origin = np.asarray(origin, dtype=np.float64)
    dirs = np.asarray(dirs, dtype=np.float64)
    if dirs.ndim != 2 or dirs.shape[1] != 3:
        raise ConfigError(f'raycast: dirs must have shape (N, 3), got {dirs.shape}')
    n = dirs.shape[0]
    ranges = np.full(n, np.inf)
    hit = np.full(n, HIT_NONE, dtype=np.int64)
    cos_inc = np.zeros(n)
    if ground_z is not None:
        dz = dirs[:, 2]
        down = dz < -1e-9
        with np.errstate(divide='ignore', invalid='ignore'):
            rg = (ground_z - origin[2]) / dz
        down &= rg > 0
        ranges[down] = rg[down]
        hit[down] = HIT_GROUND
        cos_inc[down] = -dz[down]
    v_origin = np.zeros(3) if origin_velocity is None else np.asarray(origin_velocity, dtype=np.float64)
    for m in range(len(boxes)):
        idx = np.arange(n) if candidates is None or candidates[m] is None else candidates[m]
        if idx.size == 0:
            continue
        c, s = math.cos(boxes.yaws[m]), math.sin(boxes.yaws[m])
        map2box = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])     # rotate by -yaw about z
        rel = (origin - boxes.centers[m]) @ map2box.T
        if ray_times is not None:
            o_l = rel + np.asarray(ray_times)[idx, None] * ((v_origin - boxes.velocities[m]) @ map2box.T)
        else:
            o_l = rel
        d_l = dirs[idx] @ map2box.T
        d_l = np.where(np.abs(d_l) < 1e-12, 1e-12, d_l)
        inv = 1.0 / d_l
        h = boxes.half_sizes[m]
        t1 = (-h - o_l) * inv
        t2 = (h - o_l) * inv
        tmin = np.minimum(t1, t2)
        t_near = tmin.max(axis=1)
        t_far = np.maximum(t1, t2).min(axis=1)
        closer = (t_near <= t_far) & (t_near > 0) & (t_near < ranges[idx])
        if not closer.any():
            continue
        sel = idx[closer]
        ranges[sel] = t_near[closer]
        hit[sel] = m
        axis = tmin[closer].argmax(axis=1)
        cos_inc[sel] = np.abs(d_l[closer][np.arange(axis.size), axis])
    return RayHits(ranges, hit, cos_inc)


def _wrap(a: NDArray[np.floating]) -> NDArray[np.float64]:
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


def azimuth_candidates(origin: NDArray[np.float64], rot: NDArray[np.float64], v_sensor: NDArray[np.float64],
                       sweep_s: float, boxes: BoxSet, azimuths: NDArray[np.float64], n_rows: int,
                       range_max_m: float) -> list[NDArray[np.int64] | None]:
    """Per box, the rays that may hit it, for rays laid out column-major (ray = col · n_rows + row)
    with one azimuth per column (sensor frame, sorted).

    The box's azimuth span is taken over its corners at the start and the end of a sweep of
    ``sweep_s`` seconds (relative motion), widened by one column spacing. Boxes beyond range get
    no rays; a box around or next to the sensor gets all (None).
    """
    out: list[NDArray[np.int64] | None] = []
    res = float(np.max(np.diff(azimuths))) if azimuths.size > 1 else 2.0 * np.pi
    offsets = np.arange(n_rows)
    for m in range(len(boxes)):
        w = v_sensor - boxes.velocities[m]
        rel_c = boxes.centers[m] - origin
        half_diag = float(np.linalg.norm(boxes.half_sizes[m]))
        sweep = float(np.linalg.norm(w)) * sweep_s
        if np.linalg.norm(rel_c) - half_diag - sweep > range_max_m:
            out.append(np.empty(0, dtype=np.int64))
            continue
        if math.hypot(rel_c[0], rel_c[1]) < half_diag + sweep + 0.5:
            out.append(None)
            continue
        corners = boxes.corners(m) - origin
        if sweep_s > 0:
            corners = np.concatenate([corners, corners + (boxes.velocities[m] - v_sensor) * sweep_s])
        local = corners @ rot                                     # map -> sensor: R^T · p
        centre = rel_c @ rot
        az_c = math.atan2(centre[1], centre[0])
        d = _wrap(np.arctan2(local[:, 1], local[:, 0]) - az_c)
        dc = _wrap(azimuths - az_c)
        cols = np.nonzero((dc >= d.min() - res) & (dc <= d.max() + res))[0]
        out.append((cols[:, None] * n_rows + offsets).ravel())
    return out


class _OwnBody:
    """Rays blocked by the carrying vehicle's own body. The body is rigid with the sensor, so
    the blocked set is fixed and computed once; those rays return nothing (the self-filter every
    vehicle driver applies), and nothing behind the body is seen."""

    dirs_sensor: NDArray[np.float64]
    blocked: NDArray[np.bool_] | None = None

    def occlude_with_own_body(self, sensor2base: NDArray[np.floating], center_base: NDArray[np.floating],
                              half_sizes: NDArray[np.floating]) -> None:
        """sensor2base : (4, 4) mount; center_base : (3,) body box centre in base_link, metres;
        half_sizes : (3,) metres. A sensor inside the box (a bumper radar) is not blocked by it."""
        sensor2base = np.asarray(sensor2base, dtype=np.float64)
        body = BoxSet(('self',), ('self',), np.asarray(center_base, dtype=np.float64).reshape(1, 3),
                      np.asarray(half_sizes, dtype=np.float64).reshape(1, 3), np.zeros(1), np.zeros((1, 3)))
        hits = raycast(sensor2base[:3, 3], self.dirs_sensor @ sensor2base[:3, :3].T, body, ground_z=None)
        self.blocked = hits.hit == 0


class LidarModel(_OwnBody):
    """Rotating multi-beam lidar; see the module docstring for the frame and the sweep."""

    def __init__(self, config: LidarConfig) -> None:
        self.config = config
        self.n_cols = int(round(360.0 / config.azimuth_resolution_deg))
        self.n_beams = config.beams
        self.period_s = 1.0 / config.rate_hz
        self.azimuths = -np.pi + (np.arange(self.n_cols) + 0.5) * (2.0 * np.pi / self.n_cols)
        self.elevations = np.deg2rad(np.linspace(config.elevation_min_deg, config.elevation_max_deg, config.beams))
        az, el = np.meshgrid(self.azimuths, self.elevations, indexing='ij')       # (cols, beams)
        dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
        self.dirs_sensor = dirs.reshape(-1, 3)                                     # ray i = col * beams + beam
        self.col_times = np.arange(self.n_cols) * (self.period_s / self.n_cols)
        self.ray_times = np.repeat(self.col_times, self.n_beams)

    def _candidates(self, origin: NDArray[np.float64], rot: NDArray[np.float64], v_sensor: NDArray[np.float64],
                    boxes: BoxSet) -> list[NDArray[np.int64] | None]:
        return azimuth_candidates(origin, rot, v_sensor, self.period_s, boxes, self.azimuths, self.n_beams,
                                  self.config.range_max_m)

    def scan(self, sensor2map: NDArray[np.floating], sensor_velocity: NDArray[np.floating], boxes: BoxSet,
             rng: np.random.Generator) -> tuple[NDArray[np.void], NDArray[np.int64]]:
        """One sweep starting now.

        sensor2map : (4, 4) sensor pose at the scan start
        sensor_velocity : (3,) m/s in map (the sensor translates during the sweep; its
            rotation over one sweep is neglected)
        Rays blocked by the carrying vehicle's body (:meth:`occlude_with_own_body`) give no return.
        Returns the points (N,) LIDAR_DTYPE in the sensor frame (no-return rays dropped)
        and, per point, the index of the box it hit (HIT_GROUND for the ground).
        """
        cfg = self.config
        sensor2map = np.asarray(sensor2map, dtype=np.float64)
        rot, origin = sensor2map[:3, :3], sensor2map[:3, 3]
        v_sensor = np.asarray(sensor_velocity, dtype=np.float64)
        dirs_map = self.dirs_sensor @ rot.T
        hits = raycast(origin, dirs_map, boxes, self._candidates(origin, rot, v_sensor, boxes),
                       self.ray_times, v_sensor)
        keep = (hits.hit != HIT_NONE) & (hits.ranges >= cfg.range_min_m) & (hits.ranges <= cfg.range_max_m)
        if self.blocked is not None:
            keep &= ~self.blocked
        if cfg.dropout_prob > 0:
            keep &= rng.random(keep.size) >= cfg.dropout_prob
        idx = np.nonzero(keep)[0]
        r = hits.ranges[idx]
        if cfg.range_noise_m > 0:
            r = r + cfg.range_noise_m * rng.standard_normal(r.size)
        refl = np.array([REFLECTIVITY['ground']] + [REFLECTIVITY.get(k, 0.4) for k in boxes.kinds])
        hit = hits.hit[idx]
        pts = np.empty(idx.size, dtype=LIDAR_DTYPE)
        xyz = self.dirs_sensor[idx] * r[:, None]
        pts['x'], pts['y'], pts['z'] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        pts['intensity'] = 255.0 * refl[np.maximum(hit + 1, 0)] * hits.cos_incidence[idx]
        pts['t'] = self.ray_times[idx]
        return pts, hit


class RadarModel(_OwnBody):
    """Automotive radar: per-object detections found by a fan of probe rays, plus clutter."""

    def __init__(self, config: RadarConfig) -> None:
        self.config = config
        half = math.radians(config.fov_azimuth_deg) / 2.0
        n_az = max(1, int(round(config.fov_azimuth_deg / config.ray_azimuth_step_deg)) + 1)
        self.azimuths = np.linspace(-half, half, n_az)
        el_half = math.radians(config.fov_elevation_deg) / 2.0
        self.elevations = np.array([-el_half, 0.0, el_half]) if el_half > 0 else np.zeros(1)
        az, el = np.meshgrid(self.azimuths, self.elevations, indexing='ij')
        self.ray_az, self.ray_el = az.ravel(), el.ravel()
        self.dirs_sensor = np.stack([np.cos(self.ray_el) * np.cos(self.ray_az),
                                     np.cos(self.ray_el) * np.sin(self.ray_az), np.sin(self.ray_el)], axis=1)
        #: at most this many detections per object and scan (a radar reports a few per target)
        self.max_per_object = 4

    def scan(self, sensor2map: NDArray[np.floating], sensor_velocity: NDArray[np.floating], boxes: BoxSet,
             rng: np.random.Generator) -> tuple[NDArray[np.void], NDArray[np.int64]]:
        """One radar cycle. Returns detections (N,) RADAR_DTYPE in the sensor frame and, per
        detection, the index of the box it came from (HIT_NONE for clutter). Probe rays blocked
        by the carrying vehicle's body (:meth:`occlude_with_own_body`) detect nothing."""
        cfg = self.config
        sensor2map = np.asarray(sensor2map, dtype=np.float64)
        rot, origin = sensor2map[:3, :3], sensor2map[:3, 3]
        v_sensor = np.asarray(sensor_velocity, dtype=np.float64)
        dirs_map = self.dirs_sensor @ rot.T
        cands = azimuth_candidates(origin, rot, v_sensor, 0.0, boxes, self.azimuths, self.elevations.size,
                                   cfg.range_max_m)
        hits = raycast(origin, dirs_map, boxes, cands, ground_z=0.0)
        ok = (hits.hit >= 0) & (hits.ranges <= cfg.range_max_m)
        if self.blocked is not None:
            ok &= ~self.blocked
        ok &= rng.random(ok.size) < cfg.detection_prob
        idx = np.nonzero(ok)[0]
        # Keep at most max_per_object detections per box, chosen at random.
        idx = idx[rng.permutation(idx.size)]
        order = np.argsort(hits.hit[idx], kind='stable')
        idx = idx[order]
        box = hits.hit[idx]
        first = np.searchsorted(box, box, side='left')
        idx = idx[np.arange(idx.size) - first < self.max_per_object]
        box = hits.hit[idx]
        n_fa = int(rng.poisson(cfg.false_alarm_rate)) if cfg.false_alarm_rate > 0 else 0
        half = math.radians(cfg.fov_azimuth_deg) / 2.0
        r = np.concatenate([hits.ranges[idx] + cfg.range_noise_m * rng.standard_normal(idx.size),
                            rng.uniform(2.0, cfg.range_max_m, n_fa)])
        az = np.concatenate([self.ray_az[idx] + math.radians(cfg.azimuth_noise_deg) * rng.standard_normal(idx.size),
                             rng.uniform(-half, half, n_fa)])
        el = np.concatenate([self.ray_el[idx], np.zeros(n_fa)])
        # Radial velocity of the target relative to the moving sensor, + away.
        true_dirs = np.concatenate([dirs_map[idx], (np.stack([np.cos(az[idx.size:]), np.sin(az[idx.size:]),
                                                              np.zeros(n_fa)], axis=1) @ rot.T)])
        v_target = np.concatenate([boxes.velocities[box], np.zeros((n_fa, 3))])   # clutter is static
        v_rad = np.einsum('ij,ij->i', v_target - v_sensor, true_dirs)
        v_rad += cfg.velocity_noise_mps * rng.standard_normal(v_rad.size)
        rcs_mean = np.array([RCS_DBSM.get(k, 5.0) for k in boxes.kinds] + [-10.0])
        rcs = rcs_mean[np.concatenate([box, np.full(n_fa, -1)])] + 2.0 * rng.standard_normal(v_rad.size)
        pts = np.empty(r.size, dtype=RADAR_DTYPE)
        pts['x'] = r * np.cos(el) * np.cos(az)
        pts['y'] = r * np.cos(el) * np.sin(az)
        pts['z'] = r * np.sin(el)
        pts['velocity'] = v_rad
        pts['rcs'] = rcs
        return pts, np.concatenate([box, np.full(n_fa, HIT_NONE)])


class DepthCameraModel(_OwnBody):
    """Pinhole depth camera, global shutter, rendered by ray casting."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        w, h = config.width, config.height
        fx = (w / 2.0) / math.tan(math.radians(config.hfov_deg) / 2.0)
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        #: (3, 3) intrinsics; pixel (u, v) centre sees direction ((u - cx)/fx, (v - cy)/fy, 1)
        self.K = np.array([[fx, 0.0, cx], [0.0, fx, cy], [0.0, 0.0, 1.0]])
        u, v = np.meshgrid(np.arange(w), np.arange(h))                   # (h, w)
        rays = np.stack([(u - cx) / fx, (v - cy) / fx, np.ones_like(u, dtype=np.float64)], axis=-1)
        norm = np.linalg.norm(rays, axis=-1, keepdims=True)
        self.dirs_optical = (rays / norm).reshape(-1, 3)                   # pixel i = v * w + u
        self.dirs_sensor = self.dirs_optical
        self.z_of_unit = self.dirs_optical[:, 2]                          # depth = range · z_of_unit

    def _candidates(self, origin: NDArray[np.float64], rot: NDArray[np.float64],
                    boxes: BoxSet) -> list[NDArray[np.int64] | None]:
        w, h = self.config.width, self.config.height
        fx, cx, cy = self.K[0, 0], self.K[0, 2], self.K[1, 2]
        out: list[NDArray[np.int64] | None] = []
        for m in range(len(boxes)):
            if (np.linalg.norm(boxes.centers[m] - origin) - np.linalg.norm(boxes.half_sizes[m])
                    > self.config.range_max_m):
                out.append(np.empty(0, dtype=np.int64))
                continue
            local = (boxes.corners(m) - origin) @ rot
            z = local[:, 2]
            if (z <= 0.05).all():
                out.append(np.empty(0, dtype=np.int64))
                continue
            if (z <= 0.05).any():
                out.append(None)
                continue
            u = fx * local[:, 0] / z + cx
            v = fx * local[:, 1] / z + cy
            u0, u1 = max(0, int(math.floor(u.min()))), min(w, int(math.ceil(u.max())) + 1)
            v0, v1 = max(0, int(math.floor(v.min()))), min(h, int(math.ceil(v.max())) + 1)
            if u0 >= u1 or v0 >= v1:
                out.append(np.empty(0, dtype=np.int64))
                continue
            out.append((np.arange(v0, v1)[:, None] * w + np.arange(u0, u1)).ravel())
        return out

    def render(self, optical2map: NDArray[np.floating], boxes: BoxSet,
               rng: np.random.Generator) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Depth image (H, W) float32 metres (z-depth, NaN: no return or dropout) and the hit
        index image (H, W) (box index, HIT_GROUND or HIT_NONE). Pixels that see the carrying
        vehicle's body (:meth:`occlude_with_own_body`) are NaN, as a driver masks the bonnet."""
        cfg = self.config
        optical2map = np.asarray(optical2map, dtype=np.float64)
        rot, origin = optical2map[:3, :3], optical2map[:3, 3]
        hits = raycast(origin, self.dirs_optical @ rot.T, boxes, self._candidates(origin, rot, boxes))
        depth = hits.ranges * self.z_of_unit
        if cfg.depth_noise_m > 0:
            depth = depth + cfg.depth_noise_m * rng.standard_normal(depth.size)
        bad = ~np.isfinite(depth) | (depth > cfg.range_max_m) | (depth <= 0)
        if self.blocked is not None:
            bad |= self.blocked
        if cfg.dropout_prob > 0:
            bad |= rng.random(depth.size) < cfg.dropout_prob
        depth = np.where(bad, np.nan, depth).astype(np.float32)
        shape = (cfg.height, cfg.width)
        return depth.reshape(shape), np.where(bad, HIT_NONE, hits.hit).reshape(shape)
