"""Where the common window lies: along the road the platoon drives on, at any heading, straight or curved.

The road is taken from the platoon itself (a real platoon has no scenario file): the members' positions
and headings give the road's heading at the centroid and its curvature (heading change per metre along
the platoon). The window covers the road from ``forward_offset_m - size_x_m / 2`` to
``forward_offset_m + size_x_m / 2`` along it (with the defaults, 80 m behind the centroid to 160 m ahead).
On a straight road it is the rectangle of that length turned by the road heading in whole steps
(:func:`~cooperative_fusion.core.grid.follow_yaw`); on a curve it is aligned with the chord of that arc
and widened by the arc's bulge, so the whole stretch stays inside.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..grid import GridSpec, follow_yaw, wrap_angle

#: Members spread less than this along the road (metres) give no curvature.
MIN_SPAN_M = 10.0
#: Points sampled along a curved stretch to cover.
ARC_SAMPLES = 25


@dataclass(frozen=True)
class RoadWindowConfig:
    """size_x_m along the road, size_y_m across it, metres; resolution_m; forward_offset_m: the window's
    middle ahead of the centroid along the road, metres; yaw_step_deg, yaw_hysteresis_deg: the yaw steps
    (:func:`~cooperative_fusion.core.grid.follow_yaw`), degrees; straight_max_curvature_per_m: a fitted
    curvature below this is a straight road (1/m)."""

    size_x_m: float
    size_y_m: float
    resolution_m: float
    forward_offset_m: float
    yaw_step_deg: float = 2.0
    yaw_hysteresis_deg: float = 0.5
    straight_max_curvature_per_m: float = 5e-4

    def __post_init__(self) -> None:
        if not (0.0 < self.yaw_step_deg <= 90.0 and self.yaw_hysteresis_deg >= 0.0
                and self.straight_max_curvature_per_m >= 0.0):
            raise ConfigError(f'road window: yaw_step_deg must be in (0, 90], yaw_hysteresis_deg and '
                              f'straight_max_curvature_per_m >= 0; got {self.yaw_step_deg!r}, '
                              f'{self.yaw_hysteresis_deg!r}, {self.straight_max_curvature_per_m!r}')


def platoon_road(positions: Sequence[NDArray[np.floating]], yaws: Sequence[float]
                 ) -> tuple[NDArray[np.float64], float, float]:
    """The road at the platoon: centroid (2,) metres, road heading there (rad) and curvature (1/m, > 0
    turning left), by a least-squares line of heading against distance along the mean heading."""
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    yaw = np.asarray(yaws, dtype=np.float64).reshape(-1)
    p = pos.mean(axis=0)
    mean = math.atan2(float(np.mean(np.sin(yaw))), float(np.mean(np.cos(yaw))))
    u = np.array([math.cos(mean), math.sin(mean)])
    s = (pos - p) @ u
    dev = np.array([wrap_angle(float(y) - mean) for y in yaw])
    if pos.shape[0] < 2 or float(s.max() - s.min()) < MIN_SPAN_M:
        return p, mean, 0.0
    sc = s - s.mean()
    kappa = float(sc @ (dev - dev.mean()) / (sc @ sc))
    return p, wrap_angle(mean + float(dev.mean()) - kappa * float(s.mean())), kappa


def road_window(positions: Sequence[NDArray[np.floating]], yaws: Sequence[float], cfg: RoadWindowConfig,
                current_yaw: float | None = None) -> tuple[NDArray[np.float64], GridSpec]:
    """The common window for members at ``positions`` (N, 2) metres with headings ``yaws`` (N,) rad.

    current_yaw : the window's yaw now (hysteresis), None before the first window
    Returns (the window's centre in map (2,) metres, the window).
    """
    p, heading, kappa = platoon_road(positions, yaws)
    step, hyst = math.radians(cfg.yaw_step_deg), math.radians(cfg.yaw_hysteresis_deg)
    if abs(kappa) < cfg.straight_max_curvature_per_m:
        # The centre as the axis-aligned window has always had it: along the mean of the heading vectors.
        h = np.array([np.mean(np.cos(yaws)), np.mean(np.sin(yaws))])
        n = float(np.hypot(*h))
        center = p + (cfg.forward_offset_m * h / n if n > 1e-6 else 0.0)
        yaw = follow_yaw(heading, step, current_yaw, hyst)
        return center, GridSpec.centered(float(center[0]), float(center[1]), cfg.size_x_m, cfg.size_y_m,
                                         cfg.resolution_m, yaw)
    t = cfg.forward_offset_m + cfg.size_x_m * np.linspace(-0.5, 0.5, ARC_SAMPLES)
    th = heading + kappa * t
    x = p[0] + (np.sin(th) - math.sin(heading)) / kappa
    y = p[1] - (np.cos(th) - math.cos(heading)) / kappa
    pts = np.stack([x, y], axis=1)
    chord = math.atan2(float(y[-1] - y[0]), float(x[-1] - x[0]))
    yaw = follow_yaw(chord, step, current_yaw, hyst)
    # At the ends the road is turned against the chord by half the arc's angle: its edges reach that
    # much further along the chord.
    margin_x = 0.5 * cfg.size_y_m * abs(math.sin(0.5 * kappa * cfg.size_x_m))
    spec = GridSpec.covering(pts, margin_x, 0.5 * cfg.size_y_m, cfg.resolution_m, yaw)
    return spec.to_map_frame(np.array([spec.origin_x + 0.5 * spec.size_x, spec.origin_y + 0.5 * spec.size_y])), spec
