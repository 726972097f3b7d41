"""ROS 2 adapters: message conversion, nodes, parameters, diagnostics (rclpy)."""
