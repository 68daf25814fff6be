"""core.fusion.dynamic: moving components split off the evidence, predicted to the publish time; static ones fused."""
from __future__ import annotations

import numpy as np
import pytest

from cooperative_fusion.core.fusion.dynamic import DynamicConfig, DynamicLayer, RadarTargets, near_layer, radar_speeds, sweep_phase_s
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.common_grid import CommonGrid, FusionConfig
from cooperative_fusion.core.grid import GridSpec

RES = 0.2
SPEC = GridSpec(0.0, -4.0, RES, 400, 40)          # 80 x 8 m, road along x
MS = 1_000_000
T0 = 10_000 * MS
L_HIT = np.float32(1.7)                           # p 0.85


def block(x0: float, length: float = 4.0, y0: float = 1.0, width: float = 1.8, free_lane: bool = False
          ) -> tuple[np.ndarray, np.ndarray]:
    """Evidence with an occupied block [x0, x0 + length] x [y0, y0 + width]; optionally free road around it."""
    logodds = np.zeros(SPEC.shape, np.float32)
    known = np.zeros(SPEC.shape, bool)
    xs, ys = SPEC.cell_centers()
    if free_lane:
        lane = (ys[:, None] >= y0 - 1.0) & (ys[:, None] <= y0 + width + 1.0) & (xs[None, :] >= 0)
        logodds[lane] = -0.85
        known |= lane
    box = (xs[None, :] >= x0) & (xs[None, :] < x0 + length) & (ys[:, None] >= y0) & (ys[:, None] < y0 + width)
    logodds[box] = L_HIT
    known |= box
    return logodds, known


def radar_on(x0: float, speed: float, stamp_ns: int, sensor_x: float = 0.0) -> RadarTargets:
    """Three targets on the block's rear face moving at ``speed`` along x, seen from (sensor_x, 0)."""
    xy = np.array([[x0 + 0.1, 1.3], [x0 + 0.1, 1.9], [x0 + 0.1, 2.5]])
    los = xy - np.array([sensor_x, 0.0])
    v_r = speed * los[:, 0] / np.linalg.norm(los, axis=1)        # radial component of (speed, 0)
    return RadarTargets(stamp_ns, np.column_stack([xy, v_r]), np.array([sensor_x, 0.0]))


def occupied_x(cells: np.ndarray) -> tuple[float, float]:
    """(min, max) x of the cells with p >= 0.65 (cell edges), metres."""
    iy, ix = np.nonzero(cells >= 65)
    x = SPEC.origin_x + ix * RES
    return float(x.min()), float(x.max() + RES)


def test_radar_speed_is_the_along_road_speed():
    r = radar_on(30.0, 25.0, T0, sensor_x=10.0)
    xy, speed = radar_speeds(r, 0.0, 25.0)
    assert xy.shape == (3, 2)
    np.testing.assert_allclose(speed, 25.0, rtol=1e-9)
    # Seen across the road (line of sight 90 deg from the road): the speed is not observable.
    across = RadarTargets(T0, np.array([[10.0, 5.0, 0.0]]), np.array([10.0, 0.0]))
    assert radar_speeds(across, 0.0, 25.0)[1].size == 0


def test_moving_block_with_radar_speed_is_drawn_at_x0_plus_v_dt():
    layer = DynamicLayer(DynamicConfig())
    lin, known = block(30.0)
    out = layer.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 25.0, T0))
    assert len(out.moving) == 1 and out.moving[0].source == 'radar'
    np.testing.assert_allclose(out.moving[0].velocity, [25.0, 0.0], atol=1e-6)
    assert not (out.known & (out.logodds > 0)).any()                   # not fused as static
    empty = np.full(SPEC.shape, -1, np.int8)
    x_min, x_max = occupied_x(layer.draw(SPEC, empty, T0 + 120 * MS))
    assert x_min == pytest.approx(30.0 + 25.0 * 0.12, abs=RES)         # 33.0 m: x0 + v dt
    assert x_max == pytest.approx(34.0 + 25.0 * 0.12, abs=RES)
    # Expired after max_age: nothing drawn.
    assert not (layer.draw(SPEC, empty, T0 + 400 * MS) >= 0).any()


