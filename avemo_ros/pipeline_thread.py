"""A StreamingPipeline on its own worker thread, for live use.

Threads and what they own:

- any thread (ROS subscription callbacks): :meth:`PipelineThread.submit` only appends the
  event to the inbox, under ``_cv``;
- the worker thread (:meth:`_work`): owns the pipeline and everything in it; it drains
  the inbox into ``pipeline.push``, runs ``pipeline.step`` one unit of work at a time
  (so new input never waits behind more than one unit) and hands each outcome to
  ``on_outcome`` (the node publishes from there);
- ``_frames``, ``_chunks`` (the inbox) and ``_stopping`` are shared, always under ``_cv``.
"""
from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Callable, Optional

from .input_problems import Problem
from .pipeline import Event, StreamingPipeline, WindowOutcome
from .stream_events import CameraFrame

#: How often an idle worker polls the pipeline for windows a dead stream leaves ready, s.
POLL_S = 0.1


class PipelineThread:
    """Feeds ``pipeline`` from a bounded inbox on one worker thread.

    ``max_frames`` / ``max_chunks``: camera frames / audio chunks waiting at most (a raw
    frame is large); beyond it the oldest is dropped and counted (``inputs_dropped``: the
    worker cannot even buffer the input as fast as it comes).
    """

    def __init__(self, pipeline: StreamingPipeline, on_outcome: Callable[[WindowOutcome], None],
                 max_frames: int = 90, max_chunks: int = 1000):
        self.pipeline = pipeline  # worker thread only, once started
        self._on_outcome = on_outcome
        self._limits = (max_frames, max_chunks)
        self._cv = threading.Condition()
        self._frames: deque = deque()
        self._chunks: deque = deque()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        #: figures of the pipeline for /diagnostics, a new dict after every unit of work
        #: (written by the worker only; readers get a consistent snapshot)
        self.gauges: dict[str, object] = {}

    def start(self, opencv_threads: Optional[int] = 1) -> None:
        """Start the worker thread. ``opencv_threads``: OpenCV's thread pool for the
        process (1: the worker does detection and crops itself; OpenCV's pool would wake
        threads for every small image, at more CPU than it saves; None: leave it)."""
        if opencv_threads is not None:
            import cv2

            cv2.setNumThreads(opencv_threads)
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="perception_worker",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the worker (what it holds is dropped); False if it did not stop in time."""
        if self._thread is None:
            return True
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout)
        alive = self._thread.is_alive()
        self._thread = None
        return not alive

    def submit(self, event: Event) -> None:
        """Hand an event to the worker (any thread; never blocks on compute)."""
        frame = isinstance(event, CameraFrame)
        queue, limit = (self._frames, self._limits[0]) if frame else \
            (self._chunks, self._limits[1])
        with self._cv:
            queue.append(event)
            dropped = len(queue) > limit
            if dropped:
                queue.popleft()
            self._cv.notify()
        if dropped:
            self.pipeline.problems.report(Problem.INPUTS_DROPPED, (
                f"{'a camera frame' if frame else 'an audio chunk'} dropped: {limit} wait "
                "for the worker, which cannot even buffer them as fast as they come"))

    def _work(self) -> None:
        pipeline = self.pipeline
        while True:
            with self._cv:
                if not (self._frames or self._chunks or pipeline.has_work or self._stopping):
                    self._cv.wait(POLL_S)
                if self._stopping:
                    return
                events = list(heapq.merge(self._chunks, self._frames,
                                          key=lambda e: e.received_s or 0.0))
                self._frames.clear()
                self._chunks.clear()
            for event in events:
                self._guarded(pipeline.push, event)
            if not events:
                self._guarded(pipeline.poll, time.monotonic())
            for outcome in self._guarded(pipeline.step) or ():
                self._guarded(self._on_outcome, outcome)
            self.gauges = {"frames_unused": pipeline.buffer.frames_unused,
                           "frames_held": pipeline.buffer.frames_held,
                           "frames_prepared": pipeline.frames_prepared,
                           "face_detection_s": f"{pipeline.face_detection_s:.3f}"}

    def _guarded(self, fn, *args):
        """``fn(*args)``; an exception is counted and logged, and the worker goes on."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - the worker must survive anything
            self.pipeline.problems.report(Problem.INFERENCE_ERRORS,
                                          f"worker: {type(exc).__name__}: {exc}")
            return None
