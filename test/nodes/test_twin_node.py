"""The twin node in a real rclpy graph: common grid + platoon odometry in, predictions / warnings / advice out."""
from __future__ import annotations

import array
import math
import time
from pathlib import Path

import numpy as np
import params_file
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from nav_msgs.msg import Path as PathMsg
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import TimeReference
from visualization_msgs.msg import Marker, MarkerArray

from cooperative_fusion.app.platoon import NodeKind, load_platoon_config
from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.core.vehicle.follower import advisory_profile
from cooperative_fusion.core.twin.config import config_from_params
from cooperative_fusion.core.twin.mirror import grid_checksum
from cooperative_fusion.core.twin.self_check import horizon_key
from cooperative_fusion.nodes.twin_node import PARAMS, TwinNode
from cooperative_fusion.ros.diagnostics import Level, status_level
from cooperative_fusion.ros.grid import grid_from_msg, grid_to_msg
from cooperative_fusion.ros.markers import path_to_advisory
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.qos import diagnostics_qos, evidence_qos, latched_qos, state_qos
from cooperative_fusion.ros.time import make_time_reference, stamp_to_ns

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'twin.yaml'
VEHICLES = ('v1', 'v2', 'v3', 'v4')
#: Vehicle clock - common time, ns: large enough that ignoring it would move a vehicle by metres.
CLOCK_OFFSETS = {'v1': 800_000_000, 'v2': -400_000_000, 'v3': 2_000_000_000, 'v4': -1_500_000_000}
SPEED = 25.0
SPACING = 22.5
X_LEADER = 100.0
CAR_AHEAD = 75.0          # car centre ahead of the leader's centre at the first grid, metres
CAR_L, CAR_W = 4.5, 1.8
SPEC = GridSpec(20.0, -8.0, 0.2, 1000, 80)
PERIOD_NS = 100_000_000
HORIZONS = (0.5, 1.0, 2.0, 3.0)


class Io(Node):
    """The twin's neighbours: publishes grid / odometry / time references, records the twin's outputs."""

    def __init__(self, context) -> None:
        super().__init__('twin_test_io', context=context)
        self.grid_pub = self.create_publisher(OccupancyGrid, '/cooperative/grid', latched_qos())
        self.odom_pubs = {v: self.create_publisher(Odometry, f'/{v}/odom', state_qos()) for v in VEHICLES}
        self.tref_pubs = {v: self.create_publisher(TimeReference, f'/{v}/time_reference', state_qos())
                          for v in VEHICLES}
        self.warnings: list[DiagnosticArray] = []
        self.predicted: list[OccupancyGrid] = []
        self.advisories: list[PathMsg] = []
        self.markers: list[MarkerArray] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.create_subscription(DiagnosticArray, '/twin/warnings', self.warnings.append, evidence_qos(100))
        self.create_subscription(OccupancyGrid, '/twin/predicted_grid', self.predicted.append, evidence_qos(100))
        self.create_subscription(PathMsg, '/v1/twin/advisory', self.advisories.append, evidence_qos(100))
        self.create_subscription(MarkerArray, '/twin/markers', self.markers.append, evidence_qos(100))
        self.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, diagnostics_qos())


def leader_x(t_common_ns: int, t0_ns: int) -> float:
    return X_LEADER + SPEED * (t_common_ns - t0_ns) * 1e-9


def odom_msg(v: str, t_common_ns: int, t0_ns: int, x_offset: float = 0.0) -> Odometry:
    i = VEHICLES.index(v)
    x = leader_x(t_common_ns, t0_ns) - i * SPACING + x_offset
    pose = PoseSample(t_common_ns + CLOCK_OFFSETS[v], np.array([x, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]),
                      np.diag([0.01, 0.01, 0.01, 1e-4, 1e-4, 1e-4]), np.array([SPEED, 0.0, 0.0]))
    return pose_to_odometry(pose, 'map', f'{v}/base_link')


def grid_cells(car_x: float | None) -> np.ndarray:
    cells = np.zeros(SPEC.shape, np.int8)
    if car_x is not None:
        ix0, iy0 = SPEC.world_to_cell(np.array([car_x - CAR_L / 2 + 0.01, -CAR_W / 2 + 0.01]))
        cells[int(iy0):int(iy0) + 9, int(ix0):int(ix0) + 22] = 100     # 22 x 9 cells = 4.4 x 1.8 m
    return cells


