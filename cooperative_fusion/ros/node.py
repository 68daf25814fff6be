"""The node scaffold every node derives from: parameters, guarded callbacks, drops, /diagnostics, entry point.

Drop keys, the same in every node's /diagnostics status: ``drops.<cause>`` (all
inputs), ``drops.<source>.<cause>`` (one input: a stream, a vehicle id, a timer)
and ``drops.total``. Causes are snake_case, from ``core.drops.Cause``
(``malformed``, ``frame``, ``future``, ``too_old``, ``late``, ``out_of_order``,
``duplicate``, ``no_pose``, ..., ``internal`` for a bug) or a node's own. Each
(source, cause) is logged at its first drop, then at most every 10 s.
See :class:`BaseNode` for how to use it.
"""
from __future__ import annotations

import sys
import traceback
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from ..core.config_values import config_from_values
from ..core.drops import Cause, Drop, cause_of
from ..core.errors import ConfigError
from .diagnostics import DropCounter, Level, make_array, make_status
from .names import DIAGNOSTICS
from .params import Param, declare
from .qos import diagnostics_qos
from .signals import take_sigint

__all__ = ['BaseNode', 'spin_node', 'vehicle_id_or_namespace', 'Param', 'config_from_values']

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
        try:
            self._setup()
        except Exception:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------- parameters --

    def declare_params(self, params: Sequence[Param]) -> dict[str, Any]:
        """Declare ``params`` (descriptors, ranges) and return ``{name: value}``; ConfigError names a bad one."""
        return declare(self, params)

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

        Returns True for the first drop of this source and cause.
        """
        return self.drops.count(str(getattr(cause, 'value', cause)), detail, self.get_logger(), source)

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

        return guarded

    # --------------------------------------------------------- diagnostics --

    def start_diagnostics(self, period_s: float, status_name: str | None = None, hardware_id: str = '') -> None:
        """Publish /diagnostics every ``period_s`` (node clock) under ``status_name`` (default: the node name)."""
        self._status_name = status_name or self.default_name
        self._hardware_id = hardware_id
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS, diagnostics_qos())
        self.diag_timer = self.create_timer(period_s, self.guard('diagnostics', self.publish_diagnostics))

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


def spin_node(factory: Callable[[], Node], name: str, args: Sequence[str] | None = None) -> int:
    """Console entry point: run one node until Ctrl-C or shutdown; 2 (and one line on stderr) on a configuration error."""
    take_sigint()                 # kill -INT stops the node even when started with SIGINT ignored
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = factory()
        rclpy.spin(node)
    except ConfigError as exc:
        print(f'{name}: configuration error: {exc}', file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
