"""Speech gate bench: VAD cost per 3 s window and the share of windows flagged as speech.

    scripts/rosenv.sh python -m bench.speech_gate [--repeats 200] [--actors 1,2,3,4,20,21]
        [--json FILE]

Classes: espeak-ng sentences (when espeak-ng can be had: the ``espeak-ng`` program or the
``espeakng-loader`` wheel's library), the same at 10 dB SNR in fan noise, the synthetic
voices (``training.synthetic``, first 3 s of each take, as the demo and training windows
see them), silence (digital zero, microphone floor), fan-like noise (low-passed pink and
brown noise with a blade hum) and music-like tones (sustained harmonic chords). The signal
makers here are also what ``test/test_speech_gate.py`` feeds the gate.
"""
from __future__ import annotations

import argparse
import ctypes
import io
import json
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WINDOW_S = 3.0
RATE = 48000

SENTENCES = (
    "Kids are talking by the door.", "Dogs are sitting by the door.",
    "Could you bring me the red cup from the kitchen, please?",
    "The weather is lovely today, let's go for a walk.",
    "I have no idea what you are talking about.",
    "Turn left at the next corner and wait for me there.",
    "That was the best concert I have ever been to!",
    "Please charge the battery before we leave tomorrow.",
    "Where did you put my keys this morning?",
    "Nine hundred and forty two people came to the meeting.",
)
VOICES = ("en-us", "en", "en-us+f3", "en+m3", "en-us+f2")


def _level(x: np.ndarray, rms_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x ** 2))) or 1.0
    return (x * (10.0 ** (rms_db / 20.0) / rms)).astype(np.float32)


def _shaped_noise(rng: np.random.Generator, n: int, rate: int, alpha: float,
                  cutoff_hz: float) -> np.ndarray:
    """Noise with power ~ f^-alpha, low-passed (4th-order magnitude roll-off at cutoff)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / rate)
    f[0] = f[1]
    spec *= f ** (-alpha / 2.0) / np.sqrt(1.0 + (f / cutoff_hz) ** 8)
    return np.fft.irfft(spec, n)


def fan_noise(rng: np.random.Generator, seconds: float = WINDOW_S, rate: int = RATE,
              rms_db: Optional[float] = None) -> np.ndarray:
    """A fan or air conditioner: low-passed pink or brown noise plus a weak blade hum."""
    n = int(round(seconds * rate))
    x = _shaped_noise(rng, n, rate, rng.choice([1.0, 2.0]), rng.uniform(200.0, 1500.0))
    x /= np.std(x) or 1.0
    t = np.arange(n) / rate
    blade = rng.uniform(60.0, 180.0)
    x += sum(rng.uniform(0.05, 0.3) / k * np.sin(2 * np.pi * k * blade * t + rng.uniform(0, 6.3))
             for k in (1, 2, 3))
    return _level(x, rng.uniform(-40.0, -15.0) if rms_db is None else rms_db)


def chord_tones(rng: np.random.Generator, seconds: float = WINDOW_S,
                rate: int = RATE) -> np.ndarray:
    """Music-like tones: sustained harmonic chords (triad and octave, 8 harmonics each),
    held for the whole window or changed every 0.75 s."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    seg = n if rng.random() < 0.5 else int(0.75 * rate)
    x = np.zeros(n)
    for start in range(0, n, seg):
        root = 110.0 * 2.0 ** (rng.integers(0, 24) / 12.0)
        third = 4 if rng.random() < 0.5 else 3
        tt = t[start:start + seg] - t[start]
        env = np.minimum(1.0, tt / 0.03) * np.exp(-tt * rng.uniform(0.0, 0.8))
        for semis in (0, third, 7, 12):
            f = root * 2.0 ** (semis / 12.0)
            for k in range(1, 9):
                if k * f < 0.45 * rate:
                    x[start:start + seg] += env * 0.6 ** k * np.sin(2 * np.pi * k * f * tt)
    return _level(x, rng.uniform(-30.0, -12.0))


def silence(rng: np.random.Generator, seconds: float = WINDOW_S, rate: int = RATE) -> np.ndarray:
    """A silent room: digital zero or a microphone's white noise floor (-75 to -55 dBFS)."""
    n = int(round(seconds * rate))
    if rng.random() < 0.3:
        return np.zeros(n, np.float32)
    return _level(rng.standard_normal(n), rng.uniform(-75.0, -55.0))