def vehicle(twin: TwinNode, vehicle_id: str):
    """The twin's odometry and clock of one vehicle (core.platoon.VehicleOdometry)."""
    return twin.edge.inputs.platoon.vehicles[vehicle_id]


def link_degraded(twin: TwinNode, vehicle_id: str) -> list[str]:
    return [str(d) for d in twin.edge.inputs.link_degraded(vehicle_id, twin.now_ns())]


def make_twin(ros_context, executor, **overrides) -> TwinNode:
    params = [Parameter(k, value=v) for k, v in overrides.items()]
    node = TwinNode(context=ros_context, parameter_overrides=params)
    executor.add_node(node)
    return node


def sync_clocks(io: Io, twin: TwinNode, executor, spin, t0_ns: int) -> None:
    for k in range(3):
        common = t0_ns - (3 - k) * PERIOD_NS
        for v in VEHICLES:
            io.tref_pubs[v].publish(make_time_reference(common + CLOCK_OFFSETS[v], common))
    assert spin(executor, lambda: all(vehicle(twin, v).clock.n_samples == 3 for v in VEHICLES))


def run_cycles(io: Io, twin: TwinNode, executor, spin, t0_ns: int, n: int, car_x: float | None) -> list[int]:
    """n grids at 10 Hz of common time, each after the odometry of its instant; returns the grid stamps."""
    stamps = []
    for k in range(n):
        t = t0_ns + k * PERIOD_NS
        for v in VEHICLES:
            io.odom_pubs[v].publish(odom_msg(v, t, t0_ns))
        assert spin(executor, lambda: all(vehicle(twin, v).odom and vehicle(twin, v).odom[-1].stamp_vehicle_ns
                                          == t + CLOCK_OFFSETS[v] for v in VEHICLES))
        cycles = twin.edge.cycles
        io.grid_pub.publish(grid_to_msg(SPEC, grid_cells(car_x), t))
        assert spin(executor, lambda: twin.edge.cycles == cycles + 1)
        stamps.append(t)
    return stamps


@pytest.fixture
def io(ros_context, executor):
    node = Io(ros_context)
    executor.add_node(node)
    return node


# ------------------------------------------------------------------ mirror --

def test_mirror_gets_the_latest_latched_grid_published_before_it_started(ros_context, executor, io, spin):
    rng = np.random.default_rng(0)
    t0 = time.time_ns()
    first = rng.integers(-1, 101, SPEC.shape).astype(np.int8)
    latest = rng.integers(-1, 101, SPEC.shape).astype(np.int8)
    io.grid_pub.publish(grid_to_msg(SPEC, first, t0))
    io.grid_pub.publish(grid_to_msg(SPEC, latest, t0 + PERIOD_NS))
    twin = make_twin(ros_context, executor)
    assert twin.edge.mirror.checksum() is None
    assert spin(executor, lambda: twin.edge.mirror.cells is not None)
    spec, cells, stamp = twin.edge.mirror.spec, twin.edge.mirror.cells, twin.edge.mirror.stamp_ns
    assert twin.edge.mirror.checksum() == grid_checksum(SPEC, latest)
    assert twin.edge.mirror.checksum() != grid_checksum(SPEC, first)
    assert spec == SPEC and stamp == t0 + PERIOD_NS
    np.testing.assert_array_equal(cells, latest)


# ------------------------------------------------------------------ hazard --

