"""Annotated videos of a stream: each frame with the latest estimate whose window has ended
(no ROS imports).

The demo (:mod:`avemo_ros.ros.demo`) and bag evaluation (:mod:`avemo_ros.tools.evaluate`)
both re-decode the frames they played and draw on each, with :func:`avemo_ros.annotate.
annotate`, the newest estimate whose window ended at or before the frame's stamp
(:class:`EstimateTimeline`): the video runs at the camera's frame rate and shows what the
node had decided by then, whatever rate the estimates came at.

:class:`AnnotatedVideoWriter` encodes frames one at a time (a bag may be longer than fits
in memory) with the settings of :func:`avemo_ros.media_write.write_media`: H.264 yuv420p,
the same encoder choice, optional AAC audio.
"""
from __future__ import annotations

import bisect
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Optional

import av
import cv2
import numpy as np

from .media import MediaError, PathLike
from .media_write import _as_audio_2d, _encode_audio, _h264_encoder

_LOG = logging.getLogger(__name__)

__all__ = ["AnnotatedVideoWriter", "EstimateTimeline", "MAX_GAP_S"]

#: Longest stretch without frames that is filled with the last frame (longer: cut short).
MAX_GAP_S = 5.0


class EstimateTimeline:
    """Estimates by window end: ``at(t_ns)`` is the newest one whose window ended by ``t_ns``.

    ``items``: (window end ns, result, latency s or None), in any order.
    """

    def __init__(self, items: Iterable[tuple[int, Any, Optional[float]]] = ()):
        self._items = sorted(items, key=lambda it: it[0])
        self._ends = [it[0] for it in self._items]

    def add(self, end_ns: int, result: Any, latency_s: Optional[float] = None) -> None:
        """One more estimate."""
        i = bisect.bisect_right(self._ends, end_ns)
        self._ends.insert(i, end_ns)
        self._items.insert(i, (end_ns, result, latency_s))

    def __len__(self) -> int:
        return len(self._items)

    def at(self, t_ns: int) -> tuple[Any, Optional[float]]:
        """(result, latency) of the newest estimate whose window ended at or before
        ``t_ns``; (None, None) before the first."""
        i = bisect.bisect_right(self._ends, t_ns)
        if i == 0:
            return None, None
        _, result, latency = self._items[i - 1]
        return result, latency


class AnnotatedVideoWriter:
    """RGB frames with their times -> an H.264 mp4 at a constant ``fps``.

    Each frame lands in the slot of its time (``round(t * fps)`` from the first frame's);
    a frame whose slot is taken is left out, empty slots repeat the previous frame (gaps up
    to :data:`MAX_GAP_S`). The first frame fixes the size (cut to even width and height);
    later frames of another size are resized to it. ``audio`` ((n,) or (n, channels) float
    in [-1, 1], starting at the first frame's time) is encoded at :meth:`close`.
    """

    def __init__(self, path: PathLike, fps: float = 30.0, *, audio: Optional[np.ndarray] = None,
                 sample_rate: int = 0, crf: int = 23, preset: str = "veryfast"):
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(os.fspath(path))
        self.fps = float(fps)
        self._audio = _as_audio_2d(audio)
        self._rate = int(sample_rate)
        if self._audio.shape[0] and self._rate <= 0:
            raise ValueError(f"sample_rate must be positive with audio, got {sample_rate}")
        self._crf, self._preset = crf, preset
        self._out = self._vstream = self._astream = None
        self._size: Optional[tuple[int, int]] = None  # (width, height)
        self._t0: Optional[float] = None
        self._slot = -1  # last slot written
        self._last: Optional[np.ndarray] = None
        self.frames_written = 0

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._out = av.open(str(self.path), mode="w", format="mp4")
            encoder = _h264_encoder()
            self._vstream = self._out.add_stream(encoder,
                                                 rate=Fraction(self.fps).limit_denominator(1001))
            self._vstream.width, self._vstream.height = width, height
            self._vstream.pix_fmt = "yuv420p"
            options = {"crf": str(self._crf), "preset": self._preset}
            if av.Codec(encoder, "w").name == "libx264":
                options["x264-params"] = "mbtree=0"  # repeatable output (see media_write)
            self._vstream.options = options
            if self._audio.shape[0]:
                layout = "mono" if self._audio.shape[1] == 1 else "stereo"
                self._astream = self._out.add_stream("aac", rate=self._rate, layout=layout,
                                                     options={"aac_coder": "fast"})
                self._astream.bit_rate = 128_000
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot write media file {self.path}: {exc}") from exc
        self._size = (width, height)

    def _encode(self, img: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = Fraction(1) / Fraction(self.fps).limit_denominator(1001)
        self._out.mux(self._vstream.encode(frame))
        self.frames_written += 1

    def write(self, rgb: np.ndarray, t_s: float) -> None:
        """One (H, W, 3) uint8 RGB frame shown from ``t_s`` seconds on."""
        img = np.asarray(rgb)
        if self._size is None:
            h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
            if h == 0 or w == 0:
                raise ValueError(f"frame too small for H.264: {img.shape[1]}x{img.shape[0]}")
            self._open(w, h)
            self._t0 = float(t_s)
        w, h = self._size
        if img.shape[:2] != (h, w):
            img = (img[:h, :w] if img.shape[0] in (h, h + 1) and img.shape[1] in (w, w + 1)
                   else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        img = np.ascontiguousarray(img)
        slot = int(round((float(t_s) - self._t0) * self.fps))
        if slot <= self._slot:
            return
        if self._last is not None:
            fill = min(slot - self._slot - 1, int(MAX_GAP_S * self.fps))
            for _ in range(fill):
                self._encode(self._last)
        self._encode(img)
        self._slot, self._last = slot, img

    def close(self) -> int:
        """Finish the file (flush the encoder, write the audio); returns frames written."""
        if self._out is None:
            return 0
        try:
            self._out.mux(self._vstream.encode(None))
            if self._astream is not None:
                _encode_audio(self._out, self._astream, self._audio, self._rate)
            self._out.close()
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot write media file {self.path}: {exc}") from exc
        finally:
            self._out = None
        _LOG.debug("wrote %s: %d frames", self.path, self.frames_written)
        return self.frames_written

    def __enter__(self) -> "AnnotatedVideoWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
