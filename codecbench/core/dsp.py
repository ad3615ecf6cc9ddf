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


#: Width of the analysis bands (a ratio of their edges): 1.5 %, so a codec's low-pass is found within 2 % (LAME's
#: cut at 8.25 kHz fell inside the 1/3-octave band 8.1-10.2 kHz that the bands of codecbench 0.2 used).
BAND_RATIO = 1.015
#: A low-pass's edge: where the coded level falls this many dB below the passband's just under the cut.
EDGE_DB = 6.0
#: Bands whose median ratio decides (one band's hole in the coded spectrum, a codec's spectral gap, is no cut).
MEDIAN_BANDS = 5


def _band_energies(signals, sample_rate) -> tuple[np.ndarray, np.ndarray]:
    """Summed power per narrow band (upper edges, energies; :data:`BAND_RATIO` wide, from 50 Hz) over several
    signals, each at its own rate (``sample_rate``: one for all, or one per signal); bands up to the lowest Nyquist
    frequency among them."""
    rates = ([int(sample_rate)] * len(signals) if isinstance(sample_rate, (int, np.integer))
             else [int(r) for r in sample_rate])
    nyquist = min(rates, default=8000) / 2
    edges = 50.0 * BAND_RATIO ** np.arange(0, int(np.log(nyquist / 50.0) / np.log(BAND_RATIO)) + 1)
    total = np.zeros(len(edges) - 1)
    for x, rate in zip(signals, rates):
        # a Hann window: the clip's abrupt start and end would otherwise leak ~-50 dB into every band
        power = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x)))) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / rate)
        index = np.searchsorted(edges, freqs, side="right") - 1  # the band of each bin (-1 / len-1: outside)
        inside = (index >= 0) & (index < len(total))
        total += np.bincount(index[inside], weights=power[inside], minlength=len(total))
    return edges[1:], total


def measure_bandwidth(sources, coded, sample_rate) -> dict:
    """Where the coded clips stop carrying the sources' signal, and where the sources themselves stop (Hz).

    Bands are :data:`BAND_RATIO` wide (1.5 %). The coded bandwidth is the upper edge of the last band, counting up
    from the lowest, before the first band the source has (within :data:`SOURCE_RANGE_DB` of its strongest) where
    the coded energy stays more than :data:`THRESHOLD_DB` below the source's over the median of
    :data:`MEDIAN_BANDS` neighbouring bands centred on it (a hole a codec leaves in one band is not taken for a
    cut); the cut's edge is then where the coded level falls :data:`EDGE_DB` below its passband just under it, so
    a codec's low-pass is found within 2 %. Energy a codec adds above its cut-off (noise, aliasing) does not count
    as kept.
    """
    upper, ref = _band_energies(sources, sample_rate)
    _, out = _band_energies(coded, sample_rate)
    filled = ref > 0  # bands that hold an FFT bin of every clip (the lowest may hold none)
    present = filled & (10 * np.log10(ref + 1e-30) > 10 * np.log10(ref.max() + 1e-30) - SOURCE_RANGE_DB)
    ratio_db = 10 * np.log10((out + 1e-30) / (ref + 1e-30))
    usable = np.flatnonzero(present)
    bandwidth = 0.0
    half = MEDIAN_BANDS // 2
    cut = None
    for position, band in enumerate(usable):
        # the median of this band and its present neighbours: a cut is where most of them are cut
        window = ratio_db[usable[max(0, position - half):position + half + 1]]
        if np.median(window) < -THRESHOLD_DB:
            cut = position
            break
        bandwidth = float(upper[band])
    if cut is not None and cut > 0:
        # the cut's edge: down the filter's slope to where the coded level is within EDGE_DB of the passband's
        # just below it (LAME's -3..-8 dB passband at 32 kbps; the slope's foot lies a band or two above its edge)
        passband = float(np.median(ratio_db[usable[max(0, cut - 15):max(1, cut - 4)]]))
        edge = cut
        while edge > 0 and ratio_db[usable[edge - 1]] < passband - EDGE_DB:
            edge -= 1
        bandwidth = float(upper[usable[edge - 1]]) if edge > 0 else 0.0
    return {"bandwidth_hz": bandwidth, "source_bandwidth_hz": float(upper[present].max()) if present.any() else 0.0,
            "clips": len(sources)}


#: The mel analysis of :func:`signal_change` (Codec-SUPERB's mel distance: 80 bands, 1024-sample frames at 16 kHz
#: scaled to the clip's rate): what is compared is what a log-mel front-end sees.
MEL_BANDS, MEL_FRAME_S = 80, 0.064


def signal_change(sources, coded, sample_rate) -> dict:
    """How far coded clips are from their sources, as a codec benchmark reports it (means over the clips, each at
    its own rate, coded and source aligned and of one length):

    - ``mel_distance_db``: the mean absolute log-mel difference (dB), 80 mel bands;
    - ``snr_db``: signal-to-noise ratio of the coded clip, the difference to the source counted as noise;
    - ``si_sdr_db``: scale-invariant signal-to-distortion ratio (Le Roux et al. 2019), which a gain change does not
      lower.

    A clip identical to its source has a distance of 0 and ratios capped at 100 dB (so a mean stays finite).
    """
    import librosa

    rates = ([int(sample_rate)] * len(sources) if isinstance(sample_rate, (int, np.integer))
             else [int(r) for r in sample_rate])
    mel, snr, si_sdr = [], [], []
    for x, y, rate in zip(sources, coded, rates):
        x = np.asarray(x, dtype=np.float64)
        y = fit_length(np.asarray(y, dtype=np.float64), len(x))
        n_fft = int(2 ** np.ceil(np.log2(MEL_FRAME_S * rate)))
        spectra = [librosa.feature.melspectrogram(y=s, sr=rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=MEL_BANDS,
                                                  power=2.0) for s in (x, y)]
        floor = 1e-10 * max(float(spectra[0].max()), 1e-20)  # 100 dB below the clip's peak: silence is no distance
        mel.append(float(np.mean(np.abs(10 * np.log10(spectra[0] + floor) - 10 * np.log10(spectra[1] + floor)))))
        noise = float(np.sum((x - y) ** 2))
        snr.append(_ratio_db(float(np.sum(x ** 2)), noise))
        alpha = float(np.dot(y, x) / max(np.dot(x, x), 1e-20))
        target = alpha * x
        si_sdr.append(_ratio_db(float(np.sum(target ** 2)), float(np.sum((y - target) ** 2))))
    return {"mel_distance_db": float(np.mean(mel)), "snr_db": float(np.mean(snr)), "si_sdr_db": float(np.mean(si_sdr))}


def _ratio_db(signal_power: float, noise_power: float, cap: float = 100.0) -> float:
    if noise_power <= signal_power * 10 ** (-cap / 10):
        return cap
    return float(10 * np.log10(max(signal_power, 1e-30) / noise_power))
