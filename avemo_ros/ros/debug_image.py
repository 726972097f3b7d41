"""``~/debug_image`` of the perception node: the camera frame of each estimate, annotated.

Published only while someone subscribes, at most ``debug_rate_hz``: for an estimate, the
camera frame whose stamp is nearest the window's end, with what the window decided drawn
on it (:func:`avemo_ros.annotate.annotate`), as ``sensor_msgs/Image`` (rgb8) on
``~/debug_image`` and as JPEG ``sensor_msgs/CompressedImage`` on
``~/debug_image/compressed`` (each only when it has a subscriber); header stamp and
frame_id are the source frame's, the size the camera's.

Cost without a subscriber: one cached subscriber check per camera frame and per estimate
(the publishers' matched-subscription counts, refreshed every
:data:`SUBSCRIBER_CHECK_S`); nothing is kept, decoded or drawn. With one: the executor
thread keeps references to the newest camera messages (a ring of :data:`RING_SIZE`, by
stamp); the worker, after publishing an estimate, picks the nearest frame and hands it to
a drawing thread (one pending job; a newer one replaces it), which decodes that one
message with the node's image conversions, draws and publishes.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Optional

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from .. import conversions as conv
from ..annotate import annotate

__all__ = ["DebugImagePublisher", "RING_SIZE", "SUBSCRIBER_CHECK_S", "TOPIC"]

TOPIC = "~/debug_image"
#: Camera messages kept (references) while someone subscribes: half a second at 30 fps,
#: more than an estimate's usual latency (a later estimate gets the oldest kept frame).
RING_SIZE = 16
#: How long a subscriber count is trusted before it is asked again, seconds.
SUBSCRIBER_CHECK_S = 0.25
JPEG_QUALITY = 80
#: Reliable (matches reliable and best-effort viewers: rqt_image_view, RViz, Foxglove),
#: the newest image only.
QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                 reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


class DebugImagePublisher:
    """The two debug image publishers of ``node`` (lifecycle publishers) and their frames.

    ``add_frame`` from the executor thread (every camera message), ``on_estimate`` from
    the worker thread (every published estimate); ``destroy`` when the node releases its
    publishers. ``max_pixels``: the node's image limit, for decoding.
    """

    def __init__(self, node: Any, rate_hz: float, max_pixels: int = conv.DEFAULT_MAX_PIXELS):
        self._node = node
        self._health = getattr(node, "health", None)  # the node's counters, where it has them
        self.period_s = 1.0 / float(rate_hz)
        self._max_pixels = int(max_pixels)
        self.raw_pub = node.create_lifecycle_publisher(Image, TOPIC, QOS)
        self.jpeg_pub = node.create_lifecycle_publisher(CompressedImage, TOPIC + "/compressed",
                                                        QOS)
        self._ring: deque = deque(maxlen=RING_SIZE)  # (stamp ns, msg), stamps increasing
        self._lock = threading.Lock()
        self._wanted = False
        self._checked_at = -1e9
        # monotonic time from which the next hand-off may go (a little early is allowed:
        # estimates at exactly the rate, with jitter, all pass; the average stays at it)
        self._next_job = -1e9
        self._slack_s = min(0.2 * self.period_s, 0.04)
        self._job: Optional[tuple] = None
        self._job_ready = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self.published = 0  # images handed to DDS (raw and JPEG count once each)

    @classmethod
    def create(cls, node: Any, rate_hz: float, max_pixels: int = conv.DEFAULT_MAX_PIXELS
               ) -> Optional["DebugImagePublisher"]:
        """The publisher, or None when ``rate_hz`` is 0 (debug images off)."""
        return cls(node, rate_hz, max_pixels) if rate_hz > 0 else None

    # --- who listens ------------------------------------------------------------------
    def subscribed(self) -> bool:
        """Whether either topic has a subscriber (cached for SUBSCRIBER_CHECK_S)."""
        now = time.monotonic()
        if now - self._checked_at >= SUBSCRIBER_CHECK_S:
            self._checked_at = now
            try:
                self._wanted = (self.raw_pub.get_subscription_count() > 0
                                or self.jpeg_pub.get_subscription_count() > 0)
            except Exception:  # noqa: BLE001 - a publisher destroyed meanwhile
                self._wanted = False
            if not self._wanted:
                with self._lock:
                    self._ring.clear()
        return self._wanted

    # --- executor thread ----------------------------------------------------------------
    def add_frame(self, msg: Any, stamp_ns: int) -> None:
        """Keep a reference to a camera message (only while someone subscribes)."""
        if not self.subscribed():
            return
        with self._lock:
            if self._ring and stamp_ns < self._ring[-1][0]:
                self._ring.clear()  # the clock went back (a bag loop): older frames are stale
            self._ring.append((stamp_ns, msg))

    # --- worker thread ------------------------------------------------------------------
    def nearest(self, t_ns: int) -> Optional[tuple[int, Any]]:
        """(stamp, message) of the kept frame nearest ``t_ns``; None without frames."""
        with self._lock:
            if not self._ring:
                return None
            return min(self._ring, key=lambda item: abs(item[0] - t_ns))

    def on_estimate(self, result: Any, latency_s: Optional[float]) -> bool:
        """Hand the estimate's frame to the drawing thread when someone subscribes and the
        rate allows; True when handed over."""
        if self._closed or not self.subscribed():
            return False
        now = time.monotonic()
        if now < self._next_job - self._slack_s:
            return False
        frame = self.nearest(int(result.end_ns))
        if frame is None:
            return False
        self._next_job = max(self._next_job, now - self._slack_s) + self.period_s
        with self._job_ready:
            self._job = (frame[1], result, latency_s)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="debug_image",
                                                daemon=True)
                self._thread.start()
            self._job_ready.notify()
        return True

    # --- drawing thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._job_ready:
                while self._job is None and not self._closed:
                    self._job_ready.wait()
                if self._closed:
                    return
                job, self._job = self._job, None
            try:
                self.publish(*job)
            except Exception as e:  # noqa: BLE001 - a bad frame must not end the thread
                self._node.get_logger().warning(f"debug image not published: {e}",
                                                throttle_duration_sec=5.0)

    def render(self, msg: Any, result: Any, latency_s: Optional[float]):
        """The annotated RGB image of one camera message."""
        if hasattr(msg, "encoding"):
            rgb = conv.image_to_rgb(msg, max_pixels=self._max_pixels)
        else:
            rgb = conv.compressed_to_rgb(msg, max_pixels=self._max_pixels)
        return annotate(rgb, result, latency_s=latency_s)

    def publish(self, msg: Any, result: Any, latency_s: Optional[float]) -> None:
        """Draw and publish the debug image of ``msg`` on the topics that have subscribers."""
        raw = self.raw_pub.get_subscription_count() > 0
        jpeg = self.jpeg_pub.get_subscription_count() > 0
        if not (raw or jpeg):
            return
        img = self.render(msg, result, latency_s)
        stamp, frame_id = msg.header.stamp, str(msg.header.frame_id)
        for wanted, pub, make in (
                (raw, self.raw_pub, lambda: conv.rgb_to_image(img, stamp, frame_id, "rgb8")),
                (jpeg, self.jpeg_pub, lambda: conv.rgb_to_compressed(
                    img, stamp, frame_id, "jpeg", JPEG_QUALITY))):
            if wanted and getattr(pub, "is_activated", True):
                pub.publish(make())
                self.published += 1
                if self._health is not None:  # on /diagnostics: debug_images_published
                    self._health.count("debug_images_published")

    # --- teardown -----------------------------------------------------------------------
    def stop(self) -> None:
        """End the drawing thread (waits for the image being drawn) and forget the frames."""
        with self._job_ready:
            self._closed = True
            self._job = None
            self._job_ready.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5.0)
        with self._lock:
            self._ring.clear()

    def destroy(self) -> None:
        """:meth:`stop`, then destroy both publishers."""
        self.stop()
        for pub in (self.raw_pub, self.jpeg_pub):
            self._node.destroy_lifecycle_publisher(pub)
