"""``cooperative-fusion export-gazebo``: a scenario as a Gazebo world, bridge config and launch inputs.

With ``--truth-from BAG`` it instead turns a recorded Gazebo run into a truth
bag for ``cooperative-fusion evaluate`` (docs/gazebo.md). Top-level imports
stay light (the CLI imports this module to build its parser).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import BagError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--scenario', type=Path, default=None, metavar='FILE',
                        help='scenario YAML (default: config/scenarios/highway_occlusion.yaml)')
    parser.add_argument('--out', type=Path, required=True, metavar='DIR',
                        help='directory to write world.sdf, bridge.yaml, README.md and the motion files into; '
                             'with --truth-from: the truth bag to create')
    parser.add_argument('--config', type=Path, default=None, metavar='PLATOON.yaml',
                        help='platoon config whose vehicle params files give the sensor mounts '
                             '(default: config/platoon.yaml)')
    parser.add_argument('--truth-from', type=Path, default=None, metavar='BAG',
                        help='a bag recorded from the Gazebo world of --scenario: write its ground truth '
                             '(/truth/odom, /truth/objects, /truth/grid) to --out instead of exporting')
    parser.add_argument('--overwrite', action='store_true', help='with --truth-from: replace a bag at --out')


def run(args: argparse.Namespace) -> int:
    from ..sim.scenario import load_scenario
    from .simulate import default_scenario_path

    scenario = load_scenario(args.scenario if args.scenario is not None else default_scenario_path())
    out = Path(args.out)
    if args.truth_from is not None:
        if (out.exists() or out.is_symlink()) and not args.overwrite:
            raise BagError(f'{out} already exists; choose another --out or pass --overwrite')
        from ..sim.gazebo_truth import write_gazebo_truth

        counts = write_gazebo_truth(args.truth_from, scenario, out, overwrite=args.overwrite)
        print(f'wrote {out}: {sum(counts.values())} truth messages on {len(counts)} topics '
              f'from {args.truth_from}')
        return 0

    from ..app.platoon import default_config_path
    from ..sim.gazebo import export_gazebo

    files = export_gazebo(scenario, out, args.config if args.config is not None else default_config_path())
    print(f'wrote {files.out_dir}: {files.world.name}, {files.bridge.name}, {files.params.name}, '
          f'{files.motion.name}, {files.trajectories.name}, {files.readme.name} ({scenario.name})')
    return 0
