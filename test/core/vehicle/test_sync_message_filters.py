"""message_filters' synchroniser test cases (ros2/message_filters, test/test_approximate_time_policy.cpp
and test/test_exact_time_policy.cpp), as tables of input and expected sets, run against core's sync;
then the deliberate differences, each pinned.

An input is (stamp in seconds, stream index) in arrival order; a set is the tuple of its members'
stamps in stream order. Stream 0 is the reference. No slop bound (message_filters' default maximum
interval is unbounded), no silence and no late horizon, so only the policy itself is exercised.
"""
from __future__ import annotations

import pytest

from cooperative_fusion.core.vehicle.sync import ApproximateTimeSync, SyncConfig

S = 1_000_000_000
UNBOUNDED = 10 ** 15
NAMES = ('a', 'b', 'c', 'd')


def make(n_streams: int, queue_size: int, slop_ns: int = UNBOUNDED) -> ApproximateTimeSync:
    return ApproximateTimeSync(SyncConfig(
        streams=NAMES[:n_streams], reference='a', slop_ns=slop_ns, queue_size=queue_size,
        stream_timeout_ns=UNBOUNDED, late_horizon_ns=UNBOUNDED))


def feed(sync: ApproximateTimeSync, inputs) -> list[tuple]:
    """Offer (stamp_s, stream index) in order; the sets that came out, as stamps in seconds."""
    names = sync.config.streams
    out = []
    for k, (stamp_s, i) in enumerate(inputs):
        for st in sync.add(names[i], round(stamp_s * S), (names[i], stamp_s), k):
            out.append(tuple(st.members[s][0] / S for s in names))
    return out


# name, streams, queue size, input, expected sets -- message_filters' ApproxTimeSync cases
APPROXIMATE = [
    ('ExactMatch', 2, 10,
     [(0, 0), (0, 1), (3, 0), (3, 1), (6, 0), (6, 1)],
     [(0, 0), (3, 3), (6, 6)]),
    ('PerfectMatch', 2, 10,
     [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)],
     [(0, 1), (3, 4)]),
    ('ImperfectMatch', 2, 10,
     [(0, 0), (1, 1), (2, 0), (3, 0), (5, 1), (6, 0), (7, 1)],
     [(0, 1), (6, 5)]),
    ('Acceleration', 2, 10,
     [(0, 0), (7, 1), (12, 0), (15, 1), (17, 0), (18, 1)],
     [(12, 7), (17, 18)]),
    ('DroppedMessages, queue 1', 2, 1,
     [(0, 0), (1, 1), (3, 1), (4, 0), (7, 1), (8, 0), (10, 0), (11, 1), (13, 0), (14, 1)],
     [(4, 3), (10, 11)]),
    ('DroppedMessages, queue 2', 2, 2,
     [(0, 0), (1, 1), (3, 1), (4, 0), (7, 1), (8, 0), (10, 0), (11, 1), (13, 0), (14, 1)],
     [(0, 1), (4, 3), (8, 7), (10, 11)]),
    ('LongQueue', 2, 5,
     [(t, 0) for t in range(9)] + [(3, 1), (9, 0), (10, 0), (11, 0), (12, 0), (10, 1), (13, 0)],
     [(10, 10)]),
    ('DoublePublish', 2, 10,
     [(0, 0), (1, 1), (3, 1), (3, 0)],
     [(0, 1), (3, 3)]),
    ('FourTopics', 4, 10,
     [(0, 0), (1, 1), (2, 2), (3, 3), (5, 0), (5, 3), (6, 1), (6, 2), (8, 0), (9, 1), (10, 2),
      (11, 3), (10, 0), (13, 0), (14, 1)],
     [(0, 1, 2, 3), (5, 6, 6, 5), (10, 9, 10, 11)]),
    ('EarlyPublish', 4, 10,
     [(0, 0), (1, 1), (2, 2), (3, 3), (7, 0)],
     [(0, 1, 2, 3)]),
    # RateBound with A's bound 1.5 s: the bound never decides, so the sets are those without it
    ('RateBound 1.5', 2, 10,
     [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)],
     [(0, 1), (3, 4)]),
]


