"""What the bad-input property tests of the three nodes share.

Each test module builds one fixed valid stream for its node, lets hypothesis
insert garbage into it (:func:`interleave`), runs the node on both under the
lock-step runner (:func:`run_node`: no DDS timing, so the runs are
deterministic) and asks that the outputs are byte-for-byte those of the valid
stream alone and that each garbage message is exactly one drop under a cause
that names it (:func:`check_drops`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, settings
from rclpy.node import Node

from cooperative_fusion.app.lockstep import LockstepRunner, published_message

MS = 1_000_000
#: A far-future stamp that still fits the int32 seconds of a ROS stamp (year 2100 does not).
YEAR_2033_NS = 2_000_000_000 * 1_000_000_000
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: (topic, message, sim time in ns) in feed order.
Stream = list[tuple[str, Any, int]]
#: (topic, header stamp in ns, fingerprint) of each recorded output.
Outputs = list[tuple[str, int, bytes]]


def stamp_ns(msg: Any) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@dataclass(frozen=True)
class Garbage:
    """One bad message; ``msg`` None: a second delivery of the topic's latest valid message."""
    kind: str
    topic: str
    msg: Any
    causes: frozenset[str]          # acceptable drop causes for this one message

    def __repr__(self) -> str:       # hypothesis prints failing examples with this
        header = getattr(self.msg, 'header', None)
        stamp = '' if header is None else f', {header.stamp.sec}.{header.stamp.nanosec:09d}'
        return f'Garbage({self.kind}, {self.topic}{stamp})'


class Case(tuple):
    """(stream, garbage fed); printed as the garbage (the stream is long)."""

    def __repr__(self) -> str:
        return f'Case({self[1]})'


def interleave(valid: Stream, garbage: Sequence[Garbage], slots: Sequence[int]) -> Case:
    """``valid`` with ``garbage[i]`` fed right after message ``slots[i]`` (sorted), at its sim time.

    A duplicate (``msg`` None) becomes the latest valid message of its topic; one
    before any such message is left out. The case lists the garbage actually fed.
    """
    out: Stream = []
    fed: list[Garbage] = []
    latest: dict[str, Any] = {}
    gi = 0
    for i, (topic, msg, t) in enumerate(valid):
        out.append((topic, msg, t))
        latest[topic] = msg
        while gi < len(garbage) and slots[gi] == i:
            g = garbage[gi]
            gi += 1
            if g.msg is None:
                g = replace(g, msg=latest.get(g.topic))
            if g.msg is not None:
                out.append((g.topic, g.msg, t))
                fed.append(g)
    return Case((out, fed))


def run_node(node: Node, stream: Stream, *, start_ns: int, end_ns: int, outputs: Sequence[str],
             fingerprint: Callable[[str, Any], bytes],
             then: Callable[[LockstepRunner], Any] | None = None) -> tuple[Outputs, Any]:
    """Feed ``stream`` to ``node`` in lock-step up to ``end_ns``, then ``then(runner)``; destroy the node.

    Returns the recorded ``outputs`` topics and what ``then`` returned. An exception
    escaping a callback fails the test here. The node's counters stay readable.
    """
    recorded: Outputs = []

    def record(topic: str, msg: Any, t: int) -> None:
        if topic in outputs:
            msg = published_message(msg)    # the fusion publishes its grid as CDR bytes
            recorded.append((topic, stamp_ns(msg), fingerprint(topic, msg)))
    try:
        runner = LockstepRunner([node], record, publish_to_dds=False, start_ns=start_ns)
        for topic, msg, t in stream:
            runner.feed(topic, msg, t)
        runner.advance_to(end_ns)
        return recorded, (then(runner) if then is not None else None)
    finally:
        node.destroy_node()


def once(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``make(ctx)`` computed on the first call only (the clean run every example is compared with)."""
    cache: dict[str, Any] = {}

    def get(ctx: Any) -> Any:
        if 'value' not in cache:
            cache['value'] = make(ctx)
        return cache['value']
    return get


def assert_same_outputs(got: Outputs, base: Outputs, garbage: Sequence[Garbage]) -> None:
    assert [(topic, t) for topic, t, _ in got] == [(topic, t) for topic, t, _ in base], garbage
    for (topic, t, a), (_, _, b) in zip(got, base):
        assert a == b, f'{topic} at {t} differs; garbage {garbage}'


def check_drops(got: dict[str, int], base: dict[str, int], garbage: Sequence[Garbage]) -> None:
    """The drops beyond the clean run's: none internal, one per garbage message, each under its causes."""
    delta = Counter(got)
    delta.subtract(base)
    delta = +delta
    assert not [c for c in delta if 'internal' in c], f'internal error (a bug): {dict(delta)}'
    assert sum(delta.values()) == len(garbage), \
        f'{sum(delta.values())} drops counted for {len(garbage)} garbage messages: {dict(delta)}; {garbage}'
    allowed = frozenset().union(*(g.causes for g in garbage))
    assert set(delta) <= allowed, f'unexpected causes {set(delta) - allowed}; {dict(delta)}; {garbage}'
    for cause in delta:            # a cause only one kind of garbage can have is counted once per message
        owners = [g for g in garbage if g.causes == frozenset({cause})]
        if owners and all(len(g.causes) == 1 for g in garbage if cause in g.causes):
            assert delta[cause] == len(owners), (cause, dict(delta), garbage)
