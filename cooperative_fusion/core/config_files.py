"""The package's configuration files: where the shipped ones are, and one YAML reader.

Shipped files live in ``config/`` of a source checkout, or in the package's
share directory of an installed (colcon) package. Every YAML file of the
project (platoon, ROS parameter, scenario and fault files) is read through
:func:`read_yaml`, so a missing or broken file gives one line naming the file.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

PACKAGE = 'cooperative_fusion'
#: ``config/`` of a source checkout (this file is cooperative_fusion/core/config_files.py)
CHECKOUT_CONFIG = Path(__file__).resolve().parents[2] / 'config'


def find_config(relative: str | Path, flag: str) -> Path:
    """``config/<relative>`` of the source checkout, else of the installed share directory.

    Raises ConfigError listing where it looked and naming ``flag``, the option that
    passes the file explicitly.
    """
    checkout = CHECKOUT_CONFIG / relative
    if checkout.is_file():
        return checkout
    tried = [str(checkout)]
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            installed = Path(get_package_share_directory(PACKAGE)) / 'config' / relative
            if installed.is_file():
                return installed
            tried.append(str(installed))
        except PackageNotFoundError:
            tried.append(f'share/{PACKAGE} (package not in the ament index)')
    except ImportError:
        tried.append('ament_index_python (not installed)')
    raise ConfigError(f'default {relative} not found; looked in: {", ".join(tried)}; pass {flag}')


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed content of the YAML file ``path``, a ``what`` (``'scenario file'``, ``'faults file'``, ...).

    Raises ConfigError ``<path>: cannot read <what>: <reason>`` when the file is
    missing or unreadable, and ``<path>: not valid YAML: <reason>`` when it does not parse.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read {what}: {exc.strerror or exc}') from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path}: not valid YAML: {exc}') from exc


def ros_parameters(path: str | Path) -> dict[str, Any]:
    """A ROS 2 parameter file's values as ``{dotted.name: value}``, merged over its node sections.

    Nested mappings under ``ros__parameters`` become dotted names, as the nodes
    declare them (``fusion.max_age_s``). Raises ConfigError for a file that is not
    a ROS 2 parameter file.
    """
    data = read_yaml(path, 'parameter file')
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f'{path}: not a ROS 2 parameter file (expected a mapping of node names, '
                          f'got {type(data).__name__})')
    values: dict[str, Any] = {}
    for node, body in data.items():
        if not isinstance(body, Mapping) or not isinstance(body.get('ros__parameters'), Mapping):
            raise ConfigError(f'{path}: node {node!r} has no ros__parameters mapping')
        _flatten(body['ros__parameters'], '', values)
    return values


def _flatten(data: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in data.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            _flatten(value, f'{name}.', out)
        else:
            out[name] = value
