"""The platoon's bringup: the nodes ``config/platoon.yaml`` starts and the ROS arguments each gets.

The file itself is read by :mod:`cooperative_fusion.core.platoon_config` (re-exported
here): :func:`load_platoon_config` gives a :class:`PlatoonConfig` whose
:meth:`~PlatoonConfig.node_specs` gives every node its params files and platoon
parameters, as ``cooperative-fusion run`` and the launch files start them. No ROS
imports: the launch files import this module.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence, Union

from ..core import platoon_config as _core
from ..core.errors import ConfigError
from ..core.platoon_config import (DEFAULT_CONFIG, PACKAGE, VEHICLE_PLACEHOLDER, NodeKind, PlatoonVehicle,
                                   VehicleBody, default_config_path, platoon_parameters)

__all__ = ['DEFAULT_CONFIG', 'PACKAGE', 'VEHICLE_PLACEHOLDER', 'NodeKind', 'NodeSpec', 'ParamValue', 'PlatoonConfig',
           'PlatoonVehicle', 'VehicleBody', 'default_config_path', 'format_parameter', 'load_platoon_config',
           'platoon_parameters']

#: A ROS parameter value a node spec passes on the command line.
ParamValue = Union[str, bool, int, float, Sequence[str], Sequence[float]]


def format_parameter(value: ParamValue) -> str:
    """``value`` as rcl reads it after ``-p name:=``: strings single-quoted, so an id like ``on``
    stays a string; floats with their type kept (``12.0``, not ``12``); lists as ``[a, b]``."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f'parameter value {value!r} is not finite')
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    items = list(value)
    if not items:
        raise ConfigError('an empty list has no ROS parameter type; give at least one value')
    return '[' + ', '.join(format_parameter(v) for v in items) + ']'


@dataclass(frozen=True)
class NodeSpec:
    """One node of the bringup and the ROS arguments it is started with.

    params_files : ROS parameter files, applied in order (a later one wins)
    namespace : '' (root) or '/<vehicle_id>'
    parameters : ``(name, value)`` pairs passed as ``-p name:=value`` (after the files, so they win);
        list values are tuples
    """

    kind: NodeKind
    params_files: tuple[Path, ...]
    namespace: str = ''
    parameters: tuple[tuple[str, ParamValue], ...] = ()

    @property
    def label(self) -> str:
        return f'{self.kind.executable}{" in " + self.namespace if self.namespace else ""}'

    def ros_args(self, use_sim_time: bool | None = None) -> list[str]:
        """``['--ros-args', '--params-file', F, ..., '-r', '__ns:=/v1', '-p', "k:='v'", ...]``.

        use_sim_time : add ``-p use_sim_time:=true|false`` (None: leave it to the params files)
        """
        args = ['--ros-args']
        for path in self.params_files:
            args += ['--params-file', str(path)]
        if self.namespace:
            args += ['-r', f'__ns:={self.namespace}']
        for name, value in self.parameters:
            args += ['-p', f'{name}:={format_parameter(value)}']
        if use_sim_time is not None:
            args += ['-p', f'use_sim_time:={format_parameter(use_sim_time)}']
        return args

    def command(self, python: str = sys.executable, use_sim_time: bool | None = None) -> list[str]:
        """Command line running this node as its own OS process (``python -m <module> --ros-args ...``)."""
        return [python, '-m', self.kind.module, *self.ros_args(use_sim_time)]


@dataclass(frozen=True)
class PlatoonConfig(_core.PlatoonConfig):
    """:class:`cooperative_fusion.core.platoon_config.PlatoonConfig` with the nodes the bringup starts."""

    def node_specs(self) -> list[NodeSpec]:
        """The nodes to start: every vehicle (in order), then fusion, then twin, as enabled."""
        derived = self.node_parameters()

        def params(kind: NodeKind) -> tuple[tuple[str, ParamValue], ...]:
            return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in derived[kind].items())

        specs: list[NodeSpec] = []
        if self.run_vehicles:
            specs += [NodeSpec(NodeKind.VEHICLE, v.params, f'/{v.id}', (('vehicle_id', v.id),))
                      for v in self.platoon]
        if self.run_fusion:
            specs.append(NodeSpec(NodeKind.FUSION, self.fusion_params, parameters=params(NodeKind.FUSION)))
        if self.run_twin:
            specs.append(NodeSpec(NodeKind.TWIN, self.twin_params, parameters=params(NodeKind.TWIN)))
        return specs


def load_platoon_config(path: str | Path | None = None) -> PlatoonConfig:
    """:func:`cooperative_fusion.core.platoon_config.load_platoon_config`, with :meth:`PlatoonConfig.node_specs`."""
    cfg = _core.load_platoon_config(path)
    return PlatoonConfig(**{f.name: getattr(cfg, f.name) for f in fields(cfg)})
