"""Little-endian CDR bytes of rclpy messages, written straight from the message's fields.

The recorder's serializer (:func:`cooperative_fusion.ros.bag.serialize`). It writes
exactly what rosbags' CDR serializer writes (padding zeroed, the same alignment
rules), without first copying the message into rosbags' classes, which cost
more than the rest of the recording. A writer is compiled once per message
class: runs of fixed-size fields (a Header's stamp, a Pose, a ColorRGBA) become
one ``struct`` pack per run, numeric arrays and sequences are copied as buffers.
"""
from __future__ import annotations

import array
import importlib
import struct
import sys
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from ..core.errors import BagError

#: CDR encapsulation header: plain CDR, little endian.
CDR_LE_HEADER = b'\x00\x01\x00\x00'

#: rosidl primitive type -> struct code (little endian, no native alignment).
_CODES = {
    'boolean': '?', 'octet': 'c', 'char': 'B', 'uint8': 'B', 'int8': 'b', 'int16': 'h', 'uint16': 'H',
    'int32': 'i', 'uint32': 'I', 'int64': 'q', 'uint64': 'Q', 'float': 'f', 'double': 'd',
}
_UINT32 = struct.Struct('<I')
_ZEROS = bytes(8)

#: Writes one message (or field value) at the end of the buffer; offsets count from after the header.
Writer = Callable[[bytearray, Any], None]


class UnsupportedType(BagError):
    """A field type this writer does not handle (wstring, an empty message); the caller falls back."""


def _size(code: str) -> int:
    return struct.calcsize('<' + code)


def _split_type(field_type: str) -> tuple[str, str, int | None]:
    """``('sequence'|'array'|'single', element type, fixed length or None)`` of an rclpy field type."""
    if field_type.startswith('sequence<'):
        inner = field_type[len('sequence<'):-1]
        return 'sequence', inner.split(',')[0].strip(), None
    if field_type.endswith(']') and '[' in field_type:
        inner, _, n = field_type[:-1].rpartition('[')
        return 'array', inner, int(n)
    return 'single', field_type, None


def _is_string(t: str) -> bool:
    return t == 'string' or t.startswith('string<')


def _message_class(msgtype: str, owner: type) -> type:
    """The rclpy class of a nested field type ``'pkg/Name'``."""
    pkg, _, name = msgtype.partition('/')
    try:
        return getattr(importlib.import_module(f'{pkg}.msg'), name)
    except (ImportError, AttributeError) as exc:
        raise UnsupportedType(f'{owner.__name__}: field type {msgtype!r} is not installed: {exc}') from exc


def _run_struct(codes: list[str]) -> tuple[Callable[..., bytes], ...]:
    """``pack`` of a run of fixed-size scalars for each of the 8 possible start offsets, padding included."""
    packs = []
    for phase in range(8):
        fmt, pos = '<', phase
        for code in codes:
            size = _size(code)
            pad = -pos % size
            fmt += 'x' * pad + code
            pos += pad + size
        packs.append(struct.Struct(fmt).pack)
    return tuple(packs)


def _primitive_block(code: str, n: int | None) -> Writer:
    """Writer of n (None: a length-prefixed sequence of) primitives held as array.array, numpy, bytes or a list."""
    size = _size(code)
    dtype = {'?': np.dtype('?'), 'c': np.dtype('u1')}.get(code, np.dtype('<' + code))

    def write(out: bytearray, value: Any) -> None:
        count = len(value)
        if n is None:
            out += _ZEROS[:(4 - len(out)) % 4]
            out += _UINT32.pack(count)
        elif count != n:
            raise BagError(f'array of {n} {code!r} holds {count} values')
        if not count:
            return
        out += _ZEROS[:(4 - len(out)) % size]
        if isinstance(value, array.array) and value.itemsize == size and sys.byteorder == 'little':
            out += value
        elif isinstance(value, (bytes, bytearray)):
            out += value
        elif isinstance(value, np.ndarray):
            out += np.ascontiguousarray(value, dtype=dtype).tobytes()
        elif code == 'c':          # a list of one-byte bytes (rclpy's sequence<octet>)
            out += b''.join(value)
        else:
            out += struct.pack(f'<{count}{code}', *value)
    return write


