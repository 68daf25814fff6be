"""``cooperative-fusion replay BAG``: publish a recorded bag with its timing and /clock (``app.player``)."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ..core.errors import ConfigError
from ..app.player import DEFAULT_CLOCK_HZ, replay


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', type=Path, help='rosbag2 directory (mcap or sqlite3) or a .mcap/.db3 file')
    parser.add_argument('--rate', type=float, default=1.0,
                        help='replay speed factor (default 1.0 = recorded timing)')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC', default=None,
                        help='replay only these topics (default: all)')
    parser.add_argument('--wait-for-subscribers', type=float, default=0.0, metavar='S',
                        help='before playing, wait up to S seconds until every topic has a subscriber')
    parser.add_argument('--clock-subscribers', type=int, default=1, metavar='N',
                        help='with --wait-for-subscribers, wait for N subscribers of /clock (default 1; every '
                             'node on sim time subscribes: one that matches late has no time for the first data)')
    parser.add_argument('--clock-hz', type=float, default=DEFAULT_CLOCK_HZ, metavar='HZ',
                        help=f'publish /clock at most HZ times per second of bag time, just before a message '
                             f'(default {DEFAULT_CLOCK_HZ:g}; 0 = before every message; every use_sim_time node '
                             f'pays a Python callback per tick)')


def run(args: argparse.Namespace) -> int:
    import rclpy

    if not (math.isfinite(args.rate) and args.rate > 0):
        raise ConfigError(f'--rate must be a finite number > 0, got {args.rate}')
    if args.clock_subscribers < 1:
        raise ConfigError(f'--clock-subscribers must be >= 1, got {args.clock_subscribers}')
    if not (math.isfinite(args.clock_hz) and args.clock_hz >= 0):
        raise ConfigError(f'--clock-hz must be a finite number >= 0, got {args.clock_hz}')
    start = time.monotonic()
    rclpy.init()
    try:
        count = replay(args.bag, rate=args.rate, topics=args.topics,
                       wait_for_subscribers_s=args.wait_for_subscribers, clock_hz=args.clock_hz,
                       clock_subscribers=args.clock_subscribers)
        # rclpy's SIGINT handler shuts the context down; replay() then stops early and returns.
        # That is an interruption too, even when no KeyboardInterrupt reached this thread.
        interrupted = not rclpy.ok()
    finally:
        if rclpy.ok():
            rclpy.shutdown()
    if interrupted:
        print(f'replayed {count} messages from {args.bag} before the interruption', file=sys.stderr)
        raise KeyboardInterrupt
    print(f'replayed {count} messages from {args.bag} in {time.monotonic() - start:.2f} s')
    return 0
