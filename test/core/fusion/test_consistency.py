"""Cross-vehicle consistency: ghost and hidden obstacles down-weighted, scores, moving objects, witnesses."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.fusion.consistency import ConsistencyChecker, ConsistencyConfig
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.common_grid import CommonGrid, FusionConfig
from cooperative_fusion.core.grid import GridSpec, logodds_to_prob, prob_to_logodds

RES = 0.2
SPEC = GridSpec(0.0, -6.0, RES, 200, 60)          # x 0..40 m, y -6..6 m
FREE = float(prob_to_logodds(np.float32(0.2)))
OCC = float(prob_to_logodds(np.float32(0.9)))
T0 = 10 * 10**9
GHOST = (20.0, 24.4, -0.8, 1.0)                    # a 4.4 x 1.8 m car-sized block (whole cells)
BARRIER = (5.0, 35.0, 5.0, 5.4)                   # a roadside barrier every vehicle sees


def cells(x0: float, x1: float, y0: float, y1: float, spec: GridSpec = SPEC) -> tuple[slice, slice]:
    """Array slices [iy, ix] of the cells of ``spec`` inside [x0, x1) x [y0, y1), clipped at the grid's start."""
    return (slice(max(0, int(round((y0 - spec.origin_y) / RES))), max(0, int(round((y1 - spec.origin_y) / RES)))),
            slice(max(0, int(round((x0 - spec.origin_x) / RES))), max(0, int(round((x1 - spec.origin_x) / RES)))))


def road(*boxes: tuple[float, float, float, float], spec: GridSpec = SPEC) -> tuple[np.ndarray, np.ndarray]:
    """Evidence of a free road with the barrier and ``boxes`` occupied: (logodds, known)."""
    lo = np.full(spec.shape, FREE, dtype=np.float32)
    for box in (BARRIER, *boxes):
        lo[cells(*box, spec=spec)] = OCC
    return lo, np.ones(spec.shape, dtype=bool)


def honest_round(checker: ConsistencyChecker, stamp_ns: int, vids=('v1', 'v3', 'v4'), boxes=()):
    return {v: checker.check(v, SPEC, *road(*boxes), stamp_ns + 10_000_000 * i) for i, v in enumerate(vids)}


def test_ghost_is_down_weighted_and_its_source_scored_down():
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=0.5, flag_below=0.8))
    honest_round(checker, T0)
    lo, known = road(GHOST)
    res = checker.check('v2', SPEC, lo, known, T0 + 40_000_000)
    ghost = cells(*GHOST)
    assert res.witnesses == 3
    assert np.all(res.conflict[ghost])
    assert res.conflict_cells == res.conflict[ghost].size == 22 * 9
    np.testing.assert_allclose(res.logodds[ghost], 0.1 * OCC, rtol=1e-6)
    outside = ~res.conflict
    np.testing.assert_array_equal(res.logodds[outside], lo[outside])     # the rest is untouched
    barrier = res.conflict[cells(*BARRIER)].size
    assert res.compared_cells == barrier + 22 * 9
    assert res.sample == pytest.approx(barrier / (barrier + 22 * 9))
    assert res.score == pytest.approx(1.0 - 0.5 * (1.0 - res.sample))
    # Two more ghost rounds: the score sinks below flag_below.
    for k in (1, 2):
        honest_round(checker, T0 + k * 100_000_000)
        res = checker.check('v2', SPEC, lo, known, T0 + k * 100_000_000 + 40_000_000)
    assert res.flagged and res.score < 0.8
    st = checker.status('v2')
    assert st.flagged and st.samples == 3 and st.first_flagged_stamp_ns == T0 + 140_000_000   # 0.80, then 0.70
    assert st.total_conflict_cells == 3 * 22 * 9
    for v in ('v1', 'v3', 'v4'):                 # the honest ones never disagreed with two others
        assert checker.status(v).score == pytest.approx(1.0) and not checker.status(v).flagged


def test_honest_vehicles_next_to_the_rogue_keep_their_score():
    checker = ConsistencyChecker(ConsistencyConfig())
    for k in range(10):
        t = T0 + k * 100_000_000
        checker.check('v2', SPEC, *road(GHOST), t)          # the rogue first: a witness for everyone after it
        rounds = honest_round(checker, t + 10_000_000)
        for r in rounds.values():
            assert r.conflict_cells == 0                     # one dissenting witness is not enough
            if k > 0:                                        # the previous round gives every one two more
                assert r.sample == pytest.approx(1.0)
    assert all(checker.status(v).score == pytest.approx(1.0) for v in ('v1', 'v3', 'v4'))
    assert checker.status('v2').flagged


