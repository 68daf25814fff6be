"""Where the false occupied cells away from the platoon are: a breakdown of a result bag against its truth.

Usage::

    python scripts/false_cells.py --truth TRUTH_BAG --result RESULT_BAG [--json OUT.json]

It scores the result bag as ``cooperative-fusion evaluate`` does (same truth frames, same ROI, the newest
common grid at most 0.2 s old) and, for each occupied cell of the common grid in the ROI that is not on a
platoon member's box (dilated by one cell) and not in the true occupancy dilated by one cell (a *false cell
away from the platoon*, what lowers ``occupied_precision_away_from_platoon``), finds:

- its class, the first that applies: ``edge`` (within 2 cells of the grid window's border), ``moving``
  (within 3 m of a moving traffic box, nearest to it), ``platoon`` (within 3 m of a platoon member's box),
  ``static`` (within 3 m of a standing object), ``free`` (further from every box);
- for ``moving``/``platoon``: where it lies in the box's frame: ``behind``/``ahead`` (beyond the rear/front
  face along the heading: a trailing/leading smear), ``side``, or ``corner``, and how far (0.2 m bins);
- which vehicles' own (ego-only) grids hold it occupied at that stamp (``only:<v>``, ``several``, or
  ``none``: drawn by the dynamic layer or by the members' boxes only);
- whether a radar target of any vehicle (within 0.1 s) lies within 1 m of it (``radar_near``).

Counts are summed over frames and printed as tables; ``--json`` writes them too.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cooperative_fusion.core.evaluation import RoiConfig, cells_on  # noqa: E402
from cooperative_fusion.core.metrics import OCCUPIED_PERCENT, Box, _distance_to_box  # noqa: E402
from cooperative_fusion.evaluation.report import (_RADAR_TARGETS_RE, _Evaluator,  # noqa: E402
                                                  default_fusion_config_path, default_twin_config_path,
                                                  prediction_horizons, read_truth, twin_judgement)

NEAR_M = 3.0
EDGE_CELLS = 2
RADAR_NEAR_M = 1.0
RADAR_MAX_DT_NS = 100_000_000


def _where(box: Box, xy: np.ndarray) -> list[str]:
    """Side of the box each point (N, 2) lies on: behind, ahead, side, corner."""
    loc = box.to_local(xy)
    out_x = np.abs(loc[:, 0]) > 0.5 * box.length
    out_y = np.abs(loc[:, 1]) > 0.5 * box.width
    rear = loc[:, 0] < 0
    if math.hypot(box.vx, box.vy) > 0.5:
        # Behind / ahead relative to the motion, not the box's heading.
        heading = math.atan2(box.vy, box.vx)
        if math.cos(heading - box.yaw) < 0:
            rear = ~rear
    return ['corner' if ox and oy else ('behind' if r else 'ahead') if ox else 'side' if oy else 'inside'
            for ox, oy, r in zip(out_x, out_y, rear)]


class Analyser(_Evaluator):
    """The evaluator, plus a breakdown of the false cells away from the platoon at each scored frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.classes: Counter[str] = Counter()
        self.per_object: Counter[str] = Counter()
        self.per_vehicle: Counter[str] = Counter()
        self.distance: dict[str, Counter[float]] = {}
        self.away = 0
        self.away_true = 0
        self.radar: dict[str, tuple[int, np.ndarray]] = {}
        self.per_time: Counter[int] = Counter()
        self.per_time_class: dict[str, Counter[int]] = {}

    def handle(self, bag: Any, topic: str, msgtype: str, log_ns: int, raw: bytes) -> None:
        m = _RADAR_TARGETS_RE.match(topic)
        if m:
            from cooperative_fusion.ros.pointcloud import cloud_to_array, xyz
            from cooperative_fusion.ros.time import stamp_to_ns

            msg = bag.deserialize(msgtype, raw)
            pts, _ = cloud_to_array(msg)
            self.radar[m.group(1)] = (stamp_to_ns(msg.header.stamp), xyz(pts)[:, :2])
        super().handle(bag, topic, msgtype, log_ns, raw)

    def score_frame(self, k: int) -> None:
        super().score_frame(k)
        tf = self.frame(k)
        if tf is None:
            return
        t = int(self.stamps[k])
        common = self._fresh(self.common, t)
        if common is None:
            return
        spec, cells = cells_on(*common, tf.spec)
        from cooperative_fusion.core.metrics import overlay

        cells = overlay(spec, cells, tf.spec)
        away = (cells >= OCCUPIED_PERCENT) & tf.region & ~tf.platoon_area
        self.away += int(away.sum())
        self.away_true += int((away & tf.occupied_dilated).sum())
        false = away & ~tf.occupied_dilated
        if not false.any():
            return
        self.per_time[int((t - int(self.stamps[0])) // 1_000_000_000)] += int(false.sum())
        iy, ix = np.nonzero(false)
        s = tf.spec
        xy = s.to_map_frame(np.stack([s.origin_x + (ix + 0.5) * s.resolution,
                                      s.origin_y + (iy + 0.5) * s.resolution], axis=1))
        edge = (ix < EDGE_CELLS) | (iy < EDGE_CELLS) | (ix >= s.width - EDGE_CELLS) | (iy >= s.height - EDGE_CELLS)
        boxes = list(tf.boxes)
        if boxes:
            dist = np.stack([_distance_to_box(b, xy) for b in boxes], axis=1)
            nearest = dist.argmin(axis=1)
            dmin = dist[np.arange(len(xy)), nearest]
        else:
            nearest = np.zeros(len(xy), dtype=int)
            dmin = np.full(len(xy), np.inf)
        ego_occ = {}
        for vid, item in self.ego_latest.items():
            fresh = self._fresh(item, t)
            if fresh is not None:
                es, ec = cells_on(*fresh, tf.spec)
                ego_occ[vid] = overlay(es, ec, tf.spec)[iy, ix] >= OCCUPIED_PERCENT
        radar_near = np.zeros(len(xy), dtype=bool)
        for vid, (stamp, pts) in self.radar.items():
            if abs(stamp - t) <= RADAR_MAX_DT_NS and len(pts):
                d = np.hypot(xy[:, None, 0] - pts[None, :, 0], xy[:, None, 1] - pts[None, :, 1]).min(axis=1)
                radar_near |= d <= RADAR_NEAR_M
        for j in range(len(xy)):
            b = boxes[nearest[j]] if boxes else None
            if edge[j]:
                cls, where, obj = 'edge', '', ''
            elif b is not None and dmin[j] <= NEAR_M:
                moving = math.hypot(b.vx, b.vy) > 0.5
                cls = ('platoon' if b.id in tf.sensors else 'moving' if moving else 'static')
                where, obj = _where(b, xy[j:j + 1])[0], b.id
                key = f'{cls}:{where}'
                self.distance.setdefault(key, Counter())[round(math.ceil(dmin[j] / 0.2) * 0.2, 1)] += 1
            else:
                cls, where, obj = 'free', '', ''
            holders = [v for v, occ in ego_occ.items() if occ[j]]
            who = 'none' if not holders else f'only:{holders[0]}' if len(holders) == 1 else 'several'
            self.counts[(cls, where, who, 'radar' if radar_near[j] else '')] += 1
            self.classes[cls if not where else f'{cls}:{where}'] += 1
            self.per_time_class.setdefault(cls, Counter())[int((t - int(self.stamps[0])) // 1_000_000_000)] += 1
            if obj:
                self.per_object[f'{cls}:{obj}:{where}'] += 1
            for v in holders:
                self.per_vehicle[v] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--truth', type=Path, required=True, help='truth bag (cooperative-fusion simulate)')
    parser.add_argument('--result', type=Path, required=True, help='result bag (cooperative-fusion run --record)')
    parser.add_argument('--json', type=Path, default=None, help='write the counts as JSON here')
    args = parser.parse_args(argv)
    truth = read_truth(args.truth)
    twin = default_twin_config_path()
    an = Analyser(truth, args.result, RoiConfig(), default_fusion_config_path(), prediction_horizons(twin), None,
                  *twin_judgement(twin))
    an.run()
    false = sum(an.classes.values())
    print(f'away cells {an.away}, true {an.away_true}, false {false}, '
          f'precision away {an.away_true / max(an.away, 1):.3f}')
    print('\nclass (share of false cells):')
    for key, n in an.classes.most_common():
        print(f'  {key:20s} {n:7d}  {n / max(false, 1):.3f}')
    print('\nclass, side, ego grids holding it, radar within 1 m:')
    for key, n in an.counts.most_common(25):
        print(f'  {" / ".join(k or "-" for k in key):40s} {n:7d}')
    print('\nper object and side (top 30):')
    for key, n in an.per_object.most_common(30):
        print(f'  {key:20s} {n:7d}')
    print('\nper vehicle ego grid holding a false cell:')
    for key, n in an.per_vehicle.most_common():
        print(f'  {key:10s} {n:7d}')
    print('\ndistance from the box (m, upper bin edge) for moving:behind / moving:ahead / moving:side / platoon:*:')
    for key in sorted(an.distance):
        if key.startswith(('moving', 'platoon')):
            d = an.distance[key]
            print(f'  {key:18s} ' + ' '.join(f'{b:.1f}:{d[b]}' for b in sorted(d)[:16]))
    print('\nfalse cells per second of the run:', ' '.join(f'{s}:{n}' for s, n in sorted(an.per_time.items())))
    for cls, per in sorted(an.per_time_class.items()):
        print(f'  {cls:8s}', ' '.join(f'{s}:{n}' for s, n in sorted(per.items())))
    if args.json is not None:
        args.json.write_text(json.dumps({
            'away': an.away, 'away_true': an.away_true, 'classes': dict(an.classes),
            'counts': {'|'.join(k): n for k, n in an.counts.items()}, 'per_object': dict(an.per_object),
            'per_vehicle': dict(an.per_vehicle), 'per_second': dict(an.per_time),
            'distance': {k: {str(b): n for b, n in v.items()} for k, v in an.distance.items()}}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
