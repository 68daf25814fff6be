"""Benchmark: a received lidar cloud / evidence grid / odometry -> numpy, rclpy messages against raw CDR decoding.

For each of the inputs subscribed with ``raw=True`` (issue 12) — the vehicle
node's lidar PointCloud2, the fusion node's evidence OccupancyGrid, every node's
Odometry (200 messages a second at the fusion and the twin with 4 vehicles) —
takes the serialized messages of a recorded bag and times, per message, what a
callback did before (rclpy ``deserialize_message``, which is what the executor
does for a typed subscription, then the ``ros/`` adapter) and what it does now
(:mod:`cooperative_fusion.ros.cdr_decode`, then the same adapter). Both run
interleaved in the same process, so machine load hits both alike; CPU time
(``process_time``) per message, median over rounds.

With ``--dds``, also the whole receive path: a publisher process sends the
lidar clouds (serialized, at 100 Hz) over DDS on an isolated domain; this
process takes them with a typed or a raw subscription (alternating runs) and
does the same conversion; CPU time of this process per received message. The
same for odometry, with the EventsExecutor the nodes spin.

Run: ``python benchmarks/bench_cdr_decode.py [BAG] [--rounds N] [--dds]`` (default bag:
/work/baseline/scn, a simulated run of the default scenario, ``cooperative-fusion simulate``;
without a bag, random clouds of the simulated lidar's layout (``--points``, 9314) stand in; without
evidence grids in it, random grids of the full shared window, 375 x 100 cells). The last
line is ``lidar_msg_ms=<a> lidar_raw_ms=<b> lidar_ratio=<a/b> grid_msg_ms=... grid_ratio=... odom_...``.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import PointCloud2

from cooperative_fusion.core.grid import GridSpec, percent_to_logodds
from cooperative_fusion.core.types import PoseSample
from cooperative_fusion.ros.bag import BagReader
from cooperative_fusion.ros.cdr import serialize_cdr
from cooperative_fusion.ros.cdr_decode import decode_occupancy_grid, decode_odometry, decode_point_cloud2
from cooperative_fusion.ros.grid import grid_from_msg, grid_to_msg
from cooperative_fusion.ros.odometry import covariance_is_psd, odometry_to_pose, pose_to_odometry
from cooperative_fusion.ros.pointcloud import array_to_cloud, cloud_to_array, from_columns, xyz

DEFAULT_BAG = '/work/baseline/scn'
DDS_QOS = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
MAX_MESSAGES = 20


def lidar_work(msg: Any) -> None:
    """What the vehicle node's lidar callback converts."""
    points, _ = cloud_to_array(msg)
    xyz(points)
    if 't' in (points.dtype.names or ()):
        points['t']


def grid_work(msg: Any) -> None:
    """What the fusion node's evidence callback converts (up to the core)."""
    _, cells = grid_from_msg(msg)
    percent_to_logodds(cells)


def odom_work(msg: Any) -> None:
    """What the twin node's odometry callback converts (the fusion's and the vehicle node's do about as much)."""
    covariance_is_psd(odometry_to_pose(msg).covariance)


#: kind -> (message class, topic, work) of the ``--dds`` runs
DDS_KINDS = {'lidar': (PointCloud2, '/bench/lidar', lidar_work), 'odom': (Odometry, '/bench/odom', odom_work)}


def _nothing(msg: Any) -> None:
    pass


def per_message_ms(raws: list[bytes], convert: Callable[[bytes], Any], work: Callable[[Any], None]) -> float:
    t0 = time.process_time()
    for raw in raws:
        work(convert(raw))
    return 1e3 * (time.process_time() - t0) / len(raws)


def publish(kind: str, clouds: list[bytes], count: int) -> None:
    """Publisher side of ``--dds``: wait for a subscriber, send ``count`` messages of ``kind`` (serialized
    ``clouds``) at 100 Hz, linger."""
    import rclpy
    rclpy.init()
    node = rclpy.create_node('bench_cdr_publisher')
    msg_type, topic, _ = DDS_KINDS[kind]
    pub = node.create_publisher(msg_type, topic, DDS_QOS)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    for i in range(count):
        pub.publish(clouds[i % len(clouds)])
        time.sleep(0.01)
    time.sleep(2.0)
    node.destroy_node()
    rclpy.shutdown()


