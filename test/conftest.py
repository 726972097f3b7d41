import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the training package, run from the checkout

# DDS traffic of every test stays on this machine, on a per-run domain.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))


@pytest.fixture(scope="module")
def one_thread():
    """OpenCV on one thread for the module (timings comparable on a shared machine)."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(threads)
