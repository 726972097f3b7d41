"""The in-process runner, driven and watched from outside over real DDS.

The runner runs in its own process; this test talks to its perception_node only through
the lifecycle services and the ROS graph, as a lifecycle manager would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from avemo_ros.ros import transport  # noqa: E402
from avemo_ros.ros.lifecycle_client import LifecycleClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("AVEMO_TEST_BUNDLE", ROOT / "data" / "models" / "synthetic"))

pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(
        not (BUNDLE / "manifest.json").is_file(),
        reason=f"no trained bundle at {BUNDLE}: run `make model` first",
    ),
]


def _env() -> dict:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_LOCALHOST_ONLY="1")
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))
    for var in transport.USER_VARS:  # "no user setting": the runner's own choice
        env.pop(var, None)
    return env


class Runner:
    """``python -m avemo_ros.ros.runner ...`` in a subprocess; output collected."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "avemo_ros.ros.runner", "--model-dir", str(BUNDLE), *args],
            env=_env(),
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")), daemon=True
        )
        self._reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture
def manager():
    """A lifecycle-manager-like node in this process, spun on a background thread."""
    ctx = Context()
    rclpy.init(args=[], context=ctx)
    node = rclpy.create_node("test_lifecycle_manager", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    yield node
    stop.set()
    spinner.join(5)
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def wait_for_state(
    client: LifecycleClient, state: str, runner: Runner, timeout: float = 90.0
) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if runner.proc.poll() is not None:
            raise AssertionError(
                f"runner exited ({runner.proc.returncode}):\n{runner.output[-3000:]}"
            )
        if client.wait_for_services(1.0):
            last = client.get_state()
            if last == state:
                return last
        time.sleep(0.2)
    return last


def subscribed_topics(node, name: str, namespace: str) -> set[str]:
    return {topic for topic, _ in node.get_subscriber_names_and_types_by_node(name, namespace)}


def test_runner_activates_over_services_and_leaves_a_deactivate_alone(manager):
    ns = f"/runner_test_{uuid.uuid4().hex[:8]}"
    runner = Runner(
        "--namespace", ns, "--param", "warmup_runs:=0", "--ros-args", "--log-level", "info"
    )  # ROS arguments reach rclpy, not argparse
    client = LifecycleClient(manager, f"{ns}/perception_node")
    try:
        assert wait_for_state(client, "active", runner) == "active", runner.output[-3000:]
        # the launch file's topics: relative image/emotion in the namespace, audio_capture's audio
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            topics = subscribed_topics(manager, "perception_node", ns)
            if {f"{ns}/image", "/audio/audio_stamped"} <= topics:
                break
            time.sleep(0.2)
        assert {f"{ns}/image", "/audio/audio_stamped"} <= topics, topics
        # a manual deactivate stays: nothing re-activates the node
        assert client.change_state("deactivate")
        time.sleep(3.0)
        assert client.get_state() == "inactive"
        assert subscribed_topics(manager, "perception_node", ns) & {f"{ns}/image"} == set()
        assert client.change_state("activate") and client.get_state() == "active"
    finally:
        client.destroy()
        rc = runner.stop()
    out = runner.output
    assert rc == 0, out[-3000:]
    assert "DDS transport: Fast DDS large-data profile" in out, out[-3000:]
    assert f"autostart: {ns}/perception_node: active" in out, out[-3000:]
    assert "Traceback" not in out and "XMLPARSER" not in out, out[-3000:]


def test_no_autostart_leaves_the_node_to_a_lifecycle_manager(manager):
    ns = f"/runner_test_{uuid.uuid4().hex[:8]}"
    runner = Runner("--namespace", ns, "--no-autostart", "--param", "warmup_runs:=0")
    client = LifecycleClient(manager, f"{ns}/perception_node")
    try:
        assert wait_for_state(client, "unconfigured", runner) == "unconfigured", runner.output[
            -3000:
        ]
        time.sleep(1.0)
        assert client.get_state() == "unconfigured"
        ok, what = client.autostart()
        assert ok, what
        assert client.get_state() == "active"
    finally:
        client.destroy()
        rc = runner.stop()
    assert rc == 0, runner.output[-3000:]
