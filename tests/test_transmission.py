"""Transmission conditions: transcoding chains (``aac@128>mp3@32``) and packet loss (``opus@24+loss5``), through
the real codecs and their decoders' concealment, in the condition grammar, the cache keys, the matrix and the
suite."""
import dataclasses
import math

import numpy as np
import pytest
import scipy.signal

from codecbench import codecs
from codecbench.codecs import conceal
from codecbench.codecs.loss import Loss, lost_packets
from codecbench.codecs.matrix import expand_sweep, load_matrix
from codecbench.report.sweeps import find_sweeps
from codecbench.store.fill import coded_key

from . import optional
from .plugin_args import run_plugin

pytest_plugins = ["pytester"]

SR = 44100


def _lag(decoded, reference) -> int:
    cc = scipy.signal.correlate(decoded, reference, mode="full", method="fft")
    return int(np.argmax(cc)) - (len(reference) - 1)


def _voiced(sr: int = 48000, seconds: float = 4.0) -> np.ndarray:
    """A voiced, speech-like signal (a 120-Hz pulse train, shaped and modulated): Opus codes it in its SILK or
    hybrid mode, the one whose in-band FEC exists."""
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sign(np.sin(2 * np.pi * 120 * t)) * np.abs(np.sin(2 * np.pi * 3 * t))
    return np.convolve(x, np.hanning(40) / 20, mode="same").astype(np.float32)


# -- the grammar ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["aac@128>mp3@32", "aac@128>mp3@64>opus@32", "opus@24+loss5",
                                  "opus@24+loss10+burst3+seed7+fec", "sbc@128+loss3+burst4+repeat",
                                  "mp3@64+loss2+zerofill", "aac@128>opus@24+loss5", "lc3@32+loss5+burst2"])
def test_names_are_canonical_and_parse_back(name):
    cond = codecs.parse_condition(name)
    assert cond.name == name and codecs.parse_condition(cond.name) == cond and not cond.is_plain
    assert cond.stages[-1] == codecs.Condition(cond.codec, cond.kbps)


def test_chain_order_and_loss_parts_make_different_conditions():
    parse = codecs.parse_condition
    assert parse("aac@128>mp3@64") != parse("mp3@64>aac@128")
    assert parse("opus@24+loss5+seed1") != parse("opus@24+loss5+seed2")
    assert parse("opus@24+seed1+loss5") == parse("opus@24+loss5+seed1")  # parts in any order, one name
    assert parse("opus@24+loss0") == parse("opus@24")  # nothing lost: the plain condition
    assert sorted([parse("opus@24+loss5"), parse("opus@24"), parse("aac@128>opus@24")])  # orderable


@pytest.mark.parametrize("name, fragment", [
    ("sbc@64+loss5", "+zerofill"),  # no concealment of its own: one must be named
    ("mp3@64+loss5+fec", "in-band forward error correction"),
    ("wav>mp3@64", "not a codec of a chain"),
    ("wav+loss5", "no packets to lose"),
    ("opus@24+loss120", "from 0 to below 100"),
    ("opus@24+burst3", "belong to a +loss"),
    ("opus@24+loss5+jitter", "unknown part '+jitter'"),
    ("opus@24+loss5+loss6", "given twice"),
    ("aac@32>aac@32>aac@32>aac@32>aac@32", "at most 4"),
    ("aac@128>flac@64", "unknown codec 'flac'"),
])
def test_bad_chains_and_losses_are_refused_naming_the_part(name, fragment):
    with pytest.raises(codecs.ConditionError, match=fragment.replace("+", r"\+")):
        codecs.parse_condition(name)


# -- chains ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["aac@128>mp3@32", "mp3@128>aac@96>opus@32", "aac@128>sbc@128>mp3@64"])
def test_a_chain_stays_aligned_and_keeps_its_length(scene, name):
    out = codecs.roundtrip(scene, SR, name)
    assert out.dtype == np.float32 and out.shape == scene.shape
    assert abs(_lag(out, scene)) <= 1
    # the chain really ran every codec: it differs from its last codec alone, and still resembles the input
    last = codecs.roundtrip(scene, SR, codecs.parse_condition(name).stages[-1])
    assert not np.array_equal(out, last) and np.corrcoef(out, scene)[0, 1] > 0.5


