from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError, FrameError
from cooperative_fusion.core.road import RoadConfig, RoadModel, RoadTracker

MS = 1_000_000


def true_road(s: np.ndarray, d: np.ndarray | float, x0: float, y0: float, heading: float, kappa: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Map points of a line/arc starting at (x0, y0) with heading; s along, d left."""
    s = np.asarray(s, dtype=np.float64)
    d = np.broadcast_to(np.asarray(d, dtype=np.float64), s.shape)
    if kappa == 0.0:
        lx, ly = s, d
    else:
        th = kappa * s
        lx = np.sin(th) / kappa - d * np.sin(th)
        ly = (1.0 - np.cos(th)) / kappa + d * np.cos(th)
    c, sn = math.cos(heading), math.sin(heading)
    return x0 + lx * c - ly * sn, y0 + lx * sn + ly * c


def platoon_odometry(kappa: float, heading: float, noise_m: float, seconds: float = 12.0, n_veh: int = 3,
                     gap_m: float = 25.0, speed: float = 25.0, seed: int = 0, lane_change: str | None = None):
    """(stamp_ns, vehicle, x, y, yaw) samples every 50 ms, in stamp order; the leader starts at s = 0."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(int(seconds / 0.05) + 1):
        t = k * 0.05
        for i in range(n_veh):
            vid = f'v{i + 1}'
            s = speed * t - gap_m * i
            d = 3.5 if (vid == lane_change and t > seconds / 2) else 0.0
            x, y = true_road(np.array([s]), d, 10.0, -5.0, heading, kappa)
            yaw = heading + kappa * s
            out.append((k * 50 * MS, vid, float(x[0] + rng.normal(0, noise_m)), float(y[0] + rng.normal(0, noise_m)),
                        float(yaw + rng.normal(0, 0.01))))
    return out


ROADS = [(0.0, 0.0), (math.radians(37), 0.0), (math.pi, 0.0), (-math.pi / 2, 0.0),
         (0.0, 1 / 400), (0.0, -1 / 400), (math.radians(30), 1 / 800), (math.radians(-120), -1 / 800),
         (math.radians(45), 1 / 500)]


def test_straight_along_x_through_origin_is_exactly_the_identity():
    rng = np.random.default_rng(1)
    xy = rng.uniform(-500, 500, (100, 2))
    road = RoadModel.straight(0.0, 0.0, 0.0)
    s, d = road.to_road(xy)
    assert np.array_equal(s, xy[:, 0]) and np.array_equal(d, xy[:, 1])
    x, y, h = road.to_map(s, d)
    assert np.array_equal(x, xy[:, 0]) and np.array_equal(y, xy[:, 1]) and np.all(h == 0.0)
    assert road.is_map_x
    vs, vd = road.velocity_to_road(xy, xy[::-1])
    assert np.array_equal(vs, xy[::-1, 0]) and np.array_equal(vd, xy[::-1, 1])


def test_a_noisy_path_along_x_snaps_to_the_map_x_axis():
    rng = np.random.default_rng(2)
    x = np.linspace(-200, 0, 400)
    road = RoadModel.from_path(np.c_[x, 0.1 + rng.normal(0, 0.3, x.size)])
    assert road.is_map_x
    assert road == RoadModel.map_x()


@pytest.mark.parametrize('heading', [0.0, math.radians(37), math.pi, -math.pi / 2])
def test_straight_roads_at_any_heading(heading):
    road = RoadModel.straight(3.0, -4.0, heading)
    s = np.linspace(-100, 100, 21)
    x, y = true_road(s, 0.0, 3.0, -4.0, heading, 0.0)
    rs, rd = road.to_road(np.c_[x, y])
    assert_allclose(np.diff(rs), 10.0, atol=1e-9)       # increasing with travel
    assert_allclose(rd, 0.0, atol=1e-9)
    x3, y3 = true_road(s, 3.5, 3.0, -4.0, heading, 0.0)
    assert_allclose(road.to_road(np.c_[x3, y3])[1], 3.5, atol=1e-9)
    assert_allclose(road.heading_at(rs), math.remainder(heading, 2 * math.pi) if heading != math.pi else -math.pi,
                    atol=1e-12)


@pytest.mark.parametrize('heading, kappa', ROADS)
def test_fit_from_a_noisy_path(heading, kappa):
    rng = np.random.default_rng(3)
    s = np.linspace(-300.0, 0.0, 301)                  # 300 m of history, a point a metre
    x, y = true_road(s, 0.0, 10.0, -5.0, heading, kappa)
    noisy = np.c_[x, y] + rng.normal(0, 0.2, (s.size, 2))
    road = RoadModel.from_path(noisy)
    assert abs(road.curvature - kappa) < 3e-5
    # Round trip within the fitted range (and beyond): below 1 cm.
    probe_s = np.linspace(-300, 150, 46)
    for d in (-3.5, 0.0, 3.5):
        px, py = true_road(probe_s, d, 10.0, -5.0, heading, kappa)
        rs, rd = road.to_road(np.c_[px, py])
        mx, my, _ = road.to_map(rs, rd)
        assert np.max(np.hypot(mx - px, my - py)) < 0.01
        assert np.all(np.diff(rs) > 0)
        assert_allclose(rd[probe_s <= 0], d, atol=0.1)      # lanes within the fitted range
    # 150 m ahead of the newest point: the road is where it truly is, within 0.5 m.
    s_lead = road.to_road(np.c_[x[-1:], y[-1:]])[0][0]
    ax, ay, ah = road.to_map(s_lead + 150.0, 0.0)
    tx, ty = true_road(np.array([150.0]), 0.0, 10.0, -5.0, heading, kappa)
    assert math.hypot(float(ax - tx[0]), float(ay - ty[0])) < 0.5
    assert abs(math.remainder(float(ah) - (heading + kappa * 150.0), 2 * math.pi)) < 0.005


@pytest.mark.parametrize('kappa', [1 / 400, -1 / 400, 1 / 800, -1 / 800])
def test_arc_round_trip_is_exact_to_a_micrometre(kappa):
    road = RoadModel(100.0, 50.0, 0.7, kappa)
    s = np.linspace(-300, 300, 61)
    for d in (-7.0, 0.0, 3.5):
        x, y, h = road.to_map(s, d)
        rs, rd = road.to_road(np.stack([x, y], axis=-1))
        assert_allclose(rs, s, atol=1e-6)
        assert_allclose(rd, d, atol=1e-6)
        assert_allclose(road.heading_at(s), h, atol=1e-12)
    assert_allclose(road.curvature_at(s), kappa)


def test_velocity_is_projected_on_the_road_heading_at_the_point():
    road = RoadModel(0.0, 0.0, 0.0, 1 / 400)
    x, y, h = road.to_map(np.array([200.0]), np.array([3.5]))
    vs, vd = road.velocity_to_road(np.c_[x, y], np.c_[20 * np.cos(h), 20 * np.sin(h)])
    assert_allclose(vs, 20.0, atol=1e-9)
    assert_allclose(vd, 0.0, atol=1e-9)


def test_from_path_refuses_too_little_or_too_sharp():
    with pytest.raises(FrameError, match='at least 8 path points'):
        RoadModel.from_path(np.zeros((3, 2)))
    with pytest.raises(FrameError, match='path of at least 20'):
        RoadModel.from_path(np.c_[np.linspace(0, 5, 20), np.zeros(20)])
    s = np.linspace(-60, 0, 100)
    x, y = true_road(s, 0.0, 0.0, 0.0, 0.0, 1 / 20)
    with pytest.raises(FrameError, match='more than road.max_curvature_per_m'):
        RoadModel.from_path(np.c_[x, y])


def test_config_is_validated():
    with pytest.raises(ConfigError, match='road.history_m must be a positive'):
        RoadConfig(history_m=0.0)
    with pytest.raises(ConfigError, match='road.min_points must be at least 3'):
        RoadConfig(min_points=2)
    with pytest.raises(ConfigError, match='min_length_m'):
        RoadConfig(min_length_m=400.0)


def test_model_is_immutable():
    road = RoadModel.straight(1.0, 2.0, 0.3)
    with pytest.raises(AttributeError, match='immutable'):
        road.curvature = 0.1


def feed(tracker, samples):
    for sample in samples:
        tracker.update(*sample)


@pytest.mark.parametrize('heading, kappa', ROADS)
@pytest.mark.parametrize('noise', [0.1, 0.3])
def test_tracker_follows_the_platoon_path(heading, kappa, noise):
    tracker = RoadTracker(vehicles=('v1', 'v2', 'v3'))
    samples = platoon_odometry(kappa, heading, noise, lane_change='v2')
    feed(tracker, samples)
    road = tracker.model()
    s_lead = 25.0 * 12.0
    # Lanes: the platoon's lane at d = 0 and the next lane at 3.5 m, over the platoon's stretch.
    probe = np.linspace(s_lead - 60.0, s_lead, 7)
    for d in (0.0, 3.5, -3.5):
        px, py = true_road(probe, d, 10.0, -5.0, heading, kappa)
        assert_allclose(road.to_road(np.c_[px, py])[1], d, atol=0.1)
    # 150 m ahead of the leader (white noise of 0.5 m per axis gives about 0.3 m here, 0.6 m at worst).
    ls = road.to_road(np.array(true_road(np.array([s_lead]), 0.0, 10.0, -5.0, heading, kappa)).T)[0][0]
    ax, ay, _ = road.to_map(ls + 150.0, 0.0)
    tx, ty = true_road(np.array([s_lead + 150.0]), 0.0, 10.0, -5.0, heading, kappa)
    assert math.hypot(float(ax - tx[0]), float(ay - ty[0])) < 0.5


def test_tracker_starts_straight_along_the_leader_and_keeps_the_road_while_stopped():
    tracker = RoadTracker(vehicles=('v1', 'v2'))
    assert tracker.model() is None
    tracker.update(0, 'v2', -20.0, 1.0, 0.5)
    tracker.update(0, 'v1', 0.0, 0.0, 0.5)
    first = tracker.model()
    assert first == RoadModel.straight(0.0, 0.0, 0.5)
    samples = platoon_odometry(1 / 500, 0.5, 0.2, seconds=8.0, n_veh=2)
    tracker = RoadTracker(vehicles=('v1', 'v2'))
    feed(tracker, samples)
    moving = tracker.model()
    assert abs(moving.curvature - 1 / 500) < 5e-5
    # Stopped: samples keep coming at the same place, the road stays the same object.
    stamp, _, x, y, yaw = next(sample for sample in reversed(samples) if sample[1] == 'v1')
    for k in range(1, 400):
        tracker.update(stamp + k * 50 * MS, 'v1', x + 0.01 * (k % 2), y, yaw)
        assert tracker.model() is moving


def test_tracker_refuses_time_going_back():
    tracker = RoadTracker()
    tracker.update(100, 'v1', 0.0, 0.0, 0.0)
    tracker.update(100, 'v1', 5.0, 0.0, 0.0)
    tracker.update(50, 'v1', 5.0, 0.0, 0.0)
    tracker.update(200, 'v1', math.nan, 0.0, 0.0)
    assert tracker.rejected == 3
    assert tracker.leader() == 'v1'
    assert tracker.model() == RoadModel.map_x()        # straight along x through the origin: snapped


def test_tracker_lanes_hold_with_half_a_metre_of_noise():
    tracker = RoadTracker(vehicles=('v1', 'v2', 'v3'))
    feed(tracker, platoon_odometry(1 / 400, math.radians(37), 0.5, lane_change='v3'))
    road = tracker.model()
    probe = np.linspace(240.0, 300.0, 7)
    for d in (0.0, 3.5):
        px, py = true_road(probe, d, 10.0, -5.0, math.radians(37), 1 / 400)
        assert_allclose(road.to_road(np.c_[px, py])[1], d, atol=0.1)


def test_a_short_noisy_path_gives_a_straight_road():
    """30 m of path with 0.3 m of noise: the curvature a fit finds there is not significant."""
    rng = np.random.default_rng(5)
    s = np.linspace(-30.0, 0.0, 31)
    x, y = true_road(s, 0.0, 10.0, -5.0, math.radians(37), 0.0)
    noisy = np.c_[x, y] + rng.normal(0, 0.3, (s.size, 2))
    road = RoadModel.from_path(noisy)
    assert road.curvature == 0.0
    assert abs(road.heading0 - math.radians(37)) < 0.03
    loose = RoadModel.from_path(noisy, RoadConfig(curvature_sigmas=0.0))
    assert abs(loose.curvature) > 1e-4


def test_tracker_path_buffers_keep_exactly_the_recent_points_over_a_long_drive():
    # 60 s at 20 m/s, one sample a metre or more apart every 50 ms: the buffers grow and move their
    # start many times; what a refit reads is always the last history_s of points, in order.
    cfg = RoadConfig(history_s=5.0)
    tracker = RoadTracker(cfg)
    kept: list[tuple[int, float, float]] = []
    for k in range(1200):
        stamp, x, y = k * 50 * MS, 1.0 * k + 0.001 * k * k / 1200, 0.25 * math.sin(k / 40)
        tracker.update(stamp, 'v1', x, y, 0.0)
        kept.append((stamp, x, y))
        kept = [p for p in kept if p[0] >= stamp - 5 * 1_000_000_000]
        if k % 97 == 0 or k == 1199:
            path = tracker._paths['v1']
            assert len(path) == len(kept)
            np.testing.assert_array_equal(path.points(), np.array([(p[1], p[2]) for p in kept]))
            np.testing.assert_array_equal(path.stamps[path.start:path.end], [p[0] for p in kept])
    assert tracker.model() == RoadModel._fit(np.array([(p[1], p[2]) for p in kept]), np.ones(len(kept)),
                                            np.array(kept[-1][1:]), 0.0, cfg)


def test_tracker_refills_a_path_emptied_by_a_gap_in_time():
    tracker = RoadTracker(RoadConfig(history_s=1.0))
    tracker.update(0, 'v1', 0.0, 0.0, 0.0)
    tracker.update(5_000_000_000, 'v1', 0.5, 0.0, 0.0)     # too close to be a point; 5 s on, the old one went
    assert len(tracker._paths['v1']) == 0
    tracker.update(5_050_000_000, 'v1', 0.6, 0.0, 0.0)     # an empty path takes the next sample, however close
    np.testing.assert_array_equal(tracker._paths['v1'].points(), [[0.6, 0.0]])
