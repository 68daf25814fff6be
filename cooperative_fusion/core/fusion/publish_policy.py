"""When the fusion publishes the common grid between its heartbeats: on new evidence, rate-limited, with a deadline.

The fusion node publishes on a heartbeat timer (``publish_rate_hz``, fixed phase: a grid at
those instants whatever arrives, so the decay shows), asks :meth:`PublishPolicy.evidence` after
each fused evidence grid and :meth:`PublishPolicy.due` on a short check timer, and tells
:meth:`PublishPolicy.published` of every grid. Stamps are integer nanoseconds of one clock
(the node's common time; sim time in lock-step).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class PublishPolicyConfig:
    """min_interval_ns : shortest time between a grid and one for new evidence (rate limit); None: evidence
        does not trigger a grid (heartbeat and deadline only), ns
    max_delay_ns : deadline: fused evidence is in a grid at most this long after the oldest evidence not yet
        published, whatever the rate limit, ns
    """

    min_interval_ns: int | None = 20_000_000
    max_delay_ns: int = 50_000_000

    def __post_init__(self) -> None:
        if self.min_interval_ns is not None and self.min_interval_ns < 0:
            raise ConfigError(f'min_interval_ns must be >= 0 or None, got {self.min_interval_ns!r}')
        if self.max_delay_ns < 0:
            raise ConfigError(f'max_delay_ns must be >= 0, got {self.max_delay_ns!r}')


class PublishPolicy:
    """Publish decisions for new evidence (module docstring). Rules, at ``now_ns``:

    * nothing new: no grid (the heartbeat's);
    * evidence fused and no grid yet: publish;
    * evidence fused and at least ``min_interval_ns`` since the last grid: publish (at once on arrival, or at
      the first check after the rate limit has passed);
    * evidence waiting ``max_delay_ns`` or longer: publish (the deadline beats the rate limit).
    """

    def __init__(self, config: PublishPolicyConfig = PublishPolicyConfig()) -> None:
        self.config = config
        self.last_ns: int | None = None        # the last grid's time
        self.pending_ns: int | None = None     # the oldest fused evidence not yet in a grid (its fusion time)

    @property
    def holding(self) -> bool:
        """True while fused evidence waits for a grid (only then can :meth:`due` say True)."""
        return self.pending_ns is not None

    def evidence(self, now_ns: int) -> bool:
        """Evidence was fused at ``now_ns``: True when a grid should go out now."""
        if self.pending_ns is None:
            self.pending_ns = int(now_ns)
        return self.due(now_ns)

    def due(self, now_ns: int) -> bool:
        """A check at ``now_ns`` (timer): True when a grid should go out now for evidence not yet in one."""
        if self.pending_ns is None:
            return False
        if self.last_ns is None:
            return True
        cfg, now = self.config, int(now_ns)
        return ((cfg.min_interval_ns is not None and now - self.last_ns >= cfg.min_interval_ns)
                or now - self.pending_ns >= cfg.max_delay_ns)

    def published(self, now_ns: int) -> None:
        """A grid went out at ``now_ns``: everything fused so far is in it."""
        self.last_ns = int(now_ns)
        self.pending_ns = None

    def next_due_ns(self) -> int | None:
        """When held evidence is due at the latest, ns (None: nothing held, or no grid yet)."""
        if self.last_ns is None or self.pending_ns is None:
            return None
        cfg = self.config
        due = self.pending_ns + cfg.max_delay_ns
        if cfg.min_interval_ns is not None:
            due = min(due, max(self.last_ns + cfg.min_interval_ns, self.pending_ns))
        return due
