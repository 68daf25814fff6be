"""Platoon scenario simulation with ground truth, written to rosbag2."""