def test_stopped_car_ahead_warns_every_vehicle_and_advises_braking(ros_context, executor, io, spin):
    twin = make_twin(ros_context, executor)
    t0 = time.time_ns()
    car_x = X_LEADER + CAR_AHEAD
    sync_clocks(io, twin, executor, spin, t0)
    stamps = run_cycles(io, twin, executor, spin, t0, 9, car_x)     # conflicts from the 8th detection
    last = stamps[-1]
    assert spin(executor, lambda: any(stamp_to_ns(w.header.stamp) == last for w in io.warnings))
    warn = next(w for w in io.warnings if stamp_to_ns(w.header.stamp) == last)
    assert [s.name for s in warn.status] == list(VEHICLES)
    car_rear = car_x - CAR_L / 2
    cfg = twin.cfg
    for s in warn.status:
        assert status_level(s) in (Level.WARN, Level.ERROR)
        values = {kv.key: kv.value for kv in s.values}
        i = VEHICLES.index(s.name)
        # Odometry is base_link (rear axle): the front is length - rear overhang ahead (the truck's 9.5 m).
        front = leader_x(last, t0) - i * SPACING + cfg.lengths_m[i] - cfg.rear_overhangs_m[i]
        distance, ttc = float(values['distance_m']), float(values['ttc_s'])
        assert distance == pytest.approx(car_rear - front, abs=0.5), s.name
        assert ttc == pytest.approx(distance / SPEED, rel=0.10), s.name
        assert float(values['x']) == pytest.approx(car_rear, abs=1.0)
        assert abs(float(values['y'])) < 0.5
        assert int(values['track_id']) >= 0
    assert status_level(warn.status[0]) == Level.ERROR        # ~60 m at 25 m/s needs > 3 m/s^2

    assert spin(executor, lambda: any(stamp_to_ns(p.header.stamp) == last for p in io.advisories))
    path = next(p for p in io.advisories if stamp_to_ns(p.header.stamp) == last)
    xs = np.array([p.pose.position.x for p in path.poses])
    assert xs[0] == pytest.approx(leader_x(last, t0), abs=0.5)
    # a whole stop in at most 12 poses; the speeds a follower reads from them: from 25 m/s down to standing
    assert len(path.poses) <= cfg.twin.conflicts.advisory_max_poses
    speed = advisory_profile(*path_to_advisory(path)).speed
    assert speed[0] == pytest.approx(SPEED, rel=0.05) and speed[-1] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(speed) <= 1e-6)                                   # slowing down
    assert xs[-1] + cfg.lengths_m[0] - cfg.rear_overhangs_m[0] < car_rear    # base_link poses; front stops behind
    offsets = [stamp_to_ns(p.header.stamp) - last for p in path.poses]
    assert offsets[0] == 0 and np.all(np.diff(offsets) > 0)

    assert spin(executor, lambda: any(stamp_to_ns(m.markers[0].header.stamp) == last for m in io.markers
                                      if m.markers))
    arr = next(m for m in io.markers if m.markers and stamp_to_ns(m.markers[0].header.stamp) == last)
    assert arr.markers[0].action == Marker.DELETEALL
    assert sum(m.ns == 'conflicts' for m in arr.markers) == 4
    assert sum(m.ns == 'tracks' for m in arr.markers) == 1


# ------------------------------------------------------------------- clear --

def test_clear_road_publishes_empty_warnings_and_predicted_grids_per_horizon(ros_context, executor, io, spin):
    twin = make_twin(ros_context, executor)
    t0 = time.time_ns()
    sync_clocks(io, twin, executor, spin, t0)
    stamps = run_cycles(io, twin, executor, spin, t0, 3, None)
    assert spin(executor, lambda: {stamp_to_ns(w.header.stamp) for w in io.warnings} >= set(stamps))
    assert all(len(w.status) == 0 for w in io.warnings)
    expected = {s + int(round(h * 1e9)) for s in stamps for h in HORIZONS}
    assert spin(executor, lambda: len(io.predicted) >= len(expected))
    got = sorted(stamp_to_ns(g.header.stamp) for g in io.predicted)
    assert got == sorted(expected)        # 4 per cycle, stamped grid stamp + 0.5 / 1 / 2 / 3 s
    # The platoon is drawn in the predicted grid at its predicted positions.
    g = next(g for g in io.predicted if stamp_to_ns(g.header.stamp) == stamps[-1] + 1_000_000_000)
    spec, cells = grid_from_msg(g)
    assert spec == SPEC and g.header.frame_id == 'map'
    ix, iy = SPEC.world_to_cell(np.array([leader_x(stamps[-1], t0) + SPEED * 1.0, 0.0]))
    assert cells[iy, ix] > 50
    assert cells.min() >= 0 and cells.max() <= 100
    assert twin.edge.last_result is not None and twin.edge.last_result.conflicts == []


# -------------------------------------------------------------- bad input --

