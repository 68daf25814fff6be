"""A radar detection's footprint from the radar's own noise (range sigma along the line of sight, range ×
azimuth sigma across it), and what it does to a standing object seen scan after scan."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.pipeline import PipelineConfig
from cooperative_fusion.core.vehicle.sensor_models import RadarNoise, default_radar_model, radar_evidence

RADAR = default_radar_model()
L_HIT = math.log(0.65 / 0.35)
# x from 0 to 120 m (cells 0..599), y from -10 to 10 m (cells 0..99), 0.2 m cells.
SPEC = GridSpec(0.0, -10.0, 0.2, 600, 100)
ORIGIN = np.array([0.0, 0.0])
NOISE = RadarNoise(range_sigma_m=0.15, azimuth_sigma_rad=math.radians(0.3))


def test_footprint_is_narrow_along_the_line_of_sight_and_grows_across_it_with_range():
    for x, ix in ((20.1, 100), (80.1, 400)):            # straight ahead, at the centre of cell (ix, iy 50)
        logodds, known = radar_evidence(SPEC, np.array([[x, 0.1]]), 0.5, RADAR, origin_xy=ORIGIN, noise=NOISE)
        assert_allclose(logodds[50, ix], L_HIT, rtol=1e-5)
        assert logodds.max() == logodds[50, ix]
        # along (x): exp(-0.5 (0.2 / 0.15)^2) one cell away; across (y): exp(-0.5 (0.2 / (r 0.3 deg))^2)
        assert_allclose(logodds[50, ix + 1] / L_HIT, math.exp(-0.5 * (0.2 / 0.15) ** 2), rtol=1e-4)
        sigma_across = x * math.radians(0.3)
        assert_allclose(logodds[51, ix] / L_HIT, math.exp(-0.5 * (0.2 / sigma_across) ** 2), rtol=1e-4)
        # known out to 3 sigma (1 % of the peak): 0.45 m along, 3 r 0.3 deg across
        assert known[50, ix + 2] and not known[50, ix + 3]
        across = np.flatnonzero(known[:, ix]) - 50
        assert_allclose(across.max() * 0.2, 3.03 * sigma_across, atol=0.2)
    # the disc of sigma_m (the old footprint) reaches 1.4 m along the line of sight
    _, disc = radar_evidence(SPEC, np.array([[80.1, 0.1]]), 0.5, RADAR, origin_xy=ORIGIN)
    assert disc[50, 400 + 7] and not known[50, 400 + 3]


def test_footprint_turns_with_the_line_of_sight():
    # A detection 40 m away at 45 deg: along the diagonal it falls as the range sigma, across as range × azimuth.
    point = np.array([[28.3, 28.3]])                     # the centre of cell (ix 141, iy 141)
    spec = GridSpec(0.0, 0.0, 0.2, 200, 200)
    logodds, _ = radar_evidence(spec, point, 0.5, RADAR, origin_xy=ORIGIN, noise=NOISE)
    ix, iy = (int(v) for v in np.floor(point[0] / 0.2))
    r = float(np.hypot(*point[0]))
    step = 0.2 * math.sqrt(2.0)                           # one diagonal cell
    assert_allclose(logodds[iy + 1, ix + 1] / L_HIT, math.exp(-0.5 * (step / 0.15) ** 2), rtol=1e-3)
    assert_allclose(logodds[iy + 1, ix - 1] / L_HIT,
                    math.exp(-0.5 * (step / (r * math.radians(0.3))) ** 2), rtol=1e-3)


def _standing_car_seen(noise: RadarNoise | None, scans: int = 60, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Fused radar log-odds (height, width) of a standing car's rear face (y in [-0.9, 0.9] m at x 80 m) and
    a post (0.2 m, at x 40 m, y 4 m), 4 detections each per scan with the simulator's noise (0.15 m range,
    0.3 deg azimuth), summed over ``scans`` scans at 20 Hz with the fusion's 2 s half-life."""
    rng = np.random.default_rng(seed)
    decay = 0.5 ** (0.05 / 2.0)
    total = np.zeros(SPEC.shape)
    for _ in range(scans):
        # true reflection points: the face's width, and the post's centre
        face = np.column_stack([np.full(4, 80.0), rng.uniform(-0.9, 0.9, 4)])
        post = np.tile([40.0, 4.0], (4, 1))
        pts = np.vstack([face, post])
        r = np.hypot(pts[:, 0], pts[:, 1]) + 0.15 * rng.standard_normal(len(pts))
        az = np.arctan2(pts[:, 1], pts[:, 0]) + math.radians(0.3) * rng.standard_normal(len(pts))
        hits = np.column_stack([r * np.cos(az), r * np.sin(az)])
        layer, _ = radar_evidence(SPEC, hits, 0.5, RADAR, origin_xy=ORIGIN, static=np.ones(len(hits), bool),
                                  noise=noise)
        total = total * decay + layer
    xs, ys = SPEC.cell_centers()
    return total, np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), axis=-1)


def test_a_standing_car_seen_scan_after_scan_is_not_grown_into_a_disc_and_a_post_is_still_drawn():
    occupied_logodds = math.log(0.65 / 0.35)             # evaluate's occupied threshold p >= 0.65
    counts = {}
    for name, noise in (('disc', None), ('noise', NOISE)):
        total, centres = _standing_car_seen(noise)
        occupied = total >= occupied_logodds
        x, y = centres[..., 0], centres[..., 1]
        # the car's box (rear face at 80 m, 1.8 m wide, 4.5 m long) dilated by one cell, and the post's
        car = (x > 80.0 - 0.2) & (x < 84.5 + 0.2) & (np.abs(y) < 0.9 + 0.2)
        post = (np.abs(x - 40.0) < 0.1 + 0.2) & (np.abs(y - 4.0) < 0.1 + 0.2)
        counts[name] = (int((occupied & ~car & ~post).sum()), int((occupied & car).sum()),
                        int((occupied & post).sum()))
    false_disc, true_disc, post_disc = counts['disc']
    false_noise, true_noise, post_noise = counts['noise']
    # The 0.5 m disc piles up in front of the face (towards the sensor), beside it and around the post
    # (215 cells); the footprint of the radar's own noise draws a quarter of that (56: the scatter of the
    # detections themselves), the face still (its 1.8 m, 2-3 cells deep), and the post with 9 cells as before.
    assert false_disc > 3 * false_noise
    assert false_noise <= 80
    assert true_noise >= 20
    assert post_noise >= 3 and post_disc >= 3


def test_pipeline_radar_noise_config():
    cfg = PipelineConfig()
    assert cfg.radar_noise == RadarNoise(0.15, math.radians(0.3))
    assert PipelineConfig(radar_range_sigma_m=0.0, radar_azimuth_sigma_rad=0.0).radar_noise is None
    with pytest.raises(ConfigError, match=r'radar_range_sigma_m and radar_azimuth_sigma_rad must both be > 0'):
        PipelineConfig(radar_range_sigma_m=0.2, radar_azimuth_sigma_rad=0.0)
    with pytest.raises(ConfigError, match=r'RadarNoise.range_sigma_m must be a finite number > 0, got -1'):
        RadarNoise(range_sigma_m=-1.0)
    with pytest.raises(ConfigError, match=r'radar noise needs origin_xy'):
        radar_evidence(SPEC, np.array([[10.0, 0.0]]), 0.5, RADAR, noise=NOISE)
