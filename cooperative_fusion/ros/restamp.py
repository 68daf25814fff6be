"""Shift the stamps of serialized (CDR) messages by a constant offset, in the bytes.

``cooperative-fusion replay --wall-clock`` moves a recorded bag onto the wall
clock: every stamp + one offset (ns). Only the fixed-position stamps are
rewritten, without deserialising:

- a type whose first field is a ``std_msgs/Header``: ``header.stamp`` is at
  bytes 4..12 (after the 4-byte encapsulation header: int32 sec, uint32 nanosec);
- when the field right after the header starts with a ``builtin_interfaces/Time``
  (``sensor_msgs/TimeReference.time_ref``, ``nav_msgs/OccupancyGrid.info.map_load_time``),
  that time too: it follows the header's ``frame_id`` string (uint32 length
  including the NUL, the characters), at the next multiple of 4.

Which stamps a type holds is read from its rosidl field types (:func:`plan_for`):
a type holding a time elsewhere (``visualization_msgs/MarkerArray``: a header per
marker; ``tf2_msgs/TFMessage``) cannot be shifted this way and is
:data:`SKIP`; a type holding no time at all (``std_msgs/String``) is
:data:`UNCHANGED`. Plain CDR (XCDR1) in either byte order; bytes that are too
short, inconsistent or shift out of the int32 seconds range raise
:class:`~cooperative_fusion.core.errors.MessageFormatError`.
"""
from __future__ import annotations

import struct
from functools import lru_cache
from typing import Union

from ..core.errors import MessageFormatError
from .cdr_decode import header_layout

#: What :func:`plan_for` decides for a message type.
HEADER = 'header'                   # shift header.stamp
HEADER_AND_TIME = 'header+time'     # shift header.stamp and the time right after the header
UNCHANGED = 'unchanged'             # no time in the type: publish the bytes as they are
SKIP = 'skip'                       # holds times this module cannot reach

NS_PER_S = 1_000_000_000
_INT32_MAX = 2**31 - 1
_HEADER_TYPE = 'std_msgs/Header'
_TIME_TYPE = 'builtin_interfaces/Time'

RawBytes = Union[bytes, bytearray, memoryview]


def shift_stamp(sec: int, nanosec: int, offset_ns: int) -> tuple[int, int]:
    """``(sec, nanosec)`` of the time ``sec`` s + ``nanosec`` ns + ``offset_ns``; nanosec in [0, 1e9).

    Raises MessageFormatError when the result is negative or past int32 seconds.
    """
    sec, nanosec = divmod(sec * NS_PER_S + nanosec + offset_ns, NS_PER_S)
    if not 0 <= sec <= _INT32_MAX:
        raise MessageFormatError(f'a stamp shifted by {offset_ns} ns is out of range ({sec} s)')
    return sec, nanosec


def _shift_at(out: bytearray, pos: int, order: str, offset_ns: int) -> None:
    """Shift the builtin_interfaces/Time at byte ``pos`` of ``out`` in place."""
    if pos + 8 > len(out):
        raise MessageFormatError(f'{len(out)} bytes: too short for a time at byte {pos}')
    sec, nanosec = struct.unpack_from(f'{order}iI', out, pos)
    if nanosec >= NS_PER_S:
        raise MessageFormatError(f'a time at byte {pos} has nanosec {nanosec} >= 1e9')
    struct.pack_into(f'{order}iI', out, pos, *shift_stamp(sec, nanosec, offset_ns))


def restamp(raw: RawBytes, offset_ns: int, plan: str = HEADER) -> bytes:
    """``raw`` with its stamps shifted by ``offset_ns`` (int ns) as ``plan`` says (:data:`HEADER`,
    :data:`HEADER_AND_TIME` or :data:`UNCHANGED`); a new ``bytes``, ``raw`` is not changed."""
    if plan == UNCHANGED:
        return bytes(raw)
    if plan not in (HEADER, HEADER_AND_TIME):
        raise ValueError(f'cannot restamp with plan {plan!r}')
    order, after_header = header_layout(raw)
    out = bytearray(raw)
    _shift_at(out, 4, order, offset_ns)
    if plan == HEADER_AND_TIME:
        _shift_at(out, after_header, order, offset_ns)
    return bytes(out)