def test_radar_of_the_previous_cycle_is_moved_to_the_evidence_stamp():
    layer = DynamicLayer(DynamicConfig())
    lin, known = block(32.5)                                             # 100 ms later at 25 m/s
    out = layer.split('v1', SPEC, lin, known, T0 + 100 * MS, 0.0, radar_on(30.0, 25.0, T0))
    assert len(out.moving) == 1 and out.moving[0].source == 'radar'


def test_static_block_is_integrated():
    layer = DynamicLayer(DynamicConfig())
    lin, known = block(30.0)
    out = layer.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 0.05, T0))
    assert out.moving == () and out.components == 1 and out.radar_speeds == 1
    np.testing.assert_array_equal(out.known, known)
    np.testing.assert_array_equal(out.logodds, lin)
    assert layer.objects() == []


def fuse(cycles: int, dynamic: bool) -> np.ndarray:
    """A block driving 2.5 m per 100 ms cycle with radar; the road around it unseen (occluded)."""
    grid = CommonGrid(FusionConfig(spec=SPEC, vehicle_weights={'v1': 1.0}))
    layer = DynamicLayer(DynamicConfig())
    for k in range(cycles):
        t = T0 + k * 100 * MS
        lin, known = block(20.0 + 2.5 * k)
        if dynamic:
            out = layer.split('v1', SPEC, lin, known, t, 0.0, radar_on(20.0 + 2.5 * k, 25.0, t))
            lin, known = out.logodds, out.known
        assert grid.integrate('v1', SPEC, lin, known, t, t + 60 * MS).accepted
    t_pub = T0 + (cycles - 1) * 100 * MS + 100 * MS
    grid.advance(t_pub)
    return layer.draw(SPEC, grid.posterior_percent(), t_pub)


def test_no_trail_behind_a_moving_block_over_five_cycles():
    cells = fuse(5, dynamic=True)
    # Last evidence at 30.0 m (stamp + 100 ms at publish): the block is at [32.5, 36.5].
    assert occupied_x(cells) == pytest.approx((32.5, 36.5), abs=RES)
    # Without the dynamic layer every old position stays occupied behind it: a 14 m trail.
    x_min, x_max = occupied_x(fuse(5, dynamic=False))
    assert x_min == pytest.approx(20.0, abs=RES) and x_max == pytest.approx(34.0, abs=RES)


def test_tracking_gives_a_speed_without_radar_after_two_estimates():
    layer = DynamicLayer(DynamicConfig())
    moving = []
    for k in range(4):
        lin, known = block(20.0 + 2.5 * k)
        out = layer.split('v1', SPEC, lin, known, T0 + k * 100 * MS, 0.0)
        moving.append(len(out.moving))
    assert moving == [0, 0, 1, 1]              # speed from the 2nd view, moving once two estimates agree
    obj = layer.objects()[-1]
    assert obj.source == 'track'
    np.testing.assert_allclose(obj.velocity, [25.0, 0.0], atol=0.5)


def test_a_jittering_static_block_stays_static():
    layer = DynamicLayer(DynamicConfig())
    rng = np.random.default_rng(0)
    for k in range(6):
        lin, known = block(30.0 + float(rng.uniform(-0.2, 0.2)))
        out = layer.split('v1', SPEC, lin, known, T0 + k * 100 * MS, 0.0)
        assert out.moving == ()


def test_static_zone_keeps_a_moving_component_static():
    layer = DynamicLayer(DynamicConfig())
    lin, known = block(30.0)
    zone = np.zeros(SPEC.shape, bool)
    zone[:, :152] = True                       # x < 30.4 m: touches the block's rear
    out = layer.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 25.0, T0), static_zone=zone)
    assert out.moving == ()
    np.testing.assert_array_equal(out.known, known)


