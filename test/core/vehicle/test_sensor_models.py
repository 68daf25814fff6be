from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.vehicle.sensor_models import (SensorModel, camera_evidence, combine, default_camera_model,
                                                   default_lidar_model, default_radar_model, hits_to_stamp,
                                                   lidar_evidence, moving_returns, radar_evidence)
from sensor_scene import random_sensor_scene

LIDAR = default_lidar_model()
L_HIT = math.log(0.85 / 0.15)
L_MISS = math.log(0.35 / 0.65)
# x from -3 to 37 m (cells 0..199), y from -10 to 10 m (cells 0..99), 0.2 m cells.
SPEC = GridSpec(-3.0, -10.0, 0.2, 200, 100)
ORIGIN = np.array([2.05, 0.03])


def fan(azimuth_from: float, azimuth_to: float, step_deg: float = 0.1) -> np.ndarray:
    """Unit directions (K, 2) of beams between two azimuths."""
    az = np.arange(azimuth_from, azimuth_to, math.radians(step_deg))
    return np.column_stack([np.cos(az), np.sin(az)])


def box_scan(face_x: float = 23.1, half_width: float = 1.5, free_range: float = 30.0):
    """A 2-D scan over +-60 deg: beams that reach the plane x = face_x within |y| <= half_width
    return there (hits); the others are ground returns at free_range (free end points)."""
    d = fan(-math.pi / 3, math.pi / 3)
    t = (face_x - ORIGIN[0]) / d[:, 0]
    y = ORIGIN[1] + t * d[:, 1]
    on_face = np.abs(y) <= half_width
    hits = ORIGIN + d[on_face] * t[on_face, None]
    free = ORIGIN + d[~on_face] * free_range
    return hits, free


