from __future__ import annotations

import itertools

import numpy as np
import pytest

from cooperative_fusion.core.errors import ConfigError, SyncError
from cooperative_fusion.core.vehicle.sync import ApproximateTimeSync, SyncConfig, SyncSet

MS = 1_000_000
STREAMS = ('lidar', 'radar', 'camera')


def make(**kw) -> ApproximateTimeSync:
    kw.setdefault('streams', STREAMS)
    kw.setdefault('reference', 'lidar')
    return ApproximateTimeSync(SyncConfig(**kw))


def events(rng, duration_s=3.0, rates=None, latency_ms=None, jitter_ms=3.0, stop=None):
    """(arrival_ns, stream, stamp_ns) of jittered periodic streams, sorted by arrival.

    stop : {stream: (t0_s, t1_s)} silence of a stream between t0 and t1.
    """
    rates = rates or {'lidar': 10.0, 'radar': 20.0, 'camera': 15.0}
    latency_ms = latency_ms or {'lidar': 30.0, 'radar': 8.0, 'camera': 20.0}
    out = []
    for s, hz in rates.items():
        nominal = np.arange(0.0, duration_s, 1.0 / hz) + 0.005 * (s == 'radar')
        stamps = nominal + rng.uniform(-jitter_ms, jitter_ms, nominal.size) * 1e-3
        if stop and s in stop:
            t0, t1 = stop[s]
            stamps = stamps[(stamps < t0) | (stamps >= t1)]
        arrival = stamps + (latency_ms[s] + rng.uniform(0.0, 5.0, stamps.size)) * 1e-3
        out += [(int(round(a * 1e9)), s, int(round(t * 1e9))) for a, t in zip(arrival, stamps)]
    return sorted(out)


def run(sync, evts) -> list[SyncSet]:
    sets = []
    for arrival, stream, stamp in evts:
        sets += sync.add(stream, stamp, (stream, stamp), arrival)
    return sets


def best_spread_with(ref_stamp, others, slop):
    """Brute force: smallest spread of a set holding ref_stamp and one stamp from each list."""
    best = None
    for combo in itertools.product(*others):
        stamps = (ref_stamp,) + combo
        spread = max(stamps) - min(stamps)
        best = spread if best is None else min(best, spread)
    return best


def test_exact_time_streams_give_one_set_per_tick():
    sync = make(slop_ns=0)
    sets = []
    for k in range(20):
        stamp = k * 100 * MS
        for j, s in enumerate(STREAMS):
            sets += sync.add(s, stamp, f'{s}{k}', stamp + (10 + j) * MS)
        assert len(sets) == k + 1           # out as soon as the last member arrives
    assert [st.stamp_ns for st in sets] == [k * 100 * MS for k in range(20)]
    for k, st in enumerate(sets):
        assert st.members == {s: (k * 100 * MS, f'{s}{k}') for s in STREAMS}
        assert st.missing == () and st.spread_ns == 0
    assert sync.stats['sets'] == 20 and sync.stats['dropped.unmatched'] == 0


def test_jittered_streams_at_10_20_15_hz_one_set_per_reference():
    rng = np.random.default_rng(0)
    evts = events(rng)
    lidar = sorted(st for _, s, st in evts if s == 'lidar')
    sync = make()
    sets = run(sync, evts)
    # every lidar scan makes exactly one set (the last may still wait for later radar/camera)
    assert len(sets) >= len(lidar) - 1
    assert [st.stamp_ns for st in sets] == lidar[:len(sets)]
    per_stream = {s: sorted(st for _, ss, st in evts if ss == s) for s in STREAMS}
    for st in sets:
        assert st.missing == ()
        assert set(st.members) == set(STREAMS)
        assert st.spread_ns <= 50 * MS
        for s, (stamp, payload) in st.members.items():
            assert payload == (s, stamp)
        # the chosen set is the tightest one around its reference scan
        assert st.spread_ns == best_spread_with(st.stamp_ns, [per_stream['radar'], per_stream['camera']],
                                                50 * MS)
    for s in STREAMS:                     # each message used at most once
        used = [st.members[s][0] for st in sets]
        assert len(used) == len(set(used))
    stats = sync.stats
    assert stats['sets'] == len(sets) and stats['sets_partial'] == 0
    assert stats['dropped.late'] == stats['dropped.out_of_order'] == stats['dropped.queue_overflow'] == 0


