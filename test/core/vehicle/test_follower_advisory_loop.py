"""The twin's advice (core/twin/conflicts.advise) followed by the AdvisoryFollower, in a small closed loop."""
from __future__ import annotations

import pytest

from cooperative_fusion.core.twin.conflicts import Conflict, ConflictConfig, ConflictLevel, advise
from cooperative_fusion.core.twin.prediction import VehicleState
from cooperative_fusion.core.vehicle.follower import (AdvisoryFollower, FollowerConfig, FollowerMode, Limit, OwnState,
                                                      advisory_profile)

S = 1_000_000_000
DT_NS = 100_000_000


def _loop(distance_m: float, v0: float, latency_cycles: int) -> tuple[float, float, float, set[Limit]]:
    """A vehicle (front at its x) at v0 toward a standing obstacle distance_m ahead. Every 0.1 s the twin advises
    from the state ``latency_cycles`` ago (stamped then), and the follower (advisory only) commands; the vehicle
    does exactly what is commanded. Returns (final speed, final gap, strongest deceleration, limits seen)."""
    cfg = ConflictConfig()
    f = AdvisoryFollower(FollowerConfig(mode=FollowerMode.ADVISORY, cruise_speed_mps=v0))
    x, v = 0.0, v0
    history: list[tuple[int, float, float]] = []
    a_min, limits = 0.0, set()
    for k in range(400):
        now = k * DT_NS
        history.append((now, x, v))
        seen_ns, seen_x, seen_v = history[max(0, k - latency_cycles)]
        gap = distance_m - seen_x
        c = Conflict('v1', ConflictLevel.ERROR, gap / max(seen_v, 1e-3), gap, 0.0, 0.0, 7, None, 0.0, 0.0, 0.0, 0.0)
        adv = advise(VehicleState('v1', seen_x, 0.0, seen_v), c, cfg)
        prof = advisory_profile(seen_ns, adv.t_offset_ns, adv.x, adv.y)
        cmd = f.command(now, OwnState(now, v, x), advisory=prof)
        a = cmd.accel_mps2
        vn = max(v + a * 0.1, 0.0)
        x += v * v / (-2.0 * a) if (vn == 0.0 and a < 0) else 0.5 * (v + vn) * 0.1
        v = vn
        a_min = min(a_min, a)
        limits.add(cmd.limit)
    return v, distance_m - x, a_min, limits


@pytest.mark.parametrize('latency_cycles', [0, 3])
@pytest.mark.parametrize('distance', [60.0, 100.0, 140.0])
def test_the_follower_stops_where_the_twin_advises(distance, latency_cycles):
    """From 25 m/s: 140 m ahead needs 2.3 m/s^2, so the advice coasts, then brakes at the comfortable 3; 100 m
    needs 3.3 and 60 m 5.7, braking at once. Followed by position, the stop ends safe_gap (5 m) behind, and
    advice 0.3 s late (a twin cycle and links) brakes no harder."""
    v, gap, a_min, limits = _loop(distance, 25.0, latency_cycles)
    need = 25.0 ** 2 / (2 * (distance - 5.0))
    assert v == pytest.approx(0.0, abs=1e-9) and Limit.ADVISORY in limits
    assert gap == pytest.approx(ConflictConfig().safe_gap_m, abs=0.05)
    assert -max(ConflictConfig().comfortable_decel_mps2, need) - 1e-6 <= a_min <= -min(need, 2.9)
