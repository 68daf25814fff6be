"""Platoon configs and short simulated bags for the bringup tests (test/app)."""
from __future__ import annotations

import random
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'config'
#: Every output topic of DESIGN.md (config/platoon.yaml's record topics).
RECORD_TOPICS = ['/<v>/evidence_grid', '/<v>/radar/targets', '/cooperative/grid', '/twin/predicted_grid',
                 '/twin/warnings', '/<v>/twin/advisory', '/twin/markers', '/diagnostics']
#: The default platoon's bodies (config/platoon.yaml), by vehicle id.
BODIES = {v['id']: v['body'] for v in yaml.safe_load((CONFIG / 'platoon.yaml').read_text())['vehicles']}


def domain() -> int:
    return random.SystemRandom().randint(1, 100)


def vehicle_entry(vid: str, **extra) -> dict:
    """A platoon entry for ``vid`` with the repository's params files (absolute) and the default body."""
    own = CONFIG / 'vehicles' / f'{vid}.yaml'
    params = [str(CONFIG / 'vehicle.yaml')] + ([str(own)] if own.is_file() else [])
    return {'id': vid, 'params': params, 'body': dict(BODIES.get(vid, BODIES['v1'])), **extra}


def write_config(path: Path, vehicles=('v1', 'v2'), fusion: bool = True, twin: bool = True, **extra) -> Path:
    """A bringup config with absolute paths to the repository's params files; ``extra`` replaces top-level keys."""
    raw = {
        'run': {'vehicles': True, 'fusion': fusion, 'twin': twin},
        'vehicles': [vehicle_entry(v) if isinstance(v, str) else v for v in vehicles],
        'fusion': {'params': [str(CONFIG / 'fusion.yaml')]},
        'twin': {'params': [str(CONFIG / 'twin.yaml')]},
        'record': {'topics': list(RECORD_TOPICS)},
        'drain_s': 0.5,
    }
    raw.update(extra)
    path.write_text(yaml.safe_dump(raw))
    return path


def simulate(out: Path, seconds: float, seed: int = 3) -> Path:
    """``seconds`` of the default scenario (four vehicles, truth) from the simulator, as a bag at ``out``."""
    from cooperative_fusion.sim.bag_writer import write_simulation
    from cooperative_fusion.sim.scenario import load_scenario
    from cooperative_fusion.sim.world import Simulation

    scenario = load_scenario(CONFIG / 'scenarios' / 'highway_occlusion.yaml')
    write_simulation(Simulation(scenario, seed=seed).events(duration_s=seconds), out, progress=False)
    return out
