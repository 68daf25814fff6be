"""The node scaffold every node derives from: parameters, guarded callbacks, drops, /diagnostics, entry point.

Drop keys, the same in every node's /diagnostics status: ``drops.<cause>`` (all
inputs), ``drops.<source>.<cause>`` (one input: a stream, a vehicle id, a timer)
and ``drops.total``. Causes are snake_case, from ``core.drops.Cause`` or a node's own.
Logging: every drop is counted; drops by design (:data:`BY_DESIGN`: ``unmatched``,
the synchroniser passing over a message of a stream faster than the reference, e.g.
a 20 Hz radar against a 10 Hz lidar; ``no_camera_info``, depth images before the
first CameraInfo at start) are logged at DEBUG only. Any other cause (``stale`` too:
a stream fell silent) is logged at WARN at its first drop, then summarised at most
every 10 s. An unknown parameter override (a misspelt name in a params file) is a
warning naming the closest declared name, an error with ``strict_parameters:=true``.
A node on wall time that hears ``/clock`` warns once to set ``use_sim_time``.
See :class:`BaseNode`.
"""
from __future__ import annotations

import ctypes
import difflib
import inspect
import sys
import time
import traceback
from collections import Counter
from dataclasses import replace
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar

import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.timer import Timer
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from ..core.config_values import config_from_values
from ..core.drops import Cause, Drop, cause_of
from ..core.errors import ConfigError
from ..core.platoon_config import NodeKind, load_platoon_config
from .diagnostics import DropCounter, Level, make_array, make_status
from .names import DIAGNOSTICS
from .params import Param, declare, params_file_errors
from .qos import diagnostics_qos
from .signals import INTERRUPTED, note_sigint, sigint_received

__all__ = ['BY_DESIGN', 'BaseNode', 'PLATOON_FILE', 'STRICT_PARAMETERS', 'spin_node', 'vehicle_id_or_namespace',
           'Param', 'config_from_values']

#: Drop causes of normal operation (see the module docstring): counted, logged at DEBUG only.
BY_DESIGN: frozenset[str] = frozenset({Cause.UNMATCHED.value, Cause.NO_CAMERA_INFO.value})
#: Shortest time between two log lines about one drop cause, wall seconds.
DROP_LOG_INTERVAL_S = 10.0
#: Parameters every node declares, outside its own table.
STRICT_PARAMETERS = Param('strict_parameters', False,
                          'an unknown parameter override (a misspelt name in a params file) is an error, '
                          'not a warning')
#: The executor :func:`spin_node` spins the node with; :data:`EXECUTORS`.
EXECUTOR = Param('executor', 'events',
                 "rclpy executor of the node's process: 'events' (rclpy.experimental.EventsExecutor: about a "
                 "third of the CPU per received message of 'single'; falls back to 'single' where rclpy has "
                 "none) or 'single' (SingleThreadedExecutor)")
EXECUTORS = ('events', 'single')
#: Declared by nodes that take the platoon (fusion, twin): ``declare_params(..., platoon=NodeKind.FUSION)``.
PLATOON_FILE = Param('platoon_file', '',
                     "platoon config (config/platoon.yaml) giving this node's vehicle ids, weights and bodies; "
                     "'' = the node's own platoon parameters (default: the shipped 4-vehicle platoon)")
_CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)   # as rclpy's TimeSource
_NO_ARGUMENTS = inspect.Signature()

C = TypeVar('C')


