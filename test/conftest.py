"""Shared test fixtures: DDS kept on this machine; rclpy contexts, executors and a spin-until helper."""
from __future__ import annotations

import os
import random
import time
from typing import Callable

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

# Keep every test's DDS traffic on this machine and away from other runs.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')


@pytest.fixture(scope='module')
def ros_context():
    """A fresh rclpy Context on a random ROS domain (one per test module, so modules don't hear each other)."""
    ctx = Context()
    rclpy.init(context=ctx, domain_id=random.SystemRandom().randint(1, 100))
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.fixture
def executor(ros_context):
    """A SingleThreadedExecutor on the module's Context; nodes added to it are destroyed afterwards."""
    ex = SingleThreadedExecutor(context=ros_context)
    try:
        yield ex
    finally:
        for node in list(ex.get_nodes()):
            ex.remove_node(node)
            node.destroy_node()
        ex.shutdown()


def spin_until(executor: SingleThreadedExecutor, predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """Spin ``executor`` until ``predicate()`` holds; False after ``timeout_s`` (a failure, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.02)
    return True


@pytest.fixture
def spin():
    """``spin(executor, predicate, timeout_s=20.0) -> bool``: see :func:`spin_until`."""
    return spin_until
