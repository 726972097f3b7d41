"""The rclpy APIs that differ between Humble, Jazzy and Kilted, one name each.

Node code imports these names instead of the distro-specific ones:

- :func:`ros_context` — ``rclpy.init()`` as a context manager works from Kilted on
  only (Jazzy's and Humble's ``init`` return None);
- :class:`SubscriptionEventCallbacks`, :class:`QoSMessageLostInfo` — ``rclpy.event_handler``
  from Iron on, ``rclpy.qos_event`` in Humble;
- :func:`add_post_set_parameters_callback` — Jazzy and newer run it after parameters are
  set; Humble has only the on-set (validation) callback, so there it runs from a one-shot
  timer right after the set.

Checked against the sources of rclpy's humble, jazzy and rolling branches.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional, Sequence

import rclpy
from rclpy.context import Context
from rcl_interfaces.msg import SetParametersResult

try:  # Iron and newer
    from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import QoSMessageLostInfo, SubscriptionEventCallbacks  # type: ignore

__all__ = ["QoSMessageLostInfo", "SubscriptionEventCallbacks", "add_post_set_parameters_callback",
           "ros_context"]


@contextlib.contextmanager
def ros_context(args: Optional[Sequence[str]] = None,
                context: Optional[Context] = None) -> Iterator[Context]:
    """``rclpy.init`` for the block, then ``try_shutdown``; yields the context."""
    rclpy.init(args=list(args) if args is not None else None, context=context)
    try:
        yield context if context is not None else rclpy.utilities.get_default_context()
    finally:
        rclpy.try_shutdown(context=context)


def add_post_set_parameters_callback(node: Any, callback: Callable[[list], None]) -> None:
    """Call ``callback(parameters)`` after parameters were set successfully."""
    if hasattr(node, "add_post_set_parameters_callback"):
        node.add_post_set_parameters_callback(callback)
        return

    def on_set(parameters: list) -> SetParametersResult:  # Humble: run once, after the set
        timer = None

        def fire() -> None:
            node.destroy_timer(timer)
            # Humble runs the last-added on-set callback first: a later one may have refused
            try:
                applied = all(node.get_parameter(p.name).value == p.value for p in parameters)
            except Exception:  # noqa: BLE001 - a typed parameter declared without a value
                applied = False
            if applied:
                callback(parameters)

        timer = node.create_timer(0.0, fire)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