def test_malformed_grid_and_nan_odometry_are_counted_not_fatal(ros_context, executor, io, spin):
    twin = make_twin(ros_context, executor, **{'diagnostics.period_s': 0.2})
    t0 = time.time_ns()
    bad = grid_to_msg(SPEC, np.zeros(SPEC.shape, np.int8), t0)
    bad.data = array.array('b', bytes(10))              # 10 cells for a 1000 x 80 grid
    io.grid_pub.publish(bad)
    assert spin(executor, lambda: twin.drops.counts.get('grid.malformed', 0) == 1)
    nan_odom = odom_msg('v2', t0, t0)
    nan_odom.pose.pose.position.x = math.nan
    io.odom_pubs['v2'].publish(nan_odom)
    assert spin(executor, lambda: twin.drops.counts.get('odom.malformed', 0) == 1)
    # Still alive: a good grid runs a cycle.
    sync_clocks(io, twin, executor, spin, t0)
    run_cycles(io, twin, executor, spin, t0, 1, None)
    assert twin.edge.cycles == 1 and twin.edge.mirror.received == 1

    def reported() -> dict[str, str] | None:
        for arr in reversed(io.diagnostics):
            for s in arr.status:
                if s.name == 'twin_node' and any(kv.key == 'cycles' and kv.value == '1' for kv in s.values):
                    return {kv.key: kv.value for kv in s.values}
        return None

    assert spin(executor, lambda: reported() is not None)
    values = reported()
    assert values['drops.grid.malformed'] == '1' and values['drops.odom.malformed'] == '1'
    assert values['drops.malformed'] == '2'
    assert values['drops.total'] == '2'
    assert float(values['twin_speedup']) > 0.0
    assert float(values['step_ms']) > 0.0
    assert values['tracks'] == '0'
    assert 'self_check.iou_1.0s' in values and 'self_check.brier_3.0s' in values
    assert twin.context.ok()


# ------------------------------------------------------- self-check, gaps --

def test_self_check_scores_predictions_against_the_mirror(ros_context, executor, io, spin):
    twin = make_twin(ros_context, executor, output_horizons_s=[0.1, 0.2])
    t0 = time.time_ns()
    sync_clocks(io, twin, executor, spin, t0)
    run_cycles(io, twin, executor, spin, t0, 4, None)
    values = twin.edge.self_check.values()
    # Cycles 1..3 score the 0.1 s prediction of the cycle before; the grids hold nothing
    # (the platoon is not in them) while the predictions draw the platoon: IoU 0, Brier > 0.
    assert values['self_check.count_0.1s'] == 3 and values['self_check.count_0.2s'] == 2
    assert values['self_check.iou_0.1s'] == 0.0
    assert 0.0 < values['self_check.brier_0.1s'] < 0.1
    assert horizon_key(1.0) == '1.0' and horizon_key(0.25) == '0.25'


# ------------------------------------------------------------- parameters --

def load_yaml_params() -> dict[str, object]:
    return params_file.load_yaml_params(CONFIG)


def test_yaml_keys_and_defaults_equal_the_declared_table():
    flat = load_yaml_params()
    # the platoon's parameters (vehicles and their sizes) come from config/platoon.yaml, not the file
    from_platoon = load_platoon_config(None).node_parameters()[NodeKind.TWIN]
    assert set(flat) == {p.name for p in PARAMS} - set(from_platoon)
    flat.update(from_platoon)
    for p in PARAMS:
        numeric = isinstance(p.default, float) or (isinstance(p.default, list) and isinstance(p.default[0], float))
        if numeric:
            assert flat[p.name] == pytest.approx(p.default), p.name
        else:
            assert flat[p.name] == p.default, p.name
    cfg = config_from_params(flat)
    assert cfg.vehicles == VEHICLES and cfg.twin.prediction.output_horizons_s == HORIZONS
    for line in CONFIG.read_text().splitlines()[9:]:
        if ':' in line.split('#')[0] and line.split('#')[0].split(':', 1)[1].strip():
            assert ' # ' in line, f'undocumented parameter line: {line!r}'


def test_node_starts_from_the_yaml_file(ros_context, executor):
    node = TwinNode(context=ros_context, cli_args=['--ros-args', '--params-file', str(CONFIG)])
    executor.add_node(node)
    assert node.cfg.vehicles == VEHICLES
    assert node.get_parameter('conflicts.ttc_warn_s').value == 6.0


