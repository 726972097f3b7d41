"""Library log records (Python logging) reach /rosout through the node's logger."""
import logging
import time
import uuid

import pytest

rclpy = pytest.importorskip("rclpy")

from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.logging import LoggingSeverity  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from avemo_ros.ros.compat import ros_context  # noqa: E402
from avemo_ros.ros.ros_logging import (RosLogHandler, python_level, ros_severity,  # noqa: E402
                                       route_python_logging, unroute_python_logging)

pytestmark = pytest.mark.ros


def test_level_mapping():
    assert ros_severity(logging.DEBUG) == LoggingSeverity.DEBUG
    assert ros_severity(5) == LoggingSeverity.DEBUG
    assert ros_severity(logging.INFO) == LoggingSeverity.INFO
    assert ros_severity(25) == LoggingSeverity.INFO  # between INFO and WARNING: not a warning
    assert ros_severity(logging.WARNING) == LoggingSeverity.WARN
    assert ros_severity(logging.ERROR) == LoggingSeverity.ERROR
    assert ros_severity(logging.CRITICAL) == LoggingSeverity.FATAL
    assert python_level(LoggingSeverity.WARN) == logging.WARNING
    assert python_level(LoggingSeverity.DEBUG) == logging.DEBUG


class _Graph:
    """A node whose logger gets the library records, and a /rosout listener, in one context."""

    def __init__(self, ctx: Context, name: str):
        self.node = rclpy.create_node(name, context=ctx)
        self.listener = rclpy.create_node(name + "_rosout_listener", context=ctx)
        self.logs: list = []
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
        self.listener.create_subscription(Log, "/rosout", self.logs.append, qos)
        self.executor = SingleThreadedExecutor(context=ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.listener)

    def ours(self, tag: str) -> list:
        return [m for m in self.logs if m.name == self.node.get_name() and tag in m.msg]

    def until(self, emit, done, timeout_s: float = 20.0) -> None:
        """Emit and spin until ``done()`` (DDS discovery takes a moment), then a little more."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done():
            emit()
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                self.executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.listener.destroy_node()


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list = []

    def emit(self, record):
        self.records.append(record)


def test_library_records_reach_rosout():
    tag = uuid.uuid4().hex[:8]
    root_capture = _Capture()
    logging.getLogger().addHandler(root_capture)
    ctx = Context()
    with ros_context(context=ctx):
        graph = _Graph(ctx, f"avemo_logging_test_{tag}")
        handler = route_python_logging(graph.node)
        try:
            assert isinstance(handler, RosLogHandler)
            assert logging.getLogger("avemo_ros").level == logging.INFO  # the node's level
            bags = logging.getLogger("avemo_ros.bags")
            trainer = logging.getLogger("training.trainer")

            def emit():
                bags.warning("bag %s: no AudioInfo", tag)
                trainer.info("epoch %s done", tag)
                bags.debug("debug %s", tag)  # below the node's INFO: dropped
                try:
                    raise ValueError("boom")
                except ValueError:
                    bags.exception("read %s failed", tag)

            graph.until(emit, lambda: {m.level for m in graph.ours(tag)} >= {
                Log.WARN, Log.INFO, Log.ERROR})
            got = graph.ours(tag)
            by_level = {m.level: m for m in got}
            assert set(by_level) == {Log.WARN, Log.INFO, Log.ERROR}, [
                (m.level, m.msg) for m in got]
            assert by_level[Log.WARN].msg == f"[avemo_ros.bags] bag {tag}: no AudioInfo"
            assert by_level[Log.INFO].msg == f"[training.trainer] epoch {tag} done"
            err = by_level[Log.ERROR].msg
            assert err.startswith(f"[avemo_ros.bags] read {tag} failed")
            assert "ValueError: boom" in err  # the traceback comes along
            # not also on the root logger's handlers (no second copy on stderr)
            assert not [r for r in root_capture.records
                        if r.name.startswith(("avemo_ros", "training"))]

            # the node at DEBUG: routing again follows it, and replaces the first handler
            graph.node.get_logger().set_level(LoggingSeverity.DEBUG)
            route_python_logging(graph.node)
            handlers = logging.getLogger("avemo_ros").handlers
            assert [type(h) for h in handlers].count(RosLogHandler) == 1
            graph.until(lambda: bags.debug("debug2 %s", tag),
                        lambda: any(m.level == Log.DEBUG for m in graph.ours(tag)))
            debug = [m.msg for m in graph.ours(tag) if m.level == Log.DEBUG]
            assert debug and set(debug) == {f"[avemo_ros.bags] debug2 {tag}"}
        finally:
            unroute_python_logging()
            logging.getLogger().removeHandler(root_capture)
            graph.close()
    lib = logging.getLogger("avemo_ros")
    assert lib.handlers == [] and lib.propagate and lib.level == logging.NOTSET
