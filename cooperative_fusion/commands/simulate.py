"""``cooperative-fusion simulate``: a platoon scenario into a rosbag2 (mcap) with ground truth.

With ``--closed-loop`` the platoon's nodes run in lock-step with the world and the
vehicles follow their ``/<v>/cooperative/cmd`` (:mod:`cooperative_fusion.app.closed_loop`);
the bag then also holds the nodes' outputs.

Top-level imports stay light (the CLI imports this module to build its
parser); numpy, rclpy and rosbags are imported when the command runs.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..core.config_files import find_config
from ..app.closed_loop import DEFAULT_MODE, MODES, check_mode
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
    parser.add_argument('--closed-loop', action='store_true',
                        help='run the platoon nodes (vehicles, fusion, twin, advisory followers) in lock-step with '
                             'the world; the vehicles follow their /<v>/cooperative/cmd; the bag also holds the '
                             'nodes\' outputs (evaluate --truth BAG --result BAG)')
    parser.add_argument('--mode', default=None, metavar='MODE',
                        help=f'with --closed-loop: what the followers act on, one of {", ".join(MODES)} '
                             f'(default: {DEFAULT_MODE})')
    parser.add_argument('--config', type=Path, default=None, metavar='FILE',
                        help='with --closed-loop: bringup config (default: the scenario\'s own '
                             '<name>/platoon.yaml if it ships one, else config/platoon.yaml)')
    parser.add_argument('--faults', type=Path, default=None, metavar='FILE',
                        help='with --closed-loop: fault injection file (config/faults/*.yaml)')


def check_closed_loop_flags(args: argparse.Namespace, flags: tuple[str, ...] = ('mode', 'config', 'faults')) -> None:
    """ConfigError when one of the closed-loop-only ``flags`` is given without --closed-loop."""
    if not args.closed_loop:
        for flag in flags:
            if getattr(args, flag) is not None:
                raise ConfigError(f'--{flag} needs --closed-loop')
    elif args.mode is not None:
        check_mode(args.mode)


def run(args: argparse.Namespace) -> int:
    check_closed_loop_flags(args)
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError(f'--duration must be a finite number of seconds > 0, got {args.duration}')
    out = Path(args.out)
    if (out.exists() or out.is_symlink()) and not args.overwrite:
        raise BagError(f'{out} already exists; choose another --out or pass --overwrite')
    scenario_path = Path(args.scenario) if args.scenario is not None else default_scenario_path()

    from ..sim.scenario import load_scenario, scenario_platoon_config

    scenario = load_scenario(scenario_path)
    if args.closed_loop:
        if args.config is None:  # a scenario with its own platoon ships its bringup config
            args.config = scenario_platoon_config(scenario_path)
        return _run_closed_loop(args, scenario, out)

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


def _run_closed_loop(args: argparse.Namespace, scenario, out: Path) -> int:
    from ..app import bringup
    from ..app.closed_loop import run_closed_loop

    with bringup.node_log_level(args.quiet):
        summary = run_closed_loop(scenario, out, mode=args.mode or DEFAULT_MODE, seed=args.seed,
                                  duration_s=args.duration, config_path=args.config, faults=args.faults,
                                  progress=not args.quiet, overwrite=args.overwrite)
    size_mb = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    seed = args.seed if args.seed is not None else scenario.seed
    print(f'wrote {out}: {summary.line()}; {size_mb:.1f} MB, scenario {scenario.name!r}, seed {seed}')
    return 0
