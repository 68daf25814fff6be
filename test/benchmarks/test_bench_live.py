"""benchmarks/bench_live.py: its pure helpers, its input files, and one short live run (structure, not speed)."""
from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location('bench_live', REPO / 'benchmarks' / 'bench_live.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load()


# ------------------------------------------------------------------ pure helpers --

def test_percentile_interpolates_and_is_nan_when_empty():
    assert bench.percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert bench.percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert bench.percentile([7.0], 95) == 7.0
    assert math.isnan(bench.percentile([], 50))


def test_trend_slope_is_the_least_squares_slope():
    t = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert bench.trend_slope(t, [5.0 + 20.0 * x for x in t]) == pytest.approx(20.0)
    assert bench.trend_slope(t, [100.0, 90.0, 110.0, 100.0, 100.0]) == pytest.approx(1.0)
    assert bench.trend_slope(t, [3.0] * 5) == pytest.approx(0.0)
    assert math.isnan(bench.trend_slope([1.0], [2.0]))
    assert math.isnan(bench.trend_slope([2.0, 2.0], [1.0, 5.0]))


def _stat_line(comm: str, utime: int, stime: int) -> str:
    fields = ['S', '1', '1234', '1234', '0', '-1', '4194560', '5000', '0', '12', '0', str(utime), str(stime),
              '3', '1', '20', '0', '7', '0', '1000', '123456789', '2345'] + ['0'] * 30
    return f'1234 ({comm}) ' + ' '.join(fields) + '\n'


def test_parse_proc_stat_counts_fields_after_the_command_name():
    assert bench.parse_proc_stat(_stat_line('python3', 250, 40)) == (250, 40)
    # a command name with spaces and a closing parenthesis
    assert bench.parse_proc_stat(_stat_line('my (odd) proc) x', 7, 9)) == (7, 9)
    with pytest.raises(ValueError, match='no "\\(comm\\)"'):
        bench.parse_proc_stat('1234 python3 S 1')
    with pytest.raises(ValueError, match='expected at least 15'):
        bench.parse_proc_stat('1234 (python3) S 1 2 3')


def test_cpu_seconds_of_this_process_grows_and_a_missing_pid_is_nan():
    import os

    before = bench.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert bench.cpu_seconds(os.getpid()) >= before > 0.0
    assert math.isnan(bench.cpu_seconds(2 ** 31 - 1))


def test_cdr_header_stamp_of_a_serialized_grid_and_of_big_endian_bytes():
    from nav_msgs.msg import OccupancyGrid
    from rclpy.serialization import serialize_message

    msg = OccupancyGrid()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345_678_901
    msg.header.frame_id = 'map'
    assert bench.cdr_header_stamp_ns(serialize_message(msg)) == 12_345_678_901
    big_endian = bytes([0, 0, 0, 0]) + (3).to_bytes(4, 'big') + (5).to_bytes(4, 'big')
    assert bench.cdr_header_stamp_ns(big_endian) == 3_000_000_005
    with pytest.raises(ValueError, match='too short'):
        bench.cdr_header_stamp_ns(b'\x00\x01\x00\x00')


def test_drop_counts_by_cause_and_too_old_matched_in_any_key():
    statuses = [
        {'drops.too_old': '3', 'drops.frame': '1', 'drops.total': '4', 'accepted': '10'},
        {'drops.evidence.too_old': '2', 'drops.evidence.total': '2', 'drops.note': 'n/a'},
        {'drops.too_old': '1'},
    ]
    drops = bench.drop_counts(statuses)
    assert drops == {'too_old': 4, 'frame': 1, 'evidence.too_old': 2}
    assert bench.split_too_old(drops) == (6, 1)


def test_age_samples_follow_the_newest_fused_evidence():
    ms = 1_000_000
    stamps = {'v1': [i * 100 * ms for i in range(12)]}   # evidence at 0, 100, ..., 1100 ms
    diagnostics = [
        (500 * ms, {'v1': {'received': '0', 'accepted': '0'}}),      # nothing fused yet: no sample
        (1000 * ms, {'v1': {'received': '5', 'accepted': '5'}}),     # newest fused: the 5th, 400 ms
        (2000 * ms, {'v1': {'received': '7', 'accepted': '5'}}),     # two taken in, none fused (too old)
        (3000 * ms, {'v1': {'received': '10', 'accepted': '8'}}),    # newest fused: the 10th, 900 ms
        (3500 * ms, {'v1': {'state': 'active'}}),                    # no counters: no sample
    ]
    samples = bench.age_samples(stamps, diagnostics)
    assert samples == [(1000 * ms, 600.0), (2000 * ms, 1600.0), (3000 * ms, 2100.0)]


# ------------------------------------------------------------------ input files --

def _raw_scenario() -> dict:
    return yaml.safe_load((REPO / 'config' / 'scenarios' / 'highway_occlusion.yaml').read_text())


def test_scenario_variant_trims_and_extends_the_platoon():
    from cooperative_fusion.sim.scenario import scenario_from_dict

    raw = _raw_scenario()
    two = scenario_from_dict(bench.scenario_variant(raw, 2))
    assert [v.id for v in two.platoon.vehicles] == ['v1', 'v2']
    six_raw = bench.scenario_variant(raw, 6)
    six = scenario_from_dict(six_raw)
    assert [v.id for v in six.platoon.vehicles] == ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']
    assert [v.type.value for v in six.platoon.vehicles][4:] == ['car', 'car']
    assert [v.gap_m for v in six.platoon.vehicles][4:] == [15.0, 15.0]
    assert six.platoon.vehicles[4].sensors == six.platoon.vehicles[0].sensors      # mounts copied
    assert six_raw['name'] == 'highway_occlusion_n6'
    assert len(raw['platoon']['vehicles']) == 4                                     # the input is untouched
    with pytest.raises(ValueError, match='at least one'):
        bench.scenario_variant(raw, 0)


def test_platoon_config_for_five_vehicles_gives_node_specs_with_every_vehicle(tmp_path):
    from cooperative_fusion.app.platoon import NodeKind, load_platoon_config
    from cooperative_fusion.sim.scenario import scenario_from_dict

    raw = bench.scenario_variant(_raw_scenario(), 5)
    path = bench.platoon_config_file(scenario_from_dict(raw), raw, tmp_path)
    cfg = load_platoon_config(path)
    assert cfg.vehicles == ('v1', 'v2', 'v3', 'v4', 'v5')
    specs = cfg.node_specs()
    assert [s.kind for s in specs] == [NodeKind.VEHICLE] * 5 + [NodeKind.FUSION, NodeKind.TWIN]
    v5 = specs[4]
    assert v5.namespace == '/v5' and ('vehicle_id', 'v5') in v5.parameters
    own = yaml.safe_load(v5.params_files[-1].read_text())
    car = yaml.safe_load((REPO / 'config' / 'vehicles' / 'v1.yaml').read_text())
    assert list(own) == ['/v5/vehicle_node']
    assert own['/v5/vehicle_node']['ros__parameters']['vehicle_id'] == 'v5'
    assert own['/v5/vehicle_node']['ros__parameters']['extrinsics'] == \
        car['/v1/vehicle_node']['ros__parameters']['extrinsics']
    # fusion and twin take the platoon (ids, bodies from the scenario) from the platoon config
    fusion = dict(specs[5].parameters)
    assert list(fusion['vehicles']) == ['v1', 'v2', 'v3', 'v4', 'v5']
    assert list(fusion['footprints.length_m']) == [4.5, 12.0, 4.5, 4.5, 4.5]
    twin = dict(specs[6].parameters)
    assert list(twin['vehicles']) == list(fusion['vehicles']) and len(twin['vehicle_widths_m']) == 5


def test_result_line_has_every_figure_of_every_n():
    r = bench.LiveResult(n=3, data_s=10.0, sweeps=310, published=300, received=290, fused=250,
                         drops={'too_old': 40, 'frame': 0, 'future': 2}, ages_ms=[100.0, 200.0, 300.0],
                         age_times_s=[1.0, 2.0, 3.0], evidence_delay_ms=[40.0, 60.0],
                         cores={'vehicle_node_v1': 0.2, 'vehicle_node_v2': 0.3, 'fusion_node': 0.5,
                                'twin_node': 0.4, 'replay': 0.1},
                         reference=bench.Reference(cores=1.0, published=305, fused=280))
    line = bench.result_line([r])
    values = dict(kv.split('=') for kv in line.split())
    assert values['live_n3_sweeps'] == '310' and values['live_n3_evidence_delay_p50_ms'] == '50'
    assert values['live_n3_fused'] == '250' and values['live_n3_too_old'] == '40'
    assert values['live_n3_drops_other'] == '2' and values['live_n3_not_taken_in'] == '10'
    assert values['live_n3_age_p50_ms'] == '200' and values['live_n3_age_max_ms'] == '300'
    assert values['live_n3_age_trend_ms_per_s'] == '100.0'
    assert values['live_n3_cores_vehicle_max'] == '0.300' and values['live_n3_cores_all'] == '1.400'
    header, rule, row = bench.table([r])
    assert header.count('|') == rule.count('|') == row.count('|')
    assert row.startswith('| 3 | 310 | 300 (305) | 250 (280) | 40 | 2 | 10 |')
    assert values['live_n3_ref_lockstep_fused'] == '280' and values['live_n3_ref_lockstep_cores'] == '1.000'


def test_result_line_says_the_clock_mode():
    r = bench.LiveResult(n=2, data_s=1.0)
    assert bench.result_line([r]).startswith('live_n2_clock=sim ')
    r.clock = 'wall'
    assert bench.result_line([r]).startswith('live_n2_clock=wall ')


def test_replay_offset_is_read_from_the_replay_output():
    log = 'warning ...\nreplayed 12 messages from b in 1.00 s; stamps shifted by 1765000000123456789 ns\n'
    assert bench.replay_offset_ns(log) == 1765000000123456789
    with pytest.raises(RuntimeError, match='did not report its offset'):
        bench.replay_offset_ns('replayed 12 messages from b in 1.00 s\n')


class _HeardListener:
    """What bench_live's listener holds after a run, without ROS."""

    def __init__(self, base_ns: int) -> None:
        ms = 1_000_000
        self.evidence = {'v1': [base_ns + i * 100 * ms for i in range(10)]}
        self.grid_stamps = [base_ns - 1, base_ns, base_ns + 2000 * ms]    # a heartbeat before and after the data
        self.evidence_arrivals = [(base_ns + 30 * ms, base_ns)]
        status = {'v1': {'received': '5', 'accepted': '5'}, '': {'latency_ms.p50': '40', 'latency_ms.p95': '60'}}
        late = {'v1': {'received': '10', 'accepted': '10'}}
        # (this process's clock, the fusion's stamp, statuses): one report in the data, one after its end
        self.diagnostics = [(base_ns + 500 * ms, base_ns + 500 * ms, status),
                            (base_ns + 2500 * ms, base_ns + 2500 * ms, late)]

    def latest_fusion_status(self):
        out = {}
        for _, _, s in self.diagnostics:
            out.update(s)
        return out


@pytest.mark.parametrize('clock', ['sim', 'wall'])
def test_summary_reads_ages_on_the_nodes_clock_with_the_lag_only_on_sim_time(clock):
    ms = 1_000_000
    start = 1_000 * ms if clock == 'sim' else 1_765_000_000_000 * ms     # a wall run: bag times + offset
    lag = 10 * ms if clock == 'sim' else 0
    r = bench.LiveResult(n=1, data_s=1.0, clock=clock)
    bench._summarise(r, _HeardListener(start), ['v1'], start, start + 1000 * ms, clock_lag_ns=lag)
    assert r.fused == 10 and r.published == 10 and r.grids == 1
    assert r.ages_ms == [100.0 + lag / ms]       # newest fused (the 5th, 400 ms) at 500 ms; the late one left out
    assert r.age_times_s == [0.5]
    assert r.evidence_delay_ms == [30.0 + lag / ms]
    assert r.fusion_reported_ms == (40.0 + lag / ms, 60.0 + lag / ms)


# ---------------------------------------------------------------- a live run --

@pytest.mark.parametrize('timing', [['--rate', '0.5'], ['--wall-clock']])
def test_short_live_run_prints_a_sane_result_line(tmp_path, timing):
    """2 vehicles, 3 s of data at half rate on /clock, or at rate 1 on the wall clock: the line parses and
    its figures are sane (never timed)."""
    proc = subprocess.run([sys.executable, str(REPO / 'benchmarks' / 'bench_live.py'), '--vehicles', '2',
                           '--duration', '3', *timing, '--keep', str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert re.fullmatch(r'(live_n2_\w+=\S+ ?)+', lines[-1]), lines[-1]
    v = dict(kv.split('=') for kv in lines[-1].split())
    sweeps, published, fused = (int(v[f'live_n2_{k}']) for k in ('sweeps', 'published', 'fused'))
    assert sweeps >= 50 and published > 0 and fused > 0      # 2 vehicles x 3 s x 10 Hz lidar = 60 sweeps
    assert int(v['live_n2_too_old']) >= 0 and int(v['live_n2_drops_other']) >= 0
    ages = [float(v[f'live_n2_age_{k}_ms']) for k in ('p50', 'p95', 'max')]
    assert 0.0 <= ages[0] <= ages[1] <= ages[2], ages
    assert float(v['live_n2_evidence_delay_p50_ms']) >= 0.0
    for key in ('vehicle_max', 'fusion', 'twin', 'all'):
        assert float(v[f'live_n2_cores_{key}']) > 0.0, key
    assert float(v['live_n2_ref_lockstep_cores']) > 0.0
    assert int(v['live_n2_ref_lockstep_published']) >= int(v['live_n2_ref_lockstep_fused']) > 0
    assert any(ln.startswith('| 2 |') for ln in lines), 'no table row for N=2'
    assert (tmp_path / 'n2' / 'fusion_node.log').is_file()
    assert v['live_n2_clock'] == ('wall' if '--wall-clock' in timing else 'sim')
