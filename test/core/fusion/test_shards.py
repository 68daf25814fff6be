"""Fusion shards: the same evidence stream into one CooperativeFusion and into shards + a combiner."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.config import FusionNodeConfig, config_from_params
from cooperative_fusion.core.fusion.cooperative import CooperativeFusion
from cooperative_fusion.core.fusion.shards import (FusionShard, ShardCombiner, ShardDelta, shard_name,
                                                   shard_vehicles)
from cooperative_fusion.core.grid import GridSpec, percent_to_logodds
from cooperative_fusion.nodes.fusion_params import PARAMS

RES = 0.2
S = 1_000_000_000
MS = 1_000_000
T0 = 50 * S
VEHICLES = ['v1', 'v2', 'v3', 'v4', 'v5']
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def config(**overrides) -> FusionNodeConfig:
    """Five vehicles on a 60 x 16 m window (fixed at x 0..60 m, y -8..8 m unless overridden); no dynamic layer,
    consistency or co-registration (a shard sees only its own vehicles: see docs/limits.md)."""
    values = {p.name: p.default for p in PARAMS}
    values.update({'vehicles': VEHICLES, 'vehicle_weights': [1.0, 0.8, 1.0, 0.6, 1.0],
                   'footprints.vehicles': VEHICLES, 'footprints.length_m': [4.5] * 5,
                   'footprints.width_m': [1.8] * 5, 'footprints.rear_overhang_m': [1.0] * 5,
                   'footprints.lidar_x_m': [1.2] * 5, 'footprints.lidar_y_m': [0.0] * 5,
                   'grid.mode': 'fixed', 'grid.size_x_m': 60.0, 'grid.size_y_m': 16.0,
                   'grid.fixed_origin_y_m': -8.0, 'grid.forward_offset_m': 20.0,
                   'dynamic.enabled': False, 'consistency.enabled': False, 'coregistration.enabled': False,
                   **overrides})
    return config_from_params(values)


#: bounds no evidence sum reaches, and a reset level above every cell: nothing clamps or resets
UNBOUNDED = {'fusion.clamp_min': -1000.0, 'fusion.clamp_max': 1000.0, 'fusion.free_reset_logodds': 1000.0}


def stream(seed: int, duration_s: float = 3.0):
    """Evidence of every vehicle at ~10 Hz (jittered stamps, delivered late and out of order), odometry
    with a pose covariance (blur) and publish ticks every 100 ms: ('odom' | 'evidence' | 'publish', ...)
    events in arrival order, common time."""
    rng = np.random.default_rng(seed)
    events = []
    for i, vid in enumerate(VEHICLES):
        x = 6.0 + 10.0 * i
        events.append((T0 - 10 * MS, 'odom', vid, x, 0.02 * (i + 1)))   # the platoon places the first window
        for k in range(int(duration_s * 10)):
            stamp = T0 + k * 100 * MS + int(rng.integers(0, 30)) * MS
            arrival = stamp + int(rng.integers(5, 180)) * MS
            events.append((arrival, 'odom', vid, x + 2.0 * k * 0.1, 0.02 * (i + 1)))
            w, h = int(rng.integers(40, 120)), int(rng.integers(20, 60))
            spec = GridSpec(RES * int(rng.integers(0, 300 - w)), -8.0 + RES * int(rng.integers(0, 80 - h)),
                            RES, w, h)
            logodds = rng.normal(0.0, 1.5, spec.shape).astype(np.float32)
            known = rng.random(spec.shape) < 0.7
            events.append((arrival, 'evidence', vid, spec, logodds, known, stamp))
    for k in range(int(duration_s * 10) + 3):
        events.append((T0 + k * 100 * MS, 'publish'))
    events.sort(key=lambda e: (e[0], e[1] != 'odom'))
    return events


def run(cfg: FusionNodeConfig, count: int, seed: int = 0, extra_takes: bool = False):
    """The stream into one CooperativeFusion and into ``count`` shards + a combiner; yields after each
    publish (single, combiner). ``extra_takes``: shards also send a delta after every 3rd evidence."""
    single = CooperativeFusion(cfg)
    shards = [FusionShard(cfg, k, count) for k in range(count)]
    owner = {v: s for s in shards for v in s.vehicles}
    combiner = ShardCombiner(cfg, count)
    n = 0
    for event in stream(seed):
        now = event[0]
        if event[1] == 'odom':
            _, _, vid, x, sigma = event
            cov = np.eye(2) * sigma ** 2
            for f in (single, combiner.fusion, *(s.fusion for s in shards)):
                f.add_odometry(vid, np.array([x, 0.0, 0.0]), IDENTITY, 20.0, cov, now, now)
        elif event[1] == 'evidence':
            _, _, vid, spec, logodds, known, stamp = event
            r1 = single.add(vid, spec, logodds, known, stamp, now)
            r2 = owner[vid].add(vid, spec, logodds, known, stamp, now)
            assert (r1.accepted, r1.cause) == (r2.accepted, r2.cause)
            n += 1
            if extra_takes and n % 3 == 0:
                assert combiner.add(owner[vid].take(now), now).accepted
        else:
            for s in shards:
                assert combiner.add(s.take(now), now).accepted
            yield single.publish(now), combiner.publish(now), single, combiner


@pytest.mark.parametrize('mode,count,extra_takes', [('fixed', 2, False), ('fixed', 2, True), ('fixed', 3, False),
                                                    ('follow_platoon', 2, False), ('follow_platoon', 3, False)])
def test_shards_and_combiner_give_the_single_process_grid_when_nothing_clamps(mode, count, extra_takes):
    cfg = config(**UNBOUNDED, **{'grid.mode': mode})
    grids = 0
    for one, combined, single, comb in run(cfg, count, extra_takes=extra_takes):
        assert one.spec == combined.spec
        assert_allclose(comb.grid.logodds, single.grid.logodds, rtol=1e-5, atol=1e-4)
        assert_array_equal(comb.grid.known_mask(), single.grid.known_mask())
        assert sorted(combined.latencies_ms) == pytest.approx(sorted(one.latencies_ms))
        grids += 1
    assert grids == 33
    assert np.abs(single.grid.logodds).max() > 5.0       # evidence piled up: far from trivial
    assert single.grid.known_mask().mean() > 0.5


def test_a_following_window_moved_between_publishes_differs_only_at_its_edges():
    # a shard places its window at every delta: deltas between the combiner's publishes move it earlier
    cfg = config(**UNBOUNDED, **{'grid.mode': 'follow_platoon'})
    moved = 0
    for _one, _combined, single, comb in run(cfg, 2, extra_takes=True):
        differ = ~np.isclose(comb.grid.logodds, single.grid.logodds, rtol=1e-5, atol=1e-4)
        cols = np.flatnonzero(differ.any(axis=0))
        moved += cols.size > 0
        assert np.all((cols < 10) | (cols >= differ.shape[1] - 10)), cols      # within 2 m of the x edges
    assert moved > 0


def test_with_the_default_clamp_the_combined_grid_stays_in_bounds_and_close():
    cfg = config()
    for _one, _combined, single, comb in run(cfg, 2):
        pass
    L, L1 = comb.grid.logodds, single.grid.logodds
    assert L.min() >= cfg.fusion.clamp_min and L.max() <= cfg.fusion.clamp_max
    # clamping per delta (combiner) and per message (one process) differ where the bounds act, nowhere else
    differ = ~np.isclose(L, L1, rtol=1e-5, atol=1e-4)
    assert differ.any()
    assert np.median(np.abs(L - L1)[differ]) < 1.0


def test_a_shards_moving_object_is_drawn_by_the_combiner_where_it_is_at_publish_time():
    cfg = config(**{'dynamic.enabled': True})
    single, shard, combiner = CooperativeFusion(cfg), FusionShard(cfg, 0, 2), ShardCombiner(cfg, 2)
    for f in (single, shard.fusion, combiner.fusion):
        f.add_odometry('v1', np.array([0.0, 0.0, 0.0]), IDENTITY, 20.0, np.zeros((2, 2)), T0, T0)
    car = (20.0, 24.4, -0.8, 0.8)
    ev = GridSpec(0.0, -8.0, RES, 250, 80)
    percent = np.full(ev.shape, 20, np.int8)
    percent[int(round((car[2] + 8.0) / RES)):int(round((car[3] + 8.0) / RES)),
            int(round(car[0] / RES)):int(round(car[1] / RES))] = 90
    logodds, known = percent_to_logodds(percent)
    for f in (single, shard.fusion):             # the radar target on the car moves away at 10 m/s
        f.add_radar('v1', T0, np.array([[20.2, 0.0, 10.0]]))
    assert single.add('v1', ev, logodds, known, T0, T0).accepted
    assert shard.add('v1', ev, logodds, known, T0, T0).accepted
    delta = shard.take(T0 + 10 * MS)
    assert len(delta.objects) == 1 and delta.objects[0].vehicle_id == 'v1'
    assert combiner.add(delta, T0 + 10 * MS).accepted
    one, combined = single.publish(T0 + 200 * MS), combiner.publish(T0 + 200 * MS)   # 2 m further along
    assert one.spec == combined.spec
    # the face nearest the sensor (x 22.0-22.2) is thinned away by the dynamic layer (thin_faces)
    moved = (slice(int(round(7.2 / RES)), int(round(8.8 / RES))), slice(int(round(22.2 / RES)), int(round(26.4 / RES))))
    assert np.all(combined.cells[moved] >= 65)
    assert_array_equal(combined.cells, one.cells)


def test_a_shard_sends_only_the_touched_sub_window_and_then_empties():
    cfg = config()
    shard = FusionShard(cfg, 0, 2)
    assert shard.vehicles == ('v1', 'v2')
    spec = GridSpec(10.0, -2.0, RES, 20, 10)
    logodds = np.full(spec.shape, 1.0, np.float32)
    assert shard.add('v1', spec, logodds, np.ones(spec.shape, bool), T0, T0 + 10 * MS).accepted
    delta = shard.take(T0 + 10 * MS)
    assert (delta.shard, delta.seq, delta.stamp_ns) == (0, 0, T0 + 10 * MS)
    assert delta.spec == GridSpec(10.0, -2.0, RES, 20, 10)
    assert_allclose(delta.logodds, 0.5 ** (0.01 / cfg.fusion.half_life_s), rtol=1e-6)  # weight 1, decayed 10 ms
    assert delta.known.all() and delta.evidence_stamps_ns.tolist() == [T0]
    empty = shard.take(T0 + 100 * MS)
    assert empty.seq == 1 and empty.spec is None and empty.evidence_stamps_ns.size == 0
    assert not shard.grid.logodds.any()


def test_the_combiner_counts_lost_duplicate_and_unknown_deltas():
    cfg = config()
    combiner = ShardCombiner(cfg, 2)

    def heartbeat(shard: int, seq: int) -> ShardDelta:
        return ShardDelta(shard, seq, T0, None, np.zeros((0, 0), np.float32), np.zeros((0, 0), bool),
                          np.zeros(0, np.int64))

    assert combiner.add(heartbeat(0, 0), T0).accepted
    assert combiner.add(heartbeat(0, 3), T0).accepted
    assert combiner.books[0].lost == 2
    assert combiner.add(heartbeat(0, 2), T0).accepted          # late, not lost after all
    assert (combiner.books[0].lost, combiner.books[0].reordered) == (1, 1)
    dup = combiner.add(heartbeat(0, 3), T0)
    assert (dup.accepted, dup.cause) == (False, 'duplicate')
    unknown = combiner.add(heartbeat(2, 0), T0)
    assert (unknown.accepted, unknown.cause) == (False, 'unknown_shard')
    assert combiner.books[0].received == 4 and combiner.books[0].applied == 3
    assert combiner.add(heartbeat(1, 500), T0).accepted
    assert combiner.add(heartbeat(1, 0), T0).accepted                # the shard process started again
    assert (combiner.books[1].restarts, combiner.books[1].lost, combiner.books[1].last_seq) == (1, 0, 0)
    assert shard_name(1) == 'shard1'


def test_shard_vehicles_partition_the_platoon_in_contiguous_blocks():
    parts = [shard_vehicles(VEHICLES, k, 2) for k in range(2)]
    assert parts == [('v1', 'v2'), ('v3', 'v4', 'v5')]
    assert sum((shard_vehicles(VEHICLES, k, 5) for k in range(5)), ()) == tuple(VEHICLES)
    with pytest.raises(ConfigError, match=r'shard.index 2 must be in \[0, 2\)'):
        shard_vehicles(VEHICLES, 2, 2)
    with pytest.raises(ConfigError, match=r'shard.count 6 must be in \[1, 5\]'):
        shard_vehicles(VEHICLES, 0, 6)
