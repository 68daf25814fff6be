"""The fusion node in a real rclpy graph: evidence grids + odometry in, common grid + diagnostics out."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import params_file
from coregistration_scene import CO_SPEC, V1_XY, dense, rasterise, rotate_about, scene
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import TimeReference

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.config import WindowMode, config_from_params
from cooperative_fusion.core.grid import GridSpec
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.nodes.fusion_node import PARAMS, FusionNode
from cooperative_fusion.app.lockstep import LockstepRunner, published_message
from cooperative_fusion.app.platoon import NodeKind, load_platoon_config
from cooperative_fusion.ros.diagnostics import Level, status_level
from cooperative_fusion.ros.grid import grid_from_msg, grid_to_msg
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.qos import diagnostics_qos, evidence_qos, latched_qos, state_qos
from cooperative_fusion.ros.time import make_time_reference, stamp_to_ns


RES = 0.2
FREE, OCC = 20, 90


def odom_msg(vid: str, x: float, y: float, yaw: float = 0.0, cov_xy: float = 0.01) -> Odometry:
    cov = np.diag([cov_xy, cov_xy, 0.01, 1e-4, 1e-4, 1e-3])
    q = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    return pose_to_odometry(PoseSample(1, np.array([x, y, 0.0]), q, cov), 'map', f'{vid}/base_link')


def box_cells(spec: GridSpec, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice]:
    """Array slices [iy, ix] of the cells of spec inside [x0, x1) x [y0, y1) (on the lattice)."""
    ix0, iy0 = int(round((x0 - spec.origin_x) / RES)), int(round((y0 - spec.origin_y) / RES))
    ix1, iy1 = int(round((x1 - spec.origin_x) / RES)), int(round((y1 - spec.origin_y) / RES))
    return slice(iy0, iy1), slice(ix0, ix1)


class Platoon(Node):
    """Publishes evidence and odometry for some vehicles; records the common grid and /diagnostics."""

    def __init__(self, ctx, vids: list[str], name: str = 'platoon') -> None:
        super().__init__(name, context=ctx)
        self.evidence = {v: self.create_publisher(OccupancyGrid, f'/{v}/evidence_grid', evidence_qos()) for v in vids}
        self.odom = {v: self.create_publisher(Odometry, f'/{v}/odom', state_qos()) for v in vids}
        self.grids: list[OccupancyGrid] = []
        self.statuses: dict[str, tuple[Level, dict[str, str]]] = {}
        self.create_subscription(OccupancyGrid, '/cooperative/grid', self.grids.append, latched_qos())
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, diagnostics_qos())

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            self.statuses[st.name] = (status_level(st), {kv.key: kv.value for kv in st.values})

    def connected(self, fusion_subscribes: list[str]) -> bool:
        return all(self.evidence[v].get_subscription_count() > 0 and self.odom[v].get_subscription_count() > 0
                   for v in fusion_subscribes)

    def value(self, status: str, key: str) -> str | None:
        return self.statuses.get(status, (None, {}))[1].get(key)

    def level(self, status: str) -> Level | None:
        return self.statuses.get(status, (None, {}))[0]

    def latest(self) -> tuple[GridSpec, np.ndarray] | None:
        return grid_from_msg(self.grids[-1]) if self.grids else None


def make_fusion(ctx, **overrides) -> FusionNode:
    # co-registration is off by default (config/fusion.yaml says why); these tests exercise it
    params = {'publish_rate_hz': 20.0, 'diagnostics.period_s': 0.1, 'discovery_period_s': 0.2,
              'coregistration.enabled': True, 'coregistration.period_s': 0.1, 'fusion.max_age_s': 30.0,
              'fusion.vehicle_timeout_s': 30.0, **overrides}
    return FusionNode(context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


@pytest.fixture
def graph(ros_context, executor, spin):
    def build(vids: list[str], fused: list[str] | None = None, **overrides) -> tuple[FusionNode, Platoon]:
        fused = fused or vids
        fusion = make_fusion(ros_context, vehicles=fused, vehicle_weights=[1.0] * len(fused), **overrides)
        platoon = Platoon(ros_context, vids)
        executor.add_node(fusion)
        executor.add_node(platoon)
        assert spin(executor, lambda: platoon.connected([v for v in vids if v in fused])), 'never matched'
        return fusion, platoon
    return build


def send(platoon: Platoon, vid: str, spec: GridSpec, cells: np.ndarray, stamp_ns: int, frame: str = 'map') -> None:
    platoon.evidence[vid].publish(grid_to_msg(spec, cells.astype(np.int8), stamp_ns, frame))


# ------------------------------------------------------------------ graph tests --

EV = GridSpec(0.0, -8.0, RES, 150, 80)            # x 0..30 m, y -8..8 m
BOX_A = (12.0, 14.0, 2.0, 4.0)
BOX_B = (20.0, 22.0, -4.0, -2.0)


def two_views() -> tuple[np.ndarray, np.ndarray]:
    """v1 sees box A and not the region of B; v2 sees B and not A (A is occluded from it)."""
    v1 = np.full(EV.shape, FREE, dtype=np.int8)
    v1[box_cells(EV, *BOX_A)] = OCC
    v1[box_cells(EV, *BOX_B)] = -1
    v2 = np.full(EV.shape, FREE, dtype=np.int8)
    v2[box_cells(EV, *BOX_B)] = OCC
    v2[box_cells(EV, *BOX_A)] = -1
    return v1, v2


def test_two_vehicles_each_add_the_box_the_other_cannot_see(graph, executor, spin):
    # The odometry only places the window here: no bodies drawn where the test expects free space.
    fusion, platoon = graph(['v1', 'v2'], **{'grid.size_x_m': 40.0, 'grid.size_y_m': 20.0,
                                             'grid.forward_offset_m': 10.0, 'footprints.enabled': False})
    platoon.odom['v1'].publish(odom_msg('v1', 0.0, 0.0))
    platoon.odom['v2'].publish(odom_msg('v2', 10.0, 0.0))
    # Centroid (5, 0) + 10 m ahead: the window is 40 x 20 m around (15, 0).
    expected = GridSpec.centered(15.0, 0.0, 40.0, 20.0, RES)
    assert spin(executor, lambda: platoon.latest() is not None and platoon.latest()[0] == expected), \
        platoon.latest() and platoon.latest()[0]
    assert expected.origin_x == pytest.approx(-5.0) and expected.origin_y == pytest.approx(-10.0)

    v1, v2 = two_views()
    now = fusion.now_ns()
    send(platoon, 'v1', EV, v1, now)
    send(platoon, 'v2', EV, v2, now)

    def inner(box):            # two cells in from the edges: the pose blur softens only the rims
        x0, x1, y0, y1 = box
        return box_cells(expected, x0 + 0.4, x1 - 0.4, y0 + 0.4, y1 - 0.4)

    def both_boxes() -> bool:
        latest = platoon.latest()
        return latest is not None and bool(np.all(latest[1][inner(BOX_A)] >= 65)) \
            and bool(np.all(latest[1][inner(BOX_B)] >= 65))
    assert spin(executor, both_boxes), 'the common grid never showed both boxes'
    spec, cells = platoon.latest()
    assert spec == expected
    assert platoon.grids[-1].header.frame_id == 'map'
    free = box_cells(expected, 2.0, 10.0, -6.0, 6.0)        # seen free by both, away from the boxes
    assert np.all((cells[free] >= 0) & (cells[free] <= 35))
    outside = box_cells(expected, 31.0, 35.0, -6.0, 6.0)   # beyond the evidence: never observed
    assert np.all(cells[outside] == -1)
    status = fusion.core.grid.vehicles_status(fusion.now_ns())
    assert status['v1'].accepted == 1 and status['v2'].accepted == 1

    # /diagnostics: the node status carries the fusion latency, one status per vehicle.
    assert spin(executor, lambda: platoon.value('fusion_node', 'latency_ms.count') == '2')
    assert 0.0 <= float(platoon.value('fusion_node', 'latency_ms.p95')) < 30_000.0
    assert platoon.value('fusion_node', 'grid.width') == '200'
    assert platoon.value('fusion_node: v1', 'state') == 'active'
    assert platoon.level('fusion_node: v1') is Level.OK


def test_late_joiner_gets_the_latest_grid(graph, ros_context, executor, spin):
    fusion, platoon = graph(['v1'], **{'grid.mode': 'fixed', 'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0,
                                       'grid.fixed_origin_x_m': 0.0, 'grid.fixed_origin_y_m': -8.0})
    v1, _ = two_views()
    send(platoon, 'v1', EV, v1, fusion.now_ns())
    assert spin(executor, lambda: platoon.latest() is not None and np.any(platoon.latest()[1] >= 65))
    fusion.publish_timer.cancel()            # nothing is published from now on
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:       # let the last grid reach the first subscriber
        executor.spin_once(timeout_sec=0.02)
    published = fusion.published

    late = Platoon(ros_context, [], name='late_joiner')
    executor.add_node(late)
    assert spin(executor, lambda: len(late.grids) >= 1), 'the late joiner never got the latched grid'
    assert fusion.published == published
    assert len(late.grids) == 1
    assert stamp_to_ns(late.grids[0].header.stamp) == stamp_to_ns(platoon.grids[-1].header.stamp)
    spec, cells = late.latest()
    assert np.all(cells[box_cells(spec, *BOX_A)] >= 65)


def test_too_old_is_counted_and_a_silent_vehicle_is_flagged_until_it_rejoins(graph, executor, spin):
    fusion, platoon = graph(['v1', 'v2'], **{'grid.mode': 'fixed', 'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0,
                                             'grid.fixed_origin_y_m': -8.0, 'fusion.max_age_s': 1.0,
                                             'fusion.vehicle_timeout_s': 0.5})
    v1, v2 = two_views()
    send(platoon, 'v1', EV, v1, fusion.now_ns())
    send(platoon, 'v2', EV, v2, fusion.now_ns() - 5_000_000_000)          # 5 s old
    assert spin(executor, lambda: platoon.value('fusion_node: v2', 'drops.too_old') == '1'), platoon.statuses
    assert platoon.value('fusion_node: v2', 'accepted') == '0'
    assert platoon.level('fusion_node: v2') is Level.STALE                # never fused

    assert spin(executor, lambda: platoon.level('fusion_node: v1') is Level.OK)
    assert spin(executor, lambda: platoon.level('fusion_node: v1') is Level.WARN), 'silent v1 was never flagged'
    assert platoon.value('fusion_node: v1', 'state') == 'dropped'
    assert float(platoon.value('fusion_node: v1', 'last_seen_age_s')) > 0.5
    assert platoon.level('fusion_node') is Level.WARN

    send(platoon, 'v1', EV, v1, fusion.now_ns())
    assert spin(executor, lambda: platoon.level('fusion_node: v1') is Level.OK), 'v1 never rejoined'
    assert platoon.value('fusion_node: v1', 'state') == 'active'
    assert platoon.value('fusion_node: v1', 'rejoins') == '1'
    assert platoon.value('fusion_node: v1', 'accepted') == '2'


def test_unknown_vehicle_is_ignored_and_reported(graph, executor, spin):
    fusion, platoon = graph(['v1', 'v9'], fused=['v1'], **{
        'grid.mode': 'fixed', 'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0, 'grid.fixed_origin_y_m': -8.0})
    _, v9 = two_views()                  # v9 claims box B
    assert spin(executor, lambda: platoon.value('fusion_node', 'ignored_vehicles.ids') == 'v9'), platoon.statuses
    assert platoon.value('fusion_node', 'ignored_vehicles.count') == '1'
    send(platoon, 'v9', EV, v9, fusion.now_ns())
    v1 = np.full(EV.shape, FREE, dtype=np.int8)
    v1[box_cells(EV, *BOX_B)] = -1       # v1 does not see B's region
    send(platoon, 'v1', EV, v1, fusion.now_ns())
    assert spin(executor, lambda: fusion.core.grid.vehicles_status(fusion.now_ns())['v1'].accepted == 1)
    n = len(platoon.grids)
    assert spin(executor, lambda: len(platoon.grids) > n + 1)
    spec, cells = platoon.latest()
    assert np.all(cells[box_cells(spec, *BOX_B)] == -1), 'v9 evidence was fused'
    assert np.all(cells[box_cells(spec, 2.0, 10.0, -6.0, 6.0)] <= 35)
    assert platoon.evidence['v9'].get_subscription_count() == 0
    assert 'fusion_node: v9' not in platoon.statuses


def test_malformed_foreign_frame_and_bad_covariance_are_counted_and_harmless(graph, executor, spin):
    fusion, platoon = graph(['v1'], **{'grid.mode': 'fixed', 'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0,
                                       'grid.fixed_origin_y_m': -8.0})
    v1, _ = two_views()
    bad = grid_to_msg(EV, v1, fusion.now_ns())
    bad.info.width = EV.width + 1                            # data length no longer width * height
    platoon.evidence['v1'].publish(bad)
    assert spin(executor, lambda: platoon.value('fusion_node: v1', 'drops.malformed') == '1'), platoon.statuses
    send(platoon, 'v1', EV, v1, fusion.now_ns(), frame='odom')
    assert spin(executor, lambda: platoon.value('fusion_node: v1', 'drops.frame') == '1')
    nan_cov = odom_msg('v1', 3.0, 4.0)
    nan_cov.pose.covariance[0] = float('nan')
    platoon.odom['v1'].publish(nan_cov)
    assert spin(executor, lambda: platoon.value('fusion_node: v1', 'drops.covariance') == '1')
    np.testing.assert_allclose(fusion.core.vehicles['v1'].position, [3.0, 4.0])   # the pose is still used
    assert fusion.core.vehicles['v1'].cov_xy is None

    send(platoon, 'v1', EV, v1, fusion.now_ns())
    assert spin(executor, lambda: platoon.value('fusion_node: v1', 'accepted') == '1')
    assert spin(executor, lambda: platoon.latest() is not None
                and np.all(platoon.latest()[1][box_cells(platoon.latest()[0], *BOX_A)] >= 65))
    assert platoon.value('fusion_node: v1', 'drops.total') == '3'
    assert platoon.value('fusion_node: v1', 'drops.internal') is None
    # The node's status: the scaffold's keys, per vehicle and summed.
    assert platoon.value('fusion_node', 'drops.v1.covariance') == '1'
    assert platoon.value('fusion_node', 'drops.malformed') == '1'
    assert platoon.value('fusion_node', 'drops.total') == '3'
    assert fusion.context.ok()


# -------------------------------------------------------------- co-registration --

def test_coregistration_recovers_a_biased_vehicle(graph, executor, spin):
    fusion, platoon = graph(['v1', 'v2', 'v3'], **{
        'grid.mode': 'fixed', 'grid.size_x_m': 60.0, 'grid.size_y_m': 20.0, 'grid.fixed_origin_x_m': 490.0,
        'grid.fixed_origin_y_m': -10.0})
    parts = scene()
    shift, yaw = np.array([0.5, 0.0]), math.radians(1.0)
    v1_pts = rotate_about(dense([p for i, p in enumerate(parts) if i != 2]), V1_XY, yaw) + shift
    for vid, xy in (('v1', V1_XY), ('v2', (505.0, 0.0)), ('v3', (530.0, 0.0))):
        platoon.odom[vid].publish(odom_msg(vid, *xy, cov_xy=0.0))
    assert spin(executor, lambda: all(st.position is not None for st in fusion.core.vehicles.values()))
    # Twice, 0.6 s apart: only cells the vehicle's own earlier evidence also holds are registered
    # (coregistration.static_min_age_s 0.5).
    for _ in range(2):
        now = fusion.now_ns()
        send(platoon, 'v1', CO_SPEC, rasterise(v1_pts), now)
        send(platoon, 'v2', CO_SPEC, rasterise(dense(parts)), now)
        send(platoon, 'v3', CO_SPEC, rasterise(dense(parts[1:])), now)
        spin(executor, lambda: fusion.now_ns() - now >= 600_000_000, timeout_s=5.0)

    def updates() -> int:
        return int(platoon.value('fusion_node: v1', 'coreg.updates') or 0)
    assert spin(executor, lambda: updates() >= 8, timeout_s=30.0), platoon.statuses.get('fusion_node: v1')
    # Truth: p = R(-yaw)(p_v - c - shift) + c  =>  correction (dx, dy) = -R(-yaw) shift, dyaw = -yaw, about c.
    c, s = math.cos(-yaw), math.sin(-yaw)
    truth = -np.array([[c, -s], [s, c]]) @ shift
    v = platoon.statuses['fusion_node: v1'][1]
    assert v['coreg.accepted'] == 'True', v['coreg.reason']
    assert (float(v['coreg.pivot_x']), float(v['coreg.pivot_y'])) == (518.0, 0.0)
    assert math.hypot(float(v['coreg.dx']) - truth[0], float(v['coreg.dy']) - truth[1]) < 0.15, v
    assert abs(float(v['coreg.dyaw_deg']) + 1.0) < 0.3, v
    assert float(v['coreg.fitness']) > 0.9 and float(v['coreg.rmse']) < 0.15
    for other in ('v2', 'v3'):            # the unbiased vehicles stay (nearly) where they are
        w = platoon.statuses[f'fusion_node: {other}'][1]
        assert math.hypot(float(w['coreg.dx']), float(w['coreg.dy'])) < 0.15, (other, w)
        assert abs(float(w['coreg.dyaw_deg'])) < 0.3, (other, w)


# ------------------------------------------------------------- parameters --

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'fusion.yaml'


def load_yaml_params() -> dict[str, object]:
    return params_file.load_yaml_params(CONFIG)


def yaml_lines() -> dict[str, str]:
    return params_file.yaml_lines(CONFIG)


def test_yaml_documents_every_parameter_with_its_default():
    flat = load_yaml_params()
    # the platoon's parameters (vehicles, weights, footprints) come from config/platoon.yaml, not the file
    from_platoon = load_platoon_config(None).node_parameters()[NodeKind.FUSION]
    assert set(flat) == {p.name for p in PARAMS} - set(from_platoon)
    lines = yaml_lines()
    assert set(lines) == set(flat)
    flat.update(from_platoon)
    for p in PARAMS:
        if isinstance(p.default, float) or (isinstance(p.default, list) and isinstance(p.default[0], float)):
            assert flat[p.name] == pytest.approx(p.default), p.name
        else:
            assert flat[p.name] == p.default, p.name
        assert p.name in from_platoon or ' # ' in lines[p.name], f'{p.name} has no comment: {lines[p.name]!r}'
    cfg = config_from_params(flat)             # the file is a valid configuration
    assert cfg.vehicles == ('v1', 'v2', 'v3', 'v4')
    assert cfg.window_mode is WindowMode.FOLLOW_PLATOON
    assert cfg.fusion.spec.shape == (150, 1300)
    assert cfg.fusion.max_age_ns == 500_000_000 and cfg.coreg.min_fitness == 0.5
    assert cfg.publish_period_s == pytest.approx(0.1)


def test_node_rejects_out_of_range_parameter(ros_context):
    with pytest.raises(ConfigError, match="parameter 'grid.resolution_m'"):
        make_fusion(ros_context, **{'grid.resolution_m': -0.2})
    with pytest.raises(ConfigError, match='vehicle_weights has 1 values for 4 vehicles'):
        make_fusion(ros_context, vehicle_weights=[1.0])


# ------------------------------------------------------------------ lock-step --

@pytest.mark.parametrize('on_evidence', [False, True])
def test_lockstep_runner_drives_the_node_on_sim_time(ros_context, on_evidence):
    """`run --bag` composes the node under the lock-step runner: timers and stamps follow sim time. Grids on the
    10 Hz heartbeat; with publish_on_evidence one also goes out right after the evidence is fused (latency 20 ms,
    not 100), without it at the deadline, publish_max_delay_s (50 ms) after it was fused (latency 70 ms)."""
    fusion = make_fusion(ros_context, vehicles=['v1'], vehicle_weights=[1.0], **{
        'grid.mode': 'fixed', 'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0, 'grid.fixed_origin_y_m': -8.0,
        'publish_rate_hz': 10.0, 'fusion.max_age_s': 0.5, 'publish_on_evidence': on_evidence})
    try:
        out: list[tuple[str, object, int]] = []
        runner = LockstepRunner([fusion], lambda topic, msg, t: out.append((topic, published_message(msg), t)),
                                publish_to_dds=False,
                                start_ns=50 * 10**9)
        v1, _ = two_views()
        t_ev = 50 * 10**9 + 120_000_000
        assert fusion.publish_check_timer.is_canceled()                     # nothing held: no 100 Hz ticks
        runner.feed('/v1/evidence_grid', grid_to_msg(EV, v1, t_ev - 20_000_000), t_ev)
        runner.feed('/v1/evidence_grid', grid_to_msg(EV, v1, t_ev - 900_000_000), t_ev)   # too old in sim time
        # held for the deadline (the timer ticks), or published at once (nothing held)
        assert fusion.publish_check_timer.is_canceled() is on_evidence
        runner.advance_to(50 * 10**9 + 300_000_000)
        assert fusion.publish_check_timer.is_canceled()
        grids = [(msg, t) for topic, msg, t in out if topic == '/cooperative/grid']
        expected = [50_100_000_000, 50_200_000_000, 50_300_000_000]
        expected.insert(1, t_ev if on_evidence else t_ev + 50_000_000)
        assert [t for _, t in grids] == expected
        assert [stamp_to_ns(m.header.stamp) for m, _ in grids] == [t for _, t in grids]
        assert np.all(grid_from_msg(grids[0][0])[1] == -1)                  # before the evidence
        spec, cells = grid_from_msg(grids[1][0])
        assert np.all(cells[box_cells(spec, *BOX_A)] >= 65)
        assert fusion.drops.counts == {'v1.too_old': 1}
        assert len(fusion.latency) == 1
        # publish (50.12 s on evidence, else 50.17 s at the deadline) - stamp 50.1 s
        assert fusion.latency.percentile(50) == pytest.approx(20.0 if on_evidence else 70.0)
    finally:
        fusion.destroy_node()


def test_time_reference_maps_a_vehicle_clock_to_common_time(ros_context, executor, spin):
    """On a vehicle the node clock is the vehicle clock: with time_reference_topic it runs on common time."""
    fusion = make_fusion(ros_context, vehicles=['v1'], vehicle_weights=[1.0],
                         time_reference_topic='/v1/time_reference')
    pub_node = Node('time_source', context=ros_context)
    pub = pub_node.create_publisher(TimeReference, '/v1/time_reference', state_qos())
    executor.add_node(fusion)
    executor.add_node(pub_node)
    assert spin(executor, lambda: pub.get_subscription_count() > 0)
    vehicle_now = fusion.get_clock().now().nanoseconds
    assert abs(fusion.now_ns() - vehicle_now) < 5 * 10**9           # before any pair: the node clock
    pub.publish(make_time_reference(vehicle_now, vehicle_now + 3600 * 10**9))
    assert spin(executor, lambda: fusion.core.clock_map.n_samples == 1)
    offset = fusion.now_ns() - fusion.get_clock().now().nanoseconds
    assert abs(offset - 3600 * 10**9) < 10**9, offset



@pytest.mark.parametrize('accumulate_s', [5.0, 0.0])
def test_coregistration_accumulates_static_cells_over_frames(graph, executor, spin, accumulate_s):
    # Each of v1's two frames holds half of the scene, fewer cells than min_points; their union over
    # coregistration.accumulate_s is enough (static structure stays put in map, so the frames add up).
    parts = scene()
    shift, yaw = np.array([0.5, 0.0]), math.radians(1.0)
    views = [rasterise(rotate_about(dense(h), V1_XY, yaw) + shift) for h in (parts[:3], parts[3:])]
    min_points = max(int((v == OCC).sum()) for v in views) + 1
    # Three vehicles: the platoon's median correction defines map, so two honest ones outvote v1 (with
    # two, neither can tell which of them is off: each would get half of the offset).
    fusion, platoon = graph(['v1', 'v2', 'v3'], **{
        'grid.mode': 'fixed', 'grid.size_x_m': 60.0, 'grid.size_y_m': 20.0, 'grid.fixed_origin_x_m': 490.0,
        'grid.fixed_origin_y_m': -10.0, 'coregistration.static_min_age_s': 0.0,
        'coregistration.accumulate_s': accumulate_s, 'coregistration.min_points': min_points})
    platoon.odom['v1'].publish(odom_msg('v1', *V1_XY, cov_xy=0.0))
    platoon.odom['v2'].publish(odom_msg('v2', 505.0, 0.0, cov_xy=0.0))
    platoon.odom['v3'].publish(odom_msg('v3', 530.0, 0.0, cov_xy=0.0))
    assert spin(executor, lambda: all(st.position is not None for st in fusion.core.vehicles.values()))
    for view in views:
        now = fusion.now_ns()
        send(platoon, 'v1', CO_SPEC, view, now)
        send(platoon, 'v2', CO_SPEC, rasterise(dense(parts)), now)
        send(platoon, 'v3', CO_SPEC, rasterise(dense(parts)), now)
        spin(executor, lambda: fusion.now_ns() - now >= 300_000_000, timeout_s=5.0)

    def updates() -> int:
        return int(platoon.value('fusion_node: v1', 'coreg.updates') or 0)
    recovered = spin(executor, lambda: updates() >= 8, timeout_s=10.0 if accumulate_s else 2.0)
    v = platoon.statuses['fusion_node: v1'][1]
    if not accumulate_s:
        assert not recovered and updates() == 0
        assert v['coreg.reason'].startswith('too few points: vehicle'), v['coreg.reason']
        return
    assert recovered, v
    c, s = math.cos(-yaw), math.sin(-yaw)
    truth = -np.array([[c, -s], [s, c]]) @ shift
    assert int(v['coreg.static_points']) >= min_points
    assert math.hypot(float(v['coreg.dx']) - truth[0], float(v['coreg.dy']) - truth[1]) < 0.15, v
    assert abs(float(v['coreg.dyaw_deg']) + 1.0) < 0.3, v


def test_delayed_odometry_places_the_member_where_it_is_now(ros_context):
    """Odometry stamps are in the vehicle clock. With the vehicle's time references heard, a pose that
    arrives 150 ms late is moved by its speed over the time since it was true, not since it arrived
    (a delayed V2V link must not draw the car 150 ms behind itself)."""
    from cooperative_fusion.core.types import PoseSample
    from cooperative_fusion.app.lockstep import LockstepRunner
    from cooperative_fusion.ros.time import make_time_reference

    offset = 300_000_000                               # vehicle clock = common - 0.3 s
    node = make_fusion(ros_context, vehicles=['v1'], vehicle_weights=[1.0])
    try:
        runner = LockstepRunner([node], None, publish_to_dds=False, start_ns=10**9)
        for k in range(3):
            t = 10**9 + k * 10**9
            runner.feed('/v1/time_reference', make_time_reference(t - offset, t), t)
        pose_common = 4 * 10**9
        pose = PoseSample(pose_common - offset, np.array([100.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]),
                          np.diag([0.01, 0.01, 0.0, 0.0, 0.0, 0.0]), np.array([25.0, 0.0, 0.0]))
        runner.feed('/v1/odom', pose_to_odometry(pose, 'map', 'v1/base_link'), pose_common + 150_000_000)
        x, y, _, _ = node.core.member_poses(pose_common + 200_000_000)[0]
        assert x == pytest.approx(100.0 + 25.0 * 0.2, abs=0.05)   # from when it was true, not when it came
        assert y == pytest.approx(0.0, abs=1e-6)
    finally:
        node.destroy_node()


@pytest.mark.parametrize('allowance_s', [0.5, 0.0])
def test_a_slow_link_is_measured_and_its_evidence_fused(ros_context, allowance_s):
    """Evidence 600 ms late (> fusion.max_age_s 0.5): once link.min_samples (5) latencies are measured the
    limit becomes 0.5 + 0.5 (capped) s and the rest is fused; with link.latency_allowance_max_s 0 none is."""
    fusion = make_fusion(ros_context, vehicles=['v1'], vehicle_weights=[1.0], **{
        'grid.mode': 'fixed', 'grid.size_x_m': 30.0, 'grid.size_y_m': 16.0, 'grid.fixed_origin_y_m': -8.0,
        'fusion.max_age_s': 0.5, 'link.latency_allowance_max_s': allowance_s, 'coregistration.enabled': False})
    try:
        start = 50 * 10**9
        runner = LockstepRunner([fusion], None, publish_to_dds=False, start_ns=start)
        v1, _ = two_views()
        for k in range(12):
            stamp = start + k * 100_000_000
            runner.feed('/v1/evidence_grid', grid_to_msg(EV, v1, stamp), stamp + 600_000_000)
        now = start + 11 * 100_000_000 + 600_000_000
        _, _, values = fusion.vehicle_values('v1', now)
        assert values['link.latency_ms'] == pytest.approx(600.0)
        assert values['link.missing_share'] == pytest.approx(0.0)
        if allowance_s:
            assert fusion.drops.counts == {'v1.too_old': 4}    # before 5 latencies were measured
            assert values['accepted'] == 8
            assert values['link.evidence_max_age_s'] == pytest.approx(1.0)
            assert values['link.object_max_age_s'] == pytest.approx(0.8)   # dynamic.max_age_s 0.3 + 0.5
        else:
            assert fusion.drops.counts == {'v1.too_old': 12}
            assert values['link.evidence_max_age_s'] == pytest.approx(0.5)
    finally:
        fusion.destroy_node()