def cell_polar(spec: GridSpec, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = spec.cell_centers()
    dx, dy = xs[None, :] - origin[0], ys[:, None] - origin[1]
    return np.hypot(dx, dy), np.arctan2(dy, dx)


def test_box_ahead_face_occupied_front_free_back_unknown():
    hits, free = box_scan()
    logodds, known = lidar_evidence(SPEC, ORIGIN, hits, free, LIDAR)
    assert logodds.dtype == np.float32 and logodds.shape == (100, 200) and known.shape == (100, 200)
    # The face x = 23.1 lies in column floor((23.1 + 3) / 0.2) = 130, |y| <= 1.5 in rows 42..57.
    occ_rows, occ_cols = np.nonzero(logodds > 0)
    assert_array_equal(np.unique(occ_cols), [130])
    assert_array_equal(np.unique(occ_rows), np.arange(42, 58))
    assert_allclose(logodds[42:58, 130], L_HIT, rtol=1e-6)
    # In front of the face: free from outside the 1 m blind zone (x >= 3.05 -> column 31) to column 129.
    assert_allclose(logodds[44:56, 31:130], L_MISS, rtol=1e-6)
    assert known[44:56, 31:130].all()
    # Behind the face: unknown all the way to the grid edge, although free end points lie there.
    assert not known[43:57, 131:].any()
    assert (logodds[43:57, 131:] == 0).all()
    # Beside the box the beams reach 30 m: free to there, unknown beyond.
    r, _ = cell_polar(SPEC, ORIGIN)
    assert (logodds[80, :][(r[80, :] > 12) & (r[80, :] < 29.5)] == np.float32(L_MISS)).all()
    assert not known[80, :][r[80, :] > 30.2].any()


def test_no_return_beams_free_to_max_range_unknown_beyond():
    model = SensorModel(p_hit=0.7, p_miss=0.4, max_range_m=12.0, min_range_m=0.5)
    d = fan(0.2, 0.4)
    # A no-return beam arrives as its point at max range; a farther point is cut to max range.
    free = ORIGIN + d * np.where(np.arange(len(d)) % 2 == 0, 12.0, 50.0)[:, None]
    logodds, known = lidar_evidence(SPEC, ORIGIN, np.zeros((0, 2)), free, model)
    r, az = cell_polar(SPEC, ORIGIN)
    inside = (az > 0.21) & (az < 0.39)
    assert_allclose(logodds[inside & (r > 0.5) & (r <= 11.9)], math.log(0.4 / 0.6), rtol=1e-6)
    assert known[inside & (r > 0.5) & (r <= 11.9)].all()
    assert not known[r > 12.0].any()
    assert not known[(az < 0.19) | (az > 0.41)].any()
    assert not known[r < 0.5].any()                     # blind zone
    assert (logodds <= 0).all()


def test_hits_outside_the_trusted_ranges():
    d = fan(-0.1, 0.1)
    too_close = ORIGIN + d * 0.6                        # inside the 1 m blind zone: ignored
    too_far = ORIGIN + d * 150.0                         # beyond 100 m: no hit, free to max range
    logodds, known = lidar_evidence(SPEC, ORIGIN, np.concatenate([too_close, too_far]), np.zeros((0, 2)), LIDAR)
    assert not (logodds > 0).any()
    r, az = cell_polar(SPEC, ORIGIN)
    beam = (np.abs(az) < 0.09) & (r > 1.0)
    assert_allclose(logodds[beam], L_MISS, rtol=1e-6)   # not blocked by the ignored near hits
    assert beam.sum() > 500


def test_nearest_hit_blocks_farther_hits_still_occupied():
    d = fan(-0.05, 0.05)
    near = ORIGIN + d * 10.0
    far = ORIGIN + np.array([[20.0, 0.0]])              # same bins, behind the near wall
    logodds, known = lidar_evidence(SPEC, ORIGIN, np.concatenate([near, far]), ORIGIN + d * 30.0, LIDAR)
    ix, iy = SPEC.world_to_cell(far)
    assert logodds[iy[0], ix[0]] == np.float32(L_HIT)
    r, az = cell_polar(SPEC, ORIGIN)
    between = (np.abs(az) < 0.04) & (r > 10.3) & (r < 19.5)
    assert between.sum() > 100 and not known[between].any()
    assert_allclose(logodds[(np.abs(az) < 0.04) & (r > 1.0) & (r < 9.8)], L_MISS, rtol=1e-6)


def test_an_empty_bin_between_observed_bins_is_filled_wider_gaps_are_not():
    model = SensorModel(p_hit=0.8, p_miss=0.3, max_range_m=30.0, min_range_m=0.5,
                        azimuth_resolution_rad=math.radians(1.0))
    bins = np.arange(360)
    keep = ~np.isin(bins, [100, 200, 201])            # one-bin gap at 100, two-bin gap at 200-201
    az = -math.pi + (bins[keep] + 0.5) * math.radians(1.0)
    free = ORIGIN + 20.0 * np.column_stack([np.cos(az), np.sin(az)])
    logodds, known = lidar_evidence(SPEC, ORIGIN, np.zeros((0, 2)), free, model)
    r, cell_az = cell_polar(SPEC, ORIGIN)
    cell_bin = np.floor((cell_az + math.pi) / math.radians(1.0)).astype(int) % 360
    ring = (r > 3.0) & (r < 19.0)
    assert known[ring & (cell_bin == 100)].all()
    assert not known[ring & np.isin(cell_bin, [200, 201])].any()
    assert known[ring & ~np.isin(cell_bin, [200, 201])].all()


@pytest.mark.parametrize('p_hit, p_miss', [(0.85, 0.35), (0.6, 0.1), (0.99, 0.49)])
def test_values_are_logit_of_the_model(p_hit, p_miss):
    model = SensorModel(p_hit=p_hit, p_miss=p_miss, max_range_m=100.0)
    hits, free = box_scan()
    logodds, known = lidar_evidence(SPEC, ORIGIN, hits, free, model)
    values = np.unique(logodds[known])
    assert_allclose(values, [math.log(p_miss / (1 - p_miss)), math.log(p_hit / (1 - p_hit))], rtol=1e-6)
    assert model.l_hit == pytest.approx(math.log(p_hit / (1 - p_hit)))


@pytest.mark.parametrize('field, value, message', [
    ('p_hit', 0.5, r'SensorModel.p_hit must be in \(0.5, 1\), got 0.5'),
    ('p_hit', 1.0, r'SensorModel.p_hit must be in \(0.5, 1\), got 1.0'),
    ('p_miss', 0.5, r'SensorModel.p_miss must be in \(0, 0.5\), got 0.5'),
    ('p_miss', 0.0, r'SensorModel.p_miss must be in \(0, 0.5\), got 0.0'),
    ('max_range_m', -5.0, r'SensorModel.max_range_m must be > min_range_m \(0.5\), got -5.0'),
    ('min_range_m', -1.0, r'SensorModel.min_range_m must be >= 0, got -1.0'),
    ('p_hit', float('nan'), r'SensorModel.p_hit must be a finite number, got nan'),
    ('azimuth_resolution_rad', 0.0, r'SensorModel.azimuth_resolution_rad must be in \(0, pi\], got 0.0'),
])
def test_invalid_model_names_the_field(field, value, message):
    kw = dict(p_hit=0.8, p_miss=0.3, max_range_m=50.0) | {field: value}
    with pytest.raises(ConfigError, match=message):
        SensorModel(**kw)


def test_default_models():
    for model in (default_lidar_model(), default_radar_model(), default_camera_model()):
        assert 0.5 < model.p_hit < 1 and 0 < model.p_miss < 0.5
    assert default_radar_model().p_hit < default_camera_model().p_hit < default_lidar_model().p_hit
    assert default_lidar_model().max_range_m == 100.0


def test_bad_inputs_raise():
    with pytest.raises(ConfigError, match=r'hits_xy must have shape \(N, 2\), got \(5, 3\)'):
        lidar_evidence(SPEC, ORIGIN, np.zeros((5, 3)), np.zeros((0, 2)), LIDAR)
    with pytest.raises(ConfigError, match=r'origin_xy must be 2 finite numbers'):
        lidar_evidence(SPEC, [np.nan, 0.0], np.zeros((0, 2)), np.zeros((0, 2)), LIDAR)
    logodds, known = lidar_evidence(SPEC, ORIGIN, np.array([[np.nan, 1.0]]), np.zeros((0, 2)), LIDAR)
    assert not known.any() and not logodds.any()


# ------------------------------------------------------------------- radar ----

def test_radar_single_detection_peak_spread_and_weaker_than_lidar():
    radar = default_radar_model()
    point = np.array([[10.1, 0.1]])                     # centre of cell (ix 65, iy 50)
    logodds, known = radar_evidence(SPEC, point, 0.6, radar)
    assert_allclose(logodds[50, 65], math.log(0.65 / 0.35), rtol=1e-5)
    assert logodds.max() == logodds[50, 65]
    # scipy's kernel: one cell away is exp(-0.5 (0.2 / 0.6)^2) of the centre, two cells exp(-0.5 (0.4/0.6)^2).
    assert_allclose(logodds[50, 66] / logodds[50, 65], math.exp(-0.5 * (0.2 / 0.6) ** 2), rtol=1e-4)
    assert_allclose(logodds[52, 65] / logodds[50, 65], math.exp(-0.5 * (0.4 / 0.6) ** 2), rtol=1e-4)
    assert (logodds >= 0).all()                         # no free evidence
    assert known[50, 65 + 6] and not known[50, 65 + 10]  # 1.2 m = 2 sigma known, 2.0 m = 3.3 sigma not
    lidar_l, _ = lidar_evidence(SPEC, ORIGIN, point, np.zeros((0, 2)), LIDAR)
    assert logodds[50, 65] < lidar_l[50, 65]

    wide, wide_known = radar_evidence(SPEC, point, 1.2, radar)
    assert_allclose(wide[50, 65], logodds[50, 65], rtol=1e-5)
    assert_allclose(wide_known.sum() / known.sum(), 4.0, rtol=0.1)   # area grows with sigma^2
    assert wide[50, 71] > logodds[50, 71]


def test_radar_caps_detections_in_one_cell_and_reaches_in_from_outside():
    radar = default_radar_model()
    logodds, _ = radar_evidence(SPEC, np.array([[10.1, 0.1]] * 5), 0.6, radar)
    assert_allclose(logodds.max(), math.log(0.65 / 0.35), rtol=1e-5)
    # A detection 0.3 m beyond the right edge (x = 37) still spreads into the last column.
    edge, edge_known = radar_evidence(SPEC, np.array([[37.3, 0.1]]), 0.6, radar)
    assert edge_known[50, 199] and edge[50, 199] > 0
    assert_allclose(edge[50, 199] / math.log(0.65 / 0.35), math.exp(-0.5 * (0.4 / 0.6) ** 2), rtol=1e-4)


def test_radar_range_filter_and_zero_sigma():
    radar = default_radar_model()
    pts = np.array([[2.2, 0.03], [10.1, 0.1]])         # first is 0.15 m from the sensor: blind zone
    logodds, known = radar_evidence(SPEC, pts, 0.0, radar, origin_xy=ORIGIN)
    assert known.sum() == 1 and known[50, 65]
    with pytest.raises(ConfigError, match=r'radar sigma_m must be a finite number >= 0, got -1.0'):
        radar_evidence(SPEC, pts, -1.0, radar)


# ------------------------------------------------------------------ camera ----

def test_camera_evidence_only_inside_the_field_of_view():
    camera = default_camera_model()
    d = fan(-math.pi, math.pi, 0.25)
    free = ORIGIN + d * 15.0
    hits = ORIGIN + np.array([[0.0, 8.0], [8.0, 0.0]])  # one straight ahead (north), one east: outside
    yaw, hfov = math.pi / 2, math.radians(60)
    logodds, known = camera_evidence(SPEC, ORIGIN, yaw, hfov, hits, free, camera)
    r, az = cell_polar(SPEC, ORIGIN)
    outside = np.abs((az - yaw + math.pi) % (2 * math.pi) - math.pi) > hfov / 2
    assert not known[outside].any() and (logodds[outside] == 0).all()
    ix, iy = SPEC.world_to_cell(hits)
    assert logodds[iy[0], ix[0]] == np.float32(math.log(0.75 / 0.25))
    assert logodds[iy[1], ix[1]] == 0.0
    inside = ~outside & (r > 0.3) & (r < 7.7) & (np.abs(az - yaw) < math.radians(28))
    assert_allclose(logodds[inside], math.log(0.4 / 0.6), rtol=1e-6)
    # The whole-circle lidar sees the east hit and all around.
    lidar_l, lidar_known = lidar_evidence(SPEC, ORIGIN, hits, free, LIDAR)
    assert lidar_l[iy[1], ix[1]] > 0 and lidar_known[outside].sum() > 1000
    with pytest.raises(ConfigError, match=r'camera hfov_rad must be in \(0, 2 pi\], got 0.0'):
        camera_evidence(SPEC, ORIGIN, yaw, 0.0, hits, free, camera)


# ----------------------------------------------------------------- combine ----

def test_combine_sums_and_unites():
    a = (np.array([[1.0, 0.0], [-0.5, 0.0]], dtype=np.float32), np.array([[True, False], [True, False]]))
    b = (np.array([[0.5, 2.0], [0.0, 0.0]], dtype=np.float32), np.array([[True, True], [False, False]]))
    total, known = combine([a, b])
    assert_allclose(total, [[1.5, 2.0], [-0.5, 0.0]])
    assert_array_equal(known, [[True, True], [True, False]])
    assert total.dtype == np.float32
    with pytest.raises(ConfigError, match=r'layer 1 has shapes \(3,\) / \(3,\), expected \(2, 2\)'):
        combine([a, (np.zeros(3), np.zeros(3, dtype=bool))])
    with pytest.raises(ConfigError, match='at least one'):
        combine([])


def test_lidar_plus_radar_on_a_full_scan():
    hits, free = box_scan()
    layers = [lidar_evidence(SPEC, ORIGIN, hits, free, LIDAR),
              radar_evidence(SPEC, hits[::20], 0.4, default_radar_model())]
    total, known = combine(layers)
    assert_array_equal(known, layers[0][1] | layers[1][1])
    assert total[50, 130] > layers[0][0][50, 130] > 0


def test_non_finite_points_are_skipped():
    hits, free = box_scan()
    clean = lidar_evidence(SPEC, ORIGIN, hits, free, LIDAR)
    bad = np.array([[np.inf, -np.inf], [np.nan, 1.0], [3.0, np.inf]])
    dirty = lidar_evidence(SPEC, ORIGIN, np.concatenate([hits, bad]), np.concatenate([bad, free]), LIDAR)
    assert_array_equal(dirty[0], clean[0])
    assert_array_equal(dirty[1], clean[1])


# ------------------------------------------------- the fast sweep equals the plain one ---

def _plain_sweep(spec, origin, hits, free, model, fov):
    """The polar sweep written plainly over every cell (the rule of the module docstring)."""
    from cooperative_fusion.core.vehicle.sensor_models import _as_origin, _as_xy, _wrap
    origin, hits, free = _as_origin(origin), _as_xy(hits, 'hits_xy'), _as_xy(free, 'free_xy')
    n_bins = max(1, int(math.ceil(2 * math.pi / model.azimuth_resolution_rad - 1e-9)))
    scale = np.float32(n_bins / (2 * math.pi))

    def polar(xy):
        with np.errstate(over='ignore', invalid='ignore'):
            dx, dy = (xy[:, 0] - origin[0]).astype(np.float32), (xy[:, 1] - origin[1]).astype(np.float32)
            return np.sqrt(dx * dx + dy * dy), np.arctan2(dy, dx)

    def to_bin(az):
        return np.clip(np.floor((az + np.float32(math.pi)) * scale).astype(np.intp), 0, n_bins - 1)

    hit_r, hit_az = polar(hits)
    free_r, free_az = polar(free)
    if fov is not None:
        in_hit, in_free = (np.abs(_wrap(a - fov[0])) <= 0.5 * fov[1] for a in (hit_az, free_az))
        hits, hit_r, hit_az, free_r, free_az = hits[in_hit], hit_r[in_hit], hit_az[in_hit], free_r[in_free], free_az[in_free]
    valid = (hit_r >= model.min_range_m) & (hit_r <= model.max_range_m)
    beyond = hit_r > model.max_range_m
    hit_bin, free_bin = to_bin(hit_az), to_bin(free_az)
    nearest = np.full(n_bins, np.inf, dtype=np.float32)
    np.minimum.at(nearest, hit_bin[valid], hit_r[valid])
    reach = np.zeros(n_bins, dtype=np.float32)
    np.maximum.at(reach, free_bin, np.minimum(free_r, np.float32(model.max_range_m)))
    np.maximum.at(reach, hit_bin[valid], hit_r[valid])
    np.maximum.at(reach, hit_bin[beyond], np.float32(model.max_range_m))
    observed = np.zeros(n_bins, dtype=bool)
    observed[free_bin] = True
    observed[hit_bin[valid | beyond]] = True
    left, right = np.roll(np.arange(n_bins), 1), np.roll(np.arange(n_bins), -1)
    gap = ~observed & observed[left] & observed[right]
    nearest[gap] = np.minimum(nearest[left[gap]], nearest[right[gap]])
    reach[gap] = np.minimum(reach[left[gap]], reach[right[gap]])
    blocked = nearest - np.float32(0.5 * spec.resolution)
    xs, ys = spec.cell_centers()
    dx, dy = (xs - origin[0]).astype(np.float32), (ys - origin[1]).astype(np.float32)
    cell_r = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)
    cell_az = np.arctan2(dy[:, None], dx[None, :])
    cell_bin = to_bin(cell_az)
    free_cells = (cell_r >= model.min_range_m) & (cell_r <= reach[cell_bin]) & (cell_r < blocked[cell_bin])
    if fov is not None:
        free_cells &= np.abs(_wrap(cell_az - fov[0])) <= 0.5 * fov[1]
    occupied = np.zeros(spec.height * spec.width, dtype=bool)
    ix, iy = spec.world_to_cell(hits[valid])
    inside = spec.in_bounds(ix, iy)
    occupied[iy[inside] * spec.width + ix[inside]] = True
    occupied = occupied.reshape(spec.shape)
    logodds = np.where(occupied, np.float32(model.l_hit),
                       np.where(free_cells, np.float32(model.l_miss), np.float32(0.0))).astype(np.float32)
    return logodds, occupied | free_cells