class BaseNode(Node):
    """An rclpy Node with the project's scaffold. How to use::

        class MyNode(BaseNode):
            default_name = 'my_node'

            def _setup(self) -> None:                      # called once by __init__
                values = self.declare_params(PARAMS)       # PARAMS: tuple of ros.params.Param
                self.cfg = self.config(MyConfig, values, 'my.')   # fields from my.* by name
                self.create_subscription(Msg, topic, self.guard('lidar', self._on_lidar), qos)
                self.start_diagnostics(values['diagnostics.period_s'], 'my_node: v1')

            def _on_lidar(self, msg) -> None:
                if too_new:                                # a domain error is counted under its cause:
                    raise DroppedInput(Cause.FUTURE, f'stamp {stamp} ns is ahead of the clock')
                ...                                        # or self.drop('lidar', Cause.LATE, detail)

            def diagnostics_values(self) -> dict[str, object]:
                return {'cycles': self.cycles}             # drops.* are added by the scaffold

    ``kwargs`` go to ``rclpy.node.Node`` (context, namespace, parameter_overrides,
    cli_args, ...), so the in-process bringup composes a node as ``ros2 launch``
    would. A node whose set-up fails (a bad parameter) is destroyed before the
    error propagates: a half-built node must not linger in the context.
    """

    #: the node name; subclasses set it
    default_name: ClassVar[str] = ''

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        self.drops = DropCounter()
        self.diag_pub: Any = None
        self.diag_timer: Any = None
        self._status_name = self.default_name
        self._hardware_id = ''
        self._drops_reported = 0
        self._drop_log: dict[str, tuple[float, Counter[str | None]]] = {}   # cause -> (last logged, since then)
        self._drop_log_clock: Callable[[], float] = time.monotonic
        self._clock_watch: Any = None
        try:
            scaffold = declare(self, (STRICT_PARAMETERS, EXECUTOR))
            self.strict_parameters = bool(scaffold[STRICT_PARAMETERS.name])
            self.executor_kind = str(scaffold[EXECUTOR.name])
            if self.executor_kind not in EXECUTORS:
                raise ConfigError(f'parameter {EXECUTOR.name!r} is {self.executor_kind!r}; '
                                  f'expected one of {", ".join(EXECUTORS)}')
            self._setup()
            self._check_overrides()
            self._watch_clock()
        except Exception:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------- parameters --

    def declare_params(self, params: Sequence[Param], platoon: NodeKind | None = None) -> dict[str, Any]:
        """Declare ``params`` (descriptors, ranges) and return ``{name: value}``; ConfigError names a bad one.

        platoon : the node kind whose platoon parameters (``core.platoon_config.platoon_parameters``)
            come from the ``platoon_file`` parameter, declared here, when it is set; an explicitly
            given platoon parameter that disagrees with the file is a ConfigError naming both
        """
        if platoon is not None:
            path = str(declare(self, (PLATOON_FILE,))[PLATOON_FILE.name])
            if path:
                derived = self._platoon_values(path, platoon)
                params = [replace(p, default=derived[p.name]) if p.name in derived else p for p in params]
        return declare(self, params)

    def _platoon_values(self, path: str, kind: NodeKind) -> dict[str, Any]:
        derived = load_platoon_config(path).node_parameters()[kind]
        given = self._parameter_overrides      # rclpy: the -p / params-file values for this node, by name
        for name, value in derived.items():
            if name in given and not _same(given[name].value, value):
                shown = given[name].value
                shown = shown if isinstance(shown, str) or not hasattr(shown, '__iter__') else list(shown)
                raise ConfigError(f'parameter {name!r} = {shown!r} disagrees with platoon_file {path}, '
                                  f'which gives {value}: give one of them')
        return derived

    def _check_overrides(self) -> None:
        """Warn about (strict: refuse) parameter overrides no declared parameter takes, naming the closest."""
        declared = set(self._parameters)
        unknown = sorted(n for n in self._parameter_overrides
                         if n not in declared and not n.startswith('qos_overrides.'))
        problems = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(declared), n=1)
            hint = f'; did you mean {close[0]!r}?' if close else ''
            problems.append(f'unknown parameter {name!r} for {self.get_fully_qualified_name()}{hint}')
        if problems and self.strict_parameters:
            raise ConfigError('; '.join(problems) + ' (strict_parameters is true)')
        for text in problems:
            self.get_logger().warning(f'{text} (ignored)')

    def _watch_clock(self) -> None:
        """On wall time, listen for /clock once: inputs stamped in sim time would all be dropped."""
        if not self.get_parameter('use_sim_time').value:
            self._clock_watch = self.create_subscription(Clock, '/clock', self._on_clock, _CLOCK_QOS)

    def _on_clock(self, msg: Clock) -> None:
        if self._clock_watch is None:
            return
        self.destroy_subscription(self._clock_watch)
        self._clock_watch = None
        if self.get_parameter('use_sim_time').value:
            return
        sim_s = msg.clock.sec + 1e-9 * msg.clock.nanosec
        self.get_logger().warning(
            f'/clock is being published (sim time {sim_s:.1f} s) but this node runs on wall time '
            f'({self.now_ns() / 1e9:.1f} s): inputs stamped in sim time will be dropped as too old or '
            f'from the future. Start it with -p use_sim_time:=true')

    @staticmethod
    def config(config_cls: type[C], values: Mapping[str, Any], prefix: str = '', **kwargs: Any) -> C:
        """A frozen config from declared values by field name: :func:`core.config_values.config_from_values`."""
        return config_from_values(config_cls, values, prefix, **kwargs)

    def vehicle_id_from(self, value: str) -> str:
        """``value``, or when empty the node namespace without its slash; ConfigError when both are empty."""
        return vehicle_id_or_namespace(value, self.get_namespace())

    def now_ns(self) -> int:
        """Node clock (sim time when use_sim_time is set), nanoseconds."""
        return int(self.get_clock().now().nanoseconds)

    # --------------------------------------------------------------- drops --

    def drop(self, source: str | None, cause: Cause | str, detail: str) -> bool:
        """Count one dropped input of ``source`` (None: the node as a whole) and log it when due.

        Returns True for the first drop of this source and cause. Logging: see the module docstring.
        """
        cause = str(getattr(cause, 'value', cause))
        first = self.drops.count(cause, detail, None, source)
        label = cause if source is None else f'{source}: {cause}'
        logger = self.get_logger()
        if cause in BY_DESIGN:
            logger.debug(f'dropped input ({label}, by design): {detail}')
            return first
        now = self._drop_log_clock()
        last = self._drop_log.get(cause)
        if last is None:
            logger.warning(f'dropped input ({label}): {detail}')
            self._drop_log[cause] = (now, Counter())
            return first
        last[1][source] += 1
        if now - last[0] >= DROP_LOG_INTERVAL_S:
            since = last[1]
            per = ', '.join(f'{s or "node"}: {n}' for s, n in sorted(since.items(), key=lambda kv: str(kv[0])))
            logger.warning(f'dropped input ({cause}): {sum(since.values())} more in the last '
                           f'{now - last[0]:.0f} s ({per}); latest ({label}): {detail}')
            self._drop_log[cause] = (now, Counter())
        return first

    def drop_all(self, drops: Sequence[Drop]) -> None:
        """Count the drops a core class reported."""
        for d in drops:
            self.drop(d.source, d.cause, d.detail)

    def guard(self, source: str | None, fn: Callable[..., None]) -> Callable[..., None]:
        """``fn`` wrapped so nothing it raises reaches the executor.

        A domain error (``core.errors``) is a drop of ``source`` under its cause
        (``core.drops.cause_of``: ``malformed``, ``frame``, ...); any other exception
        is an ``internal`` drop, logged with its traceback the first time.
        """

        def guarded(*args: Any) -> None:
            self._call_guarded(source, fn, args)

        return guarded

    def create_guarded_timer(self, period_s: float, source: str | None, fn: Callable[[], None]) -> Timer:
        """A timer on the node clock calling ``fn()`` every ``period_s``, guarded as :meth:`guard` does.

        The callback takes no argument: rclpy's EventsExecutor hands a TimerInfo to any callback that
        accepts positional arguments, which a ``*args`` wrapper would pass on to ``fn``. Its signature is
        set: rclpy runs ``inspect.signature`` on a timer's callback at every tick, about 25 us when it has
        to work it out.
        """

        def tick() -> None:
            self._call_guarded(source, fn, ())

        tick.__signature__ = _NO_ARGUMENTS      # type: ignore[attr-defined]
        return self.create_timer(period_s, tick)

    def _call_guarded(self, source: str | None, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception as exc:  # the node never dies on one message or tick
            cause = cause_of(exc)
            if cause == Cause.INTERNAL.value:
                if self.drop(source, cause, f'{type(exc).__name__}: {exc}'):
                    self.get_logger().error(f'unexpected exception in {source or "a callback"} '
                                            f'(counted as drops.{source + "." if source else ""}internal):\n'
                                            f'{traceback.format_exc()}')
            else:
                self.drop(source, cause, str(exc))

    # --------------------------------------------------------- diagnostics --

    def start_diagnostics(self, period_s: float, status_name: str | None = None, hardware_id: str = '') -> None:
        """Publish /diagnostics every ``period_s`` (node clock) under ``status_name`` (default: the node name)."""
        self._status_name = status_name or self.default_name
        self._hardware_id = hardware_id
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, diagnostics_qos())
        self.diag_timer = self.create_guarded_timer(period_s, 'diagnostics', self.publish_diagnostics)

    def diagnostics_values(self) -> dict[str, object]:
        """The node's own health values (hook); the scaffold appends ``drops.*``."""
        return {}

    def diagnostics_summary(self, new_drops: int) -> tuple[Level, str]:
        """Level and message of the status (hook); ``new_drops``: drops since the last report.

        Default: WARN when inputs were dropped since the last report, else OK.
        """
        if new_drops:
            return Level.WARN, f'{new_drops} input(s) dropped since the last report'
        return Level.OK, 'ok'

    def diagnostics_statuses(self) -> list[DiagnosticStatus]:
        """The statuses of one /diagnostics message (hook): by default one, from the two hooks above."""
        values = self.diagnostics_values()
        values.update(self.drops.as_values('drops.'))
        total = self.drops.total
        level, message = self.diagnostics_summary(total - self._drops_reported)
        self._drops_reported = total
        return [make_status(self._status_name, level, message, values, hardware_id=self._hardware_id)]

    def publish_diagnostics(self) -> None:
        """Publish one DiagnosticArray now (the timer calls this)."""
        statuses = self.diagnostics_statuses()
        if self.diag_pub is not None:
            self.diag_pub.publish(make_array(self.now_ns(), statuses))