def test_newer_evidence_that_sees_the_place_replaces_the_object_and_duplicates_are_drawn_once():
    layer = DynamicLayer(DynamicConfig())
    lin, known = block(30.0)
    layer.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 25.0, T0))
    # v1 now sees free road where the object would be (it stopped being there): the object goes.
    free = np.full(SPEC.shape, -0.85, np.float32)
    layer.split('v1', SPEC, free, np.ones(SPEC.shape, bool), T0 + 100 * MS, 0.0)
    assert layer.objects() == []
    # Two vehicles see the same car 50 ms apart, the older view 0.4 m behind: only the newer is drawn.
    layer.split('v1', SPEC, *block(30.0), T0, 0.0, radar_on(30.0, 25.0, T0))
    layer.split('v2', SPEC, *block(31.25 + 0.4), T0 + 50 * MS, 0.0, radar_on(31.65, 25.0, T0 + 50 * MS))
    assert len(layer.objects()) == 2
    x_min, _ = occupied_x(layer.draw(SPEC, np.full(SPEC.shape, -1, np.int8), T0 + 100 * MS))
    assert x_min == pytest.approx(31.65 + 1.25, abs=RES)                # the v2 view, not v1's at 32.5


def test_long_components_stay_static():
    layer = DynamicLayer(DynamicConfig(max_length_m=20.0))
    lin, known = block(10.0, length=30.0)                                 # a guard rail
    out = layer.split('v1', SPEC, lin, known, T0, 0.0, radar_on(10.0, 25.0, T0))
    assert out.moving == () and out.components == 0


@pytest.mark.parametrize('kwargs, match', [
    ({'min_speed_mps': 0.0}, 'min_speed_mps'),
    ({'track_smoothing': 0.0}, 'track_smoothing'),
    ({'max_los_angle_deg': 90.0}, 'max_los_angle_deg'),
    ({'merge_gap_m': -1.0}, 'merge_gap_m'),
    ({'min_cells': 0}, 'min_cells'),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DynamicConfig(**kwargs)


def test_split_rejects_arrays_that_do_not_match_the_spec():
    with pytest.raises(ConfigError, match='do not match the spec'):
        DynamicLayer(DynamicConfig()).split('v1', SPEC, np.zeros((3, 3), np.float32), np.zeros((3, 3), bool),
                                            T0, 0.0)


def test_an_object_with_its_own_age_limit_outlives_the_layer_limit():
    """A vehicle on a 400 ms link: its objects live max_age + latency, drawn where they are by then."""
    layer = DynamicLayer(DynamicConfig(max_age_ns=300 * MS))
    lin, known = block(30.0)
    out = layer.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 25.0, T0), max_age_ns=700 * MS)
    assert out.moving[0].max_age_ns == 700 * MS
    empty = np.full(SPEC.shape, -1, np.int8)
    x_min, _ = occupied_x(layer.draw(SPEC, empty, T0 + 600 * MS))
    assert x_min == pytest.approx(30.0 + 25.0 * 0.6, abs=RES)           # alive at 0.6 s, at x0 + v dt
    assert len(layer.objects(T0 + 600 * MS)) == 1
    assert layer.objects(T0 + 750 * MS) == []                            # gone after its own limit
    # A limit below the layer's is raised to it; None keeps the layer's.
    layer2 = DynamicLayer(DynamicConfig(max_age_ns=300 * MS))
    low = layer2.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 25.0, T0), max_age_ns=100 * MS)
    assert low.moving[0].max_age_ns == 300 * MS and len(layer2.objects(T0 + 250 * MS)) == 1
    layer3 = DynamicLayer(DynamicConfig(max_age_ns=300 * MS))
    none = layer3.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 25.0, T0))
    assert none.moving[0].max_age_ns is None and layer3.objects(T0 + 400 * MS) == []


