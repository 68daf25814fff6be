"""The platoon, declared once in ``config/platoon.yaml``: its loader and the parameters it gives fusion and twin.

:func:`load_platoon_config` validates the file (ConfigError naming file and key).
:func:`platoon_parameters` derives the fusion and twin nodes' platoon parameters
(vehicle ids, weights, bodies; for the fusion also the vehicles' lidar mounts and radar
moving-return settings, from their params files) from its vehicle list. No ROS imports: the nodes
(``platoon_file``), the bringup (``app/platoon.py``) and the launch files use it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

from .config_files import find_config, read_yaml, ros_parameters
from .errors import ConfigError
from .vehicle_defaults import LIDAR_EXTRINSIC, MOVING_MIN_SPEED_MPS, MOVING_RADIUS_M

PACKAGE = 'cooperative_fusion'
DEFAULT_CONFIG = 'platoon.yaml'
#: Placeholder in record topics that expands to every vehicle id.
VEHICLE_PLACEHOLDER = '<v>'
_VEHICLE_ID = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


class NodeKind(str, Enum):
    """The node types a platoon bringup composes: module, class and console script of each."""

    VEHICLE = 'vehicle'
    FUSION = 'fusion'
    TWIN = 'twin'

    @property
    def module(self) -> str:
        return f'{PACKAGE}.nodes.{self.value}_node'

    @property
    def class_name(self) -> str:
        return f'{self.value.capitalize()}Node'

    @property
    def executable(self) -> str:
        """Console script (setup.py entry point) and launch ``executable``."""
        return f'{self.value}_node'


@dataclass(frozen=True)
class VehicleBody:
    """A platoon member's box: odometry gives base_link, the box runs from rear_overhang_m
    behind it to length_m - rear_overhang_m ahead; metres."""

    length_m: float
    width_m: float
    rear_overhang_m: float


@dataclass(frozen=True)
class PlatoonVehicle:
    """One platoon member: id, its vehicle node's params files, body and fusion weight in (0, 1]."""

    id: str
    params: tuple[Path, ...]
    body: VehicleBody
    weight: float = 1.0


#: Fusion parameters that are a vehicle node parameter of every vehicle (fusion name: vehicle name); the
#: fusion's dynamic layer takes one value for the platoon.
PLATOON_WIDE = {'dynamic.moved_radius_m': 'radar.moving_radius_m',
                'dynamic.moved_min_speed_mps': 'radar.moving_min_speed_mps'}
#: The vehicle node's defaults of the parameters the fusion derives (where no params file gives one).
VEHICLE_DEFAULTS: dict[str, Any] = {'extrinsics.lidar': list(LIDAR_EXTRINSIC),
                                    'radar.moving_radius_m': MOVING_RADIUS_M,
                                    'radar.moving_min_speed_mps': MOVING_MIN_SPEED_MPS}


def platoon_parameters(vehicles: Sequence[PlatoonVehicle]) -> dict[NodeKind, dict[str, Any]]:
    """The parameters that name the platoon, per node kind, in platoon order (leader first).

    Fusion: ``vehicles``, ``vehicle_weights``, ``footprints.vehicles`` / ``length_m`` / ``width_m`` /
    ``rear_overhang_m`` / ``lidar_x_m`` / ``lidar_y_m`` (:func:`lidar_mount_xy`), and the
    :data:`PLATOON_WIDE` ones (``dynamic.moved_radius_m`` / ``moved_min_speed_mps``: the vehicles'
    ``radar.moving_radius_m`` / ``moving_min_speed_mps``; ConfigError naming them when they differ); twin:
    ``vehicles``, ``vehicle_lengths_m``, ``vehicle_widths_m``, ``vehicle_rear_overhangs_m``. Vehicle nodes get
    none (their ``vehicle_id`` is per node). A vehicle's own values come from its params files, else the
    vehicle node's defaults (:func:`vehicle_parameter`).
    """
    ids = [v.id for v in vehicles]
    own = [vehicle_parameters(v.params) for v in vehicles]
    lidars = [_lidar_xy(v.id, values) for v, values in zip(vehicles, own)]
    lengths = [float(v.body.length_m) for v in vehicles]
    widths = [float(v.body.width_m) for v in vehicles]
    rears = [float(v.body.rear_overhang_m) for v in vehicles]
    return {
        NodeKind.FUSION: {'vehicles': ids, 'vehicle_weights': [float(v.weight) for v in vehicles],
                          'footprints.vehicles': list(ids), 'footprints.length_m': lengths,
                          'footprints.width_m': widths, 'footprints.rear_overhang_m': rears,
                          'footprints.lidar_x_m': [x for x, _ in lidars],
                          'footprints.lidar_y_m': [y for _, y in lidars],
                          **{name: _platoon_wide(ids, own, of) for name, of in PLATOON_WIDE.items()}},
        NodeKind.TWIN: {'vehicles': list(ids), 'vehicle_lengths_m': list(lengths),
                        'vehicle_widths_m': list(widths), 'vehicle_rear_overhangs_m': list(rears)},
    }


