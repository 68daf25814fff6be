"""Lock-step with the vehicle nodes in a worker process (``run --bag --jobs 2``), same result bag.

The vehicle nodes (and the fault injectors of ``--faults``) hear only recorded inputs and
each other (checked: none subscribes to a topic the other nodes publish), so what they
publish for each bag message and each timer firing does not depend on the rest of the
platoon. A worker process composes them, reads the bag itself and runs ahead, with a
:class:`~.lockstep.LockstepRunner` over the same node list in the same order, the other
nodes replaced by :class:`StandIn` s with the same subscriptions and timers that do
nothing. For every call of one of its callbacks it sends the messages published,
serialized, tagged with the callback and the sim time. The main process runs the other
nodes with the worker's replaced by stand-ins whose callbacks publish what the worker
sent for that call: its runner calls them at the same points of the same sequence as the
serial runner, so the messages, their order and their sim times are those of the serial
run. Determinism does not depend on timing: the main process blocks on the worker's
output for a call before it goes past it.

A worker that fails sends its exception, and one that dies without a word is noticed
within a second: the run stops with :class:`WorkerError` (or the worker's ConfigError /
BagError), never hangs.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

from ..core.errors import BagError, CooperativeFusionError
from ..ros.bag import BagReader, message_class, message_type_name
from .lockstep import LockstepRunner, SerializedMessage, published_cdr

#: A worker sends its groups in batches of this many calls (or fewer at ``_BATCH_BYTES``).
_BATCH_CALLS = 64
_BATCH_BYTES = 1 << 20
#: Seconds between checks that the other process is still alive while waiting for it.
_POLL_S = 1.0

#: (topic, 'pkg/msg/Name', CDR bytes) of one published message.
Published = tuple[str, str, bytes]
#: (node index, 's' or 't', index of the subscription or timer in that node).
Tag = tuple[int, str, int]


class WorkerError(CooperativeFusionError):
    """The lock-step worker process failed or went out of step."""


@dataclass(frozen=True)
class NodeShape:
    """What the runner needs of a node, picklable.

    subscriptions : (topic, 'pkg/msg/Name', raw) each; publishers : (topic, 'pkg/msg/Name') each;
    timer_periods_ns : each timer's period, ns; all in the node's own order
    """

    name: str
    subscriptions: tuple[tuple[str, str, bool], ...]
    publishers: tuple[tuple[str, str], ...]
    timer_periods_ns: tuple[int, ...]


def shape_of(node: Any) -> NodeShape:
    """The :class:`NodeShape` of an rclpy node (or a stand-in)."""
    return NodeShape(name=node.get_fully_qualified_name() if hasattr(node, 'get_fully_qualified_name')
                     else node.name,
                     subscriptions=tuple((s.topic_name, message_type_name(s.msg_type), bool(s.raw))
                                         for s in node.subscriptions),
                     publishers=tuple((p.topic_name, message_type_name(p.msg_type)) for p in node.publishers),
                     timer_periods_ns=tuple(int(t.timer_period_ns) for t in node.timers))


class _Sub:
    def __init__(self, topic: str, msg_type: type, raw: bool, callback: Callable[[Any], None]) -> None:
        self.topic_name, self.msg_type, self.raw, self.callback = topic, msg_type, raw, callback


class _Pub:
    def __init__(self, topic: str, msg_type: type) -> None:
        self.topic_name, self.msg_type = topic, msg_type

    def publish(self, msg: Any) -> None:
        pass   # the runner wraps it: the message goes to its queue and recorder

    def get_subscription_count(self) -> int:
        return 0


class _Timer:
    def __init__(self, period_ns: int, callback: Callable[[], None]) -> None:
        self.timer_period_ns, self.callback = period_ns, callback

    def is_canceled(self) -> bool:
        return False


class StandIn:
    """A node's subscriptions, publishers and timers without the node, for a :class:`LockstepRunner`.

    on_call : called with the tag of a subscription or timer when the runner calls it (None: nothing happens)
    """

    def __init__(self, index: int, shape: NodeShape, on_call: Callable[[Tag], None] | None = None) -> None:
        self.name = shape.name
        call = on_call or (lambda tag: None)
        self.subscriptions = [_Sub(topic, message_class(msgtype), raw, lambda msg, tag=(index, 's', i): call(tag))
                              for i, (topic, msgtype, raw) in enumerate(shape.subscriptions)]
        self.publishers = [_Pub(topic, message_class(msgtype)) for topic, msgtype in shape.publishers]
        self.timers = [_Timer(period, lambda tag=(index, 't', i): call(tag))
                       for i, period in enumerate(shape.timer_periods_ns)]
        self.by_topic = {p.topic_name: p for p in self.publishers}


def independent(remote: Sequence[NodeShape], local: Sequence[NodeShape]) -> str | None:
    """None when no ``remote`` node subscribes to a topic a ``local`` node publishes; else why not."""
    published = {topic for shape in local for topic, _ in shape.publishers}
    for shape in remote:
        heard = sorted({topic for topic, _, _ in shape.subscriptions} & published)
        if heard:
            return f'{shape.name} subscribes to {heard}, published in the main process'
    return None


@dataclass(frozen=True)
class WorkerArgs:
    """What the worker needs to compose the vehicle nodes (and fault injectors) as the serial run does."""

    config_path: Path | None
    bag_path: Path
    faults: Path | None
    domain_id: int | None
    strict: bool
    quiet: bool
    start_ns: int


@dataclass(frozen=True)
class WorkerPlan:
    """The main process's half of the run, sent to the worker once its nodes exist.

    order : the serial node list: ('remote', i) or ('local', j) each
    local : shapes of the main process's nodes; feed : (bag topic, fed as) pairs; stop_ns : end of the run
    recorder : whether the main runner records (a recorder counts as a subscriber)
    """

    order: tuple[tuple[str, int], ...]
    local: tuple[NodeShape, ...]
    feed: tuple[tuple[str, str], ...]
    stop_ns: int
    recorder: bool


class _CapturingRunner(LockstepRunner):
    """The worker's runner: after each call of a real node's callback, the messages it published
    (the runner's queue holds them until the drain) go to ``sink`` with its tag and the sim time."""

    def __init__(self, nodes: list[Any], tags: dict[int, Tag], sink: Callable[[Tag, int, list[Published]], None],
                 recorder: bool, start_ns: int) -> None:
        super().__init__(nodes, (lambda topic, msg, t: None) if recorder else None,
                         publish_to_dds=False, start_ns=start_ns)
        self._tags = tags
        self._sink = sink

    def _captured(self, key: int, call: Callable[[], None]) -> None:
        tag = self._tags.get(key)
        if tag is None:       # a stand-in: nothing to do
            call()
            return
        before = len(self._queue)
        call()
        self._sink(tag, self.now_ns, [(topic, *published_cdr(msg)) for topic, msg in islice(self._queue, before, None)])

    def _call_sub(self, sub: Any, msg: Any) -> None:
        self._captured(id(sub), lambda: sub.callback(msg))

    def _call_timer(self, timer: Any) -> None:
        self._captured(id(timer), timer.callback)


#: Composes the worker's nodes for :class:`WorkerArgs` (the vehicle nodes, then the fault injectors) and
#: destroys them on exit (``bringup.worker_nodes``).
ComposeWorkerNodes = Callable[[WorkerArgs], ContextManager[list[Any]]]


def _worker_main(from_main: Connection, to_main: Connection, compose: ComposeWorkerNodes) -> None:
    """The worker process: compose the vehicle nodes, run them over the bag, send what they publish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the main process's; it stops the worker
    out: queue.SimpleQueue[Any] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(out, to_main), daemon=True)   # run ahead: never block
    sender.start()
    try:
        _, args = from_main.recv()
        with compose(args) as nodes:
            out.put(('shapes', [shape_of(n) for n in nodes]))
            _, plan = from_main.recv()
            everyone: list[Any] = []
            tags: dict[int, Tag] = {}
            for index, (side, i) in enumerate(plan.order):
                if side == 'remote':
                    node = nodes[i]
                    tags.update({id(s): (index, 's', k) for k, s in enumerate(node.subscriptions)})
                    tags.update({id(t): (index, 't', k) for k, t in enumerate(node.timers)})
                    everyone.append(node)
                else:
                    everyone.append(StandIn(index, plan.local[i]))
            batch: list[tuple[Tag, int, list[Published]]] = []
            size = 0

            def flush() -> None:
                nonlocal size
                if batch:
                    out.put(('groups', list(batch)))
                    batch.clear()
                    size = 0

            def sink(tag: Tag, t_ns: int, published: list[Published]) -> None:
                nonlocal size
                batch.append((tag, t_ns, published))
                size += sum(len(data) for _, _, data in published)
                if len(batch) >= _BATCH_CALLS or size >= _BATCH_BYTES:
                    flush()

            runner = _CapturingRunner(everyone, tags, sink, plan.recorder, args.start_ns)
            mine = {s.topic_name for n in nodes for s in n.subscriptions}
            renames = dict(plan.feed)
            with BagReader(args.bag_path) as reader:
                for topic, msgtype, log_time_ns, raw in reader.messages([t for t, fed in plan.feed if fed in mine]):
                    try:
                        runner.feed_serialized(renames[topic], msgtype, raw, log_time_ns)
                    except BagError:
                        continue   # the main process skips it too, and counts it
            runner.advance_to(plan.stop_ns)
            flush()
            out.put(('done', runner.dispatched))
    except EOFError:
        pass    # the main process is gone: nothing to report to
    except BaseException as exc:
        if isinstance(exc, CooperativeFusionError):
            out.put(('error', exc))
        else:
            out.put(('error', WorkerError(f'lock-step worker (vehicle nodes) failed:\n{traceback.format_exc()}')))
    finally:
        out.put(None)
        sender.join()


def worker_process(compose: ComposeWorkerNodes) -> None:
    """The worker's entry point (``bringup.lockstep_worker``): ``sys.argv[1:]`` are the fds of its pipes
    from and to the main process."""
    _worker_main(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False),
                 compose)


def _send_all(items: 'queue.SimpleQueue[Any]', conn: Connection) -> None:
    """Send every item to ``conn`` until None (the sender thread: a full pipe blocks only it)."""
    try:
        while (item := items.get()) is not None:
            conn.send(item)
    except OSError:
        pass    # the main process is gone


def _receive(conn: Connection, process: Any, who: str) -> Any:
    """The next item from ``conn`` (an ``('error', exc)`` is raised); WorkerError when ``process``
    (a ``subprocess.Popen``) exits meanwhile."""
    try:
        while not conn.poll(_POLL_S):
            if process.poll() is not None:
                break
        item = conn.recv()
    except (EOFError, OSError):
        code = process.wait()
        raise WorkerError(f'{who} exited (code {code}) without finishing the lock-step run') from None
    if isinstance(item, tuple) and item and item[0] == 'error':
        raise item[1]
    return item


class VehicleWorker:
    """The main process's end of the worker: start it, exchange shapes, hand out its groups in order.

    Use as a context manager: leaving it stops the worker, whatever happened.
    """

    def __init__(self, args: WorkerArgs) -> None:
        self._args = args
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._pending: deque[tuple[Tag, int, list[Published]]] = deque()
        self.dispatched = 0

    def __enter__(self) -> 'VehicleWorker':
        # A fresh interpreter (never fork a process that holds rclpy), on the package this one runs:
        # its directory first on sys.path (``python -m`` would put the working directory first).
        root = str(Path(__file__).resolve().parents[2])
        to_worker_r, to_worker_w = os.pipe()
        to_main_r, to_main_w = os.pipe()
        code = (f'import sys; sys.path.insert(0, {root!r}); '
                f'from cooperative_fusion.app.bringup import lockstep_worker; lockstep_worker()')
        try:
            self._process = subprocess.Popen([sys.executable, '-c', code, str(to_worker_r), str(to_main_w)],
                                             pass_fds=(to_worker_r, to_main_w), stdin=subprocess.DEVNULL)
        finally:
            os.close(to_worker_r)
            os.close(to_main_w)
        self._to_worker = Connection(to_worker_w, readable=False)
        self._conn = Connection(to_main_r, writable=False)
        self._to_worker.send(('args', self._args))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the worker (if it still runs) and wait for it."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)
        self._to_worker.close()
        self._conn.close()

    def _next(self) -> Any:
        return _receive(self._conn, self._process, 'the lock-step worker (vehicle nodes)')

    def shapes(self) -> list[NodeShape]:
        """The worker's node shapes, once it has composed its nodes."""
        kind, shapes = self._next()
        if kind != 'shapes':
            raise WorkerError(f'lock-step worker: expected its node shapes, got {kind!r}')
        return shapes

    def send_plan(self, plan: WorkerPlan) -> None:
        self._to_worker.send(('plan', plan))

    def group(self, tag: Tag, t_ns: int) -> list[Published]:
        """What the worker's node published in the call ``tag`` at sim time ``t_ns``."""
        while not self._pending:
            kind, payload = self._next()
            if kind != 'groups':
                raise WorkerError(f'lock-step worker finished early: no call {tag} at {t_ns} ns')
            self._pending.extend(payload)
        got_tag, got_t, published = self._pending.popleft()
        if (got_tag, got_t) != (tag, t_ns):
            raise WorkerError(f'lock-step worker out of step: main process at call {tag} at {t_ns} ns, '
                              f'worker at {got_tag} at {got_t} ns')
        return published

    def finish(self) -> None:
        """Check that the worker made no call the main process did not, and let it exit."""
        if self._pending:
            raise WorkerError(f'lock-step worker made {len(self._pending)} calls more than the main process')
        item = self._next()
        if item[0] != 'done':
            raise WorkerError(f'lock-step worker made calls past the end of the run ({item[0]!r})')
        self.dispatched = item[1]
        self._process.wait(10.0)


def remote_stand_ins(worker: VehicleWorker, order: Sequence[tuple[str, int]], remote: Sequence[NodeShape],
                     now_ns: Callable[[], int]) -> dict[int, StandIn]:
    """Stand-ins for the worker's nodes at their places in ``order``: each call publishes what the worker sent."""
    stand_ins: dict[int, StandIn] = {}
    for index, (side, i) in enumerate(order):
        if side != 'remote':
            continue

        def replay(tag: Tag, index: int = index) -> None:
            pubs = stand_ins[index].by_topic
            for topic, msgtype, data in worker.group(tag, now_ns()):
                pubs[topic].publish(SerializedMessage(msgtype, data))

        stand_ins[index] = StandIn(index, remote[i], replay)
    return stand_ins
