"""Consumers of GridSpec on grids turned by a yaw: the same map objects give the same answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.metrics import Box, footprint_mask, overlay
from cooperative_fusion.core.twin.prediction import rasterise_boxes
from cooperative_fusion.core.twin.tracking import OrientedBox, extract_detections

YAW = math.radians(30.0)
CAR = Box(1050.0, -770.0, 4.5, 1.8, YAW + 0.05, id='car')


def _turned() -> GridSpec:
    return GridSpec.centered(1050.0, -770.0, 40.0, 20.0, 0.2, yaw=YAW)


def test_footprint_on_a_turned_grid_covers_the_box_area():
    spec = _turned()
    mask = footprint_mask(spec, [CAR])
    assert mask.sum() * 0.04 == pytest.approx(4.5 * 1.8, rel=0.08)
    x, y = spec.cell_centers_map()
    inside = np.array([CAR.contains(np.array([a, b])) for a, b in zip(x[mask], y[mask])])
    assert inside.all()


def test_overlay_between_yaws_resamples():
    flat = GridSpec.centered(1050.0, -770.0, 60.0, 60.0, 0.2)
    cells = np.where(footprint_mask(flat, [CAR]), 100, 0).astype(np.int8)
    on_turned = overlay(flat, cells, _turned())
    # Nearest cell: the box drawn on the turned lattice within a cell of its true footprint.
    truth = footprint_mask(_turned(), [CAR])
    assert (on_turned >= 0).all()
    assert abs(int((on_turned == 100).sum()) - int(truth.sum())) <= 0.15 * truth.sum()
    assert ((on_turned == 100) & truth).sum() >= 0.8 * truth.sum()


def test_detections_and_rasterised_boxes_on_a_turned_grid_are_in_map():
    spec = _turned()
    cells = np.where(footprint_mask(spec, [CAR]), 100, 0).astype(np.int8)
    det = extract_detections(cells, spec)
    assert len(det.xy) == 1
    assert_allclose(det.xy[0], [CAR.center_x, CAR.center_y], atol=0.15)
    assert det.length[0] == pytest.approx(4.5, abs=0.4) and det.width[0] == pytest.approx(1.8, abs=0.4)
    prob = rasterise_boxes(spec, [CAR.center_x], [CAR.center_y], [4.5], [1.8], [CAR.yaw], [0.05])
    ix, iy = spec.world_to_cell(np.array([[CAR.center_x, CAR.center_y], [CAR.center_x + 5.0, CAR.center_y]]))
    assert prob[iy[0], ix[0]] > 0.99 and prob[iy[1], ix[1]] < 0.01
    # Excluding the box removes the detection.
    assert len(extract_detections(cells, spec, exclude_boxes=[OrientedBox(CAR.center_x, CAR.center_y, 4.5, 1.8,
                                                                          CAR.yaw)]).xy) == 0
