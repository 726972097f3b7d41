"""The lifecycle and /diagnostics plumbing the perception nodes share (rclpy).

A node mixing in :class:`StreamNodeLifecycle` (before ``LifecycleNode``) subscribes on
activate and undoes that in ``_stop_input``, holds what configure acquired until
``_release``, names its state in ``_state`` and has ``health``, ``_config_error``,
``_last_diag_counts`` and a ``_diag_pub`` on /diagnostics.
"""
from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Header

from .node_status import node_status


class StreamNodeLifecycle:
    """deactivate / cleanup / shutdown in terms of ``_stop_input`` and ``_release``, and
    the node's DiagnosticStatus from its counters."""

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._release()
        self._state = "finalized"
        return TransitionCallbackReturn.SUCCESS

    def _diagnostic_status(self, extra: dict[str, Any]) -> Any:
        """The node's DiagnosticStatus now (the counters grown since the last one)."""
        status, self._last_diag_counts = node_status(
            self.get_fully_qualified_name(), self.health, self._last_diag_counts, self._state,
            self._config_error, extra)
        return status

    def _publish_status(self, status: Any) -> None:
        self._diag_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                               status=[status]))
