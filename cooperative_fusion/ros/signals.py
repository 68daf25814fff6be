"""SIGINT stops every process of this package, however it was started.

A process started as a background job of a non-interactive shell (a CI step
running ``cmd &``, ``nohup``, some launchers) inherits SIGINT *ignored*;
Python then installs no KeyboardInterrupt handler, and rclpy's handler chains
to "ignore". ``kill -INT`` -- how ``ros2 launch``, the tests and users stop a
node or a run -- would then do nothing: the process runs on until it is
killed, and a record bag is left without its footer. rclcpp takes SIGINT
whatever was inherited; so does this, before ``rclpy.init`` installs its
handler on top.
"""
from __future__ import annotations

import signal


def take_sigint() -> bool:
    """Restore Python's KeyboardInterrupt handler when SIGINT was inherited ignored; True if it was."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return True
    return False


#: Exit status of a process stopped by SIGINT (128 + 2), as shells report it.
INTERRUPTED = 130

_sigints = 0


def _note_sigint(signum: int, frame: object) -> None:
    global _sigints
    _sigints += 1
    signal.default_int_handler(signum, frame)      # raises KeyboardInterrupt


def note_sigint() -> None:
    """Handle SIGINT as Python does (KeyboardInterrupt), whatever was inherited, and note it for
    :func:`sigint_received`: rclpy's own handler, installed on top, calls this one after shutting
    its contexts down, so a node's spin may end with ExternalShutdownException instead."""
    signal.signal(signal.SIGINT, _note_sigint)


def sigint_received() -> bool:
    """True once SIGINT arrived after :func:`note_sigint`."""
    return _sigints > 0