def test_hiding_an_obstacle_the_others_see_is_a_conflict():
    car = (12.0, 16.4, -0.8, 1.0)
    checker = ConsistencyChecker(ConsistencyConfig())
    honest_round(checker, T0, boxes=(car,))
    res = checker.check('v2', SPEC, *road(), T0 + 40_000_000)              # v2 says the car's cells are free
    inner = cells(car[0] + 0.2, car[1] - 0.2, car[2] + 0.2, car[3] - 0.2)
    assert np.all(res.conflict[inner])
    assert res.conflict_cells == 22 * 9
    np.testing.assert_allclose(res.logodds[inner], 0.1 * FREE, rtol=1e-6)
    assert res.sample == pytest.approx(1.0 - 198 / (198 + 300))   # the barrier agrees


def test_one_witness_or_stale_witnesses_do_not_make_a_conflict():
    checker = ConsistencyChecker(ConsistencyConfig(max_age_ns=200_000_000))
    checker.check('v1', SPEC, *road(), T0)
    res = checker.check('v2', SPEC, *road(GHOST), T0 + 10_000_000)
    assert res.witnesses == 1 and res.conflict_cells == 0 and res.sample is None
    checker.check('v3', SPEC, *road(), T0 - 300_000_000)                  # 0.31 s before v2's next stamp
    res = checker.check('v2', SPEC, *road(GHOST), T0 + 10_000_000)
    assert res.witnesses == 1 and res.conflict_cells == 0
    assert checker.status('v2').score == 1.0


@pytest.mark.parametrize('shift_m', [0.2, -0.2])
def test_a_moving_car_seen_a_cell_apart_is_not_a_conflict(shift_m):
    """A car moving 5 m/s between stamps 40 ms apart lands a cell away: the margin keeps it out."""
    car = (12.0, 16.4, -0.8, 1.0)
    moved = (car[0] + shift_m, car[1] + shift_m, car[2], car[3])
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0))
    honest_round(checker, T0, vids=('v1', 'v3'), boxes=(car,))
    res = checker.check('v4', SPEC, *road(moved), T0 + 40_000_000)
    assert res.witnesses == 2
    assert res.conflict_cells == 0
    assert res.sample == pytest.approx(1.0) and not res.flagged
    # Without the margin (and no swept distance) the leading / trailing column would conflict both ways.
    strict = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0, motion_margin_m=0.0, max_speed_mps=0.0))
    honest_round(strict, T0, vids=('v1', 'v3'), boxes=(car,))
    res = strict.check('v4', SPEC, *road(moved), T0 + 40_000_000)
    assert res.conflict_cells == 2 * 9


def car_at(t_ns: int, speed: float = 25.0, heading: str = 'x') -> tuple[float, float, float, float]:
    """A 4.4 x 1.8 m car moving at ``speed`` along x (or y), its rear at 8 m at T0."""
    d = speed * (t_ns - T0) * 1e-9
    if heading == 'x':
        return (8.0 + d, 12.4 + d, -0.8, 1.0)
    return (14.0, 15.8, -5.0 + d, -0.6 + d)


@pytest.mark.parametrize('max_speed_mps, expect_conflict', [(30.0, False), (0.0, True)])
def test_a_car_at_25_mps_seen_by_two_vehicles_0_15_s_apart_is_not_a_conflict(max_speed_mps, expect_conflict):
    """v1 and v3 see the car at T0 and T0 + 20 ms, v4 0.15 s later 3.75 m further on: where v4 sees it
    now the others saw free road, where they saw it v4 sees free road. Swept, so no evidence either way
    (with max_speed_mps 0 both the car's new front and its old rear are called conflicts: the control)."""
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0, max_speed_mps=max_speed_mps))
    for vid, t in (('v1', T0), ('v3', T0 + 20_000_000)):
        checker.check(vid, SPEC, *road(car_at(t)), t)
    t4 = T0 + 150_000_000
    res = checker.check('v4', SPEC, *road(car_at(t4)), t4)
    assert res.witnesses == 2
    if expect_conflict:
        ahead = cells(car_at(T0 + 20_000_000)[1] + 0.2, car_at(t4)[1], -0.8, 1.0)       # v4's new front
        behind = cells(car_at(T0 + 20_000_000)[0] + 0.2, car_at(t4)[0] - 0.4, -0.8, 1.0)    # the road it left
        assert np.all(res.conflict[ahead]) and np.all(res.conflict[behind])
        assert res.flagged
    else:
        assert res.conflict_cells == 0 and res.sample == pytest.approx(1.0) and not res.flagged
        np.testing.assert_array_equal(res.logodds, road(car_at(t4))[0])
    if not expect_conflict:
        # v1 in turn, against v3 0.14 s and v4 0.01 s older: no conflict either.
        res = checker.check('v1', SPEC, *road(car_at(T0 + 160_000_000)), T0 + 160_000_000)
        assert res.witnesses == 2 and res.conflict_cells == 0