def test_newer_evidence_of_the_vehicle_ends_the_age_extension_of_its_older_objects():
    """The extension bridges the wait for the vehicle's next view: an older object that view does not
    observe keeps only the layer's max_age (else it is extrapolated on as a ghost copy)."""
    layer = DynamicLayer(DynamicConfig(max_age_ns=300 * MS))
    lin, known = block(30.0)
    layer.split('v1', SPEC, lin, known, T0, 0.0, radar_on(30.0, 25.0, T0), max_age_ns=700 * MS)
    assert len(layer.objects(T0 + 500 * MS)) == 1
    unseen = np.zeros(SPEC.shape, np.float32), np.zeros(SPEC.shape, bool)   # the next view sees nothing
    layer.split('v1', SPEC, *unseen, T0 + 100 * MS, 0.0, None, max_age_ns=700 * MS)
    kept = layer.objects()
    assert len(kept) == 1 and kept[0].max_age_ns is None
    assert len(layer.objects(T0 + 250 * MS)) == 1 and layer.objects(T0 + 500 * MS) == []
    # Another vehicle's evidence does not touch v1's objects.
    layer.split('v1', SPEC, lin, known, T0 + 150 * MS, 0.0, radar_on(30.0, 25.0, T0 + 150 * MS),
                max_age_ns=700 * MS)
    layer.split('v2', SPEC, *unseen, T0 + 200 * MS, 0.0, None, max_age_ns=700 * MS)
    assert [o.max_age_ns for o in layer.objects() if o.stamp_ns == T0 + 150 * MS] == [700 * MS]


def test_sweep_phase_is_the_azimuth_share_of_the_period():
    xy = np.array([[10.0, 0.0], [0.0, 10.0], [0.0, -10.0], [-10.0, 1e-9], [-10.0, -1e-9]])
    phase = sweep_phase_s(xy, np.zeros(2), 0.0, 0.1)
    np.testing.assert_allclose(phase, [0.0, 0.025, -0.025, 0.05, -0.05], atol=1e-9)
    # Heading 90 deg: straight ahead is +y.
    np.testing.assert_allclose(sweep_phase_s(np.array([[0.0, 10.0]]), np.zeros(2), np.pi / 2, 0.1), [0.0],
                               atol=1e-12)


@pytest.mark.parametrize('sweep_phase', [True, False])
def test_a_tracked_car_behind_left_is_drawn_where_it_is_at_the_stamp(sweep_phase):
    # A car overtaking from behind-left at 25 m/s, seen by a 10 Hz lidar at (40, 0) about 48 ms after each
    # stamp (nearly half a sweep late): its evidence lies 1.2 m ahead of where it is at the stamp.
    layer = DynamicLayer(DynamicConfig(sweep_phase=sweep_phase, thin_faces=False))
    sensor = np.array([40.0, 0.0])
    for k in range(4):
        x0 = 20.0 + 2.5 * k
        late = float(sweep_phase_s(np.array([[x0 + 2.0, 1.9]]), sensor, 0.0, 0.1)[0])
        lin, known = block(x0 + 25.0 * late)
        layer.split('v1', SPEC, lin, known, T0 + k * 100 * MS, 0.0, sensor_xy=sensor)
    obj = layer.objects()[-1]
    assert obj.source == 'track'
    np.testing.assert_allclose(obj.velocity, [25.0, 0.0], atol=0.5)
    front = float(obj.cells_xy[:, 0].max()) + 0.5 * RES
    x_front = 20.0 + 2.5 * 3 + 4.0
    if sweep_phase:
        assert abs(front - x_front) < 0.3
    else:
        assert front - x_front > 1.0


def test_near_layer_is_the_sensor_side_of_a_face_two_cells_deep():
    # A face across x, two cells deep (ix 10, 11), rows 0..3, and one cell alone at (20, 0); sensor far at -x.
    ix = np.array([10, 11, 10, 11, 10, 11, 10, 11, 20])
    iy = np.array([0, 0, 1, 1, 2, 2, 3, 3, 0])
    np.testing.assert_array_equal(near_layer(ix, iy, -50.0, 1.5), [True, False] * 4 + [False])
    # Seen from +x the other layer faces the sensor.
    np.testing.assert_array_equal(near_layer(ix, iy, 80.0, 1.5), [False, True] * 4 + [False])



