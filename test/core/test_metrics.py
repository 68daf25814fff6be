from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.metrics import (SENSOR_HEIGHT_M, Accumulator, Box, TruthFrame, footprint_mask,
                                             hidden_from, overlay, segments_blocked)

SPEC = GridSpec(0.0, 0.0, 1.0, 10, 10)
A = Box(3.0, 2.5, 2.0, 1.0, id='a', kind='car')     # footprint cells (iy 2, ix 2..3)
B = Box(7.0, 7.5, 2.0, 1.0, id='b', kind='car')     # footprint cells (iy 7, ix 6..7)


def hand_grid() -> np.ndarray:
    """The grid worked through in test_hand_counts (see the comments there)."""
    cells = np.full(SPEC.shape, 20, np.int8)
    cells[9, :] = -1
    cells[9, 0] = 90          # stray occupied cell, far from any object
    cells[2, 2] = cells[2, 3] = 90
    cells[1, 2] = 80          # in A's one-cell ring
    cells[7, 6] = 70
    cells[7, 7] = -1
    cells[6, 6] = 70          # B has two occupied cells: not enough
    cells[5, 5] = 50          # observed, neither free nor occupied
    return cells


def test_footprint_mask_and_dilation():
    m = footprint_mask(SPEC, [A])
    assert_array_equal(np.argwhere(m), [[2, 2], [2, 3]])
    d = footprint_mask(SPEC, [A], dilate_cells=1)
    assert d.sum() == 12 and d[1:4, 1:5].all()
    # A box smaller than a cell still marks the cell holding its centre.
    tiny = footprint_mask(SPEC, [Box(5.2, 5.9, 0.3, 0.3)])
    assert_array_equal(np.argwhere(tiny), [[5, 5]])
    # A rotated box: 45° square of side 2·sqrt(2) covers the centres within |x|+|y| <= 2.
    diamond = footprint_mask(SPEC, [Box(5.0, 5.0, 2 * math.sqrt(2), 2 * math.sqrt(2), math.pi / 4)])
    assert diamond.sum() == 12
    with pytest.raises(ConfigError, match='dilate_cells must be >= 0, got -1'):
        footprint_mask(SPEC, [A], -1)


def test_hand_counts():
    acc = Accumulator()
    acc.add(TruthFrame(SPEC, [A, B]), hand_grid())
    r = acc.report()
    assert r['object_recall'] == 0.5                   # A has 3 occupied cells in its dilated footprint, B 2
    assert_allclose(r['occupied_precision'], 5 / 6)    # 6 occupied, the stray one is not near the truth
    # observed = 100 - 10 (row 9) + 1 (stray) - 1 ((7,7)) = 90; truly free observed = 90 - 3 = 87;
    # of these, (1,2), (6,6), (9,0) are occupied and (5,5) is 50: 83 marked free.
    assert_allclose(r['free_accuracy'], 83 / 87)
    # observed predicted occupied 6, observed true occupied 3, all 3 predicted: IoU 3 / 6.
    assert_allclose(r['occupancy_iou'], 0.5)
    assert r['see_through_recall'] == {'mean': None}
    assert not any(k.startswith('ego_only_') for k in r)


def test_roi_restricts_objects_and_cells():
    roi = np.zeros(SPEC.shape, bool)
    roi[:5, :5] = True
    acc = Accumulator()
    acc.add(TruthFrame(SPEC, [A, B], roi=roi), hand_grid())
    r = acc.report()
    assert r['object_recall'] == 1.0                   # only A is inside
    assert r['occupied_precision'] == 1.0              # (2,2), (2,3), (1,2)
    assert_allclose(r['free_accuracy'], 22 / 23)       # 25 - 2 true occupied = 23; (1,2) is not free
    assert_allclose(r['occupancy_iou'], 2 / 3)


def test_sums_over_frames_and_empty_ratios():
    acc = Accumulator()
    assert acc.report()['object_recall'] is None
    acc.add(TruthFrame(SPEC, [A, B]), hand_grid())
    acc.add(TruthFrame(SPEC, [A, B]), np.full(SPEC.shape, -1, np.int8))
    r = acc.report()
    assert r['object_recall'] == 0.25 and acc.frames == 2
    assert_allclose(r['occupied_precision'], 5 / 6)    # the empty frame adds nothing


def test_overlay_and_grids_on_another_window():
    small = GridSpec(2.0, 1.0, 1.0, 3, 3)
    cells = np.full(small.shape, 90, np.int8)
    out = overlay(small, cells, SPEC)
    assert (out[1:4, 2:5] == 90).all() and (out == 90).sum() == 9 and (out == -1).sum() == 91
    acc = Accumulator()
    acc.add(TruthFrame(SPEC, [A]), cells, spec=small)
    r = acc.report()
    assert r['object_recall'] == 1.0
    assert_allclose(r['occupied_precision'], 1.0)      # all 9 lie in A's dilated footprint (rows 1..3, cols 1..4)
    with pytest.raises(ConfigError, match='off the lattice'):
        overlay(GridSpec(0.5, 0.0, 1.0, 3, 3), cells, SPEC)