def test_bad_parameters_raise_config_error(ros_context):
    values = {p.name: p.default for p in PARAMS}
    with pytest.raises(ConfigError, match=r'vehicle_lengths_m must hold 4 positive sizes'):
        config_from_params({**values, 'vehicle_lengths_m': [4.5, 4.5]})
    with pytest.raises(ConfigError, match=r"parameter 'tracker.model': expected one of cv, ca, got 'kalman'"):
        config_from_params({**values, 'tracker.model': 'kalman'})
    with pytest.raises(ConfigError, match=r'must contain \{v\}'):
        config_from_params({**values, 'topics.odom': '/odom'})
    with pytest.raises(ConfigError, match=r'vehicle_rear_overhangs_m must be shorter than the vehicle length, '
                                          r"not for \['v2'\]"):
        config_from_params({**values, 'vehicle_rear_overhangs_m': [1.0, 12.0, 1.0, 1.0]})
    with pytest.raises(ConfigError, match=r'vehicle_rear_overhangs_m must hold 4 sizes >= 0'):
        config_from_params({**values, 'vehicle_rear_overhangs_m': [1.0, -1.0, 1.0, 1.0]})
    with pytest.raises(ConfigError, match='output horizon 0.25 s must be a multiple'):
        config_from_params({**values, 'output_horizons_s': [0.25]})
    with pytest.raises(ConfigError):
        TwinNode(context=ros_context, parameter_overrides=[Parameter('max_rate_hz', value=0.0)])


def test_stale_grid_missing_odometry_and_gaps_are_reported(ros_context, executor, io, spin):
    twin = make_twin(ros_context, executor, **{'diagnostics.period_s': 0.2})
    t_old = time.time_ns() - 2_000_000_000          # 2 s old: stale (stale_grid_s 0.5)
    for v in VEHICLES[:3]:                           # v4 never sends odometry
        io.odom_pubs[v].publish(odom_msg(v, t_old, t_old))
    assert spin(executor, lambda: all(vehicle(twin, v).odom for v in VEHICLES[:3]))
    io.grid_pub.publish(grid_to_msg(SPEC, grid_cells(None), t_old))
    assert spin(executor, lambda: twin.edge.cycles == 1)

    def latest_status():
        for arr in reversed(io.diagnostics):
            for s in arr.status:
                if s.name == 'twin_node' and any(kv.key == 'cycles' and kv.value == '1' for kv in s.values):
                    return s
        return None

    assert spin(executor, lambda: latest_status() is not None)
    status = latest_status()
    values = {kv.key: kv.value for kv in status.values}
    assert status_level(status) == Level.WARN
    assert 'grid: stale' in status.message and 'v4: no odometry' in status.message
    assert 'clock unknown' in values['degraded']          # no time references were sent
    assert values['grid.stale'] == 'True' and float(values['grid.age_s']) > 1.5
    assert twin.edge.last_result is not None and twin.edge.last_result.rollout.platoon.ids == VEHICLES[:3]

    # Gaps: inter-arrival above 2.5 x the median period (node clock).
    for k in range(6):
        twin.edge.mirror.note_arrival(10**12 + k * PERIOD_NS)
    assert twin.edge.mirror.gaps == 0
    twin.edge.mirror.note_arrival(10**12 + 5 * PERIOD_NS + 4 * PERIOD_NS)
    assert twin.edge.mirror.gaps == 1 and twin.edge.mirror.max_gap_s == pytest.approx(0.4)


def test_grids_without_new_odometry_are_mirrored_but_not_cycled(ros_context, executor, io, spin):
    # After the vehicles stop reporting (end of a bag, a network cut), the fusion node still publishes
    # its decaying grid: its cells freeze while the extrapolated platoon drives on, so a cycle would
    # meet its own ghosts. The twin mirrors such grids but holds its cycles until odometry resumes.
    twin = make_twin(ros_context, executor)
    t0 = time.time_ns()
    sync_clocks(io, twin, executor, spin, t0)
    stamps = run_cycles(io, twin, executor, spin, t0, 2, None)
    for k in (1, 2):
        io.grid_pub.publish(grid_to_msg(SPEC, grid_cells(None), stamps[-1] + k * PERIOD_NS))
        assert spin(executor, lambda: twin.edge.mirror.received == 2 + k)
    assert twin.edge.cycles == 2 and twin.edge.cycles_held == 2
    assert twin.diagnostics_values()['cycles_held'] == 2
    run_cycles(io, twin, executor, spin, stamps[-1] + 3 * PERIOD_NS, 1, None)     # odometry again: cycles
    assert twin.edge.cycles == 3 and twin.edge.cycles_held == 2