def test_a_chain_is_its_codecs_one_after_the_other(scene):
    by_hand = codecs.roundtrip(codecs.roundtrip(scene, SR, "aac@128"), SR, "mp3@32")
    assert np.array_equal(codecs.roundtrip(scene, SR, "aac@128>mp3@32"), by_hand)


def test_cache_keys_differ_by_chain_order_and_by_loss_seed():
    keys = {name: coded_key("0" * 64, codecs.parse_condition(name), SR)
            for name in ["aac@128>mp3@64", "mp3@64>aac@128", "opus@24+loss5", "opus@24+loss5+seed1",
                         "opus@24+loss5+burst2", "opus@24"]}
    assert len(set(keys.values())) == len(keys)
    assert "libopus" in codecs.codec_library("opus@24+loss5").split(" > ")[-1]
    assert codecs.codec_library("aac@128>mp3@64").count(" > ") == 1


# -- loss patterns ---------------------------------------------------------------------------------------------

def test_the_same_seed_drops_the_same_packets_on_every_machine():
    # pinned: PCG64's raw stream is the same on every platform and NumPy version
    assert lost_packets(Loss(10, seed=7), 40, b"codecbench") == [6, 34]
    assert lost_packets(Loss(10, seed=7), 40, b"codecbench") == lost_packets(Loss(10, seed=7), 40, b"codecbench")
    assert lost_packets(Loss(10, seed=8), 400, b"codecbench") != lost_packets(Loss(10, seed=7), 400, b"codecbench")
    assert lost_packets(Loss(10), 400, b"one clip") != lost_packets(Loss(10), 400, b"another clip")


def test_a_bernoulli_loss_rate_is_the_one_asked_within_its_binomial_interval():
    n = 20000
    for rate in (1, 5, 20):
        lost = len(lost_packets(Loss(rate, seed=3), n, b"x"))
        p = rate / 100
        half = 3.29 * math.sqrt(p * (1 - p) / n)  # 99.9 %
        assert abs(lost / n - p) <= half, (rate, lost / n)


def test_a_bursty_loss_has_its_rate_and_mean_burst_length():
    n, rate, burst = 100000, 10, 3.0
    lost = np.zeros(n, dtype=bool)
    lost[lost_packets(Loss(rate, burst=burst, seed=5), n, b"x")] = True
    p, leave = rate / 100, 1 / burst
    enter = p * leave / (1 - p)
    second = 1 - enter - leave  # the chain's second eigenvalue: how long a state persists
    half = 3.29 * math.sqrt(p * (1 - p) * (1 + second) / (1 - second) / n)  # 99.9 %, for a Markov chain
    assert abs(lost.mean() - p) <= half, lost.mean()
    starts = np.flatnonzero(np.diff(lost.astype(int)) == 1)
    assert abs(lost.sum() / len(starts) - burst) < 0.15 * burst


# -- decoding with loss ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["opus@24+loss10", "opus@24+loss20+burst3", "sbc@128+loss5+repeat",
                                  "sbc@128+loss5+zerofill", "mp3@64+loss5+zerofill", "aac@64+loss5+repeat",
                                  "lc3@32+loss10"])
def test_concealed_output_has_the_right_length_no_nan_and_is_aligned(scene, name):
    optional.codec(name)
    bitstream = codecs.encode(scene, SR, name)
    assert 0 < len(bitstream.lost) < len(bitstream.sizes)
    out = codecs.decode(bitstream)
    plain = codecs.decode(dataclasses.replace(bitstream, lost=[]))
    assert out.shape == scene.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert not np.array_equal(out, plain)  # the losses changed the output
    # concealment keeps the concealing decoder's alignment: against the same decoder with (almost) nothing lost
    nearly = codecs.decode(dataclasses.replace(bitstream, lost=[len(bitstream.sizes) - 1]))
    assert _lag(out, nearly) == 0
    # and the input: libopus decodes SILK/hybrid-mode packets up to 2 samples from libavcodec's native decoder,
    # which the plain condition uses (1 sample at most in CELT mode and for every other codec)
    assert abs(_lag(out, scene)) <= (2 if name.startswith("opus@24") else 1)


def test_zerofill_silences_and_repeat_repeats_the_lost_frames(scene):
    optional.codec("sbc@128+loss5+repeat")
    zero = codecs.encode(scene, SR, "sbc@128+loss5+zerofill")
    repeat = codecs.encode(scene, SR, "sbc@128+loss5+repeat")
    assert zero.lost == repeat.lost  # the same pattern: the seed and the clip decide it
    silenced, repeated = codecs.decode(zero), codecs.decode(repeat)
    plain = codecs.decode(dataclasses.replace(zero, lost=[]))
    assert np.sum(silenced ** 2) < np.sum(plain ** 2) and np.sum(repeated ** 2) > np.sum(silenced ** 2)


