"""PublishPolicy: a grid on new evidence, rate-limited, with a deadline (sim time, no ROS)."""
from __future__ import annotations

import pytest

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.publish_policy import PublishPolicy, PublishPolicyConfig

MS = 1_000_000
T0 = 10_000 * MS


def policy(**kw) -> PublishPolicy:
    p = PublishPolicy(PublishPolicyConfig(**{'min_interval_ns': 20 * MS, 'max_delay_ns': 50 * MS, **kw}))
    p.published(T0)
    return p


def run(p: PublishPolicy, evidence_ms: list[float], until_ms: float, check_ms: float = 1.0) -> list[float]:
    """Drive ``p`` like the node: evidence at the given times (ms after T0), a check every ``check_ms``;
    the times (ms after T0) at which a grid went out."""
    out: list[float] = []
    checks = [(k * check_ms, 1) for k in range(1, int(until_ms / check_ms) + 1)]
    events = sorted([(t, 0) for t in evidence_ms] + checks)
    for t, kind in events:
        now = T0 + int(round(t * MS))
        if (p.evidence(now) if kind == 0 else p.due(now)):
            p.published(now)
            out.append(t)
    return out


def test_the_first_evidence_goes_out_at_once_and_nothing_without_evidence():
    p = PublishPolicy()
    assert not p.due(T0) and p.next_due_ns() is None
    assert p.evidence(T0) and p.due(T0)


def test_evidence_after_the_rate_limit_goes_out_on_arrival():
    p = policy()
    assert not p.due(T0 + 19 * MS)
    assert p.evidence(T0 + 20 * MS)                     # 20 ms since the last grid: publish now
    p.published(T0 + 20 * MS)
    assert p.pending_ns is None


def test_evidence_inside_the_rate_limit_is_held_until_it_has_passed():
    p = policy()
    assert not p.evidence(T0 + 5 * MS)
    assert p.next_due_ns() == T0 + 20 * MS
    assert not p.due(T0 + 19 * MS)
    assert p.due(T0 + 20 * MS)


def test_the_deadline_beats_the_rate_limit():
    p = policy(min_interval_ns=80 * MS, max_delay_ns=30 * MS)
    assert not p.evidence(T0 + 10 * MS)
    assert p.next_due_ns() == T0 + 40 * MS
    assert not p.due(T0 + 39 * MS)
    assert p.due(T0 + 40 * MS)                          # 30 ms after the held evidence, 40 after the last grid


def test_a_burst_gives_one_grid_now_and_one_at_the_rate_limit_not_a_storm():
    # 12 vehicles' evidence within 10 ms, 25 ms after the last grid.
    grids = run(policy(), [25.0 + k * 10.0 / 12 for k in range(12)], until_ms=100.0)
    assert grids == [25.0, 45.0]


def test_without_evidence_there_is_nothing_to_publish():
    p = policy()
    assert run(p, [], until_ms=350.0, check_ms=10.0) == [] and p.next_due_ns() is None


def test_evidence_waits_at_most_the_rate_limit_and_grids_never_come_closer():
    # 4 vehicles at 10 Hz on odd phases, checks every 10 ms.
    evidence = [phase + 100.0 * k for k in range(10) for phase in (3.0, 14.0, 15.5, 61.0)]
    grids = run(policy(), evidence, until_ms=1000.0, check_ms=10.0)
    assert min(b - a for a, b in zip(grids, grids[1:])) >= 20.0
    for t in evidence:
        first = min(g for g in grids if g >= t)
        assert first - t <= 20.0 + 10.0                 # rate limit + check period


def test_evidence_off_publishes_at_the_deadline_only():
    p = policy(min_interval_ns=None, max_delay_ns=60 * MS)
    assert not p.evidence(T0 + 50 * MS)
    assert not p.due(T0 + 109 * MS)
    assert p.due(T0 + 110 * MS)


def test_a_heartbeat_grid_takes_the_held_evidence_with_it():
    p = policy()
    assert not p.evidence(T0 + 5 * MS)
    p.published(T0 + 10 * MS)                           # the node's heartbeat
    assert not p.due(T0 + 30 * MS) and p.next_due_ns() is None


@pytest.mark.parametrize('kw, match', [({'min_interval_ns': -1}, 'min_interval_ns must be >= 0'),
                                       ({'max_delay_ns': -1}, 'max_delay_ns must be >= 0')])
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        PublishPolicyConfig(**kw)


def test_holding_while_and_only_while_evidence_waits_for_a_grid():
    p = policy()
    assert not p.holding and not p.due(T0 + 1000 * MS)     # nothing held: never due, however late
    assert not p.evidence(T0 + 5 * MS)                       # inside the rate limit: held
    assert p.holding
    assert p.due(T0 + 20 * MS)
    p.published(T0 + 20 * MS)
    assert not p.holding