@pytest.mark.parametrize('name, n, queue_size, inputs, expected', APPROXIMATE,
                         ids=[c[0] for c in APPROXIMATE])
def test_message_filters_approximate_time_cases(name, n, queue_size, inputs, expected):
    assert feed(make(n, queue_size), inputs) == expected


def test_long_queue_drops_the_message_whose_partners_were_pushed_out():
    # LongQueue: a..i fill A's queue of 5 (a..d pushed out); j (3 s) on B would pair with d,
    # which is gone, so j is dropped instead of making the worse set (8 s, 10 s) later
    sync = make(2, 5)
    assert feed(sync, [(t, 0) for t in range(9)] + [(3, 1)]) == []
    assert sync.queued() == {'a': 5, 'b': 0}
    assert sync.stats['dropped.queue_overflow'] == 4 and sync.stats['dropped.unmatched'] == 1


def test_dropped_messages_queue_1_stats():
    sync = make(2, 1)
    feed(sync, APPROXIMATE[4][3])
    stats = sync.stats
    assert stats['sets'] == 2
    # every message is used, passed over, pushed out, or still queued
    assert 10 == 4 + stats['dropped.unmatched'] + stats['dropped.queue_overflow'] + sum(sync.queued().values())


def test_slop_is_message_filters_max_interval_duration():
    # ExactMatch-like streams 1 s apart with a 0.5 s bound: no admissible set, heads dropped
    sync = make(2, 10, slop_ns=S // 2)
    assert feed(sync, [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (6.25, 1), (9, 0)]) == [(6, 6.25)]
    assert sync.stats['dropped.unmatched'] == 4


# message_filters' ExactTime cases: slop 0
def test_exact_time_multiple_times():
    sync = make(3, 2, slop_ns=0)
    assert feed(sync, [(0, 0), (0.1, 1), (0.1, 0)]) == []
    assert feed(sync, [(0.1, 2)]) == [(0.1, 0.1, 0.1)]


def test_exact_time_queue_size():
    sync = make(3, 1, slop_ns=0)
    assert feed(sync, [(0, 0), (0, 1), (0.1, 1), (0, 1), (0, 2)]) == []


def test_exact_time_drop_counts_overflow():
    sync = make(2, 1, slop_ns=0)
    feed(sync, [(0, 0)])
    assert sync.stats['dropped.queue_overflow'] == 0
    feed(sync, [(0.1, 0)])
    assert sync.stats['dropped.queue_overflow'] == 1


def test_exact_time_event_in_event_out():
    sync = make(2, 2, slop_ns=0)
    assert sync.add('a', 4 * S, 'first', 0) == []
    (st,) = sync.add('b', 4 * S, 'second', 1)
    assert st.members == {'a': (4 * S, 'first'), 'b': (4 * S, 'second')} and st.stamp_ns == 4 * S


# deliberate differences

def test_no_inter_message_bound_the_last_set_waits_for_the_next_message():
    # message_filters' RateBound with A's bound 2 s also gives (6, 7) at C (7 s): A's next
    # message cannot be before 8 s. Without bounds, (6, 7) waits for A's next message.
    sync = make(2, 10)
    inputs = [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)]
    assert feed(sync, inputs) == [(0, 1), (3, 4)]
    assert feed(sync, [(9, 0)]) == [(6, 7)]


def test_proof_is_retried_on_every_message():
    # a waits with (4, 3, 3): b's and c's next messages might pair better with a 4. c's next
    # message (6) proves nothing beats it and the set goes out; message_filters only looks
    # again when b (the queue the search emptied) gets a message.
    sync = make(3, 10)
    assert feed(sync, [(4, 0), (7, 0), (3, 1), (3, 2)]) == []
    assert feed(sync, [(6, 2)]) == [(4, 3, 3)]


def test_late_messages_are_dropped():
    # message_filters would make (4, 6) of a message older than the last set; here a set's
    # reference stamp only grows, and a message older than it by more than the slop is late
    sync = make(2, 10, slop_ns=S)
    assert feed(sync, [(5, 0), (5, 1)]) == [(5, 5)]
    assert feed(sync, [(4, 0), (3.5, 1), (6, 1)]) == []
    assert sync.stats['dropped.late'] == 2
    assert sync.queued() == {'a': 0, 'b': 1}
