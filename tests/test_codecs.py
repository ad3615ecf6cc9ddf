import numpy as np
import pytest
import scipy.signal

from codecbench import codecs

SR = 44100
CODED = ["aac@32", "aac@64", "mp3@32", "mp3@64", "opus@64", "sbc@64", "sbc@320"]


def lag_of(decoded, reference):
    cc = scipy.signal.correlate(decoded, reference, mode="full", method="fft")
    return int(np.argmax(cc)) - (len(reference) - 1)


def test_parse_condition_names():
    assert codecs.parse_condition("mp3@32") == codecs.Condition("mp3", 32)
    assert codecs.parse_condition("WAV").is_original
    assert codecs.parse_condition("he-aac@16").name == "he-aac@16"


@pytest.mark.parametrize("name, fragment", [
    ("mp3@8", "32-320 kbps"), ("opus@400", "6-256 kbps"), ("flac@64", "unknown codec 'flac'"),
    ("mp3-32", "<codec>@<kbps>"), ("aac@", "<codec>@<kbps>")])
def test_parse_condition_errors_state_what_was_expected(name, fragment):
    with pytest.raises(ValueError, match=fragment.replace("+", r"\+")):
        codecs.parse_condition(name)


@pytest.mark.parametrize("condition", CODED)
def test_roundtrip_is_time_aligned_same_length_float32(scene, condition):
    out = codecs.roundtrip(scene, SR, condition)
    assert out.dtype == np.float32 and out.shape == scene.shape
    assert abs(lag_of(out, scene)) <= 1
    # the decoded signal really went through a lossy codec, and still resembles its input
    assert not np.array_equal(out, scene)
    assert np.corrcoef(out, scene)[0, 1] > 0.5


@pytest.mark.parametrize("condition", ["aac@32", "mp3@64", "opus@64", "sbc@64"])
@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_roundtrip_other_rates_resample_back_aligned(scene, condition, rate):
    x = codecs.resample(scene, SR, rate)
    out = codecs.roundtrip(x, rate, condition)
    assert out.shape == x.shape
    assert abs(lag_of(out, x)) <= 1


@pytest.mark.parametrize("condition", ["aac@32", "aac@64", "mp3@32", "mp3@64", "mp3@128", "sbc@64", "sbc@128"])
def test_constant_bitrate_achieved_within_15_percent(scene, condition):
    result = codecs.encode_decode(scene, SR, condition)
    nominal = codecs.parse_condition(condition).kbps
    assert abs(result.achieved_kbps - nominal) <= 0.15 * nominal, result.achieved_kbps


def test_opus_is_vbr_but_near_its_target(scene):
    result = codecs.encode_decode(scene, SR, "opus@64")
    assert 0.6 * 64 < result.achieved_kbps < 1.4 * 64


@pytest.mark.parametrize("condition", CODED)
def test_roundtrip_is_bit_identical_on_repeat(scene, condition):
    assert np.array_equal(codecs.roundtrip(scene, SR, condition), codecs.roundtrip(scene, SR, condition))


def test_lower_bitrate_loses_more_bandwidth(scene):
    def high_band_energy(x):
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / SR)
        return spec[f > 11000].sum()
    ref = high_band_energy(scene)
    assert high_band_energy(codecs.roundtrip(scene, SR, "mp3@32")) < 0.1 * ref
    assert high_band_energy(codecs.roundtrip(scene, SR, "opus@64")) > 0.3 * ref


def test_short_signal_shorter_than_a_codec_frame_is_padded_and_trimmed():
    x = np.zeros(100, dtype=np.float32)
    x[50] = 0.5
    for condition in CODED:
        assert codecs.roundtrip(x, SR, condition).shape == (100,)


@pytest.mark.parametrize("bad, message", [
    (np.array([], dtype=np.float32), "empty"),
    (np.array([0.0, np.nan, 0.1], dtype=np.float32), "NaN/Inf"),
    (np.zeros((2, 1000), dtype=np.float32), "mono"),
    (np.zeros(1000, dtype=np.int16), "float"),
])
def test_bad_signals_are_refused_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        codecs.roundtrip(bad, SR, "mp3@64")


def test_he_aac_is_never_silently_replaced_by_aac_lc(scene):
    ok, reason = codecs.availability("he-aac@32")
    if ok:
        out = codecs.encode_decode(scene, SR, "he-aac@32")
        assert out.backend in ("fdk", "pyav", "ffmpeg", "fdkaac")
        assert abs(lag_of(out.signal, scene)) <= 1
    else:
        assert "libfdk_aac" in reason and "install" in reason
        with pytest.raises(codecs.CodecUnavailable, match="he-aac@32 is unavailable"):
            codecs.roundtrip(scene, SR, "he-aac@32")


def test_original_condition_is_identity(scene):
    assert np.array_equal(codecs.roundtrip(scene, SR, "wav"), scene)