def vehicle_parameters(params: Sequence[Path]) -> dict[str, Any]:
    """The vehicle node parameters its params files give, ``{dotted.name: value}``, a later file winning.

    A file that cannot be read gives none: a bringup without the vehicle nodes need not have them
    (with them, :func:`load_platoon_config` checks every file first).
    """
    values: dict[str, Any] = {}
    for file in params:
        try:
            values.update(ros_parameters(file))
        except ConfigError:
            continue
    return values


def vehicle_parameter(values: dict[str, Any], name: str) -> Any:
    """``name`` of :func:`vehicle_parameters` ``values``, else the vehicle node's default
    (:data:`VEHICLE_DEFAULTS`), as the vehicle node itself takes it."""
    return values.get(name, VEHICLE_DEFAULTS[name])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _lidar_xy(vehicle_id: str, values: dict[str, Any]) -> tuple[float, float]:
    mount = vehicle_parameter(values, 'extrinsics.lidar')
    if not (isinstance(mount, list) and len(mount) == 6 and all(_finite(v) for v in mount)):
        raise ConfigError(f'vehicle {vehicle_id}: extrinsics.lidar {mount!r} in its params files: expected '
                          f'[x, y, z, roll, pitch, yaw] (metres, radians)')
    return float(mount[0]), float(mount[1])


def lidar_mount_xy(params: Sequence[Path], vehicle_id: str = '') -> tuple[float, float]:
    """(x, y) of the lidar in base_link: ``extrinsics.lidar`` of the vehicle's params files (a later file
    wins), else the vehicle node's default, metres; ConfigError for a value that is not six numbers."""
    return _lidar_xy(vehicle_id or '?', vehicle_parameters(params))


def _platoon_wide(ids: Sequence[str], own: Sequence[dict[str, Any]], name: str) -> float:
    """The vehicles' common value of vehicle parameter ``name``; ConfigError when they differ or one is not a
    number >= 0."""
    values = [vehicle_parameter(v, name) for v in own]
    for vid, value in zip(ids, values):
        if not (_finite(value) and value >= 0):
            raise ConfigError(f'vehicle {vid}: {name} {value!r} in its params files: expected a number >= 0')
    if len(set(float(v) for v in values)) > 1:
        shown = ', '.join(f'{vid} {float(v):g}' for vid, v in zip(ids, values))
        raise ConfigError(f'the vehicles\' {name} differ ({shown}): the fusion takes one value for the platoon '
                          f'(dynamic layer); give every vehicle the same')
    return float(values[0])


@dataclass(frozen=True)
class PlatoonConfig:
    """``config/platoon.yaml``, validated; paths are absolute.

    platoon : the vehicles in platoon order (leader first)
    run_vehicles, run_fusion, run_twin : which nodes to start
    record_topics : topics written to a --record bag, ``<v>`` expanded
    drain_s : sim seconds run on after the last message of a bag
    """

    path: Path
    platoon: tuple[PlatoonVehicle, ...]
    fusion_params: tuple[Path, ...]
    twin_params: tuple[Path, ...]
    run_vehicles: bool = True
    run_fusion: bool = True
    run_twin: bool = True
    record_topics: tuple[str, ...] = ()
    drain_s: float = 0.5

    @property
    def vehicles(self) -> tuple[str, ...]:
        """Vehicle ids in platoon order."""
        return tuple(v.id for v in self.platoon)

    @property
    def vehicle_params(self) -> dict[str, tuple[Path, ...]]:
        """Vehicle id -> its params files."""
        return {v.id: v.params for v in self.platoon}

    def node_parameters(self) -> dict[NodeKind, dict[str, Any]]:
        """:func:`platoon_parameters` of this platoon; ConfigError naming the file when its vehicles disagree."""
        try:
            return platoon_parameters(self.platoon)
        except ConfigError as exc:
            raise ConfigError(f'{self.path}: {exc}') from exc