class _Source:
    """Python source of one message class's writer, and the objects it refers to."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.lines = ['def write(out, m):']
        self.names: dict[str, Any] = {'ZEROS': _ZEROS, 'U32': _UINT32.pack}
        self.run: list[tuple[str, str]] = []     # (expression, struct code) not yet written

    def ref(self, obj: Any) -> str:
        name = f'r{len(self.names)}'
        self.names[name] = obj
        return name

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append('    ' * indent + line)

    def flush(self, indent: int = 1) -> None:
        if self.run:
            packs = self.ref(_run_struct([c for _, c in self.run]))
            self.emit(f'out += {packs}[(len(out) - 4) & 7]({", ".join(e for e, _ in self.run)})', indent)
            self.run = []

    def string(self, expr: str, indent: int) -> None:
        self.emit(f'b = {expr}.encode()', indent)
        self.emit('out += ZEROS[:(4 - len(out)) % 4]', indent)
        self.emit('out += U32(len(b) + 1)', indent)
        self.emit('out += b', indent)
        self.emit("out += b'\\x00'", indent)

    def element(self, expr: str, elem: str, indent: int) -> None:
        """Write one value of type ``elem`` held in ``expr``."""
        if _is_string(elem):
            self.flush(indent)
            self.string(expr, indent)
        elif elem in _CODES:
            self.run.append((expr, _CODES[elem]))
        elif elem.startswith('w') or '/' not in elem:
            raise UnsupportedType(f'{self.cls.__name__}: field type {elem!r} is not supported')
        else:
            nested = _message_class(elem, self.cls)
            flat = _fixed_fields(nested, expr + '.')
            if flat is not None:
                self.run += flat
            else:
                self.flush(indent)
                self.emit(f'{self.ref(message_writer(nested))}(out, {expr})', indent)

    def field(self, name: str, ftype: str) -> None:
        kind, elem, n = _split_type(ftype)
        expr = f'm.{name}'
        if kind == 'single':
            self.element(expr, elem, 1)
            return
        self.flush()
        if elem in _CODES:
            self.emit(f'{self.ref(_primitive_block(_CODES[elem], n))}(out, {expr})')
            return
        self.emit(f'v = {expr}')
        if n is None:
            self.emit('out += ZEROS[:(4 - len(out)) % 4]')
            self.emit('out += U32(len(v))')
        else:
            self.emit(f'if len(v) != {n}:')
            self.emit(f'raise {self.ref(BagError)}("{self.cls.__name__}.{name}: expected {n} values, "'
                      f' f"got {{len(v)}}")', 2)
        self.emit('for e in v:')
        self.element('e', elem, 2)
        self.flush(2)


def _fixed_fields(cls: type, prefix: str) -> list[tuple[str, str]] | None:
    """``[(expression, struct code)]`` when every field of ``cls`` is a fixed-size scalar (nested
    messages flattened), else None; expressions start with ``prefix``."""
    fields = cls.get_fields_and_field_types()
    if not fields:
        return None
    out: list[tuple[str, str]] = []
    for name, ftype in fields.items():
        kind, elem, _ = _split_type(ftype)
        if kind != 'single' or _is_string(elem):
            return None
        if elem in _CODES:
            out.append((prefix + name, _CODES[elem]))
            continue
        if elem.startswith('w') or '/' not in elem:
            return None
        nested = _fixed_fields(_message_class(elem, cls), f'{prefix}{name}.')
        if nested is None:
            return None
        out += nested
    return out


@lru_cache(maxsize=None)
def message_writer(cls: type) -> Writer:
    """The compiled writer of rclpy message class ``cls``; UnsupportedType for what it cannot write."""
    fields = cls.get_fields_and_field_types()
    if not fields:
        raise UnsupportedType(f'{cls.__name__} has no fields (CDR gives it a placeholder byte)')
    src = _Source(cls)
    for name, ftype in fields.items():
        src.field(name, ftype)
    src.flush()
    namespace = dict(src.names)
    exec(compile('\n'.join(src.lines), f'<cdr writer of {cls.__name__}>', 'exec'), namespace)
    return namespace['write']


def serialize_cdr(msg: Any) -> bytes:
    """CDR bytes (header, little endian, padding zeroed) of the rclpy message ``msg``.

    Raises UnsupportedType for a type it cannot write, BagError for a value that
    does not fit its field (wrong array length, out-of-range integer).
    """
    writer = message_writer(type(msg))
    out = bytearray(CDR_LE_HEADER)
    try:
        writer(out, msg)
    except (struct.error, TypeError, ValueError, OverflowError) as exc:
        raise BagError(f'cannot serialize {type(msg).__name__}: {exc}') from exc
    return bytes(out)
