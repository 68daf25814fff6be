"""core.fusion.dynamic: cells their vehicle already moved to the stamp with a radar return keep their place."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cooperative_fusion.core.fusion.dynamic import DynamicConfig, DynamicLayer, RadarTargets, moved_by_vehicle
from cooperative_fusion.core.grid import GridSpec

RES = 0.2
SPEC = GridSpec(0.0, -4.0, RES, 400, 40)          # 80 x 8 m, road along x
MS = 1_000_000
T0 = 10_000 * MS


def car(x0: float, y0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Evidence with a 4 x 1.8 m car at [x0, x0 + 4] x [y0, y0 + 1.8] (log-odds 1.7)."""
    xs, ys = SPEC.cell_centers()
    box = (xs[None, :] >= x0) & (xs[None, :] < x0 + 4.0) & (ys[:, None] >= y0) & (ys[:, None] < y0 + 1.8)
    return np.where(box, np.float32(1.7), np.float32(0.0)).astype(np.float32), box


def target(xy: tuple[float, float], sensor: np.ndarray, speed: float, stamp_ns: int) -> RadarTargets:
    """One return at ``xy`` of something moving at ``speed`` along x, its radial velocity seen from ``sensor``."""
    los = np.asarray(xy) - sensor
    return RadarTargets(stamp_ns, np.array([[xy[0], xy[1], speed * los[0] / np.linalg.norm(los)]]), sensor)


def test_moved_by_vehicle_takes_the_target_along_the_road_to_the_stamp():
    # A return 35 deg off the bow, 100 ms before the stamp, on a car at 28 m/s: at the stamp it is 2.8 m further
    # along the road (not along the line of sight, which would also put it 1.6 m to the side).
    sensor = np.zeros(2)
    r = target((10.0, 7.0), sensor, 28.0, T0 - 100 * MS)
    x = np.array([12.8, 12.8, 10.0, 12.8])
    y = np.array([7.0, 8.9, 7.0, 5.0])
    np.testing.assert_array_equal(moved_by_vehicle(r, x, y, 0.0, T0, 1.0, 1.0), [True, False, False, False])
    # Slower than the vehicles' moving speed: their hits were not moved.
    assert not moved_by_vehicle(r, x, y, 0.0, T0, 1.0, 30.0).any()


@pytest.mark.parametrize('with_radar', [True, False])
def test_a_car_its_vehicle_moved_to_the_stamp_gets_no_sweep_phase(with_radar):
    # A car 48 deg off the bow (too far off for a radar speed: tracked), both at 25 m/s. Its vehicle moved its
    # hits to the stamp with the radar return on it, so the evidence shows it where it is at each stamp; the
    # sweep phase (13 ms at that azimuth) would move it another 0.33 m back.
    layer = DynamicLayer(DynamicConfig(thin_faces=False))
    for k in range(5):
        stamp = T0 + k * 100 * MS
        x0 = 20.0 + 2.5 * k
        sensor = np.array([x0 - 2.0, -2.5])
        radar = target((x0 + 0.1, 1.1), sensor, 25.0, stamp) if with_radar else None
        layer.split('v1', SPEC, *car(x0), stamp, 0.0, radar=radar, sensor_xy=sensor)
    obj = [o for o in layer.objects() if o.stamp_ns == T0 + 400 * MS]
    assert len(obj) == 1 and obj[0].source == 'track'
    np.testing.assert_allclose(obj[0].velocity, [25.0, 0.0], atol=0.3)
    rear = float(obj[0].cells_xy[:, 0].min()) - 0.5 * RES
    if with_radar:
        assert abs(rear - 30.0) < 0.1
    else:                                    # moved back once more by at least the centre's phase
        assert rear < 30.0 - 25.0 * math.atan2(1.9 + 2.5, 4.0) / (2.0 * math.pi) * 0.1
