"""Frozen config dataclasses from flat ``{dotted.name: value}`` parameter values, by field name.

:func:`config_from_values` fills each field of a dataclass from the value named
``prefix + field``; a value of another unit is converted when the names say so
(``*_s`` or ``*_ms`` value -> ``*_ns`` field as integer nanoseconds, ``*_deg``
value -> ``*_rad`` field). Values are checked against the field's type; a value
under the prefix that fills no field is an error, so a misspelt parameter in a
YAML file is caught. Works on any mapping: ROS parameters (``ros/node.py``),
a parameter file read with ``core.config_files.ros_parameters``, a test's dict.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ['config_from_values', 'seconds_to_ns']

C = TypeVar('C')
_NS_PER_S = 1_000_000_000

#: field suffix -> (value suffix, conversion), tried in order when ``prefix + field`` is absent
_UNITS: tuple[tuple[str, str, Any], ...] = (
    ('_ns', '_s', lambda v: seconds_to_ns(v)),
    ('_ns', '_ms', lambda v: int(round(v * 1e6))),
    ('_rad', '_deg', math.radians),
)


def seconds_to_ns(seconds: float) -> int:
    """Seconds -> integer nanoseconds, rounded to the nearest."""
    return int(round(seconds * _NS_PER_S))


def config_from_values(cls: type[C], values: Mapping[str, Any], prefix: str = '', *,
                       names: Mapping[str, str] | None = None, ignore: Iterable[str] = (),
                       fallback: Mapping[str, Any] | None = None, **given: Any) -> C:
    """``cls(**fields)`` with each field taken from ``values[prefix + name]``.

    cls : a dataclass (its own ``__post_init__`` validates ranges and relations)
    prefix : e.g. ``'sync.'``; every value whose name starts with it must fill a field
        (no such check with an empty prefix)
    names : field -> value name (after the prefix) where the two differ, e.g. ``{'ground_z_m': 'z_m'}``;
        a name in another unit is converted (``{'camera_hfov_rad': 'camera.hfov_deg'}``)
    ignore : value names (after the prefix) that belong to another config
    fallback : field -> what it takes when its value is the empty string (a default derived elsewhere)
    given : fields set directly (nested configs, derived values); not looked up

    A field with no value keeps its default. Raises ConfigError naming the parameter
    for a value of the wrong type, a value under ``prefix`` that fills no field, and
    a field without default that has no value.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f'{cls!r} is not a dataclass')
    names = dict(names or {})
    fallback = dict(fallback or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown_names = (set(names) | set(fallback)) - set(fields)
    if unknown_names:
        raise TypeError(f'names / fallback name unknown fields of {cls.__name__}: {sorted(unknown_names)}')
    used: set[str] = set(prefix + n for n in ignore)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in given:
            kwargs[name] = given[name]
            continue
        found = _lookup(values, prefix, name, names.get(name, name))
        if found is None:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f'{cls.__name__}.{name}: no parameter {prefix}{names.get(name, name)}')
            continue
        key, value, convert = found
        used.add(key)
        if isinstance(value, str) and value == '' and name in fallback:
            kwargs[name] = fallback[name]
        elif convert is None:
            kwargs[name] = _checked(key, value, hints[name])
        else:
            kwargs[name] = _checked(f'{prefix}{name}', convert(_checked(key, value, float)), hints[name])
    extra = sorted(k for k in values if prefix and k.startswith(prefix) and k not in used)
    if extra:
        raise ConfigError(f'unknown parameter(s) {", ".join(extra)}: {cls.__name__} has no such field '
                          f'(fields: {", ".join(fields)})')
    return cls(**kwargs)


def _lookup(values: Mapping[str, Any], prefix: str, field: str, name: str) -> tuple[str, Any, Any] | None:
    """(key, value, conversion or None) of the value that fills ``field`` (value name ``name``); None if none."""
    key = prefix + name
    if key in values:
        for field_suffix, value_suffix, convert in _UNITS:
            if field.endswith(field_suffix) and name.endswith(value_suffix) and not name.endswith(field_suffix):
                return key, values[key], convert
        return key, values[key], None
    for field_suffix, value_suffix, convert in _UNITS:
        if name.endswith(field_suffix):
            key = prefix + name[:-len(field_suffix)] + value_suffix
            if key in values:
                return key, values[key], convert
    return None


def _checked(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` names (int -> float, list -> tuple, str -> Enum); ConfigError if it is not one."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _checked(key, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f'parameter {key!r}: {value!r} matches no type of {hint}')
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'parameter {key!r}: expected a list, got {value!r}')
        args = typing.get_args(hint)
        item = args[0] if args and (len(args) == 1 or args[1] is Ellipsis) else Any
        items = [_checked(key, v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError as exc:
            raise ConfigError(f'parameter {key!r}: expected one of {", ".join(str(m.value) for m in hint)}, '
                              f'got {value!r}') from exc
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if isinstance(value, int) else value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint in (bool, str):
        if isinstance(value, hint):
            return value
    else:
        return value          # a type this helper does not check (a nested config): the dataclass validates
    raise ConfigError(f'parameter {key!r}: expected {hint.__name__}, got {type(value).__name__} {value!r}')
