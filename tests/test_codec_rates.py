"""Every codec at the data's own rate, or the nearest rate above it that loses nothing: the rule for 8-96 kHz sources,
MP3 at the MPEG-2/2.5 rates through both routes (same bytes), SBC at 32 kHz for 22.05-kHz audio, and the bit-rate
ceilings that depend on the rate."""
from __future__ import annotations

import numpy as np
import pytest

from codecbench import codecs
from codecbench.codecs import ConditionError, codec_rate, parse_condition

from . import optional

SOURCES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000)
#: the rate each codec codes each source rate at (codec_rate's rule: own, else nearest above, else its highest)
EXPECTED = {
    "mp3@32": (8000, 11025, 16000, 22050, 32000, 44100, 48000, 48000),
    "aac@32": (16000, 16000, 16000, 22050, 32000, 44100, 48000, 48000),
    "he-aac@32": (16000, 16000, 16000, 22050, 32000, 44100, 48000, 48000),
    "opus@64": (48000,) * 8,
    "sbc@64": (16000, 16000, 16000, 32000, 32000, 44100, 48000, 48000),
    "lc3@64": (8000, 16000, 16000, 24000, 32000, 48000, 48000, 48000),
    "amr-nb@12.2": (8000,) * 8,
}


@pytest.mark.parametrize("condition", sorted(EXPECTED))
def test_each_codec_codes_at_the_source_rate_or_the_nearest_above(condition):
    cond = parse_condition(condition)
    got = tuple(codec_rate(cond, sr) for sr in SOURCES)
    assert got == EXPECTED[condition]
    for source, rate in zip(SOURCES, got):  # never below the source while the codec has a rate above it
        assert rate >= source or rate == max(cond.spec.sample_rates)


@pytest.mark.parametrize("condition", ["mp3@32", "mp3@64", "sbc@64"])
def test_a_22k_round_trip_keeps_length_alignment_and_the_band_up_to_the_source_nyquist(condition):
    from codecbench.datasets import synth_scene

    x = synth_scene(3, np.random.default_rng(0), 2.0, 22050).astype(np.float32)
    y = codecs.roundtrip(x, 22050, condition)
    assert y.shape == x.shape and np.isfinite(y).all()
    lags = np.arange(-8, 9)
    best = lags[np.argmax([np.dot(x[50:-50], np.roll(y, -k)[50:-50]) for k in lags])]
    assert abs(best) <= 1, f"{condition} at 22.05 kHz is misaligned by {best} samples"
    assert np.corrcoef(x, y)[0, 1] > 0.98


def test_mp3_at_mpeg2_rates_codes_the_same_bytes_through_the_system_lame_and_libavcodec(monkeypatch):
    from codecbench.codecs import lame
    from codecbench.datasets import synth_scene

    if lame.library()[0] is None:
        optional.missing("lame", "no system libmp3lame (Debian: libmp3lame0): only libavcodec's route exists here")
    payloads = {}
    for route in ("", "off"):
        monkeypatch.setenv("CODECBENCH_LAME", route)
        codecs.forget_availability()
        for sr in (22050, 16000, 11025):
            x = synth_scene(1, np.random.default_rng(sr), 1.0, sr).astype(np.float32)
            payloads[(route, sr)] = codecs.encode(x, sr, parse_condition("mp3@32")).payload
        assert codecs.codec_library(parse_condition("mp3@32")).startswith("LAME" if route == "" else "libavcodec")
    monkeypatch.delenv("CODECBENCH_LAME")
    codecs.forget_availability()
    for sr in (22050, 16000, 11025):
        assert payloads[("", sr)] == payloads[("off", sr)], f"the two MP3 routes differ at {sr} Hz"


def test_bit_rates_above_what_mpeg2_layer3_codes_are_refused_naming_the_rate():
    codecs.check_rate("mp3@160", 22050)  # MPEG-2 Layer III's highest
    with pytest.raises(ConditionError, match=r"mp3@192: .* at most 160 kbps at 22050 Hz"):
        codecs.check_rate("mp3@192", 22050)
    with pytest.raises(ConditionError, match=r"at most 64 kbps at 11025 Hz"):
        codecs.check_rate("mp3@96", 11025)
    codecs.check_rate("mp3@320", 44100)


def test_the_conditions_command_shows_the_rate_for_a_source_rate(capsys):
    from codecbench.cli import main

    assert main(["conditions", "--rate", "22050"]) == 0
    out = capsys.readouterr().out
    assert "coded at, for 22.05-kHz sources" in out
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in out.splitlines()
            if line.startswith("| ") and "@" in line}
    assert rows["mp3@32"] == "22.05 kHz (its own)" and rows["sbc@64"] == "32 kHz (resampled up)"
    assert rows["opus@64"] == "48 kHz (resampled up)"
