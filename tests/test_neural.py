"""Neural codecs (EnCodec, DAC) as conditions: random weights built by the packages' own constructors, saved to a
local folder and loaded the way a user's downloaded weights are (codecbench.codecs.neural)."""
from __future__ import annotations

import numpy as np
import pytest

from codecbench import codecs
from codecbench.codecs import neural
from codecbench.store.fill import coded_key

from . import checkpoints, optional
from .conftest import _built_once

optional.import_or_missing("transformers", "transformers", "Hugging Face transformers is not installed")
optional.import_or_missing("transformers", "torch", "PyTorch is not installed")

SR = 22050


@pytest.fixture(scope="session")
def weights_root(tmp_path_factory):
    return _built_once(tmp_path_factory, "codec-weights", checkpoints.codec_weights)


@pytest.fixture
def weights(weights_root, monkeypatch):
    monkeypatch.setenv(neural.WEIGHTS_ENV, str(weights_root))
    monkeypatch.delenv(neural.DEVICE_ENV, raising=False)
    monkeypatch.delenv(neural.PRECISION_ENV, raising=False)
    codecs.forget_availability()
    yield weights_root
    codecs.forget_availability()


def _clip(seconds: float = 1.5, rate: int = SR) -> np.ndarray:
    return (0.1 * np.random.default_rng(3).standard_normal(int(seconds * rate))).astype(np.float32)


@pytest.mark.parametrize("name, codec_rate, kbps", [("encodec@6", 24000, 6.0), ("encodec-48k@12", 48000, 12.0),
                                                     ("dac@8", 44100, 7.75)])
def test_a_round_trip_keeps_the_length_and_runs_at_the_models_rate(weights, name, codec_rate, kbps):
    x = _clip()
    out = codecs.encode_decode(x, SR, name)
    assert out.signal.shape == x.shape and out.signal.dtype == np.float32 and np.all(np.isfinite(out.signal))
    assert out.codec_sample_rate == codec_rate and out.backend == "neural"
    # the bits are the codes' (codebooks x frames x 10 bits); the 48-kHz model's last chunk costs a little more
    assert kbps * 0.98 <= out.achieved_kbps <= kbps * (1.12 if "48k" in name else 1.02)


def test_coding_is_deterministic_on_the_cpu(weights):
    x = _clip()
    first, second = codecs.encode(x, SR, "dac@3"), codecs.encode(x, SR, "dac@3")
    assert first.payload == second.payload and first.config == second.config
    assert np.array_equal(codecs.decode(first), codecs.decode(second))
    # fewer codebooks, fewer bits: dac@3 codes 3 of the 9 codebooks
    assert len(first.payload) * 3 == len(codecs.encode(x, SR, "dac@8").payload)


def test_cache_keys_change_with_weights_rate_device_and_precision(weights, tmp_path, monkeypatch):
    def key(name):
        codecs.forget_availability()
        return coded_key("0" * 64, codecs.parse_condition(name), SR)

    base = key("encodec@6")
    assert key("encodec@3") != base  # another bit rate
    monkeypatch.setenv(neural.DEVICE_ENV, "cuda")  # the key names the device; nothing is loaded to make it
    assert key("encodec@6") != base and "cuda" in codecs.codec_library("encodec@6")
    monkeypatch.setenv(neural.DEVICE_ENV, "cpu")
    assert key("encodec@6") == base
    monkeypatch.setenv(neural.PRECISION_ENV, "bfloat16")
    assert key("encodec@6") != base
    monkeypatch.delenv(neural.PRECISION_ENV)
    other = checkpoints.codec_weights(tmp_path / "other", seed=1)  # other weights under the same names
    monkeypatch.setenv(neural.WEIGHTS_ENV, str(other))
    assert key("encodec@6") != base


