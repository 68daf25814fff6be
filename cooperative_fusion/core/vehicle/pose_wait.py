"""Sync sets waiting for odometry to cover their stamps, timed on the data, not on a clock.

Odometry and sensors come on different topics, so a set can be complete before
the odometry covering its newest stamp has been handled. It then waits, like a
message in tf2's MessageFilter. The question is when to stop waiting.

Timing the wait on the node clock (sim time under ``/clock``, wall time on a
vehicle) goes wrong as soon as the node falls behind its own input queues: the
clock is always current, the queued odometry is not, so sets time out although
the odometry they wait for has arrived and sits in the subscription queue. In
one process on two loaded cores, 50 Hz odometry was handled 1-2 s after it was
published while the 10 Hz sweeps were handled at once (rclpy takes one message
per subscription per executor wait), and most sets timed out.

So the wait is measured on the *sensor stamps* the holder has received (the
vehicle clock, the same clock as the horizons): a set goes on without odometry
only once the sensors have moved ``wait_ns`` past both its arrival and the last
odometry that advanced the pose buffer. Odometry that keeps coming, however
late, keeps the set waiting; odometry that stopped lets it go after ``wait_ns``
of sensor data, as before. With ``extrapolate_ns`` a set need not wait for the
odometry that brackets its last stamp: odometry within that much of it will do
(the pose buffer extrapolates the rest with the newest pose's twist). Sets that wait longer than ``max_wait_ns`` on the
holder's clock go on regardless (a bound for when the sensors stop too, or
odometry trickles in without ever covering). Sets leave in arrival order.

Payloads are opaque; stamps are integer nanoseconds.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from ..errors import ConfigError

T = TypeVar('T')


class Release(str, Enum):
    """Why a set stopped waiting."""

    COVERED = 'covered'                     # odometry covers its horizon (less extrapolate_ns)
    ODOMETRY_SILENT = 'odometry_silent'     # the sensors moved wait_ns on without new odometry
    MAX_WAIT = 'max_wait'                   # waited max_wait_ns on the holder's clock


@dataclass(frozen=True)
class PoseWaitConfig:
    """wait_ns : sensor time without new odometry after which a set goes on without (0 = never wait)
    max_wait_ns : longest wait on the holder's clock, whatever the data do
    extrapolate_ns : a set is covered once odometry reaches this close to its horizon; the rest of the way
        the pose buffer extrapolates from the newest pose with its twist (0 = wait for a bracketing pose)
    """

    wait_ns: int = 300_000_000
    max_wait_ns: int = 2_000_000_000
    extrapolate_ns: int = 0

    def __post_init__(self) -> None:
        for name in ('wait_ns', 'max_wait_ns', 'extrapolate_ns'):
            if getattr(self, name) < 0:
                raise ConfigError(f'{name} must be >= 0, got {getattr(self, name)!r}')


@dataclass(frozen=True)
class Released(Generic[T]):
    """A set leaving the queue: its payload, why, and whether it waited at all (was not covered on arrival)."""

    payload: T
    reason: Release
    waited: bool


class PoseWait(Generic[T]):
    """FIFO of sets waiting for odometry; see the module docstring for the policy."""

    def __init__(self, config: PoseWaitConfig = PoseWaitConfig()) -> None:
        self.config = config
        # (payload, horizon ns, arrival on the holder's clock, sensor time at arrival)
        self._queue: deque[tuple[T, int, int, int | None]] = deque()
        self._sensor_ns: int | None = None          # newest sensor stamp received
        self._odometry_at_ns: int | None = None     # sensor time when odometry last advanced

    def __len__(self) -> int:
        return len(self._queue)

    def sensor(self, stamp_ns: int) -> None:
        """A sensor message stamped ``stamp_ns`` was received (advances sensor time; older stamps do not)."""
        if self._sensor_ns is None or stamp_ns > self._sensor_ns:
            self._sensor_ns = int(stamp_ns)

    def odometry(self) -> None:
        """Odometry advanced the pose buffer (a newer sample): waiting sets keep waiting from here."""
        self._odometry_at_ns = self._sensor_ns

    def push(self, payload: T, horizon_ns: int, now_ns: int) -> None:
        """Queue a set whose poses must reach ``horizon_ns``; ``now_ns`` is the holder's clock."""
        self._queue.append((payload, int(horizon_ns), int(now_ns), self._sensor_ns))

    def release(self, newest_pose_ns: int | None, now_ns: int) -> list[Released[T]]:
        """Sets that can go now, oldest first; ``newest_pose_ns`` is the pose buffer's newest stamp (None: empty)."""
        cfg = self.config
        out: list[Released[T]] = []
        while self._queue:
            payload, horizon, arrived, arrived_sensor = self._queue[0]
            if newest_pose_ns is not None and newest_pose_ns >= horizon - cfg.extrapolate_ns:
                reason = Release.COVERED
            elif self._silent_since(arrived_sensor) >= cfg.wait_ns:
                reason = Release.ODOMETRY_SILENT
            elif now_ns - arrived >= cfg.max_wait_ns:
                reason = Release.MAX_WAIT
            else:
                break
            self._queue.popleft()
            out.append(Released(payload, reason, waited=now_ns != arrived))
        return out

    def _silent_since(self, arrived_sensor: int | None) -> int:
        """Sensor time since the later of the set's arrival and the last odometry (0 before any sensor)."""
        if self._sensor_ns is None:
            return 0
        since = arrived_sensor if arrived_sensor is not None else self._sensor_ns
        if self._odometry_at_ns is not None and self._odometry_at_ns > since:
            since = self._odometry_at_ns
        return self._sensor_ns - since
