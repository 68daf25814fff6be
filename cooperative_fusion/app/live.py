"""Live runs of the composed platoon: a bag replayed on live timing (``run --bag --rate R``) or live topics.

* :func:`run_bag_live` -- the bag is published over DDS with ``/clock`` at rate R
  while one executor thread spins the nodes (``use_sim_time``), as a component
  container does. Results depend on load (how late the outputs come), not which
  sweeps give evidence: queued input is worked off before the run ends.
* :func:`run_live` -- no bag: the nodes spin on the real sensor topics until
  Ctrl-C (or ``duration_s``). With ``--faults`` the sources must publish
  ``/<v>/raw/odom`` and ``/<v>/raw/time_reference`` themselves (launch remaps).

The nodes are composed as in the lock-step run (:func:`.bringup.compose_nodes`).
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TextIO

from ..core.errors import BagError, ConfigError
from .bringup import (NS_PER_S, Progress, RunSummary, close_writer, compose_nodes, destroy_nodes, init_context,
                      input_topics, load_faults, open_writer, published_topics, shutdown_context)
from .platoon import load_platoon_config

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.node import Node

    from ..ros.bag import BagWriter


class _Recorder:
    """A node subscribing to the record topics and writing them to a bag (log time = its clock)."""

    def __init__(self, context: 'Context', topics: dict[str, type], writer: 'BagWriter | None',
                 use_sim_time: bool) -> None:
        from rclpy.node import Node
        from rclpy.parameter import Parameter

        from ..ros.bag import message_type_name, topic_qos

        self.node = Node('run_recorder', context=context,
                         parameter_overrides=[Parameter('use_sim_time', Parameter.Type.BOOL, use_sim_time)])
        self.writer = writer
        self.count = 0
        for topic, cls in sorted(topics.items()):
            msgtype = message_type_name(cls)
            # raw=True: write the received CDR bytes, no deserialize / serialize round trip.
            self.node.create_subscription(cls, topic, self._callback(topic, msgtype), topic_qos(topic), raw=True)

    def _callback(self, topic: str, msgtype: str) -> Callable[[bytes], None]:
        def on_message(raw: bytes) -> None:
            self.count += 1
            if self.writer is not None:
                t_ns = max(0, int(self.node.get_clock().now().nanoseconds))
                self.writer.write_serialized(topic, msgtype, raw, t_ns)

        return on_message


class _Spinner:
    """A SingleThreadedExecutor spinning nodes in a background thread until :meth:`stop`.

    Single-threaded on purpose (ROS 2's default component container is too): under the
    GIL a MultiThreadedExecutor runs no Python in parallel, but hands every callback to
    a pool thread and lets one node's callbacks race for its mutually exclusive group.
    Measured on two loaded cores, that used ~1.5x the CPU and let the vehicle's 50 Hz
    odometry lose the race to its sweeps and /clock (rclpy takes one message per
    subscription per wait), so odometry fell 1-2 s behind. One thread takes every
    ready subscription in turn on each wait.
    """

    def __init__(self, context: 'Context', nodes: Sequence['Node']) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=context)
        self.nodes = list(nodes)
        for node in self.nodes:
            self.executor.add_node(node)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, name='run-executor', daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            while not self._stop.is_set() and self.executor.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            pass
        except BaseException as exc:  # reported by the caller; the thread must not print a traceback
            self.error = exc

    def stop(self) -> None:
        """Stop spinning, let running callbacks finish, and detach the nodes (they can then be destroyed)."""
        self._stop.set()
        self.thread.join(timeout=10.0)
        try:
            self.executor.shutdown(timeout_sec=5.0)
        except Exception:
            pass
        for node in self.nodes:
            try:
                self.executor.remove_node(node)
            except Exception:
                pass


def wait_until_quiet(count: Callable[[], int], quiet_s: float, max_s: float,
                      should_continue: Callable[[], bool] = lambda: True) -> bool:
    """Sleep until ``count()`` has not changed for ``quiet_s`` wall seconds (True), or ``max_s`` passed (False)."""
    start = last_change = time.monotonic()
    seen = count()
    while should_continue():
        now = time.monotonic()
        if now - last_change >= quiet_s:
            return True
        if now - start >= max_s:
            return False
        time.sleep(min(0.05, quiet_s))
        if (n := count()) != seen:
            seen, last_change = n, time.monotonic()
    return False


def _tear_down(spinner: '_Spinner | None', writer: 'BagWriter | None', nodes: list['Node'], ctx: 'Context') -> None:
    """The end of a live run, also after an error: stop the spinner, close the bag (a close error is
    dropped here: the run's own error, if any, is the one to report), destroy the nodes, shut down."""
    if spinner is not None:
        spinner.stop()
    if writer is not None:
        try:
            writer.close()
        except BagError:
            pass
    destroy_nodes(nodes)
    shutdown_context(ctx)


def run_bag_live(config_path: str | Path | None, bag_path: str | Path, rate: float,
                 record_path: str | Path | None, progress: bool = True, *, faults: str | Path | None = None,
                 domain_id: int | None = None, overwrite: bool = False, wait_for_subscribers_s: float = 15.0,
                 drain_wall_s: float = 1.0, max_drain_wall_s: float = 30.0, strict: bool = False,
                 progress_stream: TextIO | None = None) -> RunSummary:
    """Replay ``bag_path`` over DDS with /clock at ``rate`` into the nodes, spun by one executor thread.

    The nodes run with ``use_sim_time``; a recorder node writes the record
    topics with log time = its sim clock. After the last message the nodes
    first work off what is still queued, with /clock held at the last
    message (a clock jump would time out streams whose messages are merely
    queued); then /clock is advanced ``drain_s`` past the bag's end. Each of
    the two drains lasts until the recorded outputs have been quiet for
    ``drain_wall_s`` wall seconds, at most ``max_drain_wall_s``. Ctrl-C stops
    it cleanly (KeyboardInterrupt is re-raised after cleanup, the record bag is
    closed readable).
    """
    from rosgraph_msgs.msg import Clock

    from ..ros.bag import BagReader
    from ..ros.time import ns_to_stamp
    from .player import BagPlayer, ReplayPublisher

    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise ConfigError(f'--rate must be a finite number > 0, got {rate!r}')
    config = load_platoon_config(config_path)
    plan = load_faults(faults, config)
    renames = plan.renames() if plan is not None else {}
    with BagReader(bag_path) as reader:
        start_ns, end_ns = reader.start_time_ns, reader.end_time_ns
        bag_topics = reader.topics()
        ctx = init_context(domain_id)
        nodes: list[Node] = []
        extra: list[Node] = []
        writer = None
        spinner = None
        meter = Progress(progress, (end_ns - start_ns) / NS_PER_S, stream=progress_stream)
        last_ns = start_ns
        try:
            import rclpy
            from rclpy.qos import DurabilityPolicy

            nodes = compose_nodes(config, ctx, use_sim_time=True, faults=plan, origin_ns=start_ns, strict=strict)
            inputs = input_topics(nodes)
            feed = {t: bag_topics[t] for t in sorted(bag_topics) if renames.get(t, t) in inputs}
            record = {t: c for t, c in published_topics(nodes).items() if t in set(config.record_topics)}
            writer = open_writer(record_path, overwrite)
            recorder = _Recorder(ctx, record, writer, use_sim_time=True)
            extra.append(recorder.node)
            # a faulted vehicle's odometry / time reference go out as /<v>/raw/... (remap rules)
            player_node = rclpy.create_node('run_replay', context=ctx,
                                            cli_args=plan.remap_args() if plan is not None else None)
            extra.append(player_node)
            latched = [t for t in feed if (q := reader.offered_qos(t)) is not None
                       and q.durability == DurabilityPolicy.TRANSIENT_LOCAL]
            # a tick before every message: the recorder logs on this clock and the report times latency by it
            out = ReplayPublisher(player_node, feed, latched, clock_hz=0.0)
            spinner = _Spinner(ctx, [*nodes, recorder.node])
            # every in-process subscriber of a topic, not just one: the bag's first messages (the one
            # time reference that lets the vehicle publish for a second) must reach all of them
            expected: dict[str, int] = {}
            for node in (*nodes, recorder.node):
                for sub in node.subscriptions:
                    expected[sub.topic_name] = expected.get(sub.topic_name, 0) + 1
            if not out.wait_for_subscribers(wait_for_subscribers_s, ctx.ok, expected):
                player_node.get_logger().warning('not every input topic has a subscriber yet; replaying anyway')
            player = BagPlayer(reader, rate=rate, topics=list(out.publishers))
            for log_time_ns, topic, _msgtype, raw in player:
                if not player.wait_until(log_time_ns, ctx.ok):
                    break
                out.publish(log_time_ns, topic, raw)
                last_ns = log_time_ns
                meter.update((log_time_ns - start_ns) / NS_PER_S)
            out.wait_for_acked(2.0)
            wait_until_quiet(lambda: recorder.count, drain_wall_s, max_drain_wall_s, ctx.ok)
            last_ns = end_ns + int(round(config.drain_s * NS_PER_S))
            out.clock_pub.publish(Clock(clock=ns_to_stamp(last_ns)))
            wait_until_quiet(lambda: recorder.count, drain_wall_s, max_drain_wall_s, ctx.ok)
            spinner.stop()
            if spinner.error is not None:
                raise spinner.error
            spinner = None
            close_writer(writer)
            writer = None
            return RunSummary(sim_s=(last_ns - start_ns) / NS_PER_S, wall_s=meter.wall_s,
                              messages_in=out.published, messages_out=recorder.count,
                              recorded=recorder.count if record_path is not None else 0,
                              record_path=Path(record_path) if record_path is not None else None)
        finally:
            _tear_down(spinner, writer, [*nodes, *extra], ctx)


def run_live(config_path: str | Path | None, record_path: str | Path | None = None, *,
             faults: str | Path | None = None, domain_id: int | None = None, overwrite: bool = False,
             duration_s: float | None = None, should_continue: Callable[[], bool] | None = None,
             strict: bool = False) -> RunSummary:
    """Spin the composed nodes on the live sensor topics until Ctrl-C (or ``duration_s`` wall seconds).

    Time is whatever the params files say (wall time unless they set use_sim_time). The nodes are on
    ``domain_id`` (None: the user's ROS_DOMAIN_ID) with the usual discovery, as any ROS 2 node.
    Record topics go to ``record_path`` with log time = the recorder's clock.
    """
    config = load_platoon_config(config_path)
    plan = load_faults(faults, config)
    ctx = init_context(domain_id)
    nodes: list[Node] = []
    extra: list[Node] = []
    writer = None
    spinner = None
    start = time.perf_counter()
    try:
        nodes = compose_nodes(config, ctx, faults=plan, strict=strict)
        sim = any(n.get_parameter('use_sim_time').value for n in nodes)
        record = {t: c for t, c in published_topics(nodes).items() if t in set(config.record_topics)}
        writer = open_writer(record_path, overwrite)
        recorder = _Recorder(ctx, record, writer, use_sim_time=bool(sim))
        extra.append(recorder.node)
        spinner = _Spinner(ctx, [*nodes, recorder.node])
        keep_going = should_continue or (lambda: True)
        while ctx.ok() and spinner.thread.is_alive() and keep_going():
            if duration_s is not None and time.perf_counter() - start >= duration_s:
                break
            time.sleep(0.05)
        spinner.stop()
        if spinner.error is not None:
            raise spinner.error
        spinner = None
        close_writer(writer)
        writer = None
        wall = time.perf_counter() - start
        return RunSummary(sim_s=wall, wall_s=wall, messages_in=0, messages_out=recorder.count,
                          recorded=recorder.count if record_path is not None else 0,
                          record_path=Path(record_path) if record_path is not None else None)
    finally:
        _tear_down(spinner, writer, [*nodes, *extra], ctx)
