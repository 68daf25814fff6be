"""``cooperative-fusion replay BAG``: publish a recorded bag with its timing and /clock, or on the
wall clock with shifted stamps (``--wall-clock``) (``app.player``)."""
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
    parser.add_argument('--wall-clock', action='store_true',
                        help='as on a vehicle: no /clock, rate 1, every stamp shifted by one offset so that it is '
                             '"now" on the system clock when sent (nodes run without use_sim_time); topics whose '
                             'stamps cannot be shifted (MarkerArray) are not replayed')
    parser.add_argument('--topics', nargs='+', metavar='TOPIC', default=None,
                        help='replay only these topics (default: all)')
    parser.add_argument('--wait-for-subscribers', type=float, default=0.0, metavar='S',
                        help='before playing, wait up to S seconds until every topic has a subscriber')
    parser.add_argument('--clock-subscribers', type=int, default=None, metavar='N',
                        help='with --wait-for-subscribers, wait for N subscribers of /clock (default 1; every '
                             'node on sim time subscribes: one that matches late has no time for the first data)')
    parser.add_argument('--clock-hz', type=float, default=None, metavar='HZ',
                        help=f'publish /clock at most HZ times per second of bag time, just before a message '
                             f'(default {DEFAULT_CLOCK_HZ:g}; 0 = before every message; every use_sim_time node '
                             f'pays a Python callback per tick)')


def run(args: argparse.Namespace) -> int:
    import rclpy

    if not (math.isfinite(args.rate) and args.rate > 0):
        raise ConfigError(f'--rate must be a finite number > 0, got {args.rate}')
    if args.wall_clock:
        if args.rate != 1.0:
            raise ConfigError(f'--wall-clock replays at the recorded timing only: --rate {args.rate:g} is not 1')
        if args.clock_hz is not None or args.clock_subscribers is not None:
            raise ConfigError('--wall-clock publishes no /clock: --clock-hz and --clock-subscribers do not apply')
    clock_hz = DEFAULT_CLOCK_HZ if args.clock_hz is None else args.clock_hz
    clock_subscribers = 1 if args.clock_subscribers is None else args.clock_subscribers
    if clock_subscribers < 1:
        raise ConfigError(f'--clock-subscribers must be >= 1, got {clock_subscribers}')
    if not (math.isfinite(clock_hz) and clock_hz >= 0):
        raise ConfigError(f'--clock-hz must be a finite number >= 0, got {clock_hz}')
    offset: list[int] = []
    start = time.monotonic()
    rclpy.init()
    try:
        count = replay(args.bag, rate=args.rate, topics=args.topics,
                       wait_for_subscribers_s=args.wait_for_subscribers, clock_hz=clock_hz,
                       clock_subscribers=clock_subscribers, wall_clock=args.wall_clock, on_offset=offset.append)
        # rclpy's SIGINT handler shuts the context down; replay() then stops early and returns.
        # That is an interruption too, even when no KeyboardInterrupt reached this thread.
        interrupted = not rclpy.ok()
    finally:
        if rclpy.ok():
            rclpy.shutdown()
    if interrupted:
        print(f'replayed {count} messages from {args.bag} before the interruption', file=sys.stderr)
        raise KeyboardInterrupt
    shifted = f'; stamps shifted by {offset[0]} ns' if offset else ''
    print(f'replayed {count} messages from {args.bag} in {time.monotonic() - start:.2f} s{shifted}')
    return 0
