"""Truth of a Gazebo run: a synthetic recording (the bridged truth topics Gazebo would give, from the
scenario's motion) becomes a truth bag that the evaluator reads, equal to the simulator's truth."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped

from cooperative_fusion.core.errors import BagError
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.evaluation.report import read_truth
from cooperative_fusion.ros import names
from cooperative_fusion.ros.bag import BagReader, BagWriter
from cooperative_fusion.ros.odometry import pose_to_odometry
from cooperative_fusion.ros.time import ns_to_stamp
from cooperative_fusion.sim import gazebo
from cooperative_fusion.sim.gazebo_motion import pose_at
from cooperative_fusion.sim.gazebo_truth import write_gazebo_truth
from cooperative_fusion.sim.scenario import load_scenario
from cooperative_fusion.sim.world import PHYSICS_DT_NS, Simulation, _Kinematics, rasterize_boxes

REPO = Path(__file__).resolve().parents[2]
DURATION_NS = 2_000_000_000


def _quat(yaw: float) -> tuple[float, float, float, float]:
    return math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)


def _record(scenario, path: Path, skip: str | None = None) -> None:
    """What `ros2 bag record` of the bridged Gazebo world would hold: truth odometry of the platoon
    at 50 Hz and truth poses of the traffic at 10 Hz, in sim time, wall-clock log times."""
    tracks = {k: t.as_json() for k, t in gazebo.sample_tracks(scenario).items()}
    with BagWriter(path) as bag:
        for t_ns in range(0, DURATION_NS + 1, 20_000_000):
            for v in scenario.vehicle_ids:
                x, y, yaw = pose_at(tracks[v], t_ns * 1e-9)
                sample = PoseSample(t_ns, np.array([x, y, 0.0]), np.array(_quat(yaw)))
                bag.write(names.truth_odom(v), pose_to_odometry(sample, 'map', f'{v}/base_link'), 10**18 + t_ns)
            if t_ns % 100_000_000 == 0:
                for t in scenario.traffic:
                    if t.id == skip:
                        continue
                    x, y, yaw = pose_at(tracks[t.id], t_ns * 1e-9)
                    msg = PoseStamped()
                    msg.header.stamp = ns_to_stamp(t_ns)
                    msg.header.frame_id = gazebo.WORLD_NAME
                    msg.pose.position.x, msg.pose.position.y = x, y
                    q = msg.pose.orientation
                    q.w, q.x, q.y, q.z = _quat(yaw)
                    bag.write(f'{gazebo.TRUTH_POSE_PREFIX}{t.id}', msg, 10**18 + t_ns + 1)


@pytest.fixture(scope='module')
def scenario():
    return load_scenario(REPO / 'config' / 'scenarios' / 'cut_in.yaml')


@pytest.fixture(scope='module')
def truth(scenario, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('gz')
    _record(scenario, tmp / 'run')
    counts = write_gazebo_truth(tmp / 'run', scenario, tmp / 'truth')
    return counts, read_truth(tmp / 'truth')


def test_truth_bag_has_what_evaluate_reads(scenario, truth):
    counts, t = truth
    assert counts[names.TRUTH_GRID] == 21 and counts[names.TRUTH_OBJECTS] == 21     # 0 .. 2 s at 10 Hz
    assert counts[names.TRUTH_SCENARIO] == 1
    for v in scenario.vehicle_ids:
        assert counts[names.truth_odom(v)] == 101
        assert len(t.odom[v]) == 101
    assert t.meta['vehicle_ids'] == list(scenario.vehicle_ids)
    assert t.meta['hazard_ids'] == ['h1']
    assert t.meta['meeting_time_s']['v1'] == pytest.approx(18.0, abs=0.02)      # as the scenario file says
    assert t.grid_stamps == list(range(0, DURATION_NS + 1, 100_000_000))
    ids = {b.id for b in t.objects[0]}
    assert ids == set(scenario.vehicle_ids) | {'c1', 't1', 't2', 't3', 'h1'}


def test_truth_grid_equals_the_simulators(scenario, truth):
    _, t = truth
    sim, kin = Simulation(scenario), _Kinematics(scenario)
    start_ns = int(round(scenario.start_time_s * 1e9))
    for k, t_ns in enumerate(t.grid_stamps):
        while int(round(kin.t * 1e9)) + PHYSICS_DT_NS <= t_ns:
            kin.step()
        state = sim._state(kin, start_ns + t_ns, start_ns)
        spec = t.grid_specs[k]
        want = rasterize_boxes(spec, state.boxes) >= 50
        got = t.occupied(k)
        # same boxes up to the track sampling (5 cm at most): the footprints differ by an edge row at most
        assert want.sum() > 1000
        assert np.logical_xor(want, got).sum() <= 0.03 * want.sum(), k
        xs = [p[0, 3] for p in state.base2map]
        assert spec.origin_x + spec.width * spec.resolution / 2 == pytest.approx(np.mean(xs) + 40.0, abs=0.3)


def test_objects_sit_where_the_motion_puts_them_and_carry_their_velocity(truth):
    _, t = truth
    boxes = {b.id: b for b in t.objects[5]}                               # at 0.5 s
    assert boxes['t1'].center_x == pytest.approx(60.0 + 23.0 * 0.5 + (4.5 / 2 - 1.0), abs=0.05)
    assert boxes['t1'].center_y == pytest.approx(3.5)
    assert boxes['h1'].kind == 'stopped_car'
    with BagReader(t.path) as bag:
        topic, msgtype, _, raw = next(m for m in bag.messages([names.TRUTH_OBJECTS]))
        info = {json.loads(m.text)['id']: json.loads(m.text) for m in bag.deserialize(msgtype, raw).markers}
    assert info['t1']['velocity'] == pytest.approx([23.0, 0.0], abs=0.01)
    assert info['h1']['velocity'] == [0.0, 0.0]


def test_a_recording_without_a_truth_topic_is_refused(scenario, tmp_path):
    _record(scenario, tmp_path / 'run', skip='t2')
    with pytest.raises(BagError, match=r'no /truth/pose/t2: not a recording of the bridged Gazebo world'):
        write_gazebo_truth(tmp_path / 'run', scenario, tmp_path / 'truth')
