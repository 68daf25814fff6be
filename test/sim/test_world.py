from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.se3 import from_xyz_rpy
from cooperative_fusion.sim.events import EventKind
from cooperative_fusion.sim.scenario import scenario_from_dict
from cooperative_fusion.sim.world import Simulation, load_scenario, sensor_extrinsics

SCENARIOS = Path(__file__).resolve().parents[2] / 'config' / 'scenarios'
S = 1_000_000_000
START = S          # start_time_s of the shipped scenarios


def lean(name, keep_lidar=()):
    """A shipped scenario with every sensor off except the lidars of ``keep_lidar`` (faster tests)."""
    raw = yaml.safe_load((SCENARIOS / f'{name}.yaml').read_text())
    for v in raw['platoon']['vehicles']:
        for sensor in ('lidar', 'radar', 'camera'):
            v['sensors'][sensor]['enabled'] = sensor == 'lidar' and v['id'] in keep_lidar
    return scenario_from_dict(raw, name)


@pytest.fixture(scope='module')
def scenario():
    return load_scenario(SCENARIOS / 'highway_occlusion.yaml')


@pytest.fixture(scope='module')
def first_second(scenario):
    return list(Simulation(scenario).events(1.0))


def test_topics_frames_order_and_payloads(first_second):
    ev = first_second
    assert ev[0].kind is EventKind.TRUTH_META and ev[0].topic == '/truth/scenario' and ev[0].log_time_ns == START
    logs = [e.log_time_ns for e in ev]
    assert logs == sorted(logs) and logs[-1] < START + S
    topics = {(e.topic, e.frame_id) for e in ev}
    for v in ('v1', 'v2', 'v3', 'v4'):
        for t in [(f'/{v}/lidar/points', f'{v}/lidar'), (f'/{v}/radar/points', f'{v}/radar'),
                  (f'/{v}/camera/depth/image', f'{v}/camera_optical'),
                  (f'/{v}/camera/depth/camera_info', f'{v}/camera_optical'), (f'/{v}/odom', 'map'),
                  (f'/truth/odom/{v}', 'map')]:
            assert t in topics
        assert any(e.topic == f'/{v}/time_reference' for e in ev)
    assert ('/truth/grid', 'map') in topics and ('/truth/objects', 'map') in topics
    by_kind = {e.kind: e for e in ev}
    lidar = by_kind[EventKind.LIDAR].data['points']
    assert lidar.dtype.names == ('x', 'y', 'z', 'intensity', 't') and lidar.dtype['x'] == np.float32
    assert by_kind[EventKind.RADAR].data['points'].dtype.names == ('x', 'y', 'z', 'velocity', 'rcs')
    depth = by_kind[EventKind.DEPTH].data['depth']
    assert depth.dtype == np.float32 and depth.shape == (120, 160)
    info = by_kind[EventKind.CAMERA_INFO].data
    assert (info['width'], info['height']) == (160, 120)
    assert_allclose(info['K'][0, 0], 80.0)
    odom = by_kind[EventKind.ODOM]
    assert odom.data['child_frame_id'].endswith('/base_link') and odom.data['pose'].covariance.shape == (6, 6)
    grid = by_kind[EventKind.TRUTH_GRID].data
    assert grid['cells'].dtype == np.int8 and grid['cells'].shape == grid['spec'].shape
    assert set(np.unique(grid['cells'])) <= {0, 100}
    assert grid['spec'].resolution == pytest.approx(0.2)
    box = by_kind[EventKind.TRUTH_OBJECTS].data['boxes'][0]
    assert set(box) == {'id', 'kind', 'center', 'size', 'yaw', 'velocity'}


def test_rates(first_second):
    times = defaultdict(list)
    for e in first_second:
        times[e.topic].append(e.log_time_ns)
    for topic, hz in [('/v2/lidar/points', 10), ('/v2/radar/points', 20), ('/v2/camera/depth/image', 15),
                      ('/v2/odom', 50), ('/truth/grid', 10), ('/truth/odom/v2', 50)]:
        assert_allclose(np.diff(times[topic]), 1e9 / hz, atol=1)
    assert len(times['/v1/odom']) == 50 and len(times['/v1/radar/points']) == 20
    assert len(times['/v1/time_reference']) == 1