def vehicle_id_or_namespace(value: str, namespace: str) -> str:
    """``value``, or when empty ``namespace`` without its slash (``/v1`` -> ``v1``); ConfigError when both are empty."""
    vid = str(value) or namespace.strip('/')
    if not vid:
        raise ConfigError('vehicle_id is empty and the node has no namespace: set -p vehicle_id:=v1 '
                          'or -r __ns:=/v1')
    return vid


def _same(given: Any, derived: Any) -> bool:
    """A given parameter equals a derived one, a list or a number (numbers compared as floats)."""
    if not isinstance(derived, list):
        return (isinstance(given, (int, float)) and not isinstance(given, bool)
                and isinstance(derived, (int, float)) and float(given) == float(derived))
    if isinstance(given, (str, bytes)) or not hasattr(given, '__iter__'):
        return False
    given = list(given)          # a list, or an array.array for numbers
    if len(given) != len(derived):
        return False
    return all(g == d if isinstance(d, str) else (not isinstance(g, str) and float(g) == float(d))
               for g, d in zip(given, derived))


#: glibc mallopt parameters (malloc.h) and the values the node process runs with.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 << 20      # glibc's largest: arrays up to 32 MB come from the heap
_TRIM_THRESHOLD_BYTES = 128 << 20     # the heap keeps up to 128 MB freed before giving memory back


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for the next cycle instead of returning it to the kernel.

    A node's cycle allocates and frees arrays of 0.1-8 MB (a vehicle node's some 10 MB a cycle); by
    default glibc maps each one fresh and unmaps it when freed, so every page of them faults in again
    next cycle (0.3-0.6 ms of kernel time per cycle in a vehicle node, 5-6 % of its CPU).
    :func:`spin_node` calls it once per process. False where the C library has no
    mallopt (not glibc): nothing changed.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES))


