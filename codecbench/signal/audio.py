"""Reading source audio into the form every stage expects: mono float32, at the rate it was recorded.

The codec round trip runs at the source's own rate (a codec that cannot take it resamples to the nearest rate
it can and back, and says so); front-ends resample afterwards to their own rate. Each treatment applied
(downmix, resample) is reported back in a list of notes so callers can log it; anything that cannot be
treated (an unreadable or empty file, NaN/Inf samples) raises :class:`AudioError` naming the file.
"""
from __future__ import annotations

import os
import stat

import numpy as np
import soundfile as sf

from codecbench.core.dsp import resample
from codecbench.errors import DataError

#: The rate of the baseline's features, and what :func:`read_audio` resamples to unless told otherwise.
TARGET_SR = 44100


class AudioError(DataError, ValueError):
    """Source audio that cannot be used; the message names the file."""


def read_audio(path: str | os.PathLike, target_sr: int = TARGET_SR) -> tuple[np.ndarray, list[str]]:
    """Return ``(signal, notes)``: mono float32 at ``target_sr`` and the treatments applied."""
    signal, sr, notes = read_source(path)
    if sr != target_sr:
        notes.append(f"resampled {sr} Hz -> {target_sr} Hz")
        signal = resample(signal, sr, target_sr)
    return np.ascontiguousarray(signal, dtype=np.float32), notes


def source_rate(path: str | os.PathLike, _memo: dict = {}) -> int:
    """The sample rate of an audio file, from its header, remembered per (path, size, mtime) within the process."""
    st = os.stat(path)
    memo_key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if memo_key not in _memo:
        check_source_file(path)
        try:
            _memo[memo_key] = int(sf.info(os.fspath(path)).samplerate)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"{path}: cannot read audio ({exc})") from None
    return _memo[memo_key]


#: What happens to a source whose samples exceed full scale (a float WAV with peak 40): one policy for every
#: reader, applied before any coding. Codecs treat such input each their own way (MP3 kept a peak of 34.8, AAC
#: 14.1, SBC clipped at 1.0, WMA failed), so the conditions would no longer compare one signal; scaling the clip to
#: peak 1.0 keeps its content and gives every condition, the original included, the same input.
LEVEL_POLICY = "sources above full scale are scaled to peak 1.0 before coding, identically for every condition"
#: Note prefix of a scaled source (collected into the run's metadata).
SCALED_NOTE = "above full scale"
#: Largest source file read (a 10-s TAU clip is 2.6 MB; an hour of 96-kHz 24-bit stereo 2.1 GB): a larger file, or
#: a link to a device, is not a clip.
MAX_SOURCE_BYTES = 4 << 30


def check_source_file(path: str | os.PathLike) -> None:
    """A clip is a regular file (after resolving links) of bounded size; a device, FIFO or folder would hang or
    exhaust a reader. Raises :class:`AudioError` naming the file."""

    try:
        st = os.stat(path)
    except OSError as exc:
        raise AudioError(f"{path}: cannot read audio ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path}: not a regular file (a device, FIFO or folder, perhaps through a link); only "
                         "audio files are clips")
    if st.st_size > MAX_SOURCE_BYTES:
        raise AudioError(f"{path}: {st.st_size / 2**30:.1f} GiB, more than the {MAX_SOURCE_BYTES / 2**30:.0f} GiB "
                         "a clip may have; split it into clips first")


def read_source(path: str | os.PathLike) -> tuple[np.ndarray, int, list[str]]:
    """Return ``(signal, sample_rate, notes)``: mono float32 at the file's own rate, and the treatments applied
    (a downmix; a scaling to full scale, :data:`LEVEL_POLICY`)."""
    notes: list[str] = []
    check_source_file(path)
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
    peak = float(np.max(np.abs(signal)))
    if peak > 1.0:
        signal = signal / peak
        notes.append(f"peak {peak:.3g} {SCALED_NOTE}: scaled by {1 / peak:.4g} ({-20 * np.log10(peak):.1f} dB) "
                     "before coding, for every condition")
    return np.ascontiguousarray(signal, dtype=np.float32), int(sr), notes
