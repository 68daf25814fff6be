"""The self-check's scores from percent cells equal prediction.iou of the grids bit for bit, and prediction.brier
to 1e-6 (the self-check sums in float64, prediction.brier takes a float32 mean)."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.twin.prediction import brier, iou
from cooperative_fusion.core.twin.self_check import SelfCheck, _iou_brier_percent


def test_occupied_percent_is_the_half_threshold_for_every_int8() -> None:
    c = np.arange(-128, 128).astype(np.int8)
    np.testing.assert_array_equal(c.astype(np.float32) / np.float32(100.0) >= 0.5, c >= 50)
    np.testing.assert_array_equal(c.astype(np.float32) / 100.0 >= 0.5, c >= 50)


@pytest.mark.parametrize('zeros', [0.0, 0.8, 1.0])
@pytest.mark.parametrize('seed', range(6))
def test_percent_scores_equal_iou_and_brier(seed: int, zeros: float) -> None:
    rng = np.random.default_rng(seed)
    shape = (60, 90)
    observed = np.where(rng.random(shape) < 0.3, -1, rng.integers(0, 101, shape)).astype(np.int8)
    observed[0, :5] = [101, 120, 127, -128, -5]                     # out of range: not observed cells
    predicted = np.where(rng.random(shape) < zeros, 0, rng.integers(0, 101, shape)).astype(np.int8)
    prob = predicted.astype(np.float32) / np.float32(100.0)
    known = (observed >= 0) & (observed <= 100)
    got = _iou_brier_percent(predicted[known], observed[known] >= 50)
    want_iou = iou(prob, observed)
    assert got[0] == want_iou or (np.isnan(got[0]) and np.isnan(want_iou))
    np.testing.assert_allclose(got[1], brier(prob, observed), rtol=1e-6)
    # the same through the self-check, on the whole grids
    check = SelfCheck((1.0,))
    spec = GridSpec(0.0, 0.0, 0.5, shape[1], shape[0])
    check.expect(1.0, 1_000_000_000, spec, predicted)
    check.observe(spec, observed, 1_000_000_000, 100_000_000)
    values = check.values()
    assert values['self_check.iou_1.0s'] == want_iou or np.isnan(want_iou)
    np.testing.assert_allclose(values['self_check.brier_1.0s'], brier(prob, observed), rtol=1e-6)


def test_scores_over_no_observed_cell_are_nan() -> None:
    got = _iou_brier_percent(np.zeros(0, np.int8), np.zeros(0, bool))
    assert np.isnan(got[0]) and np.isnan(got[1])


def test_self_check_scores_a_prediction_against_the_grid_at_its_target() -> None:
    rng = np.random.default_rng(9)
    spec = GridSpec(0.0, 0.0, 0.5, 40, 20)
    observed = np.where(rng.random(spec.shape) < 0.2, -1, rng.integers(0, 101, spec.shape)).astype(np.int8)
    predicted = rng.integers(0, 101, spec.shape).astype(np.int8)
    check = SelfCheck((1.0,))
    check.expect(1.0, 2_000_000_000, spec, predicted)
    check.observe(spec, observed, 2_010_000_000, 100_000_000)
    values = check.values()
    prob = predicted.astype(np.float32) / np.float32(100.0)
    assert values['self_check.count_1.0s'] == 1
    assert values['self_check.iou_1.0s'] == iou(prob, observed)
    np.testing.assert_allclose(values['self_check.brier_1.0s'], brier(prob, observed), rtol=1e-6)
