"""``cooperative-fusion record OUT_BAG [TOPIC ...]``: live topics into mcap until Ctrl-C (``app.introspect``)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..core.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('out', type=Path, metavar='OUT_BAG', help='rosbag2 directory to write (mcap storage)')
    parser.add_argument('topics', nargs='*', metavar='TOPIC',
                        help='topics to record (default: every topic, including ones that appear later)')
    parser.add_argument('--overwrite', action='store_true', help='replace OUT_BAG if it is a rosbag2 directory')
    parser.add_argument('--use-sim-time', action='store_true', help='log time from /clock instead of the wall clock')
    parser.add_argument('--duration', type=float, default=math.inf, metavar='S',
                        help='stop after S seconds (default: until Ctrl-C)')
    parser.add_argument('--quiet', action='store_true', help='no progress lines on stderr')


def run(args: argparse.Namespace) -> int:
    from rclpy.parameter import Parameter

    from ..app.introspect import GraphSession, record, topic_name

    if not (args.duration > 0):
        raise ConfigError(f'--duration must be > 0, got {args.duration}')
    topics = [topic_name(t) for t in args.topics] or None

    def info(text: str) -> None:
        if not args.quiet:
            print(f'record: {text}', file=sys.stderr, flush=True)

    with GraphSession('record') as session:
        if args.use_sim_time:
            session.node.set_parameters([Parameter('use_sim_time', Parameter.Type.BOOL, True)])
        count, per_topic = record(session, args.out, topics, overwrite=args.overwrite, discover_period_s=0.5,
                                  max_duration_s=args.duration, info=info)
        interrupted = session.stopped.is_set()
    print(f'recorded {count} messages on {len(per_topic)} topics to {args.out}', file=sys.stderr, flush=True)
    if interrupted:
        raise KeyboardInterrupt       # the bag is closed: exit 130 like every command
    return 0
