"""REP-155 (ROS4HRI) output: every tracked face's estimate where ROS4HRI consumers look.

Per window, for each tracked face with a video estimate (the primary face first):

* ``hri_msgs/Expression`` on ``/humans/faces/<id>/expression``: header stamp = the window's
  end, frame_id the camera's; ``expression`` is the label's REP-155 constant
  (:func:`avemo_ros.labels.expression`: ``calm`` has none and is published as ``neutral``,
  with calm's own valence and arousal); ``confidence``, ``valence``, ``arousal`` of that
  face's fused estimate;
* ``hri_msgs/IdsList`` on ``/humans/faces/tracked``: the ids of those faces (empty when a
  window has none), same stamp.

Ids are this node's tracker's (five lowercase letters, as ros4hri's face detector makes
them). A face's publisher is made on its first estimate and destroyed once the face has
been gone for ``forget_s`` of stamps. The released ``hri_msgs`` is used where installed;
without it the output is off and says so once (see :meth:`HriOutput.create`).
"""
from __future__ import annotations

from typing import Any, Optional

from rclpy.qos import QoSProfile

from .. import conversions as conv
from ..labels import expression
from ..window import NS

TRACKED_TOPIC = "/humans/faces/tracked"
FACE_TOPIC = "/humans/faces/{}/expression"
HRI_MSGS_FIX = "install hri_msgs (apt install ros-$ROS_DISTRO-hri-msgs) or set hri_output:=false"


def expression_topic(face_id: str) -> str:
    """The REP-155 expression topic of one face."""
    return FACE_TOPIC.format(face_id)


class HriOutput:
    """The REP-155 publishers of one node (made while it is configured)."""

    def __init__(self, node: Any, msgs: Any, forget_s: float = 10.0):
        self._node, self._msgs, self._forget_ns = node, msgs, int(forget_s * NS)
        self._tracked = node.create_publisher(msgs.IdsList, TRACKED_TOPIC, QoSProfile(depth=10))
        self._faces: dict[str, tuple[Any, int]] = {}  # id -> (publisher, last stamp ns)

    @classmethod
    def create(cls, node: Any, enabled: bool) -> Optional["HriOutput"]:
        """The output of ``node``, or None when ``enabled`` is false or hri_msgs cannot be
        imported (a warning names the fix); logs which."""
        if not enabled:
            node.get_logger().info("REP-155 output off (hri_output false)")
            return None
        try:
            from hri_msgs import msg
        except ImportError:
            node.get_logger().warning(f"REP-155 output off: hri_msgs is not installed: "
                                      f"{HRI_MSGS_FIX}")
            return None
        node.get_logger().info(f"REP-155 output on: {TRACKED_TOPIC}, {FACE_TOPIC}")
        return cls(node, msg)

    @property
    def face_ids(self) -> list[str]:
        """Ids that have an expression publisher now."""
        return list(self._faces)

    def publish(self, result: Any, frame_id: str) -> list[str]:
        """Publish one window's faces (``result.faces``, EmotionResult); returns their ids."""
        stamp = conv.ns_to_stamp(result.end_ns)
        ids = []
        for face in getattr(result, "faces", []) or []:
            if not face.face_id:
                continue
            msg = self._msgs.Expression()
            msg.header.stamp, msg.header.frame_id = stamp, frame_id
            msg.expression = expression(face.label)
            msg.confidence = float(face.confidence)
            msg.valence, msg.arousal = float(face.valence), float(face.arousal)
            self._publisher(face.face_id, result.end_ns).publish(msg)
            ids.append(face.face_id)
        tracked = self._msgs.IdsList()
        tracked.header.stamp, tracked.header.frame_id = stamp, frame_id
        tracked.ids = ids
        self._tracked.publish(tracked)
        self._forget(result.end_ns)
        return ids

    def _publisher(self, face_id: str, stamp_ns: int) -> Any:
        pub = self._faces.get(face_id, (None, 0))[0]
        if pub is None:
            pub = self._node.create_publisher(self._msgs.Expression, expression_topic(face_id),
                                              QoSProfile(depth=10))
        self._faces[face_id] = (pub, stamp_ns)
        return pub

    def _forget(self, now_ns: int) -> None:
        for face_id, (pub, last) in list(self._faces.items()):
            if now_ns - last > self._forget_ns or now_ns < last:  # gone, or a new clock
                self._node.destroy_publisher(pub)
                del self._faces[face_id]

    def destroy(self) -> None:
        """Destroy every publisher."""
        for pub, _ in self._faces.values():
            self._node.destroy_publisher(pub)
        self._faces.clear()
        self._node.destroy_publisher(self._tracked)
