"""Signal checks and resampling shared by every stage: the one place a signal's form is validated.

Nothing here knows about codecs: :mod:`codecbench.signal.audio` and :mod:`codecbench.signal.frontends` use it as
much as :mod:`codecbench.codecs` does.
"""
from __future__ import annotations

import numpy as np
import soxr

from codecbench.errors import DataError

#: The sample rates (Hz) any stage accepts.
MIN_RATE, MAX_RATE = 8000, 384000


class SignalError(DataError, ValueError):
    """A signal or sample rate that no stage can take."""


def check_signal(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Validate a mono signal and return it as contiguous float32.

    Parameters
    ----------
    signal : np.ndarray
        Samples of shape ``(n,)``, floats in [-1, 1].
    sample_rate : int
        Its rate in Hz, within :data:`MIN_RATE`-:data:`MAX_RATE`.

    Raises
    ------
    SignalError
        Naming what is wrong: the shape, emptiness, dtype, NaN/Inf samples or the rate.
    """
    x = np.asarray(signal)
    if x.ndim != 1:
        raise SignalError(f"expected a mono signal of shape (n,), got shape {x.shape}; downmix first")
    if x.size == 0:
        raise SignalError("the signal is empty (0 samples)")
    if not np.issubdtype(x.dtype, np.floating):
        raise SignalError(f"expected float samples in [-1, 1], got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise SignalError(f"the signal has {int(np.sum(~np.isfinite(x)))} NaN/Inf samples")
    if not isinstance(sample_rate, (int, np.integer)) or not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise SignalError(f"sample_rate must be an integer number of Hz in {MIN_RATE}-{MAX_RATE}, got {sample_rate!r}")
    return np.ascontiguousarray(x, dtype=np.float32)


def resample(signal: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited, delay-compensated resampling (soxr, high quality); the signal itself when the rates agree."""
    if orig_sr == target_sr:
        return signal
    return soxr.resample(signal, orig_sr, target_sr, quality="HQ").astype(np.float32)


def fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    """``signal`` cut or zero-padded at its end to ``length`` samples."""
    if len(signal) >= length:
        return signal[:length]
    return np.concatenate([signal, np.zeros(length - len(signal), dtype=signal.dtype)])


#: A band survives while its energy stays within this many dB of the original's.
THRESHOLD_DB = 30.0
#: A band of the source counts as present while its energy is within this many dB of the source's strongest band.
SOURCE_RANGE_DB = 60.0


def _band_energies(signals, sample_rate) -> tuple[np.ndarray, np.ndarray]:
    """Summed power per 1/3-octave band (upper edges, energies) over several signals, each at its own rate
    (``sample_rate``: one for all, or one per signal); bands up to the lowest Nyquist frequency among them."""
    rates = ([int(sample_rate)] * len(signals) if isinstance(sample_rate, (int, np.integer))
             else [int(r) for r in sample_rate])
    edges = 20.0 * 2 ** (np.arange(0, 31) / 3)
    edges = edges[edges < min(rates, default=8000) / 2]
    total = np.zeros(len(edges) - 1)
    for x, rate in zip(signals, rates):
        # a Hann window: the clip's abrupt start and end would otherwise leak ~-50 dB into every band
        power = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x)))) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / rate)
        total += [power[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])]
    return edges[1:], total


def measure_bandwidth(sources, coded, sample_rate) -> dict:
    """Where the coded clips stop carrying the sources' signal, and where the sources themselves stop (Hz).

    Bands are 1/3 octave wide. The coded bandwidth is the upper edge of the last band, counting up from the
    lowest, before the first band the source has (within :data:`SOURCE_RANGE_DB` of its strongest) whose coded
    energy falls more than :data:`THRESHOLD_DB` below the source's: a codec's low-pass. Energy a codec adds
    above its cut-off (noise, aliasing) does not count as kept.
    """
    upper, ref = _band_energies(sources, sample_rate)
    _, out = _band_energies(coded, sample_rate)
    present = 10 * np.log10(ref + 1e-20) > 10 * np.log10(ref.max() + 1e-20) - SOURCE_RANGE_DB
    ratio_db = 10 * np.log10((out + 1e-20) / (ref + 1e-20))
    bandwidth = 0.0
    for edge, here, ratio in zip(upper, present, ratio_db):
        if not here:
            continue  # nothing of the source to keep here: it neither extends nor ends the bandwidth
        if ratio < -THRESHOLD_DB:
            break
        bandwidth = float(edge)
    return {"bandwidth_hz": bandwidth, "source_bandwidth_hz": float(upper[present].max()) if present.any() else 0.0,
            "clips": len(sources)}