@pytest.mark.parametrize('seed', range(12))
def test_lidar_and_camera_sweeps_equal_the_plain_sweep_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    spec, origin, hits, free = random_sensor_scene(rng)
    model = SensorModel(p_hit=0.85, p_miss=0.35, max_range_m=float(rng.uniform(20, 100)),
                        min_range_m=float(rng.uniform(0, 2)), azimuth_resolution_rad=math.radians(rng.uniform(0.1, 2)))
    got = lidar_evidence(spec, origin, hits, free, model)
    want = _plain_sweep(spec, origin, hits, free, model, None)
    assert got[0].dtype == np.float32 and got[0].tobytes() == want[0].tobytes()
    assert_array_equal(got[1], want[1])
    yaw, hfov = float(rng.uniform(-4, 4)), float(rng.uniform(0.2, 3))
    got = camera_evidence(spec, origin, yaw, hfov, hits, free, model)
    want = _plain_sweep(spec, origin, hits, free, model, (yaw, hfov))
    assert got[0].tobytes() == want[0].tobytes()
    assert_array_equal(got[1], want[1])


@pytest.mark.parametrize('seed', range(6))
def test_radar_equals_blurring_the_whole_window(seed):
    from scipy import ndimage

    from cooperative_fusion.core.vehicle.sensor_models import RADAR_KNOWN_FRACTION, RADAR_TRUNCATE, _gaussian_peak
    rng = np.random.default_rng(seed)
    spec, origin, hits, _ = random_sensor_scene(rng)
    model, sigma = default_radar_model(), float(rng.choice([0.0, 0.2, 0.5, 1.3]))
    hits = hits[:int(rng.integers(1, 40))]
    got = radar_evidence(spec, hits, sigma, model)
    s = sigma / spec.resolution
    pad = int(RADAR_TRUNCATE * s + 0.5) if s > 0 else 0
    ix, iy = spec.world_to_cell(hits)
    ix, iy = ix + pad, iy + pad
    h, w = spec.height + 2 * pad, spec.width + 2 * pad
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    density = np.bincount(iy[ok] * w + ix[ok], minlength=h * w).reshape(h, w).astype(np.float32)
    if s > 0:
        density = ndimage.gaussian_filter(density, s, mode='constant', truncate=RADAR_TRUNCATE) / np.float32(_gaussian_peak(s))
    weight = np.minimum(density[pad:pad + spec.height, pad:pad + spec.width], 1.0)
    known = weight >= RADAR_KNOWN_FRACTION
    assert_array_equal(got[1], known)
    assert got[0].tobytes() == np.where(known, weight * np.float32(model.l_hit), np.float32(0.0)).astype(np.float32).tobytes()


