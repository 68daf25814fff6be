from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.twin.idm import (IdmParams, desired_gap, free_road_acceleration,
                                         idm_acceleration, idm_step)


def test_equilibrium_gap_gives_zero_acceleration():
    p = IdmParams()
    v = np.array([5.0, 12.0, 20.0, 24.0])
    s_e = (p.s0_m + v * p.time_headway_s) / np.sqrt(1.0 - (v / p.v0_mps) ** p.delta)
    assert_allclose(idm_acceleration(v, v, s_e, p), 0.0, atol=1e-12)
    # Closer than equilibrium brakes, further accelerates.
    assert (idm_acceleration(v, v, 0.9 * s_e, p) < 0).all()
    assert (idm_acceleration(v, v, 1.1 * s_e, p) > 0).all()


def test_free_road_matches_infinite_gap():
    p = IdmParams(v0_mps=30.0)
    v = np.array([0.0, 10.0, 30.0, 35.0])
    assert_allclose(idm_acceleration(v, np.zeros(4), np.full(4, np.inf), p), free_road_acceleration(v, p))
    assert_allclose(free_road_acceleration(v, p)[:3], [1.5, 1.5 * (1 - (1 / 3) ** 4), 0.0])
    assert free_road_acceleration(v, p)[3] < 0


def test_desired_gap_grows_with_closing_speed():
    p = IdmParams()
    s_same = desired_gap(np.array([20.0]), np.array([20.0]), p)
    s_closing = desired_gap(np.array([20.0]), np.array([0.0]), p)
    assert_allclose(s_same, p.s0_m + 20.0 * p.time_headway_s)
    assert_allclose(s_closing, s_same + 20.0 * 20.0 / (2 * np.sqrt(p.a_max * p.b_comf)))


def test_approach_to_stopped_leader_decelerates_and_stops_behind_it():
    p = IdmParams()
    x, v = np.array([0.0]), np.array([25.0])
    x_obstacle = 200.0
    decelerated = False
    for _ in range(3000):   # 60 s at 20 ms
        a = idm_acceleration(v, np.zeros(1), x_obstacle - x, p)
        decelerated |= bool(a[0] < -p.b_comf)
        x, v = idm_step(x, v, a, 0.02)
        assert v[0] >= 0.0
        assert x[0] < x_obstacle
    assert decelerated
    assert_allclose(v, 0.0, atol=1e-3)
    assert 0.5 * p.s0_m < x_obstacle - x[0] < 2.0 * p.s0_m


def test_idm_step_stops_without_overshoot():
    x, v = idm_step(np.array([0.0, 0.0, 5.0]), np.array([1.0, 10.0, 0.0]), np.array([-4.0, 2.0, -3.0]), 1.0)
    # 1 m/s at -4 m/s² stops after 0.25 s and 0.125 m; the second is ballistic; the third stays put.
    assert_allclose(x, [0.125, 11.0, 5.0])
    assert_allclose(v, [0.0, 12.0, 0.0])


def _plain_idm_step(x, v, a, dt):
    """idm_step written out with the stopping point computed for every vehicle (the former code)."""
    v = np.maximum(v, 0.0)
    v_new = v + a * dt
    stops = v_new < 0.0
    with np.errstate(divide='ignore', invalid='ignore'):
        x_stop = x - np.where(stops, v * v / (2.0 * np.where(stops, a, -1.0)), 0.0)
    return np.where(stops, x_stop, x + v * dt + 0.5 * a * dt * dt), np.maximum(v_new, 0.0)


@pytest.mark.parametrize('seed', range(4))
def test_idm_step_is_bit_identical_to_the_plain_step(seed):
    # Steps with and without stopping vehicles (the stopping arithmetic runs only when one stops).
    rng = np.random.default_rng(seed)
    for n in (1, 4, 50):
        x, v = rng.uniform(-100, 100, n), rng.uniform(-1, 30, n)
        for a in (rng.uniform(-2, 3, n), rng.uniform(-300, 3, n), np.zeros(n)):
            got, want = idm_step(x, v, a, 0.1), _plain_idm_step(x, v, a, 0.1)
            for g, w in zip(got, want):
                assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()


def test_idm_step_never_yields_negative_speed():
    rng = np.random.default_rng(0)
    x, v = np.zeros(1000), rng.uniform(0, 30, 1000)
    for _ in range(50):
        x_old = x
        x, v = idm_step(x, v, rng.uniform(-10, 3, 1000), 0.1)
        assert (v >= 0).all()
        assert (x >= x_old - 1e-12).all()


@pytest.mark.parametrize('field,value,pattern', [
    ('v0_mps', 0.0, r'IdmParams.v0_mps must be a positive finite number, got 0.0'),
    ('b_comf', -1.0, r'IdmParams.b_comf must be a positive'),
    ('s0_m', float('nan'), r'IdmParams.s0_m must be a finite number >= 0, got nan'),
])
def test_invalid_params(field, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        IdmParams(**{field: value})


def test_invalid_dt():
    with pytest.raises(ConfigError, match=r'dt must be a positive finite number of seconds, got 0'):
        idm_step(np.zeros(1), np.zeros(1), np.zeros(1), 0)


def test_unchecked_acceleration_equals_the_checked_one_exactly() -> None:
    from cooperative_fusion.core.twin.idm import idm_acceleration_unchecked
    rng = np.random.default_rng(7)
    params = IdmParams()
    for _ in range(50):
        n = int(rng.integers(1, 8))
        v, v_lead = rng.uniform(-1.0, 40.0, n), rng.uniform(-1.0, 40.0, n)
        gap = np.where(rng.random(n) < 0.3, np.inf, rng.uniform(-2.0, 80.0, n))
        v0 = rng.uniform(1.0, 35.0, n)
        np.testing.assert_array_equal(idm_acceleration_unchecked(v, v_lead, gap, params, v0),
                                      idm_acceleration(v, v_lead, gap, params, v0))
        np.testing.assert_array_equal(idm_acceleration_unchecked(v, v_lead, gap, params, params.v0_mps),
                                      idm_acceleration(v, v_lead, gap, params))
