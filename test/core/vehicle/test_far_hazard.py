"""A stopped car far ahead in the lane is evidence: the window reaches as far as the sensors see."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml

from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.core.vehicle.pipeline import (LidarScan, PipelineConfig, RadarScan, VehiclePipeline,
                                                      WindowConfig)
from cooperative_fusion.core.vehicle.pose_buffer import PoseBuffer, PoseBufferConfig
from cooperative_fusion.core.vehicle.sensor_models import default_lidar_model, default_radar_model

SPEED = 25.0                     # m/s along map x
T_REF = 50_000_000_000           # vehicle clock, ns
REPO = Path(__file__).resolve().parents[3]


def _poses() -> PoseBuffer:
    """The vehicle at x = 0, y = 0, heading +x at T_REF, driving at SPEED; samples every 10 ms."""
    buf = PoseBuffer(PoseBufferConfig(max_age_ns=5_000_000_000, extrapolation_margin_ns=50_000_000))
    for k in range(-100, 11):
        buf.insert(PoseSample(T_REF + k * 10_000_000, np.array([SPEED * k * 0.01, 0.0, 0.0]),
                              np.array([1.0, 0.0, 0.0, 0.0]), linear_velocity=np.array([SPEED, 0.0, 0.0])))
    return buf


def _occupied_near(res, x: float, y: float, radius_m: float, min_logodds: float) -> int:
    spec = res.spec
    xs, ys = spec.cell_centers()
    near = (np.abs(xs[None, :] - x) <= radius_m) & (np.abs(ys[:, None] - y) <= radius_m)
    return int((near & res.known & (res.logodds >= min_logodds)).sum())


def test_far_lidar_returns_on_a_stopped_car_are_occupied_evidence():
    # A roof lidar (1.9 m up) at 90 m sees a car's rear face in two columns and two beams (as the
    # simulated 32-beam lidar does): four points. The default window must hold them.
    pipe = VehiclePipeline(PipelineConfig(enabled=('lidar',), deskew=False))
    rear_x = 90.0                                       # rear face, metres ahead of base_link
    lx = rear_x - pipe.cfg.lidar_extrinsic[0]
    pts = np.array([[lx, y, z - 1.9] for y in (-0.47, 0.47) for z in (0.5, 1.4)])
    res = pipe.process(T_REF, _poses(), lidar=LidarScan(T_REF, pts))
    assert res.spec.origin_x + res.spec.size_x >= rear_x + 5.0
    assert _occupied_near(res, rear_x, 0.0, 0.6, default_lidar_model().l_hit - 1e-6) >= 2


def test_radar_return_of_a_stopped_car_beyond_lidar_range_is_evidence():
    # At 120 m only the radar sees the car: one detection, closing at the ego speed (ego motion
    # removed: about 0 m/s, a stopped object). It is occupied evidence where it lies.
    pipe = VehiclePipeline(PipelineConfig(enabled=('radar',)))
    rear_x = 120.0
    pts = np.array([[rear_x - pipe.cfg.radar_extrinsic[0], 0.1, 0.0]])
    res = pipe.process(T_REF, _poses(), radar=RadarScan(T_REF, pts, np.array([-SPEED]), np.array([10.0])))
    assert abs(float(res.radar_targets['velocity'][0])) < 0.1
    assert _occupied_near(res, rear_x, 0.1, 0.3, 0.99 * default_radar_model().l_hit) >= 1


def test_the_default_window_reaches_as_far_ahead_as_the_sensors():
    # config/vehicle.yaml and the WindowConfig defaults: the window's front edge lies at least
    # as far ahead of base_link as the lidar's trusted range from its mount; the radar's reach
    # (150 m) is at least 125 m (a stopped car 5 s ahead at 25 m/s).
    params = yaml.safe_load((REPO / 'config' / 'vehicle.yaml').read_text())['/**']['ros__parameters']
    grid, lidar_mount = params['grid'], params['extrinsics']['lidar'][0]
    for forward, size in ((grid['forward_offset_m'], grid['size_x_m']),
                          (WindowConfig().forward_offset_m, WindowConfig().size_x_m)):
        ahead = forward + 0.5 * size
        assert ahead >= lidar_mount + params['lidar']['max_range_m']
        assert ahead >= 125.0
        assert forward - 0.5 * size <= -15.0                       # and still behind the vehicle's rear
    assert math.isclose(WindowConfig().forward_offset_m, grid['forward_offset_m'])
    assert math.isclose(WindowConfig().size_x_m, grid['size_x_m'])
