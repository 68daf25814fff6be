"""How every node starts: the two-step constructor and the console entry point (init, spin, clean up)."""
from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from ..core.errors import ConfigError
from ..ros.signals import take_sigint


class SetupNode(Node):
    """An rclpy Node whose ``_setup()`` declares parameters and builds everything else.

    ``kwargs`` go to ``rclpy.node.Node`` (context, namespace, parameter_overrides,
    cli_args, ...), so the in-process bringup composes it as ``ros2 launch`` would.
    A node whose set-up fails (a bad parameter) is destroyed before the error
    propagates: a half-built node must not linger in the context.
    """

    #: the node name; subclasses set it
    default_name = ''

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        try:
            self._setup()
        except Exception:
            self.destroy_node()
            raise

    def _setup(self) -> None:
        raise NotImplementedError


def spin_node(factory: Callable[[], Node], name: str, args: Sequence[str] | None = None) -> int:
    """Run one node until Ctrl-C or shutdown; 2 (and one line on stderr) on a configuration error."""
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
