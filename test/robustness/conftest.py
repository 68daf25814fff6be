"""rclpy context for the robustness tests: one private Context per module on a random domain."""
from __future__ import annotations

import random

import pytest
import rclpy
from rclpy.context import Context


@pytest.fixture(scope='module')
def ros_context():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=random.SystemRandom().randint(101, 200))
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)
