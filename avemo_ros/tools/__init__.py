"""Command-line tools that need no ROS: make_bag (media -> rosbag2), evaluate (bags -> report)."""
