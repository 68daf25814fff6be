"""Random sensor scenes for the evidence tests: a window on the lattice, a sensor and its returns."""
from __future__ import annotations

import math

import numpy as np

from cooperative_fusion.core.grid import GridSpec


def random_sensor_scene(rng: np.random.Generator) -> tuple[GridSpec, np.ndarray, np.ndarray, np.ndarray]:
    """A window on the lattice, a sensor inside or outside it, clutter hits and free end points around it:
    ``(spec, origin (2,), hits (N, 2), free (M, 2))``."""
    spec = GridSpec(0.2 * int(rng.integers(-500, 500)), 0.2 * int(rng.integers(-200, 200)), 0.2,
                    int(rng.integers(20, 400)), int(rng.integers(20, 200)))
    origin = np.array([spec.origin_x + rng.uniform(-20, spec.size_x + 20),
                       spec.origin_y + rng.uniform(-20, spec.size_y + 20)])
    az = rng.uniform(-math.pi, math.pi, int(rng.integers(0, 3000)))
    r = rng.uniform(0, 120, az.size)
    pts = origin + np.column_stack([r * np.cos(az), r * np.sin(az)])
    split = rng.random(az.size) < 0.3
    return spec, origin, pts[split], pts[~split]
