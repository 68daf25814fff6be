"""Evidence patches: adding them in place gives the full layers' ``combine`` sum, bit for bit."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.sensor_models import (SensorModel, camera_patch, combine, default_radar_model,
                                                           lidar_patch, radar_patch)


def _scene(rng: np.random.Generator):
    spec = GridSpec(0.2 * int(rng.integers(-500, 500)), 0.2 * int(rng.integers(-200, 200)), 0.2,
                    int(rng.integers(20, 400)), int(rng.integers(20, 200)))
    origin = np.array([spec.origin_x + rng.uniform(-20, spec.size_x + 20),
                       spec.origin_y + rng.uniform(-20, spec.size_y + 20)])
    az = rng.uniform(-math.pi, math.pi, int(rng.integers(0, 3000)))
    r = rng.uniform(0, 120, az.size)
    pts = origin + np.column_stack([r * np.cos(az), r * np.sin(az)])
    split = rng.random(az.size) < 0.3
    return spec, origin, pts[split], pts[~split]


@pytest.mark.parametrize('seed', range(10))
def test_patches_added_in_place_equal_combine_of_their_layers(seed):
    rng = np.random.default_rng(seed)
    spec, origin, hits, free = _scene(rng)
    model = SensorModel(p_hit=0.85, p_miss=0.35, max_range_m=float(rng.uniform(20, 100)),
                        min_range_m=float(rng.uniform(0, 2)), azimuth_resolution_rad=math.radians(rng.uniform(0.1, 2)))
    radar = hits[:int(rng.integers(0, 30))]
    patches = [lidar_patch(spec, origin, hits, free, model),
               radar_patch(spec, radar, float(rng.choice([0.0, 0.5])), default_radar_model(),
                           static=rng.random(len(radar)) < 0.5),
               camera_patch(spec, origin, float(rng.uniform(-4, 4)), float(rng.uniform(0.2, 3)), hits, free, model)]
    want = combine([p.layer() for p in patches])
    total, known = np.zeros(spec.shape, np.float32), np.zeros(spec.shape, bool)
    for p in patches:
        p.add_to(total, known)
    assert total.tobytes() == want[0].tobytes()
    assert_array_equal(known, want[1])


def test_hits_beyond_the_reach_box_count_once_each_cell():
    # A near wall blocks the bin; a farther hit in the same bin lies outside the free cells' box, twice.
    spec = GridSpec(0.0, -10.0, 0.2, 200, 100)
    model = SensorModel(p_hit=0.85, p_miss=0.35, max_range_m=35.0, min_range_m=0.5,
                        azimuth_resolution_rad=math.radians(1.0))
    origin = np.array([1.0, 0.1])
    hits = np.array([[6.05, 0.15], [30.05, 0.15], [30.07, 0.13]])
    patch = lidar_patch(spec, origin, hits, np.zeros((0, 2)), model)
    far = 50 * 200 + 150          # the cell of (30.05, 0.15)
    assert far in patch.outside
    total = np.full(spec.shape, np.float32(0.25))
    known = np.zeros(spec.shape, bool)
    patch.add_to(total, known)
    assert total.reshape(-1)[far] == np.float32(0.25) + np.float32(model.l_hit)
    logodds, layer_known = patch.layer()
    assert logodds.reshape(-1)[far] == np.float32(model.l_hit) and layer_known.reshape(-1)[far]
    assert int(layer_known.sum()) == int(known.sum())
