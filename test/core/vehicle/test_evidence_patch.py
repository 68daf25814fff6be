"""Evidence patches: adding them in place gives the full layers' ``combine`` sum, bit for bit."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.sensor_models import (SensorModel, camera_patch, combine, default_radar_model,
                                                           lidar_patch, radar_patch)
from sensor_scene import random_sensor_scene


@pytest.mark.parametrize('seed', range(10))
def test_patches_added_in_place_equal_combine_of_their_layers(seed):
    rng = np.random.default_rng(seed)
    spec, origin, hits, free = random_sensor_scene(rng)
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


@pytest.mark.parametrize('sigma_m', [0.2, 0.5, 1.3])
def test_radar_groups_blurred_apart_equal_the_whole_window_blur(sigma_m):
    from scipy import ndimage

    from cooperative_fusion.core.vehicle.sensor_models import RADAR_KNOWN_FRACTION, RADAR_TRUNCATE, _gaussian_peak
    spec = GridSpec(0.0, 0.0, 0.2, 300, 120)
    s = sigma_m / spec.resolution
    pad = int(RADAR_TRUNCATE * s + 0.5)
    rng = np.random.default_rng(int(sigma_m * 10))
    # Pairs of detections within blur range of each other, just outside it, and just outside the grouping
    # distance (4 pads), plus a scatter.
    base = np.array([[5.1, 5.1], [20.1, 8.1], [40.1, 12.1], [50.1, 3.1]])
    step = np.array([[2 * pad * 0.2, 0.0], [(2 * pad + 1) * 0.2, 0.0], [0.0, (4 * pad + 1) * 0.2],
                     [(4 * pad + 1) * 0.2, (4 * pad) * 0.2]])
    hits = np.concatenate([base, base + step, rng.uniform([-3, -3], [63, 27], (25, 2))])
    got = radar_patch(spec, hits, sigma_m, default_radar_model())
    h, w = spec.height + 2 * pad, spec.width + 2 * pad
    ix, iy = spec.world_to_cell(hits)
    ix, iy = ix + pad, iy + pad
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    density = np.bincount(iy[ok] * w + ix[ok], minlength=h * w).reshape(h, w).astype(np.float32)
    density = ndimage.gaussian_filter(density, s, mode='constant', truncate=RADAR_TRUNCATE) / np.float32(_gaussian_peak(s))
    weight = np.minimum(density[pad:pad + spec.height, pad:pad + spec.width], 1.0)
    known = weight >= RADAR_KNOWN_FRACTION
    logodds, layer_known = got.layer()
    assert_array_equal(layer_known, known)
    assert logodds.tobytes() == np.where(known, weight * np.float32(default_radar_model().l_hit),
                                         np.float32(0.0)).astype(np.float32).tobytes()


def test_in_fov_equals_the_wrapped_test():
    from cooperative_fusion.core.vehicle.sensor_models import _in_fov, _wrap
    rng = np.random.default_rng(5)
    for i in range(200):
        az = np.arctan2(rng.normal(size=2000), rng.normal(size=2000)).astype(np.float32)
        az = np.concatenate([az, np.float32([math.pi, -math.pi, 0.0])])
        yaw = float(rng.uniform(-8.0, 8.0)) if i % 4 else float(rng.choice([0.0, math.pi, -math.pi]))
        half = float(rng.uniform(0.0, 3.2))
        assert_array_equal(_in_fov(az, yaw, half), np.abs(_wrap(az - yaw)) <= half)
