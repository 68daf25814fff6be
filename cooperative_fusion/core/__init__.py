"""Pure algorithms over numpy arrays. Never imports rclpy or any *_msgs package."""
