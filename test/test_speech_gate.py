"""The speech gate: Silero VAD through ONNX Runtime tells speech from silence, fans and music.

Speech comes from espeak-ng (the program, or the espeakng-loader wheel's library) and from
the project's synthetic voices rendered to RAVDESS-layout files; non-speech from the
signal makers of bench/speech_gate.py. Tests that need the model skip when its weights
are absent (fetch them with ``python -m avemo_ros.tools.fetch_weights silero-vad``).
"""
from __future__ import annotations

import numpy as np
import pytest

from avemo_ros.audio_features import resample
from avemo_ros.media import read_media
from avemo_ros.media_write import write_media
from avemo_ros.speech_gate import (CHUNK, VAD_RATE, SileroVad, SpeechDecision, SpeechGate,
                                   SpeechGateConfig, SpeechGateError, SpeechTrack,
                                   default_model_path)
from bench.speech_gate import (RATE, WINDOW_S, chord_tones, espeak_say, espeak_unavailable,
                               fan_noise, in_window, silence)
from training.synthetic import ravdess_name, render_clip

MODEL = default_model_path()
needs_weights = pytest.mark.skipif(
    not MODEL.is_file(),
    reason=f"Silero VAD weights absent at {MODEL}: run "
           "`python -m avemo_ros.tools.fetch_weights silero-vad`")
_NO_ESPEAK = espeak_unavailable()


