"""core/outcome.py: gaps, ttc, collision, braking and headway on hand-built trajectories with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.metrics import Box
from cooperative_fusion.core.outcome import (OUTCOME_KEYS, OutcomeConfig, boxes_overlap, clipped_x_range, mean_accel,
                                             nearest_ahead, outcome_report, vehicle_outcome)

NS = 1_000_000_000


def _placed(s: float, d: float, heading: float, length: float, width: float, id_: str, speed: float = 0.0) -> Box:
    """A box at road coordinates (s along, d across) of a straight road with the given heading."""
    c, sn = math.cos(heading), math.sin(heading)
    return Box(s * c - d * sn, s * sn + d * c, length, width, heading, id_, 'car', 1.5, speed * c, speed * sn)


def _closing_on_stopped(heading: float, speed: float = 10.0, dt: float = 0.1, duration: float = 4.0):
    """v1 (4 m long, centre at s = 0 at t = 0) drives at ``speed`` into a stopped 4 m box whose centre is at
    s = 30: gap 26 - speed * t. A car in the next lane (d = 3.5 m) and one behind v1 are not ahead."""
    frames = []
    for k in range(int(round(duration / dt)) + 1):
        t = k * dt
        s = speed * t
        frames.append((int(round(t * NS)), [
            _placed(s, 0.0, heading, 4.0, 1.8, 'v1', speed),
            _placed(30.0, 0.0, heading, 4.0, 1.8, 'h1'),
            _placed(s + 10.0, 3.5, heading, 4.0, 1.8, 't1', speed),
            _placed(s - 12.0, 0.0, heading, 4.0, 1.8, 'v2', speed)]))
    stamps = np.array([f[0] for f in frames], dtype=np.int64)
    return frames, (stamps, np.full(len(stamps), speed))


@pytest.mark.parametrize('heading', [0.0, math.radians(35.0), math.pi, -math.radians(100.0)])
def test_closing_on_a_stopped_box_gap_ttc_and_collision_on_any_heading(heading):
    frames, speed = _closing_on_stopped(heading)
    o = vehicle_outcome('v1', frames, speed)
    # the gap reaches 0 at t = 2.6 s, the boxes overlap from then on (sampled at 2.7 s: 1 m deep)
    assert o.min_gap_m == pytest.approx(0.0, abs=1e-6) and o.min_gap_object == 'h1'
    assert o.min_ttc_s == pytest.approx(0.0, abs=1e-6) and o.min_ttc_object == 'h1'
    assert o.collision and o.collision_object == 'h1'
    assert o.collision_ns in (int(round(2.6 * NS)), int(round(2.7 * NS)))
    assert o.max_decel_mps2 == pytest.approx(0.0, abs=1e-9)
    # at t = 0: gap 26 m, ttc 2.6 s, headway 2.6 s
    first = vehicle_outcome('v1', frames[:1], speed)
    assert first.min_gap_m == pytest.approx(26.0) and first.min_ttc_s == pytest.approx(2.6)
    assert first.headway_s == pytest.approx({'p5': 2.6, 'p50': 2.6, 'p95': 2.6})
    # stopping 1 s before: min gap 26 - 20 = 6 m, ttc 0.6 s, no collision
    early = vehicle_outcome('v1', frames[:21], speed)
    assert early.min_gap_m == pytest.approx(6.0) and early.min_ttc_s == pytest.approx(0.6)
    assert not early.collision and early.collision_ns is None


def test_the_follower_measures_to_the_leaders_rear_bumper():
    frames, speed = _closing_on_stopped(math.radians(20.0))
    o = vehicle_outcome('v2', frames[:5], (speed[0][:5], speed[1][:5]))
    # v2 is 12 m behind v1 (centre to centre), both 4 m long, same speed: gap 8 m, never closing
    assert o.min_gap_m == pytest.approx(8.0) and o.min_gap_object == 'v1'
    assert o.min_ttc_s is None
    assert o.headway_s == pytest.approx({'p5': 0.8, 'p50': 0.8, 'p95': 0.8})
    assert not o.collision


def test_a_cutting_in_car_counts_once_its_body_enters_the_corridor():
    own = _placed(0.0, 0.0, 0.3, 4.0, 1.8, 'v1', 20.0)
    cfg = OutcomeConfig()
    # next lane: 3.5 m across, inner side at 2.6 m: outside the 1.75 m corridor
    assert nearest_ahead(own, [own, _placed(15.0, 3.5, 0.3, 4.0, 1.8, 'c')], 20.0, cfg) is None
    # 2.2 m across, turned 0.3 rad towards the lane at 15 m/s: its front corner is in the corridor
    heading = 0.3 - 0.3
    cut = Box(*_xy(15.0, 2.2, 0.3), 4.0, 1.8, heading, 'c', 'car', 1.5, 15.0 * math.cos(heading),
              15.0 * math.sin(heading))
    ahead = nearest_ahead(own, [own, cut], 20.0, cfg)
    assert ahead is not None and ahead.object_id == 'c'
    local = own.to_local(cut.corners())
    inside = local[np.abs(local[:, 1]) <= 1.75]
    assert len(inside) == 1 and 0 < ahead.gap_m < inside[0, 0] - 2.0   # an edge enters the corridor nearer
    assert ahead.closing_mps == pytest.approx(20.0 - 15.0 * math.cos(0.3))


def _xy(s: float, d: float, heading: float) -> tuple[float, float]:
    c, sn = math.cos(heading), math.sin(heading)
    return s * c - d * sn, s * sn + d * c


def test_clipped_range_of_a_polygon_in_the_strip():
    square = np.array([[0.0, -1.0], [2.0, -1.0], [2.0, 1.0], [0.0, 1.0]])
    assert clipped_x_range(square, 0.5) == pytest.approx((0.0, 2.0))
    assert clipped_x_range(square + (0.0, 5.0), 0.5) is None
    diamond = np.array([[0.0, 0.0], [2.0, -2.0], [4.0, 0.0], [2.0, 2.0]]) + (10.0, 3.0)
    # only its bottom tip (y from 1 to 1.75) is in the strip: x from 12 - 0.75 to 12 + 0.75
    lo, hi = clipped_x_range(diamond, 1.75)
    assert lo == pytest.approx(12.0 - 0.75) and hi == pytest.approx(12.0 + 0.75)


def test_boxes_overlap_needs_intersecting_interiors():
    a = Box(0.0, 0.0, 4.0, 2.0, 0.0, 'a')
    assert boxes_overlap(a, Box(3.9, 0.0, 4.0, 2.0, 0.0, 'b'))
    assert not boxes_overlap(a, Box(4.0, 0.0, 4.0, 2.0, 0.0, 'b'))           # touching
    assert not boxes_overlap(a, Box(3.0, 2.2, 4.0, 2.0, 0.0, 'b'))
    # a diamond whose bounding box overlaps a's corner region but not a itself
    assert not boxes_overlap(a, Box(3.3, 1.8, 1.4, 1.4, math.pi / 4, 'b'))
    assert boxes_overlap(a, Box(2.5, 1.2, 1.4, 1.4, math.pi / 4, 'b'))


def test_braking_is_averaged_over_the_window_and_noise_is_tamed():
    t = np.arange(0, 501) * 20_000_000                                   # 10 s at 50 Hz
    ts = t * 1e-9
    v = np.where(ts < 2.0, 25.0, np.maximum(25.0 - 3.0 * (ts - 2.0), 10.0))   # 3 m/s² from 2 s to 7 s
    stamps, accel = mean_accel(t, v, 0.2)
    assert stamps[0] == 100_000_000 and stamps[-1] == t[-1] - 100_000_000
    assert -accel.min() == pytest.approx(3.0)
    assert_allclose(accel[(stamps * 1e-9 > 2.2) & (stamps * 1e-9 < 6.8)], -3.0, atol=1e-9)
    noisy = v + np.random.default_rng(0).normal(0.0, 0.01, v.size)          # 1 cm/s speed noise
    raw = -np.diff(noisy).min() / 0.02
    _, smooth = mean_accel(t, noisy, 0.2)
    assert raw > 4.0                                                          # one-step differences: noise
    assert -smooth.min() == pytest.approx(3.0, abs=0.25)


def test_max_decel_and_headway_percentiles_from_speeds():
    frames = []
    for k in range(101):                                                  # 10 s at 10 Hz
        t = k * 0.1
        lead_s = 30.0 + 20.0 * t
        gap = 10.0 + t                                                     # 10 m -> 20 m
        frames.append((int(round(t * NS)), [_placed(lead_s, 0.0, 1.0, 4.0, 1.8, 'v1', 20.0),
                                            _placed(lead_s - 4.0 - gap, 0.0, 1.0, 4.0, 1.8, 'v2', 20.0 - 1.0)]))
    t50 = np.arange(0, 501) * 20_000_000
    v2 = np.where(t50 < 5 * NS, 20.0, 20.0 - 2.0 * np.minimum((t50 - 5 * NS) * 1e-9, 1.0))
    o = vehicle_outcome('v2', frames, (t50, v2))
    assert o.max_decel_mps2 == pytest.approx(2.0)
    assert o.min_gap_m == pytest.approx(10.0) and o.min_ttc_s is None
    assert o.headway_samples == 101
    gaps = 10.0 + np.arange(101) * 0.1
    own = np.interp(np.arange(101) * 0.1 * NS, t50, v2)
    expected = {f'p{p}': float(np.percentile(gaps / own, p)) for p in (5, 50, 95)}
    assert o.headway_s == pytest.approx(expected)


def test_report_keys_per_vehicle_and_no_data_is_none():
    frames, speed = _closing_on_stopped(0.0)
    report = outcome_report(['v1', 'v2', 'v9'], frames, {'v1': speed, 'v2': speed})
    assert set(OUTCOME_KEYS) <= set(report)
    assert report['collision'] == {'v1': True, 'v2': True, 'v9': False}
    assert report['min_gap_m']['v9'] is None and report['time_headway_s']['v9'] is None
    assert report['max_decel_mps2']['v9'] is None
    assert report['outcome_events']['v1']['collision_object'] == 'h1'
    assert report['outcome_events']['v1']['collision_s'] == pytest.approx(2.7)


def test_config_is_validated():
    with pytest.raises(ConfigError, match='corridor_half_width_m must be a finite number > 0, got -1'):
        OutcomeConfig(corridor_half_width_m=-1.0)
    with pytest.raises(ConfigError, match='headway_percentiles'):
        OutcomeConfig(headway_percentiles=(5, 120))