def test_stamps_carry_vehicle_clocks(scenario, first_second):
    cfg = {v.id: v.clock for v in scenario.platoon.vehicles}
    for e in first_second:
        if e.kind in (EventKind.ODOM, EventKind.RADAR, EventKind.DEPTH, EventKind.TIME_REFERENCE):
            v = e.topic.split('/')[1]
            c = cfg[v]
            expected = e.log_time_ns * (1 + c.drift_ppm * 1e-6) + c.offset_ms * 1e6
            assert abs(e.stamp_ns - expected) <= 3 * c.jitter_ms * 1e6 + 1
            if e.kind is EventKind.TIME_REFERENCE:
                assert e.data['time_ref_ns'] == e.log_time_ns
        elif e.kind is EventKind.LIDAR:
            v = e.topic.split('/')[1]
            start = e.log_time_ns - 100_000_000              # logged at the end of the sweep
            assert abs(e.stamp_ns - start - cfg[v].offset_ms * 1e6) < 2e6
        elif e.topic.startswith('/truth'):
            assert e.stamp_ns == e.log_time_ns


def test_same_seed_same_events_and_other_seed_differs(scenario):
    a = list(Simulation(scenario).events(0.3))
    b = list(Simulation(scenario).events(0.3))
    c = list(Simulation(scenario, seed=99).events(0.3))
    assert [(e.topic, e.stamp_ns, e.log_time_ns) for e in a] == [(e.topic, e.stamp_ns, e.log_time_ns) for e in b]
    for x, y in zip(a, b):
        for k, v in x.data.items():
            if isinstance(v, np.ndarray):
                assert_array_equal(v, y.data[k])
    lid = lambda evs: [e.data['points'] for e in evs if e.topic == '/v1/lidar/points']
    assert lid(a) and not np.array_equal(lid(a)[0], lid(c)[0])


def test_truth_grid_marks_box_footprints(first_second):
    grid = next(e for e in first_second if e.kind is EventKind.TRUTH_GRID)
    objects = next(e for e in first_second if e.kind is EventKind.TRUTH_OBJECTS and e.log_time_ns == grid.log_time_ns)
    spec, cells = grid.data['spec'], grid.data['cells']
    xs, ys = spec.cell_centers()
    inside_any = np.zeros(spec.shape, dtype=bool)
    for b in objects.data['boxes']:
        c, s = math.cos(b['yaw']), math.sin(b['yaw'])
        dx, dy = xs[None, :] - b['center'][0], ys[:, None] - b['center'][1]
        inside_any |= (np.abs(c * dx + s * dy) <= b['size'][0] / 2) & (np.abs(-s * dx + c * dy) <= b['size'][1] / 2)
    assert inside_any.sum() > 500
    assert_array_equal(cells == 100, inside_any)
    # The truck (v2, 12 m × 2.5 m) covers 60 × 12-13 cells.
    truck = next(b for b in objects.data['boxes'] if b['id'] == 'v2')
    ix, iy = spec.world_to_cell(np.array([truck['center'][:2]]))
    assert cells[iy[0], ix[0]] == 100


def test_meeting_times_in_truth_meta(scenario, first_second):
    meta = json.loads(first_second[0].data['json'])
    t = meta['meeting_time_s']
    assert t['v1'] == pytest.approx(15.0, abs=0.02)
    assert t['v1'] < t['v2'] < t['v3'] < t['v4'] < 20.0
    # v2's front starts 3.5 (v1 front) + 1.0 (v1 rear overhang) + 15 (gap) = 19.5 m behind v1's front,
    # and the platoon starts in IDM equilibrium, so it arrives 19.5 m / 25 m/s later.
    assert t['v2'] - t['v1'] == pytest.approx(19.5 / 25.0, abs=0.02)
    assert meta['vehicle_ids'] == ['v1', 'v2', 'v3', 'v4'] and meta['hazard_ids'] == ['h1']
    assert meta['meeting_time_ns']['v1'] == pytest.approx(START + 15.0e9, abs=2e7)
    clear = Simulation(load_scenario(SCENARIOS / 'highway_clear.yaml')).meeting_times_ns()
    assert clear == {'v1': None, 'v2': None, 'v3': None, 'v4': None}