def test_a_reduced_precision_codes_too(weights, monkeypatch):
    monkeypatch.setenv(neural.PRECISION_ENV, "bfloat16")
    codecs.forget_availability()
    out = codecs.roundtrip(_clip(0.5), SR, "encodec@6")
    assert out.shape == (SR // 2,) and np.all(np.isfinite(out))


def test_missing_weights_make_the_condition_unavailable_naming_the_file(weights, tmp_path, monkeypatch):
    monkeypatch.setenv(neural.WEIGHTS_ENV, str(tmp_path / "weights"))
    codecs.forget_availability()
    ok, why = codecs.availability("encodec@6")
    assert not ok
    assert str(tmp_path / "weights" / "encodec_24khz" / "config.json") in why
    assert "hf download facebook/encodec_24khz" in why
    with pytest.raises(codecs.CodecUnavailable, match="encodec_24khz"):
        codecs.encode(_clip(), SR, "encodec@6")
    # the models not in the folder are named as such, each with its own file
    monkeypatch.setenv(neural.WEIGHTS_ENV, str(weights))
    codecs.forget_availability()
    ok, why = codecs.availability("dac-16k@6")
    assert not ok and str(weights / "dac_16khz" / "config.json") in why


def test_a_bad_setting_is_named(weights, monkeypatch):
    monkeypatch.setenv(neural.PRECISION_ENV, "float8")
    codecs.forget_availability()
    ok, why = codecs.availability("encodec@6")
    assert not ok and neural.PRECISION_ENV in why and "float8" in why


def test_a_chain_runs_through_a_neural_codec(weights):
    x = _clip()
    for name in ("encodec@6>mp3@64", "mp3@64>dac@8"):
        out = codecs.encode_decode(x, SR, name)
        assert out.signal.shape == x.shape and np.all(np.isfinite(out.signal))
        assert "weights sha256:" in codecs.codec_library(name)


def test_the_grammar_of_neural_conditions():
    parse = codecs.parse_condition
    assert parse("dac@8kbps") == parse("dac@8") and parse("dac@8kbps").name == "dac@8"
    assert parse("encodec@1.5").name == "encodec@1.5"
    with pytest.raises(codecs.ConditionError, match="1.5, 3, 6, 12, 24"):
        parse("encodec@5")
    with pytest.raises(codecs.ConditionError, match="neural codec"):
        parse("encodec@6+loss5")
    assert parse("encodec@6").spec.family == "neural"


def test_signal_facts_of_a_neural_codec(weights):
    """The codec facts' signal measures are finite for a decode from random weights (far from the source)."""
    from codecbench.core.dsp import signal_change

    x = _clip()
    facts = signal_change([x], [codecs.roundtrip(x, SR, "encodec@6")], SR)
    assert facts["mel_distance_db"] > 1 and facts["snr_db"] < 10 and np.isfinite(facts["si_sdr_db"])


def test_the_device_difference_is_measured(weights):
    """The CPU against itself here (a GPU where examples/gpu/neural_device.py runs): the same codes decode to the
    same samples, said as a difference of 0 and an infinite SNR."""
    cond = codecs.parse_condition("encodec@6")
    bitstream = codecs.encode(_clip(), SR, cond)
    facts = neural.device_difference(cond.spec, bitstream, "cpu")
    assert facts == {"device": "cpu", "max_abs_diff": 0.0, "snr_db": float("inf")}


def test_the_weights_folder_is_an_option_too(weights_root, monkeypatch, capsys):
    """--codec-weights names the folder where $CODECBENCH_CODEC_WEIGHTS is not set (and passes it to workers)."""
    from codecbench.cli import main

    monkeypatch.setenv(neural.WEIGHTS_ENV, "")  # restored after the test: the command sets it for its workers
    monkeypatch.delenv(neural.WEIGHTS_ENV)
    codecs.forget_availability()
    assert not codecs.availability("encodec@6")[0] or neural._hub_cache_folder("facebook/encodec_24khz")
    assert main(["conditions", "--matrix", "neural", "--codec-weights", str(weights_root)]) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.startswith("|")}
    assert rows["encodec@6"].rstrip(" |").endswith("yes") and "dac_16khz" in rows["dac-16k@6"]
    codecs.forget_availability()


def test_codec_augmentation_draws_a_neural_codec(weights):
    """CodecAugment codes with a neural codec like any other (the drawn condition's round trip)."""
    from codecbench.augment import CodecAugment

    x = _clip(1.0, 44100)
    augment = CodecAugment(["encodec@6", "dac@3"], p=1.0, seed=0)
    y = augment(x, 44100)
    assert y.shape == x.shape and y.dtype == np.float32 and augment.parameters["condition"] in ("encodec@6", "dac@3")
    assert not np.array_equal(x, y) and np.all(np.isfinite(y))
