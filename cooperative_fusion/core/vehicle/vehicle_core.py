"""One vehicle's whole perception work, as the vehicle node hands it messages: checks, odometry, sync, cycles.

:class:`VehicleCore` owns the pose buffer, the approximate-time sync, the sets
waiting for odometry (``pose_wait``), the pipeline, the evidence sharer and the
clock fit. Each input call either raises :class:`~cooperative_fusion.core.drops.DroppedInput`
(the input is refused, nothing changed) or returns a :class:`Step`: the evidence
to publish and the drops that happened on the way (sync drops, sets without a pose).
Input stamps are in the vehicle clock (``*_vehicle_ns``), output stamps in common
time; ``now_ns`` is the node clock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..drops import Cause, Drop, DroppedInput, cause_of
from ..errors import ConfigError, CooperativeFusionError, FrameError, MessageFormatError
from ..grid import GridSpec, logodds_to_percent
from ..timebase import ClockEstimator, ClockFitConfig
from ..types import PoseSample, covariance_is_psd
from .pipeline import (CycleResult, DepthFrame, PipelineConfig, VehiclePipeline, set_pose_horizon_ns)
from .pose_buffer import PoseBuffer, PoseBufferConfig
from .pose_wait import PoseWait, PoseWaitConfig, Release
from .share import EvidenceSharer, ShareConfig, lattice_factor
from .sync import ApproximateTimeSync, SyncConfig, SyncSet

__all__ = ['FrameConfig', 'VehicleConfig', 'SharedGrid', 'Evidence', 'Step', 'VehicleCore']

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class FrameConfig:
    """Frame ids: the shared frame and this vehicle's frames, as the message headers carry them."""

    map: str
    base_link: str
    lidar: str
    radar: str
    camera_optical: str


@dataclass(frozen=True)
class VehicleConfig:
    """Everything :class:`VehicleCore` needs, validated once.

    timebase : the clock fit of the TimeReference stream; None: the vehicle clock is common time
    share : what of each cycle's evidence is published; its resolution is a whole multiple of the grid's
    output_stamp_offset_ns : added to a set's (reference) stamp on the outputs; with a lidar reference at
        most half its sweep period (measured: :meth:`VehicleCore.output_offset_ns`)
    stamp_future_tolerance_ns : an input stamped further ahead of the node clock is dropped
        (``future``): one message from a broken clock (year 2100) would otherwise become its
        stream's newest stamp and make every later message late, or empty the pose buffer
    """

    vehicle_id: str
    frames: FrameConfig
    pipeline: PipelineConfig
    sync: SyncConfig
    pose_buffer: PoseBufferConfig = field(default_factory=PoseBufferConfig)
    pose_wait: PoseWaitConfig = field(default_factory=PoseWaitConfig)
    timebase: ClockFitConfig | None = field(default_factory=ClockFitConfig)
    share: ShareConfig = field(default_factory=ShareConfig)
    output_stamp_offset_ns: int = 0
    stamp_future_tolerance_ns: int = 60 * _NS_PER_S

    def __post_init__(self) -> None:
        lattice_factor(self.share.resolution_m, self.pipeline.window.resolution_m)   # ConfigError if not k × grid
        if not self.vehicle_id or '/' in self.vehicle_id or not self.vehicle_id.replace('_', '').isalnum():
            raise ConfigError(f'vehicle_id must be a non-empty name of letters, digits and _, '
                              f'got {self.vehicle_id!r}')
        if set(self.sync.streams) != set(self.pipeline.enabled):
            raise ConfigError(f'sync streams {list(self.sync.streams)} must be the enabled streams '
                              f'{list(self.pipeline.enabled)}')
        if self.stamp_future_tolerance_ns < 0:
            raise ConfigError(f'stamp_future_tolerance_ns must be >= 0, got {self.stamp_future_tolerance_ns!r}')


@dataclass(frozen=True, eq=False)
class SharedGrid:
    """The evidence shared this cycle: spec and (height, width) int8 OccupancyGrid cells."""

    spec: GridSpec
    cells: NDArray[np.int8]


@dataclass(frozen=True, eq=False)
class Evidence:
    """One processed cycle, to publish.

    stamp_ns : common time of the outputs
    grid : the shared evidence; None in a cycle that does not share (share.period_cycles > 1)
    radar_targets : RADAR_TARGET_DTYPE in ``map``; None without radar
    cycle : the pipeline's result; elapsed_ms : wall time of pipeline and sharing
    """

    stamp_ns: int
    grid: SharedGrid | None
    radar_targets: NDArray | None
    cycle: CycleResult
    elapsed_ms: float


@dataclass
class Step:
    """What one input produced: evidence to publish, drops to count, sync sets handed to the pipeline."""

    evidence: list[Evidence] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    sets: int = 0