def _field_types(type_name: str) -> list[str]:
    """rosidl field types of ``'pkg/Name'`` (or ``'pkg/msg/Name'``) in declaration order."""
    from .bag import message_class

    return list(message_class(type_name).get_fields_and_field_types().values())


def _element(field_type: str) -> str:
    """The element type of a field type (``sequence<T, N>``, ``T[N]``) or the type itself."""
    if field_type.startswith('sequence<'):
        return field_type[len('sequence<'):-1].split(',')[0].strip()
    return field_type.rpartition('[')[0] if field_type.endswith(']') else field_type


def _time_count(type_name: str) -> int:
    """How many builtin_interfaces/Time a message type holds, nested ones included; a time inside a
    sequence or array counts 2 (more than one, at no fixed position)."""
    if type_name == _TIME_TYPE:
        return 1
    if '/' not in type_name:
        return 0
    n = 0
    for t in _field_types(type_name):
        inner = _time_count(_element(t))
        n += 2 * inner if inner and t != _element(t) else inner
    return n


def _starts_with_time(type_name: str) -> bool:
    """True when a (non-sequence) field of this type begins with a builtin_interfaces/Time."""
    while type_name != _TIME_TYPE:
        if '/' not in type_name or type_name != _element(type_name):
            return False
        fields = _field_types(type_name)
        if not fields:
            return False
        type_name = fields[0]
    return True


@lru_cache(maxsize=None)
def plan_for(msgtype: str) -> str:
    """How :func:`restamp` can shift the stamps of ``msgtype`` (``'pkg/msg/Name'``): one of :data:`HEADER`,
    :data:`HEADER_AND_TIME`, :data:`UNCHANGED`, :data:`SKIP`. A type not installed raises BagError."""
    fields = _field_types(msgtype)
    if not fields or fields[0] != _HEADER_TYPE:
        return UNCHANGED if _time_count(msgtype) == 0 else SKIP
    others = sum(_time_count(_element(t)) * (1 if t == _element(t) else 2) for t in fields[1:])
    if others == 0:
        return HEADER
    if others == 1 and _starts_with_time(fields[1]):
        return HEADER_AND_TIME
    return SKIP


class Restamper:
    """Shift every replayable message of a bag by one offset; counts what it cannot shift.

    offset_ns : added to every stamp (int ns)
    topics : ``{topic: msgtype}`` of the bag; each gets its :func:`plan_for`
    """

    def __init__(self, offset_ns: int, topics: dict[str, str]) -> None:
        self.offset_ns = int(offset_ns)
        self.plans = {topic: plan_for(msgtype) for topic, msgtype in topics.items()}
        self.skipped: dict[str, int] = {}      # topic -> messages of a SKIP type not published
        self.malformed: dict[str, int] = {}    # topic -> messages whose bytes could not be shifted

    def skip_topics(self) -> list[str]:
        """Topics whose type holds stamps this module cannot shift."""
        return sorted(t for t, plan in self.plans.items() if plan == SKIP)

    def __call__(self, topic: str, raw: RawBytes) -> bytes | None:
        """The shifted bytes, or None (counted) for a SKIP type or bytes that cannot be shifted."""
        plan = self.plans.get(topic, SKIP)
        if plan == SKIP:
            self.skipped[topic] = self.skipped.get(topic, 0) + 1
            return None
        try:
            return restamp(raw, self.offset_ns, plan)
        except MessageFormatError:
            self.malformed[topic] = self.malformed.get(topic, 0) + 1
            return None
