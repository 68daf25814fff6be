from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cooperative_fusion.core.twin.tracking import label_components


def _whole_grid(occupied: np.ndarray, reach: int | tuple[int, int]) -> tuple[np.ndarray, int]:
    """The straightforward version: dilate and label the whole grid."""
    eight = np.ones((3, 3), dtype=bool)
    rr, rc = (reach, reach) if isinstance(reach, int) else reach
    if (rr > 0 or rc > 0) and occupied.any():
        grown = ndimage.binary_dilation(occupied, structure=np.ones((2 * rr + 1, 2 * rc + 1), dtype=bool))
        labels, n = ndimage.label(grown, structure=eight)
        labels[~occupied] = 0
        return labels, n
    return ndimage.label(occupied, structure=eight)


@pytest.mark.parametrize('reach', [0, 1, 2, 3, (0, 2), (1, 2), (2, 0)])
@pytest.mark.parametrize('seed', range(12))
def test_window_labels_equal_whole_grid_labels(seed: int, reach: int | tuple[int, int]) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 40)), int(rng.integers(1, 60))
    occupied = np.zeros((h, w), bool)
    r0, r1 = sorted(rng.integers(0, h + 1, 2))
    c0, c1 = sorted(rng.integers(0, w + 1, 2))
    occupied[r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) < rng.uniform(0.05, 0.5)
    expected, n_expected = _whole_grid(occupied, reach)
    window, n, row0, col0 = label_components(occupied, reach)
    full = np.zeros_like(expected)
    full[row0:row0 + window.shape[0], col0:col0 + window.shape[1]] = window
    assert n == n_expected
    np.testing.assert_array_equal(full, expected)


def test_cells_on_the_grid_border_and_empty_grid() -> None:
    occupied = np.zeros((6, 7), bool)
    assert label_components(occupied, 2)[1] == 0
    occupied[0, 0] = occupied[5, 6] = occupied[0, 2] = True
    window, n, row0, col0 = label_components(occupied, 1)
    assert (n, row0, col0, window.shape) == (2, 0, 0, (6, 7))
    assert window[0, 0] == window[0, 2] == 1 and window[5, 6] == 2


def test_reach_across_rows_and_along_columns() -> None:
    occupied = np.zeros((12, 20), bool)
    occupied[2:4, 2:6] = occupied[2:4, 9:12] = True      # 3 columns apart: pieces one behind the other
    occupied[7:9, 2:6] = True                             # 3 rows below the first: another lane
    assert label_components(occupied, 2)[1] == 1
    labels, n, _, _ = label_components(occupied, (1, 2))
    assert n == 2 and labels[2, 2] == labels[2, 9] != labels[7, 2]


@pytest.mark.parametrize('seed', range(20))
def test_rectangular_dilation_equals_the_maximum_filter(seed: int) -> None:
    from cooperative_fusion.core.morphology import dilate_rect

    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 30, 2))
    mask = rng.random((h, w)) < rng.uniform(0.0, 0.3)
    for rr, rc in ((0, 0), (1, 2), (2, 1), (0, 3), (4, 0), (35, 35)):
        want = ndimage.maximum_filter(mask, size=(2 * rr + 1, 2 * rc + 1), mode='constant', cval=False)
        np.testing.assert_array_equal(dilate_rect(mask, rr, rc), want)