class _EspeakLib:
    """libespeak-ng through ctypes (synchronous synthesis into a buffer)."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                 ctypes.c_void_p)

    def __init__(self, lib_path: str, data_path: str):
        self.lib = ctypes.CDLL(lib_path)
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                               ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                          ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                          ctypes.c_void_p, ctypes.c_void_p]
        self.rate = self.lib.espeak_Initialize(2, 0, data_path.encode(), 0)  # SYNCHRONOUS
        if self.rate <= 0:
            raise OSError(f"espeak_Initialize failed ({self.rate})")
        self._chunks: list[np.ndarray] = []
        self._cb = self._CALLBACK(self._collect)  # kept alive as long as the library is
        self.lib.espeak_SetSynthCallback(self._cb)

    def _collect(self, wav, n, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def say(self, text: str, voice: str) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise OSError(f"espeak-ng has no voice {voice!r}")
        self._chunks = []
        data = text.encode()
        # POS_CHARACTER = 1, espeakCHARS_UTF8 = 1
        if self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None) != 0:
            raise OSError("espeak_Synth failed")
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


_ESPEAK: dict = {}


def _espeak():
    """("cli", path) or ("lib", _EspeakLib); raises OSError with the reason when neither."""
    if "engine" not in _ESPEAK:
        try:
            exe = shutil.which("espeak-ng")
            if exe:
                _ESPEAK["engine"] = ("cli", exe)
            else:
                try:
                    import espeakng_loader
                except ImportError:
                    raise OSError("no espeak-ng program on PATH and no espeakng-loader wheel "
                                  "(pip install espeakng-loader==0.2.4)") from None
                _ESPEAK["engine"] = ("lib", _EspeakLib(espeakng_loader.get_library_path(),
                                                       espeakng_loader.get_data_path()))
        except OSError as e:
            _ESPEAK["engine"] = ("none", str(e))
    kind, what = _ESPEAK["engine"]
    if kind == "none":
        raise OSError(what)
    return kind, what


def espeak_unavailable() -> Optional[str]:
    """Why espeak-ng sentences cannot be made here, or None when they can."""
    try:
        _espeak()
    except OSError as e:
        return str(e)
    return None


def espeak_say(text: str, voice: str = "en-us") -> tuple[np.ndarray, int]:
    """One sentence from espeak-ng: (mono float32 audio, sample rate)."""
    kind, engine = _espeak()
    if kind == "cli":
        wav = subprocess.run([engine, "--stdout", "-v", voice, text], capture_output=True,
                             check=True, timeout=60).stdout
        with wave.open(io.BytesIO(wav)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    else:
        rate, pcm = engine.rate, engine.say(text, voice)
    return (pcm.astype(np.float32) / 32768.0), int(rate)


def in_window(audio: np.ndarray, rate: int, rng: np.random.Generator, start_s: float = 0.3,
              floor_db: float = -70.0) -> np.ndarray:
    """``audio`` placed at ``start_s`` in a 3 s window over a quiet noise floor (cut to fit)."""
    n = int(round(WINDOW_S * rate))
    out = _level(rng.standard_normal(n), floor_db)
    lo = int(start_s * rate)
    seg = audio[: n - lo]
    out[lo:lo + seg.size] += seg
    return out


def espeak_windows(rng: np.random.Generator,
                   snr_db: Optional[float] = None) -> Iterator[tuple[np.ndarray, int, str]]:
    """Every sentence in every voice as a 3 s window; optionally in fan noise at ``snr_db``."""
    for i, text in enumerate(SENTENCES):
        for voice in VOICES:
            audio, rate = espeak_say(text, voice)
            audio = _level(audio, rng.uniform(-30.0, -16.0))
            w = in_window(audio, rate, rng, start_s=rng.uniform(0.1, 0.6))
            if snr_db is not None:
                speech_rms = float(np.sqrt(np.mean(audio ** 2)))
                w = w + fan_noise(rng, WINDOW_S, rate, 20 * np.log10(speech_rms) - snr_db)
            yield w, rate, f"{voice}: {text}"


def synthetic_windows(actors=(1, 2, 20)) -> Iterator[tuple[np.ndarray, int, str]]:
    """The first 3 s of every synthetic take of ``actors`` (all emotions and intensities)."""
    sys.path.insert(0, str(ROOT))
    from training.synthetic import LABELS, render_clip

    for actor in actors:
        for emotion in LABELS:
            for intensity in ((1,) if emotion == "neutral" else (1, 2)):
                _, audio, rate = render_clip(emotion, actor, size=(64, 64), fps=2.0,
                                             intensity=intensity)
                yield audio[: int(WINDOW_S * rate)], rate, f"actor {actor} {emotion} {intensity}"


def _recall(gate, windows) -> dict:
    flags, fractions = [], []
    for audio, rate, _ in windows:
        d = gate(audio, rate)
        flags.append(d.speech_detected)
        fractions.append(d.speech_fraction)
    f = np.asarray(fractions) if fractions else np.full(1, np.nan)
    return {"windows": len(flags), "flagged": float(np.mean(flags)) if flags else float("nan"),
            "mean_speech_fraction": float(f.mean()), "min_speech_fraction": float(f.min()),
            "max_speech_fraction": float(f.max())}


def _cost(gate, rng, repeats: int) -> dict:
    from avemo_ros.audio_features import resample

    x48 = chord_tones(rng) + fan_noise(rng)
    x16 = resample(x48, RATE, 16000)
    out = {}
    for label, x, rate in (("16 kHz window", x16, 16000), ("48 kHz window (+ resample)", x48,
                                                               RATE)):
        gate(x, rate)
        ms = np.array([gate(x, rate).compute_s * 1e3 for _ in range(repeats)])
        out[label] = {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95))}
    batch = [x16] * 32
    t0 = time.perf_counter()
    for _ in range(max(1, repeats // 32)):
        gate.batch(batch, 16000)
    per = (time.perf_counter() - t0) / (max(1, repeats // 32) * 32) * 1e3
    out["16 kHz, batches of 32 (offline, training): mean"] = {"median_ms": per,
                                                               "p95_ms": float("nan")}
    from avemo_ros.speech_gate import SpeechTrack

    track, hop = SpeechTrack(gate), np.tile(x16[:16000], 2)
    ms = []
    for i in range(repeats):
        t0 = time.perf_counter()
        track.add(hop[(i % 2) * 8000:(i % 2) * 8000 + 16000])
        track.decide(max(0.0, i - 2.0), i + 1.0)
        ms.append((time.perf_counter() - t0) * 1e3)
    out["SpeechTrack (streaming), per 1 s hop"] = {"median_ms": float(np.median(ms)),
                                                   "p95_ms": float(np.percentile(ms, 95))}
    return out


def run(repeats: int = 200, actors=(1, 2, 3, 4, 20, 21), seed: int = 0) -> dict:
    """Every figure of the bench as a dict."""
    from avemo_ros.speech_gate import SpeechGate

    from .machine import load_average, machine_info

    gate = SpeechGate()
    rng = np.random.default_rng(seed)
    res = {"machine": machine_info(), "load_start": load_average(),
           "config": vars(gate.config) | {"model": str(gate.vad.model_path)},
           "cost": _cost(gate, rng, repeats), "recall": {}}
    why = espeak_unavailable()
    if why is None:
        res["recall"]["espeak-ng sentences"] = _recall(gate, espeak_windows(rng))
        res["recall"]["espeak-ng in fan noise, 10 dB SNR"] = _recall(gate,
                                                                    espeak_windows(rng, 10.0))
    else:
        res["espeak"] = f"not available: {why}"
    res["recall"]["synthetic voices"] = _recall(gate, synthetic_windows(actors))
    for name, maker in (("silence", silence), ("fan noise", fan_noise), ("tones", chord_tones)):
        res["recall"][name] = _recall(gate, ((maker(rng), RATE, name) for _ in range(60)))
    res["load_end"] = load_average()
    return res


def format_report(res: dict) -> str:
    """The bench as Markdown."""
    m = res["machine"]
    cfg = res["config"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, {m['os']}, "
             f"Python {m['python']}, onnxruntime {m['onnxruntime']}, numpy {m['numpy']}, "
             f"commit {m['git_commit']}; load {res['load_start'][0]:.2f} -> "
             f"{res['load_end'][0]:.2f}",
             f"gate: threshold {cfg['threshold']}, min_speech_fraction "
             f"{cfg['min_speech_fraction']}, {cfg['threads']} intra-op thread(s), "
             f"model {cfg['model']}", "",
             "| VAD cost per 3 s window | median ms | p95 ms |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['median_ms']:.2f} | "
              f"{'-' if np.isnan(v['p95_ms']) else format(v['p95_ms'], '.2f')} |"
              for k, v in res["cost"].items()]
    lines += ["", "| class | windows | flagged speech | speech fraction: mean | min | max |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {k} | {v['windows']} | {v['flagged']:.1%} | {v['mean_speech_fraction']:.2f} "
              f"| {v['min_speech_fraction']:.2f} | {v['max_speech_fraction']:.2f} |"
              for k, v in res["recall"].items()]
    if "espeak" in res:
        lines.append(f"\nespeak-ng sentences: {res['espeak']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line: run the bench, print Markdown, optionally write JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.speech_gate",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=200, help="timed windows per cost row")
    ap.add_argument("--actors", default="1,2,3,4,20,21", help="synthetic actors (comma separated)")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args(argv)
    from avemo_ros.speech_gate import SpeechGateError

    try:
        res = run(args.repeats, tuple(int(a) for a in args.actors.split(",") if a.strip()))
    except SpeechGateError as e:
        print(f"speech gate bench: {e}", file=sys.stderr)
        return 2
    print(format_report(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