# ------------------------------------------------------------------ loading --

def default_config_path() -> Path:
    """``config/platoon.yaml`` of a source checkout, else of the installed share dir (ConfigError if neither)."""
    return find_config(DEFAULT_CONFIG, '--config FILE')


_TOP_KEYS = {'run', 'vehicles', 'fusion', 'twin', 'record', 'drain_s'}
_VEHICLE_KEYS = {'id', 'params', 'body', 'weight'}
_BODY_KEYS = ('length_m', 'width_m', 'rear_overhang_m')


def _fail(path: Path, key: str, problem: str) -> ConfigError:
    return ConfigError(f'{path}: {key}: {problem}')


def _mapping(path: Path, raw: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, key, f'expected a mapping, got {type(raw).__name__} {raw!r}')
    unknown = sorted(str(k) for k in set(raw) - allowed)
    if unknown:
        raise _fail(path, f'{key}.{unknown[0]}' if key else unknown[0],
                    f'unknown key; expected one of {sorted(allowed)}')
    return raw


def _check_params_file(path: Path, key: str, file: Path) -> None:
    """A ROS 2 params file: a mapping of node names to ``{ros__parameters: mapping}``."""
    if not file.is_file():
        raise _fail(path, key, f'params file {file} does not exist')
    try:
        data = read_yaml(file, 'params file')
    except ConfigError as exc:
        raise _fail(path, key, str(exc)) from exc
    if not isinstance(data, dict) or not data:
        raise _fail(path, key, f'params file {file} is not a ROS 2 parameter file '
                               f'(expected a mapping of node names, got {type(data).__name__})')
    for node, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get('ros__parameters'), dict):
            raise _fail(path, key, f'params file {file}: node {node!r} has no ros__parameters mapping')


def _params_list(path: Path, raw: Any, key: str, check: bool) -> tuple[Path, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) and p for p in raw):
        raise _fail(path, key, f'expected a params file name or a non-empty list of them, got {raw!r}')
    files = tuple((path.parent / p).resolve() for p in raw)
    if check:
        for i, f in enumerate(files):
            _check_params_file(path, f'{key}[{i}]', f)
    return files


def _bool(path: Path, raw: dict[str, Any], key: str, prefix: str) -> bool:
    value = raw.get(key, True)
    if not isinstance(value, bool):
        raise _fail(path, f'{prefix}.{key}', f'expected true or false, got {value!r}')
    return value


