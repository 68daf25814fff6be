"""A co-registration test scene shared by the core and node tests: five cars and a guard rail near x = 520 m."""
from __future__ import annotations

import math

import numpy as np

from cooperative_fusion.core.grid import GridSpec

RES = 0.2
FREE, OCC = 20, 90

CO_SPEC = GridSpec(490.0, -10.0, RES, 300, 100)    # x 490..550, y -10..10
V1_XY = np.array([518.0, 0.0])


def box_outline(cx: float, cy: float, length: float, width: float, yaw: float) -> np.ndarray:
    """Closed outline (5, 2) of a box, metres (first corner repeated)."""
    hl, hw = length / 2, width / 2
    corners = np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw], [-hl, -hw]])
    c, s = math.cos(yaw), math.sin(yaw)
    return corners @ np.array([[c, -s], [s, c]]).T + (cx, cy)


def scene() -> list[np.ndarray]:
    """Five cars on a three-lane road near x = 520 m and a guard rail (test_coregistration.py's)."""
    cars = [box_outline(510.0, 3.5, 4.5, 1.9, 0.05), box_outline(525.0, 0.0, 4.6, 1.8, -0.02),
            box_outline(540.0, -3.5, 12.0, 2.5, 0.0), box_outline(532.0, 3.6, 4.2, 1.8, 0.1),
            box_outline(503.0, -3.4, 4.4, 1.9, 0.0)]
    return cars + [np.array([[495.0, 6.5], [545.0, 6.5]])]


def rotate_about(p: np.ndarray, c: np.ndarray, yaw: float) -> np.ndarray:
    cs, sn = math.cos(yaw), math.sin(yaw)
    return (p - c) @ np.array([[cs, -sn], [sn, cs]]).T + c


def rasterise(points: np.ndarray) -> np.ndarray:
    """Percent cells of CO_SPEC: the cells hit by points occupied, all else free."""
    cells = np.full(CO_SPEC.shape, FREE, dtype=np.int8)
    ix, iy = CO_SPEC.world_to_cell(points)
    ok = CO_SPEC.in_bounds(ix, iy)
    cells[iy[ok], ix[ok]] = OCC
    return cells


def dense(parts: list[np.ndarray]) -> np.ndarray:
    """The outlines resampled at 5 cm so every crossed cell is hit."""
    out = []
    for p in parts:
        seg = np.diff(p, axis=0)
        n = np.maximum(np.ceil(np.hypot(*seg.T) / 0.05).astype(int), 1)
        for a, d, k in zip(p[:-1], seg, n):
            out.append(a + d * (np.arange(k) / k)[:, None])
    return np.concatenate(out)
