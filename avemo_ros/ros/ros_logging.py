"""Route the library's Python ``logging`` records to a node's ROS logger (and so to /rosout).

The ROS-free modules (``avemo_ros.*``, ``training.*``) log through Python's ``logging``;
inside a node those records would only reach stderr. A node main calls
:func:`route_python_logging` once after creating its node::

    node = PerceptionNode()
    route_python_logging(node)

Each record becomes one call on ``node.get_logger()`` at the mapped severity, with the
Python logger name in front of the message (``[avemo_ros.bags] ...``) and the traceback
appended when there is one. The node's logger is used itself, not a child logger: on
Humble only a node's own logger publishes to /rosout. Only rclpy APIs that Humble has
are used (``get_logger``, ``debug``/``info``/``warning``/``error``/``fatal``,
``get_effective_level``).
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Optional

from rclpy.logging import LoggingSeverity

__all__ = ["LIBRARY_LOGGERS", "RosLogHandler", "python_level", "route_python_logging",
           "ros_severity", "spin_node", "unroute_python_logging"]

#: The Python loggers of this project's ROS-free code.
LIBRARY_LOGGERS = ("avemo_ros", "training")

_PY_TO_ROS = (  # (lowest Python level, ROS severity), highest first
    (logging.CRITICAL, LoggingSeverity.FATAL),
    (logging.ERROR, LoggingSeverity.ERROR),
    (logging.WARNING, LoggingSeverity.WARN),
    (logging.INFO, LoggingSeverity.INFO),
)
_ROS_TO_PY = {
    LoggingSeverity.UNSET: logging.NOTSET, LoggingSeverity.DEBUG: logging.DEBUG,
    LoggingSeverity.INFO: logging.INFO, LoggingSeverity.WARN: logging.WARNING,
    LoggingSeverity.ERROR: logging.ERROR, LoggingSeverity.FATAL: logging.CRITICAL,
}


def ros_severity(levelno: int) -> LoggingSeverity:
    """The ROS severity of a Python level: the highest one not above it (below INFO: DEBUG)."""
    for lowest, severity in _PY_TO_ROS:
        if levelno >= lowest:
            return severity
    return LoggingSeverity.DEBUG


def python_level(severity: Any) -> int:
    """The Python level of a ROS severity (e.g. a logger's effective level)."""
    return _ROS_TO_PY.get(LoggingSeverity(int(severity)), logging.INFO)


class RosLogHandler(logging.Handler):
    """A logging.Handler that hands each record to an rclpy logger."""

    def __init__(self, ros_logger: Any, level: int = logging.NOTSET):
        super().__init__(level)
        self.ros_logger = ros_logger
        self.setFormatter(logging.Formatter("[%(name)s] %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            severity = ros_severity(record.levelno)
            log = self.ros_logger
            # One call site per severity: rclpy refuses a call site whose severity changes.
            if severity == LoggingSeverity.DEBUG:
                log.debug(text)
            elif severity == LoggingSeverity.INFO:
                log.info(text)
            elif severity == LoggingSeverity.WARN:
                log.warning(text)
            elif severity == LoggingSeverity.ERROR:
                log.error(text)
            else:
                log.fatal(text)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def unroute_python_logging(loggers: Iterable[str] = LIBRARY_LOGGERS) -> None:
    """Remove the handlers :func:`route_python_logging` installed; level and propagation
    back to Python's defaults (NOTSET, propagate)."""
    for name in loggers:
        py_logger = logging.getLogger(name)
        for handler in [h for h in py_logger.handlers if isinstance(h, RosLogHandler)]:
            py_logger.removeHandler(handler)
        py_logger.setLevel(logging.NOTSET)
        py_logger.propagate = True


def route_python_logging(node: Any, loggers: Iterable[str] = LIBRARY_LOGGERS, *,
                         level: Optional[int] = None, propagate: bool = False) -> RosLogHandler:
    """Send the records of the Python ``loggers`` (and their children) to ``node``'s logger.

    ``level``: the lowest Python level passed on; None takes the node logger's effective
    level (its ``--log-level``), so records ROS would drop are not even formatted.
    ``propagate=False`` keeps them off the root logger's handlers (no second copy on
    stderr when something called ``logging.basicConfig``). Calling it again replaces
    the earlier routing (one handler per logger). Returns the handler.
    """
    names = list(loggers)
    ros_logger = node.get_logger()
    if level is None:
        level = python_level(ros_logger.get_effective_level())
    unroute_python_logging(names)
    handler = RosLogHandler(ros_logger)
    for name in names:
        py_logger = logging.getLogger(name)
        py_logger.addHandler(handler)
        py_logger.setLevel(level or logging.DEBUG)  # NOTSET would defer to the root
        py_logger.propagate = propagate
    return handler


def spin_node(make_node: Any, args: Optional[list] = None) -> None:
    """Run one node until shutdown: rclpy initialised with ``args``, the node made by
    ``make_node()``, its library logging routed to it, a single-threaded executor;
    Ctrl-C and an external shutdown end it quietly."""
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from .compat import ros_context

    try:
        with ros_context(args):
            node = make_node()
            route_python_logging(node)
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
