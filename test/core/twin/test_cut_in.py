"""Cut-ins: a car moving into a platoon vehicle's lane just ahead of it at about its speed (issue 13).

The conflict rule (``Conflict.cut_in_s``), the rollout's sideways-motion gates that decide when a track's
lateral motion is followed (sustained over cycles, settled tracks only), and the tracker's tighter centroid
noise across the road that lets it see a lane change sooner.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.twin.conflicts import ConflictLevel, find_conflicts
from cooperative_fusion.core.twin.prediction import ObstacleState, PlatoonState, PredictionConfig, rollout
from cooperative_fusion.core.twin.tracking import MultiObjectTracker, TrackerConfig
from cooperative_fusion.core.twin.twin_core import TwinConfig, TwinCore
from cooperative_fusion.core.twin.warnings import warning_of

V = 25.0
TRUCK = 12.0


def truck() -> PlatoonState:
    """One 12 m truck at 25 m/s, centre at x = 0, lane y = 0."""
    return PlatoonState(('v2',), np.array([0.0]), np.zeros(1), np.array([V]), np.zeros(1), np.array([TRUCK]),
                        np.array([2.5]), np.arange(1))


def car(rear_gap_m: float, y: float, vy: float, vx: float = V, hits: int = 20, cycles: int = 2,
        vy_std: float = 0.5) -> ObstacleState:
    """A 4.5 x 1.8 m car whose rear is ``rear_gap_m`` ahead of the truck's front."""
    one = lambda v: np.array([float(v)])  # noqa: E731
    x = TRUCK / 2 + rear_gap_m + 2.25
    return ObstacleState(np.array([7]), one(x), one(y), one(vx), one(vy), one(4.5), one(1.8), one(0.0), one(0.0),
                         one(0.2), vy_std=one(vy_std), lateral_cycles=np.array([cycles]), hits=np.array([hits]))


def test_a_car_moving_into_the_lane_just_ahead_at_the_same_speed_is_an_error_before_it_is_in_the_lane():
    # 3.75 m ahead of the cab, in the next lane (3.5 m), moving across at 1.2 m/s: it never closes (no ttc),
    # but it comes into the lane (centre within 1.8 m, boxes overlapping across) within the conflict distance.
    ro = rollout(truck(), car(3.75, 3.5, -1.2), PredictionConfig(horizon_s=6.0, lateral_sigmas=1.0,
                                                                 lateral_max_std_mps=0.55, lateral_min_cycles=2))
    (c,) = find_conflicts(ro)
    assert c.vehicle_id == 'v2' and c.obstacle_track_id == 7 and math.isinf(c.ttc_s)
    # In the lane when the centre is within 1.8 m of it: (3.5 - 1.8) / 1.2 = 1.42 s, the first 0.1 s step after it.
    assert c.cut_in_s == pytest.approx(1.5) and c.level is ConflictLevel.ERROR       # below ttc_error_s 3 s
    assert_allclose(c.distance_m, 3.75, atol=1e-9)
    w = warning_of(c, None)
    assert w.values['cut_in_s'] == pytest.approx(1.5)
    assert w.message == 'track_7 cutting in: in the lane in 1.5 s, gap 3.8 m, ttc not closing'
    # Slower across, into the lane after 3 s: a WARN.
    (c,) = find_conflicts(rollout(truck(), car(3.75, 3.5, -0.6), PredictionConfig(horizon_s=6.0,
                                                                                 lateral_sigmas=1.0)))
    assert c.cut_in_s == pytest.approx(2.9) and c.level is ConflictLevel.ERROR
    (c,) = find_conflicts(rollout(truck(), car(3.75, 3.5, -0.5), PredictionConfig(horizon_s=6.0,
                                                                                 lateral_sigmas=1.0)))
    assert c.cut_in_s == pytest.approx(3.4) and c.level is ConflictLevel.WARN


