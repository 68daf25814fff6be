"""``cooperative-fusion run --faults``: injectors composed into the lock-step bringup, deterministic, lossy."""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.app import bringup
from cooperative_fusion import cli
from cooperative_fusion.nodes.fault_injector import plan_faults
from cooperative_fusion.ros.bag import BagReader

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'config'
FAULTS = CONFIG / 'faults'
SIM_S = 2.0


def _domain() -> int:
    return random.SystemRandom().randint(1, 100)


@pytest.fixture(scope='module')
def fault_bag(tmp_path_factory) -> Path:
    """2 s of the default scenario from the simulator."""
    from cooperative_fusion.sim.bag_writer import write_simulation
    from cooperative_fusion.sim.scenario import load_scenario
    from cooperative_fusion.sim.world import Simulation

    scenario = load_scenario(CONFIG / 'scenarios' / 'highway_occlusion.yaml')
    out = tmp_path_factory.mktemp('faults') / 'scenario'
    write_simulation(Simulation(scenario, seed=5).events(duration_s=SIM_S), out, progress=False)
    return out


@pytest.fixture(scope='module')
def platoon(tmp_path_factory) -> Path:
    """v1 and fusion only (keeps the run small), recording evidence, the common grid and diagnostics."""
    path = tmp_path_factory.mktemp('faults_cfg') / 'platoon.yaml'
    path.write_text(yaml.safe_dump({
        'run': {'vehicles': True, 'fusion': True, 'twin': False},
        'vehicles': [{'id': 'v1', 'params': [str(CONFIG / 'vehicle.yaml'), str(CONFIG / 'vehicles' / 'v1.yaml')],
                      'body': {'length_m': 4.5, 'width_m': 1.8, 'rear_overhang_m': 1.0}}],
        'fusion': {'params': [str(CONFIG / 'fusion.yaml')]},
        'record': {'topics': ['/<v>/evidence_grid', '/<v>/radar/targets', '/<v>/odom', '/cooperative/grid',
                              '/diagnostics']},
        'drain_s': 0.5,
    }))
    return path


def _read(bag: Path) -> list[tuple[str, int, bytes]]:
    with BagReader(bag) as reader:
        return [(topic, t, raw) for topic, _type, t, raw in reader.messages()]


def _injector_status(bag: Path) -> dict[str, str]:
    """Values of the last ``fault_injector: v1`` status in the bag's /diagnostics."""
    last: dict[str, str] = {}
    with BagReader(bag) as reader:
        for topic, msgtype, _t, raw in reader.messages(['/diagnostics']):
            for status in reader.deserialize(msgtype, raw).status:
                if status.name == 'fault_injector: v1':
                    last = {kv.key: kv.value for kv in status.values}
    return last


def test_plan_names_faulted_vehicles_and_renames():
    plan = plan_faults(FAULTS / 'dropout.yaml', ['v1', 'v2'])
    assert plan.vehicles == ('v1',)
    assert plan.renames() == {'/v1/odom': '/v1/raw/odom', '/v1/time_reference': '/v1/raw/time_reference'}
    assert dict(plan.vehicle_parameters('v1'))['topics.radar_targets'] == '/v1/raw/radar/targets'
    assert plan.vehicle_parameters('v2') == ()
    no_vehicles = plan_faults(FAULTS / 'lossy.yaml', ['v1', 'v2'], vehicle_nodes=False)
    assert no_vehicles.vehicles == ('v1', 'v2')
    assert no_vehicles.renames()['/v2/evidence_grid'] == '/v2/raw/evidence_grid'


def test_run_with_lossy_faults_records_fewer_grids_deterministically(tmp_path, fault_bag, platoon):
    clean = tmp_path / 'clean'
    bringup.run_bag_lockstep(platoon, fault_bag, clean, progress=False, domain_id=_domain())
    lossy = tmp_path / 'lossy'
    code = cli.main(['run', '--config', str(platoon), '--bag', str(fault_bag), '--faults', str(FAULTS / 'lossy.yaml'),
                         '--record', str(lossy), '--quiet'])
    assert code == 0
    again = tmp_path / 'again'
    bringup.run_bag_lockstep(platoon, fault_bag, again, progress=False, domain_id=_domain(),
                             faults=FAULTS / 'lossy.yaml')
    n_clean = Counter(t for t, _, _ in _read(clean))
    r_lossy = _read(lossy)
    n_lossy = Counter(t for t, _, _ in r_lossy)
    assert n_clean['/v1/evidence_grid'] >= 15, n_clean                    # 10 Hz for 2 s
    assert 0 < n_lossy['/v1/evidence_grid'] < n_clean['/v1/evidence_grid'], (n_clean, n_lossy)
    print(f'evidence grids: {n_clean["/v1/evidence_grid"]} clean, {n_lossy["/v1/evidence_grid"]} with lossy.yaml')
    assert n_lossy['/v1/odom'] > 0 and '/v1/odom' not in n_clean         # the bag's odometry is an input ...
    assert not any('/raw/' in t or '/onboard/' in t for t in n_lossy)     # ... relayed, not replayed raw
    status = _injector_status(lossy)
    assert 0 < int(status['evidence_grid.out']) <= n_lossy['/v1/evidence_grid']   # last report: before the drain
    assert int(status['evidence_grid.lost']) > 0 and int(status['odom.in']) > 50
    assert 70.0 <= float(status['evidence_grid.delayed_mean_ms']) <= 135.0
    # the first relayed grid leaves >= 70 ms (100 - 30 ms jitter) after the first clean one
    first_clean = min(ts for t, ts, _ in _read(clean) if t == '/v1/evidence_grid')
    first_lossy = min(ts for t, ts, _ in r_lossy if t == '/v1/evidence_grid')
    assert first_lossy >= first_clean + 70_000_000
    # seeded: the same bag and faults give the same result (diagnostics carry wall-clock latencies)
    det = [m for m in r_lossy if m[0] != '/diagnostics']
    assert det == [m for m in _read(again) if m[0] != '/diagnostics']


def test_bad_faults_file_fails_before_running(tmp_path, fault_bag, platoon):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump({'all_vehicles': {'links': {'*': {'loss': -0.1}}}}))
    with pytest.raises(ConfigError, match=r'bad\.yaml: all_vehicles\.links\.\*\.loss: .*got -0\.1'):
        bringup.load_faults(bad)
    assert cli.main(['run', '--config', str(platoon), '--bag', str(fault_bag), '--faults', str(bad)]) == 2
