"""One node alone on a run's recorded inputs, as its own process: the ``--live`` mode of ``bench_fusion.py``
and ``bench_twin.py``.

:func:`recorded_inputs` merges a node's inputs from a scenario bag (odometry, time references) and a result
bag of ``cooperative-fusion run --bag BAG --record RESULT`` (what the upstream nodes published);
:func:`run_alone` writes them to one bag, starts the node as the platoon config would (system clock), replays
the bag over DDS on the wall clock (``cooperative-fusion replay --wall-clock``) on an isolated domain, and
measures the node process's CPU (``/proc``, all threads) from the replay's start to 1 s after its end.
Not a benchmark of its own (``run_all.py`` runs ``bench_*.py`` only).
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from bench_live import cpu_seconds

#: (log time ns, source: 0 scenario / 1 result, topic, type, CDR bytes)
Message = tuple[int, int, str, str, bytes]


def recorded_inputs(result_bag: str, scenario_bag: str, scenario_suffixes: Sequence[str],
                    result_suffixes: Sequence[str]) -> tuple[list[Message], int, int]:
    """The topics ending in ``scenario_suffixes`` of the scenario bag (not ``/truth``) and in ``result_suffixes``
    of the result bag, in log-time order (at equal times the scenario's first), and the scenario's start and
    end, ns."""
    from cooperative_fusion.ros.bag import BagReader

    msgs: list[Message] = []
    with BagReader(scenario_bag) as reader:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
        topics = [t for t in reader.topics() if t.endswith(tuple(scenario_suffixes)) and not t.startswith('/truth')]
        msgs += [(ts, 0, t, ty, raw) for t, ty, ts, raw in reader.messages(topics)]
    with BagReader(result_bag) as reader:
        topics = [t for t in reader.topics() if t.endswith(tuple(result_suffixes))]
        msgs += [(ts, 1, t, ty, raw) for t, ty, ts, raw in reader.messages(topics)]
    msgs.sort(key=lambda m: (m[0], m[1]))
    return msgs, start_ns, end_ns


@dataclass
class NodeAlone:
    """What :func:`run_alone` measured. ``status_start`` / ``status``: the node's last ``/diagnostics`` values
    before the replay and at the end; ``received``: messages heard on the counted topic during the replay."""

    busy_cpu_s: float
    idle_cores: float
    data_s: float
    status_start: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    received: int = 0

    @property
    def cores(self) -> float:
        return self.busy_cpu_s / self.data_s


def run_alone(kind: Any, msgs: Sequence[Message], data_s: float, *, status_name: str,
              ready: Callable[[Any], bool], count: tuple[str, Any, Any] | None = None) -> NodeAlone:
    """Node ``kind`` (a ``NodeKind`` of the default platoon config) alone, fed ``msgs`` over DDS on the wall
    clock. ``ready(listener)``: the node is up (e.g. it subscribes or publishes a topic); ``count``: ``(topic,
    message type, QoS)`` to count during the replay. RuntimeError when the node does not come up in 60 s."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from cooperative_fusion.app.platoon import load_platoon_config
    from cooperative_fusion.ros.bag import BagWriter
    from cooperative_fusion.ros.qos import diagnostics_qos

    domain = random.SystemRandom().randint(120, 220)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    spec = next(s for s in load_platoon_config(None).node_specs() if s.kind is kind)
    with tempfile.TemporaryDirectory(prefix=f'{status_name}_alone_') as tmp:
        inputs = Path(tmp) / 'inputs'
        with BagWriter(str(inputs), overwrite=True) as writer:
            for ts, _source, topic, msgtype, raw in msgs:
                writer.write_serialized(topic, msgtype, raw, ts)
        topics = sorted({m[2] for m in msgs})
        log_path = Path(tmp) / 'node.log'
        log = open(log_path, 'w')
        node_proc = subprocess.Popen(spec.command(sys.executable, use_sim_time=False), env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        ctx = Context()
        rclpy.init(context=ctx, domain_id=domain)
        listener = rclpy.create_node(f'{status_name}_alone_listener', context=ctx)
        status: dict[str, str] = {}
        heard = [0]

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for st in msg.status:
                if st.name == status_name:
                    status.update({kv.key: kv.value for kv in st.values})

        listener.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, diagnostics_qos())
        if count is not None:
            topic, msg_type, qos = count
            listener.create_subscription(msg_type, topic, lambda _raw: heard.__setitem__(0, heard[0] + 1), qos,
                                         raw=True)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(listener)

        def spin_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)

        try:
            deadline = time.monotonic() + 60.0
            while not ready(listener):
                if time.monotonic() > deadline or node_proc.poll() is not None:
                    raise RuntimeError(f'{status_name} did not come up (log: {log_path})')
                spin_for(0.2)
            spin_for(5.0)      # discovery settles
            c0, w0 = cpu_seconds(node_proc.pid), time.monotonic()
            spin_for(3.0)
            idle = (cpu_seconds(node_proc.pid) - c0) / (time.monotonic() - w0)
            c0, h0, status_start = cpu_seconds(node_proc.pid), heard[0], dict(status)
            replay_proc = subprocess.Popen(
                [sys.executable, '-m', 'cooperative_fusion.cli', 'replay', str(inputs), '--wall-clock',
                 '--wait-for-subscribers', '30', '--topics', *topics],
                env=env, stdout=log, stderr=subprocess.STDOUT)
            while replay_proc.poll() is None:
                spin_for(0.2)
            spin_for(1.0)
            busy = cpu_seconds(node_proc.pid) - c0
            spin_for(1.5)      # the last /diagnostics
        finally:
            node_proc.send_signal(2)
            node_proc.wait(timeout=30)
            listener.destroy_node()
            rclpy.shutdown(context=ctx)
            log.close()
    return NodeAlone(busy, idle, data_s, status_start, status, heard[0] - h0)
