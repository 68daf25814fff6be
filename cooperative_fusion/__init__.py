"""Cooperative perception for vehicle platoons (ROS 2, Python)."""
__version__ = '0.1.0'
