"""A radar detection's footprint from the radar's own noise (range sigma along the line of sight, range ×
azimuth sigma across it), and what it does to a standing object seen scan after scan."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

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


STANDING = np.array([True])


def test_footprint_is_narrow_along_the_line_of_sight_and_grows_across_it_with_range():
    for x, ix, across_cells in ((20.1, 100, 0), (80.1, 400, 2)):   # straight ahead, centre of cell (ix, iy 50)
        logodds, known = radar_evidence(SPEC, np.array([[x, 0.1]]), 0.5, RADAR, origin_xy=ORIGIN,
                                        static=STANDING, noise=NOISE)
        assert_allclose(logodds[50, ix], L_HIT, rtol=1e-5)
        assert logodds.max() == logodds[50, ix]
        # along (x): one cell away is exp(-0.5 (0.2 / 0.15)^2) = 0.41 of the peak: below half, unknown
        assert not known[50, ix + 1] and not known[50, ix - 1]
        # across (y): exp(-0.5 (k 0.2 / (r 0.3 deg))^2), known while at least half the peak (1.18 sigma)
        sigma_across = x * math.radians(0.3)
        assert_array_equal(np.flatnonzero(known[:, ix]) - 50, np.arange(-across_cells, across_cells + 1))
        for k in range(1, across_cells + 1):
            assert_allclose(logodds[50 + k, ix] / L_HIT, math.exp(-0.5 * (k * 0.2 / sigma_across) ** 2), rtol=1e-4)
        assert known.sum() == 2 * across_cells + 1
    # the disc of sigma_m (the old footprint) reaches 0.4 m along the line of sight too: 5 x 5 cells, not 1 x 5
    _, disc = radar_evidence(SPEC, np.array([[80.1, 0.1]]), 0.5, RADAR, origin_xy=ORIGIN, static=STANDING)
    assert disc[50, 400 + 2] and disc.sum() == 25


def test_footprint_turns_with_the_line_of_sight_and_moving_detections_keep_the_disc():
    # A detection 40 m away at 45 deg: along the diagonal it falls as the range sigma, across as range × azimuth.
    point = np.array([[28.3, 28.3]])                     # the centre of cell (ix 141, iy 141)
    spec = GridSpec(0.0, 0.0, 0.2, 200, 200)
    noise = RadarNoise(range_sigma_m=0.3, azimuth_sigma_rad=math.radians(0.6))   # wider: neighbours above half
    logodds, _ = radar_evidence(spec, point, 0.5, RADAR, origin_xy=ORIGIN, static=STANDING, noise=noise)
    r, step = 40.02, 0.2 * math.sqrt(2.0)                # range, one diagonal cell
    assert_allclose(logodds[142, 142] / L_HIT, math.exp(-0.5 * (step / 0.3) ** 2), rtol=1e-3)
    assert_allclose(logodds[142, 140] / L_HIT, math.exp(-0.5 * (step / (r * math.radians(0.6))) ** 2), rtol=1e-3)
    # A moving detection in the same scan is drawn as without noise: the disc of sigma_m, out to 3 sigma.
    both = np.array([[28.3, 28.3], [10.1, 30.1]])
    mixed, _ = radar_evidence(spec, both, 0.5, RADAR, origin_xy=ORIGIN, static=np.array([True, False]), noise=noise)
    disc, _ = radar_evidence(spec, both[1:], 0.5, RADAR, origin_xy=ORIGIN)
    assert_array_equal(mixed[:, :90], disc[:, :90])
    assert_array_equal(mixed[:, 120:], logodds[:, 120:])


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


def test_an_ellipse_beyond_the_edge_reaches_in():
    # A detection at the centre of the cell one row beyond the top edge (y 10.1), 80 m out.
    point = np.array([[80.1, 10.1]])
    logodds, known = radar_evidence(SPEC, point, 0.5, RADAR, origin_xy=ORIGIN, static=STANDING, noise=NOISE)
    r = float(np.hypot(*point[0]))
    u = point[0] / r
    for row in (99, 98, 97):                              # 0.2, 0.4, 0.6 m below it
        d = np.array([0.0, -0.2 * (100 - row)])
        along, across = float(d @ u), float(u[0] * d[1] - u[1] * d[0])
        w = math.exp(-0.5 * ((along / 0.15) ** 2 + (across / (r * math.radians(0.3))) ** 2))
        assert known[row, 400] == (w >= 0.5)
        if w >= 0.5:
            assert_allclose(logodds[row, 400] / L_HIT, w, rtol=1e-4)
    assert known[99, 400]
    _, none = radar_evidence(SPEC, np.array([[80.1, 15.0]]), 0.5, RADAR, origin_xy=ORIGIN, static=STANDING,
                             noise=NOISE)
    assert not none.any()


def test_pipeline_radar_noise_config():
    assert PipelineConfig().radar_noise is None            # off by default: the disc of radar_sigma_m
    cfg = PipelineConfig(radar_range_sigma_m=0.15, radar_azimuth_sigma_rad=math.radians(0.3))
    assert cfg.radar_noise == RadarNoise(0.15, math.radians(0.3))
    with pytest.raises(ConfigError, match=r'radar_range_sigma_m and radar_azimuth_sigma_rad must both be > 0'):
        PipelineConfig(radar_range_sigma_m=0.2, radar_azimuth_sigma_rad=0.0)
    with pytest.raises(ConfigError, match=r'RadarNoise.range_sigma_m must be a finite number > 0, got -1'):
        RadarNoise(range_sigma_m=-1.0)
    with pytest.raises(ConfigError, match=r'radar noise needs origin_xy'):
        radar_evidence(SPEC, np.array([[10.0, 0.0]]), 0.5, RADAR, noise=NOISE)


def test_moving_detections_take_their_own_ellipse_out_to_one_percent_and_standing_ones_keep_theirs():
    # A moving detection 20 m straight ahead with moving_noise: along the line of sight (x) it falls with the
    # range sigma and is known out to 1 % of the peak (3 sigma: 0.45 m, two cells), across it with r x azimuth
    # (0.1 m: 0.2 m is 0.14 of the peak, 0.4 m 0.0003: one cell each side). The disc of sigma_m reached 1.5 m.
    moving = np.array([False])
    logodds, known = radar_evidence(SPEC, np.array([[20.1, 0.1]]), 0.5, RADAR, origin_xy=ORIGIN, static=moving,
                                    moving_noise=NOISE)
    assert_allclose(logodds[50, 100], L_HIT, rtol=1e-5)
    assert_array_equal(np.flatnonzero(known[50, :]) - 100, [-2, -1, 0, 1, 2])
    assert_array_equal(np.flatnonzero(known[:, 100]) - 50, [-1, 0, 1])
    assert_allclose(logodds[50, 101] / L_HIT, math.exp(-0.5 * (0.2 / 0.15) ** 2), rtol=1e-4)
    _, disc = radar_evidence(SPEC, np.array([[20.1, 0.1]]), 0.5, RADAR, origin_xy=ORIGIN, static=moving)
    assert disc.sum() > 5 * known.sum()
    # In a mixed scan the standing detection keeps the disc when only moving_noise is given, and vice versa.
    both = np.array([[20.1, 0.1], [60.1, 4.1]])
    mixed, _ = radar_evidence(SPEC, both, 0.5, RADAR, origin_xy=ORIGIN, static=np.array([False, True]),
                              moving_noise=NOISE)
    standing_disc, _ = radar_evidence(SPEC, both[1:], 0.5, RADAR, origin_xy=ORIGIN, static=STANDING)
    assert_array_equal(mixed[:, 200:], standing_disc[:, 200:])
    assert_array_equal(mixed[:, :150], logodds[:, :150])
    with pytest.raises(ConfigError, match=r'radar noise needs origin_xy'):
        radar_evidence(SPEC, both, 0.5, RADAR, moving_noise=NOISE)


def test_pipeline_radar_moving_noise_config():
    # the core's default is the vehicle node's (core.vehicle_defaults): a moving detection takes its ellipse
    assert PipelineConfig().radar_moving_noise == RadarNoise(0.15, math.radians(0.3))
    assert PipelineConfig().radar_noise is None                       # a standing one keeps the disc
    disc = PipelineConfig(radar_moving_range_sigma_m=0.0, radar_moving_azimuth_sigma_rad=0.0)
    assert disc.radar_moving_noise is None                            # both 0: the disc of radar_sigma_m
    cfg = PipelineConfig(radar_moving_range_sigma_m=0.3, radar_moving_azimuth_sigma_rad=math.radians(0.5))
    assert cfg.radar_moving_noise == RadarNoise(0.3, math.radians(0.5)) and cfg.radar_noise is None
    with pytest.raises(ConfigError, match=r'radar_moving_range_sigma_m and radar_moving_azimuth_sigma_rad must both '
                                          r'be > 0'):
        PipelineConfig(radar_moving_range_sigma_m=0.0, radar_moving_azimuth_sigma_rad=0.01)
