"""``cooperative-fusion simulate``: a platoon scenario into a rosbag2 (mcap) with ground truth.

Top-level imports stay light (the CLI imports this module to build its
parser); numpy, rclpy and rosbags are imported when the command runs.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..core.config_files import find_config
from ..core.errors import BagError, ConfigError

DEFAULT_SCENARIO = 'highway_occlusion.yaml'


def default_scenario_path() -> Path:
    """``config/scenarios/highway_occlusion.yaml`` of a source checkout, else of the installed share dir."""
    return find_config(f'scenarios/{DEFAULT_SCENARIO}', '--scenario FILE')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--scenario', type=Path, default=None, metavar='FILE',
                        help=f'scenario YAML (default: config/scenarios/{DEFAULT_SCENARIO})')
    parser.add_argument('--out', type=Path, required=True, metavar='BAG',
                        help='rosbag2 directory to create (must not exist unless --overwrite)')
    parser.add_argument('--seed', type=int, default=None, help="random seed (default: the scenario's seed)")
    parser.add_argument('--duration', type=float, default=None, metavar='S',
                        help="simulated seconds (default: the scenario's duration_s)")
    parser.add_argument('--overwrite', action='store_true', help='replace an existing bag at --out')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError(f'--duration must be a finite number of seconds > 0, got {args.duration}')
    out = Path(args.out)
    if (out.exists() or out.is_symlink()) and not args.overwrite:
        raise BagError(f'{out} already exists; choose another --out or pass --overwrite')
    scenario_path = Path(args.scenario) if args.scenario is not None else default_scenario_path()

    from ..sim.scenario import load_scenario

    scenario = load_scenario(scenario_path)

    from ..sim.bag_writer import write_simulation
    from ..sim.world import Simulation

    sim = Simulation(scenario, seed=args.seed)
    duration_s = args.duration if args.duration is not None else scenario.duration_s
    start = time.perf_counter()
    counts = write_simulation(sim.events(duration_s=duration_s), out, progress=not args.quiet,
                              total_s=duration_s, overwrite=args.overwrite)
    wall_s = time.perf_counter() - start
    size_mb = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    seed = args.seed if args.seed is not None else scenario.seed
    print(f'wrote {out}: {sum(counts.values())} messages on {len(counts)} topics, {size_mb:.1f} MB, '
          f'{duration_s:g} simulated s in {wall_s:.1f} s ({duration_s / wall_s:.2f}x real time), '
          f'scenario {scenario.name!r}, seed {seed}')
    return 0
