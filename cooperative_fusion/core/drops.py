"""Why an input was dropped: one vocabulary of causes for every node's /diagnostics.

A node counts each dropped input under ``(source, cause)``: source is the input
(a stream such as ``lidar``, a vehicle id, a timer), cause one of :class:`Cause`
(snake_case; a node may add its own snake_case causes). The ROS side
(``ros/node.py``) turns the counts into the keys ``drops.<cause>``,
``drops.<source>.<cause>`` and ``drops.total``. Core reports drops as
:class:`Drop` values or raises :class:`DroppedInput`; :func:`cause_of` names the
cause of any domain error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import (BagError, ConfigError, CooperativeFusionError, FrameError, MessageFormatError, OutputError,
                     SyncError)

__all__ = ['Cause', 'Drop', 'DroppedInput', 'cause_of', 'check_name']


class Cause(str, Enum):
    """Drop causes shared by every node; the value is the diagnostics key part."""

    MALFORMED = 'malformed'              # layout or values do not match the message type (MessageFormatError)
    FRAME = 'frame'                      # unexpected frame_id, or a transform that cannot be used (FrameError)
    STAMP = 'stamp'                      # a stamp the time logic cannot use (SyncError)
    FUTURE = 'future'                    # stamped too far ahead of the node clock
    TOO_OLD = 'too_old'                  # older than the node accepts
    LATE = 'late'                        # older than what was already processed (sync: the last set)
    OUT_OF_ORDER = 'out_of_order'        # older than its stream's newest message
    DUPLICATE = 'duplicate'              # a second delivery of a message already used
    QUEUE_OVERFLOW = 'queue_overflow'    # pushed out of a full queue
    UNMATCHED = 'unmatched'              # no partners to make a set with
    STALE = 'stale'                      # queued, then discarded when its stream fell silent
    NO_POSE = 'no_pose'                  # no pose at its stamp
    NO_TIMEBASE = 'no_timebase'          # no mapping of its clock to common time yet
    NO_CAMERA_INFO = 'no_camera_info'    # a depth image before any CameraInfo
    SIZE_MISMATCH = 'size_mismatch'      # its size does not match a companion message
    COVARIANCE = 'covariance'            # a covariance that is not finite and positive semi-definite
    OUTLIER = 'outlier'                  # off a fit by more than its threshold
    INVALID = 'invalid'                  # another domain error (ConfigError, ...) on this input
    INTERNAL = 'internal'                # an unexpected exception: a bug, logged with its traceback


_ERROR_CAUSES: tuple[tuple[type[CooperativeFusionError], Cause], ...] = (
    (MessageFormatError, Cause.MALFORMED),
    (FrameError, Cause.FRAME),
    (SyncError, Cause.STAMP),
    (ConfigError, Cause.INVALID),
    (BagError, Cause.INVALID),
    (OutputError, Cause.INVALID),
)

_NAME = re.compile(r'^[a-z][a-z0-9_]*$')


def check_name(kind: str, name: str) -> str:
    """``name`` if it is snake_case (a cause or source key part); ValueError otherwise."""
    if not _NAME.match(name):
        raise ValueError(f'drop {kind} {name!r}: expected snake_case (a-z, 0-9, _), starting with a letter')
    return name


class DroppedInput(CooperativeFusionError):
    """An input rejected for a named cause; the node scaffold counts it under ``cause``."""

    def __init__(self, cause: Cause | str, detail: str) -> None:
        super().__init__(detail)
        self.cause = str(Cause(cause).value if isinstance(cause, Cause) else check_name('cause', cause))


@dataclass(frozen=True)
class Drop:
    """One dropped input as core reports it: which input, why (a :class:`Cause` value), details for the log."""

    source: str
    cause: str
    detail: str


def cause_of(exc: BaseException) -> str:
    """The drop cause of an exception: its own for DroppedInput, by type for domain errors, else ``internal``."""
    if isinstance(exc, DroppedInput):
        return exc.cause
    for error, cause in _ERROR_CAUSES:
        if isinstance(exc, error):
            return cause.value
    if isinstance(exc, CooperativeFusionError):
        return Cause.INVALID.value
    return Cause.INTERNAL.value
