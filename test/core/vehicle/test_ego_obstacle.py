"""nearest_in_corridor: the nearest occupied cells in the lane ahead of a vehicle, from its evidence grid."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.ego_obstacle import nearest_in_corridor

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