def test_no_cut_in_without_evident_sideways_motion_or_beyond_the_conflict_distance():
    cfg = PredictionConfig(horizon_s=6.0, lateral_sigmas=1.0, lateral_max_std_mps=0.55, lateral_min_cycles=2,
                           lateral_min_hits=10)
    # Keeping its lane; sideways speed below the deadband or its std; not sustained over 2 cycles; a young track.
    for obs in (car(3.75, 3.5, 0.0), car(3.75, 3.5, -0.4), car(3.75, 3.5, -0.6, vy_std=0.7),
                car(3.75, 3.5, -1.2, cycles=1), car(3.75, 3.5, -1.2, hits=5)):
        assert find_conflicts(rollout(truck(), obs, cfg)) == []
    # Moving away from the lane.
    assert find_conflicts(rollout(truck(), car(3.75, 3.5, 1.2), cfg)) == []
    # Into the lane 8 m ahead at the same speed: beyond the conflict distance (5 m), a car for the ACC.
    assert find_conflicts(rollout(truck(), car(8.0, 3.5, -1.2), cfg)) == []
    # Beside the truck now (its rear 3 m behind the front), overtaking it at 27 m/s and moving in: a side
    # conflict this model does not judge, not a cut-in ahead.
    assert find_conflicts(rollout(truck(), car(-3.0, 3.5, -1.2, vx=27.0), cfg)) == []


def test_a_car_coming_into_the_lane_far_ahead_and_closing_is_judged_by_its_ttc_not_as_a_cut_in():
    cfg = PredictionConfig(horizon_s=6.0, lateral_sigmas=1.0)
    (c,) = find_conflicts(rollout(truck(), car(60.0, 3.5, -1.2, vx=10.0), cfg))
    assert math.isinf(c.cut_in_s) and c.ttc_s == pytest.approx(4.0, abs=0.01)       # 60 m at 15 m/s
    assert 'cutting in' not in warning_of(c, None).message


def test_lane_keeping_gates_sideways_motion_by_track_age_and_cycles_in_a_row():
    obs = ObstacleState(np.arange(4), np.zeros(4), np.zeros(4), np.full(4, 20.0), np.array([-1.0, -1.0, -1.0, 0.3]),
                        np.full(4, 4.5), np.full(4, 1.8), np.zeros(4), np.zeros(4), np.full(4, 0.2),
                        vy_std=np.full(4, 0.5), lateral_cycles=np.array([2, 1, 3, 3]), hits=np.array([12, 12, 4, 12]))
    assert obs.lateral_sign(0.5, 1.0, 0.55).tolist() == [-1, -1, -1, 0]
    assert obs.lateral_sign(0.5, 1.0, 0.55, min_hits=10).tolist() == [-1, -1, 0, 0]
    assert obs.lane_keeping(0.5, 1.0, 0.55, min_cycles=2, min_hits=10).vy.tolist() == [-1.0, 0.0, 0.0, 0.0]
    assert obs.lane_keeping(0.5, 1.0, 0.55).vy.tolist() == [-1.0, -1.0, -1.0, 0.0]     # min_cycles 1: as before
    with pytest.raises(ConfigError, match='lateral_min_cycles must be an integer >= 1'):
        PredictionConfig(lateral_min_cycles=0)


def test_twin_core_counts_the_cycles_in_a_row_a_tracks_sideways_motion_held():
    core = TwinCore(TwinConfig(prediction=PredictionConfig(lateral_sigmas=1.0, lateral_max_std_mps=0.55)))

    def state(vy: list[float], ids: list[int]) -> ObstacleState:
        n = len(ids)
        return ObstacleState(np.array(ids), np.zeros(n), np.zeros(n), np.full(n, 20.0), np.array(vy),
                             np.full(n, 4.5), np.full(n, 1.8), np.zeros(n), np.zeros(n), np.full(n, 0.2),
                             vy_std=np.full(n, 0.5), hits=np.full(n, 20))

    assert core.lateral_cycles(state([-1.0, 0.0], [1, 2])).lateral_cycles.tolist() == [1, 0]
    assert core.lateral_cycles(state([-1.0, 1.0], [1, 2])).lateral_cycles.tolist() == [2, 1]
    # The direction turned: the count starts again; a track seen again after it was gone starts afresh.
    assert core.lateral_cycles(state([1.0, 1.0], [1, 2])).lateral_cycles.tolist() == [1, 2]
    assert core.lateral_cycles(state([0.2], [2])).lateral_cycles.tolist() == [0]
    assert core.lateral_cycles(state([1.0, 1.0], [1, 2])).lateral_cycles.tolist() == [1, 1]


