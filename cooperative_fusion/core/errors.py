"""Domain errors. Every layer raises these; nodes catch them, log and count the drop."""
from __future__ import annotations


class CooperativeFusionError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CooperativeFusionError):
    """A parameter, config or scenario file holds a value that cannot be used."""


class MessageFormatError(CooperativeFusionError):
    """A message's layout does not match what its type and fields promise."""


class FrameError(CooperativeFusionError):
    """A transform cannot be looked up: unknown frame, or a stamp outside the buffer."""


class SyncError(CooperativeFusionError):
    """A time-synchronisation input violates the policy (bad stamp, unknown stream)."""


class BagError(CooperativeFusionError):
    """A rosbag2 directory cannot be read or written."""


class OutputError(CooperativeFusionError):
    """An output file or directory cannot be written, or is refused (it holds someone else's files)."""
