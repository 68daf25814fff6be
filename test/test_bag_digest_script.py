"""scripts/bag_digest.py: per-topic digests that see one changed message and ignore /diagnostics."""
from __future__ import annotations

from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore
from script_module import load_script

bd = load_script('bag_digest')
TS = get_typestore(Stores.ROS2_HUMBLE)


def _bag(path, values, diag):
    String = TS.types['std_msgs/msg/String']
    with Writer(path, version=8) as w:
        c = w.add_connection('/chatter', String.__msgtype__, typestore=TS)
        d = w.add_connection('/diagnostics', String.__msgtype__, typestore=TS)
        for i, v in enumerate(values):
            w.write(c, i, TS.serialize_cdr(String(data=v), String.__msgtype__))
            w.write(d, i, TS.serialize_cdr(String(data=diag), String.__msgtype__))
    return path


def test_one_changed_message_is_a_difference_and_diagnostics_are_not(tmp_path, capsys):
    a = bd.digest(_bag(tmp_path / 'a', ['x', 'y'], 'cycle_ms 3.1'))
    same = bd.digest(_bag(tmp_path / 'b', ['x', 'y'], 'cycle_ms 4.7'))
    other = bd.digest(_bag(tmp_path / 'c', ['x', 'z'], 'cycle_ms 3.1'))
    assert list(a) == ['/chatter'] and a['/chatter'][0] == 2
    assert bd.differences(same, a) == []
    assert bd.differences(other, a) == [f"/chatter: 2 -> 2 messages, {a['/chatter'][1]} -> {other['/chatter'][1]}"]
    assert bd.parse_digest(bd.format_digest(a)) == a
    (tmp_path / 'a.txt').write_text(bd.format_digest(a))
    assert bd.main([str(tmp_path / 'c'), '--against', str(tmp_path / 'a.txt')]) == 1
    assert bd.main([str(tmp_path / 'b'), '--against', str(tmp_path / 'a.txt')]) == 0
    assert 'identical: 1 topics' in capsys.readouterr().out
    with_diag = bd.digest(tmp_path / 'a', skip=())
    assert set(with_diag) == {'/chatter', '/diagnostics'}