def test_smallest_spread_beats_greedy_choices():
    # reference at 100 ms; nearest-to-reference per stream would take radar 95 and camera 106
    # (spread 11), the first heads are (100, 95, 92) (spread 8); the best is (100, 106, 106).
    sync = make()
    out = []
    for stream, stamp_ms in [('lidar', 100), ('radar', 95), ('radar', 106), ('camera', 92)]:
        out += sync.add(stream, stamp_ms * MS, stamp_ms, 200 * MS)
    assert out == []                     # camera's next message could still make a tighter set
    out = sync.add('camera', 106 * MS, 106, 201 * MS)
    assert len(out) == 1
    assert out[0].members == {'lidar': (100 * MS, 100), 'radar': (106 * MS, 106), 'camera': (106 * MS, 106)}
    assert out[0].spread_ns == 6 * MS
    assert sync.stats['dropped.unmatched'] == 2          # radar 95 and camera 92 passed over


def test_proved_optimal_without_waiting():
    sync = make(streams=('lidar', 'radar'))
    assert sync.add('radar', 98 * MS, None, 0) == []
    assert sync.add('radar', 250 * MS, None, 0) == []
    out = sync.add('lidar', 100 * MS, None, 0)     # radar 250 is already too far: 98 is the best
    assert [st.members['radar'][0] for st in out] == [98 * MS]


def test_queue_overflow_drops_oldest_and_the_messages_it_orphaned():
    sync = make(streams=('lidar', 'radar'), queue_size=3)
    for ms in (10, 20, 30, 40, 50):
        assert sync.add('radar', ms * MS, ms, ms * MS) == []
    assert sync.stats['dropped.queue_overflow'] == 2
    assert sync.queued() == {'lidar': 0, 'radar': 3}
    # radar 10 (the best partner of the scan at 12 ms) was pushed out and radar holds the
    # latest head: the scan is dropped rather than paired with radar 30
    assert sync.add('lidar', 12 * MS, 'scan', 60 * MS) == []
    assert sync.stats['dropped.unmatched'] == 1
    assert sync.queued() == {'lidar': 0, 'radar': 3}
    out = sync.add('lidar', 50 * MS, 'scan2', 160 * MS)
    assert [(st.stamp_ns, st.members['radar']) for st in out] == [(50 * MS, (50 * MS, 50))]
    assert sync.stats['dropped.unmatched'] == 3      # radar 30 and 40 went with the set


def test_full_queue_matches_its_newest_message_before_trimming():
    # queue of 1: radar 12 arrives while radar 9 waits for proof that it is the scan's best
    # partner; matched before trimming, radar 12 is that proof and the set goes out
    sync = make(streams=('lidar', 'radar'), queue_size=1)
    assert sync.add('radar', 9 * MS, 9, 0) == []
    assert sync.add('lidar', 10 * MS, 'scan', 1) == []
    out = sync.add('radar', 12 * MS, 12, 2)
    assert [(st.stamp_ns, st.members['radar'][0]) for st in out] == [(10 * MS, 9 * MS)]
    assert sync.stats['dropped.queue_overflow'] == 0 and sync.queued() == {'lidar': 0, 'radar': 1}


