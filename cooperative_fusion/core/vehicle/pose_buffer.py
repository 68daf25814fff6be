"""A time-indexed buffer of one vehicle's poses (``base2map``), like a tf2 buffer for one frame pair.

Samples come from odometry and may arrive out of order; they are kept sorted by
stamp, an equal stamp replaces the older sample, and samples older than
``newest - max_age_ns`` are pruned.

Lookup between two samples interpolates position linearly and rotation by
SLERP on the shortest arc (the quaternion of the later sample is negated when
the two lie in opposite hemispheres). Lookups are vectorised over stamps, so a
120k-point scan deskews with one call.

Extrapolation follows tf2's rule with a margin: a stamp before the oldest or
after the newest sample by more than ``extrapolation_margin_ns`` raises
:class:`FrameError` saying how far outside it is. Within the margin the pose is
extrapolated at constant velocity: after the newest sample with that sample's
twist (linear and angular velocity in base_link), as a buffer with a single
sample does, when the twist is not all zero; otherwise, and before the oldest,
from the two nearest samples (the same linear/SLERP formulas with the fraction
outside [0, 1]). The twist keeps the newest pose's own error: two noisy samples
extrapolated one period ahead carry sqrt(5) times it.

All stamps are integer nanoseconds, in whatever timebase the holder inserts
(the vehicle node uses common time).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, FrameError
from ..types import PoseSample

#: lookup() results remembered between two inserts (a cycle needs a handful of stamps).
_LOOKUP_MEMO = 64

@dataclass(frozen=True)
class PoseBufferConfig:
    """max_age_ns : samples older than the newest minus this are pruned
    extrapolation_margin_ns : how far (each side) outside the span a lookup may extrapolate
    """

    max_age_ns: int = 10_000_000_000
    extrapolation_margin_ns: int = 50_000_000

    def __post_init__(self) -> None:
        if self.max_age_ns <= 0:
            raise ConfigError(f'max_age_ns must be positive, got {self.max_age_ns}')
        if self.extrapolation_margin_ns < 0:
            raise ConfigError(f'extrapolation_margin_ns must be >= 0, got {self.extrapolation_margin_ns}')


def format_stamp(stamp_ns: int) -> str:
    """Seconds with all nine decimals, from integer nanoseconds (no float rounding)."""
    sign = '-' if stamp_ns < 0 else ''
    sec, nsec = divmod(abs(int(stamp_ns)), 1_000_000_000)
    return f'{sign}{sec}.{nsec:09d}'


def quat_to_mat_many(q: NDArray[np.floating]) -> NDArray[np.float64]:
    """Rotation matrices (N, 3, 3) of unit quaternions (N, 4) in (w, x, y, z) order."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    out = np.empty((q.shape[0], 3, 3))
    out[:, 0, 0] = 1 - 2 * (y * y + z * z)
    out[:, 0, 1] = 2 * (x * y - w * z)
    out[:, 0, 2] = 2 * (x * z + w * y)
    out[:, 1, 0] = 2 * (x * y + w * z)
    out[:, 1, 1] = 1 - 2 * (x * x + z * z)
    out[:, 1, 2] = 2 * (y * z - w * x)
    out[:, 2, 0] = 2 * (x * z - w * y)
    out[:, 2, 1] = 2 * (y * z + w * x)
    out[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def quat_mul_many(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """Hamilton products a ⊗ b of quaternions (N, 4), (w, x, y, z)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def slerp_many(q0: NDArray[np.floating], q1: NDArray[np.floating],
               u: NDArray[np.floating]) -> NDArray[np.float64]:
    """Spherical interpolation of unit quaternions (N, 4) at fractions u (N,), shortest arc.

    u outside [0, 1] extrapolates at constant angular velocity. Nearly equal
    quaternions (angle < 1e-6 rad) fall back to normalised linear interpolation.
    """
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)[:, None]
    dot = np.sum(q0 * q1, axis=1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)   # q and -q are the same rotation; take the short way
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_t = np.sin(theta)
    small = sin_t < 1e-6
    safe = np.where(small, 1.0, sin_t)
    w0 = np.where(small, 1.0 - u, np.sin((1.0 - u) * theta) / safe)
    w1 = np.where(small, u, np.sin(u * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def rotvec_to_quat_many(rotvec: NDArray[np.floating]) -> NDArray[np.float64]:
    """Quaternions (N, 4) (w, x, y, z) of rotation vectors (N, 3) (axis · angle, radians)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(rotvec, axis=1, keepdims=True)
    half = 0.5 * angle
    # sin(a/2)/a → 1/2 as a → 0
    scale = np.where(angle > 1e-12, np.sin(half) / np.where(angle > 1e-12, angle, 1.0), 0.5)
    return np.concatenate([np.cos(half), rotvec * scale], axis=1)


class PoseBuffer:
    """Sorted buffer of :class:`PoseSample` with interpolating lookups of ``base2map``."""

    def __init__(self, config: PoseBufferConfig = PoseBufferConfig()) -> None:
        self.config = config
        self._stamps: list[int] = []
        self._samples: list[PoseSample] = []
        self._arrays: tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64],
                            NDArray[np.float64], NDArray[np.float64]] | None = None
        # lookup() results of the current samples: a cycle asks for the same stamp several times
        self._lookups: dict[int, NDArray[np.float64]] = {}

    # -- filling --------------------------------------------------------------------------

    def insert(self, sample: PoseSample) -> None:
        """Add one sample (any order). Raises FrameError for a non-finite pose or a zero quaternion."""
        stamp = int(sample.stamp_ns)
        position = np.asarray(sample.position, dtype=np.float64).reshape(-1)
        quat = np.asarray(sample.quat_wxyz, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise FrameError(f'pose at {format_stamp(stamp)} s: position must be 3 finite numbers, '
                             f'got {position.tolist()}')
        norm = float(np.linalg.norm(quat)) if quat.shape == (4,) else float('nan')
        if not np.isfinite(norm) or norm < 1e-9:
            raise FrameError(f'pose at {format_stamp(stamp)} s: quaternion must be finite and non-zero, '
                             f'got {quat.tolist()}')
        lin = np.asarray(sample.linear_velocity, dtype=np.float64).reshape(-1)
        ang = np.asarray(sample.angular_velocity, dtype=np.float64).reshape(-1)
        if lin.shape != (3,) or ang.shape != (3,) or not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
            raise FrameError(f'pose at {format_stamp(stamp)} s: twist must be finite 3-vectors, '
                             f'got linear {lin.tolist()} angular {ang.tolist()}')
        clean = PoseSample(stamp, position, quat / norm, sample.covariance, lin, ang)
        i = bisect.bisect_left(self._stamps, stamp)
        if i < len(self._stamps) and self._stamps[i] == stamp:
            self._samples[i] = clean
        else:
            self._stamps.insert(i, stamp)
            self._samples.insert(i, clean)
        cutoff = self._stamps[-1] - self.config.max_age_ns
        k = bisect.bisect_left(self._stamps, cutoff)
        if k:
            del self._stamps[:k]
            del self._samples[:k]
        self._arrays = None
        self._lookups.clear()

    def clear(self) -> None:
        self._stamps.clear()
        self._samples.clear()
        self._arrays = None
        self._lookups.clear()

    def __len__(self) -> int:
        return len(self._stamps)

    def span(self) -> tuple[int, int]:
        """``(oldest, newest)`` stamps held, ns. Raises FrameError when empty."""
        if not self._stamps:
            raise FrameError('pose buffer is empty')
        return self._stamps[0], self._stamps[-1]

    def _get_arrays(self) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64],
                                   NDArray[np.float64], NDArray[np.float64]]:
        if self._arrays is None:
            s = self._samples
            self._arrays = (np.array(self._stamps, dtype=np.int64),
                            np.array([p.position for p in s]),
                            np.array([p.quat_wxyz for p in s]),
                            np.array([p.linear_velocity for p in s]),
                            np.array([p.angular_velocity for p in s]))
        return self._arrays

    # -- lookups --------------------------------------------------------------------------

    def _check_range(self, lo: int, hi: int) -> None:
        oldest, newest = self.span()
        margin = self.config.extrapolation_margin_ns
        if lo < oldest - margin:
            raise FrameError(f'lookup at {format_stamp(lo)} s is {(oldest - lo) / 1e9:.3f} s before the oldest '
                             f'pose at {format_stamp(oldest)} s (margin {margin / 1e9:.3f} s)')
        if hi > newest + margin:
            raise FrameError(f'lookup at {format_stamp(hi)} s is {(hi - newest) / 1e9:.3f} s after the newest '
                             f'pose at {format_stamp(newest)} s (margin {margin / 1e9:.3f} s)')

    def _interpolate(self, stamps_ns: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions (N, 3) and unit quaternions (N, 4) at stamps (N,), range already checked."""
        t, pos, quat, lin, ang = self._get_arrays()
        if t.size == 1:
            return self._with_twist(stamps_ns, 0)
        i0 = np.clip(np.searchsorted(t, stamps_ns, side='right') - 1, 0, t.size - 2)
        i1 = i0 + 1
        # Differences in int64 first: stamps since the epoch lose precision in float64.
        u = (stamps_ns - t[i0]).astype(np.float64) / (t[i1] - t[i0]).astype(np.float64)
        p = pos[i0] + u[:, None] * (pos[i1] - pos[i0])
        q = slerp_many(quat[i0], quat[i1], u)
        ahead = stamps_ns > t[-1]
        if ahead.any() and (np.any(lin[-1]) or np.any(ang[-1])):
            p[ahead], q[ahead] = self._with_twist(stamps_ns[ahead], -1)
        return p, q

    def _with_twist(self, stamps_ns: NDArray[np.int64], i: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions (N, 3) and quaternions (N, 4) at stamps (N,), sample ``i`` moved with its own twist."""
        t, pos, quat, lin, ang = self._get_arrays()
        dt = (stamps_ns - t[i]).astype(np.float64) * 1e-9
        rot = quat_to_mat_many(quat[i][None])[0]
        p = pos[i] + dt[:, None] * (rot @ lin[i])
        q = quat_mul_many(np.broadcast_to(quat[i], (dt.size, 4)), rotvec_to_quat_many(dt[:, None] * ang[i]))
        return p, q

    def lookup_many(self, stamps_ns: NDArray[np.int64]) -> NDArray[np.float64]:
        """``base2map`` (N, 4, 4) at stamps (N,) ns; FrameError if any is outside span ± margin."""
        stamps = np.asarray(stamps_ns)
        if stamps.ndim != 1 or not np.issubdtype(stamps.dtype, np.integer):
            raise FrameError(f'stamps must be a 1-D integer array of nanoseconds, got {stamps.dtype} '
                             f'shape {stamps.shape}')
        stamps = stamps.astype(np.int64, copy=False)
        out = np.zeros((stamps.size, 4, 4))
        if stamps.size == 0:
            self.span()
            return out
        self._check_range(int(stamps.min()), int(stamps.max()))
        p, q = self._interpolate(stamps)
        out[:, :3, :3] = quat_to_mat_many(q)
        out[:, :3, 3] = p
        out[:, 3, 3] = 1.0
        return out

    def lookup(self, stamp_ns: int) -> NDArray[np.float64]:
        """``base2map`` 4×4 at one stamp, ns (a new array each call; repeated stamps are remembered
        until the next insert)."""
        stamp = int(stamp_ns)
        pose = self._lookups.get(stamp)
        if pose is None:
            pose = self.lookup_many(np.array([stamp], dtype=np.int64))[0]
            if len(self._lookups) >= _LOOKUP_MEMO:
                self._lookups.clear()
            self._lookups[stamp] = pose
        return pose.copy()

    def velocity(self, stamp_ns: int) -> NDArray[np.float64]:
        """Linear velocity (3,) m/s of base_link in ``map`` at a stamp.

        From the odometry twist: each of the two bracketing samples' base_link
        linear velocity is rotated into ``map`` by that sample's own rotation, and
        the two map velocities are interpolated linearly. If both bracketing
        twists are exactly zero (odometry without twist), the finite difference
        of the two positions is used instead. With a single sample only its
        twist is available.
        """
        stamp = int(stamp_ns)
        self._check_range(stamp, stamp)
        t, pos, quat, lin, _ = self._get_arrays()
        if t.size == 1:
            return quat_to_mat_many(quat[:1])[0] @ lin[0]
        i0 = int(np.clip(np.searchsorted(t, stamp, side='right') - 1, 0, t.size - 2))
        i1 = i0 + 1
        if not (np.any(lin[i0]) or np.any(lin[i1])):
            return (pos[i1] - pos[i0]) / ((t[i1] - t[i0]) * 1e-9)
        rots = quat_to_mat_many(quat[[i0, i1]])
        v0, v1 = rots[0] @ lin[i0], rots[1] @ lin[i1]
        u = (stamp - int(t[i0])) / float(t[i1] - t[i0])
        return v0 + u * (v1 - v0)

    def angular_velocity(self, stamp_ns: int) -> NDArray[np.float64]:
        """Angular velocity (3,) rad/s of base_link, expressed in ``map``, at a stamp.

        As :meth:`velocity`: the bracketing samples' twists (base_link) rotated into
        ``map`` and interpolated; if both are exactly zero, the finite difference of
        the two rotations (constant rate between them).
        """
        stamp = int(stamp_ns)
        self._check_range(stamp, stamp)
        t, _, quat, _, ang = self._get_arrays()
        if t.size == 1:
            return quat_to_mat_many(quat[:1])[0] @ ang[0]
        i0 = int(np.clip(np.searchsorted(t, stamp, side='right') - 1, 0, t.size - 2))
        i1 = i0 + 1
        rots = quat_to_mat_many(quat[[i0, i1]])
        if not (np.any(ang[i0]) or np.any(ang[i1])):
            rel = rots[0].T @ rots[1]                       # rotation from sample i0 to i1, body frame
            angle = np.arccos(np.clip(0.5 * (np.trace(rel) - 1.0), -1.0, 1.0))
            axis = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]])
            sin_a = np.sin(angle)
            rotvec = axis * (0.5 if sin_a < 1e-9 else 0.5 * angle / sin_a)
            return rots[0] @ rotvec / ((t[i1] - t[i0]) * 1e-9)
        w0, w1 = rots[0] @ ang[i0], rots[1] @ ang[i1]
        u = (stamp - int(t[i0])) / float(t[i1] - t[i0])
        return w0 + u * (w1 - w0)

    def sensor_velocity(self, stamp_ns: int, sensor2base: NDArray[np.floating]) -> NDArray[np.float64]:
        """Linear velocity (3,) m/s in ``map`` of a sensor's origin mounted at ``sensor2base``.

        ``v_base + ω × (R_base2map · lever)``: a radar 3.6 m ahead of base_link on a
        vehicle yawing at 0.5 rad/s moves 1.8 m/s sideways relative to base_link.
        """
        lever = np.asarray(sensor2base, dtype=np.float64)[:3, 3]
        rot = self.lookup(stamp_ns)[:3, :3]
        return self.velocity(stamp_ns) + np.cross(self.angular_velocity(stamp_ns), rot @ lever)