def test_no_loss_is_the_plain_condition_bit_for_bit(scene):
    optional.codec("opus@24+loss5")
    assert np.array_equal(codecs.roundtrip(scene, SR, "opus@24+loss0"), codecs.roundtrip(scene, SR, "opus@24"))
    bitstream = codecs.encode(scene, SR, "opus@24+loss5")
    assert np.array_equal(codecs.decode(dataclasses.replace(bitstream, lost=[])),
                          codecs.roundtrip(scene, SR, "opus@24"))


def test_opus_in_band_fec_recovers_lost_packets_better_than_concealment():
    optional.codec("opus@24+loss10+fec")
    x = _voiced()
    bitstream = codecs.encode(x, 48000, "opus@24+loss10+fec")
    clean = conceal.decode_with_loss(dataclasses.replace(bitstream, lost=[0]))  # one loss at the very start
    recovered = conceal._libopus(bitstream, fec=True)
    concealed = conceal._libopus(bitstream, fec=False)

    def snr(y):
        return 10 * np.log10(np.sum(clean[4800:] ** 2) / np.sum((y[4800:] - clean[4800:]) ** 2))

    assert snr(recovered) > snr(concealed) + 1.0, (snr(recovered), snr(concealed))


# -- matrices, sweeps, augmentation, the suite -----------------------------------------------------------------

def test_loss_sweeps_expand_and_bit_rate_sweeps_keep_to_plain_conditions():
    assert expand_sweep("opus@24+loss0..10") == [f"opus@24+loss{r}" for r in (0, 1, 2, 3, 5, 10)]
    assert expand_sweep("sbc@128+loss2,5+burst3+repeat") == ["sbc@128+loss2+burst3+repeat",
                                                             "sbc@128+loss5+burst3+repeat"]
    names = ["mp3@32", "mp3@64", "mp3@128", "aac@128>mp3@64", "mp3@64+loss5+repeat"]
    conds = [codecs.parse_condition(n) for n in names]
    assert find_sweeps(conds) == {"mp3": [(32.0, "mp3@32"), (64.0, "mp3@64"), (128.0, "mp3@128")]}


def test_the_transmission_matrix_has_its_scenarios_and_its_thresholds():
    from pathlib import Path

    from codecbench.results.thresholds import load_thresholds
    from codecbench.zoo import Zoo

    matrix = load_matrix("transmission")
    assert set(matrix.categories) == {"reference", "voip", "bluetooth", "reupload"}
    assert all(not c.is_plain for c in matrix.categories["reupload"])
    zoo = Zoo()  # the packaged zoo of the embedded default
    thresholds_file = Path(__file__).parent.parent / "benchmarks" / "thresholds-transmission.toml"
    thresholds = load_thresholds(thresholds_file, matrix, zoo.names())
    # every packaged model has a floor on every condition of the matrix
    missing = [(m, c.name) for m in zoo.names() for c in matrix.validation
               if thresholds.lookup(m, c.name, matrix.category_of(c)) is None]
    assert not missing, missing


def test_codec_augment_draws_chains_and_losses():
    optional.codec("opus@24+loss10")
    from codecbench.augment import CodecAugment

    augment = CodecAugment(conditions=["aac@128>mp3@32", "opus@24+loss10"], p=1.0, seed=0)
    x = _voiced(SR, 1.0)
    drawn = set()
    for _ in range(6):
        out = augment(samples=x, sample_rate=SR)
        drawn.add(augment.parameters["condition"])
        assert out.shape == x.shape and np.isfinite(out).all()
    assert drawn == {"aac@128>mp3@32", "opus@24+loss10"}