def spin_node(factory: Callable[[], Node], name: str, args: Sequence[str] | None = None) -> int:
    """Console entry point: run one node until Ctrl-C or shutdown.

    Returns 0 after a shutdown, 130 after SIGINT (Ctrl-C), 2 with one line on stderr
    for a configuration error (a missing or broken params file, a bad parameter).
    """
    keep_freed_memory()
    note_sigint()                 # kill -INT stops the node even when started with SIGINT ignored
    argv = list(sys.argv if args is None else args)
    for problem in params_file_errors(argv):
        print(f'{name}: configuration error: {problem}', file=sys.stderr)
        return 2
    rcl_level = rclpy.logging.get_logger_level('rcl')
    rclpy.logging.set_logger_level('rcl', rclpy.logging.LoggingSeverity.FATAL)   # its log repeats the error
    try:
        rclpy.init(args=argv)
    except Exception as exc:  # rcl's RCLError: arguments rcl cannot parse
        print(f'{name}: configuration error: {_rcl_message(exc)}', file=sys.stderr)
        return 2
    finally:
        rclpy.logging.set_logger_level('rcl', rcl_level)
    node = None
    code = 0
    try:
        node = factory()
        spin(node)
    except ConfigError as exc:
        print(f'{name}: configuration error: {exc}', file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    # rclpy's handler shuts the context down on SIGINT: spin may also just return
    return INTERRUPTED if code == 0 and sigint_received() else code


#: Longest wait of one :func:`spin` step: how soon a shut-down context ends the loop, seconds.
_SPIN_STEP_S = 0.5


def spin(node: Node) -> None:
    """Spin ``node`` until its context shuts down, with the executor its ``executor`` parameter names.

    The EventsExecutor runs in steps of ``spin_until_future_complete`` on a future that never completes,
    each returning after ``_SPIN_STEP_S``: its ``spin()`` in this rclpy (Kilted, PyPI wheels) dispatched
    nothing and ignored shutdown when we measured it. A step dispatches every event of its half second in
    C++; ``spin_once`` (one event per call from Python) cost 10-20 % more CPU per message
    (docs/limits.md, "Fourth pass"). Timers on sim time run either way.
    """
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.task import Future

    executor: Any = None
    if getattr(node, 'executor_kind', 'single') == 'events':
        try:
            from rclpy.experimental import EventsExecutor
            executor = EventsExecutor(context=node.context)
        except (ImportError, AttributeError) as exc:
            node.get_logger().warning(f'no EventsExecutor in this rclpy ({exc}); spinning with executor:=single')
    events = executor is not None
    if executor is None:
        executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        if events:
            never = Future()
            while node.context.ok():
                executor.spin_until_future_complete(never, timeout_sec=_SPIN_STEP_S)
        else:
            executor.spin()
    except ExternalShutdownException:
        pass
    finally:
        executor.remove_node(node)
        executor.shutdown()


def _rcl_message(exc: BaseException) -> str:
    """rcl's error text without its source locations (``, at /project/src/...``)."""
    text = ' '.join(str(exc).split())
    return text.split(', at /')[0]