def test_silent_stream_is_left_out_and_rejoins():
    rng = np.random.default_rng(1)
    evts = events(rng, duration_s=4.0, stop={'camera': (1.0, 2.5)})
    sync = make(queue_size=20)
    sets = run(sync, evts)
    lidar = sorted(st for _, s, st in evts if s == 'lidar')
    assert len(sets) >= len(lidar) - 1                    # the camera's death stalls nothing for good
    assert [st.stamp_ns for st in sets] == lidar[:len(sets)]
    partial = [st for st in sets if st.missing]
    assert partial and all(st.missing == ('camera',) and 'camera' not in st.members for st in partial)
    # without the camera: scans from about 1.0 s until it speaks again at 2.5 s
    assert min(st.stamp_ns for st in partial) >= 0.9e9
    assert max(st.stamp_ns for st in partial) < 2.55e9
    assert all('camera' in st.members for st in sets if st.stamp_ns >= 2.6e9)
    assert all(st.spread_ns <= 50 * MS for st in sets)
    stats = sync.stats
    assert stats['gaps.camera'] == 1 and stats['rejoins.camera'] == 1
    assert stats['missing.camera'] == stats['sets_partial'] == len(partial)
    assert stats['gaps.lidar'] == stats['gaps.radar'] == 0


def test_poll_applies_timeout_to_a_stream_never_heard():
    sync = make(streams=('lidar', 'camera'))
    assert sync.add('lidar', 0, 'scan', 10 * MS) == []
    assert sync.add('lidar', 100 * MS, 'scan2', 300 * MS) == []
    assert sync.poll(510 * MS) == []            # 500 ms after start: camera still awaited
    out = sync.poll(511 * MS)
    assert [(st.stamp_ns, st.missing, st.members) for st in out] == [
        (0, ('camera',), {'lidar': (0, 'scan')}), (100 * MS, ('camera',), {'lidar': (100 * MS, 'scan2')})]
    assert sync.silent == ('camera',)
    assert sync.add('camera', 200 * MS, 'img', 650 * MS) == []
    assert sync.silent == ()
    out = sync.add('lidar', 200 * MS, 'scan3', 700 * MS)
    assert out[0].members == {'lidar': (200 * MS, 'scan3'), 'camera': (200 * MS, 'img')}
    assert sync.stats['gaps.camera'] == 1 and sync.stats['rejoins.camera'] == 1


def test_silent_reference_is_counted_but_never_left_out():
    sync = make(streams=('lidar', 'radar'))
    assert sync.add('radar', 0, None, 0) == []
    assert sync.poll(600 * MS) == []
    assert sync.stats['gaps.lidar'] == 1 and sync.stats['gaps.radar'] == 1
    assert sync.silent == ('lidar', 'radar')


def test_late_and_out_of_order_messages_are_dropped_and_counted():
    sync = make(streams=('lidar', 'radar'))
    assert sync.add('radar', 3000 * MS, None, 0) == []
    assert sync.add('radar', 1900 * MS, None, 0) == []    # 1.1 s behind the newest radar: out of order
    assert sync.add('radar', 2500 * MS, None, 0) == []    # 0.5 s behind: kept, in stamp order
    stats = sync.stats
    assert stats['dropped.out_of_order'] == 1 and stats['reordered'] == 1
    out = sync.add('lidar', 2510 * MS, None, 0)
    assert [st.members['radar'][0] for st in out] == [2500 * MS]
    assert sync.add('radar', 2400 * MS, None, 0) == []    # older than 2.510 s - slop: late
    assert sync.add('lidar', 2000 * MS, None, 0) == []    # a late reference too
    assert sync.add('radar', 2470 * MS, None, 0) == []    # within the slop: not late
    stats = sync.stats
    assert stats['dropped.late'] == 2
    assert sync.queued() == {'lidar': 0, 'radar': 2}


def test_unknown_stream_and_bad_stamp():
    sync = make()
    with pytest.raises(SyncError, match=r"^unknown stream 'lidr'; known streams: lidar, radar, camera$"):
        sync.add('lidr', 0, None, 0)
    with pytest.raises(SyncError, match=r'radar: stamp must be integer nanoseconds, got 1\.5'):
        sync.add('radar', 1.5, None, 0)
    assert sync.stats['received.radar'] == 0


