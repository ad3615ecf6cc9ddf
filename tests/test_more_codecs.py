"""Bluetooth, telephony and broadcast codecs: aligned, same length, their bit rate, clear range errors, repeatable.

Alignment is measured at the codec's own rate against the equally band-limited input (the input resampled to
the codec rate), so an 8 kHz codec is judged on what it can carry.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.signal

from codecbench import codecs
from codecbench.codecs.matrix import expand_sweep, load_matrix, parse_matrix
from codecbench.datasets import synth_scene

from . import optional

#: condition -> expected achieved kbps (nominal, or what the stream carries: aptX codes two channels)
NEW = {"aptx": 352.8, "aptx-hd": 529.2, "lc3@64": 64, "lc3@24": 24, "amr-nb@12.2": 12.2, "amr-nb@4.75": 4.75,
       "g711-mulaw": 64, "g711-alaw": 64, "g722@64": 64, "g726@32": 32, "g726@16": 16, "g723-1@6.3": 6.3,
       "mp2@128": 128, "mp2@64": 64, "ac3@96": 96, "eac3@64": 64, "wma@64": 64, "vorbis@64": None}


def _voiced(sr: int, seconds: float = 2.0) -> np.ndarray:
    """A speech-like test signal (a glottal pulse train through three formants, syllable envelope), which speech
    codecs (AMR) reproduce well enough for cross-correlation; the others get the synthetic scene too."""
    t = np.arange(int(sr * seconds)) / sr
    phase = np.cumsum((120 + 30 * np.sin(2 * np.pi * 0.7 * t)) / sr)
    x = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    for fc, bw in ((700, 130), (1220, 70), (2600, 160)):
        r, th = np.exp(-np.pi * bw / sr), 2 * np.pi * fc / sr
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], x)
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _lag(decoded, reference) -> int:
    cc = scipy.signal.correlate(decoded, reference, mode="full", method="fft")
    return int(np.argmax(cc)) - (len(reference) - 1)


def _available(name):
    optional.codec(name)


@pytest.mark.parametrize("name", list(NEW))
def test_aligned_within_one_sample_at_the_codec_rate_same_length(name):
    _available(name)
    cond = codecs.parse_condition(name)
    rate = codecs.codec_rate(cond, 44100)
    signal = _voiced(rate) if cond.codec == "amr-nb" else synth_scene(3, np.random.default_rng(7), 2.0, rate)
    result = codecs.encode_decode(signal, rate, cond)
    assert result.signal.dtype == np.float32 and result.signal.shape == signal.shape
    assert abs(_lag(result.signal, signal)) <= 1, name
    assert not np.array_equal(result.signal, signal)


@pytest.mark.parametrize("name", ["aptx", "lc3@64", "amr-nb@12.2", "g722@64", "mp2@128", "ac3@96", "wma@64"])
def test_from_44k1_through_the_native_rate_and_back(name):
    _available(name)
    x = synth_scene(5, np.random.default_rng(3), 2.0, 44100)
    result = codecs.encode_decode(x, 44100, name)
    rate = result.codec_sample_rate
    limited = codecs.resample(codecs.resample(x, 44100, rate), rate, 44100)  # what a codec at `rate` can carry
    assert result.signal.shape == x.shape
    # at 44.1 kHz one sample of an 8 kHz codec is 5.5 samples
    assert abs(_lag(result.signal, limited)) <= max(1, int(np.ceil(44100 / rate))), (name, rate)


@pytest.mark.parametrize("name,kbps", [(n, k) for n, k in NEW.items() if k is not None])
def test_achieved_bit_rate_is_the_nominal_one(name, kbps):
    _available(name)
    result = codecs.encode_decode(synth_scene(1, np.random.default_rng(1), 4.0, 44100), 44100, name)
    assert abs(result.achieved_kbps - kbps) <= 0.15 * kbps, (name, result.achieved_kbps)


def test_vorbis_quality_follows_the_nominal_rate():
    _available("vorbis@64")
    x = synth_scene(2, np.random.default_rng(2), 4.0, 44100)
    rates = [codecs.encode_decode(x, 44100, f"vorbis@{k}").achieved_kbps for k in (32, 64, 128)]
    assert rates[0] < rates[1] < rates[2]
    vorbis = codecs.CODECS["vorbis"]
    assert vorbis.quality_for(64) == 3 and vorbis.quality_for(32) == 1


@pytest.mark.parametrize("name", list(NEW))
def test_repeats_are_bit_identical(name):
    _available(name)
    x = synth_scene(4, np.random.default_rng(4), 1.0, 44100)
    a, b = codecs.encode(x, 44100, name), codecs.encode(x, 44100, name)
    assert a.payload == b.payload and np.array_equal(codecs.decode(a), codecs.decode(b))


@pytest.mark.parametrize("name,fragment", [
    ("amr-nb@13", "amr-nb codes only at 4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2 kbps"),
    ("g726@20", "g726 codes only at 16, 24, 32, 40 kbps"),
    ("aptx@352", "aptx has one bit rate (352.8 kbps); name it 'aptx' without @kbps"),
    ("g711-mulaw@64", "name it 'g711-mulaw' without @kbps"),
    ("g722@48", "outside the valid range of g722 (64-64 kbps"),
    ("lc3@400", "outside the valid range of lc3 (16-320 kbps"),
    ("mp2@250", "mp2 codes only at"),
])
def test_invalid_parameters_are_clear_errors(name, fragment):
    with pytest.raises(codecs.ConditionError, match=re.escape(fragment)):
        codecs.parse_condition(name)


def test_names_round_trip():
    for name in ["aptx", "aptx-hd", "g711-alaw", "amr-nb@12.2", "amr-nb@4.75", "lc3@64", "vorbis@64"]:
        assert codecs.parse_condition(name).name == name


def test_extended_matrix_has_at_least_eight_new_families_available():
    matrix = load_matrix("extended")
    assert set(matrix.categories) == {"reference", "streaming", "bluetooth", "telephony", "broadcast"}
    paper = {"aac", "he-aac", "mp3", "opus", "sbc"}
    new = {c.codec for c in matrix.all_conditions() if not c.is_original} - paper
    available = {c for c in new if all(codecs.availability(x)[0] for x in matrix.all_conditions() if x.codec == c)}
    assert len(new) >= 12 and len(available) >= 8, (new, available)
    assert [c.name for c in load_matrix("peters").categories["cat3"]] == ["opus@64", "sbc@64"]  # the paper's stay


def test_sweeps_expand_to_the_codec_ladder_and_are_checked():
    assert expand_sweep("mp3@32..320") == [f"mp3@{k}" for k in (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224,
                                                                256, 320)]
    assert expand_sweep("amr-nb@5..8") == ["amr-nb@5.15", "amr-nb@5.9", "amr-nb@6.7", "amr-nb@7.4", "amr-nb@7.95"]
    assert expand_sweep("opus@12,24,48") == ["opus@12", "opus@24", "opus@48"]
    matrix = parse_matrix({"categories": {"ref": {"conditions": ["wav"]}, "s": {"conditions": ["g726@16..40"]}}})
    assert [c.name for c in matrix.categories["s"]] == ["g726@16", "g726@24", "g726@32", "g726@40"]
    from codecbench.codecs.matrix import MatrixError
    with pytest.raises(MatrixError, match=r"categories.s.conditions\[0\]: sweep 'mp3@400..500': no rate of mp3"):
        parse_matrix({"categories": {"s": {"conditions": ["mp3@400..500"]}}}, "m.toml")
    with pytest.raises(MatrixError, match="unknown codec 'mp9'"):
        parse_matrix({"categories": {"s": {"conditions": ["mp9@32..64"]}}}, "m.toml")
