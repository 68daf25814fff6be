"""Approximate-time synchronisation of a vehicle's sensor streams (message_filters' policy, in core).

Records are plain ``(stamp_ns, payload)`` pairs; the caller passes its own clock ``now_ns``
(sim time or wall time: core never reads a clock). :class:`ApproximateTimeSync` gives the
sets message_filters' ``ApproximateTime`` gives (age penalty 0, ``slop_ns`` as its maximum
interval duration), also when a queue overflows, and adds what a vehicle needs: a reference
stream whose stamp a set carries, silent streams left out, late and out-of-order messages.
``test/core/vehicle/test_sync_message_filters.py`` runs message_filters' own cases.
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from numbers import Integral
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import ConfigError, SyncError

#: Rate bounds are capped by the shortest of this many recent intervals of a stream.
OBSERVED_INTERVALS = 64


@dataclass(frozen=True)
class SyncConfig:
    """streams : names of the synchronised streams (e.g. ``('lidar', 'radar', 'camera')``)
    reference : the stream whose stamp a set carries; in every set
    slop_ns : largest admissible spread (max stamp - min stamp) of a set, ns (0 = exact time)
    queue_size : messages held per stream
    stream_timeout_ns : silence (in the caller's clock) after which a stream is left out
    late_horizon_ns : how far behind its stream's newest stamp a message may still be accepted
    min_intervals_ns : stream -> shortest time between two of its stamps, ns (message_filters'
        ``setInterMessageLowerBound``): a set is proved best without waiting for that stream's next
        message when the next cannot come soon enough to beat it; a stream not named has no bound (0)
    """

    streams: tuple[str, ...]
    reference: str
    slop_ns: int = 50_000_000
    queue_size: int = 10
    stream_timeout_ns: int = 500_000_000
    late_horizon_ns: int = 1_000_000_000
    min_intervals_ns: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'streams', tuple(self.streams))
        object.__setattr__(self, 'min_intervals_ns', MappingProxyType(dict(self.min_intervals_ns)))
        for name, bound in self.min_intervals_ns.items():
            if name not in self.streams:
                raise ConfigError(f'min_intervals_ns names stream {name!r}: expected one of {list(self.streams)}')
            if bound < 0:
                raise ConfigError(f'min_intervals_ns[{name!r}] must be >= 0, got {bound!r}')
        if not self.streams:
            raise ConfigError('sync needs at least one stream, got none')
        if len(set(self.streams)) != len(self.streams):
            raise ConfigError(f'sync stream names must be unique, got {list(self.streams)}')
        if self.reference not in self.streams:
            raise ConfigError(f'reference stream {self.reference!r} is not one of the streams '
                              f'{list(self.streams)}')
        if self.slop_ns < 0:
            raise ConfigError(f'slop_ns must be >= 0, got {self.slop_ns}')
        for name in ('queue_size', 'stream_timeout_ns', 'late_horizon_ns'):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f'{name} must be positive, got {value}')


@dataclass(frozen=True)
class SyncSet:
    """One synchronised set.

    stamp_ns : the reference stream's stamp, ns
    members : stream -> (stamp_ns, payload), one per stream that took part
    missing : streams left out because they were silent
    """

    stamp_ns: int
    members: dict[str, tuple[int, object]]
    missing: tuple[str, ...] = field(default=())

    @property
    def spread_ns(self) -> int:
        """Max stamp - min stamp over the members, ns."""
        stamps = [m[0] for m in self.members.values()]
        return max(stamps) - min(stamps)


class ApproximateTimeSync:
    """Approximate-time synchroniser over named streams.

    Policy (message_filters' ``ApproximateTime``):

    * A set takes exactly one message per active stream; each message is used at most once.
      Matching starts when every active queue is non-empty. If the heads span more than
      ``slop_ns``, the oldest head is dropped (``dropped.unmatched``); otherwise the stream
      with the latest head is the *pivot*, and of the sets holding the pivot message the one
      with the smallest spread goes out (a tie keeps the earlier set), once no later message
      can beat it: a stream's next message is assumed no older than its newest (in-order
      arrival). Until then matching waits. A set takes every older message of its streams
      with it (``dropped.unmatched``).
    * Overflow: a new message is matched first; only then, if its queue holds more than
      ``queue_size`` messages (not counting those older than the best set found so far,
      which no set can use and which go too), the oldest goes (``dropped.queue_overflow``).
      While that stream holds the latest head, the oldest heads of the others are dropped
      instead of matched: their partners may be among the messages pushed out.

    Deliberate differences from message_filters:

    * Every message retries the proof that the best set found so far cannot be beaten;
      message_filters retries only when an empty queue gets a message, so a set may go out
      here sooner (and is then not lost, as it can be there, to an overflow in the meantime).
    * Inter-message lower bounds (message_filters' ``setInterMessageLowerBound``) are
      ``min_intervals_ns`` by stream name; without one a set waits for the stream's next message
      where a rate bound would prove it best (a 10 Hz lidar reference: up to one sweep period).
      A configured bound is an upper limit: the bound used is never more than the shortest
      interval the stream has shown over its last ``OBSERVED_INTERVALS`` stamps, so a sensor
      faster than the configuration assumed (or jittering) cannot make a set miss a closer partner.
    * ``SyncSet.stamp_ns`` is the ``reference`` stream's stamp; that stream is in every set,
      and sets go out with strictly increasing ``stamp_ns``.
    * A stream not heard from for more than ``stream_timeout_ns`` of ``now_ns`` is *silent*:
      its queue is discarded (``dropped.stale``) and sets go out without it, listing it in
      ``missing``; a stream never heard counts from the first ``now_ns`` seen. It rejoins
      with its next message. The reference stream is never left out (its silences are still
      counted). :meth:`poll` applies the timeout when no message arrives.
    * A message older than the last set's reference stamp minus ``slop_ns`` is dropped as
      late, and so is a reference message no newer than that stamp. A message older than its
      stream's newest accepted stamp minus ``late_horizon_ns`` is dropped as out of order;
      one out of order by less is inserted in stamp order (``reordered``). message_filters
      takes late messages and assumes in-order streams.
    """

    def __init__(self, config: SyncConfig) -> None:
        self.config = config
        streams = config.streams
        # per stream: stamps (sorted) and payloads, parallel lists
        self._stamps: dict[str, list[int]] = {s: [] for s in streams}
        self._payloads: dict[str, list[Any]] = {s: [] for s in streams}
        self._newest: dict[str, int | None] = {s: None for s in streams}
        self._heard_ns: dict[str, int | None] = {s: None for s in streams}
        self._silent: set[str] = set()
        # per stream: lost a message to overflow, and has held the latest head ever since
        self._overflowed: dict[str, bool] = {s: False for s in streams}
        # per stream: queued messages older than the best set found so far (while a set waits);
        # no set can use them, and they do not count against queue_size
        self._passed: dict[str, int] = {s: 0 for s in streams}
        self._start_ns: int | None = None
        self._last_ref_ns: int | None = None
        self._stats: dict[str, int] = {k: 0 for k in (
            'sets', 'sets_partial', 'dropped.late', 'dropped.out_of_order', 'dropped.queue_overflow',
            'dropped.unmatched', 'dropped.stale', 'reordered')}
        for s in streams:
            for k in ('received', 'gaps', 'rejoins', 'missing'):
                self._stats[f'{k}.{s}'] = 0
        # per stream: the last OBSERVED_INTERVALS intervals between neighbouring accepted stamps, ns
        self._intervals: dict[str, deque[int]] = {s: deque(maxlen=OBSERVED_INTERVALS) for s in streams}

    # -- public -----------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Counters (a copy).

        ``sets``, ``sets_partial`` (with a stream missing); ``received.<s>``;
        ``dropped.late``, ``dropped.out_of_order``, ``dropped.queue_overflow``,
        ``dropped.unmatched`` (passed over by the policy), ``dropped.stale`` (queued when
        the stream fell silent); ``reordered`` (accepted out of stamp order); ``gaps.<s>``
        (times s fell silent), ``rejoins.<s>``, ``missing.<s>`` (sets without s).
        """
        return dict(self._stats)

    @property
    def silent(self) -> tuple[str, ...]:
        """Streams silent longer than the timeout, in config order (all but the reference are left out)."""
        return tuple(s for s in self.config.streams if s in self._silent)

    def queued(self) -> dict[str, int]:
        """Messages waiting per stream."""
        return {s: len(q) for s, q in self._stamps.items()}

    def rate_bound_ns(self, stream: str) -> int:
        """The inter-message lower bound used for ``stream``: its configured ``min_intervals_ns`` (0 = none),
        but never more than the shortest interval between its recent stamps, ns."""
        bound = int(self.config.min_intervals_ns.get(stream, 0))
        seen = self._intervals[stream]
        return min(bound, min(seen)) if bound and seen else bound

    def add(self, stream: str, stamp_ns: int, payload: object, now_ns: int) -> list[SyncSet]:
        """Offer one message; returns the sets it completes (oldest first, possibly none).

        Raises SyncError for an unknown stream or a stamp that is not an integer.
        """
        if stream not in self._stamps:
            raise SyncError(f'unknown stream {stream!r}; known streams: {", ".join(self.config.streams)}')
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, Integral):
            raise SyncError(f'{stream}: stamp must be integer nanoseconds, got {stamp_ns!r}')
        stamp = int(stamp_ns)
        now = self._clock(now_ns)
        self._stats[f'received.{stream}'] += 1
        self._heard_ns[stream] = now
        if stream in self._silent:
            self._silent.discard(stream)
            self._stats[f'rejoins.{stream}'] += 1
        self._accept(stream, stamp, payload)
        out = self._update(now)
        if len(self._stamps[stream]) - self._passed[stream] > self.config.queue_size:
            # matched first, trimmed after: a full queue still gives its newest message a chance
            for s, n in self._passed.items():
                self._drop_front(s, n, 'dropped.unmatched')
            self._drop_front(stream, 1, 'dropped.queue_overflow')
            self._overflowed[stream] = True
            out += self._update(now)
        return out

    def poll(self, now_ns: int) -> list[SyncSet]:
        """Apply the silence timeout at ``now_ns`` and return the sets that can now go out."""
        return self._update(self._clock(now_ns))

    # -- internals --------------------------------------------------------------------------

    def _clock(self, now_ns: int) -> int:
        if isinstance(now_ns, bool) or not isinstance(now_ns, Integral):
            raise SyncError(f'now_ns must be integer nanoseconds, got {now_ns!r}')
        now = int(now_ns)
        if self._start_ns is None:
            self._start_ns = now
        return now

    def _accept(self, stream: str, stamp: int, payload: object) -> None:
        cfg = self.config
        if self._last_ref_ns is not None and (stamp < self._last_ref_ns - cfg.slop_ns or (
                stream == cfg.reference and stamp <= self._last_ref_ns)):
            self._stats['dropped.late'] += 1
            return
        newest = self._newest[stream]
        if newest is not None and stamp < newest - cfg.late_horizon_ns:
            self._stats['dropped.out_of_order'] += 1
            return
        stamps, payloads = self._stamps[stream], self._payloads[stream]
        i = bisect.bisect_right(stamps, stamp)
        if i < len(stamps):
            self._stats['reordered'] += 1
        stamps.insert(i, stamp)
        payloads.insert(i, payload)
        if newest is not None:                # the interval to its nearest neighbour among the queued or newest
            near = [abs(stamp - newest)] if stamp != newest else []
            near += [stamp - stamps[i - 1]] if i > 0 else []
            near += [stamps[i + 1] - stamp] if i + 1 < len(stamps) else []
            if near:
                self._intervals[stream].append(min(near))
        if newest is None or stamp > newest:
            self._newest[stream] = stamp

    def _drop_front(self, stream: str, n: int, cause: str) -> None:
        del self._stamps[stream][:n]
        del self._payloads[stream][:n]
        self._stats[cause] += n

    def _update(self, now: int) -> list[SyncSet]:
        cfg = self.config
        for s in cfg.streams:
            heard = self._heard_ns[s] if self._heard_ns[s] is not None else self._start_ns
            if s not in self._silent and now - heard > cfg.stream_timeout_ns:
                self._stats[f'gaps.{s}'] += 1
                self._silent.add(s)
                if s != cfg.reference:
                    self._stats['dropped.stale'] += len(self._stamps[s])
                    self._stamps[s].clear()
                    self._payloads[s].clear()
                    self._overflowed[s] = False
        active = [s for s in cfg.streams if s == cfg.reference or s not in self._silent]
        out = []
        while True:
            chosen = self._search(active)
            if chosen is None:
                return out
            out.append(self._emit(chosen, active))

    def _search(self, active: list[str]) -> dict[str, int] | None:
        """Queue index per active stream of the best set, or None to wait for more messages."""
        q = self._stamps
        slop = self.config.slop_ns
        self._passed = {s: 0 for s in self.config.streams}
        while True:
            if any(not q[s] for s in active):
                return None
            heads = {s: q[s][0] for s in active}
            start_s = min(active, key=heads.__getitem__)
            pivot = self._latest(active, heads)
            if heads[pivot] - heads[start_s] <= slop and not self._overflowed[pivot]:
                break
            # too wide, or the latest head's stream overflowed: the oldest head's partners
            # may have been pushed out, so a set with it could be worse than one without
            self._drop_front(start_s, 1, 'dropped.unmatched')
        t_pivot = heads[pivot]
        idx = {s: 0 for s in active}
        best, best_spread = dict(idx), heads[pivot] - heads[start_s]
        while True:
            times = {s: q[s][idx[s]] for s in active}
            s_min = min(active, key=times.__getitem__)
            if times[s_min] >= t_pivot:
                return best                       # every set containing the pivot has been seen
            idx[s_min] += 1
            if idx[s_min] == len(q[s_min]):
                if self._proved_optimal(active, idx, t_pivot, best_spread):
                    return best
                self._passed.update(best)
                return None
            times[s_min] = q[s_min][idx[s_min]]
            self._latest(active, times)
            end = max(times.values())
            spread = end - min(times.values())
            if spread < best_spread:
                best, best_spread = dict(idx), spread
            if end - t_pivot >= best_spread:
                return best                       # later sets contain [t_pivot, end]: no better one

    def _latest(self, active: list[str], heads: dict[str, int]) -> str:
        """The stream holding the latest head (the last in config order on a tie).

        Clears the overflow mark of every other stream: once a stream's head is no longer
        the latest, the messages older than it have had their chance (message_filters' rule).
        """
        latest = active[0]
        for s in active:
            if heads[s] >= heads[latest]:
                latest = s
        for s in active:
            if s != latest:
                self._overflowed[s] = False
        return latest

    def _proved_optimal(self, active: list[str], idx: dict[str, int], t_pivot: int, best_spread: int) -> bool:
        """Optimistic look-ahead once a queue ran out (message_filters' virtual moves).

        A stream with no message left is given the virtual stamp max(its newest + its
        min_intervals_ns bound, pivot): its next message can be no older (in-order arrival,
        the rate bound). Advance the oldest real head
        until the best set is proved optimal (True) or an optimistic set could beat it (False).
        """
        q = self._stamps
        bound = {s: self.rate_bound_ns(s) for s in active}
        idx = dict(idx)
        while True:
            times = {s: (q[s][idx[s]] if idx[s] < len(q[s]) else max(q[s][-1] + bound.get(s, 0), t_pivot))
                     for s in active}
            end, start = max(times.values()), min(times.values())
            if end - t_pivot >= best_spread:
                return True
            if end - start < best_spread:
                return False
            # start < t_pivot here, so the oldest head is a real message
            idx[min(active, key=times.__getitem__)] += 1

    def _emit(self, chosen: dict[str, int], active: list[str]) -> SyncSet:
        members: dict[str, tuple[int, object]] = {}
        for s in active:
            i = chosen[s]
            members[s] = (self._stamps[s][i], self._payloads[s][i])
            self._stats['dropped.unmatched'] += i
            del self._stamps[s][:i + 1]
            del self._payloads[s][:i + 1]
        missing = tuple(s for s in self.config.streams if s not in members)
        self._stats['sets'] += 1
        if missing:
            self._stats['sets_partial'] += 1
            for s in missing:
                self._stats[f'missing.{s}'] += 1
        stamp = members[self.config.reference][0]
        self._last_ref_ns = stamp
        return SyncSet(stamp, members, missing)
