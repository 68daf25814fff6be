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