# ------------------------------------------------------------ moving returns --

def test_moving_returns_keep_moving_targets_with_radial_velocity_vectors():
    xy = np.array([[20.0, 0.0], [0.0, 10.0], [30.0, 0.0]])
    movers = moving_returns(xy, np.array([0.0, 0.0]), np.array([5.0, -3.0, 0.2]), 1_000)
    np.testing.assert_allclose(movers.xy, xy[:2])
    np.testing.assert_allclose(movers.velocity, [[5.0, 0.0], [0.0, -3.0]])
    assert movers.stamp_ns == 1_000


def test_moving_returns_reject_a_velocity_of_another_length():
    with pytest.raises(ConfigError, match='radial_mps must have shape'):
        moving_returns(np.zeros((2, 2)), np.zeros(2), np.zeros(3), 0)


def test_hits_to_stamp_moves_hits_near_a_moving_return_by_its_velocity():
    # A car 20 m ahead driving away at 25 m/s, seen by the radar at t = 0 and by a camera 40 ms earlier.
    movers = moving_returns(np.array([[20.0, 0.0]]), np.zeros(2), np.array([25.0]), 0)
    hits = np.array([[19.0, 0.5], [19.0, 4.0], [60.0, 0.0]])      # the car (1 m behind: 40 ms earlier), a
    out = hits_to_stamp(hits, -40_000_000, movers, 50_000_000)      # neighbour 3.5 m across, a far post
    np.testing.assert_allclose(out[0], [19.0 + 25.0 * 0.09, 0.5])
    np.testing.assert_allclose(out[1:], hits[1:])