def test_the_swept_distance_follows_the_road_heading():
    """On a road along y the car moves along y: swept along y, not along x."""
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0))
    north = np.pi / 2
    for vid, t in (('v1', T0), ('v3', T0 + 20_000_000)):
        checker.check(vid, SPEC, *road(car_at(t, heading='y')), t, road_heading_rad=north)
    t4 = T0 + 150_000_000
    assert checker.check('v4', SPEC, *road(car_at(t4, heading='y')), t4, road_heading_rad=north).conflict_cells == 0
    across = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0))
    for vid, t in (('v1', T0), ('v3', T0 + 20_000_000)):
        across.check(vid, SPEC, *road(car_at(t, heading='y')), t)          # road heading x: wrong direction
    assert across.check('v4', SPEC, *road(car_at(t4, heading='y')), t4).conflict_cells > 0


@pytest.mark.parametrize('dt_ns', [0, 150_000_000])
def test_a_static_ghost_on_open_road_is_a_conflict_whatever_the_stamps(dt_ns):
    """Two witnesses see free road at the same time as each other, v2's ghost is 0 or 0.15 s later: the
    swept distance (30 m/s x 0.15 s = 4.5 m) reaches from the witnesses' own occupied cells (the barrier,
    5 m to the side: along the road only) and v2's, not from the ghost onto the witnesses' free road."""
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0))
    checker.check('v1', SPEC, *road(), T0)
    checker.check('v3', SPEC, *road(), T0)
    res = checker.check('v2', SPEC, *road(GHOST), T0 + dt_ns)
    assert res.witnesses == 2
    assert res.conflict_cells == 22 * 9 and np.all(res.conflict[cells(*GHOST)])
    assert res.flagged
    # A ghost within the swept distance of a real obstacle along the road is the price of the bound.
    near = (BARRIER[1] + 1.0, BARRIER[1] + 4.0, BARRIER[2], BARRIER[3])
    res = checker.check('v4', SPEC, *road(near), T0 + dt_ns)
    assert (res.conflict_cells == 0) is (dt_ns > 0)


@pytest.mark.parametrize('min_area_m2', [2.0, 0.0])
def test_a_radar_false_alarm_is_down_weighted_but_not_scored(min_area_m2):
    """A 1.2 x 1.0 m blob (30 cells, a radar false alarm's evidence) where two others see free road: its
    cells are scaled down either way; below score_min_area_m2 it does not count in the score."""
    blob = (28.0, 29.2, -3.0, -2.0)
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0, score_min_area_m2=min_area_m2))
    honest_round(checker, T0, vids=('v1', 'v3'))
    lo, known = road(blob)
    res = checker.check('v4', SPEC, lo, known, T0 + 30_000_000)
    assert res.conflict_cells == 30 and np.all(res.conflict[cells(*blob)])
    np.testing.assert_allclose(res.logodds[cells(*blob)], 0.1 * OCC, rtol=1e-6)
    barrier = res.conflict[cells(*BARRIER)].size
    if min_area_m2 > 0:
        assert res.compared_cells == barrier and res.sample == pytest.approx(1.0) and not res.flagged
    else:
        assert res.compared_cells == barrier + 30 and res.sample == pytest.approx(barrier / (barrier + 30))
    # A car-sized ghost (7.9 m2) is scored whatever the threshold.
    res = checker.check('v2', SPEC, *road(GHOST), T0 + 40_000_000)
    assert res.sample == pytest.approx(barrier / (barrier + 22 * 9)) and res.flagged


