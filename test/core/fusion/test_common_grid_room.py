"""CommonGrid's window moving within the room of its buffers gives what a full copy per recentre gives."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from cooperative_fusion.core.fusion import common_grid
from cooperative_fusion.core.fusion.common_grid import CommonGrid, FusionConfig
from cooperative_fusion.core.grid import GridSpec

RES = 0.2
S = 1_000_000_000


def _walk(room: float, monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Posterior, observed and percent cells after each step of a seeded walk of recentres and integrates."""
    monkeypatch.setattr(common_grid, 'WINDOW_ROOM', room)
    rng = np.random.default_rng(0)
    grid = CommonGrid(FusionConfig(spec=GridSpec(0.0, 0.0, RES, 60, 20), vehicle_weights={'v1': 1.0}))
    out = []
    for step in range(120):
        spec = grid.spec
        dx, dy = int(rng.integers(-25, 40)), int(rng.integers(-6, 7))
        if step % 17 == 0:
            dx = int(rng.integers(-200, 200))      # out of the room: new buffers
        width = spec.width + (int(rng.integers(-3, 4)) if step % 11 == 0 else 0)
        grid.recenter(GridSpec(spec.origin_x + dx * RES, spec.origin_y + dy * RES, RES, width, spec.height))
        ev = GridSpec(grid.spec.origin_x + RES * int(rng.integers(-10, 40)),
                      grid.spec.origin_y + RES * int(rng.integers(-5, 10)), RES, 30, 12)
        known = rng.random(ev.shape) < 0.7
        logodds = rng.normal(0.0, 1.5, ev.shape).astype(np.float32)
        grid.integrate('v1', ev, logodds, known, S + step * 50_000_000, S + step * 50_000_000)
        grid.advance(S + step * 50_000_000 + 20_000_000)
        out.append((grid.logodds.copy(), grid.observed, grid.posterior_percent()))
    return out


def test_moves_within_the_room_equal_full_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    roomy = _walk(0.5, monkeypatch)
    copied = _walk(0.0, monkeypatch)           # no room: every move copies the kept cells (the old way)
    assert len(roomy) == len(copied) == 120
    for (l_a, o_a, p_a), (l_b, o_b, p_b) in zip(roomy, copied):
        assert_array_equal(l_a.view(np.uint32), l_b.view(np.uint32))     # bit for bit
        assert_array_equal(o_a, o_b)
        assert_array_equal(p_a, p_b)
    assert sum(int(o.sum()) for _l, o, _p in roomy) > 0
