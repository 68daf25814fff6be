"""Warnings judged against truth (core.evaluation): true, false, episodes, missed, lead times.

Hand-built scenes on a straight road (x along it), cars 4.5 m x 1.8 m, horizon 5 s, conflict distance 5 m.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from cooperative_fusion.core.evaluation import (Judgement, TruthConflict, TruthRoad, WarningRecord, box_distance,
                                                conflict_time_s, episodes_of, hazard_lead_times_s, judge_warning,
                                                missed_conflicts, moved, truth_conflicts, warning_deadline_ns,
                                                warning_delays_ns)
from cooperative_fusion.core.metrics import Box

S = 1_000_000_000
H = 5.0


def car(bid: str, x: float, vx: float, y: float = 0.0, kind: str = 'car') -> Box:
    return Box(x, y, 4.5, 1.8, 0.0, bid, kind, 1.5, vx, 0.0)


def warning(t_s: float, vehicle: str, obj: str, x: float, y: float = 0.0, message: str = '') -> WarningRecord:
    t = int(round(t_s * S))
    return WarningRecord(t, t, vehicle, obj, x, y, message or f'{obj} ahead')


def test_conflict_time_no_reaction_in_the_vehicle_frame():
    ego = car('v1', 0.0, 25.0)
    # Stopped car, bumper gap 30 m: within 5 m after 25 / 25 = 1.0 s (sampled every 0.05 s); within 2 m at 1.15 s.
    assert conflict_time_s(ego, car('h1', 34.5, 0.0), H) == pytest.approx(1.0)
    assert conflict_time_s(ego, car('h1', 34.5, 0.0), H, distance_m=2.0) == pytest.approx(1.15)
    # Same speed ahead, or moving away: never. Behind the vehicle: never (it is not heading into it).
    assert math.isinf(conflict_time_s(ego, car('v0', 19.5, 25.0), H))
    assert math.isinf(conflict_time_s(ego, car('c', -19.5, 35.0), H))
    # Next lane (3.5 m over), even overtaken: the boxes never overlap across the road.
    assert math.isinf(conflict_time_s(ego, car('t', 10.0, 0.0, y=3.5), H))
    # Beyond the horizon: 150 m at 25 m/s is 6 s.
    assert math.isinf(conflict_time_s(ego, car('far', 154.5 + 2.0, 0.0), H))
    assert box_distance(car('h1', 34.5, 0.0), (34.5, 2.9)) == pytest.approx(2.0)
    assert moved(car('a', 0.0, 10.0), 0.5).center_x == 5.0


def test_a_predecessor_warning_in_a_slowing_platoon_is_false():
    # The platoon slows together: v1 at 20 m/s, v2 12 m behind, lagging at 20.8 m/s. At constant speeds the gap
    # closes by 4 m in 5 s: never within 5 m. The twin's warning to v2 about v1 is false.
    boxes = [car('v1', 100.0, 20.0), car('v2', 100.0 - 4.5 - 12.0, 20.8)]
    j = judge_warning(warning(3.0, 'v2', 'v1', 100.0), boxes, H)
    assert j.named == ('v1',) and not j.true
    (ep,) = episodes_of([j, judge_warning(warning(3.5, 'v2', 'v1', 100.0), boxes, H)])
    assert not ep.true and ep.count == 2 and ep.truth_ids == ('v1',) and ep.reason == 'v1 ahead'
    # ... while a predecessor that brakes to 10 m/s makes the same warning true (12 m close at 10.8 m/s).
    boxes = [car('v1', 100.0, 10.0), car('v2', 100.0 - 4.5 - 12.0, 20.8)]
    assert judge_warning(warning(3.0, 'v2', 'v1', 100.0), boxes, H).conflicting == ('v1',)


def test_the_named_obstacle_must_lie_within_2_m_of_the_truth_object():
    boxes = [car('v3', 0.0, 25.0), car('h1', 60.0, 0.0, kind='stopped_car')]
    assert judge_warning(warning(1.0, 'v3', 'track_4', 61.0, 0.5), boxes, H).true
    assert judge_warning(warning(1.0, 'v3', 'track_4', 60.0 + 2.25 + 1.9, 0.0), boxes, H).true
    # 2.5 m beyond the car's front: it names nothing, whatever the conflict.
    wrong = judge_warning(warning(1.0, 'v3', 'track_4', 60.0 + 2.25 + 2.5, 0.0), boxes, H)
    assert wrong.named == () and not wrong.true
    # The vehicle's own box is never the obstacle; no position, or no truth box of the vehicle: not true.
    assert judge_warning(warning(1.0, 'v3', 'track_9', 0.5), boxes, H).named == ()
    assert not judge_warning(warning(1.0, 'v3', 'track_4', math.nan, math.nan), boxes, H).true
    assert not judge_warning(warning(1.0, 'v9', 'track_4', 61.0), boxes, H).true


def test_episodes_split_on_gaps_and_objects():
    boxes = [car('v2', 0.0, 25.0), car('h1', 60.0, 0.0)]
    ws = [warning(t, 'v2', 'track_1', 60.0) for t in (1.0, 1.5, 2.4, 3.5)] + [warning(1.2, 'v2', 'track_2', 60.0)]
    eps = episodes_of([judge_warning(w, boxes, H) for w in ws])
    assert [(e.object, e.start_ns, e.end_ns, e.count) for e in eps] == [
        ('track_1', 1 * S, int(2.4 * S), 3), ('track_2', int(1.2 * S), int(1.2 * S), 1),
        ('track_1', int(3.5 * S), int(3.5 * S), 1)]
    # A warning 1.0 s after the previous one starts a new episode (gaps must be below 1 s).
    assert len(episodes_of([judge_warning(warning(t, 'v2', 'track_1', 60.0), boxes, H) for t in (1.0, 2.0)])) == 2


def test_a_late_warning_is_a_missed_conflict_and_lead_counts_only_true_hazard_warnings():
    # v3 at 25 m/s, stopped car h1 100 m ahead (bumper gap): within 5 m at 3.8 s after t = 1 s.
    frames = [(int(round((1.0 + 0.1 * k) * S)), [moved(car('v3', 0.0, 25.0), 0.1 * k), car('h1', 104.5, 0.0),
                                                  moved(car('v2', 19.5, 25.0), 0.1 * k)])
              for k in range(45)]
    (c,) = truth_conflicts(frames, ['v3'], H)
    assert (c.vehicle, c.object, c.first_ns) == ('v3', 'h1', S)
    assert c.moment_ns * 1e-9 == pytest.approx(1.0 + 95.0 / 25.0, abs=0.05)

    def judged(t_s: float, obj: str, x: float) -> Judgement:
        k = int(round((t_s - 1.0) / 0.1))
        return judge_warning(warning(t_s, 'v3', obj, x), frames[k][1], H)

    # A predecessor warning at 1.0 s (false) does not count for the lead; the true one about h1 at 2.0 s does.
    early_pred = judged(1.0, 'v2', 19.5)
    on_time = judged(2.0, 'track_7', 104.5)
    assert not early_pred.true and on_time.true
    lead = hazard_lead_times_s([early_pred, on_time], ['h1'], {'v3': int(5.0 * S), 'v4': None}, ['v3', 'v4'])
    assert lead == {'v3': pytest.approx(3.0), 'min': pytest.approx(3.0)}
    assert missed_conflicts([c], [early_pred, on_time]) == []
    # A true warning only 0.5 s before the moment is late: missed. So is a conflict nobody was warned about.
    late = judged(round(c.moment_ns * 1e-9 - 0.5, 1), 'track_7', 104.5)
    assert late.true and missed_conflicts([c], [late]) == [c]
    assert missed_conflicts([c], [early_pred]) == [c]
    assert hazard_lead_times_s([early_pred], ['h1'], {'v3': int(5.0 * S)}, ['v3']) == {'v3': None, 'min': None}


def test_truth_conflicts_are_runs_per_vehicle_and_object():
    near = [car('v1', 0.0, 25.0), car('h1', 40.0, 0.0)]
    frames = [(0, near), (int(0.5 * S), near), (int(3.0 * S), near)]
    got = truth_conflicts(frames, ['v1'], H)
    assert [(c.first_ns, c.last_ns) for c in got] == [(0, int(0.5 * S)), (int(3.0 * S), int(3.0 * S))]
    assert isinstance(got[0], TruthConflict) and got[0].moment_ns == int(round(1.25 * S))


def test_a_merging_car_ends_in_the_lane_and_only_the_first_object_reached_is_a_conflict():
    ego = car('v3', 0.0, 25.0)
    # Mid-merge at 2.75 m/s across, 1.75 m off the lane centre: it ends in the lane (3.5 m of lateral motion
    # at most), so the vehicle 60 m behind closing at 15 m/s reaches it.
    merging = Box(62.25, 1.75, 4.5, 1.8, 0.0, 'c1', 'car', 1.5, 10.0, -2.75)
    assert conflict_time_s(ego, merging, H) == pytest.approx((60.0 - 2.25 - 5.0) / 15.0, abs=0.05)
    # Late in the merge (0.5 m off, still 2.2 m/s across) it stops on the lane's centre line, not 3.5 m beyond.
    late = Box(62.25, 0.5, 4.5, 1.8, 0.0, 'c1', 'car', 1.5, 10.0, -2.2)
    assert conflict_time_s(ego, late, H) == pytest.approx((60.0 - 2.25 - 5.0) / 15.0, abs=0.05)
    # Moving away from the lane it leaves it for good.
    leaving = Box(62.25, 1.0, 4.5, 1.8, 0.0, 'c1', 'car', 1.5, 10.0, 2.0)
    assert math.isinf(conflict_time_s(ego, leaving, H))
    # Two objects in the path: the truck in front of v4 and the stopped car beyond it; only the truck counts.
    frames = [(0, [car('v4', 0.0, 25.0), Box(25.0, 0.0, 12.0, 2.5, 0.0, 'v2', 'truck', 3.8, 15.0, 0.0),
                   car('h1', 60.0, 0.0)])]
    assert [(c.vehicle, c.object) for c in truth_conflicts(frames, ['v4'], H)] == [('v4', 'v2')]


# --- curved roads: judged along the road the leader truly drove ----------------------------------------------------

R_CURVE = 500.0


def on_arc(bid: str, s: float, speed: float, d: float = 0.0) -> Box:
    """A car on a left-curving arc of radius R_CURVE starting at the origin along +x: s along, d left."""
    th = s / R_CURVE
    x, y = (R_CURVE - d) * math.sin(th), R_CURVE - (R_CURVE - d) * math.cos(th)
    return Box(x, y, 4.5, 1.8, th, bid, 'car', 1.5, speed * math.cos(th), speed * math.sin(th))


def arc_road(duration_s: float = 30.0, speed: float = 25.0) -> TruthRoad:
    t = np.arange(0.0, duration_s, 0.02)
    boxes = [on_arc('v1', speed * k, speed) for k in t]
    return TruthRoad((t * S).astype(np.int64), np.array([[b.center_x, b.center_y] for b in boxes]))


def test_a_stopped_car_ahead_on_a_curve_is_a_conflict_along_the_road():
    road = arc_road()
    ego, hazard = on_arc('v1', 100.0, 25.0), on_arc('h1', 100.0 + 129.5, 0.0)
    # On its heading's straight line the hazard is 13 m to the side: the vehicle frame misses it ...
    assert math.isinf(conflict_time_s(ego, hazard, H + 1.0))
    # ... along the road the bumper gap of 125 m closes to 5 m at 25 m/s in 4.8 s.
    at = road.at(4 * S)
    assert at is not None
    assert conflict_time_s(ego, hazard, H + 1.0, road=at) == pytest.approx(4.8, abs=0.06)
    # A stopped car in the next lane of the curve is no conflict along the road either.
    assert math.isinf(conflict_time_s(ego, on_arc('p', 100.0 + 60.0, 0.0, d=3.5), H + 1.0, road=at))


def test_truth_road_is_none_on_a_straight_path_and_truth_conflicts_use_it_on_a_curve():
    t = np.arange(0.0, 30.0, 0.02)
    straight = TruthRoad((t * S).astype(np.int64), np.stack([25.0 * t * math.cos(0.5), 25.0 * t * math.sin(0.5)], 1))
    assert straight.at(10 * S) is None
    road = arc_road()
    frames = [(4 * S, [on_arc('v1', 100.0, 25.0), on_arc('h1', 229.5, 0.0)])]
    assert truth_conflicts(frames, ['v1'], H, road=None) == []
    found = truth_conflicts(frames, ['v1'], H, road=road)
    assert [(c.vehicle, c.object) for c in found] == [('v1', 'h1')]
    assert found[0].moment_ns == pytest.approx(4 * S + 4.8 * S, abs=0.06 * S)


def test_a_sudden_conflict_is_in_time_when_warned_within_half_a_second_of_showing():
    """A car cutting in 4 m ahead of v2 (at v2's speed, 3.5 m to its left, moving in at 1.5 m/s) is a conflict
    from the first frame that shows its sideways motion, and overlaps v2's lane after about 1.15 s: nobody can
    warn 1 s before that. The issue's cut-in criterion applies instead: a true warning within 0.5 s of the
    conflict showing is in time (it used to count as missed whatever came)."""
    frames = [(int(round((6.0 + 0.1 * k) * S)), [moved(car('v2', 0.0, 25.0), 0.1 * k),
                                                  Box(8.5 + 2.5 * k, 3.5 - 0.15 * k, 4.5, 1.8, 0.0, 'c1', 'car', 1.5,
                                                      25.0, -1.5)])
              for k in range(20)]
    (c,) = truth_conflicts(frames, ['v2'], H)
    assert (c.vehicle, c.object, c.first_ns) == ('v2', 'c1', 6 * S)
    assert c.moment_ns - c.first_ns < 1.5 * S                           # shown less than 1.5 s ahead
    assert warning_deadline_ns(c) == c.first_ns + S // 2

    def judged(t_s: float) -> Judgement:
        k = int(round((t_s - 6.0) / 0.1))
        box = frames[k][1][1]
        return judge_warning(warning(t_s, 'v2', 'track_3', box.center_x, box.center_y), frames[k][1], H)

    in_time, late = judged(6.4), judged(6.7)
    assert in_time.true and late.true
    assert missed_conflicts([c], [in_time]) == [] and missed_conflicts([c], [late]) == [c]
    # The delay from showing to the first true warning, per conflict (None: never warned while it lasted).
    ((_, delay),) = warning_delays_ns([c], [late, in_time])
    assert delay == pytest.approx(0.4 * S, abs=1)
    assert warning_delays_ns([c], []) == [(c, None)]
    # A conflict shown long before its moment keeps the 1 s rule.
    slow = TruthConflict('v3', 'h1', 0, 4 * S, 6 * S)
    assert warning_deadline_ns(slow) == 5 * S
