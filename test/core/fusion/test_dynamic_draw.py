"""DynamicLayer.draw's near-drawn mask, grown object by object, against the former per-object dilation
(with the fuller-view rule for duplicates written out)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cooperative_fusion.core.fusion.dynamic import DynamicConfig, DynamicLayer, MovingObject
from cooperative_fusion.core.grid import GridSpec, logodds_to_percent

SPEC = GridSpec(-30.0, -8.0, 0.2, 300, 80)


def _old_draw(layer: DynamicLayer, spec: GridSpec, cells: np.ndarray, t_ns: int) -> np.ndarray:
    """The former draw, written out: the drawn cells dilated around each object before it is drawn."""
    out = np.array(cells, dtype=np.int8, copy=True)
    drawn = np.zeros(spec.shape, dtype=bool)
    drawn_by = np.full(spec.shape, '', dtype=object)
    drawn_as = np.full(spec.shape, -1)
    draws, replaced = [], set()
    r = int(round(layer.config.duplicate_radius_m / spec.resolution))
    for o in sorted(layer.objects(t_ns), key=lambda ob: -ob.stamp_ns):
        ix, iy = spec.world_to_cell(o.cells_at(t_ns))
        inside = spec.in_bounds(ix, iy)
        if not inside.any():
            continue
        ix, iy = ix[inside], iy[inside]
        if r >= 0 and drawn.any():
            x0, x1 = max(int(ix.min()) - r, 0), min(int(ix.max()) + r + 1, spec.width)
            y0, y1 = max(int(iy.min()) - r, 0), min(int(iy.max()) + r + 1, spec.height)
            near = drawn[y0:y1, x0:x1]
            if r > 0 and near.any():
                near = ndimage.binary_dilation(near, np.ones((2 * r + 1, 2 * r + 1), dtype=bool))
            if near[iy - y0, ix - x0].mean() >= 0.5:
                # A duplicate, unless it is another vehicle's fuller view (radar speed, none of its own
                # vehicle's cells near it, more cells than the others drew near it): then drawn instead.
                window = drawn_by[y0:y1, x0:x1]
                if not (o.source == 'radar' and o.vehicle_id not in window
                        and len(set(zip(ix.tolist(), iy.tolist()))) > np.count_nonzero(window != '')):
                    continue
                replaced |= {int(k) for k in drawn_as[y0:y1, x0:x1].ravel() if k >= 0}
        drawn_as[iy, ix] = len(draws)
        draws.append((ix, iy, logodds_to_percent(o.logodds[inside])))
        drawn[iy, ix] = True
        drawn_by[iy, ix] = o.vehicle_id
    for k, (ix, iy, pct) in enumerate(draws):
        if k not in replaced:
            out[iy, ix] = np.maximum(out[iy, ix], pct)
    return out


@pytest.mark.parametrize('radius', [0.0, 0.2, 1.0, 1.7])
@pytest.mark.parametrize('seed', range(5))
def test_draw_skips_the_same_duplicates_as_before(radius, seed):
    rng = np.random.default_rng(seed)
    layer = DynamicLayer(DynamicConfig(duplicate_radius_m=radius))
    t = 5 * 10**9
    objects = []
    for i in range(25):
        # Cars (some overlapping, some at or beyond the window's edge) seen by three vehicles.
        centre = np.array([rng.uniform(-36.0, 36.0), rng.choice([-9.0, -3.5, 0.0, 3.5])])
        cx, cy = np.meshgrid(np.arange(-2.2, 2.3, 0.2), np.arange(-0.8, 0.9, 0.2))
        xy = np.stack([cx.ravel(), cy.ravel()], axis=1) + centre
        xy = xy[rng.random(len(xy)) < 0.6]
        objects.append(MovingObject(f'v{i % 3 + 1}', xy, rng.uniform(0.5, 3.0, len(xy)).astype(np.float32),
                                    np.array([rng.uniform(-30.0, 30.0), 0.0]), t - int(rng.integers(0, 250)) * 10**6,
                                    str(rng.choice(['radar', 'track']))))
    for o in objects:
        layer._objects.setdefault(o.vehicle_id, []).append(o)
    cells = rng.integers(-1, 101, SPEC.shape).astype(np.int8)
    want = _old_draw(layer, SPEC, cells, t)
    got = layer.draw(SPEC, cells, t)
    np.testing.assert_array_equal(got, want)
    assert np.count_nonzero(got != cells) > 0


def test_draw_with_empty_and_outside_objects_matches_the_former_draw():
    # Cells of every object moved in one pass: an object without cells, one wholly outside the window and
    # one half outside sit between drawn ones and must not shift the others' cells.
    t = 5 * 10**9
    layer = DynamicLayer(DynamicConfig(duplicate_radius_m=1.0))
    cx, cy = np.meshgrid(np.arange(-2.2, 2.3, 0.2), np.arange(-0.8, 0.9, 0.2))
    car = np.stack([cx.ravel(), cy.ravel()], axis=1)
    specs = [((0.0, 0.0), (12.0, 0.0), 0), (None, (5.0, 0.0), 1), ((200.0, 0.0), (0.0, 0.0), 2),
             ((-30.5, 3.5), (3.0, 0.0), 3), ((10.0, 3.5), (-20.0, 0.0), 4), ((0.4, 0.0), (12.0, 0.0), 5)]
    for centre, v, age in specs:
        xy = np.zeros((0, 2)) if centre is None else car + np.array(centre)
        layer._objects.setdefault('v1', []).append(
            MovingObject('v1', xy, np.full(len(xy), 2.0, np.float32), np.array(v), t - age * 50 * 10**6, 'radar'))
    cells = np.full(SPEC.shape, -1, np.int8)
    got = layer.draw(SPEC, cells, t)
    np.testing.assert_array_equal(got, _old_draw(layer, SPEC, cells, t))
    drawn = np.count_nonzero(got == logodds_to_percent(np.array([2.0], np.float32))[0])
    assert 1.5 * len(car) < drawn < 2.5 * len(car)      # two whole cars, part of one; not the duplicate (age 5)
