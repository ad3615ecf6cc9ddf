"""HE-AAC v1, AAC-LD and AAC-ELD through Fraunhofer libfdk-aac in-process (skipped where it is missing)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from codecbench import codecs
from codecbench.codecs import fdk
from codecbench.datasets import synth_scene

from . import optional
from .test_codecs import lag_of

needs_fdk = optional.needs("fdk", fdk.library()[0] is not None,
                           f"libfdk-aac is not installed here ({fdk.library()[1]}): {codecs.FDK_HINT}")


@pytest.fixture(scope="module")
def scenes():
    return {sr: synth_scene(3, np.random.default_rng(7), 4.0, sr) for sr in (44100, 48000)}


@needs_fdk
@pytest.mark.parametrize("sr", [44100, 48000])
@pytest.mark.parametrize("condition", ["he-aac@16", "he-aac@24", "he-aac@32", "he-aac@48", "aac-ld@32", "aac-ld@64",
                                       "aac-eld@24", "aac-eld@64"])
def test_round_trip_is_aligned_same_length_and_near_its_bit_rate(scenes, sr, condition):
    x = scenes[sr]
    rt = codecs.encode_decode(x, sr, condition)
    assert rt.backend == "fdk" and rt.codec_sample_rate == sr
    assert rt.signal.dtype == np.float32 and rt.signal.shape == x.shape
    assert abs(lag_of(rt.signal, x)) <= 1
    assert np.corrcoef(rt.signal, x)[0, 1] > 0.5 and not np.array_equal(rt.signal, x)
    nominal = codecs.parse_condition(condition).kbps
    assert abs(rt.achieved_kbps - nominal) <= 0.15 * nominal, rt.achieved_kbps


@needs_fdk
@pytest.mark.parametrize("condition", ["he-aac@16", "aac-ld@64", "aac-eld@32"])
def test_round_trip_is_bit_identical_on_repeat(scenes, condition):
    x = scenes[44100]
    assert np.array_equal(codecs.roundtrip(x, 44100, condition), codecs.roundtrip(x, 44100, condition))


@needs_fdk
def test_he_aac_really_uses_sbr_below_the_core_band(scenes):
    """HE-AAC at 16 kbps codes the band above ~5 kHz parametrically: energy there survives (SBR), AAC-LC at the
    same rate cuts it; so he-aac is not AAC-LC in disguise."""
    x = scenes[44100]

    def high(y):
        spec = np.abs(np.fft.rfft(y)) ** 2
        return spec[np.fft.rfftfreq(len(y), 1 / 44100) > 11000].sum()
    assert high(codecs.roundtrip(x, 44100, "he-aac@16")) > 3 * high(codecs.roundtrip(x, 44100, "aac@16"))


@needs_fdk
def test_other_input_rates_go_to_the_nearest_supported_rate_and_back():
    x = synth_scene(1, np.random.default_rng(2), 2.0, 96000)
    rt = codecs.encode_decode(x, 96000, "he-aac@32")
    assert rt.codec_sample_rate == 48000 and rt.signal.shape == x.shape
    assert abs(lag_of(rt.signal, x)) <= 1


@needs_fdk
def test_a_rate_outside_the_librarys_range_names_the_valid_range(scenes):
    assert fdk.valid_kbps("he-aac", 44100) == (12, 64)
    with pytest.raises(codecs.ConditionError, match=r"he-aac@8: for mono input at 44100 Hz the valid range is "
                                                    r"12-64 kbps"):
        codecs.roundtrip(scenes[44100], 44100, "he-aac@8")
    with pytest.raises(codecs.ConditionError, match="96 kbps is outside the valid range of he-aac"):
        codecs.parse_condition("he-aac@96")


def test_he_aac_v2_is_refused_with_the_reason():
    with pytest.raises(codecs.ConditionError, match="HE-AAC v2 adds parametric stereo"):
        codecs.parse_condition("he-aac-v2@32")


@needs_fdk
def test_library_version_is_reported_and_keys_the_cache():
    from codecbench.store.fill import coded_key
    assert fdk.version().startswith("libfdk-aac AACENC ")
    assert codecs.codec_library("he-aac@16").endswith("(in-process)")
    assert coded_key("0" * 64, codecs.parse_condition("he-aac@16"), 44100) != coded_key(
        "0" * 64, codecs.parse_condition("aac@16"), 44100)


def test_a_missing_library_is_unavailable_with_install_hints(tmp_path):
    """In a fresh process pointed at a library that does not exist (and without other routes)."""
    code = ("import shutil, av; from codecbench import codecs;"
            "codecs._ffmpeg_has_encoder = lambda e: False; shutil.which = lambda name: None;"
            "ok, why = codecs.availability('he-aac@16') if 'libfdk_aac' not in av.codecs_available else (False, "
            "'libfdk_aac not found (PyAV skipped)');"
            "ld = codecs.availability('aac-ld@64'); print(ok, ld[0]); print(why)")
    env = {**os.environ, "CODECBENCH_FDK_AAC": str(tmp_path / "libfdk-aac.so.2")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    lines = out.stdout.splitlines()
    assert lines[0] == "False False", out.stderr[-2000:]
    assert "libfdk_aac not found" in lines[1] and "apt-get install libfdk-aac2" in lines[1]
    assert "brew install fdk-aac" in lines[1]
