"""Where the sensor-to-grid latency of a lock-step run goes, per evidence message, in sim time.

    python scripts/latency_breakdown.py --truth SCENARIO_BAG --result RESULT_BAG

For each ``/<v>/evidence_grid`` (stamp = the cycle's common time) it finds the lidar sweep that
made it (scenario bag: log time of the ``/<v>/lidar/points`` whose stamp, mapped to common time
through the vehicle's ``time_reference`` pairs, plus the output stamp offset is nearest the
evidence stamp) and the first ``/cooperative/grid`` published at or after the evidence. It prints
p50 / p95 / max of: sensor delivery (lidar arrival - evidence stamp: the sweep ends after the
stamp), vehicle waits (evidence publish - lidar arrival: sync partners, odometry), fusion publish
wait (grid - evidence publish) and the total (the report's ``fusion_latency_ms``).
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

_TS = get_typestore(Stores.ROS2_HUMBLE)


def _stamp(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--truth', required=True, help='scenario bag (inputs)')
    ap.add_argument('--result', required=True, help='result bag of run --bag')
    ap.add_argument('--offset-s', type=float, default=0.05, help='vehicle output_stamp_offset_s')
    args = ap.parse_args()
    lidar: dict[str, list[tuple[int, int]]] = defaultdict(list)      # v -> (stamp vehicle, log)
    ref: dict[str, list[tuple[int, int]]] = defaultdict(list)        # v -> (vehicle, common)
    with Reader(args.truth) as r:
        conns = [c for c in r.connections if c.topic.endswith('/lidar/points') or c.topic.endswith('/time_reference')]
        for conn, t, raw in r.messages(connections=conns):
            v = conn.topic.split('/')[1]
            if conn.topic.endswith('/lidar/points'):
                # header only: the cloud is large, deserialize it anyway (rosbags has no partial read)
                lidar[v].append((_stamp(_TS.deserialize_cdr(raw, conn.msgtype)), t))
            else:
                m = _TS.deserialize_cdr(raw, conn.msgtype)
                ref[v].append((_stamp(m), int(m.time_ref.sec) * 1_000_000_000 + int(m.time_ref.nanosec)))
    evidence: list[tuple[str, int, int]] = []
    grids: list[int] = []
    with Reader(args.result) as r:
        conns = [c for c in r.connections if c.topic.endswith('/evidence_grid') or c.topic == '/cooperative/grid']
        for conn, t, raw in r.messages(connections=conns):
            if conn.topic == '/cooperative/grid':
                grids.append(t)
            else:
                evidence.append((conn.topic.split('/')[1], _stamp(_TS.deserialize_cdr(raw, conn.msgtype)), t))
    grids_a = np.sort(np.array(grids, dtype=np.int64))
    fit = {}
    for v, pairs in ref.items():
        a = np.array(pairs, dtype=np.float64)
        slope, icpt = np.polyfit(a[:, 0] - a[0, 0], a[:, 1] - a[0, 0], 1)
        fit[v] = (a[0, 0], slope, icpt)
    offset_ns = int(round(args.offset_s * 1e9))
    rows = []
    for v, stamp, log in evidence:
        x0, slope, icpt = fit[v]
        ls = np.array([s for s, _ in lidar[v]], dtype=np.float64)
        common = x0 + icpt + slope * (ls + offset_ns - x0)
        i = int(np.argmin(np.abs(common - stamp)))
        arrival = lidar[v][i][1]
        j = int(np.searchsorted(grids_a, log, side='left'))
        if j == grids_a.size:
            continue
        rows.append((arrival - stamp, log - arrival, int(grids_a[j]) - log, int(grids_a[j]) - stamp))
    a = np.array(rows, dtype=np.float64) / 1e6
    print(f'{len(rows)} evidence grids, {grids_a.size} common grids')
    for k, name in enumerate(('sensor delivery (lidar arrival - evidence stamp)',
                              'vehicle waits (evidence publish - lidar arrival)',
                              'fusion publish wait (grid - evidence publish)',
                              'total (fusion_latency_ms)')):
        col = a[:, k]
        print(f'{name:<52} p50 {np.percentile(col, 50):6.1f}  p95 {np.percentile(col, 95):6.1f}  '
              f'max {col.max():6.1f} ms')


if __name__ == '__main__':
    main()