@pytest.mark.parametrize('kw, match', [
    (dict(reference='gps'), r"reference stream 'gps' is not one of the streams \['lidar', 'radar', 'camera'\]"),
    (dict(slop_ns=-1), 'slop_ns must be >= 0, got -1'),
    (dict(queue_size=0), 'queue_size must be positive, got 0'),
    (dict(stream_timeout_ns=0), 'stream_timeout_ns must be positive, got 0'),
    (dict(late_horizon_ns=-5), 'late_horizon_ns must be positive, got -5'),
    (dict(streams=('lidar', 'lidar')), r"unique, got \['lidar', 'lidar'\]"),
])
def test_config_validation(kw, match):
    kw = {'streams': STREAMS, 'reference': 'lidar', **kw}
    with pytest.raises(ConfigError, match=match):
        SyncConfig(**kw)


@pytest.mark.parametrize('seed', range(6))
def test_invariants_under_jitter_loss_reordering_and_outages(seed):
    """Every message is accounted for exactly once; sets are admissible and in order."""
    rng = np.random.default_rng(seed)
    rates = {'lidar': 10.0, 'radar': rng.uniform(12, 25), 'camera': rng.uniform(8, 30)}
    latency = {s: rng.uniform(5, 60) for s in STREAMS}
    stop = {str(rng.choice(['radar', 'camera'])): (rng.uniform(0.5, 1.5), rng.uniform(1.6, 2.5))}
    evts = events(rng, duration_s=4.0, rates=rates, latency_ms=latency, jitter_ms=15.0, stop=stop)
    keep = rng.uniform(size=len(evts)) > 0.1                     # 10 % loss
    evts = [e for e, k in zip(evts, keep) if k]
    late = rng.uniform(size=len(evts)) < 0.05                    # 5 % delayed by up to 1.5 s
    evts = sorted((a + int(rng.uniform(0, 1.5e9)) if d else a, s, st) for (a, s, st), d in zip(evts, late))
    sync = make(queue_size=int(rng.integers(3, 15)), slop_ns=int(rng.uniform(20, 60) * MS),
                late_horizon_ns=int(rng.uniform(0.2, 1.0) * 1e9))
    sets = []
    for arrival, stream, stamp in evts:
        sets += sync.add(stream, stamp, (stream, stamp), arrival)
        if rng.uniform() < 0.2:
            sets += sync.poll(arrival + int(rng.uniform(0, 20 * MS)))
    stamps = [st.stamp_ns for st in sets]
    assert stamps == sorted(set(stamps))                        # strictly increasing
    for st in sets:
        assert st.spread_ns <= sync.config.slop_ns
        assert set(st.members) | set(st.missing) == set(STREAMS) and 'lidar' in st.members
        assert st.members['lidar'][0] == st.stamp_ns
        assert all(payload == (s, stamp) for s, (stamp, payload) in st.members.items())
    used = [(s, m[0]) for st in sets for s, m in st.members.items()]
    assert len(used) == len(set(used))                          # each message at most once
    stats = sync.stats
    received = sum(stats[f'received.{s}'] for s in STREAMS)
    dropped = sum(v for k, v in stats.items() if k.startswith('dropped.'))
    assert received == len(evts)
    assert received == len(used) + dropped + sum(sync.queued().values())
    assert stats['sets'] == len(sets)
    assert stats['sets_partial'] == sum(1 for st in sets if st.missing)
    assert len(sets) > 10


