"""core/faults: seeded fault decisions (loss, bursts, delay, reorder, duplicates, silence, skew, pose bias) and config."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.faults import (BurstLoss, ClockSkew, FaultModel, FaultSpec, Jitter, LinkFaults,
                                            PoseBias, SilenceWindow, apply_pose_bias, load_faults)

REPO = Path(__file__).resolve().parents[2]
MS = 1_000_000
PERIOD = 100 * MS       # a 10 Hz stream


def _run(model: FaultModel, n: int, stream: str = 'evidence_grid', start: int = 10**18) -> list[list[int]]:
    return [model.decide(stream, start + i * PERIOD, start + i * PERIOD) for i in range(n)]


def test_same_seed_same_decisions_other_seed_differs():
    spec = FaultSpec(links=(LinkFaults(delay_ms=50, jitter_ms=20, loss=0.2, reorder=0.1, duplicate=0.1),))
    a = _run(FaultModel(spec, 7, 'v1'), 500)
    b = _run(FaultModel(spec, 7, 'v1'), 500)
    c = _run(FaultModel(spec, 8, 'v1'), 500)
    d = _run(FaultModel(spec, 7, 'v2'), 500)
    assert a == b
    assert a != c and a != d


def test_fate_does_not_depend_on_other_streams():
    spec = FaultSpec(links=(LinkFaults(loss=0.3, delay_ms=10, jitter_ms=5),))
    alone = _run(FaultModel(spec, 1, 'v1'), 200)
    mixed_model = FaultModel(spec, 1, 'v1')
    mixed = []
    for i in range(200):
        t = 10**18 + i * PERIOD
        mixed_model.decide('odom', t + 3, t + 3)
        mixed.append(mixed_model.decide('evidence_grid', t, t))
    assert mixed == alone


@pytest.mark.parametrize('p', [0.1, 0.3])
def test_loss_rate_over_10k_messages(p):
    out = _run(FaultModel(FaultSpec(links=(LinkFaults(loss=p),)), 3), 10_000)
    rate = sum(1 for r in out if not r) / len(out)
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / 10_000), rate


def _runs_of_losses(out: list[list[int]]) -> list[int]:
    runs, n = [], 0
    for r in out:
        if not r:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_burst_losses_cluster_with_the_model_mean_length():
    burst = BurstLoss(p_enter=0.02, p_exit=0.25, loss=1.0)
    out = _run(FaultModel(FaultSpec(links=(LinkFaults(loss=0.0, burst=burst),)), 5), 20_000)
    runs = _runs_of_losses(out)
    assert len(runs) > 100
    assert np.mean(runs) == pytest.approx(1 / burst.p_exit, rel=0.15)          # 4 messages
    share = burst.p_enter / (burst.p_enter + burst.p_exit)
    assert sum(runs) / len(out) == pytest.approx(share, rel=0.15)
    # independent loss at the same rate gives runs of ~1 / (1 - p)
    iid = _runs_of_losses(_run(FaultModel(FaultSpec(links=(LinkFaults(loss=share),)), 5), 20_000))
    assert np.mean(iid) < 1.2 < np.mean(runs)


def test_harsh_file_loses_about_30_percent():
    cfg = load_faults(REPO / 'config' / 'faults' / 'harsh.yaml')
    out = _run(FaultModel(cfg.for_vehicle('v3'), cfg.seed, 'v3'), 20_000)
    assert sum(1 for r in out if not r) / len(out) == pytest.approx(0.30, abs=0.03)


@pytest.mark.parametrize('kind', list(Jitter))
def test_delay_and_jitter_distribution(kind):
    link = LinkFaults(delay_ms=100, jitter_ms=30, jitter=kind)
    model = FaultModel(FaultSpec(links=(link,)), 2)
    # arrivals 1 s apart: FIFO never binds, each delay is the raw draw
    delays = np.array([(r[0] - t) / MS for t in (10**18 + i * 10**9 for i in range(5000))
                       for r in [model.decide('odom', t, t)]])
    assert delays.mean() == pytest.approx(100, abs=2)
    if kind is Jitter.UNIFORM:
        assert delays.min() >= 70 and delays.max() <= 130
        assert delays.std() == pytest.approx(30 / math.sqrt(3), rel=0.05)
        assert delays.min() < 72 and delays.max() > 128
    else:
        assert delays.std() == pytest.approx(30, rel=0.05)
        assert delays.min() >= 0


def test_fixed_delay_and_fifo_without_reorder():
    model = FaultModel(FaultSpec(links=(LinkFaults(delay_ms=100, jitter_ms=40),)), 4)
    starts = [10**18 + i * 20 * MS for i in range(2000)]          # 50 Hz, jitter larger than the period
    releases = [model.decide('odom', t, t)[0] for t in starts]
    assert all(b >= a for a, b in zip(releases, releases[1:]))     # jitter alone never reorders
    assert all(r - t >= 60 * MS for r, t in zip(releases, starts))
    exact = FaultModel(FaultSpec(links=(LinkFaults(delay_ms=100),)), 4)
    assert exact.decide('odom', 5, 1000) == [1000 + 100 * MS]


def test_reorder_produces_out_of_order_releases():
    link = LinkFaults(delay_ms=100, reorder=0.2, reorder_delay_ms=250)
    model = FaultModel(FaultSpec(links=(link,)), 6)
    starts = [10**18 + i * PERIOD for i in range(1000)]
    releases = [model.decide('evidence_grid', t, t)[0] for t in starts]
    held = sum(1 for r, t in zip(releases, starts) if r - t == 350 * MS)
    assert held / len(starts) == pytest.approx(0.2, abs=0.04)
    assert all(r - t in (100 * MS, 350 * MS) for r, t in zip(releases, starts))
    inversions = sum(1 for a, b in zip(releases, releases[1:]) if b < a)
    assert inversions > 50
    no_reorder = FaultModel(FaultSpec(links=(LinkFaults(delay_ms=100),)), 6)
    r2 = [no_reorder.decide('evidence_grid', t, t)[0] for t in starts]
    assert r2 == sorted(r2)


def test_duplicate_produces_two_releases():
    model = FaultModel(FaultSpec(links=(LinkFaults(delay_ms=20, jitter_ms=10, duplicate=0.25),)), 9)
    out = _run(model, 4000)
    doubles = [r for r in out if len(r) == 2]
    assert len(doubles) / len(out) == pytest.approx(0.25, abs=0.03)
    assert all(len(r) in (1, 2) for r in out)
    assert all(r[1] >= r[0] for r in doubles)


def test_silence_window_drops_inside_and_nothing_outside():
    origin = 10**18
    spec = FaultSpec(silence=(SilenceWindow(6.0, 11.0),))
    model = FaultModel(spec, 0, 'v1', origin_ns=origin)
    for k in range(0, 200):
        t = origin + k * PERIOD                # 0.0 .. 19.9 s
        out = model.decide('odom', t, t)
        inside = 6.0 <= k / 10 < 11.0
        assert (out == []) == inside, k
        if not inside:
            assert out == [t]                  # no link faults: passed at once
    # the window edges: start inclusive, end exclusive
    assert model.decide('evidence_grid', 1, origin + 6 * 10**9) == []
    assert model.decide('evidence_grid', 2, origin + 11 * 10**9) == [origin + 11 * 10**9]
    assert model.decide('evidence_grid', 3, origin + 11 * 10**9 - 1) == []


def test_origin_defaults_to_the_first_arrival():
    model = FaultModel(FaultSpec(silence=(SilenceWindow(1.0, 2.0),)), 0)
    assert model.decide('odom', 0, 5 * 10**9) == [5 * 10**9]
    assert model.origin_ns == 5 * 10**9
    assert model.decide('odom', 1, 6 * 10**9) == []


def test_clock_skew_applied_to_listed_streams():
    origin = 10**18
    skew = ClockSkew(offset_ms=200, drift_ppm=100, streams=('evidence_grid',))
    model = FaultModel(FaultSpec(clock_skew=skew), 0, origin_ns=origin)
    assert model.skew_stamp('evidence_grid', origin) == origin + 200 * MS
    # 10 s after the origin: + 100 ppm * 10 s = 1 ms more
    assert model.skew_stamp('evidence_grid', origin + 10**10) == origin + 10**10 + 201 * MS
    assert model.skew_stamp('radar/targets', origin) == origin
    assert model.skew_stamp('odom', origin + 5) == origin + 5
    neg = FaultModel(FaultSpec(clock_skew=ClockSkew(offset_ms=-200)), 0, origin_ns=origin)
    assert neg.skew_stamp('radar/targets', origin) == origin - 200 * MS


def test_first_matching_pattern_wins_and_unmatched_pass():
    spec = FaultSpec(links=(LinkFaults(pattern='odom', delay_ms=5), LinkFaults(pattern='*', loss=1.0)))
    model = FaultModel(spec, 0)
    assert model.decide('odom', 0, 100) == [100 + 5 * MS]
    assert model.decide('evidence_grid', 0, 100) == []
    only_grid = FaultModel(FaultSpec(links=(LinkFaults(pattern='evidence_*', loss=1.0),)), 0)
    assert only_grid.decide('radar/targets', 0, 7) == [7]


def test_pose_bias_shifts_position_and_heading():
    yaw0 = 0.3
    quat = np.array([math.cos(yaw0 / 2), 0, 0, math.sin(yaw0 / 2)])
    pos, q = apply_pose_bias(np.array([10.0, -2.0, 0.5]), quat, PoseBias(0.5, -0.25, 1.0))
    np.testing.assert_allclose(pos, [10.5, -2.25, 0.5])
    yaw = math.atan2(2 * (q[0] * q[3] + q[1] * q[2]), 1 - 2 * (q[2] ** 2 + q[3] ** 2))
    assert yaw == pytest.approx(yaw0 + math.radians(1.0), abs=1e-12)
    assert np.linalg.norm(q) == pytest.approx(1.0)


# ------------------------------------------------------------------ config --

@pytest.mark.parametrize('name', ['lossy', 'harsh', 'dropout', 'clock_skew', 'pose_bias'])
def test_shipped_fault_files_load(name):
    cfg = load_faults(REPO / 'config' / 'faults' / f'{name}.yaml')
    assert cfg.faulted(['v1', 'v2', 'v3', 'v4'])
    v1 = cfg.for_vehicle('v1')
    if name == 'lossy':
        link = v1.link('evidence_grid')
        assert (link.delay_ms, link.jitter_ms, link.loss) == (100, 30, 0.1)
        assert cfg.faulted(['v1', 'v2', 'v3', 'v4']) == ['v1', 'v2', 'v3', 'v4']
    if name == 'dropout':
        assert v1.silence == (SilenceWindow(6.0, 11.0),) and cfg.faulted(['v1', 'v2']) == ['v1']
    if name == 'pose_bias':
        assert v1.pose_bias == PoseBias(0.5, 0.0, 1.0)
    if name == 'clock_skew':
        assert {cfg.for_vehicle(v).clock_skew.offset_ms for v in ('v1', 'v2')} == {200.0, -200.0}


def test_vehicle_entry_overrides_all_vehicles_key_by_key(tmp_path):
    path = tmp_path / 'f.yaml'
    path.write_text(yaml.safe_dump({'all_vehicles': {'links': {'*': {'loss': 0.5}}, 'pose_bias': {'dx_m': 1.0}},
                                    'vehicles': {'v2': {'links': {'*': {'loss': 0.0}}}}}))
    cfg = load_faults(path)
    assert cfg.for_vehicle('v1').link('odom').loss == 0.5
    assert cfg.for_vehicle('v2').link('odom').loss == 0.0
    assert cfg.for_vehicle('v2').pose_bias.dx_m == 1.0


@pytest.mark.parametrize('raw, match', [
    ({'all_vehicles': {'links': {'*': {'loss': 1.5}}}}, r'all_vehicles\.links\.\*\.loss: expected a number in \[0, 1\], got 1\.5'),
    ({'vehicles': {'v1': {'links': {'odom': {'delay_ms': -3}}}}}, r'vehicles\.v1\.links\.odom\.delay_ms: .*got -3'),
    ({'vehicles': {'v1': {'links': {'odom': {'jitter': 'cauchy'}}}}}, r'vehicles\.v1\.links\.odom\.jitter: .*cauchy'),
    ({'vehicles': {'v1': {'links': {'odom': {'burst': {'p_exit': 0}}}}}},
     r'vehicles\.v1\.links\.odom\.burst\.p_exit: expected a number in \(0, 1\], got 0'),
    ({'vehicles': {'v1': {'links': {'odom': {'lost': 0.1}}}}}, r'vehicles\.v1\.links\.odom\.lost: unknown key'),
    ({'vehicles': {'v1': {'silence': [{'start_s': 5, 'end_s': 2}]}}}, r'vehicles\.v1\.silence\[0\]\.end_s: .*got 2'),
    ({'vehicles': {'v1': {'silence': [{'start_s': 5}]}}}, r'vehicles\.v1\.silence\[0\]\.end_s: missing'),
    ({'vehicles': {'v1': {'clock_skew': {'offset_ms': 'x'}}}}, r"vehicles\.v1\.clock_skew\.offset_ms: .*got 'x'"),
    ({'vehicles': {'v1': {'clock_skew': {'streams': ['lidar']}}}}, r"vehicles\.v1\.clock_skew\.streams: .*'lidar'"),
    ({'vehicles': {'v1': {'pose_bias': {'dyaw_deg': 400}}}}, r'vehicles\.v1\.pose_bias\.dyaw_deg: .*got 400'),
    ({'seed': -1, 'vehicles': {'v1': {}}}, r'seed: expected an integer >= 0, got -1'),
    ({'vehicles': {'1v': {}}}, r"vehicles: expected vehicle ids like v1, got '1v'"),
    ({'seed': 1}, r'vehicles: no faults'),
    ({'extra': 1}, r'bad\.yaml: extra: unknown key'),
])
def test_config_errors_name_file_key_and_value(tmp_path, raw, match):
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match) as info:
        load_faults(path)
    assert str(path) in str(info.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match='faults file does not exist'):
        load_faults(tmp_path / 'nope.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('a: [1, 2\n')
    with pytest.raises(ConfigError, match='not valid YAML'):
        load_faults(bad)
    bad.write_text('- 1\n')
    with pytest.raises(ConfigError, match='expected a mapping at the top level'):
        load_faults(bad)
