"""The centroid noise of a detection whose extent differs from its track's (TrackerConfig.extent_noise)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cooperative_fusion.core.twin.tracking import MultiObjectTracker, TrackerConfig, _extent_noise

DT_NS = 100_000_000
V = 25.0                       # m/s along x
CAR_L, CAR_W = 4.5, 1.9        # the car's true size, metres
FACE_X = 0.4                   # the rear face's extent along x, metres


def _face(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The car's rear face at frame ``k`` (rear at V t): centroid (1, 2), size (1, 2) length, width, yaw (1,)
    (PCA axes: the face is long across the road)."""
    rear = V * k * 0.1
    return np.array([[rear + 0.5 * FACE_X, 3.5]]), np.array([[CAR_W, FACE_X]]), np.array([np.pi / 2])


def _whole(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole car at frame ``k``: centroid 2.05 m ahead of the face's."""
    rear = V * k * 0.1
    return np.array([[rear + 0.5 * CAR_L, 3.5]]), np.array([[CAR_L, CAR_W]]), np.zeros(1)


def _run(extent_noise: bool) -> MultiObjectTracker:
    """A car tracked on its rear face for 20 frames (radar speed hints), then seen whole at frame 20."""
    trk = MultiObjectTracker(TrackerConfig(process_noise_accel=3.0, spawn_radius_m=5.0, extent_noise=extent_noise))
    for k in range(20):
        xy, size, yaw = _face(k)
        trk.update(xy, k * DT_NS, velocities=np.array([[V, np.nan]]), sizes=size, yaws=yaw)
    xy, size, yaw = _whole(20)
    trk.update(xy, 20 * DT_NS, sizes=size, yaws=yaw)
    return trk


def test_a_car_seen_whole_after_its_rear_face_keeps_its_track_and_speed():
    # cut_in seed 3 at 7.0 s: c1 tracked on its rear face (2.0 x 0.9 m) for 56 detections showed whole (5.9 x
    # 3.5 m), its centroid 1.1 m further on. Outside the 0.3 m centroid noise's gate, the settled track coasted
    # and died, and new tracks chased the pieces at 42, 46 and -3 m/s through the lane change.
    trk = _run(extent_noise=True)
    (track,) = trk.tracks(include_tentative=True)
    assert (track.track_id, track.hits, track.misses) == (1, 21, 0)
    assert abs(track.vx - V) < 1.0          # the 2.05 m jump of the point measured is mostly not read as speed
    assert abs(track.vy) < 0.1


def test_without_extent_noise_the_whole_car_is_another_object():
    trk = _run(extent_noise=False)
    tracks = {t.track_id: t for t in trk.tracks(include_tentative=True)}
    assert sorted(tracks) == [1, 2]
    assert tracks[1].misses == 1 and tracks[2].hits == 1


def test_a_car_in_the_next_lane_keeps_its_own_detection():
    # The wider gate follows a change of extent, not of lane: a car seen whole 3.5 m across the road from the
    # settled face track is not taken by it (the extent difference across the road is 0 there).
    trk = MultiObjectTracker(TrackerConfig(process_noise_accel=3.0, extent_noise=True))
    for k in range(20):
        xy, size, yaw = _face(k)
        trk.update(xy, k * DT_NS, velocities=np.array([[V, np.nan]]), sizes=size, yaws=yaw)
    xy, size, yaw = _face(20)
    other = np.array([[xy[0, 0] + 2.05, 0.0]])            # a whole car level with it, one lane over
    trk.update(np.concatenate([xy, other]), 20 * DT_NS, sizes=np.concatenate([size, [[CAR_L, CAR_W]]]),
               yaws=np.array([np.pi / 2, 0.0]))
    tracks = {t.track_id: t for t in trk.tracks(include_tentative=True)}
    assert tracks[1].misses == 0 and abs(tracks[1].y - 3.5) < 0.05 and abs(tracks[1].vx - V) < 0.2
    assert tracks[2].hits == 1 and tracks[2].y == 0.0


def test_extent_noise_is_the_squared_difference_of_the_extents_over_twelve():
    track_size = np.array([[1.9, 0.4], [0.0, 0.0]])          # a rear face (yaw pi/2) and a track without a size
    track_yaw = np.array([np.pi / 2, 0.0])
    det_size = np.array([[4.5, 1.9], [1.9, 0.4]])
    det_yaw = np.array([0.0, np.pi / 2])
    out = _extent_noise(track_size, track_yaw, det_size, det_yaw)
    assert out.shape == (2, 2, 2, 2)
    assert_allclose(out[0, 0], np.diag([(4.5 - 0.4) ** 2 / 12.0, 0.0]), atol=1e-12)
    assert_allclose(out[0, 1], 0.0, atol=1e-12)               # the same face again: no extra noise
    assert_allclose(out[1], 0.0)                              # no size: nothing added


@pytest.mark.parametrize('extent_noise', [False, True])
def test_same_extent_every_frame_tracks_as_without_it(extent_noise):
    trk = MultiObjectTracker(TrackerConfig(process_noise_accel=3.0, extent_noise=extent_noise))
    for k in range(15):
        xy, size, yaw = _face(k)
        tracks = trk.update(xy, k * DT_NS, sizes=size, yaws=yaw)
    ref = MultiObjectTracker(TrackerConfig(process_noise_accel=3.0))
    for k in range(15):
        xy, size, yaw = _face(k)
        ref_tracks = ref.update(xy, k * DT_NS, sizes=size, yaws=yaw)
    assert_allclose(tracks[0].state, ref_tracks[0].state, rtol=0, atol=1e-9)
