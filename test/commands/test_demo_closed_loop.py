"""cooperative-fusion demo --closed-loop: 3 s of the default scenario into one bag, evaluated and animated."""
from __future__ import annotations

import json
import random

import pytest

from cooperative_fusion.commands import demo
from cooperative_fusion.core.errors import ConfigError

DURATION_S = 3.0


@pytest.fixture(scope='module')
def closed_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo_closed') / 'out'
    report = demo.run_demo(out, duration_s=DURATION_S, progress=False, closed_loop=True, mode='cooperative',
                           domain_id=random.SystemRandom().randint(101, 200))
    return out, report


def test_one_bag_report_and_gif(closed_demo) -> None:
    out, report = closed_demo
    assert (out / 'scenario_bag' / 'metadata.yaml').is_file() and not (out / 'result_bag').exists()
    on_disk = json.loads((out / 'report.json').read_text())
    info = on_disk['demo']
    assert info['closed_loop'] == 'cooperative' and info['duration_s'] == DURATION_S
    assert info['files']['result_bag'] == info['files']['scenario_bag']
    assert set(info['stage_wall_s']) == {'run', 'evaluate', 'animate'}
    assert on_disk['frames_evaluated'] > 0 and 0.5 < on_disk['object_recall'] <= 1.0
    md = (out / 'report.md').read_text()
    assert '| closed loop | mode cooperative |' in md and 'result_bag' not in md
    assert (out / 'run.gif').stat().st_size > 0 and report['demo']['closed_loop'] == 'cooperative'
    assert info['gif_frames'] > 0


def test_mode_without_closed_loop_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match='--mode needs --closed-loop'):
        demo.run_demo(tmp_path / 'd', duration_s=1.0, progress=False, mode='ego')
    assert not (tmp_path / 'd').exists()
