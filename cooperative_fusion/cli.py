"""The ``cooperative-fusion`` command.

Each subcommand lives in its own module, which provides ``add_arguments(parser)``
and ``run(args) -> int``; this file only wires them up, importing a module
only when its subcommand runs (ROS and open3d imports are slow).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .core.errors import CooperativeFusionError
from .ros.signals import take_sigint

#: subcommand -> (module, one-line help). Add a row when a subcommand lands.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    'simulate': ('cooperative_fusion.commands.simulate',
                 'Simulate a platoon scenario into a rosbag2 (mcap) with ground truth.'),
    'replay': ('cooperative_fusion.commands.replay',
               'Publish a rosbag2 with its recorded timing and /clock.'),
    'run': ('cooperative_fusion.commands.run',
            'Run the platoon (vehicles, fusion, twin) in one process, on a bag or on live topics.'),
    'demo': ('cooperative_fusion.commands.demo',
             'Simulate, run and evaluate a scenario; leave bags, report and pictures in DIR.'),
    'evaluate': ('cooperative_fusion.commands.evaluate',
                 'Compare a result bag with the ground truth of a simulated bag and write a JSON report.'),
    'export-gazebo': ('cooperative_fusion.commands.export_gazebo',
                      'Write a scenario as a Gazebo world (SDF 1.9) and ros_gz_bridge config.'),
    'topics': ('cooperative_fusion.commands.topics', 'List live topics with type, publisher count and rate.'),
    'echo': ('cooperative_fusion.commands.echo', 'Print a one-line summary of every message on a live topic.'),
    'record': ('cooperative_fusion.commands.record', 'Record live topics into a rosbag2 (mcap) until Ctrl-C.'),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='cooperative-fusion',
        description='Cooperative perception for vehicle platoons: simulate, replay, run, evaluate.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    take_sigint()                 # Ctrl-C / kill -INT stops every command (ros/signals.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except CooperativeFusionError as exc:
        print(f'cooperative-fusion {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'cooperative-fusion {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