def test_chains_and_losses_run_in_the_suite(tiny, pytester, tmp_path):
    """Two transmission conditions on the tiny zoo, through the plugin: cases, coding, the results file."""
    optional.codec("opus@24+loss10")
    import json

    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    result = run_plugin(
        pytester, "--model-dir", str(tiny["zoo"].root), "--dataset", tiny["spec"],
        "--cache-dir", str(tiny["cache"].root), "--results", str(tmp_path / "out"), "--jobs", "1",
        "--model", "base", "--matrix", "transmission", "--condition", "aac@128>mp3@64,opus@24+loss10")
    result.assert_outcomes(passed=2)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["condition"] for r in doc["results"]} == {"aac@128>mp3@64", "opus@24+loss10"}
    # the codec facts measure the share of packets the loss dropped from the run's clips, and nothing for a chain
    facts = doc["meta"]["codec_facts"]
    assert 0.03 < facts["opus@24+loss10"]["packets_lost"] < 0.2 and "packets_lost" not in facts["aac@128>mp3@64"]


def test_loss_sweeps_are_found_and_reported_with_intervals(tmp_path):
    import copy
    import json
    from pathlib import Path

    from codecbench.report import render
    from codecbench.report.sweeps import find_loss_sweeps

    names = ["opus@24", "opus@24+loss5", "opus@24+loss10", "opus@24+loss10+burst3", "opus@24+loss20+burst3",
             "aac@128>opus@24+loss5", "sbc@64+loss5+repeat"]
    found = find_loss_sweeps([codecs.parse_condition(n) for n in names], min_points=3)
    # one sweep per loss model, each with the lossless codec as its 0 % point; a chain and a lone point are none
    assert found == {"opus@24+loss%": [(0.0, "opus@24"), (5.0, "opus@24+loss5"), (10.0, "opus@24+loss10")],
                     "opus@24+burst3+loss%": [(0.0, "opus@24"), (10.0, "opus@24+loss10+burst3"),
                                              (20.0, "opus@24+loss20+burst3")]}
    # a results document with opus@64 lossless, 5 % and 10 % lost (the rows copied): a section, a figure, the page
    doc = json.loads((Path(__file__).parent.parent / "reports" / "example" / "results.json").read_text())
    doc["results"] += [{**copy.deepcopy(r), "condition": f"opus@64+loss{rate}"} for r in doc["results"]
                       if r["condition"] == "opus@64" for rate in (5, 10)]
    (tmp_path / "results.json").write_text(json.dumps(doc))
    markdown, written = render(tmp_path / "results.json", tmp_path / "out", formats=("md", "png", "html"))
    assert "## Accuracy against packet loss" in markdown and "**opus@64+loss%**" in markdown
    assert "| base " in markdown.split("## Accuracy against packet loss")[1]
    assert tmp_path / "out" / "losses.png" in written
    page = (tmp_path / "out" / "html" / "index.html").read_text()
    assert '"loss_sweeps":{"opus@64+loss%":[{"loss":0.0,"condition":"opus@64"}' in page


def test_every_suggested_concealment_runs_where_its_codec_does():
    """A codec without concealment of its own is told to name one; what the message suggests must then run (it
    suggested +zerofill for HE-AAC, which was then skipped: HE-AAC is decoded by libavcodec, so it does run)."""
    import re

    for codec in ("he-aac@32", "mp3@64", "sbc@128", "g722@64"):
        if not codecs.availability(codec)[0]:
            continue
        with pytest.raises(codecs.ConditionError) as refused:
            codecs.parse_condition(f"{codec}+loss5")
        suggested = re.findall(r"(\S+\+loss5\+(?:zerofill|repeat))", str(refused.value))
        assert len(suggested) == 2 and all(codecs.availability(s)[0] for s in suggested), suggested


@pytest.mark.parametrize("name", ["aac-ld@64+loss10+burst3", "aac-eld@32+loss5"])
def test_libfdk_aac_conceals_the_codecs_only_it_decodes(scene, name):
    """AAC-LD and AAC-ELD (FaceTime's codec) take the concealment of Fraunhofer's decoder: the clip keeps its length
    and alignment, and the lost frames are replaced by something near the lossless decode, not silence."""
    optional.codec(name)
    x = np.tile(scene, 2)
    lossy = codecs.encode_decode(x, SR, name)
    clean = codecs.roundtrip(x, SR, codecs.parse_condition(name).stages[-1])
    assert lossy.signal.shape == x.shape and _lag(lossy.signal, clean) == 0
    snr = 10 * math.log10(np.sum(clean ** 2) / np.sum((lossy.signal - clean) ** 2))
    assert 3 < snr < 30
    assert "libfdk-aac" in codecs.codec_library(name) and "concealment" in codecs.codec_library(name)
    assert not codecs.availability(name.split("+")[0] + "+loss5+zerofill")[0]  # libavcodec decodes neither