def test_near_layer_of_labelled_objects_is_one_call_per_object():
    """Objects side by side (touching cells of other objects are not the cell's own): the labelled call gives
    each object's near layer as its own call does."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        cells = np.unique(rng.integers(0, 12, (60, 2)), axis=0)
        labels = rng.integers(0, 4, len(cells))
        sensor = rng.uniform(-20, 30, 2)
        got = near_layer(cells[:, 0], cells[:, 1], *sensor, labels=labels)
        for lab in np.unique(labels):
            sel = labels == lab
            np.testing.assert_array_equal(got[sel], near_layer(cells[sel, 0], cells[sel, 1], *sensor))


def test_a_moving_object_is_drawn_one_cell_thinner_on_the_sensor_side():
    layers = {}
    for thin in (True, False):
        layer = DynamicLayer(DynamicConfig(thin_faces=thin, sweep_phase=False))
        for k in range(3):
            lin, known = block(20.0 + 2.5 * k)
            layer.split('v1', SPEC, lin, known, T0 + k * 100 * MS, 0.0, radar=radar_on(20.0 + 2.5 * k, 25.0,
                        T0 + k * 100 * MS), sensor_xy=np.array([0.0, 1.9]))
        layers[thin] = layer.objects()[-1].cells_xy
    # Seen from behind: the rear column (x0 + 0.1) is gone, nothing else.
    assert layers[False][:, 0].min() == pytest.approx(25.1)
    assert layers[True][:, 0].min() == pytest.approx(25.3)
    assert len(layers[False]) - len(layers[True]) == 9


@pytest.mark.parametrize('yaw_deg', [0.0, 30.0, -120.0])
def test_faces_are_thinned_on_the_sensor_side_on_a_turned_grid_far_from_the_map_origin(yaw_deg):
    # The same scene in the grid's own frame (a block [1025, 1029] x [1, 2.8], sensor at (1000, 1.9)
    # behind it, 25 m/s along the grid's x), on a grid turned by yaw in map: the rear column is thinned.
    yaw = np.radians(yaw_deg)
    spec = GridSpec(1000.0, -4.0, RES, 400, 40, yaw)
    xs, ys = spec.cell_centers()
    road = np.array([np.cos(yaw), np.sin(yaw)])
    layer = DynamicLayer(DynamicConfig(sweep_phase=False))
    for k in range(3):
        x0 = 1020.0 + 2.5 * k
        box = (xs[None, :] >= x0) & (xs[None, :] < x0 + 4.0) & (ys[:, None] >= 1.0) & (ys[:, None] < 2.8)
        lin = np.where(box, L_HIT, np.float32(0.0)).astype(np.float32)
        targets = spec.to_map_frame(np.array([[x0 + 0.1, 1.3], [x0 + 0.1, 1.9], [x0 + 0.1, 2.5]]))
        sensor = spec.to_map_frame(np.array([x0 - 20.0, 1.9]))
        los = targets - sensor
        v_r = 25.0 * (los @ road) / np.linalg.norm(los, axis=1)
        radar = RadarTargets(T0 + k * 100 * MS, np.column_stack([targets, v_r]), sensor)
        layer.split('v1', spec, lin, box, T0 + k * 100 * MS, float(yaw), radar=radar, sensor_xy=sensor)
    cells = spec.to_grid_frame(layer.objects()[-1].cells_xy)
    assert cells[:, 0].min() == pytest.approx(1025.3)            # the rear column (1025.1) is gone
    assert cells[:, 1].min() == pytest.approx(1.1) and cells[:, 1].max() == pytest.approx(2.7)
    assert len(cells) == 20 * 9 - 9
