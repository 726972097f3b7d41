"""Drive a lifecycle node from outside, over its services, as launch and lifecycle managers do.

    client = LifecycleClient(node, "/robot1/perception_node")
    client.autostart()          # configure, then activate once configure succeeded
    client.get_state()          # 'active'
    client.change_state(Transition.TRANSITION_DEACTIVATE)

Uses ``<target>/change_state`` and ``<target>/get_state`` (``lifecycle_msgs/srv``). The
calls block the calling thread until the reply comes, so ``node`` must be spun by an
executor on another thread (or in another process) meanwhile.
"""

from __future__ import annotations

import threading
from typing import Optional

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node

__all__ = ["LifecycleClient", "LifecycleError", "TRANSITIONS"]

TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
    "shutdown": Transition.TRANSITION_ACTIVE_SHUTDOWN,
}


class LifecycleError(RuntimeError):
    """A lifecycle service did not answer in time."""


class LifecycleClient:
    """Clients of one lifecycle node's ``change_state`` and ``get_state`` services."""

    def __init__(self, node: Node, target: str):
        self.node = node
        self.target = target.rstrip("/")
        self._change = node.create_client(ChangeState, f"{self.target}/change_state")
        self._get = node.create_client(GetState, f"{self.target}/get_state")

    def wait_for_services(self, timeout_s: float = 30.0) -> bool:
        """True once both services are available (within ``timeout_s``)."""
        return self._change.wait_for_service(timeout_sec=timeout_s) and self._get.wait_for_service(
            timeout_sec=timeout_s
        )

    def _call(self, client, request, timeout_s: float):
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise LifecycleError(f"{client.srv_name} is not available after {timeout_s:.0f} s")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            client.remove_pending_request(future)
            raise LifecycleError(f"{client.srv_name} did not answer within {timeout_s:.0f} s")
        return future.result()

    def get_state(self, timeout_s: float = 10.0) -> str:
        """The target's current state label ('unconfigured', 'inactive', 'active', ...)."""
        return self._call(self._get, GetState.Request(), timeout_s).current_state.label

    def change_state(self, transition: int | str, timeout_s: float = 120.0) -> bool:
        """Request a transition (id or name); True when the node reports success."""
        tid = TRANSITIONS[transition] if isinstance(transition, str) else int(transition)
        request = ChangeState.Request()
        request.transition.id = tid
        return bool(self._call(self._change, request, timeout_s).success)

    def autostart(self, timeout_s: float = 120.0) -> tuple[bool, str]:
        """configure, then activate after configure succeeded; (ok, what happened)."""
        if not self.wait_for_services(timeout_s):
            return False, f"{self.target}: lifecycle services not available"
        if not self.change_state(Transition.TRANSITION_CONFIGURE, timeout_s):
            return False, f"{self.target}: configure failed (state {self.get_state()})"
        state = self.get_state()
        if state != "inactive":
            return False, f"{self.target}: configure returned in state {state}"
        if not self.change_state(Transition.TRANSITION_ACTIVATE, timeout_s):
            return False, f"{self.target}: activate failed (state {self.get_state()})"
        return True, f"{self.target}: {self.get_state()}"

    def destroy(self) -> None:
        self.node.destroy_client(self._change)
        self.node.destroy_client(self._get)


def state_label(client: LifecycleClient, default: Optional[str] = None) -> Optional[str]:
    """get_state that answers ``default`` instead of raising."""
    try:
        return client.get_state()
    except LifecycleError:
        return default