def _interp_pose(truth, t_ns):
    ts = np.array([p[0] for p in truth])
    k = int(np.clip(np.searchsorted(ts, t_ns), 1, len(ts) - 1))
    (t0, x0, y0, yaw0), (t1, x1, y1, yaw1) = truth[k - 1], truth[k]
    f = (t_ns - t0) / (t1 - t0)
    return x0 + f * (x1 - x0), y0 + f * (y1 - y0), yaw0 + f * (yaw1 - yaw0)


def test_truck_occludes_stopped_car_for_v3_but_not_v1(scenario):
    """From 11.5 s to 13 s the stopped car is 60-95 m ahead of v1 and 100-110 m ahead of v3's lidar."""
    sim = Simulation(lean('highway_occlusion', keep_lidar=('v1', 'v3')))
    hazard = scenario.hazards[0]
    lo = np.array([hazard.x_m - 0.3, -1.2, 0.25])
    hi = np.array([hazard.x_m + 4.8, 1.2, 1.8])
    truth = defaultdict(list)
    hits = {'v1': 0, 'v3': 0}
    scans = {'v1': 0, 'v3': 0}
    scans_with_hits = {'v1': 0, 'v3': 0}
    ext = {v: from_xyz_rpy(sensor_extrinsics(scenario, v)['lidar'][:3], sensor_extrinsics(scenario, v)['lidar'][3:])
           for v in hits}
    lidar_events = []
    for e in sim.events(13.2):
        if e.kind is EventKind.TRUTH_ODOM:
            p = e.data['pose']
            yaw = 2 * math.atan2(p.quat_wxyz[3], p.quat_wxyz[0])
            truth[e.topic.split('/')[-1]].append((e.log_time_ns, p.position[0], p.position[1], yaw))
        elif e.kind is EventKind.LIDAR and e.topic in ('/v1/lidar/points', '/v3/lidar/points') \
                and e.log_time_ns > START + 11.5 * S:
            lidar_events.append(e)
    for e in lidar_events:
        v = e.topic.split('/')[1]
        pts = e.data['points']
        start = e.log_time_ns - 100_000_000
        # Pose per point at its firing time; vehicles drive straight along x.
        t_pt = start + pts['t'].astype(np.float64) * 1e9
        x0, y0, _ = _interp_pose(truth[v], start)
        x1, _, _ = _interp_pose(truth[v], start + 100_000_000)
        base_x = x0 + (t_pt - start) / 1e8 * (x1 - x0)
        xyz = np.stack([pts['x'], pts['y'], pts['z']], axis=1).astype(np.float64)
        p = xyz @ ext[v][:3, :3].T + ext[v][:3, 3]
        p[:, 0] += base_x
        p[:, 1] += y0
        inside = np.all((p >= lo) & (p <= hi), axis=1)
        hits[v] += int(inside.sum())
        scans[v] += 1
        scans_with_hits[v] += int(inside.any())
    assert scans['v1'] >= 14 and scans['v3'] >= 14
    assert scans_with_hits['v1'] >= scans['v1'] - 1 and hits['v1'] > 40   # v1 sees the stopped car
    assert hits['v3'] == 0            # v3 sees nothing of it: the truck is in the way


def test_sensor_extrinsics_compose_optical_rotation(scenario):
    ext = sensor_extrinsics(scenario, 'v2')
    assert_allclose(ext['lidar'], [9.6, 0.0, 2.3, 0.0, 0.0, 0.0], atol=1e-12)
    cam = from_xyz_rpy(ext['camera_optical'][:3], ext['camera_optical'][3:])
    # Optical z looks forward and 5° down; optical x points right (−y of base_link); optical y down-ish.
    assert_allclose(cam[:3, 2], [math.cos(math.radians(5)), 0.0, -math.sin(math.radians(5))], atol=1e-9)
    assert_allclose(cam[:3, 0], [0.0, -1.0, 0.0], atol=1e-9)
    assert_allclose(cam[:3, 3], [9.0, 0.0, 2.6])
    with pytest.raises(ConfigError, match=r"vehicle 'v9' is not in the platoon"):
        sensor_extrinsics(scenario, 'v9')


