"""The baseline's log-mel features, exactly as the DCASE 2020 FCNN of Hu et al. was trained on.

Power mel spectrogram (n_fft 2048, hop 1024, 128 HTK mel bands from 0 Hz to sr/2, no filter
normalisation, centred frames with reflect padding as in the librosa the baseline used),
``log(S + 1e-8)``, min-max scaling of each clip to [0, 1], then the 5-frame delta applied
twice; channels are (static[4:-4], delta[2:-2], delta-delta). A 10-s clip gives (128, 423, 3).

The cache keeps only the scaled static log-mel (:func:`static`, float32, a third of the
stacked features); :func:`with_deltas` rebuilds the three channels on load, and
:func:`extract` is exactly ``with_deltas(static(x))``, so cached and fresh features agree bit
for bit.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from codecbench.errors import ArgumentError

#: The recipe's parameters; part of every feature cache key.
RECIPE: dict[str, Any] = {"name": "hu2020-logmel-deltas", "version": 2, "sample_rate": 44100, "n_fft": 2048,
          "hop_length": 1024, "n_mels": 128, "fmin": 0.0, "fmax": None, "htk": True, "norm": None,
          "log_offset": 1e-8, "center": True, "pad_mode": "reflect"}


def log_mel(signal: np.ndarray, sample_rate: int = 44100, n_fft: int = 2048, hop_length: int = 1024,
            n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None, log_offset: float = 1e-8,
            htk: bool = True) -> np.ndarray:
    """``log(mel power + offset)``, shape (n_mels, frames)."""
    import librosa  # slow to import: only where a log-mel is computed, so front-end descriptions stay cheap

    # float64 throughout: the result then barely depends on how BLAS splits the work across threads
    mel = librosa.feature.melspectrogram(
        y=np.asarray(signal, dtype=np.float64), sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
        n_mels=n_mels, fmin=fmin, fmax=fmax if fmax is not None else sample_rate / 2, htk=htk, norm=None,
        power=2.0, center=True, pad_mode="reflect")
    return np.log(mel + log_offset)


def minmax_scale(x: np.ndarray) -> np.ndarray:
    """Scale a whole clip to [0, 1]; a constant clip becomes all zeros."""
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def deltas(x: np.ndarray) -> np.ndarray:
    """The baseline's 5-frame delta along time, valid frames only (T - 4):
    ``d[t] = (x[t+1] - x[t-1]) / 10 + (x[t+2] - x[t-2]) / 5``."""
    return (x[:, 3:-1] - x[:, 1:-3]) / 10.0 + (x[:, 4:] - x[:, :-4]) / 5.0


def extract(signal: np.ndarray, sample_rate: int = 44100) -> np.ndarray:
    """Features of a mono 44.1 kHz clip: float32 array (128, T, 3), T = frames - 8."""
    return with_deltas(static(signal, sample_rate))


def with_deltas(static_logmel: np.ndarray) -> np.ndarray:
    """(128, frames) scaled static log-mel -> (128, frames - 8, 3): static, delta, delta-delta (float32).

    The deltas are computed in float64 from the float32 static, so the result depends only on what the
    cache stores.
    """
    s = np.asarray(static_logmel, dtype=np.float64)
    d1 = deltas(s)
    d2 = deltas(d1)
    return np.stack([s[:, 4:-4], d1[:, 2:-2], d2], axis=-1).astype(np.float32)


def static(signal: np.ndarray, sample_rate: int = 44100) -> np.ndarray:
    """The clip's log-mel, min-max scaled to [0, 1]: float32 (128, frames); what the cache stores."""
    x = np.asarray(signal)
    if x.ndim != 1:
        raise ArgumentError(f"expected a mono signal of shape (n,), got {x.shape}")
    if sample_rate != RECIPE["sample_rate"]:
        raise ArgumentError(f"the feature recipe expects {RECIPE['sample_rate']} Hz audio, got {sample_rate} Hz; "
                         "resample first (codecbench.signal.audio.read_audio does)")
    frames = 1 + len(x) // RECIPE["hop_length"]
    if frames < 9:
        raise ArgumentError(f"a clip of {len(x)} samples gives {frames} frames; the deltas need at least 9 "
                         f"(>= {8 * RECIPE['hop_length']} samples)")
    return minmax_scale(log_mel(x, sample_rate)).astype(np.float32)


def n_frames(n_samples: int) -> int:
    """Time frames of the feature for a clip of ``n_samples`` samples."""
    return 1 + n_samples // RECIPE["hop_length"] - 8
