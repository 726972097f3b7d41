"""Drive a perception graph from outside, over real DDS (integration tests, benchmarks).

``PerceptionProcess`` runs the in-process runner in its own process; ``Driver`` is a node
that publishes camera + microphone messages and records the estimates and /diagnostics;
``Recorder`` only records them (when another process publishes the inputs).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image


def ros_env() -> dict:
    """This process's environment with DDS kept on this machine."""
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOCALHOST_ONLY"] = "1"
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))
    return env


class PerceptionProcess:
    """``python -m avemo_ros.ros.runner`` with parameter overrides, stopped with SIGINT."""

    def __init__(self, bundle: Path, *params: str, env: Optional[dict] = None,
                 runner_args: Sequence[str] = ()):
        cmd = [sys.executable, "-m", "avemo_ros.ros.runner", "--model-dir", str(bundle),
               *runner_args]
        for p in params:
            cmd += ["--param", p]
        self.proc = subprocess.Popen(cmd, env={**ros_env(), **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.output = ""

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.output = self.proc.stdout.read() if self.proc.stdout else ""
        return self.output


class Recorder:
    """Records EmotionEstimates (with their receive time) and the perception node's
    /diagnostics on its own spin thread; publishes nothing.

    ``clock`` stamps each estimate on arrival: ``time.time_ns`` (default, comparable
    with header stamps) or ``time.monotonic``.
    """

    def __init__(self, name: str = "estimate_recorder", clock: Callable[[], float] = time.time_ns,
                 start: bool = True):
        from avemo_ros.msg import EmotionEstimate

        self.node = Node(name)
        self.estimates: list = []  # (clock() at arrival, msg)
        self.diagnostics: list = []
        self._clock = clock
        self._lock = threading.Lock()
        self.node.create_subscription(EmotionEstimate, "emotion", self._on_estimate, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        if start:
            self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_estimate(self, msg):
        now = self._clock()
        with self._lock:
            self.estimates.append((now, msg))

    def _on_diag(self, msg):
        with self._lock:
            self.diagnostics.extend(s for s in msg.status if "perception_node" in s.name)

    def wait_for(self, cond: Callable[[], bool], timeout: float) -> bool:
        """Poll ``cond`` until true or the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.05)
        return cond()

    def clear(self) -> None:
        with self._lock:
            self.estimates.clear()
            self.diagnostics.clear()

    def last_counters(self) -> dict[str, str]:
        with self._lock:
            if not self.diagnostics:
                return {}
            return {kv.key: kv.value for kv in self.diagnostics[-1].values}

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self.node.destroy_node()


class Driver(Recorder):
    """Test-side node: publishes inputs, records EmotionEstimates (monotonic arrival time)
    and /diagnostics.

    ``audio_topic`` / ``audio_qos``: where and how the microphone publishes (default
    ``audio``, reliable); ``extra``: more publishers, ``{kind: (type, topic, qos)}``,
    addressed by ``kind`` in :func:`publish_stream` events (e.g. an ``audio_info``).
    """

    def __init__(self, audio_type, image_transport: str = "raw", name: str = "test_driver",
                 audio_topic: str = "audio", audio_qos: Optional[QoSProfile] = None,
                 extra: Optional[dict] = None):
        super().__init__(name, clock=time.monotonic, start=False)
        if image_transport == "compressed":
            self.image_pub = self.node.create_publisher(CompressedImage, "image/compressed", 10)
        else:
            self.image_pub = self.node.create_publisher(Image, "image", 10)
        self.audio_pub = self.node.create_publisher(
            audio_type, audio_topic,
            audio_qos or QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
        self.pubs = {"image": self.image_pub, "audio": self.audio_pub}
        for kind, (msg_type, topic, qos) in (extra or {}).items():
            self.pubs[kind] = self.node.create_publisher(msg_type, topic, qos)
        self._thread.start()

    def wait_subscribed(self, proc: Optional[PerceptionProcess], timeout: float = 60.0) -> bool:
        """Wait until the perception node (active) subscribes to both inputs."""
        def ready():
            if proc is not None and proc.proc.poll() is not None:
                raise RuntimeError("perception process exited:\n" + proc.stop())
            return (self.image_pub.get_subscription_count() > 0
                    and self.audio_pub.get_subscription_count() > 0)
        return self.wait_for(ready, timeout)


def publish_stream(driver: Driver, events, rate: float = 1.0) -> None:
    """Publish (media_time_s, kind, msg) events sorted by time, paced at ``rate`` x real time."""
    t0 = time.monotonic()
    for t, kind, msg in events:
        delay = t / rate - (time.monotonic() - t0)
        if delay > 0:
            time.sleep(delay)
        driver.pubs[kind].publish(msg)
