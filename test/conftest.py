"""Shared test fixtures."""
from __future__ import annotations

import os

# Keep every test's DDS traffic on this machine and away from other runs.
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
