"""nearest_in_corridor: the nearest occupied cells in the lane ahead of a vehicle, from its evidence grid."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.ego_obstacle import nearest_in_corridor, path_coordinates

SPEC = GridSpec(0.0, -10.0, 0.5, 400, 40)            # x 0..200 m, y -10..10 m


def _grid(*boxes: tuple[float, float, float, float], value: int = 90) -> np.ndarray:
    g = np.full(SPEC.shape, -1, np.int8)
    g[:, :] = 0
    for x0, x1, y0, y1 in boxes:
        c0, c1 = int((x0 - SPEC.origin_x) / 0.5), int((x1 - SPEC.origin_x) / 0.5)
        r0, r1 = int((y0 - SPEC.origin_y) / 0.5), int((y1 - SPEC.origin_y) / 0.5)
        g[r0:r1, c0:c1] = value
    return g


def test_nearest_obstacle_in_lane_past_the_skipped_predecessor() -> None:
    pred = (40.0, 52.0, -1.0, 1.0)                    # a truck ahead
    car = (100.0, 104.5, -0.5, 0.5)                   # a stopped car beyond it
    beside = (70.0, 75.0, 3.0, 4.0)                   # next lane
    g = _grid(pred, car, beside)
    # base_link at x = 10, front bumper 3.5 m ahead of it: the truck's rear is 26.5 m ahead
    assert nearest_in_corridor(g, SPEC, 10.0, 0.0, 0.0, 3.5) == pytest.approx(26.75)
    assert nearest_in_corridor(g, SPEC, 10.0, 0.0, 0.0, 3.5, skip=(25.0, 40.0)) == pytest.approx(86.75)
    assert nearest_in_corridor(g, SPEC, 10.0, 0.0, 0.0, 3.5, skip=(25.0, 40.0), max_range_m=80.0) is None


def test_heading_and_single_cells() -> None:
    g = _grid((100.0, 100.5, 0.0, 0.5))               # one stray cell: no obstacle
    assert nearest_in_corridor(g, SPEC, 10.0, 0.0, 0.0, 3.5) is None
    assert nearest_in_corridor(g, SPEC, 10.0, 0.0, 0.0, 3.5, min_cells=1) == pytest.approx(86.75)
    # heading backwards (yaw pi): the same cells are behind
    assert nearest_in_corridor(_grid((100.0, 104.0, -0.5, 0.5)), SPEC, 10.0, 0.0, math.pi, 3.5) is None
    # below the occupied threshold
    assert nearest_in_corridor(_grid((100.0, 104.0, -0.5, 0.5), value=60), SPEC, 10.0, 0.0, 0.0, 3.5) is None


def test_grid_shape_must_match() -> None:
    with pytest.raises(ConfigError, match='does not match its spec'):
        nearest_in_corridor(np.zeros((3, 3), np.int8), SPEC, 0.0, 0.0, 0.0, 3.5)


def test_a_rotated_grid_places_its_cells_by_its_yaw() -> None:
    """The same occupied map box in a grid rotated by 30 degrees is found at the same gap."""
    yaw = math.radians(30.0)
    rotated = GridSpec.centered(100.0, 0.0, 220.0, 30.0, 0.5, yaw)
    xc, yc = rotated.cell_centers_map()
    g = np.where((xc >= 100.0) & (xc <= 104.0) & (np.abs(yc) <= 0.5), 90, 0).astype(np.int8)
    assert nearest_in_corridor(g, rotated, 10.0, 0.0, 0.0, 3.5) == pytest.approx(86.5, abs=0.5)
    assert nearest_in_corridor(_grid((100.0, 104.0, -0.5, 0.5)), SPEC, 10.0, 0.0, 0.0, 3.5) == pytest.approx(86.75)


@pytest.mark.parametrize('k', [0.01, -0.01])
def test_path_coordinates_on_an_arc(k: float) -> None:
    yaw, s, d = 0.3, np.array([0.0, 10.0, 50.0, 100.0]), np.array([0.0, 1.0, -1.0, 0.5])
    th = yaw + k * s
    x = -math.sin(yaw) / k + (1.0 / k - d) * np.sin(th)
    y = math.cos(yaw) / k - (1.0 / k - d) * np.cos(th)
    along, across = path_coordinates(x, y, yaw, k)
    np.testing.assert_allclose(along, s, atol=1e-9)
    np.testing.assert_allclose(across, d, atol=1e-9)


def test_a_curved_corridor_finds_the_car_in_the_lane_and_not_the_one_beside() -> None:
    k = 0.01
    spec = GridSpec(-10.0, -10.0, 0.5, 200, 200)                        # x, y -10..90 m
    xc, yc = spec.cell_centers_map()
    along, across = path_coordinates(xc, yc, 0.0, k)
    in_lane = (np.abs(along - 60.0) <= 2.0) & (np.abs(across) <= 0.8)
    beside = (np.abs(along - 30.0) <= 2.0) & (np.abs(across - 3.5) <= 0.8)
    g = np.where(in_lane | beside, 90, 0).astype(np.int8)
    assert nearest_in_corridor(g, spec, 0.0, 0.0, 0.0, 3.5, curvature_per_m=k) == pytest.approx(54.5, abs=0.5)
    assert nearest_in_corridor(g, spec, 0.0, 0.0, 0.0, 3.5) is None     # the straight corridor misses both
    with pytest.raises(ConfigError, match='curvature must be finite'):
        nearest_in_corridor(g, spec, 0.0, 0.0, 0.0, 3.5, curvature_per_m=math.nan)