def receive_ms(bag: str, points: int, raw: bool, count: int, events: bool = False, kind: str = 'lidar',
               steps: bool = False) -> float:
    """CPU ms of this process per message of ``kind`` (``lidar``: clouds of ``bag``, ``odom``: odometry)
    received over DDS (typed or raw subscription) and converted; a publisher process sends ``count``.
    ``events``: rclpy's EventsExecutor (rclpy.experimental, what the nodes spin) instead of the
    SingleThreadedExecutor; ``steps``: it runs in 0.1 s ``spin_until_future_complete`` steps (as
    ``ros.node.spin`` does) instead of one ``spin_once`` per message."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.experimental import EventsExecutor
    from rclpy.task import Future
    domain = random.SystemRandom().randint(102, 200)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node('bench_cdr_subscriber', context=ctx)
    cpu: list[float] = []
    msg_type, topic, work = DDS_KINDS[kind]
    decode = decode_odometry if kind == 'odom' else decode_point_cloud2
    convert = decode if raw else (lambda m: m)

    def on_message(msg: Any) -> None:
        work(convert(msg))
        cpu.append(time.process_time())

    node.create_subscription(msg_type, topic, on_message, DDS_QOS, raw=raw)
    executor = (EventsExecutor if events else SingleThreadedExecutor)(context=ctx)
    executor.add_node(node)
    proc = subprocess.Popen([sys.executable, __file__, '--publish', kind, '--count', str(count),
                             '--bag', bag, '--points', str(points)], env=env)
    never = Future()
    try:
        deadline = time.monotonic() + 60.0 + count * 0.05
        while len(cpu) < count and time.monotonic() < deadline and proc.poll() is None:
            if steps:
                executor.spin_until_future_complete(never, timeout_sec=0.1)
            else:
                executor.spin_once(timeout_sec=0.1)
    finally:
        proc.wait(timeout=30)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    if len(cpu) < count // 2:
        raise RuntimeError(f'only {len(cpu)} of {count} {kind} messages arrived')
    return 1e3 * (cpu[-1] - cpu[0]) / (len(cpu) - 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('bag', nargs='?', default=DEFAULT_BAG)
    ap.add_argument('--rounds', type=int, default=15)
    ap.add_argument('--dds', action='store_true', help='also time the receive path over DDS')
    ap.add_argument('--points', type=int, default=9314, help='points per synthetic cloud (when BAG is no bag)')
    ap.add_argument('--publish', metavar='KIND', choices=sorted(DDS_KINDS), help=argparse.SUPPRESS)
    ap.add_argument('--count', type=int, default=300, help=argparse.SUPPRESS)
    ap.add_argument('--bag', dest='bag_option', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bag_option:
        args.bag = args.bag_option
    clouds: list[bytes] = []
    grids: list[bytes] = []
    odoms: list[bytes] = []
    if Path(args.bag).is_dir():
        with BagReader(args.bag) as bag:
            for topic, _, _, raw in bag.messages():
                if topic.endswith('/lidar/points') and len(clouds) < MAX_MESSAGES:
                    clouds.append(bytes(raw))
                elif topic.endswith('/evidence_grid') and len(grids) < MAX_MESSAGES:
                    grids.append(bytes(raw))
                elif topic.endswith('/odom') and not topic.startswith('/truth/') and len(odoms) < MAX_MESSAGES:
                    odoms.append(bytes(raw))
    if not odoms:       # no bag: odometry as the simulator writes it (a covariance, a twist)
        odoms = [serialize_cdr(pose_to_odometry(
            PoseSample(10**9 + 20_000_000 * i, np.array([20.0 * i, 1.75, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]),
                       np.diag([0.01, 0.01, 0.0, 0.0, 0.0, 0.001]), np.array([20.0, 0.0, 0.0]), np.zeros(3)),
            'map', 'v1/base_link')) for i in range(MAX_MESSAGES)]
    sources = (args.bag if clouds else 'synthetic', args.bag if grids else 'synthetic')
    rng = np.random.default_rng(0)
    if not clouds:      # no bag: the simulated lidar's layout (x, y, z, intensity, t float32)
        clouds = [serialize_cdr(array_to_cloud(from_columns(dict(zip('xyzit', rng.normal(size=(5, args.points))))),
                                               10**9 * (i + 1), 'v1/lidar')) for i in range(MAX_MESSAGES)]
    if args.publish:
        publish(args.publish, odoms if args.publish == 'odom' else clouds, args.count)
        return 0
    if not grids:       # an input bag: grids of the shared evidence's full window (150 x 40 m at 0.4 m)
        spec = GridSpec(0.0, -20.0, 0.4, 375, 100)
        grids = [serialize_cdr(grid_to_msg(spec, rng.integers(-1, 101, spec.shape), 10**9 * (i + 1)))
                 for i in range(MAX_MESSAGES)]
    print(f'lidar clouds: {sources[0]}; evidence grids: {sources[1]}')
    cases = {
        'lidar': (clouds, lambda raw: deserialize_message(raw, PointCloud2), decode_point_cloud2, lidar_work),
        'grid': (grids, lambda raw: deserialize_message(raw, OccupancyGrid), decode_occupancy_grid, grid_work),
        'odom': (odoms, lambda raw: deserialize_message(raw, Odometry), decode_odometry, odom_work),
    }
    summary = []
    for name, (raws, old, new, work) in cases.items():
        per_message_ms(raws, old, work)          # warm up (imports, dtype caches)
        per_message_ms(raws, new, work)
        before, after, old_only, new_only = [], [], [], []
        for _ in range(args.rounds):
            before.append(per_message_ms(raws, old, work))
            after.append(per_message_ms(raws, new, work))
            old_only.append(per_message_ms(raws, old, _nothing))
            new_only.append(per_message_ms(raws, new, _nothing))
        a, b = statistics.median(before), statistics.median(after)
        print(f'{name}: {len(raws)} messages of {sum(map(len, raws)) // len(raws)} bytes; per message '
              f'rclpy message + adapter {a:.3f} ms, raw CDR decode + adapter {b:.3f} ms ({a / b:.1f}x); '
              f'the conversion alone: deserialize_message {statistics.median(old_only):.4f} ms, '
              f'decode {statistics.median(new_only):.4f} ms')
        summary.append(f'{name}_msg_ms={a:.4f} {name}_raw_ms={b:.4f} {name}_ratio={a / b:.2f}')
    if args.dds:
        typed, raw, events = [], [], []
        for _ in range(3):
            typed.append(receive_ms(args.bag, args.points, False, args.count))
            raw.append(receive_ms(args.bag, args.points, True, args.count))
            events.append(receive_ms(args.bag, args.points, True, args.count, events=True))
        a, b, c = statistics.median(typed), statistics.median(raw), statistics.median(events)
        print(f'lidar over DDS, {args.count} clouds per run at 100 Hz, CPU of the receiving process per cloud '
              f'(median of 3 runs): SingleThreadedExecutor typed subscription {a:.3f} ms, raw + decode {b:.3f} ms '
              f'({a / b:.2f}x); EventsExecutor raw + decode {c:.3f} ms ({a / c:.1f}x)')
        summary.append(f'dds_typed_ms={a:.4f} dds_raw_ms={b:.4f} dds_ratio={a / b:.2f} dds_events_raw_ms={c:.4f}')
        typed, raw, stepped = [], [], []
        for _ in range(3):
            typed.append(receive_ms(args.bag, args.points, False, args.count, events=True, kind='odom'))
            raw.append(receive_ms(args.bag, args.points, True, args.count, events=True, kind='odom'))
            stepped.append(receive_ms(args.bag, args.points, True, args.count, events=True, kind='odom', steps=True))
        a, b, c = statistics.median(typed), statistics.median(raw), statistics.median(stepped)
        print(f'odometry over DDS, {args.count} messages per run at 100 Hz, EventsExecutor, CPU of the receiving '
              f'process per message (median of 3 runs): typed subscription, spin_once {a:.3f} ms; raw + decode, '
              f'spin_once {b:.3f} ms ({a / b:.2f}x); raw + decode, spin_until_future_complete steps {c:.3f} ms '
              f'({a / c:.2f}x)')
        summary.append(f'dds_odom_typed_ms={a:.4f} dds_odom_raw_ms={b:.4f} dds_odom_raw_steps_ms={c:.4f} '
                       f'dds_odom_ratio={a / c:.2f}')
    print(' '.join(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