def test_measurement_noise_across_the_road_is_rotated_with_it():
    trk = MultiObjectTracker(TrackerConfig(meas_noise_m=0.3, meas_noise_across_m=0.15))
    r = trk.measurement_noise(np.array([0.0, math.pi / 2, math.pi / 6]), 3)
    assert_allclose(r[0], np.diag([0.09, 0.0225]))
    assert_allclose(r[1], np.diag([0.0225, 0.09]), atol=1e-12)
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    rot = np.array([[c, -s], [s, c]])
    assert_allclose(r[2], rot @ np.diag([0.09, 0.0225]) @ rot.T)
    assert_allclose(MultiObjectTracker(TrackerConfig(meas_noise_m=0.3)).measurement_noise(1.0, 2),
                    np.broadcast_to(0.09 * np.eye(2), (2, 2, 2)))
    with pytest.raises(ConfigError, match='meas_noise_across_m'):
        TrackerConfig(meas_noise_across_m=0.0)


@pytest.mark.parametrize('heading', [0.0, math.radians(30.0)])
def test_a_tighter_noise_across_the_road_sees_a_lane_change_sooner(heading):
    # A car at 25 m/s along a road at `heading` starts moving across it at 1.2 m/s after 2 s. Detections carry
    # 0.1 m of noise across (seeded); the filter with 0.15 m across reads the sideways speed sooner.
    rng = np.random.default_rng(0)
    along = np.array([math.cos(heading), math.sin(heading)])
    left = np.array([-along[1], along[0]])
    t = np.arange(35) * 0.1
    d = np.where(t > 2.0, -1.2 * (t - 2.0), 0.0)
    z = (25.0 * t)[:, None] * along + (d + rng.normal(0.0, 0.1, t.size))[:, None] * left
    vy = {}
    for across in (None, 0.15):
        trk = MultiObjectTracker(TrackerConfig(process_noise_accel=3.0, meas_noise_m=0.3, meas_noise_across_m=across))
        out = []
        for k in range(t.size):
            (track,) = trk.update(z[k:k + 1], int(round(t[k] * 1e9)), road_heading=heading) or [None]
            out.append(np.nan if track is None else float(track.state[2:4] @ left))
        vy[across] = np.array(out)
    # 0.5 s into the lane change (t = 2.5 s) the tighter filter reads more of the 1.2 m/s across.
    k = int(np.flatnonzero(np.isclose(t, 2.5))[0])
    assert vy[0.15][k] < vy[None][k] - 0.1
    assert vy[0.15][k] < -0.6
    # Before it, both stay within 0.5 m/s of zero.
    assert np.nanmax(np.abs(vy[0.15][10:20])) < 0.5


def test_with_the_shipped_config_a_blob_that_lasts_as_long_as_one_radar_false_alarm_warns_nobody():
    # A single stationary radar false alarm is drawn in the common grid until the fusion's decay takes it
    # below 65 %: six grids (cut_in seed 1: 1.0 x 0.8 m, 54 m ahead of v1). The shipped twin needs 8 detections
    # of a track without a known speed before it raises a conflict; a stopped car that stays is warned about.
    from pathlib import Path

    from cooperative_fusion.core.config_files import ros_parameters
    from cooperative_fusion.core.grid import GridSpec
    from cooperative_fusion.core.twin.config import twin_config_from_params, with_defaults

    cfg = twin_config_from_params(with_defaults(ros_parameters(
        Path(__file__).resolve().parents[3] / 'config' / 'twin.yaml')))
    spec = GridSpec(0.0, -15.0, 0.2, 1500, 150)
    xs, ys = spec.cell_centers()

    def run(blob_grids: int, cycles: int = 12) -> list[tuple[int, str]]:
        core = TwinCore(cfg)
        warned = []
        for k in range(cycles):
            t = k * 0.1
            cells = np.zeros(spec.shape, np.int8)
            x = 20.0 + V * t - np.arange(4) * 22.5
            pl = PlatoonState(('v1', 'v2', 'v3', 'v4'), x, np.zeros(4), np.full(4, V), np.zeros(4), np.full(4, 4.5),
                              np.full(4, 1.8), np.arange(4))
            if k < blob_grids:
                cells[(np.abs(ys[:, None] - 0.2) <= 0.4) & (np.abs(xs[None, :] - 90.0) <= 0.5)] = 70
            res = core.step(cells, spec, int(round(t * 1e9)), pl)
            warned += [(k, c.vehicle_id) for c in res.conflicts]
        return warned

    assert run(6) == []
    assert run(12)[0] == (7, 'v1')          # the 8th detection
