"""The twin's grid mirror and self-check without ROS: stamp checks, restarts, gaps, checksum, scores."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cooperative_fusion.core.drops import DroppedInput
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.twin.mirror import RESTART_NS, GridMirror, grid_checksum
from cooperative_fusion.core.twin.self_check import SelfCheck, horizon_key, overlap

MS = 1_000_000
S = 1_000_000_000
T0 = 100 * S
SPEC = GridSpec(0.0, 0.0, 0.5, 8, 4)


def mirror() -> GridMirror:
    return GridMirror(future_tolerance_ns=2 * S, restart_grids=3, gap_factor=2.5)


def test_checksum_names_geometry_and_cells():
    cells = np.arange(32, dtype=np.int8).reshape(4, 8)
    assert grid_checksum(SPEC, cells) == grid_checksum(SPEC, cells.copy())
    assert grid_checksum(SPEC, cells) != grid_checksum(GridSpec(0.5, 0.0, 0.5, 8, 4), cells)
    other = cells.copy()
    other[3, 7] = -1
    assert grid_checksum(SPEC, cells) != grid_checksum(SPEC, other)
    m = mirror()
    assert m.checksum() is None
    m.store(SPEC, cells, T0, T0)
    assert m.checksum() == grid_checksum(SPEC, cells) and m.received == 1


def test_future_out_of_order_and_stale_grids_are_refused_by_cause():
    m = mirror()
    with pytest.raises(DroppedInput, match=r'2.5 s ahead of the node clock \(tolerance 2 s\)') as e:
        m.admit(T0 + 2_500 * MS, T0, None)
    assert e.value.cause == 'future'
    assert m.admit(T0, T0, None) is None
    m.store(SPEC, np.zeros(SPEC.shape, np.int8), T0, T0)
    with pytest.raises(DroppedInput, match='older than the latest') as e:
        m.admit(T0 - MS, T0, None)
    assert e.value.cause == 'out_of_order'
    with pytest.raises(DroppedInput, match='not newer than the last cycle'):
        m.admit(T0 + 100 * MS, T0, last_cycle_ns=T0 + 100 * MS)
    with pytest.raises(DroppedInput, match=r'6.0 s before the latest; 3 such grids in a row restart') as e:
        m.admit(T0 - 6 * S, T0, None)
    assert e.value.cause == 'too_old' and m.stamp_ns == T0


def test_three_stale_grids_in_a_row_each_newer_confirm_a_restart():
    m = mirror()
    m.store(SPEC, np.zeros(SPEC.shape, np.int8), T0, T0)
    old = T0 - 20 * S
    for k in range(2):
        with pytest.raises(DroppedInput):
            m.admit(old + k * 100 * MS, T0, None)
    with pytest.raises(DroppedInput):                       # not newer than the one before: the run restarts
        m.admit(old, T0, None)
    for k in range(1, 2):
        with pytest.raises(DroppedInput):
            m.admit(old + k * 100 * MS, T0, None)
    assert m.admit(old + 2 * 100 * MS, T0, None) == T0 - (old + 200 * MS)
    assert m.stamp_ns is None and m.cells is None
    assert RESTART_NS == 5 * S


def test_gaps_are_intervals_above_gap_factor_times_the_median():
    m = mirror()
    for k in range(6):
        m.note_arrival(T0 + k * 100 * MS)
    assert m.gaps == 0 and m.median_period_ns() == 100 * MS
    m.note_arrival(T0 + 900 * MS)
    assert m.gaps == 1 and m.max_gap_s == pytest.approx(0.4)


def test_self_check_scores_each_prediction_once_against_the_grid_at_its_target():
    check = SelfCheck((0.5, 1.0))
    pred = np.zeros(SPEC.shape, np.int8)
    pred[1:3, 2:5] = 90                                          # 6 cells predicted occupied
    check.expect(0.5, T0, SPEC, pred)
    check.expect(1.0, T0 + 500 * MS, SPEC, pred)
    obs = np.zeros(SPEC.shape, np.int8)
    obs[1:3, 3:6] = 100                                          # 4 of them observed, 2 observed elsewhere
    check.observe(SPEC, obs, T0 + 40 * MS, 100 * MS)             # within half a period of T0
    values = check.values()
    assert values['self_check.iou_0.5s'] == pytest.approx(4 / 8)
    assert values['self_check.brier_0.5s'] == pytest.approx((4 * 0.1 ** 2 + 2 * 0.9 ** 2 + 2 * 1.0) / 32, rel=1e-6)
    assert values['self_check.count_0.5s'] == 1 and values['self_check.count_1.0s'] == 0
    assert math.isnan(values['self_check.iou_1.0s'])
    check.observe(SPEC, obs, T0 + 600 * MS, 100 * MS)            # 100 ms after the 1.0 s target: missed
    assert check.values()['self_check.missed'] == 1 and check.values()['self_check.count_1.0s'] == 0


def test_self_check_scores_over_the_overlap_of_shifted_grids():
    check = SelfCheck((0.5,))
    shifted = GridSpec(1.0, 0.5, 0.5, 8, 4)                     # 2 cells right, 1 up
    assert overlap(SPEC, shifted) == ((slice(1, 4), slice(2, 8)), (slice(0, 3), slice(0, 6)))
    assert overlap(SPEC, GridSpec(10.0, 0.0, 0.5, 8, 4)) is None
    pred = np.full(SPEC.shape, 100, np.int8)
    check.expect(0.5, T0, shifted, pred)
    check.observe(SPEC, np.full(SPEC.shape, 100, np.int8), T0, 100 * MS)
    assert check.values()['self_check.iou_0.5s'] == 1.0
    check.expect(0.5, T0 + S, GridSpec(0.1, 0.0, 0.5, 8, 4), pred)       # off the lattice: missed
    check.observe(SPEC, np.zeros(SPEC.shape, np.int8), T0 + S, 100 * MS)
    assert check.values()['self_check.missed'] == 1


def test_horizon_key():
    assert [horizon_key(h) for h in (1.0, 0.5, 0.25, 3)] == ['1.0', '0.5', '0.25', '3.0']
