"""``cooperative-fusion run``: the platoon's nodes in one process, on a bag or on live topics.

``--bag`` without ``--rate`` is deterministic (lock-step); ``--bag --rate R``
replays on live timing; no ``--bag`` runs on the live sensor topics until
Ctrl-C. See :mod:`cooperative_fusion.app.bringup` (lock-step) and
:mod:`cooperative_fusion.app.live`. Top-level imports stay light: the CLI
imports this module to build its parser.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError


def default_jobs(sample_s: float = 0.1, stat: str = '/proc/stat') -> int:
    """``--jobs`` by default: 2 (the vehicle nodes in a second process) when a core is free, else 1.

    Free: over ``sample_s`` seconds, the machine's idle time (``stat``'s cpu line) adds up to at least
    one core. A second process gains only on a free core: on a busy machine it shares its session's
    CPU share with the first (autogroup scheduling) and costs about 14 % more CPU in all. Without
    ``stat`` (not Linux): 2 with 2 cores or more.
    """
    cores = os.cpu_count() or 1
    if cores < 2:
        return 1
    try:
        before = _cpu_times(stat)
        time.sleep(sample_s)
        after = _cpu_times(stat)
    except (OSError, ValueError, IndexError):
        return 2
    total = sum(after) - sum(before)
    idle = (after[3] + after[4]) - (before[3] + before[4])     # idle + iowait
    return 2 if total > 0 and idle / total * cores >= 1.0 else 1


def _cpu_times(stat: str) -> list[int]:
    """The aggregate ``cpu`` line of ``/proc/stat``: user, nice, system, idle, iowait, ... (clock ticks)."""
    with open(stat) as f:
        fields = f.readline().split()
    if fields[0] != 'cpu':
        raise ValueError(f'{stat}: no cpu line')
    return [int(v) for v in fields[1:]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--config', type=Path, default=None, metavar='FILE',
                        help='bringup config (default: config/platoon.yaml of the package)')
    parser.add_argument('--bag', type=Path, default=None, metavar='BAG',
                        help='input rosbag2 (default: run on the live sensor topics until Ctrl-C)')
    parser.add_argument('--rate', type=float, default=None, metavar='R',
                        help='with --bag: replay on live timing at R x recorded speed '
                             '(default: deterministic lock-step, as fast as the nodes go)')
    parser.add_argument('--record', type=Path, default=None, metavar='OUT_BAG',
                        help="write the config's record topics to this rosbag2 directory")
    parser.add_argument('--overwrite', action='store_true', help='replace an existing bag at --record')
    parser.add_argument('--faults', type=Path, default=None, metavar='FILE',
                        help='fault injection file (config/faults/*.yaml): a fault_injector relay per vehicle it names')
    parser.add_argument('--quiet', action='store_true',
                        help='warnings and errors only: no progress lines, the nodes log at WARN and above '
                             '(the summary line is still printed)')
    parser.add_argument('--jobs', type=int, default=None, metavar='N',
                        help='with --bag, lock-step: N >= 2 runs the vehicle nodes in a second process, same '
                             'result bag; 1: one process (default: 2 when a core is idle)')
    parser.add_argument('--strict', action='store_true',
                        help='an unknown parameter in a params file is an error (-p strict_parameters:=true '
                             'for every node), not a warning')


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from ..app import bringup, live
    from ..app.platoon import load_platoon_config

    if args.rate is not None and args.bag is None:
        raise ConfigError('--rate needs --bag (live runs follow the sensors\' own timing)')
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        raise ConfigError(f'--rate must be a finite number > 0, got {args.rate}')
    jobs = getattr(args, 'jobs', None)
    if jobs is not None and jobs < 1:
        raise ConfigError(f'--jobs must be >= 1, got {jobs}')
    if args.record is not None and args.record.exists() and not args.overwrite:
        raise ConfigError(f'--record {args.record} already exists; choose another path or pass --overwrite')
    # Validate before starting anything, so a bad file fails fast.
    load_platoon_config(args.config)
    bringup.load_faults(args.faults)
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)   # clean up on kill as on Ctrl-C
    quiet, strict = getattr(args, 'quiet', False), getattr(args, 'strict', False)
    try:
        with bringup.node_log_level(quiet):
            if args.bag is None:
                if not quiet:
                    print('run: live on the sensor topics; Ctrl-C to stop', file=sys.stderr)
                summary = live.run_live(args.config, args.record, faults=args.faults, overwrite=args.overwrite,
                                        strict=strict)
            elif args.rate is None:
                summary = bringup.run_bag_lockstep(args.config, args.bag, args.record, progress=not quiet,
                                                   faults=args.faults, overwrite=args.overwrite, strict=strict,
                                                   jobs=jobs or default_jobs(), quiet=quiet)
            else:
                summary = live.run_bag_live(args.config, args.bag, args.rate, args.record, progress=not quiet,
                                            faults=args.faults, overwrite=args.overwrite, strict=strict)
    except KeyboardInterrupt:
        print('run: interrupted; nodes stopped' + (f', {args.record} closed' if args.record else ''),
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f'run: {summary.line()}')
    return 0
