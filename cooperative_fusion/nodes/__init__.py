"""Thin rclpy nodes: subscribe, convert, call core, publish, log."""