def _number(path: Path, raw: Any, key: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise _fail(path, key, f'expected a finite number, got {raw!r}')
    return float(raw)


def _body(path: Path, raw: Any, key: str) -> VehicleBody:
    if raw is None:
        raise _fail(path, key, 'missing; give the body as {length_m, width_m, rear_overhang_m} in metres')
    raw = _mapping(path, raw, key, set(_BODY_KEYS))
    for name in _BODY_KEYS:
        if name not in raw:
            raise _fail(path, f'{key}.{name}', 'missing (metres)')
    length, width, rear = (_number(path, raw[n], f'{key}.{n}') for n in _BODY_KEYS)
    if length <= 0:
        raise _fail(path, f'{key}.length_m', f'expected metres > 0, got {raw["length_m"]!r}')
    if width <= 0:
        raise _fail(path, f'{key}.width_m', f'expected metres > 0, got {raw["width_m"]!r}')
    if not 0 <= rear < length:
        raise _fail(path, f'{key}.rear_overhang_m', f'expected metres in [0, length_m {length:g}), got '
                                                    f'{raw["rear_overhang_m"]!r}')
    return VehicleBody(length, width, rear)


def _vehicle(path: Path, raw: Any, key: str, check_params: bool) -> PlatoonVehicle:
    entry = _mapping(path, raw, key, _VEHICLE_KEYS)
    vid = entry.get('id')
    if not isinstance(vid, str) or not _VEHICLE_ID.match(vid):
        raise _fail(path, f'{key}.id', f'expected a vehicle id like v1 (letter, then letters, digits, _), '
                                       f'got {vid!r}')
    if 'params' not in entry:
        raise _fail(path, f'{key}.params', 'missing; list the vehicle params files (e.g. [vehicle.yaml])')
    params = _params_list(path, entry['params'], f'{key}.params', check_params)
    weight = _number(path, entry.get('weight', 1.0), f'{key}.weight')
    if not 0 < weight <= 1:
        raise _fail(path, f'{key}.weight', f'expected a fusion weight in (0, 1], got {entry["weight"]!r}')
    return PlatoonVehicle(vid, params, _body(path, entry.get('body'), f'{key}.body'), weight)


def load_platoon_config(path: str | Path | None = None) -> PlatoonConfig:
    """Read and validate a bringup config (None: :func:`default_config_path`).

    Params files of the nodes that run must exist and look like ROS 2 params
    files. Raises ConfigError naming the file and the key.
    """
    path = Path(path) if path is not None else default_config_path()
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f'{path}: bringup config does not exist')
    raw = read_yaml(path, 'bringup config')
    if not isinstance(raw, dict):
        raise ConfigError(f'{path}: expected a mapping at the top level, got {type(raw).__name__}')
    raw = _mapping(path, raw, '', _TOP_KEYS)

    run = _mapping(path, raw.get('run'), 'run', {'vehicles', 'fusion', 'twin'})
    run_vehicles, run_fusion, run_twin = (_bool(path, run, k, 'run') for k in ('vehicles', 'fusion', 'twin'))
    if not (run_vehicles or run_fusion or run_twin):
        raise _fail(path, 'run', 'every node is switched off; enable vehicles, fusion or twin')

    vehicles_raw = raw.get('vehicles')
    if not isinstance(vehicles_raw, list) or not vehicles_raw:
        raise _fail(path, 'vehicles', f'expected a non-empty list of {{id, params, body}}, got {vehicles_raw!r}')
    platoon: list[PlatoonVehicle] = []
    for i, entry in enumerate(vehicles_raw):
        vehicle = _vehicle(path, entry, f'vehicles[{i}]', run_vehicles)
        if any(v.id == vehicle.id for v in platoon):
            raise _fail(path, f'vehicles[{i}].id', f'vehicle id {vehicle.id!r} appears twice')
        platoon.append(vehicle)

    def node_params(name: str, enabled: bool) -> tuple[Path, ...]:
        section = _mapping(path, raw.get(name), name, {'params'})
        if 'params' not in section:
            if enabled:
                raise _fail(path, f'{name}.params', f'missing; list the {name} params files')
            return ()
        return _params_list(path, section['params'], f'{name}.params', enabled)

    fusion_params = node_params('fusion', run_fusion)
    twin_params = node_params('twin', run_twin)

    ids = [v.id for v in platoon]
    record = _mapping(path, raw.get('record'), 'record', {'topics'})
    topics_raw = record.get('topics', [])
    if not isinstance(topics_raw, list):
        raise _fail(path, 'record.topics', f'expected a list of topic names, got {topics_raw!r}')
    topics: list[str] = []
    for i, t in enumerate(topics_raw):
        if not isinstance(t, str) or not t.startswith('/') or ' ' in t:
            raise _fail(path, f'record.topics[{i}]', f'expected an absolute topic name (/...), got {t!r}')
        expanded = [t.replace(VEHICLE_PLACEHOLDER, v) for v in ids] if VEHICLE_PLACEHOLDER in t else [t]
        topics += [x for x in expanded if x not in topics]

    drain_s = raw.get('drain_s', 0.5)
    if isinstance(drain_s, bool) or not isinstance(drain_s, (int, float)) or not (0 <= drain_s < 3600):
        raise _fail(path, 'drain_s', f'expected seconds in [0, 3600), got {drain_s!r}')

    return PlatoonConfig(path=path, platoon=tuple(platoon), fusion_params=fusion_params, twin_params=twin_params,
                         run_vehicles=run_vehicles, run_fusion=run_fusion, run_twin=run_twin,
                         record_topics=tuple(topics), drain_s=float(drain_s))
