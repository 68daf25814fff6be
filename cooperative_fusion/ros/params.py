"""Declare a node's parameters from one table, with descriptors and ranges.

Each node lists its parameters once as :class:`Param` rows; :func:`declare`
declares them with a ``ParameterDescriptor`` (description, range, read-only)
and returns their values as a plain dict, which the node turns into frozen
core configs (``core.config_values.config_from_values``, by field name).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from ..core.config_files import ros_parameters
from ..core.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """One parameter: name (dotted for nesting), default, description, optional numeric range."""

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    read_only: bool = True


def descriptor(p: Param) -> ParameterDescriptor:
    d = ParameterDescriptor(description=p.description, read_only=p.read_only)
    if p.min_value is not None or p.max_value is not None:
        lo = p.min_value if p.min_value is not None else -1e18
        hi = p.max_value if p.max_value is not None else 1e18
        if isinstance(p.default, bool):
            pass
        elif isinstance(p.default, int):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(p.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


def declare(node: Node, params: Sequence[Param]) -> dict[str, Any]:
    """Declare every parameter and return ``{name: value}``.

    A value outside its range, or of the wrong type, raises ConfigError naming
    the parameter (rclpy's own exception is kept as the cause).
    """
    values: dict[str, Any] = {}
    for p in params:
        try:
            node.declare_parameter(p.name, p.default, descriptor(p))
        except Exception as exc:  # rclpy raises several types for bad overrides
            raise ConfigError(f'parameter {p.name!r}: {exc}') from exc
        value = node.get_parameter(p.name).value
        if isinstance(p.default, float) and isinstance(value, int):
            value = float(value)
        if isinstance(p.default, (list, tuple)) and value is not None:
            value = list(value)
        values[p.name] = value
    return values


def params_files(argv: Sequence[str]) -> list[str]:
    """The ``--params-file`` arguments of the ``--ros-args`` sections of ``argv``, in order."""
    files: list[str] = []
    in_ros = False
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == '--ros-args':
            in_ros = True
        elif arg == '--':
            in_ros = False
        elif in_ros and arg == '--params-file' and i + 1 < len(args):
            files.append(args[i + 1])
    return files


def params_file_errors(argv: Sequence[str]) -> list[str]:
    """One line per ``--params-file`` of ``argv`` that is missing, not YAML or not a ROS 2 parameter file."""
    problems = []
    for path in params_files(argv):
        try:
            ros_parameters(path)
        except ConfigError as exc:
            problems.append(' '.join(str(exc).split()))
    return problems