def test_cut_in_car_joins_the_platoon_lane_and_v2_follows_it():
    scn = lean('cut_in')
    gaps = {}
    for e in Simulation(scn).events(12.0):
        if e.kind is EventKind.TRUTH_OBJECTS and e.log_time_ns - START in (4 * S, 11_900_000_000):
            b = {x['id']: x for x in e.data['boxes']}
            gaps[e.log_time_ns - START] = (b['c1']['center'][1], b['v2']['velocity'][0],
                                   (b['c1']['center'][0] - 2.25) - (b['v2']['center'][0] + 6.0))
    assert gaps[4 * S][0] == pytest.approx(3.5, abs=1e-6)
    c1_y, v2_speed, gap = gaps[11_900_000_000]
    assert c1_y == pytest.approx(0.0, abs=1e-6)
    assert v2_speed < 25.0 - 0.5          # v2 braked for the car that cut in
    assert gap > 5.0


def test_negative_vehicle_stamps_rejected():
    raw = yaml.safe_load((SCENARIOS / 'highway_occlusion.yaml').read_text())
    raw['start_time_s'] = 0.1
    with pytest.raises(ConfigError, match=r"vehicle 'v2': clock offset -200.0 ms at start_time_s = 0.1 s gives "
                                          r"negative vehicle stamps .* expected start_time_s >= 0.202 s"):
        Simulation(scenario_from_dict(raw, 'x.yaml'))


def test_events_rejects_bad_duration(scenario):
    with pytest.raises(ConfigError, match=r'duration_s must be a finite number of seconds > 0, got -1.0'):
        next(Simulation(scenario).events(-1.0))


def test_odometry_carries_configured_bias_and_noise(scenario, first_second):
    truth = defaultdict(list)
    odom = defaultdict(list)
    for e in first_second:
        p = e.data.get('pose')
        if p is None:
            continue
        yaw = 2 * math.atan2(p.quat_wxyz[3], p.quat_wxyz[0])
        row = (e.log_time_ns, p.position[0], p.position[1], yaw)
        (truth if e.kind is EventKind.TRUTH_ODOM else odom)[e.topic.split('/')[-1 if e.kind is EventKind.TRUTH_ODOM
                                                                                else 1]].append(row)
    for v in scenario.platoon.vehicles:
        loc = v.localization
        err = np.array([np.subtract(o[1:], _interp_pose(truth[v.id], o[0])) for o in odom[v.id][1:-1]])
        assert len(err) >= 45
        assert_allclose(err.mean(axis=0), [loc.bias_x_m, loc.bias_y_m, math.radians(loc.bias_yaw_deg)],
                        atol=4 * loc.noise_xy_m / math.sqrt(len(err)))
        assert_allclose(err[:, :2].std(axis=0), loc.noise_xy_m, rtol=0.35)
    cov = next(e for e in first_second if e.kind is EventKind.ODOM).data['pose'].covariance
    assert_allclose(np.diag(cov)[[0, 1, 5]], [0.05 ** 2, 0.05 ** 2, math.radians(0.1) ** 2])


def test_curved_road_keeps_vehicles_on_their_lane_arc():
    raw = yaml.safe_load((SCENARIOS / 'highway_clear.yaml').read_text())
    raw['road']['curvature_per_m'] = 0.002                 # 500 m radius, bending left
    for v in raw['platoon']['vehicles']:
        for sensor in ('lidar', 'radar', 'camera'):
            v['sensors'][sensor]['enabled'] = False
    scn = scenario_from_dict(raw, 'curved')
    poses = [e.data['pose'] for e in Simulation(scn).events(4.0) if e.topic == '/truth/odom/v1']
    pos = np.array([p.position for p in poses])
    yaw = np.array([2 * math.atan2(p.quat_wxyz[3], p.quat_wxyz[0]) for p in poses])
    # Lane 0 is the road centre line: a circle of radius 500 m around (0, 500).
    assert_allclose(np.hypot(pos[:, 0], pos[:, 1] - 500.0), 500.0, atol=1e-6)
    arc = 500.0 * np.arctan2(pos[:, 0], 500.0 - pos[:, 1])
    assert_allclose(yaw, arc * 0.002, atol=1e-9)
    assert_allclose(np.diff(arc), 25.0 / 50.0, atol=1e-6)   # 25 m/s at 50 Hz


def test_event_stream_memory_does_not_grow_with_duration():
    import tracemalloc
    scn = lean('highway_occlusion', keep_lidar=('v1',))
    peaks = []
    for duration in (0.5, 2.0):
        tracemalloc.start()
        n = sum(1 for _ in Simulation(scn).events(duration))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert n > 100 * duration
    assert peaks[1] < 1.3 * peaks[0]
