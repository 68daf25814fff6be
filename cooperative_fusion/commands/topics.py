"""``cooperative-fusion topics``: every live topic with its type, publishers and rate (``app.introspect``)."""
from __future__ import annotations

import argparse
import math

from ..core.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--duration', type=float, default=2.0, metavar='S',
                        help='measure rates over S seconds (default 2; 0 lists types and publishers only)')
    parser.add_argument('--discovery', type=float, default=1.5, metavar='S',
                        help='look for topics S seconds before measuring (default 1.5; topics found later '
                             'are measured from then on)')


def run(args: argparse.Namespace) -> int:
    from ..app.introspect import GraphSession, format_topics, measure_topics

    for flag, value in (('--duration', args.duration), ('--discovery', args.discovery)):
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f'{flag} must be a finite number >= 0, got {value}')
    with GraphSession('topics') as session:
        rows = measure_topics(session, args.discovery, args.duration)
        if session.stopped.is_set():
            raise KeyboardInterrupt
    print(format_topics(rows, measured=args.duration > 0), flush=True)
    return 0
