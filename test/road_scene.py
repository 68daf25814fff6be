"""Test scenes on a road model: a map grid that covers a stretch of road."""
from __future__ import annotations

import numpy as np

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.road import RoadModel


def grid_along_road(road: RoadModel, length_m: float, half_width_m: float, resolution_m: float,
                    samples: int) -> GridSpec:
    """An axis-aligned map grid covering ``road`` from 0 to ``length_m`` along it and ``half_width_m`` to
    each side (``samples`` points along each edge), origin on whole metres, a cell of margin."""
    s = np.linspace(0.0, length_m, samples)
    xs, ys = [], []
    for d in (-half_width_m, half_width_m):
        x, y, _ = road.to_map(s, np.full(s.shape, d))
        xs.append(x)
        ys.append(y)
    x0, y0 = float(np.floor(np.min(xs))), float(np.floor(np.min(ys)))
    return GridSpec(x0, y0, resolution_m, int((np.max(xs) - x0) / resolution_m) + 2,
                    int((np.max(ys) - y0) / resolution_m) + 2)