def test_a_car_that_moved_far_between_old_stamps_is_not_compared():
    """The others saw the car 5 m back half a second ago: beyond max_age, so no ghost is called."""
    car = (12.0, 16.4, -0.8, 1.0)
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0))
    honest_round(checker, T0, vids=('v1', 'v3'), boxes=(car,))
    res = checker.check('v4', SPEC, *road((17.0, 21.4, -0.8, 1.0)), T0 + 500_000_000)
    assert res.witnesses == 0 and res.conflict_cells == 0 and not res.flagged


def test_a_flagged_vehicle_is_no_witness_and_grids_overlay_by_lattice_offset():
    checker = ConsistencyChecker(ConsistencyConfig(score_smoothing=1.0, flag_below=0.7))
    honest_round(checker, T0, vids=('v1', 'v3'))
    assert checker.check('v2', SPEC, *road(GHOST), T0 + 20_000_000).flagged
    # v4's window starts 10 m further along x; its barrier and free road still line up with the others'.
    shifted = GridSpec(10.0, -6.0, RES, 200, 60)
    lo, known = road(GHOST, spec=shifted)                        # v4 repeats the flagged v2's ghost
    res = checker.check('v4', shifted, lo, known, T0 + 30_000_000)
    assert res.witnesses == 2                                    # v1 and v3, not the flagged v2
    assert np.all(res.conflict[cells(*GHOST, spec=shifted)])
    free = np.full(shifted.shape, FREE, dtype=np.float32)
    assert res.flagged                                           # repeating the ghost flags v4 too
    res = checker.check('v3', shifted, free, known, T0 + 40_000_000)
    assert res.witnesses == 1 and res.conflict_cells == 0        # v1 only: v2 and v4 are flagged


def test_scaled_ghost_stays_free_in_the_common_grid():
    """Scaling before integrate is the per-cell weight: the ghost never reaches p = 0.65.

    The ghost lies at long range, where two honest vehicles' free evidence is weak (p = 0.35): fused
    as it is, each ghost message lifts the cells above 0.65 again.
    """
    far_free = float(prob_to_logodds(np.float32(0.35)))
    checker = ConsistencyChecker(ConsistencyConfig())
    weights = {'v1': 1.0, 'v2': 1.0, 'v3': 1.0}
    grid, unchecked = CommonGrid(FusionConfig(SPEC, weights)), CommonGrid(FusionConfig(SPEC, weights))
    ghost = cells(*GHOST)
    worst, worst_unchecked = 0.0, 0.0
    for k in range(20):
        t = T0 + k * 100_000_000
        for i, v in enumerate(('v1', 'v3', 'v2')):
            s = t + i * 10_000_000
            lo, known = road(GHOST) if v == 'v2' else road()
            if v != 'v2':
                lo[cells(18.0, 26.0, -3.0, 3.0)] = far_free
            res = checker.check(v, SPEC, lo, known, s)
            grid.integrate(v, SPEC, res.logodds, known, s, s)
            unchecked.integrate(v, SPEC, lo, known, s, s)
            if k > 0:   # the first round is before the honest vehicles' evidence exists for the check
                worst = max(worst, float(logodds_to_prob(grid.logodds[ghost]).max()))
                worst_unchecked = max(worst_unchecked, float(logodds_to_prob(unchecked.logodds[ghost]).max()))
    assert worst < 0.5
    assert worst_unchecked >= 0.65
    assert checker.status('v2').flagged


def test_consistency_config_rejects_bad_values():
    with pytest.raises(ConfigError, match='conflict_weight must be in'):
        ConsistencyConfig(conflict_weight=1.5)
    with pytest.raises(ConfigError, match='min_witnesses must be >= 1'):
        ConsistencyConfig(min_witnesses=0)
    with pytest.raises(ConfigError, match='score_smoothing must be in'):
        ConsistencyConfig(score_smoothing=0.0)
    with pytest.raises(ConfigError, match='max_speed_mps must be a finite number >= 0'):
        ConsistencyConfig(max_speed_mps=-1.0)
    with pytest.raises(ConfigError, match='score_min_area_m2 must be a finite number >= 0'):
        ConsistencyConfig(score_min_area_m2=float('nan'))
    with pytest.raises(ConfigError, match='do not match the spec'):
        ConsistencyChecker(ConsistencyConfig()).check('v1', SPEC, np.zeros((3, 3), np.float32),
                                                      np.ones((3, 3), bool), T0)