def _lidar_last(sync: ApproximateTimeSync) -> dict[int, int]:
    """Lidar sweeps delivered at their end (stamp + 100 ms) after the radar and camera messages of the
    sweep (delivered at their stamps), as the simulator and most lidars do: {lidar stamp ms: arrival ms of
    its set}. The camera (15 Hz) sits 4.4 ms after one sweep's stamp and 10.8 ms before the next."""
    msgs = [(100 * k + 100, 'lidar', 100 * k) for k in range(8)]
    msgs += [(r, 'radar', r) for r in range(15, 800, 50)]
    msgs += [(c, 'camera', c) for c in (4.4 + 66.6 * k for k in range(12))]
    out: dict[int, int] = {}
    for arrival, stream, stamp in sorted(msgs):
        for s in sync.add(stream, int(round(stamp * MS)), None, int(round(arrival * MS))):
            out[s.stamp_ns // MS] = arrival
    return out


def test_without_a_rate_bound_a_sweep_waits_for_the_next_one():
    released = _lidar_last(make(slop_ns=50 * MS))
    waits = {stamp: arrival - (stamp + 100) for stamp, arrival in released.items()}
    assert 100 in waits.values()                   # proved best only by the next sweep, 100 ms later


def test_a_rate_bound_releases_every_sweep_on_arrival_with_the_same_partners():
    bounded = make(slop_ns=50 * MS, min_intervals_ns={'lidar': 50 * MS, 'radar': 25 * MS, 'camera': 33 * MS})
    released = _lidar_last(bounded)
    assert released == {stamp: stamp + 100 for stamp in range(0, 800, 100)}
    # the sets themselves are message_filters' best sets: the same as found by waiting
    a, b = [], []
    for sync, out in ((make(slop_ns=50 * MS), a), (make(slop_ns=50 * MS, min_intervals_ns={'lidar': 50 * MS}), b)):
        for arrival, stream, stamp in sorted([(100 * k + 100, 'lidar', 100 * k) for k in range(8)]
                                             + [(r, 'radar', r) for r in range(15, 800, 50)]
                                             + [(c, 'camera', c) for c in (4.4 + 66.6 * k for k in range(12))]):
            out += [{k: m[0] for k, m in s.members.items()}
                    for s in sync.add(stream, int(round(stamp * MS)), None, int(round(arrival * MS)))]
    assert a == b[:len(a)] and len(b) >= len(a)


def test_rate_bounds_name_streams_and_are_not_negative():
    with pytest.raises(ConfigError, match="min_intervals_ns names stream 'gps'"):
        make(min_intervals_ns={'gps': 1})
    with pytest.raises(ConfigError, match=r"min_intervals_ns\['radar'\] must be >= 0"):
        make(min_intervals_ns={'radar': -1})


def test_a_bound_larger_than_the_streams_real_interval_is_capped_by_what_the_stream_shows():
    """A 30 Hz camera configured as if it were 20 Hz (bound 50 ms > its 33 ms period, with jitter), arriving
    120 ms after its stamp: the bound used shrinks to the shortest interval the camera has shown (a bound above
    a stream's real interval could prove a set best that its next message would beat), and the sets stay the
    best ones (those found by waiting)."""
    rng = np.random.default_rng(3)
    msgs = [(100 * k + 100, 'lidar', 100 * k) for k in range(10)]
    msgs += [(r, 'radar', r) for r in range(15, 1000, 50)]
    msgs += [(c + 120.0, 'camera', c) for c in (2.0 + 33.3 * k + rng.uniform(-2.0, 2.0) for k in range(30))]
    sets = []
    for cfg in ({}, {'camera': 50 * MS, 'lidar': 50 * MS, 'radar': 25 * MS}):
        sync, out = make(slop_ns=50 * MS, min_intervals_ns=cfg), []
        for arrival, stream, stamp in sorted(msgs):
            out += [{k: m[0] for k, m in s.members.items()}
                    for s in sync.add(stream, int(round(stamp * MS)), None, int(round(arrival * MS)))]
        sets.append(out)
        if cfg:
            assert sync.rate_bound_ns('camera') < 34 * MS           # capped by the camera's real intervals
            assert sync.rate_bound_ns('lidar') == 50 * MS           # 100 ms sweeps: the configured bound holds
    waited, bounded = sets
    assert bounded[:len(waited)] == waited