def test_hits_to_stamp_per_point_times_and_no_movers():
    movers = moving_returns(np.array([[-20.0, 0.0]]), np.zeros(2), np.array([-10.0]), 0)   # approaching from behind
    hits = np.array([[-20.0, 0.0], [-19.0, 0.0]])
    out = hits_to_stamp(hits, np.array([0, 100_000_000]), movers, 50_000_000)
    # velocity (+10, 0) m/s in map: the first hit moves +0.5 m, the second (seen 50 ms late) -0.5 m.
    np.testing.assert_allclose(out, [[-19.5, 0.0], [-19.5, 0.0]])
    np.testing.assert_allclose(hits_to_stamp(hits, 0, None, 50_000_000), hits)


def test_a_static_radar_detection_spreads_only_to_half_its_peak():
    radar = default_radar_model()
    l_hit = math.log(0.65 / 0.35)
    points = np.array([[10.1, 0.1], [20.1, 0.1]])       # cells (ix 65, iy 50) and (ix 115, iy 50)
    moving, moving_known = radar_evidence(SPEC, points, 0.6, radar)
    # The first standing, the second moving: the moving one keeps its 3-sigma spread, as with no mask.
    mixed, mixed_known = radar_evidence(SPEC, points, 0.6, radar, static=np.array([True, False]))
    assert_array_equal(mixed[:, 90:], moving[:, 90:])
    assert_array_equal(mixed_known[:, 90:], moving_known[:, 90:])
    # The standing one: the same values where at least half the peak (0.2 m: 0.946, 0.6 m: 0.607 of it),
    # nothing beyond (0.8 m: 0.41; the moving one reaches 1.2 m and more).
    assert_allclose(mixed[50, 65], l_hit, rtol=1e-5)
    near = mixed_known[:, :90]
    assert_array_equal(mixed[:, :90][near], moving[:, :90][near])
    assert (mixed[:, :90][near] >= 0.5 * l_hit * (1 - 1e-6)).all()
    assert mixed_known[50, 65 + 3] and not mixed_known[50, 65 + 4] and moving_known[50, 65 + 6]
    assert not mixed_known[:, :90][~moving_known[:, :90]].any()
    assert 0 < near.sum() < moving_known[:, :90].sum() / 4
    with pytest.raises(ConfigError, match=r'static must have shape \(2,\)'):
        radar_evidence(SPEC, points, 0.6, radar, static=np.array([True]))
