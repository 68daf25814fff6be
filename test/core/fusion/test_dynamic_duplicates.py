"""DynamicLayer.draw: of two views of one car, an older, fuller view is drawn instead of a newer sliver."""
from __future__ import annotations

import numpy as np

from cooperative_fusion.core.fusion.dynamic import DynamicConfig, DynamicLayer, MovingObject
from cooperative_fusion.core.grid import GridSpec, logodds_to_percent
from cooperative_fusion.core.metrics import Box, TruthFrame

SPEC = GridSpec(-30.0, -8.0, 0.2, 300, 80)
MS = 1_000_000
T = 5_000 * MS
CAR = Box(10.0, 3.5, 4.5, 1.8, id='c1', kind='car', height=1.5, vx=28.0)
L = 2.0
PCT = int(logodds_to_percent(np.array([L], np.float32))[0])


def _cells(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Cell centres (K, 2) of the 0.2 m cells covering [x0, x1) x [y0, y1), metres."""
    xs, ys = np.arange(x0 + 0.1, x1, 0.2), np.arange(y0 + 0.1, y1, 0.2)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def _layer(*objects: MovingObject) -> DynamicLayer:
    layer = DynamicLayer(DynamicConfig(duplicate_radius_m=1.0))
    for o in objects:
        layer._objects.setdefault(o.vehicle_id, []).append(o)
    return layer


def _object(vid: str, xy_at_t: np.ndarray, age_ms: int) -> MovingObject:
    """A car's cells as seen ``age_ms`` before T (placed so that they are at ``xy_at_t`` at T)."""
    v = np.array([CAR.vx, 0.0])
    return MovingObject(vid, xy_at_t - v * (age_ms * 1e-3), np.full(len(xy_at_t), L, np.float32), v,
                        T - age_ms * MS, 'radar')


# The car's rear face is at x = 7.75. A follower's newer view: one column of its rear face, drawn just
# behind it (x 7.6-7.8). The leader's older view: the rear 2 m of the car, rear face and both sides.
REAR = _cells(7.6, 7.8, 2.6, 4.4)
FULL = np.concatenate([_cells(7.8, 9.8, 2.6, 2.8), _cells(7.8, 9.8, 4.2, 4.4), _cells(7.8, 8.0, 2.8, 4.2)])


def _hits(out: np.ndarray) -> int:
    frame = TruthFrame(SPEC, [CAR])
    (sl, mask), = frame.own_cells
    return int(np.count_nonzero(out[sl][mask] >= 65))


def test_an_older_fuller_view_is_drawn_instead_of_a_newer_sliver_of_the_same_car():
    layer = _layer(_object('v2', REAR, 67), _object('v1', FULL, 148))
    out = layer.draw(SPEC, np.full(SPEC.shape, -1, np.int8), T)
    assert np.count_nonzero(out == PCT) == len(FULL)
    ix, iy = SPEC.world_to_cell(FULL)
    assert (out[iy, ix] == PCT).all()
    assert _hits(out) >= 3
    # The newer sliver alone puts no cell inside the car's footprint: see-through would miss it.
    alone = _layer(_object('v2', REAR, 67)).draw(SPEC, np.full(SPEC.shape, -1, np.int8), T)
    assert _hits(alone) == 0


def test_an_older_view_no_fuller_than_the_newer_is_still_a_duplicate():
    # The same full view seen twice, the older 0.4 m off: only the newer is drawn.
    layer = _layer(_object('v2', FULL, 67), _object('v1', FULL - (0.4, 0.0), 148))
    out = layer.draw(SPEC, np.full(SPEC.shape, -1, np.int8), T)
    assert np.count_nonzero(out == PCT) == len(FULL)
    ix, _ = SPEC.world_to_cell(FULL)
    assert np.flatnonzero((out == PCT).any(axis=0)).min() == ix.min()


def test_an_older_view_larger_than_the_newer_drawn_near_it_but_mostly_elsewhere_is_drawn():
    # An older view of a different, longer object beside a small newer one is not a duplicate at all
    # when most of its cells are far from the newer: drawn as before.
    far = _cells(15.0, 20.0, 2.6, 4.4)
    layer = _layer(_object('v2', REAR, 67), _object('v1', far, 148))
    out = layer.draw(SPEC, np.full(SPEC.shape, -1, np.int8), T)
    assert np.count_nonzero(out == PCT) == len(REAR) + len(far)


def test_a_fuller_view_of_the_same_vehicle_or_with_a_tracking_speed_is_still_a_duplicate():
    # The same vehicle's newer sliver supersedes its older view; an older view moved by a tracking speed
    # (centroid steps: less sure of where it is now) does not add a second copy either.
    for older in (_object('v2', FULL, 148),
                  MovingObject('v1', FULL - np.array([CAR.vx, 0.0]) * 0.148, np.full(len(FULL), L, np.float32),
                               np.array([CAR.vx, 0.0]), T - 148 * MS, 'track')):
        out = _layer(_object('v2', REAR, 67), older).draw(SPEC, np.full(SPEC.shape, -1, np.int8), T)
        assert np.count_nonzero(out == PCT) == len(REAR)
