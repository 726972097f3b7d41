import numpy as np
import pytest

from avemo_ros.audio_features import (AudioFeatureConfig, audio_features, resample, spectrogram,
                                      to_mono)

CFG = AudioFeatureConfig()


def tone(freq, rate, seconds=3.0, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_shape_is_seed_200_by_300():
    assert spectrogram(tone(440, 16000)).shape == (200, 300) == CFG.shape


def test_peak_bin_follows_the_tone_frequency():
    for freq in (300.0, 1000.0, 3000.0):
        spec = spectrogram(tone(freq, 16000))
        peak_bin = int(np.argmax(spec[:, 150])) + 1  # row 0 is FFT bin 1
        assert abs(peak_bin * 16000 / CFG.n_fft - freq) <= 16000 / CFG.n_fft


def test_any_rate_and_channels_give_the_same_features():
    mono16 = tone(1000, 16000)
    stereo48 = np.stack([tone(1000, 48000)] * 2, axis=1)
    a = audio_features(mono16, 16000)
    b = audio_features(stereo48, 48000)
    assert a.shape == b.shape
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_standardised_and_gain_invariant():
    noise = np.random.default_rng(0).standard_normal(48000).astype(np.float32)
    x = tone(500, 16000) + 0.01 * noise
    a, b = spectrogram(x), spectrogram(10 * x)
    assert abs(a.mean()) < 1e-4 and abs(a.std() - 1) < 1e-3
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_short_audio_is_padded_and_silence_is_finite():
    assert np.isfinite(spectrogram(np.zeros(1000, np.float32))).all()
    assert spectrogram(tone(440, 16000, seconds=1.0)).shape == CFG.shape


def test_resample_preserves_frequency_and_length():
    y = resample(tone(1000, 44100, seconds=1.0), 44100, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) - 1000) <= 1


def test_resample_keeps_channels():
    stereo = np.stack([tone(100, 48000, 1.0), -tone(100, 48000, 1.0)], axis=1)
    out = resample(stereo, 48000, 16000)
    assert out.shape == (16000, 2) and out.dtype == np.float32
    expected = 0.5 * np.sin(2 * np.pi * 100 * np.arange(16000) / 16000)
    np.testing.assert_allclose(out[100:-100, 0], expected[100:-100], atol=0.01)
    np.testing.assert_allclose(out[:, 1], -out[:, 0], atol=1e-6)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        to_mono(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        resample(np.zeros(10), 0, 16000)


FRAME_CFG = AudioFeatureConfig(kind="frame_features", n_frames=20)
SUMMARY_CFG = AudioFeatureConfig(kind="summary_features", n_fft=2048, hop_length=512)


@pytest.mark.parametrize("cfg, shape", [(CFG, (200, 300)), (FRAME_CFG, (180, 20)),
                                        (SUMMARY_CFG, (65,))])
def test_every_kind_has_its_declared_shape_and_is_finite_on_silence(cfg, shape):
    assert cfg.shape == shape
    for x in (tone(440, 16000), np.zeros(1000, np.float32)):
        f = audio_features(x, 16000, cfg)
        assert f.shape == shape and f.dtype == np.float32 and np.isfinite(f).all()


def test_unknown_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown audio feature kind 'mel'"):
        AudioFeatureConfig(kind="mel")


@pytest.mark.parametrize("freq, pitch_class", [(440.0, 9), (261.63, 0), (392.0, 7)])
def test_chroma_of_a_tone_peaks_at_its_pitch_class(freq, pitch_class):
    f = audio_features(tone(freq, 16000), 16000, SUMMARY_CFG)
    chroma = f[40:52]
    assert int(np.argmax(chroma)) == pitch_class and chroma.max() > 3 * np.median(chroma)


def test_spectral_contrast_is_higher_for_a_tone_than_for_noise():
    noise = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    contrast_tone = audio_features(tone(440, 16000), 16000, SUMMARY_CFG)[52:59]
    contrast_noise = audio_features(noise, 16000, SUMMARY_CFG)[52:59]
    assert contrast_tone[2] > contrast_noise[2] + 1.0  # the 400-800 Hz band holds the tone


def test_frame_features_follow_a_change_over_time():
    x = np.concatenate([tone(300, 16000, seconds=1.5), tone(2000, 16000, seconds=1.5)])
    f = audio_features(x, 16000, FRAME_CFG)
    mel = f[52:]  # log-mel block (128 bands, low to high)
    early, late = mel[:, :8].mean(axis=1), mel[:, -8:].mean(axis=1)
    assert np.argmax(early) < np.argmax(late)


def test_mfcc_block_is_the_dct_of_log_mel():
    from scipy.fft import dct
    from avemo_ros.audio_features import _mel_chroma, power_spectrum
    x = tone(440, 16000)
    logmel, mfcc, _ = _mel_chroma(power_spectrum(x, SUMMARY_CFG), SUMMARY_CFG)
    np.testing.assert_allclose(mfcc, dct(logmel, norm="ortho", axis=1)[:, :40], rtol=1e-4,
                               atol=1e-3)
