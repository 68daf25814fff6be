"""Per-message cost of the odometry path in the twin and the fusion node, and of the twin's road per cycle.

Replays the odometry and time references of a bag (default: 20 s of the default scenario) through
the real node callbacks, in-process, without spinning: the twin's ``_odom_cb`` (decode, pose, covariance
check, ``Platoon.add_odometry``: clock mapping, link statistics) and the fusion's ``_on_odom`` (decode,
covariance, pose, ``CooperativeFusion.add_odometry``). Every ``--cycle-ms`` of log time it takes the
platoon at that stamp (``Platoon.state_at``) and feeds the twin's road (``RoadTracker.update_platoon`` and
``model()``: the refit), as a twin cycle does.

Prints CPU microseconds per message / per cycle (median of ``--repeats``), a reference measured in the same
run (a fixed workload of small numpy calls), and a digest of every output (platoon snapshots, roads, the
fusion's vehicle states), so two versions of the code can be compared for speed and bit-identical results:
run it with ``PYTHONPATH`` on each checkout. Without ``--bag`` it simulates the default scenario first (into
a temporary directory, removed afterwards). Last line: ``odom_twin_us=... odom_fusion_us=... ...``.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.context import Context

import cooperative_fusion
from cooperative_fusion.core.road import RoadTracker
from cooperative_fusion.core.twin.edge import EdgeTwin
from cooperative_fusion.core.fusion.cooperative import CooperativeFusion
from cooperative_fusion.nodes.fusion_node import FusionNode
from cooperative_fusion.nodes.twin_node import TwinNode
from cooperative_fusion.ros.bag import BagReader
from cooperative_fusion.ros.time import time_reference_to_ns

SCENARIO = Path(__file__).resolve().parents[1] / 'config' / 'scenarios' / 'highway_occlusion.yaml'


def load(bag: str) -> list[tuple[str, str, int, object]]:
    """(kind, vehicle, log time ns, payload): odometry as raw CDR bytes, time references as (vehicle, common) ns."""
    out = []
    with BagReader(bag) as r:
        topics = [t for t in r.topics() if t.endswith('/odom') or t.endswith('/time_reference')]
        for topic, msgtype, t, raw in r.messages(topics):
            vid = topic.split('/')[1]
            if topic.endswith('/odom'):
                out.append(('odom', vid, t, raw))
            else:
                out.append(('tref', vid, t, time_reference_to_ns(BagReader.deserialize(msgtype, raw))))
    return out


def replay(twin: TwinNode, fusion: FusionNode, msgs: list, cycle_ns: int, digest: hashlib._Hash
           ) -> tuple[float, float, float, float, int, int]:
    """CPU seconds of the twin odometry, the fusion odometry, state_at and the road; odometry count, cycles."""
    twin.edge = EdgeTwin(twin.cfg)
    fusion.core = CooperativeFusion(fusion.cfg)
    now = [0]
    twin.now_ns = fusion.now_ns = lambda: now[0]
    twin_cbs = {v: twin._odom_cb(v) for v in twin.cfg.vehicles}
    platoon, road = twin.edge.inputs.platoon, RoadTracker(twin.cfg.twin.road)
    t_twin = t_fusion = t_state = t_road = 0.0
    n_odom = n_cycles = 0
    next_cycle = None
    clock = time.process_time
    for kind, vid, t, payload in msgs:
        now[0] = t
        if next_cycle is None:
            next_cycle = t + cycle_ns
        while t >= next_cycle:
            t0 = clock()
            snap = platoon.state_at(next_cycle, next_cycle)
            t1 = clock()
            road.update_platoon(next_cycle, snap.ids, snap.x, snap.y, snap.heading)
            model = road.model()
            t2 = clock()
            t_state += t1 - t0
            t_road += t2 - t1
            n_cycles += 1
            digest.update(repr((snap.ids, snap.ages_ns, [str(d) for d in snap.degraded], model)).encode())
            for a in (snap.x, snap.y, snap.speed, snap.heading, snap.accel):
                digest.update(a.tobytes())
            next_cycle += cycle_ns
        if kind == 'tref':
            platoon.add_time_reference(vid, *payload)
            fusion.core.add_time_reference(*payload, vehicle_id=vid)
            continue
        t0 = clock()
        twin_cbs[vid](payload)
        t1 = clock()
        fusion._on_odom(vid, payload)
        t2 = clock()
        t_twin += t1 - t0
        t_fusion += t2 - t1
        n_odom += 1
        st = fusion.core.vehicles[vid]
        digest.update(repr((st.yaw, st.speed, st.pose_ns)).encode() + st.position.tobytes() + st.cov_xy.tobytes())
    for v, veh in platoon.vehicles.items():
        digest.update(repr((v, veh.link.latency_ns(now[0]), veh.link.missing_share(now[0]), veh.link.reordered,
                            veh.link.duplicates, veh.clock.offset_ns, veh.clock.drift_ppm)).encode())
    return t_twin, t_fusion, t_state, t_road, n_odom, n_cycles


def simulated(duration_s: float, work: Path) -> Path:
    """The default scenario simulated for ``duration_s`` into ``work``/scenario (the scenario's seed)."""
    from cooperative_fusion.sim.bag_writer import write_simulation
    from cooperative_fusion.sim.scenario import load_scenario
    from cooperative_fusion.sim.world import Simulation

    bag = work / 'scenario'
    write_simulation(Simulation(load_scenario(SCENARIO)).events(duration_s=duration_s), bag, progress=False,
                     overwrite=True)
    return bag


def reference_us() -> float:
    """CPU µs of a fixed workload of small numpy calls and Python float work (median of 5), for ratios."""
    a, times = np.arange(64, dtype=np.int64), []
    for _ in range(5):
        t0 = time.process_time()
        for k in range(2000):
            b = (a * 3 + k).astype(np.float64)
            float(np.abs(b - 7.0).max()) + sum(float(x) for x in b[:13])
        times.append(1e6 * (time.process_time() - t0) / 2000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--bag', default=None, help='bag to replay (default: simulate the default scenario)')
    ap.add_argument('--duration', type=float, default=20.0, help='seconds to simulate without --bag')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--cycle-ms', type=float, default=100.0, help='twin cycle period in log time, ms')
    args = ap.parse_args()
    if args.bag is None:
        with tempfile.TemporaryDirectory(prefix='bench_odometry-') as work:
            msgs = load(str(simulated(args.duration, Path(work))))
    else:
        msgs = load(args.bag)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=random.SystemRandom().randint(101, 200))
    try:
        twin, fusion = TwinNode(context=ctx), FusionNode(context=ctx)
        rows, digests = [], set()
        for _ in range(args.repeats):
            h = hashlib.sha256()
            rows.append(replay(twin, fusion, msgs, int(args.cycle_ms * 1e6), h))
            digests.add(h.hexdigest()[:16])
        twin.destroy_node()
        fusion.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
    n_odom, n_cycles = rows[0][4], rows[0][5]
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f'code {Path(cooperative_fusion.__file__).parent}')
    print(f'odometry messages {n_odom}, cycles {n_cycles}, repeats {args.repeats}')
    print(f'twin odometry    {1e6 * med[0] / n_odom:8.1f} us/message')
    print(f'fusion odometry  {1e6 * med[1] / n_odom:8.1f} us/message')
    print(f'state_at         {1e6 * med[2] / n_cycles:8.1f} us/cycle')
    print(f'road             {1e6 * med[3] / n_cycles:8.1f} us/cycle')
    ref = reference_us()
    print(f'reference        {ref:8.1f} us (fixed small-numpy workload, same run)')
    print(f'digest {" ".join(sorted(digests))}')
    us = [1e6 * med[0] / n_odom, 1e6 * med[1] / n_odom, 1e6 * med[2] / n_cycles, 1e6 * med[3] / n_cycles]
    print(f'odom_twin_us={us[0]:.1f} odom_fusion_us={us[1]:.1f} state_at_us={us[2]:.1f} road_us={us[3]:.1f} '
          f'reference_us={ref:.1f} digest={"/".join(sorted(digests))}')


if __name__ == '__main__':
    main()