class _FixedVad:
    """Stands in for the model: returns the probabilities it was given."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, np.float32)

    def probabilities(self, audio):
        return self.probs


def _no_context(vad: SileroVad, speech: np.ndarray, k: int) -> np.ndarray:
    """The chunks of ``speech`` with state carried but the 64 context samples left zero."""
    state, out = np.zeros((2, 1, 128), np.float32), []
    for i in range(k):
        x = np.concatenate([np.zeros(64, np.float32), speech[i * CHUNK:(i + 1) * CHUNK]])[None]
        p, state = vad._session.run(None, {"input": x, "state": state,
                                           "sr": np.array(16000, np.int64)})
        out.append(p[0, 0])
    return np.array(out)


@pytest.fixture(scope="module")
def gate() -> SpeechGate:
    return SpeechGate()


# --- without the model -------------------------------------------------------------------

def test_decision_counts_chunks_at_or_above_the_threshold():
    g = SpeechGate(SpeechGateConfig(threshold=0.5, min_speech_fraction=0.2),
                   vad=_FixedVad([0.1, 0.5, 0.49, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    d = g(np.zeros(16000, np.float32), 16000)
    assert isinstance(d, SpeechDecision)
    assert d.n_chunks == 10 and d.speech_fraction == pytest.approx(0.2)
    assert d.speech_detected  # 0.2 >= 0.2: the bound counts as speech
    assert d.max_probability == pytest.approx(0.9)
    strict = SpeechGate(SpeechGateConfig(min_speech_fraction=0.3), vad=g.vad)
    assert not strict(np.zeros(16000, np.float32), 16000).speech_detected


def test_a_window_without_a_whole_chunk_is_not_speech():
    g = SpeechGate(SpeechGateConfig(min_speech_fraction=0.0), vad=_FixedVad([]))
    d = g(np.zeros(100, np.float32), 16000)
    assert d.n_chunks == 0 and d.speech_fraction == 0.0 and not d.speech_detected


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": 1.0},
                                    {"min_speech_fraction": 1.5}, {"threads": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        SpeechGateConfig(**kwargs)


def test_a_missing_model_names_the_fetch_command(tmp_path):
    with pytest.raises(SpeechGateError, match=r"not found.*fetch_weights silero-vad"):
        SpeechGate(SpeechGateConfig(model_path=str(tmp_path / "silero_vad.onnx")))


def test_a_corrupt_model_is_refused_with_the_fetch_command(tmp_path):
    bad = tmp_path / "silero_vad.onnx"
    bad.write_bytes(b"not an onnx model" * 100)
    with pytest.raises(SpeechGateError, match=r"corrupt.*fetch_weights silero-vad.*--force"):
        SileroVad(bad)
    with pytest.raises(SpeechGateError, match=r"does not load.*fetch_weights silero-vad"):
        SileroVad(bad, verify_sha256=False)


def test_the_default_model_path_follows_avemo_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("AVEMO_WEIGHTS", str(tmp_path))
    assert default_model_path() == tmp_path / "silero-vad" / "silero_vad.onnx"
    assert default_model_path(tmp_path / "w") == tmp_path / "w" / "silero-vad" / "silero_vad.onnx"


# --- with the model ----------------------------------------------------------------------

@needs_weights
@pytest.mark.parametrize("maker", [silence, fan_noise, chord_tones])
def test_silence_fans_and_music_are_not_speech(gate, maker):
    rng = np.random.default_rng(11)
    decisions = [gate(maker(rng), RATE) for _ in range(16)]
    fractions = [d.speech_fraction for d in decisions]
    assert not any(d.speech_detected for d in decisions), fractions
    assert np.mean(fractions) < 0.05, fractions


@needs_weights
@pytest.mark.skipif(_NO_ESPEAK is not None, reason=f"espeak-ng not available: {_NO_ESPEAK}")
def test_espeak_sentences_are_speech_also_in_fan_noise(gate):
    rng = np.random.default_rng(3)
    clean, noisy = [], []
    for text in ("Kids are talking by the door.", "Where did you put my keys this morning?",
                 "Please charge the battery before we leave tomorrow."):
        for voice in ("en-us", "en+m3", "en-us+f3"):
            audio, rate = espeak_say(text, voice)
            assert 0.8 < audio.size / rate < WINDOW_S, (text, voice, audio.size / rate)
            w = in_window(0.1 * audio / np.abs(audio).max(), rate, rng)
            clean.append(gate(w, rate))
            noise_db = 20 * np.log10(np.sqrt(np.mean((0.1 * audio / np.abs(audio).max()) ** 2)))
            noisy.append(gate(w + fan_noise(rng, WINDOW_S, rate, noise_db - 10.0), rate))
    assert all(d.speech_detected for d in clean), [d.speech_fraction for d in clean]
    assert np.mean([d.speech_fraction for d in clean]) > 0.4
    assert np.mean([d.speech_detected for d in noisy]) >= 0.8, [d.speech_fraction for d in noisy]


@needs_weights
def test_synthetic_voices_rendered_to_files_are_speech(gate, tmp_path):
    # The demo's clips (actor 20, strong intensity) and the highest voice (a woman, fearful).
    takes = [("happy", 20, 2), ("sad", 20, 2), ("angry", 20, 2), ("calm", 20, 2),
             ("neutral", 1, 1), ("fearful", 2, 2), ("surprised", 2, 2)]
    for emotion, actor, intensity in takes:
        frames, audio, rate = render_clip(emotion, actor, size=(64, 64), fps=10.0,
                                          intensity=intensity)
        path = tmp_path / f"Actor_{actor:02d}" / ravdess_name(emotion, intensity, 1, 1, actor)
        path.parent.mkdir(exist_ok=True)
        write_media(path, frames, 10.0, audio, rate, threads=1)
        clip = read_media(path, video=False)
        window = clip.audio[: int(WINDOW_S * clip.sample_rate)]
        d = gate(window, clip.sample_rate)
        assert d.speech_detected, (emotion, actor, intensity, d.speech_fraction)
        assert d.speech_fraction > 0.25, (emotion, actor, intensity, d.speech_fraction)
        # The voice starts 0.35 s into the take at the earliest: the chunks before are not.
        assert d.probabilities[:10].max() < 0.5, (emotion, actor, d.probabilities[:10])


@needs_weights
def test_any_rate_and_stereo_give_the_same_verdict(gate):
    _, audio, rate = render_clip("happy", 20, size=(64, 64), fps=2.0, intensity=2)
    window = audio[: int(WINDOW_S * rate)]
    at_48k = gate(window, rate)
    at_16k = gate(resample(window, rate, VAD_RATE), VAD_RATE)
    at_22k = gate(resample(window, rate, 22050), 22050)
    assert at_48k.n_chunks == at_16k.n_chunks == int(WINDOW_S * VAD_RATE) // CHUNK == 93
    assert np.array_equal(at_48k.probabilities, at_16k.probabilities)  # resampled the same way
    assert abs(at_22k.speech_fraction - at_16k.speech_fraction) < 0.1
    stereo = gate(np.stack([window, window], axis=1), rate)
    assert np.array_equal(stereo.probabilities, at_48k.probabilities)
    assert at_48k.compute_s > 0 and at_48k.probabilities.dtype == np.float32
    assert np.all((at_48k.probabilities >= 0) & (at_48k.probabilities <= 1))


@needs_weights
def test_state_is_carried_streaming_equals_whole_and_batches_equal_singles(gate):
    rng = np.random.default_rng(5)
    _, audio, rate = render_clip("angry", 3, size=(64, 64), fps=2.0)
    speech = resample(audio[: int(WINDOW_S * rate)], rate, VAD_RATE)
    whole = gate.vad.probabilities(speech)
    vad = gate.vad
    vad.reset()
    pieces = np.concatenate([vad.stream(speech[i:i + 700]) for i in range(0, speech.size, 700)])
    assert np.allclose(pieces, whole, atol=1e-6)
    # The recurrent state matters: each chunk judged from a fresh state reads differently.
    fresh = np.concatenate([vad.probabilities(speech[i:i + CHUNK])
                            for i in range(0, whole.size * CHUNK, CHUNK)])
    assert np.abs(fresh - whole).max() > 0.05
    # The model's interface by hand: 64 context samples + 512 new ones, state (2, 1, 128).
    state, context, by_hand = np.zeros((2, 1, 128), np.float32), np.zeros(64, np.float32), []
    for i in range(whole.size):
        x = np.concatenate([context, speech[i * CHUNK:(i + 1) * CHUNK]])[None]
        out, state = vad._session.run(None, {"input": x, "state": state,
                                             "sr": np.array(16000, np.int64)})
        context = x[0, -64:]
        by_hand.append(out[0, 0])
    assert np.allclose(by_hand, whole, atol=1e-6)
    assert np.abs(_no_context(vad, speech, whole.size) - whole).max() > 0.01
    noise = resample(fan_noise(rng), RATE, VAD_RATE)
    batch = gate.batch([audio[: int(WINDOW_S * rate)], fan_noise(rng)[: int(WINDOW_S * rate)]],
                       rate)
    assert np.allclose(batch[0].probabilities, whole, atol=1e-5)
    assert batch[0].speech_detected and not batch[1].speech_detected
    assert not gate(noise, VAD_RATE).speech_detected


@needs_weights
def test_unusable_audio_is_refused(gate):
    with pytest.raises(SpeechGateError, match="NaN"):
        gate(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(SpeechGateError, match="mono"):
        gate(np.zeros((2, 3, 4), np.float32), 16000)
    short = gate(np.zeros(300, np.float32), 16000)
    assert short.n_chunks == 0 and not short.speech_detected


@needs_weights
def test_a_speech_track_scores_the_stream_once_and_judges_windows_from_it(gate):
    _, audio, rate = render_clip("sad", 20, size=(64, 64), fps=2.0, intensity=2)
    speech = resample(audio[: int(WINDOW_S * rate)], rate, VAD_RATE)
    quiet = resample(silence(np.random.default_rng(1), WINDOW_S + 1.0), RATE, VAD_RATE)
    stream = np.concatenate([speech, quiet])  # 3 s of speech, then 4 s of a quiet room
    track = SpeechTrack(gate)
    track.restart(100.0)
    for i in range(0, stream.size, 1600):  # 0.1 s pieces, as a microphone delivers them
        track.add(stream[i:i + 1600])
    first = track.decide(100.0, 100.0 + WINDOW_S)
    assert np.array_equal(first.probabilities, gate(speech, VAD_RATE).probabilities)
    assert first.speech_detected and first.compute_s == 0.0 and track.compute_s > 0
    assert not track.decide(103.5, 106.5).speech_detected
    assert track.decide(100.01, 100.1).n_chunks == 2  # only chunks wholly inside: 1 and 2
    assert track.decide(106.9, 110.0).n_chunks == 2  # up to the last chunk scored (6.976 s)
    assert track.decide(107.0, 110.0).n_chunks == 0  # not scored yet
    short = SpeechTrack(gate, keep_s=2.0)
    short.add(stream)
    assert short.decide(0.0, WINDOW_S).n_chunks == 0  # forgotten
    assert short.decide(5.0, 7.0).n_chunks == int(2.0 * VAD_RATE) // CHUNK - 1