TRUCK = Box(10.0, 0.0, 4.0, 3.0, id='truck')
HIDDEN = Box(20.0, 0.0, 4.0, 2.0, id='hidden')
HALF = Box(20.0, 3.5, 4.0, 2.0, id='half')
VISIBLE = Box(20.0, 8.0, 4.0, 2.0, id='visible')
EGO = Box(0.0, 0.0, 4.0, 2.0, id='v1')               # v1's own body, around its sensor


def test_segments_blocked_slab_test():
    ends = np.array([[20.0, 0.0], [20.0, 8.0], [9.0, 0.0], [5.0, 0.0]])
    blocked = segments_blocked(np.zeros(2), ends, [TRUCK, VISIBLE])
    # The second segment ends at VISIBLE's centre, so it enters VISIBLE itself.
    assert_array_equal(blocked, [[True, False], [False, True], [True, False], [False, False]])
    # Axis-parallel segment beside the box (the parallel branch).
    assert not segments_blocked(np.array([0.0, 2.0]), np.array([[20.0, 2.0]]), [TRUCK]).any()
    assert segments_blocked(np.array([0.0, 1.0]), np.array([[20.0, 1.0]]), [TRUCK]).all()


def test_see_through_and_ego_only_baselines():
    spec = GridSpec(-5.0, -10.0, 0.5, 70, 40)
    boxes = [EGO, TRUCK, HIDDEN, HALF, VISIBLE]
    truth = TruthFrame(spec, boxes, sensors={'v1': np.zeros(2), 'v2': np.array([10.0, -20.0])})
    assert_array_equal(truth.occluded['v1'], [False, False, True, False, False])   # own body excluded
    assert not truth.occluded['v2'].any()
    fused = np.where(footprint_mask(spec, boxes), 90, 10).astype(np.int8)
    ego = fused.copy()
    ego[footprint_mask(spec, [HIDDEN], 1)] = -1                          # v1 cannot see the hidden car
    acc = Accumulator()
    acc.add(truth, fused)
    acc.add(truth, ego, ego_vehicle='v1')
    acc.add(truth, fused, ego_vehicle='v2')
    r = acc.report()
    assert r['object_recall'] == 1.0
    assert r['see_through_recall'] == {'v1': 1.0, 'v2': None, 'mean': 1.0}
    assert r['ego_only_see_through_recall'] == {'v1': 0.0, 'v2': None, 'mean': 0.0}
    assert r['ego_only_object_recall'] == {'v1': 0.8, 'v2': 1.0}
    assert set(r) == {'object_recall', 'see_through_recall', 'occupied_precision', 'free_accuracy',
                      'occupancy_iou', 'ego_only_object_recall', 'ego_only_see_through_recall',
                      'ego_only_occupied_precision', 'ego_only_free_accuracy', 'ego_only_occupancy_iou',
                      'see_through_object_recall', 'occupied_precision_away_from_platoon',
                      'moving_position_error_m'}
    assert r['occupied_precision'] == 1.0 and r['free_accuracy'] == 1.0 and r['occupancy_iou'] == 1.0
    assert r['ego_only_occupancy_iou']['v2'] == 1.0
    with pytest.raises(ConfigError, match="vehicle 'v3' has no sensor position"):
        acc.add(truth, fused, ego_vehicle='v3')


def test_box_validation():
    assert_allclose(Box(0.0, 0.0, 4.0, 2.0).corners(), [[-2, -1], [2, -1], [2, 1], [-2, 1]])
    assert Box(0.0, 0.0, 4.0, 2.0).outline_samples(8).shape == (32, 2)
    with pytest.raises(ConfigError, match=r"box 'x' needs a positive finite size, got 0.0 x 1.0"):
        Box(0.0, 0.0, 0.0, 1.0, id='x')
    with pytest.raises(ConfigError, match=r'roi shape \(2, 2\) does not match'):
        TruthFrame(SPEC, [A], roi=np.ones((2, 2), bool))


# ----------------------------------------------------------------- issue 13: the keys that must not flatter

