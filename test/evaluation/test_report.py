"""cooperative-fusion evaluate on small hand-made truth and result bags.

Scene (40 m x 20 m truth grid at 0.5 m): v1 (leader, base_link x = 20) and v2
(x = 8) in lane y = 0; the stopped car h1 at x = 32 right ahead of v1, hidden
from v2 by v1; a car t1 in the next lane. Every box is 4 m x 2 m = 32 cells.
The common grid shows every box; v2's evidence misses h1 and itself; v1's misses itself.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from PIL import Image
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from cooperative_fusion import cli
from cooperative_fusion.core.config_files import CHECKOUT_CONFIG
from cooperative_fusion.core.errors import BagError, ConfigError
from cooperative_fusion.core.evaluation import (RoiConfig, fusion_latencies_ms, horizon_key, lead_times_s,
                                                nearest_within, percentiles, roi_mask,
                                                sensor_position, warning_episodes)
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.metrics import Box, footprint_mask
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.evaluation.report import evaluate, fusion_overrides, report_markdown
from cooperative_fusion.ros.bag import BagWriter, serialize
from cooperative_fusion.ros.diagnostics import Level, make_array, make_status
from cooperative_fusion.ros.grid import grid_to_msg
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.pointcloud import array_to_cloud
from cooperative_fusion.sim.bag_writer import boxes_to_markers

MS = 1_000_000
S = 1_000_000_000
SPEC = GridSpec(0.0, -10.0, 0.5, 80, 40)
BOXES = {'v1': (21.0, 0.0, 'car'), 'v2': (9.0, 0.0, 'car'), 'h1': (32.0, 0.0, 'stopped_car'), 't1': (25.0, 6.0, 'car')}
BASE_X = {'v1': 20.0, 'v2': 8.0}
TRUTH_STAMPS = [1000 * MS, 1100 * MS, 1200 * MS, 1500 * MS, 2000 * MS]
COMMON_LOG = [950 * MS, 1050 * MS, 1150 * MS]
MEETING_V1_NS = 5 * S
RADAR_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('velocity', '<f4'), ('rcs', '<f4')])


def _box(bid: str) -> Box:
    x, y, kind = BOXES[bid]
    return Box(x, y, 4.0, 2.0, 0.0, bid, kind)


def _cells(ids: list[str], occupied: int = 100, free: int = 0, unknown_of: list[str] = ()) -> np.ndarray:
    """Free everywhere, ``occupied`` on the footprints of ``ids``, unknown over the footprints of ``unknown_of``
    (dilated by 2 cells)."""
    cells = np.full(SPEC.shape, free, np.int8)
    cells[footprint_mask(SPEC, [_box(b) for b in ids])] = occupied
    if unknown_of:
        cells[footprint_mask(SPEC, [_box(b) for b in unknown_of], 2)] = -1
    return cells


def _odom(vid: str, t: int):
    pose = PoseSample(t, np.array([BASE_X[vid], 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]),
                      linear_velocity=np.array([0.0, 0.0, 0.0]))
    return pose_to_odometry(pose, 'map', f'{vid}/base_link')


def write_truth(path: Path, meeting: dict | None = None) -> None:
    meta = {'scenario': 'hand_made', 'seed': 3, 'vehicle_ids': ['v1', 'v2'], 'hazard_ids': ['h1'],
            'meeting_time_ns': meeting if meeting is not None else {'v1': MEETING_V1_NS, 'v2': None}}
    # v1 and v2 drive at 10 m/s (truth velocity); h1 and t1 stand. v1 would come within 5 m (the twin's
    # gap_error_m) of h1 in 0.2 s, v2 in 1.4 s; v2 never closes on v1.
    boxes = [{'id': b, 'kind': BOXES[b][2], 'center': (BOXES[b][0], BOXES[b][1], 0.75), 'size': (4.0, 2.0, 1.5),
              'yaw': 0.0, 'velocity': (10.0, 0.0) if b in BASE_X else (0.0, 0.0)} for b in BOXES]
    with BagWriter(path) as bag:
        bag.write('/truth/scenario', String(data=json.dumps(meta)), 0)
        for t in TRUTH_STAMPS:
            for vid in BASE_X:
                bag.write(f'/truth/odom/{vid}', _odom(vid, t), t)
            bag.write('/truth/grid', grid_to_msg(SPEC, _cells(list(BOXES)), t), t)
            bag.write('/truth/objects', boxes_to_markers(boxes, t, 'map'), t)
            bag.write('/v1/lidar/points', array_to_cloud(np.zeros(3, RADAR_DTYPE), t, 'v1/lidar'), t)  # ignored


#: Warned vehicle -> (object named, its position): v1 about a track on h1, v2 about its predecessor v1.
NAMED = {'v1': ('track_3', 32.5, 0.3), 'v2': ('v1', 21.0, 0.0)}


def _warning(entries: list[tuple[str, Level]], t: int) -> DiagnosticArray:
    return make_array(t, [make_status(vid, level, f'{NAMED[vid][0]} ahead',
                                      {'ttc_s': 2.0, 'distance_m': 30.0, 'x': 1.0, 'y': 0.0, 'object': NAMED[vid][0],
                                       'obstacle_x': NAMED[vid][1], 'obstacle_y': NAMED[vid][2]})
                          for vid, level in entries])


def result_messages() -> list[tuple[str, object, int]]:
    """(topic, message, log time) of the result bag, in log-time order."""
    msgs: list[tuple[str, object, int]] = []
    v1_ev = _cells(['v2', 'h1', 't1'], unknown_of=['v1'])
    v2_ev = _cells(['v1', 't1'], unknown_of=['h1', 'v2'])
    # Evidence (stamp, log): v1 20 ms before each publication, v2 50 / 30 / 30 ms; one after the last publication.
    for stamp_v1, stamp_v2, log in ((930, 900, 940), (1030, 1020, 1040), (1130, 1120, 1140)):
        msgs.append(('/v1/evidence_grid', grid_to_msg(SPEC, v1_ev, stamp_v1 * MS), log * MS))
        msgs.append(('/v2/evidence_grid', grid_to_msg(SPEC, v2_ev, stamp_v2 * MS), log * MS))
        pts = np.zeros(4, RADAR_DTYPE)
        msgs.append(('/v1/radar/targets', array_to_cloud(pts, stamp_v1 * MS, 'map'), log * MS))
    msgs.append(('/v1/evidence_grid', grid_to_msg(SPEC, v1_ev, 1490 * MS), 1500 * MS))
    for log in COMMON_LOG:
        msgs.append(('/cooperative/grid', grid_to_msg(SPEC, _cells(list(BOXES), 97, 12), log), log))
    # Predictions published at 1.0 s: h 0.5 exact, h 1.0 only v1 + h1 (IoU 0.5), one with no truth frame.
    msgs.append(('/twin/predicted_grid', grid_to_msg(SPEC, _cells(list(BOXES), 90, 5), 1500 * MS), 1000 * MS))
    msgs.append(('/twin/predicted_grid', grid_to_msg(SPEC, _cells(['v1', 'h1'], 90, 5), 2000 * MS), 1000 * MS))
    msgs.append(('/twin/predicted_grid', grid_to_msg(SPEC, _cells(['v1'], 90, 5), 1600 * MS), 1000 * MS))
    # Warnings: an OK status for v1 (ignored), then v1 warned from 2.0 s; v2 (no meeting) in two episodes.
    msgs.append(('/twin/warnings', _warning([('v1', Level.OK)], 1900 * MS), 1900 * MS))
    msgs.append(('/twin/warnings', _warning([('v1', Level.WARN), ('v2', Level.WARN)], 2000 * MS), 2000 * MS))
    msgs.append(('/twin/warnings', _warning([('v1', Level.ERROR)], 2200 * MS), 2200 * MS))
    for t in (2500, 3400, 4600, 4700):       # 2.0 .. 3.4 s: gaps <= 1 s; 4.6 s starts a second episode
        msgs.append(('/twin/warnings', _warning([('v2', Level.WARN)], t * MS), t * MS))
    for t, speedup in ((1000, 40.0), (2000, 60.0), (3000, 50.0)):
        arr = make_array(t * MS, [make_status('twin_node', Level.OK, 'ok', {'twin_speedup': speedup}),
                                  make_status('fusion_node', Level.OK, 'ok', {'latency_ms.p50': 3.0})])
        msgs.append(('/diagnostics', arr, t * MS))
    msgs.sort(key=lambda m: m[2])
    return msgs


def write_result(path: Path) -> list[tuple[str, object, int]]:
    msgs = result_messages()
    with BagWriter(path) as bag:
        for topic, msg, t in msgs:
            if isinstance(msg, DiagnosticArray):
                # ros.bag.serialize cannot copy DiagnosticStatus.level (bytes) into rosbags' uint8 yet.
                bag.write_serialized(topic, 'diagnostic_msgs/msg/DiagnosticArray', serialize_message(msg), t)
            else:
                bag.write(topic, msg, t)
    return msgs


@pytest.fixture(scope='module')
def bags(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list]:
    root = tmp_path_factory.mktemp('eval')
    write_truth(root / 'truth')
    msgs = write_result(root / 'result')
    return root / 'truth', root / 'result', msgs


@pytest.fixture(scope='module')
def report(bags: tuple[Path, Path, list]) -> dict:
    truth, result, _ = bags
    return evaluate(truth, result, fusion_config=None)


# ------------------------------------------------------------------------------ pure helpers

def test_roi_mask_is_the_stated_band() -> None:
    spec = GridSpec(-50.0, -20.0, 1.0, 200, 40)
    pos = np.array([[10.0, 0.0], [-15.0, 0.0], [-30.0, 0.0]])
    mask = roi_mask(spec, pos, np.zeros(3), RoiConfig(20.0, 100.0, 3.0))
    xs, ys = spec.cell_centers()
    inside_x = (xs >= -50.0) & (xs <= 110.0)
    inside_y = np.abs(ys) <= 3.0
    np.testing.assert_array_equal(mask, inside_y[:, None] & inside_x[None, :])
    # Heading along +y: the band turns with the platoon.
    mask_y = roi_mask(spec, np.array([[0.0, 0.0], [0.0, -5.0]]), np.full(2, math.pi / 2), RoiConfig(1.0, 2.0, 1.0))
    rows, cols = np.nonzero(mask_y)
    assert set(ys[rows]) == {-5.5, -4.5, -3.5, -2.5, -1.5, -0.5, 0.5, 1.5}
    assert set(xs[cols]) == {-0.5, 0.5}


def test_roi_config_rejects_negative() -> None:
    with pytest.raises(ConfigError, match='ahead_of_leader_m'):
        RoiConfig(20.0, -1.0, 10.0)


def test_sensor_position_is_behind_the_front() -> None:
    np.testing.assert_allclose(sensor_position([0.0, 0.0], Box(5.0, 1.0, 12.0, 2.5, 0.0, 'v2')), [9.5, 1.0])
    np.testing.assert_allclose(sensor_position([0.0, 0.0], Box(0.0, 0.0, 4.0, 2.0, math.pi / 2)), [0.0, 0.5],
                               atol=1e-12)
    np.testing.assert_allclose(sensor_position([3.0, 4.0, 0.0], None), [3.0, 4.0])


def test_stamp_matching() -> None:
    t = np.array([100, 200, 300])
    assert nearest_within(t, 240, 50) == 1 and nearest_within(t, 260, 50) == 2 and nearest_within(t, 150, 49) == -1
    assert horizon_key(1_020_000_000, (0.5, 1.0, 2.0)) == 1.0
    assert horizon_key(1_500_000_000, (0.5, 1.0, 2.0)) is None


def test_latency_and_percentiles() -> None:
    lat = fusion_latencies_ms([10 * MS, 20 * MS, 30 * MS, 40 * MS], [5 * MS, 12 * MS, 30 * MS, 35 * MS],
                              [20 * MS, 35 * MS])
    np.testing.assert_allclose(lat, [15.0, 8.0, 5.0])    # the last evidence is after the last publication
    assert percentiles([]) is None
    assert percentiles([1.0, 2.0, 3.0, float('nan')]) == {'p50': 2.0, 'p95': pytest.approx(2.9)}


def test_warning_episodes_and_lead_times() -> None:
    assert warning_episodes([3 * S, 0, S, int(2.5 * S)], S) == [(0, S), (int(2.5 * S), 3 * S)]
    assert warning_episodes([]) == []
    lead = lead_times_s({'v1': 10 * S, 'v2': None, 'v3': 12 * S}, {'v1': 7 * S, 'v2': S})
    assert lead == {'v1': pytest.approx(3.0), 'v3': None, 'min': pytest.approx(3.0)}


def test_fusion_overrides_from_a_ros_parameter_file(tmp_path: Path) -> None:
    """Read as the fusion node reads it (core.fusion.config.config_from_params over the node's defaults):
    the FusionConfig fields away from the core defaults, and the weights."""
    cfg = tmp_path / 'fusion.yaml'
    cfg.write_text('/**:\n  ros__parameters:\n    vehicles: [v1, v2]\n    vehicle_weights: [1.0, 0.5]\n'
                   '    fusion:\n      half_life_s: 1.5\n      max_age_s: 0.25\n      free_wins_after_s: 0.02\n')
    over, weights = fusion_overrides(cfg)
    assert over == {'half_life_s': 1.5, 'max_age_ns': 250 * MS, 'free_wins_after_ns': 20 * MS}
    assert weights == {'v1': 1.0, 'v2': 0.5}
    assert fusion_overrides(CHECKOUT_CONFIG / 'fusion.yaml') == ({}, {'v1': 1.0, 'v2': 1.0, 'v3': 1.0, 'v4': 1.0})
    cfg.write_text('/**:\n  ros__parameters:\n    vehicles: [v1]\n    vehicle_weights: [1.0, 0.5]\n')
    with pytest.raises(ConfigError, match='fusion.yaml: vehicle_weights has 2 values for 1 vehicles'):
        fusion_overrides(cfg)
    cfg.write_text('vehicles: [v1]\nvehicle_weights: [1.0, 0.5]\n')
    with pytest.raises(ConfigError, match='fusion.yaml: not a ROS 2 parameter file|has no ros__parameters'):
        fusion_overrides(cfg)


# ------------------------------------------------------------------------------- whole report

def test_grid_metrics_cooperative_and_ego_only(report: dict) -> None:
    assert report['scenario'] == 'hand_made'
    assert report['vehicles'] == ['v1', 'v2']
    assert report['frames_evaluated'] == 3               # 1.5 s and 2.0 s: newest common grid older than 0.2 s
    assert report['object_recall'] == 1.0
    assert report['see_through_recall'] == {'v1': None, 'v2': 1.0, 'mean': 1.0}
    assert report['occupied_precision'] == 1.0
    assert report['free_accuracy'] == 1.0
    assert report['occupancy_iou'] == 1.0
    assert report['ego_only_see_through_recall'] == {'v1': None, 'v2': 0.0, 'mean': 0.0}
    # 4 boxes: v1's evidence misses v1 itself; v2's misses v2 itself and the hidden h1.
    assert report['ego_only_object_recall'] == {'v1': 0.75, 'v2': 0.5}
    assert report['ego_only_occupied_precision'] == {'v1': 1.0, 'v2': 1.0}
    assert report['ego_only_free_accuracy'] == {'v1': 1.0, 'v2': 1.0}
    # v2: v1 and t1 hit, h1 and v2 unknown (not in the union: IoU counts observed cells only).
    assert report['ego_only_occupancy_iou']['v2'] == 1.0
    assert report['roi']['ahead_of_leader_m'] == 100.0 and 'behind the last' in report['roi']['definition']
    # h1 (1.5 m tall) behind v1 (1.5 m) from v2's 2 m sensor: the sight lines to its top pass over v1, so it is
    # not hidden in 3-D (it is in 2-D); the common grid draws every box where it is.
    assert report['see_through_object_recall'] == {'v1': None, 'v2': None, 'mean': None}
    assert report['occupied_precision_away_from_platoon'] == 1.0
    assert report['moving_position_error_m'] is None                    # no moving traffic (v1, v2 are the platoon)
    json.dumps(report, allow_nan=False)                  # plain JSON, no NaN


def test_latency_bandwidth_prediction_twin_warnings(report: dict, bags: tuple[Path, Path, list]) -> None:
    _, _, msgs = bags
    # Latencies: v1 20, 20, 20 ms; v2 50, 30, 30 ms; the v1 evidence at 1.5 s has no later publication.
    assert report['fusion_latency_ms'] == {'p50': pytest.approx(25.0), 'p95': pytest.approx(45.0)}
    assert report['fusion_latency_samples'] == 6
    duration = (msgs[-1][2] - msgs[0][2]) / S
    assert report['duration_s'] == pytest.approx(duration)
    for vid in ('v1', 'v2'):
        size = sum(len(serialize(m)) for topic, m, _ in msgs
                   if topic in (f'/{vid}/evidence_grid', f'/{vid}/radar/targets'))
        assert report['bandwidth_bytes_per_s'][vid] == pytest.approx(size / duration)
    assert report['bandwidth_bytes_per_s']['v1'] > report['bandwidth_bytes_per_s']['v2']
    assert report['prediction_iou'] == {'0.5': 1.0, '1.0': 0.5, '2.0': None, '3.0': None}
    assert report['prediction_samples'] == {'0.5': 1, '1.0': 1, '2.0': 0, '3.0': 0}
    assert report['twin_speedup'] == 50.0
    # v1's warnings about h1 are true (from 2.0 s; it meets h1 at 5.0 s). v2's about its predecessor v1, at
    # the same speed, are not: two episodes (2.0-3.4 s, 4.6-4.7 s), though v2 has a hazard ahead.
    assert report['warning_lead_time_s'] == {'v1': pytest.approx(3.0), 'v2': None, 'min': pytest.approx(3.0)}
    assert report['false_warnings'] == {'v1': 0, 'v2': 2, 'total': 2}
    eps = report['false_warning_episodes']
    assert [(e['vehicle'], e['object'], e['start_s'], e['end_s'], e['warnings']) for e in eps] == [
        ('v2', 'v1', 2.0, pytest.approx(3.4), 3), ('v2', 'v1', pytest.approx(4.6), pytest.approx(4.7), 2)]
    assert eps[0]['truth_objects'] == ['v1'] and eps[0]['reason'] == 'v1 ahead' and eps[0]['true_share'] == 0.0
    assert report['warning_episodes'] == 3 and report['true_warning_episodes'] == 1
    # Truth: v1 would be within 5 m of h1 at 1.2 s (warned only at 2.0 s: late), v2 at 2.4 s (never warned
    # about h1): both missed.
    assert report['missed_warnings'] == {'v1': 1, 'v2': 1, 'total': 2}
    assert [(c['vehicle'], c['object'], c['moment_s']) for c in report['missed_warning_conflicts']] == [
        ('v1', 'h1', pytest.approx(1.2)), ('v2', 'h1', pytest.approx(2.4))]
    assert report['truth_conflicts'] == 2


def test_without_meeting_times_the_lead_runs_to_the_truth_conflict(tmp_path: Path,
                                                                  bags: tuple[Path, Path, list]) -> None:
    _, result, _ = bags
    write_truth(tmp_path / 'clear', meeting={'v1': None, 'v2': None})
    rep = evaluate(tmp_path / 'clear', result)
    # v1 would be within 5 m of h1 at 1.2 s and was first truly warned at 2.0 s: a negative lead, not hidden.
    assert rep['warning_lead_time_s'] == {'v1': pytest.approx(-0.8), 'v2': None, 'min': pytest.approx(-0.8)}
    assert rep['false_warnings'] == {'v1': 0, 'v2': 2, 'total': 2}


def test_markdown_table(report: dict) -> None:
    md = report_markdown(report)
    assert '| object_recall | 1.000 | 0.750 | 0.500 |' in md
    assert '| ego-only | n/a | 0.000 |' in md
    assert '| fusion latency p50 / p95 (ms) | 25.0 / 45.0 |' in md
    assert '| false warnings (episodes) | 2 |' in md
    assert '| missed warnings (conflicts) | 2 |' in md
    assert '| v2 | 2.00 | 3.40 | v1 | v1 ahead |' in md


# ------------------------------------------------------------------------------- CLI and plots

def test_cli_writes_report_and_plots(tmp_path: Path, bags: tuple[Path, Path, list], capsys, monkeypatch) -> None:
    truth, result, _ = bags
    out = tmp_path / 'out' / 'report.json'
    rc = cli.main(['evaluate', '--truth', str(truth), '--result', str(result), '--report', str(out),
                   '--plots', str(tmp_path / 'plots'), '--plot-vehicle', 'v2'])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep['object_recall'] == 1.0 and rep['see_through_recall']['v2'] == 1.0
    assert rep['see_through_plot']['vehicle'] == 'v2'
    assert rep['see_through_plot']['stamp_s'] == pytest.approx(1.0)
    assert 'hazard (h1) occluded from v2' in rep['see_through_plot']['reason']
    for name in ('see_through.png', 'metrics.png'):
        png = tmp_path / 'plots' / name
        assert png.stat().st_size > 5000
        with Image.open(png) as img:
            assert img.format == 'PNG' and img.width > 400 and img.height > 200
    printed = capsys.readouterr().out
    assert 'object_recall' in printed and 'wrote' in printed


@pytest.mark.parametrize('which', ['truth', 'result'])
def test_cli_unreadable_bag_exit_2_names_file(tmp_path: Path, bags: tuple[Path, Path, list], capsys,
                                              monkeypatch, which: str) -> None:
    truth, result, _ = bags
    bad = tmp_path / 'not_a_bag'
    bad.mkdir()
    (bad / 'metadata.yaml').write_text('this: [is not rosbag2 metadata\n')
    args = {'truth': str(truth), 'result': str(result), which: str(bad)}
    rc = cli.main(['evaluate', '--truth', args['truth'], '--result', args['result'],
                   '--report', str(tmp_path / 'r.json')])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(bad) in err and 'cannot read bag' in err
    assert 'Traceback' not in err
    assert not (tmp_path / 'r.json').exists()


def test_missing_bag_and_result_as_truth(tmp_path: Path, bags: tuple[Path, Path, list], capsys) -> None:
    truth, result, _ = bags
    with pytest.raises(BagError, match='no such bag'):
        evaluate(tmp_path / 'missing', result)
    with pytest.raises(BagError, match=r'result: no /truth/grid topic: not a truth bag'):
        evaluate(result, result)
    assert cli.main(['evaluate', '--truth', str(truth), '--result', str(tmp_path / 'nope'), '--report', str(tmp_path / 'r.json')]) == 2
    assert f'{tmp_path / "nope"}: no such bag' in capsys.readouterr().err


def test_outcome_keys_from_truth_boxes_and_odometry(report: dict) -> None:
    # v1 (box 19..23) has h1 (30..34) ahead: 7 m; v2 (7..11) has v1: 8 m. The truth odometry says both stand
    # (twist 0), so nothing closes, nobody brakes and there is no headway sample (slower than 1 m/s).
    assert report['min_gap_m'] == pytest.approx({'v1': 7.0, 'v2': 8.0})
    assert report['outcome_events']['v1']['min_gap_object'] == 'h1'
    assert report['outcome_events']['v2']['min_gap_object'] == 'v1'
    assert report['min_ttc_s'] == {'v1': None, 'v2': None}
    assert report['max_decel_mps2'] == {'v1': 0.0, 'v2': 0.0}
    assert report['collision'] == {'v1': False, 'v2': False}
    assert report['time_headway_s'] == {'v1': None, 'v2': None}


def test_outcome_in_the_markdown(report: dict) -> None:
    md = report_markdown(report)
    assert '| outcome (truth) | v1 | v2 |' in md
    assert '| min gap (m) | 7.00 | 8.00 |' in md
    assert '| collision | no | no |' in md
    assert '| time headway p5 / p50 / p95 (s) | n/a | n/a |' in md


def test_outcome_in_the_terminal_summary(report: dict) -> None:
    from cooperative_fusion.evaluation.report import summary_table

    rows = summary_table(report).splitlines()
    assert [r.split() for r in rows if r.startswith('min gap m')] == [['min', 'gap', 'm', '(truth)', 'v1', '7.00',
                                                                      'v2', '8.00']]
    assert [r.split()[-4:] for r in rows if r.startswith('collision')] == [['v1', 'no', 'v2', 'no']]
