"""Reading source audio into the form every stage expects: mono float32 at 44.1 kHz.

Each treatment applied (downmix, resample, integer-to-float) is reported back in a list of
notes so callers can log it; anything that cannot be treated (an unreadable or empty file,
NaN/Inf samples) raises :class:`AudioError` naming the file.
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from .dsp import resample
from .errors import CodecbenchError

TARGET_SR = 44100


class AudioError(CodecbenchError, ValueError):
    """Source audio that cannot be used; the message names the file."""


def read_audio(path: str | os.PathLike, target_sr: int = TARGET_SR) -> tuple[np.ndarray, list[str]]:
    """Return ``(signal, notes)``: mono float32 at ``target_sr`` and the treatments applied."""
    notes: list[str] = []
    try:
        data, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    bad = ~np.isfinite(data)
    if bad.any():
        raise AudioError(f"{path}: {int(bad.sum())} NaN/Inf samples; the file is damaged")
    if data.shape[1] > 1:
        notes.append(f"downmixed {data.shape[1]} channels to mono")
        signal = data.mean(axis=1)
    else:
        signal = data[:, 0]
    if sr != target_sr:
        notes.append(f"resampled {sr} Hz -> {target_sr} Hz")
        signal = resample(np.ascontiguousarray(signal), sr, target_sr)
    return np.ascontiguousarray(signal, dtype=np.float32), notes
