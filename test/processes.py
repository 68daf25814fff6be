"""Helpers of the tests that run nodes as OS processes: a short simulated bag, and stopping processes."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def simulate_bag(out: Path, seed: int, duration_s: float) -> Path:
    """``duration_s`` of the default scenario (highway_occlusion) with ``seed`` into the rosbag2 ``out``."""
    from cooperative_fusion.sim.bag_writer import write_simulation
    from cooperative_fusion.sim.scenario import load_scenario
    from cooperative_fusion.sim.world import Simulation

    scenario = load_scenario(REPO / 'config' / 'scenarios' / 'highway_occlusion.yaml')
    write_simulation(Simulation(scenario, seed=seed).events(duration_s=duration_s), out, progress=False)
    return out


def stop(procs: list[subprocess.Popen], timeout_s: float) -> None:
    """SIGTERM every process still running; SIGKILL those not gone within ``timeout_s`` in all."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
