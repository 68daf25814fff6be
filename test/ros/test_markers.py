"""ros/markers.py on hand-built tracks, rollouts, conflicts and advisories."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from nav_msgs.msg import Path
from visualization_msgs.msg import Marker

from cooperative_fusion.core.twin.conflicts import Advisory, Conflict, ConflictLevel
from cooperative_fusion.core.errors import MessageFormatError
from cooperative_fusion.core.twin.prediction import ObstacleState, PlatoonState, PredictionConfig, rollout
from cooperative_fusion.core.twin.tracking import Track
from cooperative_fusion.ros.markers import (advisory_to_cdr, advisory_to_path, conflict_markers, path_to_advisory,
                                            prediction_markers, track_markers, twin_markers, yaw_to_quaternion)
from cooperative_fusion.ros.time import stamp_to_ns

STAMP = 1_700_000_000_123_456_789


def track(tid: int, x: float, y: float, vx: float, vy: float = 0.0, yaw: float = 0.0) -> Track:
    return Track(tid, np.array([x, y, vx, vy]), np.eye(4) * 0.1, age=5, hits=5, misses=0, length=4.5, width=1.8,
                 yaw=yaw, confirmed=True, stamp_ns=STAMP)


def conflict(vid: str, level: ConflictLevel, ttc: float, x: float, y: float) -> Conflict:
    return Conflict(vid, level, ttc, 40.0, x, y, 7, None, 4.0, 0.0, 0.0, 35.0)


def test_track_markers_cube_text_arrow():
    tracks = [track(7, 10.0, 1.0, 5.0, 0.5, yaw=0.3), track(9, -3.0, -2.0, 0.0)]
    ms = track_markers(tracks, STAMP, 'map')
    assert len(ms) == 6
    cubes = [m for m in ms if m.ns == 'tracks']
    texts = [m for m in ms if m.ns == 'track_ids']
    arrows = [m for m in ms if m.ns == 'track_velocity']
    assert [m.type for m in cubes] == [Marker.CUBE] * 2
    assert [m.text for m in texts] == ['track_7', 'track_9']
    c = cubes[0]
    assert (c.pose.position.x, c.pose.position.y) == (10.0, 1.0)
    assert (c.scale.x, c.scale.y) == pytest.approx((4.5, 1.8))
    assert 2.0 * math.atan2(c.pose.orientation.z, c.pose.orientation.w) == pytest.approx(0.3)
    a = arrows[0]
    assert a.type == Marker.ARROW
    assert (a.points[1].x - a.points[0].x, a.points[1].y - a.points[0].y) == pytest.approx((5.0, 0.5))
    assert all(m.header.frame_id == 'map' and stamp_to_ns(m.header.stamp) == STAMP for m in ms)
    # (ns, id) is unique
    assert len({(m.ns, m.id) for m in ms}) == len(ms)


def test_prediction_markers_follow_the_rollout_and_fade():
    pl = PlatoonState(('v1', 'v2'), np.array([0.0, -20.0]), np.zeros(2), np.full(2, 20.0), np.zeros(2),
                      np.full(2, 4.5), np.full(2, 1.8), np.arange(2))
    obs = ObstacleState(np.array([3]), np.array([100.0]), np.array([3.5]), np.array([10.0]), np.zeros(1),
                        np.array([4.5]), np.array([1.8]), np.zeros(1), np.zeros(1), np.array([0.2]))
    ro = rollout(pl, obs, PredictionConfig())
    horizons = (0.5, 1.0, 2.0, 3.0)
    ms = prediction_markers(ro, horizons, STAMP)
    assert len(ms) == len(horizons) * 3
    obstacle = [m for m in ms if m.scale.y == pytest.approx(1.8) and m.pose.position.y == pytest.approx(3.5)]
    assert [m.pose.position.x for m in obstacle] == pytest.approx([100.0 + 10.0 * h for h in horizons])
    alphas = [m.color.a for m in obstacle]
    assert alphas == sorted(alphas, reverse=True) and alphas[0] > alphas[-1]
    assert len({m.id for m in ms}) == len(ms)


def test_conflict_markers_red_sphere_and_ttc_text():
    ms = conflict_markers([conflict('v1', ConflictLevel.ERROR, 2.44, 60.0, 0.0),
                           conflict('v2', ConflictLevel.WARN, math.inf, 70.0, 0.0)], STAMP)
    spheres = [m for m in ms if m.type == Marker.SPHERE]
    texts = [m for m in ms if m.type == Marker.TEXT_VIEW_FACING]
    assert len(spheres) == 2 and len(texts) == 2
    assert spheres[0].color.r == 1.0 and spheres[0].color.g == 0.0
    assert spheres[1].color.g > 0.5          # WARN is amber, not red
    assert spheres[0].pose.position.x == 60.0
    assert texts[0].text == 'v1 ttc 2.4 s' and texts[1].text == 'v2 ttc inf'


def test_twin_markers_starts_with_deleteall():
    arr = twin_markers([track(1, 0.0, 0.0, 1.0)], None, [conflict('v1', ConflictLevel.WARN, 4.0, 5.0, 0.0)],
                       (1.0,), STAMP)
    assert arr.markers[0].action == Marker.DELETEALL
    assert all(m.action == Marker.ADD for m in arr.markers[1:])
    assert len(arr.markers) == 1 + 3 + 2
    empty = twin_markers([], None, [], (1.0,), STAMP)
    assert [m.action for m in empty.markers] == [Marker.DELETEALL]


def test_non_finite_track_is_refused():
    with pytest.raises(MessageFormatError, match='not finite'):
        track_markers([track(1, math.nan, 0.0, 0.0)], STAMP)


def _advisory(n: int = 5) -> Advisory:
    t = np.arange(n, dtype=np.int64) * 100_000_000
    speed = np.linspace(20.0, 10.0, n)
    x = 50.0 + np.cumsum(speed * 0.1)
    return Advisory('v2', t, x, np.full(n, 3.5), np.full(n, 0.2), speed, 4.0, 4.0, 10.0, True, False)


def test_advisory_to_path_stamps_and_poses():
    adv = _advisory()
    path = advisory_to_path(adv, STAMP, 'map')
    assert path.header.frame_id == 'map' and stamp_to_ns(path.header.stamp) == STAMP
    assert len(path.poses) == 5
    assert [stamp_to_ns(p.header.stamp) - STAMP for p in path.poses] == adv.t_offset_ns.tolist()
    assert_allclose([p.pose.position.x for p in path.poses], adv.x)
    assert_allclose([p.pose.position.y for p in path.poses], adv.y)
    q = path.poses[0].pose.orientation
    assert (q.z, q.w) == pytest.approx((math.sin(0.1), math.cos(0.1)))
    assert yaw_to_quaternion(0.0).w == 1.0


def test_advisory_to_path_refuses_bad_arrays():
    adv = _advisory()
    bad = Advisory(adv.vehicle_id, adv.t_offset_ns, adv.x[:3], adv.y, adv.yaw, adv.speed, 1.0, 1.0, 0.0, False, False)
    with pytest.raises(MessageFormatError, match=r'x has shape \(3,\), expected \(5,\)'):
        advisory_to_path(bad, STAMP)
    x = adv.x.copy()
    x[2] = np.inf
    bad = Advisory(adv.vehicle_id, adv.t_offset_ns, x, adv.y, adv.yaw, adv.speed, 1.0, 1.0, 0.0, False, False)
    with pytest.raises(MessageFormatError, match='non-finite x'):
        advisory_to_path(bad, STAMP)


@pytest.mark.parametrize('frame_id', ['map', 'm', 'ab', 'abc', 'odom_frame'])
@pytest.mark.parametrize('n', [0, 1, 2, 5])
def test_advisory_to_cdr_is_the_serialized_path(frame_id, n):
    """The bytes the twin publishes live are those of advisory_to_path's message, for every frame_id length
    (the padding before each pose's doubles moves with it) and pose count; rclpy reads them back."""
    from rclpy.serialization import deserialize_message

    from cooperative_fusion.ros.cdr import serialize_cdr

    adv = _advisory(max(n, 1))
    if n == 0:
        adv = Advisory('v2', adv.t_offset_ns[:0], adv.x[:0], adv.y[:0], adv.yaw[:0], adv.speed[:0], 4.0, 4.0, 10.0,
                       True, False)
    adv = Advisory(adv.vehicle_id, adv.t_offset_ns, adv.x, adv.y, np.linspace(-3.0, 3.0, n), adv.speed, 4.0, 4.0,
                   10.0, True, False)
    raw = advisory_to_cdr(adv, STAMP + 123, frame_id)
    assert raw == serialize_cdr(advisory_to_path(adv, STAMP + 123, frame_id))
    back = deserialize_message(raw, Path)
    assert back.header.frame_id == frame_id and len(back.poses) == n


def test_advisory_to_cdr_refuses_what_advisory_to_path_refuses():
    adv = _advisory()
    x = adv.x.copy()
    x[2] = np.inf
    bad = Advisory(adv.vehicle_id, adv.t_offset_ns, x, adv.y, adv.yaw, adv.speed, 1.0, 1.0, 0.0, False, False)
    with pytest.raises(MessageFormatError, match='non-finite x'):
        advisory_to_cdr(bad, STAMP)
    with pytest.raises(MessageFormatError, match='negative'):
        advisory_to_cdr(adv, -1)


@pytest.mark.parametrize('distance', [50.0, 100.0, 140.0])
def test_an_advised_stop_fits_in_1200_bytes_and_reads_back(distance):
    """The twin's advisory for a whole stop, serialised (CDR: header + N PoseStamped), is at most 1,200 bytes,
    the 3GPP platooning message size; path_to_advisory reads it back, and a follower recovers the speeds."""
    from rclpy.serialization import serialize_message

    from cooperative_fusion.core.twin.conflicts import ConflictConfig, advise
    from cooperative_fusion.core.twin.prediction import VehicleState
    from cooperative_fusion.core.vehicle.follower import advisory_profile

    cfg = ConflictConfig()
    c = Conflict('v3', ConflictLevel.ERROR, distance / 25.0, distance, 0.0, 0.0, 7, None, 0.0, 0.0, 0.0, 0.0)
    adv = advise(VehicleState('v3', 1234.5, -3.5, 25.0, heading=0.01), c, cfg)
    assert adv.t_offset_ns.shape[0] == cfg.advisory_max_poses                # a long stop uses the whole budget
    path = advisory_to_path(adv, STAMP, 'map')
    size = len(serialize_message(path))
    assert size <= 1200, size                   # 892 bytes: 24 for the header and count, ~72 per PoseStamped
    stamp, t, x, y = path_to_advisory(path)
    assert stamp == STAMP and t.tolist() == adv.t_offset_ns.tolist()
    assert_allclose(x, adv.x) and assert_allclose(y, adv.y)
    prof = advisory_profile(stamp, t, x, y)
    assert_allclose(prof.speed, adv.speed, atol=1e-6)          # exact: poses sit on the kinks, the end holds


def test_path_to_advisory_refuses_stamps_that_go_back():
    path = advisory_to_path(_advisory(), STAMP, 'map')
    path.poses[3].header.stamp = path.poses[1].header.stamp
    with pytest.raises(MessageFormatError, match='advisory pose stamps must increase'):
        path_to_advisory(path)
    path = advisory_to_path(_advisory(), STAMP, 'map')
    path.poses[0].pose.position.y = math.nan
    with pytest.raises(MessageFormatError, match='non-finite'):
        path_to_advisory(path)
