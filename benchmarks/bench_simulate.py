"""Simulate 20 s of the default scenario into a temporary bag: the whole pipeline.

World + sensors + message building + serialization + mcap writing, timed end to
end, and split by stage (events only; events + messages; everything) so a miss
shows where the time goes. The reference is the simulated duration itself:
``realtime_ratio = sim_s / wall_s`` must exceed 1.

Last line: ``simulate_wall_s=<x> sim_s=20 realtime_ratio=<sim/wall>``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from cooperative_fusion.ros.bag import serialize
from cooperative_fusion.sim.bag_writer import event_to_message, write_simulation
from cooperative_fusion.sim.scenario import load_scenario
from cooperative_fusion.commands.simulate import default_scenario_path
from cooperative_fusion.sim.world import Simulation


def stage_breakdown(scenario, sim_s: float) -> None:
    """Time per stage and per event kind over a shorter run (events, message building, serialization)."""
    build: dict[str, float] = defaultdict(float)
    ser: dict[str, float] = defaultdict(float)
    t_events = 0.0
    it = Simulation(scenario).events(duration_s=sim_s)
    while True:
        t = time.perf_counter()
        event = next(it, None)
        t_events += time.perf_counter() - t
        if event is None:
            break
        t = time.perf_counter()
        msg = event_to_message(event)
        t2 = time.perf_counter()
        serialize(msg)
        t3 = time.perf_counter()
        build[event.kind.value] += t2 - t
        ser[event.kind.value] += t3 - t2
    print(f'stage breakdown over {sim_s:g} sim s (per sim s): world+sensors {t_events / sim_s * 1e3:.0f} ms, '
          f'messages {sum(build.values()) / sim_s * 1e3:.0f} ms, serialize {sum(ser.values()) / sim_s * 1e3:.0f} ms')
    for kind in sorted(build, key=lambda k: -(build[k] + ser[k])):
        print(f'  {kind:15s} build {build[kind] / sim_s * 1e3:7.1f} ms/sim s   '
              f'serialize {ser[kind] / sim_s * 1e3:7.1f} ms/sim s')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenario', type=Path, default=None, help='scenario YAML (default: the default scenario)')
    parser.add_argument('--duration', type=float, default=20.0)
    parser.add_argument('--breakdown-s', type=float, default=3.0, help='sim seconds for the stage breakdown')
    args = parser.parse_args()
    scenario = load_scenario(args.scenario or default_scenario_path())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'bench_bag'
        start = time.perf_counter()
        counts = write_simulation(Simulation(scenario).events(duration_s=args.duration), out, progress=False)
        wall_s = time.perf_counter() - start
        size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    print(f'scenario {scenario.name}: {sum(counts.values())} messages on {len(counts)} topics, '
          f'bag {size_mb:.1f} MB ({size_mb / args.duration:.1f} MB per sim s)')
    if args.breakdown_s > 0:
        stage_breakdown(scenario, args.breakdown_s)
    print(f'simulate_wall_s={wall_s:.2f} sim_s={args.duration:g} realtime_ratio={args.duration / wall_s:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
