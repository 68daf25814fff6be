"""``cooperative-fusion echo TOPIC``: one summary line per message (``app.introspect``)."""
from __future__ import annotations

import argparse
import math
import sys

from ..core.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('topic', help='topic to echo (e.g. /cooperative/grid)')
    parser.add_argument('--count', type=int, default=0, metavar='N',
                        help='exit after N messages (default 0: until Ctrl-C)')
    parser.add_argument('--timeout', type=float, default=math.inf, metavar='S',
                        help='give up (exit 1) when the topic has no publisher after S seconds (default: wait)')


def run(args: argparse.Namespace) -> int:
    from ..app.introspect import GraphSession, summarize, topic_name
    from ..ros.bag import message_class

    if args.count < 0:
        raise ConfigError(f'--count must be >= 0, got {args.count}')
    if not (args.timeout > 0):
        raise ConfigError(f'--timeout must be > 0, got {args.timeout}')
    topic = topic_name(args.topic)
    with GraphSession('echo') as session:
        msgtype = session.wait_for_topic(topic, 0.5)
        if msgtype is None and not session.stopped.is_set():
            print(f'waiting for {topic} to be published...', file=sys.stderr, flush=True)
            msgtype = session.wait_for_topic(topic, args.timeout)
        if session.stopped.is_set():
            raise KeyboardInterrupt
        if msgtype is None:
            print(f'cooperative-fusion echo: {topic} has no publisher after {args.timeout:g} s', file=sys.stderr)
            return 1
        cls = message_class(msgtype)
        seen = [0]

        def on_message(msg: object) -> None:
            if args.count and seen[0] >= args.count:
                return
            seen[0] += 1
            print(summarize(msgtype, msg), flush=True)

        session.node.create_subscription(cls, topic, on_message, session.subscription_qos(topic, latched=True))
        session.spin_for(math.inf, lambda: bool(args.count) and seen[0] >= args.count)
        if session.stopped.is_set():
            raise KeyboardInterrupt
    return 0
