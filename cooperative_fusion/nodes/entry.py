"""The console entry point every node shares: init, spin until Ctrl-C or shutdown, clean up."""
from __future__ import annotations

import sys
from typing import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from ..core.errors import ConfigError


def spin_node(factory: Callable[[], Node], name: str, args: Sequence[str] | None = None) -> int:
    """Run one node until Ctrl-C or shutdown; 2 (and one line on stderr) on a configuration error."""
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
