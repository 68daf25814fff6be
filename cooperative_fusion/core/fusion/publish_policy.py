"""When the fusion publishes the common grid: on new evidence, rate-limited, with a deadline and a heartbeat.

The fusion node asks :meth:`PublishPolicy.evidence` after each fused evidence grid and
:meth:`PublishPolicy.due` on a short check timer, and tells :meth:`PublishPolicy.published`.
Stamps are integer nanoseconds of one clock (the node's common time; sim time in lock-step).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class PublishPolicyConfig:
    """heartbeat_ns : longest time between two grids when no evidence comes (decay still shows), ns
    min_interval_ns : shortest time between two grids (rate limit); None: evidence does not trigger a
        grid (grids at the heartbeat and the deadline only), ns
    max_delay_ns : deadline: fused evidence is in a grid at most this long after the oldest evidence not yet
        published, whatever the rate limit, ns
    """

    heartbeat_ns: int = 100_000_000
    min_interval_ns: int | None = 20_000_000
    max_delay_ns: int = 50_000_000

    def __post_init__(self) -> None:
        if self.heartbeat_ns <= 0:
            raise ConfigError(f'heartbeat_ns must be positive, got {self.heartbeat_ns!r}')
        if self.min_interval_ns is not None and self.min_interval_ns < 0:
            raise ConfigError(f'min_interval_ns must be >= 0 or None, got {self.min_interval_ns!r}')
        if self.max_delay_ns < 0:
            raise ConfigError(f'max_delay_ns must be >= 0, got {self.max_delay_ns!r}')


class PublishPolicy:
    """Publish decisions of the fusion (module docstring). Rules, at ``now_ns``:

    * no grid yet: publish;
    * evidence fused and at least ``min_interval_ns`` since the last grid: publish (at once on arrival, or at
      the first check after the rate limit has passed);
    * evidence waiting ``max_delay_ns`` or longer: publish (the deadline beats the rate limit);
    * ``heartbeat_ns`` since the last grid: publish (nothing new: the decay shows).
    """

    def __init__(self, config: PublishPolicyConfig = PublishPolicyConfig()) -> None:
        self.config = config
        self.last_ns: int | None = None        # the last grid's time
        self.pending_ns: int | None = None     # the oldest fused evidence not yet in a grid (its fusion time)

    def evidence(self, now_ns: int) -> bool:
        """Evidence was fused at ``now_ns``: True when a grid should go out now."""
        if self.pending_ns is None:
            self.pending_ns = int(now_ns)
        return self._due(int(now_ns), on_evidence=True)

    def due(self, now_ns: int) -> bool:
        """A check at ``now_ns`` (timer): True when a grid should go out now."""
        return self._due(int(now_ns), on_evidence=False)

    def published(self, now_ns: int) -> None:
        """A grid went out at ``now_ns``: everything fused so far is in it."""
        self.last_ns = int(now_ns)
        self.pending_ns = None

    def next_due_ns(self) -> int | None:
        """The latest time the next grid is due without further evidence, ns (None before the first grid)."""
        if self.last_ns is None:
            return None
        cfg = self.config
        due = self.last_ns + cfg.heartbeat_ns
        if self.pending_ns is not None:
            due = min(due, self.pending_ns + cfg.max_delay_ns)
            if cfg.min_interval_ns is not None:
                due = min(due, max(self.last_ns + cfg.min_interval_ns, self.pending_ns))
        return due

    def _due(self, now: int, on_evidence: bool) -> bool:
        if self.last_ns is None:
            return True
        cfg = self.config
        since_last = now - self.last_ns
        if self.pending_ns is not None:
            if cfg.min_interval_ns is not None and since_last >= cfg.min_interval_ns:
                return True
            if now - self.pending_ns >= cfg.max_delay_ns:
                return True
        return not on_evidence and since_last >= cfg.heartbeat_ns
