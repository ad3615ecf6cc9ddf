import librosa
import numpy as np
import pytest

from codecbench.signal import features


def reference_features(y, sr=44100):
    """An independent computation of the baseline recipe, loop by loop."""
    stft = librosa.stft(y.astype(np.float64), n_fft=2048, hop_length=1024, center=True, pad_mode="reflect")
    basis = librosa.filters.mel(sr=sr, n_fft=2048, n_mels=128, fmin=0, fmax=sr / 2, htk=True, norm=None)
    logmel = np.log(basis @ (np.abs(stft) ** 2) + 1e-8)
    x = (logmel - logmel.min()) / (logmel.max() - logmel.min())

    def delta(a):
        out = np.zeros((a.shape[0], a.shape[1] - 4))
        for t in range(2, a.shape[1] - 2):
            out[:, t - 2] = (a[:, t + 1] - a[:, t - 1]) / 10 + (a[:, t + 2] - a[:, t - 2]) / 5
        return out

    d1 = delta(x)
    d2 = delta(d1)
    return np.stack([x[:, 4:-4], d1[:, 2:-2], d2], axis=-1)


def test_ten_second_clip_gives_the_baselines_shape():
    y = np.random.default_rng(0).standard_normal(441000).astype(np.float32) * 0.1
    assert features.extract(y).shape == (128, 423, 3)


def test_matches_an_independent_librosa_computation(scene):
    ours = features.extract(scene)
    ref = reference_features(scene)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-6)
    assert ours[..., 0].min() >= 0 and ours[..., 0].max() <= 1


def test_wrong_rate_and_too_short_are_refused():
    with pytest.raises(ValueError, match="expects 44100 Hz"):
        features.extract(np.zeros(48000, dtype=np.float32), 48000)
    with pytest.raises(ValueError, match="at least 9"):
        features.extract(np.zeros(2000, dtype=np.float32))
