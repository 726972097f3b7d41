"""Speech gate: is anyone speaking in this window of audio? (Silero VAD through ONNX Runtime)

The Silero VAD model (MIT, from the ``silero-vad`` wheel, see
``python -m avemo_ros.tools.fetch_weights silero-vad``) reads 16 kHz mono audio in chunks
of 512 samples (32 ms), each preceded by the last 64 samples of the chunk before it, and
carries a recurrent state of shape (2, batch, 128) from chunk to chunk; it returns one
speech probability per chunk.

:class:`SpeechGate` judges one window at a time from a fresh state, so a window gets the
same answer live, offline and in training whatever the hop: NumPy audio in,
:class:`SpeechDecision` out. :class:`SpeechTrack` is the streaming alternative (the model
runs once over the audio as it arrives; windows are judged from the chunks scored).
:class:`SileroVad` is the model itself: state carried across calls, or batches of
equal-length windows.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from avemo_ros.audio_features import resample, to_mono
from avemo_ros.tools.fetch_weights import SOURCES, fetch_hint, sha256_of, weight_file

#: The model's sample rate, chunk and context lengths (samples) at that rate.
VAD_RATE = 16000
CHUNK = 512
CONTEXT = 64
STATE_SHAPE = (2, 128)  # (2, batch, 128) with the batch in the middle

_SOURCE = "silero-vad"
_MEMBER = "silero_vad/data/silero_vad.onnx"
#: SHA-256 of the pinned model file (checked when the file is loaded).
MODEL_SHA256 = SOURCES[_SOURCE].members[_MEMBER]


class SpeechGateError(RuntimeError):
    """The VAD model is missing, corrupt or not the expected one, or the input is unusable."""


def default_model_path(weights_root: "str | os.PathLike | None" = None) -> Path:
    """Where the gate looks for the model: ``<root>/silero-vad/silero_vad.onnx``, the root
    being ``weights_root``, else ``$AVEMO_WEIGHTS``, else ``data/weights`` in the source tree."""
    return weight_file(_SOURCE, _MEMBER, weights_root)


@dataclass(frozen=True)
class SpeechGateConfig:
    """Gate settings.

    ``threshold``: a chunk is speech when its probability is at least this (0.5, Silero's
    own default for speech segments). ``min_speech_fraction``: a window is speech when at
    least this share of its chunks is (0.2: 0.6 s of a 3 s window, two or three syllables;
    a RAVDESS-style utterance fills about half a 3 s window, silence, fans and music
    almost none of it). ``model_path``: the ONNX file (default :func:`default_model_path`);
    ``verify_sha256`` checks it against the pinned hash (turn off for another model file).
    """

    threshold: float = 0.5
    min_speech_fraction: float = 0.2
    threads: int = 1
    model_path: Optional[str] = None
    verify_sha256: bool = True

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 <= self.min_speech_fraction <= 1.0:
            raise ValueError(f"min_speech_fraction must be in [0, 1], got "
                             f"{self.min_speech_fraction}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


def bundle_gate_config(training: "dict | None", threshold: float = -1.0,
                       min_speech_fraction: float = -1.0,
                       model_path: Optional[str] = None) -> SpeechGateConfig:
    """The gate a bundle was trained with (its manifest's ``training["speech_gate"]``),
    with a user's overrides: a negative ``threshold`` / ``min_speech_fraction`` keeps the
    bundle's value (the defaults for a bundle that records none)."""
    rec = dict((training or {}).get("speech_gate") or {})
    base = SpeechGateConfig()
    return SpeechGateConfig(
        threshold=float(threshold if threshold >= 0 else rec.get("threshold", base.threshold)),
        min_speech_fraction=float(min_speech_fraction if min_speech_fraction >= 0 else
                                  rec.get("min_speech_fraction", base.min_speech_fraction)),
        model_path=model_path or None)


def gate_config_from(section: "dict | None") -> Optional[SpeechGateConfig]:
    """A training config's ``preprocessing.speech_gate`` (absent: on, with the defaults):
    ``enabled`` (true), ``threshold``, ``min_speech_fraction``; None when disabled."""
    section = dict(section or {})
    if not section.pop("enabled", True):
        return None
    unknown = set(section) - {"threshold", "min_speech_fraction"}
    if unknown:
        raise ValueError(f"preprocessing.speech_gate: unknown fields {sorted(unknown)}")
    return SpeechGateConfig(**section)


def gate_record(config: Optional[SpeechGateConfig]) -> dict:
    """What a bundle's manifest records of the gate its training used (None: no gate)."""
    if config is None:
        return {"enabled": False}
    return {"enabled": True, "model": "silero-vad " + _MEMBER,
            "model_sha256": MODEL_SHA256, "threshold": config.threshold,
            "min_speech_fraction": config.min_speech_fraction}


@dataclass(frozen=True)
class SpeechDecision:
    """The gate's verdict on one window.

    ``probabilities``: speech probability per 32 ms chunk (float32, the window's whole
    chunks in order; a tail shorter than a chunk is not judged); ``speech_fraction``: share
    of chunks at or above the threshold (0 for a window without a whole chunk);
    ``speech_detected``: ``speech_fraction >= min_speech_fraction`` and at least one
    chunk; ``compute_s``: wall time of resampling and the model.
    """

    speech_detected: bool
    speech_fraction: float
    probabilities: np.ndarray
    threshold: float
    min_speech_fraction: float
    compute_s: float

    @property
    def n_chunks(self) -> int:
        return int(self.probabilities.size)

    @property
    def max_probability(self) -> float:
        return float(self.probabilities.max()) if self.probabilities.size else 0.0


def _load_session(path: Path, threads: int, verify_sha256: bool):
    if not path.is_file():
        raise SpeechGateError(f"Silero VAD model not found at {path}: run {fetch_hint(_SOURCE)}")
    hint = fetch_hint(_SOURCE, "--force")
    if verify_sha256:
        digest = sha256_of(path)
        if digest != MODEL_SHA256:
            raise SpeechGateError(
                f"Silero VAD model {path} is corrupt or not the pinned one (SHA-256 "
                f"{digest[:12]}..., expected {MODEL_SHA256[:12]}...): run {hint}")
    import onnxruntime as ort  # only where the gate is used

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # the model's unused initialisers are not worth a warning
    try:
        session = ort.InferenceSession(str(path), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for a broken file
        raise SpeechGateError(f"Silero VAD model {path} does not load ({e}): run {hint}") from e
    names = {i.name for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if set(outputs) == {"output", "stateN"}:
        outputs = ["output", "stateN"]  # probability first, then the next state
    if names != {"input", "state", "sr"} or len(outputs) != 2:
        raise SpeechGateError(f"{path} is not a Silero VAD v5/v6 model (inputs {sorted(names)}, "
                              f"outputs {outputs}; expected input, state, sr -> output, stateN)")
    return session, outputs


class SileroVad:
    """The Silero VAD model on 16 kHz float32 audio, 512-sample chunks.

    :meth:`probabilities` judges whole signals (one, or a batch of equal length) from a
    fresh state; :meth:`stream` carries state, context and a partial chunk across calls
    (:meth:`reset` starts over). Not thread-safe: one instance per thread.
    """

    def __init__(self, model_path: "str | os.PathLike | None" = None, *, threads: int = 1,
                 verify_sha256: bool = True):
        self.model_path = Path(model_path) if model_path else default_model_path()
        self._session, self._outputs = _load_session(self.model_path, threads, verify_sha256)
        self._sr = np.array(VAD_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero state and context, no pending samples."""
        self._state = np.zeros((STATE_SHAPE[0], 1, STATE_SHAPE[1]), np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)
        self._pending = np.zeros(0, np.float32)

    def _run(self, chunks: np.ndarray, state: np.ndarray,
             context: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """chunks (batch, k, CHUNK) -> probabilities (batch, k), final state and context."""
        batch, k, _ = chunks.shape
        probs = np.empty((batch, k), np.float32)
        out_name, state_name = self._outputs
        for i in range(k):
            x = np.concatenate([context, chunks[:, i]], axis=1)
            out, state = self._session.run([out_name, state_name],
                                           {"input": x, "state": state, "sr": self._sr})
            probs[:, i] = out[:, 0]
            context = x[:, -CONTEXT:]
        return probs, state, context

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Per-chunk speech probabilities of 16 kHz audio from a fresh state: (n,) ->
        (n // 512,), or a batch (b, n) -> (b, n // 512); the tail is not judged."""
        x = np.asarray(audio, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2:
            raise SpeechGateError(f"expected (samples,) or (batch, samples), got {x.shape}")
        batch, k = x.shape[0], x.shape[1] // CHUNK
        if k == 0 or batch == 0:
            empty = np.zeros((batch, 0), np.float32)
            return empty[0] if single else empty
        chunks = np.ascontiguousarray(x[:, :k * CHUNK]).reshape(batch, k, CHUNK)
        state = np.zeros((STATE_SHAPE[0], batch, STATE_SHAPE[1]), np.float32)
        probs, _, _ = self._run(chunks, state, np.zeros((batch, CONTEXT), np.float32))
        return probs[0] if single else probs

    def stream(self, audio: np.ndarray) -> np.ndarray:
        """Feed the next 16 kHz samples of a stream; probabilities of the chunks completed."""
        x = np.concatenate([self._pending, np.asarray(audio, np.float32).reshape(-1)])
        k = x.size // CHUNK
        self._pending = x[k * CHUNK:].copy()
        if k == 0:
            return np.zeros(0, np.float32)
        probs, self._state, self._context = self._run(
            x[:k * CHUNK].reshape(1, k, CHUNK), self._state, self._context)
        return probs[0]


def _to_vad_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at 16 kHz: (n,) as is, (n, channels) averaged, other rates resampled."""
    try:
        x = to_mono(audio)  # what the audio features do first, too
    except ValueError as e:
        raise SpeechGateError(f"expected mono (n,) or (n, channels) audio: {e}") from None
    if not np.all(np.isfinite(x)):
        raise SpeechGateError("audio holds NaN or infinite samples")
    return resample(x, int(sample_rate), VAD_RATE) if int(sample_rate) != VAD_RATE else x


class SpeechGate:
    """Speech or not, per window: ``gate(audio, sample_rate) -> SpeechDecision``.

    ``audio`` is float32 in [-1, 1], (n,) or (n, channels) at any integer rate (resampled
    to 16 kHz with :func:`avemo_ros.audio_features.resample`). Each window starts from a
    fresh model state. The model is loaded once, at construction.
    """

    def __init__(self, config: Optional[SpeechGateConfig] = None, *,
                 vad: Optional[SileroVad] = None):
        self.config = config or SpeechGateConfig()
        self.vad = vad or SileroVad(self.config.model_path, threads=self.config.threads,
                                    verify_sha256=self.config.verify_sha256)

    def decide(self, probabilities: np.ndarray, compute_s: float = 0.0) -> SpeechDecision:
        """The verdict on a window from its per-chunk probabilities."""
        p = np.asarray(probabilities, np.float32).reshape(-1)
        cfg = self.config
        fraction = float(np.mean(p >= cfg.threshold)) if p.size else 0.0
        return SpeechDecision(speech_detected=bool(p.size) and fraction >= cfg.min_speech_fraction,
                              speech_fraction=fraction, probabilities=p,
                              threshold=cfg.threshold,
                              min_speech_fraction=cfg.min_speech_fraction,
                              compute_s=float(compute_s))

    def __call__(self, audio: np.ndarray, sample_rate: int) -> SpeechDecision:
        t0 = time.perf_counter()
        probs = self.vad.probabilities(_to_vad_rate(audio, sample_rate))
        return self.decide(probs, time.perf_counter() - t0)

    def batch(self, windows: Sequence[np.ndarray], sample_rate: int) -> list[SpeechDecision]:
        """Verdicts on many windows (offline, training); equal-length ones run as one batch
        through the model (same answers as one by one; compute_s is each one's share)."""
        t0 = time.perf_counter()
        xs = [_to_vad_rate(w, sample_rate) for w in windows]
        out: list[Optional[np.ndarray]] = [None] * len(xs)
        by_len: dict[int, list[int]] = {}
        for i, x in enumerate(xs):
            by_len.setdefault(x.size, []).append(i)
        for idx in by_len.values():
            probs = self.vad.probabilities(np.stack([xs[i] for i in idx]))
            for i, p in zip(idx, probs):
                out[i] = p
        share = (time.perf_counter() - t0) / max(len(xs), 1)
        return [self.decide(p, share) for p in out]


class SpeechTrack:
    """Streaming alternative to one fresh run per window: the VAD runs once over the audio
    as it arrives (state carried), and a window is judged from the chunks already scored.

    A 3 s window at a 1 s hop then costs a third of :class:`SpeechGate`'s compute, none of
    it when the window is judged; but a chunk's probability depends on the audio before
    the window too, so the verdicts match :class:`SpeechGate` only where both see the same
    stream from its start. Times are seconds since the first sample added; ``add`` takes
    contiguous mono audio at ``sample_rate`` (16 kHz avoids resampling each piece on its
    own), ``restart`` begins a new stream after a gap. Chunks older than ``keep_s`` go.
    """

    def __init__(self, gate: SpeechGate, sample_rate: int = VAD_RATE, keep_s: float = 10.0):
        self.gate, self.sample_rate, self.keep_s = gate, int(sample_rate), float(keep_s)
        self.restart(0.0)

    def restart(self, at_s: float) -> None:
        """Forget everything; the next sample added is at ``at_s`` seconds."""
        self.gate.vad.reset()
        self._origin_s, self._first_chunk = float(at_s), 0
        self._probs = np.zeros(0, np.float32)
        self._n_done = 0  # chunks scored since the origin
        self.compute_s = 0.0  # wall time spent in ``add`` since the restart

    def add(self, samples: np.ndarray) -> None:
        """Score the next samples of the stream."""
        t0 = time.perf_counter()
        new = self.gate.vad.stream(_to_vad_rate(samples, self.sample_rate))
        self._probs = np.concatenate([self._probs, new])
        self._n_done += new.size
        drop = max(0, self._probs.size - int(self.keep_s * VAD_RATE / CHUNK))
        self._probs, self._first_chunk = self._probs[drop:], self._first_chunk + drop
        self.compute_s += time.perf_counter() - t0

    def decide(self, start_s: float, end_s: float) -> SpeechDecision:
        """The verdict on ``[start_s, end_s)`` from the scored chunks that lie wholly in it
        (compute_s 0: the work was done in ``add``)."""
        rel0 = (start_s - self._origin_s) * VAD_RATE / CHUNK
        rel1 = (end_s - self._origin_s) * VAD_RATE / CHUNK
        lo = max(int(np.ceil(rel0 - 1e-9)), self._first_chunk)
        hi = min(int(np.floor(rel1 + 1e-9)), self._n_done)
        probs = self._probs[lo - self._first_chunk:max(lo, hi) - self._first_chunk]
        return self.gate.decide(probs, 0.0)
