"""A per-topic digest of a rosbag2 directory: to check that a change leaves a run's output byte-identical.

Usage::

    python scripts/bag_digest.py BAG [--skip TOPIC ...] [--against DIGEST.txt]

Prints one line per topic: ``TOPIC COUNT SHA256[:16]`` of the topic's serialized messages in log order.
``/diagnostics`` is skipped by default: its statuses carry CPU and wall-time figures (``cycle_ms.*``,
``processing_ms.*``, ``twin_speedup``) that differ on every run of the same code. ``--against`` compares
with a digest printed before (for example by main's checkout on the same input bag) and exits 1 when any
topic differs, naming it. Typical check of a change that should not alter behaviour::

    cooperative-fusion simulate --out default.bag
    cooperative-fusion run --bag default.bag --record before --quiet    # on main
    python scripts/bag_digest.py before > before.txt
    cooperative-fusion run --bag default.bag --record after --quiet     # with the change
    python scripts/bag_digest.py after --against before.txt
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from rosbags.rosbag2 import Reader

DEFAULT_SKIP = ('/diagnostics',)


def digest(bag: Path, skip: tuple[str, ...] = DEFAULT_SKIP) -> dict[str, tuple[int, str]]:
    """{topic: (message count, first 16 hex digits of the sha256 of its messages' bytes in log order)}."""
    sums: dict[str, list] = {}
    with Reader(bag) as reader:
        for conn, _t, raw in reader.messages():
            if conn.topic in skip:
                continue
            entry = sums.setdefault(conn.topic, [0, hashlib.sha256()])
            entry[0] += 1
            entry[1].update(raw)
    return {topic: (n, h.hexdigest()[:16]) for topic, (n, h) in sorted(sums.items())}


def format_digest(d: dict[str, tuple[int, str]]) -> str:
    return ''.join(f'{topic} {n} {h}\n' for topic, (n, h) in d.items())


def parse_digest(text: str) -> dict[str, tuple[int, str]]:
    out = {}
    for line in text.splitlines():
        if line.strip():
            topic, n, h = line.split()
            out[topic] = (int(n), h)
    return out


def differences(new: dict[str, tuple[int, str]], old: dict[str, tuple[int, str]]) -> list[str]:
    """One line per topic that is new, gone, or holds other messages."""
    lines = []
    for topic in sorted(set(new) | set(old)):
        if topic not in old:
            lines.append(f'{topic}: only in this bag')
        elif topic not in new:
            lines.append(f'{topic}: missing from this bag')
        elif new[topic] != old[topic]:
            lines.append(f'{topic}: {old[topic][0]} -> {new[topic][0]} messages, {old[topic][1]} -> {new[topic][1]}')
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('bag', type=Path, help='rosbag2 directory')
    ap.add_argument('--skip', action='append', metavar='TOPIC',
                    help='leave this topic out (repeatable; default: /diagnostics)')
    ap.add_argument('--against', type=Path, metavar='DIGEST',
                    help='a digest printed before: list the topics that differ, exit 1 if any')
    args = ap.parse_args(argv)
    if not args.bag.is_dir():
        ap.error(f'{args.bag}: not a rosbag2 directory')
    d = digest(args.bag, tuple(args.skip) if args.skip else DEFAULT_SKIP)
    if args.against is None:
        sys.stdout.write(format_digest(d))
        return 0
    diff = differences(d, parse_digest(args.against.read_text()))
    print('\n'.join(diff) if diff else f'identical: {len(d)} topics')
    return 1 if diff else 0


if __name__ == '__main__':
    sys.exit(main())
