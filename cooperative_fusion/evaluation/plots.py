"""Pictures of an evaluation (matplotlib, Agg backend: no display needed).

- :func:`plot_see_through`: truth | common grid | one vehicle's ego-only grid
  at one truth frame (the moment a hazard is hidden from that vehicle), with the
  platoon and hazard boxes drawn, cropped to the ROI, axes in metres. The three
  panels are stacked (the ROI is some 165 m long and 21 m wide).
- :func:`plot_metrics`: bars of each grid metric, cooperative against
  ego-only, per vehicle.

Cells are drawn white (free) to black (occupied), unknown (-1) light blue-grey.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..core.evaluation import SeeThroughSnapshot
    from ..core.grid import GridSpec

UNKNOWN_RGB = (0.78, 0.82, 0.88)
PLATOON_COLOR = '#1f9e3a'
HAZARD_COLOR = '#d62728'
OTHER_COLOR = '#1f5fd6'
GRID_METRICS = ('object_recall', 'see_through_recall', 'occupied_precision', 'free_accuracy', 'occupancy_iou')


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def cells_to_rgb(cells: 'NDArray[np.integer]') -> 'NDArray[np.float32]':
    """(H, W, 3) float32 image of OccupancyGrid cells: grey level 1 - p, unknown in UNKNOWN_RGB."""
    import numpy as np

    cells = np.asarray(cells)
    known = (cells >= 0) & (cells <= 100)
    grey = 1.0 - np.where(known, cells, 0).astype(np.float32) / 100.0
    rgb = np.repeat(grey[..., None], 3, axis=2)
    rgb[~known] = UNKNOWN_RGB
    return rgb


def _extent(spec: 'GridSpec') -> tuple[float, float, float, float]:
    return (spec.origin_x, spec.origin_x + spec.size_x, spec.origin_y, spec.origin_y + spec.size_y)


def _crop(spec: 'GridSpec', roi: 'NDArray[np.bool_]', margin_m: float = 2.0) -> tuple[float, float, float, float]:
    """x0, x1, y0, y1 (metres) of the ROI's bounding box plus a margin; the whole grid without an ROI."""
    import numpy as np

    rows, cols = np.nonzero(roi)
    if rows.size == 0:
        return _extent(spec)
    res = spec.resolution
    return (spec.origin_x + cols.min() * res - margin_m, spec.origin_x + (cols.max() + 1) * res + margin_m,
            spec.origin_y + rows.min() * res - margin_m, spec.origin_y + (rows.max() + 1) * res + margin_m)


def plot_see_through(path: str | Path, snap: 'SeeThroughSnapshot') -> Path:
    """Write the truth | common | ego-only picture of ``snap`` to ``path`` (PNG); returns the path."""
    import numpy as np
    from matplotlib.patches import Polygon

    plt = _pyplot()
    panels = [('truth', snap.truth_cells), ('common grid (all vehicles)', snap.common_cells),
              (f'{snap.vehicle} ego-only', snap.ego_cells)]
    x0, x1, y0, y1 = _crop(snap.spec, snap.roi)
    aspect_h = max(1.2, 11.0 * (y1 - y0) / max(x1 - x0, 1e-6))
    fig, axes = plt.subplots(3, 1, figsize=(11.0, 3 * aspect_h + 1.2), sharex=True, sharey=True,
                             layout='constrained')
    for ax, (title, cells) in zip(axes, panels):
        if cells is None:
            ax.text(0.5, 0.5, f'no evidence from {snap.vehicle}', transform=ax.transAxes, ha='center', va='center')
        else:
            ax.imshow(cells_to_rgb(cells), origin='lower', extent=_extent(snap.spec), interpolation='nearest')
        for box in snap.boxes:
            if box.id in snap.platoon_ids:
                color, label = PLATOON_COLOR, box.id
            elif box.id in snap.hazard_ids:
                color, label = HAZARD_COLOR, box.id
            else:
                color, label = OTHER_COLOR, ''
            # Drawn in the grid's frame (map, unless the grid is turned along the road).
            ax.add_patch(Polygon(snap.spec.to_grid_frame(box.corners()), closed=True, fill=False, edgecolor=color,
                                 linewidth=1.4))
            bx, by = snap.spec.to_grid_frame(np.array([box.center_x, box.center_y])).tolist()
            if label and x0 <= bx <= x1 and y0 <= by <= y1:
                ax.annotate(label, (bx, by + 0.5 * box.width + 0.3), color=color,
                            fontsize=8, ha='center', va='bottom')
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_title(f'{title}: t = {snap.stamp_ns * 1e-9:.1f} s (common time)', fontsize=10)
        ax.set_ylabel('y [m]' if not snap.spec.is_rotated else 'across the grid [m]')
        ax.set_aspect('equal')
    axes[-1].set_xlabel('x [m]' if not snap.spec.is_rotated else
                        f'along the grid (turned {math.degrees(snap.spec.yaw):.0f} deg in map) [m]')
    fig.suptitle(f'See-through for {snap.vehicle}: {snap.reason}', fontsize=10)
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_metrics(path: str | Path, report: Mapping[str, Any]) -> Path:
    """Write bars of each grid metric, cooperative vs ego-only per vehicle, to ``path`` (PNG)."""
    import numpy as np

    plt = _pyplot()
    vids = list(report.get('vehicles') or [])
    fig, axes = plt.subplots(1, len(GRID_METRICS), figsize=(3.2 * len(GRID_METRICS), 3.6), sharey=True,
                             layout='constrained')
    x = np.arange(len(vids))
    for ax, key in zip(axes, GRID_METRICS):
        coop = report.get(key)
        ego = report.get(f'ego_only_{key}') or {}
        if key == 'see_through_recall':
            coop_v = [(coop or {}).get(v) for v in vids]
        else:
            coop_v = [coop for _ in vids]
        ego_v = [ego.get(v) for v in vids]
        for offset, values, label, color in ((-0.2, coop_v, 'cooperative', PLATOON_COLOR),
                                             (0.2, ego_v, 'ego-only', '#888888')):
            heights = [0.0 if v is None else float(v) for v in values]
            bars = ax.bar(x + offset, heights, 0.38, label=label, color=color)
            for bar, v in zip(bars, values):
                ax.annotate('n/a' if v is None else f'{float(v):.2f}',
                            (bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01), ha='center', fontsize=7)
        ax.set_xticks(x, vids)
        ax.set_ylim(0.0, 1.1)
        ax.set_title(key.replace('_', ' '), fontsize=10)
        ax.set_xlabel('vehicle')
    axes[0].set_ylabel('fraction')
    axes[0].legend(fontsize=8, loc='lower left')
    fig.suptitle(f"Cooperative vs ego-only: {report.get('scenario') or ''}", fontsize=10)
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
