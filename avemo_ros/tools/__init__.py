"""Command-line tools that need no ROS: make_bag (media -> rosbag2), evaluate (bags -> report),
fetch_weights (model files from pinned registry wheels, at install time)."""
