"""Encoding media files with PyAV: H.264 + AAC mp4, 16-bit PCM WAV (no ROS imports).

Video frames are ``(N, H, W, 3)`` uint8 RGB, audio ``(n,)`` or ``(n, channels)`` float in
``[-1, 1]``. Decoding is :mod:`avemo_ros.media`.
"""
from __future__ import annotations

import logging
import os
import wave
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np

from .media import MediaError, PathLike

_LOG = logging.getLogger(__name__)

__all__ = ["write_media", "write_wav"]

# Preferred H.264 encoders, best first (PyAV wheels ship libx264; others are fallbacks).
_H264_ENCODERS = ("libx264", "h264", "libopenh264")


def _h264_encoder() -> str:
    for name in _H264_ENCODERS:
        try:
            av.Codec(name, "w")
        except Exception:  # noqa: BLE001 - PyAV raises various errors for unknown codecs
            continue
        return name
    raise MediaError("no H.264 encoder available in this PyAV build")


def _as_audio_2d(audio: Optional[np.ndarray]) -> np.ndarray:
    if audio is None:
        return np.zeros((0, 1), np.float32)
    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] not in (1, 2):
        raise ValueError(f"audio must be (n,) or (n, 1|2), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        arr = arr.astype(np.float32) / float(max(abs(info.min), info.max))
    return np.clip(arr.astype(np.float32), -1.0, 1.0)


def _check_frames(frames: Optional[np.ndarray]) -> np.ndarray:
    if frames is None:
        return np.zeros((0, 0, 0, 3), np.uint8)
    arr = np.asarray(frames)
    if arr.size == 0:
        return np.zeros((0, 0, 0, 3), np.uint8)
    if arr.ndim != 4 or arr.shape[3] != 3:
        raise ValueError(f"frames must be (N, H, W, 3), got shape {arr.shape}")
    if arr.shape[1] % 2 or arr.shape[2] % 2:
        raise ValueError("H.264/yuv420p needs even frame sizes, got "
                         f"{arr.shape[2]}x{arr.shape[1]}")
    if arr.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {arr.dtype}")
    return arr


def write_media(
    path: PathLike,
    frames: Optional[np.ndarray],
    fps: float,
    audio: Optional[np.ndarray],
    sample_rate: int,
    *,
    crf: int = 20,
    preset: str = "veryfast",
    audio_bitrate: int = 128_000,
    threads: int = 0,
    aac_coder: str = "fast",
) -> None:
    """Encode frames (H.264, yuv420p) and audio (AAC, mono or stereo) into an mp4 file.

    ``frames`` is ``(N, H, W, 3)`` uint8 RGB with even H and W (or None/empty for
    audio only); ``audio`` is ``(n,)`` or ``(n, channels)`` float in ``[-1, 1]``
    (or None/empty for video only). ``threads`` 0 lets the video encoder choose;
    ``aac_coder`` is FFmpeg's AAC coefficient coder ("fast" or the slower "twoloop").
    """
    video_arr = _check_frames(frames)
    audio_arr = _as_audio_2d(audio)
    has_video = video_arr.shape[0] > 0
    has_audio = audio_arr.shape[0] > 0
    if not has_video and not has_audio:
        raise ValueError("nothing to write: no frames and no audio")
    if has_video and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if has_audio and int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    path_str = os.fspath(path)
    Path(path_str).parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(path_str, mode="w", format="mp4") as out:
            vstream = astream = None
            if has_video:
                rate = Fraction(fps).limit_denominator(1001)
                encoder = _h264_encoder()
                vstream = out.add_stream(encoder, rate=rate)
                vstream.width = int(video_arr.shape[2])
                vstream.height = int(video_arr.shape[1])
                vstream.pix_fmt = "yuv420p"
                options = {"crf": str(crf), "preset": preset}
                if av.Codec(encoder, "w").name == "libx264":
                    # x264's macroblock-tree rate control made repeated encodes of the same
                    # frames differ now and then (PyAV 18); without it output is repeatable.
                    options["x264-params"] = "mbtree=0"
                vstream.options = options
                vstream.codec_context.thread_count = int(threads)
            if has_audio:
                layout = "mono" if audio_arr.shape[1] == 1 else "stereo"
                astream = out.add_stream("aac", rate=int(sample_rate), layout=layout,
                                         options={"aac_coder": aac_coder})
                astream.bit_rate = int(audio_bitrate)
            if vstream is not None:
                tb = Fraction(1) / Fraction(fps).limit_denominator(1001)
                for i, img in enumerate(video_arr):
                    vframe = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                    vframe.pts = i
                    vframe.time_base = tb
                    out.mux(vstream.encode(vframe))
                out.mux(vstream.encode(None))
            if astream is not None:
                _encode_audio(out, astream, audio_arr, int(sample_rate))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot write media file {path_str}: {exc}") from exc
    _LOG.debug("wrote %s: %d frames, %d audio samples", path_str, video_arr.shape[0],
               audio_arr.shape[0])


def _encode_audio(out, stream, audio: np.ndarray, sample_rate: int, chunk: int = 8192) -> None:
    layout = "mono" if audio.shape[1] == 1 else "stereo"
    planar = np.ascontiguousarray(audio.T)
    tb = Fraction(1, sample_rate)
    for start in range(0, planar.shape[1], chunk):
        piece = np.ascontiguousarray(planar[:, start:start + chunk])
        aframe = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
        aframe.sample_rate = sample_rate
        aframe.pts = start
        aframe.time_base = tb
        out.mux(stream.encode(aframe))
    out.mux(stream.encode(None))


def write_wav(path: PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write ``(n,)`` or ``(n, channels)`` float audio in ``[-1, 1]`` as 16-bit PCM WAV."""
    arr = _as_audio_2d(audio)
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    pcm = np.round(arr * 32767.0).astype("<i2")
    path_str = os.fspath(path)
    Path(path_str).parent.mkdir(parents=True, exist_ok=True)
    try:
        with wave.open(path_str, "wb") as wav:
            wav.setnchannels(arr.shape[1])
            wav.setsampwidth(2)
            wav.setframerate(int(sample_rate))
            wav.writeframes(pcm.tobytes())
    except OSError as exc:
        raise MediaError(f"cannot write wav file {path_str}: {exc}") from exc