def test_no_warnings_while_a_vehicle_clock_is_unknown(ros_context, executor, io, spin):
    # Without time references the odometry stamps are taken as common time: each vehicle is off by
    # its clock offset times its speed (here 10 to 50 m). The twin predicts but does not warn.
    twin = make_twin(ros_context, executor)
    t0 = time.time_ns()
    stamps = run_cycles(io, twin, executor, spin, t0, 9, X_LEADER + CAR_AHEAD)
    assert spin(executor, lambda: any(stamp_to_ns(w.header.stamp) == stamps[-1] for w in io.warnings))
    assert all(len(w.status) == 0 for w in io.warnings)
    withheld = twin.edge.warnings_withheld
    assert withheld > 0 and twin.diagnostics_values()['warnings_withheld'] == withheld
    assert len(twin.edge.last_result.tracks) == 1 and twin.edge.last_result.grids


def test_late_and_lossy_odometry_is_named_per_vehicle_in_degraded(ros_context):
    """v2's odometry arrives 350 ms late with a quarter of it lost, v3's on time and whole: degraded names
    v2's link only, from what the twin measures (arrival - stamp mapped through v2's clock)."""
    from cooperative_fusion.app.lockstep import LockstepRunner

    twin = TwinNode(context=ros_context)
    try:
        start = 100 * 10**9
        runner = LockstepRunner([twin], None, publish_to_dds=False, start_ns=start)
        for k in range(3):
            common = start + k * PERIOD_NS
            for v in ('v2', 'v3'):
                runner.feed(f'/{v}/time_reference', make_time_reference(common + CLOCK_OFFSETS[v], common), common)
        t0 = start + 3 * PERIOD_NS
        events = []                                           # (arrival, topic, message): 1.2 s at 50 Hz
        for k in range(60):
            t = t0 + k * 20_000_000
            events.append((t, '/v3/odom', odom_msg('v3', t, t0)))
            if k % 4 != 1:
                events.append((t + 350_000_000, '/v2/odom', odom_msg('v2', t, t0)))
        for arrival, topic, msg in sorted(events, key=lambda e: e[0]):
            runner.feed(topic, msg, arrival)
        runner.advance_to(t0 + 60 * 20_000_000 + 350_000_000)
        assert link_degraded(twin, 'v2') == ['v2: odometry late 0.35 s', 'v2: 25 % of odometry missing']
        assert link_degraded(twin, 'v3') == []
        values = twin.diagnostics_values()
        assert values['vehicle.v2.odom_late_s'] == pytest.approx(0.35)
        assert values['vehicle.v2.odom_missing_share'] == pytest.approx(0.25, abs=0.02)
        assert values['vehicle.v3.odom_late_s'] == pytest.approx(0.0)
        assert values['vehicle.v3.odom_missing_share'] == pytest.approx(0.0)
        assert math.isnan(values['vehicle.v1.odom_late_s'])    # nothing heard from v1
    finally:
        twin.destroy_node()


def test_markers_are_built_only_while_someone_subscribes(ros_context, executor, spin, monkeypatch):
    import types

    import cooperative_fusion.nodes.twin_node as twin_node_module

    built = []
    monkeypatch.setattr(twin_node_module, 'twin_markers', lambda *a: built.append(a) or MarkerArray())
    twin = make_twin(ros_context, executor)
    result = types.SimpleNamespace(stamp_ns=1_000_000_000, tracks=[], rollout=None, conflicts=[])
    out = types.SimpleNamespace(result=result, spec=None, predicted=[], warnings=[], advisories={})
    twin._publish(out)
    assert built == [] and twin.markers_pub.get_subscription_count() == 0
    viewer = Node('marker_viewer', context=ros_context)
    executor.add_node(viewer)
    viewer.create_subscription(MarkerArray, '/twin/markers', lambda m: None, evidence_qos(10))
    assert spin(executor, lambda: twin.markers_pub.get_subscription_count() == 1)
    twin._publish(out)
    assert len(built) == 1