class VehicleCore:
    """A vehicle's perception state between messages (see the module docstring)."""

    def __init__(self, cfg: VehicleConfig) -> None:
        self.cfg = cfg
        self.pipeline = VehiclePipeline(cfg.pipeline)
        self.poses = PoseBuffer(cfg.pose_buffer)
        self.sync = ApproximateTimeSync(cfg.sync)
        # sync sets waiting for odometry to cover their stamps, timed on the sensor stamps
        self.waiting: PoseWait[SyncSet] = PoseWait(cfg.pose_wait)
        self.sharer = EvidenceSharer(cfg.share, cfg.pipeline.window.resolution_m)
        self.clock_fit = ClockEstimator(cfg.timebase) if cfg.timebase is not None else None
        self.K: NDArray[np.float64] | None = None
        self.image_shape: tuple[int, int] | None = None
        self.cycles = 0
        self.shares = 0
        self.sets_waited = 0
        self.sets_released = {r: 0 for r in Release if r is not Release.COVERED}
        self._reference_stamps: list[int] = []     # the last lidar scans' stamps, vehicle clock (its period)
        self._output_offset_ns = cfg.output_stamp_offset_ns   # output_offset_ns(), updated per lidar scan
        self._expected = {'lidar': cfg.frames.lidar, 'radar': cfg.frames.radar, 'camera': cfg.frames.camera_optical,
                          'camera_info': cfg.frames.camera_optical}

    # -------------------------------------------------------------- checks --

    def check_frame(self, stream: str, frame_id: str) -> None:
        """DroppedInput(frame) unless ``frame_id`` is the one ``stream`` (lidar, radar, camera, camera_info) has."""
        expected = self._expected[stream]
        if frame_id != expected:
            raise DroppedInput(Cause.FRAME, f'{stream} frame_id {frame_id!r}, expected {expected!r}')

    def check_odometry_frames(self, frame_id: str, child_frame_id: str) -> None:
        """DroppedInput(frame) unless odometry goes from the map frame to this vehicle's base_link."""
        for name, got, expected in (('frame_id', frame_id, self.cfg.frames.map),
                                    ('child_frame_id', child_frame_id, self.cfg.frames.base_link)):
            if got != expected:
                raise DroppedInput(Cause.FRAME, f'odom {name} {got!r}, expected {expected!r}')

    def check_sensor(self, stream: str, frame_id: str, stamp_vehicle_ns: int, now_ns: int) -> None:
        """The checks before a sensor message is converted: its frame, its stamp and (camera) the intrinsics."""
        self.check_frame(stream, frame_id)
        self._check_stamp(stream, stamp_vehicle_ns, now_ns)
        if stream == 'camera' and self.K is None:
            raise DroppedInput(Cause.NO_CAMERA_INFO, 'depth image before any CameraInfo')

    def _check_stamp(self, stream: str, stamp_vehicle_ns: int, now_ns: int) -> None:
        tolerance = self.cfg.stamp_future_tolerance_ns
        if now_ns > 0 and stamp_vehicle_ns > now_ns + tolerance:     # 0: sim time not started yet
            raise DroppedInput(Cause.FUTURE, f'{stream} stamp {stamp_vehicle_ns} ns is more than '
                                             f'{tolerance / _NS_PER_S:g} s ahead of the node clock ({now_ns} ns)')

    # -------------------------------------------------------------- inputs --

    def odometry(self, pose: PoseSample, now_ns: int) -> Step:
        """One odometry sample (vehicle clock): buffered; sets waiting for it may go on."""
        self._check_stamp('odom', pose.stamp_ns, now_ns)
        if not covariance_is_psd(pose.covariance):
            raise DroppedInput(Cause.COVARIANCE, f'odometry at {pose.stamp_ns} ns has a covariance that is not '
                                                 f'positive semi-definite')
        newest = self.newest_pose_ns()
        self.poses.insert(pose)
        if newest is None or pose.stamp_ns > newest:
            self.waiting.odometry()
        step = Step()
        self._release(now_ns, step)
        return step

    def time_reference(self, stamp_vehicle_ns: int, common_ns: int) -> None:
        """One (vehicle clock, common time) pair for the clock fit; DroppedInput(outlier) when the fit rejects it."""
        if self.clock_fit is None:
            raise ConfigError('time reference given with the timebase disabled')
        if not self.clock_fit.add(stamp_vehicle_ns, common_ns):
            raise DroppedInput(Cause.OUTLIER, f'time reference {stamp_vehicle_ns} ns -> {common_ns} ns is off '
                                              f'the clock fit by more than the outlier threshold')

    def camera_info(self, K: NDArray[np.floating], height: int, width: int) -> None:
        """The intrinsics (3, 3) and image size later depth images must have."""
        if width == 0 or height == 0:
            raise MessageFormatError(f'camera_info size is {width}x{height}: expected the image size')
        self.K = np.asarray(K, dtype=np.float64)
        self.image_shape = (int(height), int(width))

    def depth(self, stamp_vehicle_ns: int, depth_m: NDArray[np.floating], now_ns: int) -> Step:
        """A depth image (H, W) metres, after :meth:`check_sensor`; DroppedInput(size_mismatch) off the CameraInfo."""
        if self.K is None:
            raise DroppedInput(Cause.NO_CAMERA_INFO, 'depth image before any CameraInfo')
        if depth_m.shape != self.image_shape:
            raise DroppedInput(Cause.SIZE_MISMATCH, f'depth image {depth_m.shape[1]}x{depth_m.shape[0]} does not '
                                                    f'match CameraInfo {self.image_shape[1]}x{self.image_shape[0]}')
        return self.sensor('camera', DepthFrame(stamp_vehicle_ns, depth_m, self.K), now_ns)

    def sensor(self, stream: str, payload: Any, now_ns: int) -> Step:
        """A LidarScan, RadarScan or DepthFrame into the sync; completed sets wait for odometry, then run."""
        stamp = int(payload.stamp_vehicle_ns)
        step = Step()
        stamps = self._reference_stamps
        if stream == 'lidar' and (not stamps or stamp > stamps[-1]):
            stamps.append(stamp)
            del stamps[:-9]
            self._output_offset_ns = self._measured_offset_ns()
        self.waiting.sensor(stamp)
        before = self.sync.stats
        sets = self.sync.add(stream, stamp, payload, now_ns)
        self._sync_drops(before, f'{stream} message at {stamp} ns', step)
        for sset in sets:
            self._submit(sset, now_ns, step)
        self._release(now_ns, step)    # sensor time moved on: sets may have waited long enough
        return step

    def poll(self, now_ns: int) -> Step:
        """Release sets whose missing members timed out (the node's poll timer)."""
        step = Step()
        before = self.sync.stats
        sets = self.sync.poll(now_ns)
        self._sync_drops(before, 'stream timeout', step)
        for sset in sets:
            self._submit(sset, now_ns, step)
        self._release(now_ns, step)
        return step

    # --------------------------------------------------------------- cycle --

    def newest_pose_ns(self) -> int | None:
        """Stamp of the newest odometry held, vehicle clock; None before any."""
        try:
            return self.poses.span()[1]
        except FrameError:      # no odometry yet
            return None

    def output_offset_ns(self) -> int:
        """What is added to a set's stamp on the outputs, ns: ``output_stamp_offset_ns``, but with a lidar
        reference at most about half its sweep period (the median interval of its last scans' stamps, when 20-200
        ms; a vehicle may use only every other scan): an offset longer than 60 % of it is taken as half of it.

        The offset names the moment the lidar looks ahead: half a period into a sweep that starts behind the
        car. One offset in the shared vehicle parameters (50 ms, a 10 Hz lidar) would put a 20 Hz lidar's
        outputs at the end of its sweep, and moving things seen ahead 25 ms before their stamp (0.7 m at
        27 m/s) where the fusion draws them (core/fusion/dynamic.py, sweep_phase_s).
        """
        return self._output_offset_ns

    def _measured_offset_ns(self) -> int:
        """:meth:`output_offset_ns` from the lidar stamps held now (it changes only when one arrives)."""
        offset = self.cfg.output_stamp_offset_ns
        stamps = self._reference_stamps
        if self.cfg.sync.reference != 'lidar' or len(stamps) < 2:
            return offset
        period = sorted(b - a for a, b in zip(stamps, stamps[1:]))[(len(stamps) - 2) // 2]
        if not 20_000_000 <= period <= 200_000_000 or 10 * offset <= 6 * period:
            return offset            # (within 20 % of half a period: as configured)
        return period // 2

    def to_output_stamp(self, stamp_vehicle_ns: int) -> int | None:
        """Vehicle-clock stamp + :meth:`output_offset_ns`, in common time; None while no time reference has
        arrived.

        A stamp in the wrong clock would be fused at the wrong time, so such a cycle is dropped.
        """
        stamp = int(stamp_vehicle_ns) + self.output_offset_ns()
        if self.clock_fit is None:
            return stamp
        if self.clock_fit.n_samples == 0:
            return None
        return int(self.clock_fit.to_common(stamp))

    def process_set(self, sset: SyncSet) -> CycleResult:
        """Run one sync set through the pipeline (no sharing). Raises the pipeline's errors."""
        members = {name: payload for name, (_, payload) in sset.members.items()}
        # Moving objects are drawn where they are at the output stamp, the moment the cycle describes.
        return self.pipeline.process(sset.stamp_ns, self.poses, lidar=members.get('lidar'),
                                     radar=members.get('radar'), camera=members.get('camera'),
                                     draw_at_vehicle_ns=int(sset.stamp_ns) + self.output_offset_ns())

    def _submit(self, sset: SyncSet, now_ns: int, step: Step) -> None:
        """Queue a set until odometry covers its stamps (or went silent: core.vehicle.pose_wait); sets keep order."""
        members = {name: payload for name, (_, payload) in sset.members.items()}
        self.waiting.push(sset, set_pose_horizon_ns(members, self.cfg.pipeline.deskew), now_ns)
        self._release(now_ns, step)

    def _release(self, now_ns: int, step: Step) -> None:
        for released in self.waiting.release(self.newest_pose_ns(), now_ns):
            if released.reason is Release.COVERED:
                if released.waited:
                    self.sets_waited += 1
            else:
                self.sets_released[released.reason] += 1
            self._process(released.payload, step)

    def _sync_drops(self, before: dict[str, int], detail: str, step: Step) -> None:
        """The messages the synchroniser dropped in the last call: one Drop('sync', <its counter>) each."""
        for key, n in self.sync.stats.items():
            if key.startswith('dropped.') and n > before.get(key, 0):
                cause = key[len('dropped.'):]
                step.drops.extend(Drop('sync', cause, detail) for _ in range(n - before.get(key, 0)))

    def _process(self, sset: SyncSet, step: Step) -> None:
        step.sets += 1
        t0 = time.perf_counter()
        try:
            result = self.process_set(sset)
        except FrameError as exc:
            step.drops.append(Drop('set', Cause.NO_POSE.value, str(exc)))
            return
        except CooperativeFusionError as exc:
            step.drops.append(Drop('set', cause_of(exc), str(exc)))
            return
        for name, reason in result.skipped.items():
            step.drops.append(Drop(name, Cause.NO_POSE.value, reason))
        stamp_ns = self.to_output_stamp(result.stamp_vehicle_ns)
        if stamp_ns is None:
            step.drops.append(Drop('set', Cause.NO_TIMEBASE.value,
                                   f'no time reference yet: cannot map the cycle at {result.stamp_vehicle_ns} ns '
                                   f'(vehicle clock) to common time'))
            return
        base2map = self.poses.lookup(result.stamp_vehicle_ns)
        shared = self.sharer.add(result.spec, result.logodds, result.known, result.stamp_vehicle_ns,
                                 float(base2map[1, 3]), float(base2map[0, 3]))
        grid = None
        if shared is not None:
            cells = (result.cells if shared.spec == result.spec and shared.cycles == 1
                     else logodds_to_percent(shared.logodds, shared.known))
            grid = SharedGrid(shared.spec, cells)
            self.shares += 1
        self.cycles += 1
        step.evidence.append(Evidence(stamp_ns, grid, result.radar_targets, result,
                                      1e3 * (time.perf_counter() - t0)))

    # --------------------------------------------------------- diagnostics --

    def stats(self) -> dict[str, object]:
        """Counters for /diagnostics.

        cycles : evidence cycles processed; shares : evidence grids shared (one per
        share.period_cycles cycles); sets_waiting_for_pose / sets_waited_for_pose : sync sets
        waiting for odometry now / that waited and got it; sets_released_odometry_silent /
        sets_released_max_wait : sets that went on without covering odometry (then extrapolated
        or dropped as set.no_pose); sync.* : the synchroniser's counters; timebase.* : the clock
        fit (samples, offset_ms, drift_ppm, residual_ms); pose_buffer_span_s : odometry history held.
        """
        values: dict[str, object] = {'cycles': self.cycles, 'sets_waiting_for_pose': len(self.waiting),
                                     'sets_waited_for_pose': self.sets_waited}
        for reason, n in self.sets_released.items():
            values[f'sets_released_{reason.value}'] = n
        values['shares'] = self.shares
        values.update({f'sync.{k}': v for k, v in self.sync.stats.items()})
        if self.clock_fit is not None:
            values['timebase.samples'] = self.clock_fit.n_samples
            if self.clock_fit.n_samples:
                values['timebase.offset_ms'] = self.clock_fit.offset_ns / 1e6
                values['timebase.drift_ppm'] = self.clock_fit.drift_ppm
                values['timebase.residual_ms'] = self.clock_fit.residual_ns / 1e6
        try:
            first, last = self.poses.span()
            values['pose_buffer_span_s'] = (last - first) / _NS_PER_S
        except FrameError:  # empty buffer
            values['pose_buffer_span_s'] = 0.0
        return values
