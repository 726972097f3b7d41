"""``fusion_node``: the split graph's decision: audio and video ModalityEstimates in,
EmotionEstimate (and REP-155 output) out.

Lifecycle like ``perception_node``: configure loads and warms up the same bundle (of its
networks the fusion network only; labels, model id), activate subscribes ``audio_estimate`` and
``video_estimate``. The halves of a window are paired by end stamp
(:class:`~avemo_ros.window_pairing.WindowPairer`) and fused by the all-in-one node's code
(:func:`~avemo_ros.modality_estimates.fuse_windows`); a half waits for its partner as the
all-in-one node waits for a late stream (while the partner was heard within ``grace_s``
and is less than one window behind), then the estimate is that modality's own, flagged by
``modalities``; a partner silent for ``partner_timeout_s`` makes /diagnostics say WARN,
naming it, until it is back. Halves of another model id are
refused (partner_model_mismatch); partners on different hop_s are reported
(partner_grid_mismatch). Everything runs on the executor thread: the fusion
network is small.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile

from ..estimator import EmotionEstimator
from ..health import Health
from ..input_problems import Problem, ProblemLog
from ..modality_estimates import AUDIO_MODALITY, VIDEO_MODALITY, fuse_windows
from ..window import NS
from ..window_pairing import WindowPairer
from .estimate_msg import emotion_estimate_type, estimate_message
from .hri_output import HriOutput
from .modality_msg import (ESTIMATE_TOPICS, ModalityMessageError, modality_estimate_type,
                           modality_window_of)
from .node_status import RollingTimes, diagnostics_extra, log_to
from .params import ParamSpec, declare, values
from .perception_params import PARAMS, estimator_args
from .node_lifecycle import StreamNodeLifecycle
from .ros_logging import spin_node

_SHARED = ("model_dir", "backend", "threads", "grace_s", "hri_output", "warmup_runs",
           "diagnostics_period_s", "log_throttle_s")
FUSION_PARAMS = tuple(p for p in PARAMS if p.name in _SHARED) + (
    ParamSpec("partner_timeout_s", 3.0, "A modality node heard nothing from for this long is "
              "silent: diagnostics WARN naming it until it publishes again (windows stop "
              "waiting for it after grace_s), seconds.", range=(0.1, 60.0)),
    ParamSpec("check_period_s", 0.02, "How often waiting windows are checked against grace_s "
              "and partner_timeout_s, seconds.", range=(0.001, 1.0)),
)


class FusionNode(StreamNodeLifecycle, LifecycleNode):
    """Pairs the modality nodes' estimates by window and fuses them."""

    def __init__(self, node_name: str = "fusion_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        declare(self, FUSION_PARAMS)
        self.health = Health()
        self.problems = ProblemLog(self.health, log_to(self.get_logger()),
                                   self.get_parameter("log_throttle_s").value)
        self.timings = RollingTimes()
        self.estimator: Optional[EmotionEstimator] = None
        self.pairer: Optional[WindowPairer] = None
        self._cfg: dict[str, Any] = {}
        self._pub = None
        self._hri: Optional[HriOutput] = None
        self._subs: list = []
        self._timer = None
        self._state, self._config_error = "unconfigured", None
        self._shapes: dict[str, Any] = {}
        self._silent: set[str] = set()
        self._topics: dict[str, str] = {}  # modality -> the resolved topic it comes on
        self._hops: dict[str, float] = {}  # modality -> its node's hop_s (last heard)
        self._last_diag_counts: dict[str, int] = {}
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.get_parameter("diagnostics_period_s").value,
                                             self.publish_diagnostics)

    # --- lifecycle --------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cfg = values(self, FUSION_PARAMS)
        self.problems.throttle_s = self._cfg["log_throttle_s"]
        try:
            if not self._cfg["model_dir"]:
                raise ValueError("parameter model_dir is empty: point it at a model bundle")
            cfg = {**{p.name: p.default for p in PARAMS}, **self._cfg}
            self.estimator = EmotionEstimator(**estimator_args(cfg), networks={"fusion"})
            self._warmup(self._cfg["warmup_runs"])
        except Exception as e:  # any failure to load must leave the node unconfigured
            self._config_error = str(e)
            self.health.count(Problem.CONFIGURE_FAILURES.value, problem=str(e))
            self.get_logger().error(f"configure failed: {e}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._config_error = None
        models = self.estimator.manifest.models
        if "fusion" in models:  # the fusion network's inputs: audio first, then video
            a, v = (t.one_row for t in models["fusion"].inputs)
            self._shapes = {AUDIO_MODALITY: a, VIDEO_MODALITY: v}
        self._pub = self.create_lifecycle_publisher(emotion_estimate_type(), "emotion",
                                                    QoSProfile(depth=10))
        self._hri = HriOutput.create(self, self._cfg["hri_output"])
        self.get_logger().info(f"configured: model {self.estimator.model_id}, partners "
                               f"{self._modalities()}")
        self._state = "inactive"
        return super().on_configure(state)

    def _warmup(self, runs: int) -> None:
        """Run the fusion network (the only one this node loads) on zeros."""
        net, spec = self.estimator.nets.get("fusion"), self.estimator.manifest.models.get("fusion")
        for _ in range(runs if net is not None else 0):
            net.run({t.name: np.zeros(t.one_row, np.float32) for t in spec.inputs})

    def _modalities(self) -> tuple:
        roles = self.estimator.roles
        return tuple(m for m in (AUDIO_MODALITY, VIDEO_MODALITY) if m in roles)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        c = self._cfg
        self.pairer = WindowPairer(self.estimator.model_id, c["grace_s"], c["partner_timeout_s"],
                                   self._modalities(), time.monotonic())
        self._silent.clear()
        self._hops.clear()
        for m in self._modalities():
            self._subs.append(self.create_subscription(
                modality_estimate_type(), ESTIMATE_TOPICS[m],
                lambda msg, m=m: self._on_half(m, msg), QoSProfile(depth=10)))
            self._topics[m] = self._subs[-1].topic_name
        self._timer = self.create_timer(c["check_period_s"], self._check)
        self._state = "active"
        self.get_logger().info("active: " + ", ".join(f"'{s.topic_name}'" for s in self._subs)
                               + f" -> '{self._pub.topic_name}'")
        return super().on_activate(state)

    def _stop_input(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs.clear()
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self.pairer is not None:  # what waits goes out with the half it has
            self._publish_ready(float("inf"))
        self.pairer = None

    def _release(self) -> None:
        if self._pub is not None:
            self.destroy_lifecycle_publisher(self._pub)
            self._pub = None
        if self._hri is not None:
            self._hri.destroy()
            self._hri = None
        if self.estimator is not None:
            self.estimator.close()
            self.estimator = None

    # --- input and output (executor thread) ---------------------------------------------
    def _on_half(self, modality: str, msg: Any) -> None:
        if self.pairer is None:
            return
        self.health.count(f"{modality}_estimates_received")
        try:
            mw = modality_window_of(msg, self._shapes.get(modality))
        except ModalityMessageError as e:
            self.problems.report(Problem.MESSAGE_INVALID, f"{modality} estimate dropped: {e}")
            return
        if mw.modality != modality:
            self.problems.report(Problem.MESSAGE_INVALID, f"a {mw.modality} estimate on the "
                                 f"{modality} topic '{ESTIMATE_TOPICS[modality]}': dropped")
            return
        refused = self.pairer.add(mw, time.monotonic())
        if refused != "model_mismatch":
            self._check_grid(mw)
        if refused == "model_mismatch":
            self.problems.report(Problem.PARTNER_MODEL_MISMATCH, (
                f"the {modality} node runs model {mw.model_id!r}, this node "
                f"{self.estimator.model_id!r}: its estimates are refused; give all three nodes "
                "the same model_dir"))
        elif refused == "late":
            self.problems.report(Problem.PARTNER_LATE, (
                f"{modality} estimate of the window ending {mw.end_ns / NS:.3f} s came after "
                f"the window was published without it (grace_s {self._cfg['grace_s']:g})"))
        if modality in self._silent and refused != "model_mismatch":
            self._silent.discard(modality)
            self.get_logger().info(f"{modality} partner is back: fusing both modalities again")
        self._check()

    def _check_grid(self, mw: Any) -> None:
        """Both partners' windows must lie on one grid (the same hop_s), or few pair."""
        if mw.hop_s > 0:
            self._hops[mw.modality] = mw.hop_s
        hops = set(round(h, 6) for h in self._hops.values())
        if len(hops) > 1:
            self.problems.report(Problem.PARTNER_GRID_MISMATCH, (
                "the modality nodes window on different grids (hop_s "
                + ", ".join(f"{m} {h:g}" for m, h in sorted(self._hops.items()))
                + "): only the windows both have are fused; give them the same hop_s"))

    def _check(self) -> None:
        if self.pairer is None:
            return
        now = time.monotonic()
        for m, quiet in self.pairer.silent(now).items():
            if m not in self._silent:
                self._silent.add(m)
                self.problems.report(Problem.PARTNER_SILENT, self._silent_text(m, quiet))
        self._publish_ready(now)

    def _silent_text(self, modality: str, quiet: float) -> str:
        other = ({AUDIO_MODALITY, VIDEO_MODALITY} - {modality}).pop()
        topic = self._topics.get(modality, ESTIMATE_TOPICS[modality])
        how = "stopped" if modality in self.pairer.heard else "never heard"
        return (f"{modality} partner silent: no ModalityEstimate on '{topic}' for "
                f"{quiet:.1f} s ({how}): estimates from {other} alone until it is back")

    def _publish_ready(self, now: float) -> None:
        for halves in self.pairer.pop_ready(now):
            audio, video = halves.get(AUDIO_MODALITY), halves.get(VIDEO_MODALITY)
            try:
                r = fuse_windows(self.estimator, audio, video)
            except Exception as exc:  # noqa: BLE001 - one bad window must not stop the node
                end = (audio or video).end_ns / NS
                self.problems.report(Problem.INFERENCE_ERRORS, f"window ending {end:.3f} s "
                                     f"failed: {type(exc).__name__}: {exc}")
                continue
            if r is None or self._pub is None:
                self.health.count("windows_without_estimate")
                continue
            frame = video.frame_id if r.face_found and video is not None else \
                (audio.frame_id if audio is not None else "")
            msg = estimate_message(r, emotion_estimate_type(), frame, self.estimator.model_id,
                                   self.get_clock().now().nanoseconds)
            self._pub.publish(msg)
            if self._hri is not None:
                self._hri.publish(r, video.frame_id if video is not None else "")
            self.timings.add("latency", msg.latency)
            self.health.count("windows_published")
            self.health.count("windows_fused" if len(halves) == 2 else
                              f"windows_{next(iter(halves))}_only")

    # --- diagnostics --------------------------------------------------------------------
    def publish_diagnostics(self) -> None:
        """Counters and state on /diagnostics; WARN naming every silent partner."""
        extra = diagnostics_extra(self.estimator.model_id if self.estimator else None, None,
                                  {"windows_waiting": self.pairer.waiting} if self.pairer else {},
                                  self.timings.summary())
        status = self._diagnostic_status(extra)
        silent = self.pairer.silent(time.monotonic()) if self.pairer else {}
        if silent:  # WARN while a partner is silent, not only when the counter grows
            text = "; ".join(self._silent_text(m, q) for m, q in silent.items())
            if status.level == DiagnosticStatus.OK:
                status.level, status.message = DiagnosticStatus.WARN, text
            else:
                status.message = f"{text}; {status.message}"
        self._publish_status(status)


def main(args=None) -> None:
    """Run the node alone (lifecycle transitions come from launch or a lifecycle manager)."""
    spin_node(FusionNode, args)