def test_hidden_in_3d_against_the_boxes_heights():
    """A 3.8 m truck hides a car behind it; a 1.5 m car does not hide a 3.8 m truck, nor a car 40 m beyond it
    from a 2 m roof sensor... unless the car behind is close to it (the sight line stays below 1.5 m)."""
    sensor = np.array([0.0, 0.0, SENSOR_HEIGHT_M])
    truck = Box(15.0, 0.0, 12.0, 2.5, id='truck', height=3.8)
    car_behind_truck = Box(35.0, 0.0, 4.5, 1.8, id='car', height=1.5)
    low = Box(10.0, 0.0, 4.5, 1.8, id='low', height=1.5)
    tall_beyond = Box(40.0, 0.0, 12.0, 2.5, id='tall', height=3.8)
    flat_beyond = Box(14.0, 0.0, 4.5, 1.8, id='flat', height=1.0)
    boxes = [truck, car_behind_truck]
    assert_array_equal(hidden_from(sensor, boxes, np.array([True, True])), [False, True])
    boxes = [low, tall_beyond, flat_beyond]
    # In 2-D all three would hide each other in a row; in 3-D the low car hides only the lower car just behind it.
    got = hidden_from(sensor, boxes, np.ones(3, bool))
    assert_array_equal(got, [False, False, True])
    # Unknown heights (0) fall back to walls: the 2-D rule.
    walls = [Box(10.0, 0.0, 4.5, 1.8, id='a'), Box(40.0, 0.0, 4.5, 1.8, id='b')]
    assert_array_equal(hidden_from(sensor, walls, np.ones(2, bool)), [False, True])


def test_see_through_object_recall_needs_3_cells_on_the_object_itself():
    spec = GridSpec(-5.0, -10.0, 0.5, 100, 40)
    ego = Box(0.0, 0.0, 4.5, 1.8, id='v3', height=1.5)
    truck = Box(15.0, 0.0, 12.0, 2.5, id='v2', height=3.8)
    car = Box(35.0, 0.0, 4.5, 1.8, id='h1', height=1.5)
    truth = TruthFrame(spec, [ego, truck, car], sensors={'v3': np.array([1.0, 0.0]), 'v2': np.array([19.5, 0.0])})
    assert_array_equal(truth.hidden['v3'], [False, False, True])
    assert not truth.hidden['v2'].any()
    cells = np.where(footprint_mask(spec, [ego, truck]), 90, 10).astype(np.int8)
    # The car drawn one cell beside its box (its dilated ring only): see_through_recall counts it, this does not.
    ring = footprint_mask(spec, [car], 1) & ~footprint_mask(spec, [car])
    cells[ring] = 90
    acc = Accumulator()
    acc.add(truth, cells)
    r = acc.report()
    assert r['see_through_recall']['v3'] == 1.0
    assert r['see_through_object_recall'] == {'v2': None, 'v3': 0.0, 'mean': 0.0}
    cells[footprint_mask(spec, [car])] = 90
    acc = Accumulator()
    acc.add(truth, cells)
    assert acc.report()['see_through_object_recall']['v3'] == 1.0


def test_precision_away_from_the_platoon_and_moving_position_error():
    spec = GridSpec(-5.0, -10.0, 0.5, 100, 40)
    v1 = Box(0.0, 0.0, 4.5, 1.8, id='v1', height=1.5, vx=25.0)
    t1 = Box(20.0, 3.5, 4.5, 1.8, id='t1', height=1.5, vx=27.0)        # traffic, next lane
    truth = TruthFrame(spec, [v1, t1], sensors={'v1': np.array([1.0, 0.0])})
    # The platoon car drawn right (45 cells: area 4.5 x 1.8 m at 0.5 m), t1 drawn 2 m behind its position.
    cells = np.where(footprint_mask(spec, [v1]), 90, 10).astype(np.int8)
    lagging = Box(18.0, 3.5, 4.5, 1.8)
    cells[footprint_mask(spec, [lagging])] = 90
    acc = Accumulator()
    acc.add(truth, cells)
    r = acc.report()
    on_platoon = int(footprint_mask(spec, [v1]).sum())
    drawn = footprint_mask(spec, [lagging])
    good = int((drawn & footprint_mask(spec, [t1], 1)).sum())
    assert r['occupied_precision'] == pytest.approx((on_platoon + good) / (on_platoon + int(drawn.sum())))
    assert r['occupied_precision_away_from_platoon'] == pytest.approx(good / int(drawn.sum()))
    assert r['occupied_precision_away_from_platoon'] < r['occupied_precision']
    # Cells 0..2 m behind t1's rear (cell centres 0.25..1.75 m), the rest on it: mean distance of the drawn cells.
    xs = spec.origin_x + (np.nonzero(drawn)[1] + 0.5) * spec.resolution
    expect = float(np.maximum(t1.center_x - 2.25 - xs, 0.0).mean())
    assert r['moving_position_error_m'] == pytest.approx(expect)
    assert 0.3 < expect < 0.6
    # Drawn on position: no error. Nothing moving: no value.
    cells = np.where(footprint_mask(spec, [v1, t1]), 90, 10).astype(np.int8)
    acc = Accumulator()
    acc.add(truth, cells)
    assert acc.report()['moving_position_error_m'] == 0.0
    acc = Accumulator()
    acc.add(TruthFrame(spec, [v1], sensors={'v1': np.array([1.0, 0.0])}), cells)
    assert acc.report()['moving_position_error_m'] is None
