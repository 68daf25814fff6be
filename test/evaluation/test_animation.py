"""evaluation/animation.py: the commanded / true speed panel of closed-loop runs (its data and text, not pixels)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from geometry_msgs.msg import TwistStamped
from std_msgs.msg import String

from cooperative_fusion.evaluation.animation import FrameRenderer, VehicleSpeed, collect_frames, speed_panel_lines
from cooperative_fusion.ros.bag import BagWriter
from cooperative_fusion.ros.time import ns_to_stamp
from cooperative_fusion.sim.bag_writer import boxes_to_markers

MS = 1_000_000
STAMPS = [k * 100 * MS for k in range(10, 36)]          # truth objects 1.0 .. 3.5 s at 10 Hz (t_s 0 .. 2.5)


def _boxes(t: int) -> list[dict]:
    """v1 at 20 m/s heading north-east-ish (yaw 0.5), v2 at 18 m/s east, a stopped hazard."""
    s = (t - STAMPS[0]) * 1e-9
    return [{'id': 'v1', 'kind': 'car', 'center': (40.0 + 20.0 * s, 0.0, 0.75), 'size': (4.5, 1.9, 1.5), 'yaw': 0.5,
             'velocity': (20.0 * 0.8775825618903728, 20.0 * 0.479425538604203)},
            {'id': 'v2', 'kind': 'car', 'center': (25.0 + 18.0 * s, 0.0, 0.75), 'size': (4.5, 1.9, 1.5), 'yaw': 0.0,
             'velocity': (18.0, 0.0)},
            {'id': 'h1', 'kind': 'stopped_car', 'center': (120.0, 0.0, 0.75), 'size': (4.5, 1.9, 1.5), 'yaw': 0.0,
             'velocity': (0.0, 0.0)}]


def _cmd(t: int, speed: float) -> TwistStamped:
    msg = TwistStamped()
    msg.header.stamp = ns_to_stamp(t)
    msg.header.frame_id = 'v1/base_link'
    msg.twist.linear.x = speed
    return msg


@pytest.fixture(scope='module')
def bags(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp('anim')
    meta = {'scenario': 'hand_made', 'vehicle_ids': ['v1', 'v2'], 'hazard_ids': ['h1'], 'start_time_ns': STAMPS[0]}
    with BagWriter(root / 'truth') as bag:
        bag.write('/truth/scenario', String(data=json.dumps(meta)), 0)
        for t in STAMPS:
            bag.write('/truth/objects', boxes_to_markers(_boxes(t), t, 'map'), t)
    # v1 is commanded 15 m/s at 1.0 s and 12 m/s at 2.0 s (common time); nothing later (stale after 3.0 s)
    with BagWriter(root / 'closed') as bag:
        for t, v in ((1000 * MS, 15.0), (2000 * MS, 12.0)):
            bag.write('/v1/cooperative/cmd', _cmd(t, v), t)
    with BagWriter(root / 'open') as bag:
        bag.write('/truth/scenario', String(data=json.dumps(meta)), 0)
    return root / 'truth', root / 'closed', root / 'open'


def test_closed_loop_frames_carry_commanded_and_true_speeds(bags):
    truth, closed, _ = bags
    frames, _, period = collect_frames(truth, closed, period_s=0.5)
    assert period == 0.5 and [f.t_s for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    by_t = {round(f.t_s, 1): f.speeds for f in frames}
    # true speed: the box velocity along its heading, for every platoon vehicle (not the hazard)
    assert set(by_t[0.0]) == {'v1', 'v2'}
    assert by_t[0.0]['v1'].true_mps == pytest.approx(20.0) and by_t[0.0]['v2'].true_mps == pytest.approx(18.0)
    # commanded: the newest command at or before the frame time (t_s 0 = common 1.0 s); v2 never got one
    assert by_t[0.0]['v1'].cmd_mps == 15.0 and by_t[0.5]['v1'].cmd_mps == 15.0
    assert by_t[1.0]['v1'].cmd_mps == 12.0 and by_t[2.0]['v1'].cmd_mps == 12.0
    assert all(s['v2'].cmd_mps is None for s in by_t.values())


def test_a_stale_command_is_not_shown(bags):
    truth, closed, _ = bags
    frames, _, _ = collect_frames(truth, closed, period_s=0.25)
    by_t = {round(f.t_s, 2): f.speeds['v1'].cmd_mps for f in frames}
    # the 2.0 s command is 1.0 s old at t_s 2.0 (shown), 1.25 s old at t_s 2.25 (not)
    assert by_t[2.0] == 12.0 and by_t[2.25] is None and by_t[2.5] is None


def test_open_loop_frames_have_no_speed_panel(bags):
    truth, _, open_loop = bags
    frames, _, _ = collect_frames(truth, open_loop, period_s=0.5)
    assert frames and all(f.speeds == {} for f in frames)


def test_the_panel_text_lists_each_vehicle(bags):
    truth, closed, _ = bags
    assert speed_panel_lines({}) == []
    lines = speed_panel_lines({'v2': VehicleSpeed(18.04, None), 'v1': VehicleSpeed(20.0, 12.0)})
    assert lines == ['speed m/s   cmd   true', 'v1         12.0   20.0', 'v2           --   18.0']
    frames, _, _ = collect_frames(truth, closed, period_s=0.5)
    x0, x1, y0, y1 = frames[0].view
    renderer = FrameRenderer((x1 - x0, y1 - y0), width_px=600)
    try:
        image = renderer.render(frames[2])
        assert image.ndim == 3 and renderer._panel.get_visible()
        assert renderer._panel.get_text().splitlines()[1] == 'v1         12.0   20.0'
        renderer.render(frames[2].__class__(t_s=0.0, view=frames[2].view, platoon=frames[2].platoon))
        assert not renderer._panel.get_visible()
    finally:
        renderer.close()
