"""core.vehicle.vehicle_core: a vehicle's whole work without ROS (checks, odometry, sync, pose wait, cycles)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from cooperative_fusion.core import se3
from cooperative_fusion.core.drops import Drop, DroppedInput
from cooperative_fusion.core.errors import ConfigError, MessageFormatError
from cooperative_fusion.core.timebase import ClockFitConfig
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.core.vehicle.pipeline import LidarScan, PipelineConfig, RadarScan
from cooperative_fusion.core.vehicle.pose_wait import PoseWaitConfig
from cooperative_fusion.core.vehicle.share import ShareConfig
from cooperative_fusion.core.vehicle.sync import SyncConfig
from cooperative_fusion.core.vehicle.vehicle_core import FrameConfig, VehicleConfig, VehicleCore

MS = 1_000_000
T0 = 1_000_000 * MS                   # vehicle clock, ns
FRAMES = FrameConfig('map', 'v1/base_link', 'v1/lidar', 'v1/radar', 'v1/camera_optical')


def make_core(streams=('lidar',), **kw) -> VehicleCore:
    defaults = dict(vehicle_id='v1', frames=FRAMES, pipeline=PipelineConfig(enabled=streams),
                    sync=SyncConfig(streams=streams, reference='lidar'), timebase=None,
                    share=ShareConfig(resolution_m=0.2), pose_wait=PoseWaitConfig(wait_ns=0))
    return VehicleCore(VehicleConfig(**{**defaults, **kw}))


def pose(t_ns: int, cov: np.ndarray | None = None) -> PoseSample:
    q = se3.to_translation_quat(se3.from_xy_yaw(0.0, 0.0, 0.0))[1]
    return PoseSample(t_ns, np.zeros(3), q, np.eye(6) * 0.01 if cov is None else cov, np.zeros(3))


def wall(core: VehicleCore, t_ns: int) -> LidarScan:
    """A wall 10 m ahead of base_link (z 0.5..1.5 m), in the lidar frame."""
    y, z = np.meshgrid(np.linspace(-2.0, 2.0, 41), np.linspace(0.5, 1.5, 3))
    base = np.column_stack([np.full(y.size, 10.0), y.ravel(), z.ravel()])
    return LidarScan(t_ns, se3.apply(se3.invert(core.pipeline.lidar2base), base))


def feed_odometry(core: VehicleCore, t_from: int, t_to: int, now_ns: int | None = None) -> list:
    """Odometry every 50 ms from t_from to t_to, handled at now_ns (default: at its stamp); the evidence it lets go."""
    steps = [core.odometry(pose(t), now_ns=t if now_ns is None else now_ns) for t in range(t_from, t_to + 1, 50 * MS)]
    return [e for s in steps for e in s.evidence]


def test_a_sweep_with_odometry_gives_evidence_stamped_with_the_offset():
    core = make_core(output_stamp_offset_ns=50 * MS)
    feed_odometry(core, T0 - 500 * MS, T0 + 100 * MS)
    step = core.sensor('lidar', wall(core, T0), now_ns=T0)
    assert step.drops == [] and step.sets == 1
    (evidence,) = step.evidence
    assert evidence.stamp_ns == T0 + 50 * MS and evidence.cycle.used == ('lidar',)
    ix, iy = evidence.grid.spec.world_to_cell(np.array([[10.05, 0.0]]))
    assert evidence.grid.cells[iy, ix][0] >= 80                      # the wall
    ix, iy = evidence.grid.spec.world_to_cell(np.array([[6.0, 0.0]]))
    assert evidence.grid.cells[iy, ix][0] < 50                       # free before it
    assert_array_equal(evidence.grid.cells, evidence.cycle.cells)   # shared at the cycle's own resolution
    stats = core.stats()
    assert (stats['cycles'], stats['shares'], stats['sets_waiting_for_pose'], stats['sync.sets']) == (1, 1, 0, 1)
    assert stats['pose_buffer_span_s'] == pytest.approx(0.6)


def test_a_sweep_ahead_of_odometry_waits_for_it():
    core = make_core(pose_wait=PoseWaitConfig(wait_ns=300 * MS))
    feed_odometry(core, T0 - 500 * MS, T0 - 200 * MS)
    step = core.sensor('lidar', wall(core, T0), now_ns=T0)
    assert (step.evidence, step.drops, len(core.waiting)) == ([], [], 1)
    evidence = feed_odometry(core, T0 - 150 * MS, T0 + 50 * MS, now_ns=T0 + 20 * MS)     # handled late
    assert len(evidence) == 1 and core.sets_waited == 1 and len(core.waiting) == 0


def test_a_set_without_pose_and_one_without_timebase_are_drops():
    core = make_core()
    step = core.sensor('lidar', wall(core, T0), now_ns=T0)          # no odometry at all, no wait
    assert step.evidence == [] and [(d.source, d.cause) for d in step.drops] == [('set', 'no_pose')]
    core = make_core(timebase=ClockFitConfig())
    feed_odometry(core, T0 - 500 * MS, T0 + 100 * MS)
    step = core.sensor('lidar', wall(core, T0), now_ns=T0)
    assert step.evidence == [] and [(d.source, d.cause) for d in step.drops] == [('set', 'no_timebase')]
    for k in range(3):                                               # vehicle clock 200 ms behind common time
        core.time_reference(T0 - k * 1_000 * MS, T0 - k * 1_000 * MS + 200 * MS)
    (evidence,) = core.sensor('lidar', wall(core, T0 + 100 * MS), now_ns=T0).evidence
    assert abs(evidence.stamp_ns - (T0 + 300 * MS)) < 1_000
    with pytest.raises(DroppedInput, match='off the clock fit') as info:
        core.time_reference(T0, T0 + 5_000 * MS)
    assert info.value.cause == 'outlier'


def test_sync_drops_are_reported_by_the_synchroniser_counter():
    core = make_core()
    feed_odometry(core, T0 - 500 * MS, T0 + 100 * MS)
    assert len(core.sensor('lidar', wall(core, T0), now_ns=T0).evidence) == 1
    step = core.sensor('lidar', wall(core, T0 - 10 * MS), now_ns=T0)   # older than the set just made
    assert step.evidence == [] and step.drops == [Drop('sync', 'late', f'lidar message at {T0 - 10 * MS} ns')]


def test_checks_refuse_inputs_before_anything_changes():
    core = make_core(streams=('lidar', 'radar', 'camera'))
    with pytest.raises(DroppedInput, match="lidar frame_id 'v2/lidar', expected 'v1/lidar'") as info:
        core.check_sensor('lidar', 'v2/lidar', T0, now_ns=T0)
    assert info.value.cause == 'frame'
    with pytest.raises(DroppedInput, match="odom child_frame_id 'base_link', expected 'v1/base_link'"):
        core.check_odometry_frames('map', 'base_link')
    core.check_odometry_frames('map', 'v1/base_link')
    with pytest.raises(DroppedInput, match='radar stamp .* is more than 60 s ahead of the node clock') as info:
        core.check_sensor('radar', 'v1/radar', T0 + 61_000 * MS, now_ns=T0)
    assert info.value.cause == 'future'
    core.check_sensor('radar', 'v1/radar', T0 + 61_000 * MS, now_ns=0)   # sim time not started: no future check
    with pytest.raises(DroppedInput, match='depth image before any CameraInfo') as info:
        core.check_sensor('camera', 'v1/camera_optical', T0, now_ns=T0)
    assert info.value.cause == 'no_camera_info'
    with pytest.raises(MessageFormatError, match='camera_info size is 0x24'):
        core.camera_info(np.eye(3), height=24, width=0)
    core.camera_info(np.array([[16.0, 0, 15.5], [0, 16.0, 11.5], [0, 0, 1]]), height=24, width=32)
    core.check_sensor('camera', 'v1/camera_optical', T0, now_ns=T0)
    with pytest.raises(DroppedInput, match='depth image 31x24 does not match CameraInfo 32x24') as info:
        core.depth(T0, np.ones((24, 31), np.float32), now_ns=T0)
    assert info.value.cause == 'size_mismatch'
    bad = np.eye(6)
    bad[0, 0] = -1.0
    with pytest.raises(DroppedInput, match='not positive semi-definite') as info:
        core.odometry(pose(T0, bad), now_ns=T0)
    assert info.value.cause == 'covariance' and len(core.poses) == 0 and core.stats()['sync.received.lidar'] == 0


def test_radar_targets_come_with_the_cycle():
    core = make_core(streams=('lidar', 'radar'), sync=SyncConfig(streams=('lidar', 'radar'), reference='lidar'))
    feed_odometry(core, T0 - 500 * MS, T0 + 200 * MS)
    steps = []
    for t in (T0, T0 + 100 * MS):          # the next pair proves the first the best match
        radar = RadarScan(t - 10 * MS, np.array([[8.0, 0.0, 0.0]]), np.array([0.0]), np.array([10.0]))
        steps += [core.sensor('radar', radar, now_ns=t), core.sensor('lidar', wall(core, t), now_ns=t)]
    evidence = [e for s in steps for e in s.evidence]
    assert len(evidence) == 1 and evidence[0].cycle.used == ('lidar', 'radar')
    assert evidence[0].radar_targets['x'][0] == pytest.approx(8.0 + core.pipeline.radar2base[0, 3], abs=1e-4)


def test_vehicle_config_is_validated():
    with pytest.raises(ConfigError, match='vehicle_id must be a non-empty name'):
        make_core(vehicle_id='v/1')
    with pytest.raises(ConfigError, match=r"sync streams \['lidar', 'radar'\] must be the enabled streams \['lidar'\]"):
        make_core(sync=SyncConfig(streams=('lidar', 'radar'), reference='lidar'))
