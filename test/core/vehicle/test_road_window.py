"""Evidence windows that turn with the road (issue 13: roads at any heading)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from cooperative_fusion.core import se3
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.pipeline import WindowConfig, window_spec, window_yaw
from cooperative_fusion.core.vehicle.sensor_models import camera_evidence, default_lidar_model, lidar_evidence
from cooperative_fusion.core.vehicle.share import EvidenceSharer, ShareConfig, downsample, sum_on_union

ROAD = WindowConfig(size_x_m=100.0, size_y_m=40.0, resolution_m=0.2, forward_offset_m=30.0, yaw_step_deg=2.0)


def _ahead(x: float, y: float, heading: float, distances: np.ndarray) -> np.ndarray:
    return np.stack([x + distances * math.cos(heading), y + distances * math.sin(heading)], axis=1)


def test_window_on_a_45_degree_road_holds_the_vehicle_and_60_m_ahead():
    x, y, heading = 1234.5, -678.9, math.radians(45.0)
    base2map = se3.from_xy_yaw(x, y, heading)
    yaw = window_yaw(ROAD, base2map)
    assert math.degrees(yaw) == pytest.approx(44.0)          # 45 deg in 2 deg steps
    spec = window_spec(ROAD, base2map, yaw)
    assert spec.shape == (200, 500) and spec.yaw == yaw
    line = _ahead(x, y, heading, np.arange(0.0, 61.0, 5.0))
    ix, iy = spec.world_to_cell(line)
    assert spec.in_bounds(ix, iy).all()
    # ...and 15 m behind, with the whole 40 m across the road to spare on both sides of the lane.
    assert spec.in_bounds(*spec.world_to_cell(_ahead(x, y, heading, np.array([-15.0])))).all()
    # The axis-aligned window of the same size misses the road 60 m ahead.
    flat = window_spec(ROAD, base2map, 0.0)
    assert not flat.in_bounds(*flat.world_to_cell(line[-1:])).all()


def test_window_yaw_keeps_its_step_while_the_heading_wanders():
    yaw = None
    seen = []
    for deg in (30.0, 30.6, 31.4, 29.0, 30.2, 31.6, 32.4, 31.0):
        yaw = window_yaw(ROAD, se3.from_xy_yaw(0.0, 0.0, math.radians(deg)), yaw)
        seen.append(round(math.degrees(yaw), 6))
    assert seen == [30.0, 30.0, 30.0, 30.0, 30.0, 32.0, 32.0, 32.0]
    assert window_yaw(WindowConfig(), se3.from_xy_yaw(0.0, 0.0, 0.7)) == 0.0      # step 0: axis-aligned


def _fan(origin: np.ndarray, heading_deg: float, range_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Hits on an arc ``range_m`` away over heading ± 5 deg (0.1 deg apart), and ground returns just short."""
    az = np.radians(heading_deg + np.arange(-5.0, 5.01, 0.1))
    unit = np.stack([np.cos(az), np.sin(az)], axis=1)
    return origin + range_m * unit, origin + 0.95 * range_m * unit


def test_lidar_evidence_on_a_turned_grid_marks_the_hit_and_the_free_line():
    origin = np.array([500.0, 300.0])
    hits, ground = _fan(origin, 45.0, 20.0)
    probe = origin + np.array([[20.0, 20.0], [10.0, 10.0]]) / math.sqrt(2.0)
    for spec in (GridSpec.centered(500.0, 300.0, 60.0, 20.0, 0.2, yaw=math.radians(44.0)),
                 GridSpec.centered(500.0, 300.0, 60.0, 60.0, 0.2)):
        logodds, known = lidar_evidence(spec, origin, hits, ground, default_lidar_model())
        ix, iy = spec.world_to_cell(probe)
        assert logodds[iy[0], ix[0]] > 0 and known[iy[0], ix[0]]       # the hit 20 m ahead
        assert logodds[iy[1], ix[1]] < 0 and known[iy[1], ix[1]]       # free at 10 m


def test_camera_field_of_view_turns_with_the_grid():
    spec = GridSpec.centered(0.0, 0.0, 40.0, 40.0, 0.2, yaw=math.radians(90.0))
    # Camera at the origin looking along map +y with a 60 deg field of view, a wall 10 m ahead.
    hits, ground = _fan(np.zeros(2), 90.0, 10.0)
    logodds, known = camera_evidence(spec, np.zeros(2), math.radians(90.0), math.radians(60.0), hits, ground,
                                     default_lidar_model())
    ix, iy = spec.world_to_cell(np.array([[0.0, 10.0], [0.0, 5.0], [0.0, -5.0]]))
    assert (logodds[iy[0] - 1:iy[0] + 2, ix[0] - 1:ix[0] + 2] > 0).any()      # the wall (on a cell edge)
    assert logodds[iy[1], ix[1]] < 0
    assert not known[iy[2], ix[2]]            # behind the camera


def test_sharing_keeps_the_yaw_and_resamples_a_turned_cycle():
    yaw = math.radians(30.0)
    a = GridSpec.centered(100.0, 50.0, 20.0, 10.0, 0.2, yaw)
    la = np.zeros(a.shape, np.float32)
    ka = np.zeros(a.shape, bool)
    la[10, 20], ka[10, 20] = 2.0, True
    spec, l, k = downsample(a, la, ka, 2)
    assert spec.yaw == yaw and spec.resolution == 0.4
    b = GridSpec.centered(100.0, 50.0, 20.0, 10.0, 0.2, math.radians(32.0))
    spec, l, k = sum_on_union([(a, la, ka), (b, np.zeros(b.shape, np.float32), np.zeros(b.shape, bool))])
    assert spec == b
    # The known cell of the first cycle lands where its centre lies in the second window.
    x, y = a.cell_centers_map()
    ix, iy = b.world_to_cell(np.array([x[10, 20], y[10, 20]]))
    assert k[iy, ix] and l[iy, ix] == pytest.approx(2.0)
    assert int(k.sum()) == 1


def test_corridor_crop_runs_along_a_turned_window():
    yaw = math.radians(60.0)
    spec = GridSpec.centered(0.0, 0.0, 40.0, 40.0, 0.2, yaw)
    logodds = np.zeros(spec.shape, np.float32)
    known = np.ones(spec.shape, bool)
    sharer = EvidenceSharer(ShareConfig(resolution_m=0.2, crop='corridor', corridor_half_width_m=5.0), 0.2)
    out = sharer.add(spec, logodds, known, 1, vehicle_y_m=0.0, vehicle_x_m=0.0)
    assert out is not None and out.spec.yaw == yaw
    # A band 10 m wide across the window, whole along it.
    assert out.spec.width == spec.width and out.spec.height == pytest.approx(50, abs=1)
    assert_array_equal(out.known, True)
