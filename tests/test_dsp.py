"""Signal helpers: the bandwidth measurement behind the report's codec facts."""
import numpy as np
import pytest

from codecbench import codecs
from codecbench.core.dsp import SignalError, check_signal, measure_bandwidth, resample

SR = 44100


def _noise(seed: int, seconds: float = 2.0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def _band_limited(x: np.ndarray, rate: int) -> np.ndarray:
    """What a channel at ``rate`` can carry: nothing above rate / 2."""
    return resample(resample(x, SR, rate), rate, SR)[:len(x)]


def test_a_low_pass_is_measured_where_it_cuts():
    sources = [_noise(s) for s in range(3)]
    narrow = measure_bandwidth(sources, [_band_limited(x, 16000) for x in sources], SR)
    assert 6000 < narrow["bandwidth_hz"] <= 8200 and narrow["source_bandwidth_hz"] > 16000
    assert measure_bandwidth(sources, sources, SR)["bandwidth_hz"] == narrow["source_bandwidth_hz"]


@pytest.mark.parametrize("rate, kbps", [(22050, 32), (44100, 32), (44100, 64), (44100, 128), (48000, 64)])
def test_a_low_pass_inside_a_third_octave_is_found_within_two_percent(rate, kbps):
    """LAME's own low-pass (lame_get_lowpassfreq) is the known answer: mp3@32 on 22.05-kHz audio cuts at 8.25 kHz,
    inside the 1/3-octave band 8.1-10.2 kHz, which the codec facts used to report as kept."""
    from codecbench.codecs import lame

    from . import optional

    if lame.library()[0] is None:
        optional.missing("lame", "no system libmp3lame (its low-pass is the known answer)")
    sources = [(0.1 * np.random.default_rng(s).standard_normal(rate * 3)).astype(np.float32) for s in range(3)]
    coded = [codecs.roundtrip(x, rate, f"mp3@{kbps}") for x in sources]
    expected = lame.lowpass_hz(rate, kbps)
    assert expected < 0.95 * rate / 2  # a real low-pass, below Nyquist
    assert measure_bandwidth(sources, coded, rate)["bandwidth_hz"] == pytest.approx(expected, rel=0.02)


def test_a_codec_cannot_keep_more_than_the_data_has():
    """Data with nothing above 11 kHz: the source's bandwidth says so and bounds every codec's."""
    sources = [_band_limited(_noise(s), 22050) for s in range(3)]
    for condition in ("opus@64", "aac@64", "mp3@32"):
        facts = measure_bandwidth(sources, [codecs.roundtrip(x, SR, condition) for x in sources], SR)
        assert facts["source_bandwidth_hz"] <= 11_025 * 1.015  # the upper edge of the band holding 11 kHz
        assert facts["bandwidth_hz"] <= facts["source_bandwidth_hz"]


def test_noise_a_codec_adds_above_its_cut_off_is_not_kept():
    sources = [_band_limited(_noise(s), 16000) for s in range(2)]
    added = [x + 0.01 * _noise(9)[:len(x)] for x in sources]  # broadband noise where the source has little
    assert measure_bandwidth(sources, added, SR)["bandwidth_hz"] <= measure_bandwidth(sources, sources, SR)[
        "source_bandwidth_hz"]


def test_signals_are_checked_with_named_errors():
    with pytest.raises(SignalError, match="mono"):
        check_signal(np.zeros((2, 10), np.float32), SR)
    with pytest.raises(SignalError, match="NaN"):
        check_signal(np.array([0.0, np.nan], np.float32), SR)


def test_signal_change_known_answers():
    """Mel distance, SNR and SI-SDR of the codec facts: an identical clip is no change; a gain of 1/2 costs 6 dB of
    SNR but no SI-SDR and a flat 6-dB mel distance; noise at 20 dB SNR reads back as 20 dB."""
    from codecbench.core.dsp import signal_change

    rng = np.random.default_rng(0)
    x = rng.standard_normal(32000) * 0.1
    same = signal_change([x], [x], 16000)
    assert same == {"mel_distance_db": 0.0, "snr_db": 100.0, "si_sdr_db": 100.0}
    half = signal_change([x], [x / 2], 16000)
    assert half["snr_db"] == pytest.approx(20 * np.log10(2), abs=1e-6) and half["si_sdr_db"] == 100.0
    assert half["mel_distance_db"] == pytest.approx(20 * np.log10(2), abs=0.01)
    noise = rng.standard_normal(32000)
    noise *= np.sqrt(np.sum(x ** 2) / np.sum(noise ** 2) / 100)  # exactly 20 dB below the signal
    noisy = signal_change([x, x], [x + noise, x + noise], [16000, 16000])
    assert noisy["snr_db"] == pytest.approx(20.0, abs=1e-6) and noisy["si_sdr_db"] == pytest.approx(20.0, abs=0.1)
