"""ConsistencyChecker.check against the former whole-grid formulation: exact equality on seeded random scenes."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from cooperative_fusion.core.errors import ConfigError
from cooperative_fusion.core.fusion.consistency import ConsistencyChecker, ConsistencyConfig
from cooperative_fusion.core.grid import GridSpec

RES = 0.2
EIGHT = np.ones((3, 3), dtype=bool)


class _OldChecker:
    """The former check, written out: nan_to_num, maximum_filter, a line element, four int16 counts."""

    def __init__(self, config: ConsistencyConfig) -> None:
        self.config = config
        self.latest: dict = {}
        self.score: dict = {}
        self.flagged: dict = {}

    def _classify(self, spec, logodds, known, stamp_ns):
        c = self.config.confident_logodds
        lin = np.where(known, np.nan_to_num(np.asarray(logodds, dtype=np.float32)), 0.0)
        occ, free, near = lin >= c, lin <= -c, lin >= c
        m = int(math.ceil(self.config.motion_margin_m / spec.resolution - 1e-9))
        if m > 0 and occ.any():
            near = ndimage.maximum_filter(occ, size=2 * m + 1, mode='constant', cval=False)
        return {'spec': spec, 'stamp': stamp_ns, 'free': free, 'occ': occ, 'near': near}

    @staticmethod
    def _clear(st, reach, heading):
        near = st['near']
        if reach > 0 and near.any():
            k = np.arange(-reach, reach + 1)
            ix = np.rint(k * math.cos(heading)).astype(int)
            iy = np.rint(k * math.sin(heading)).astype(int)
            rx, ry = int(np.abs(ix).max()), int(np.abs(iy).max())
            line = np.zeros((2 * ry + 1, 2 * rx + 1), dtype=bool)
            line[iy + ry, ix + rx] = True
            near = ndimage.binary_dilation(near, line)
        return st['free'] & ~near

    def check(self, vid, spec, logodds, known, stamp_ns, heading):
        cfg = self.config
        mine = self._classify(spec, logodds, known, stamp_ns)
        occ = mine['occ']
        n = {key: np.zeros(spec.shape, dtype=np.int16) for key in ('free', 'occ', 'cmp_occ', 'occ_cmp')}
        for oid, other in self.latest.items():
            if oid == vid or abs(other['stamp'] - stamp_ns) > cfg.max_age_ns or self.flagged.get(oid):
                continue
            try:
                dx, dy = spec.lattice_offset(other['spec'])
            except ConfigError:
                continue
            x0, x1 = max(dx, 0), min(dx + other['spec'].width, spec.width)
            y0, y1 = max(dy, 0), min(dy + other['spec'].height, spec.height)
            if x0 >= x1 or y0 >= y1:
                continue
            me = (slice(y0, y1), slice(x0, x1))
            th = (slice(y0 - dy, y1 - dy), slice(x0 - dx, x1 - dx))
            reach = int(math.ceil(cfg.max_speed_mps * abs(other['stamp'] - stamp_ns) * 1e-9 / spec.resolution
                                  - 1e-9))
            w_free, w_occ = self._clear(other, reach, heading)[th], other['occ'][th]
            v_free, v_occ = self._clear(mine, reach, heading)[me], occ[me]
            n['free'][me] += v_occ & w_free
            n['occ'][me] += v_free & w_occ
            n['cmp_occ'][me] += v_occ & (w_free | w_occ)
            n['occ_cmp'][me] += w_occ & (v_free | v_occ)
        k = cfg.min_witnesses
        conflict = (n['free'] >= k) | (n['occ'] >= k)
        compared = (occ & (n['cmp_occ'] >= k)) | (n['occ_cmp'] >= k)
        n_conflict = int(np.count_nonzero(conflict))
        scored, n_scored = compared, n_conflict
        min_area = cfg.score_min_area_m2 / (spec.resolution * spec.resolution)
        if n_conflict and min_area > 1.0:
            labels, nl = ndimage.label(conflict, structure=EIGHT)
            small = np.bincount(labels.ravel(), minlength=nl + 1) < min_area
            small[0] = False
            clutter = small[labels]
            scored, n_scored = compared & ~clutter, n_conflict - int(np.count_nonzero(clutter))
        n_compared = int(np.count_nonzero(scored))
        score = self.score.get(vid, 1.0)
        if n_compared >= cfg.min_cells:
            score += cfg.score_smoothing * ((1.0 - n_scored / n_compared) - score)
        self.score[vid] = score
        self.flagged[vid] = score < cfg.flag_below
        prev = self.latest.get(vid)
        if prev is None or stamp_ns >= prev['stamp']:
            self.latest[vid] = mine
        out = logodds
        if n_conflict:
            out = np.where(conflict, logodds * np.float32(cfg.conflict_weight), logodds).astype(np.float32)
        return out, conflict, n_conflict, n_compared, score


def _scene(rng: np.random.Generator, spec: GridSpec, ghost: bool) -> tuple[np.ndarray, np.ndarray]:
    """Free road, a barrier, a few cars (one maybe a ghost only this vehicle sees), unknown and NaN cells."""
    lo = np.full(spec.shape, -1.2, dtype=np.float32)
    lo[-3:, :] = 2.0
    for x in (40, 120, 200) + ((rng.integers(60, 240),) if ghost else ()):
        y = int(rng.integers(10, 40))
        lo[y:y + 9, x + int(rng.integers(-2, 3)):x + 22] = 2.5
    lo += rng.normal(0.0, 0.3, spec.shape).astype(np.float32)
    known = rng.random(spec.shape) < 0.9
    lo[rng.random(spec.shape) < 0.005] = np.nan
    lo[rng.random(spec.shape) < 0.002] = np.inf
    return lo, known


@pytest.mark.parametrize('heading', [0.0, 0.05, -0.6])
@pytest.mark.parametrize('seed', range(3))
def test_check_equals_the_former_formulation(heading, seed):
    rng = np.random.default_rng(seed)
    cfg = ConsistencyConfig(min_witnesses=2, score_smoothing=0.5)
    new, old = ConsistencyChecker(cfg), _OldChecker(cfg)
    t = 10**9
    for step in range(16):
        vid = f'v{step % 5 + 1}'
        spec = GridSpec(-20.0 + int(rng.integers(0, 30)) * RES, -6.0 + int(rng.integers(0, 4)) * RES, RES,
                        int(rng.integers(240, 300)), 50)
        lo, known = _scene(rng, spec, ghost=vid == 'v2')
        stamp = t + step * 40_000_000 + int(rng.integers(-30, 30)) * 10**6
        r = new.check(vid, spec, lo, known, stamp, heading)
        want = old.check(vid, spec, lo, known, stamp, heading)
        np.testing.assert_array_equal(r.logodds, want[0])
        np.testing.assert_array_equal(r.conflict, want[1])
        assert (r.conflict_cells, r.compared_cells, r.score) == (want[2], want[3], want[4])
    assert new.status('v2').total_conflict_cells > 0
