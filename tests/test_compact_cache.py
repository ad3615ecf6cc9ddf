"""The compact cache: bitstreams decode to exactly the signal the PCM cache held; features stay equal."""
import fractions
import os
import time

import av
import numpy as np
import pytest
import soundfile as sf

from codecbench import codecs
from codecbench.cli import main
from codecbench.codecs import parse_condition as C
from codecbench.codecs import pyav
from codecbench.core.cache import MAGIC, Cache
from codecbench.core.dsp import fit_length
from codecbench.datasets import synth_scene
from codecbench.signal import features
from codecbench.store.fill import CODED_NS, FEATURES_NS, clip_key, fill, load_bitstream, load_coded

from .test_features import reference_features

SR = 44100
PYAV = ["aac@32", "mp3@32", "mp3@64", "opus@64", "sbc@64"]


def pcm_roundtrip(x, cond_name):
    """The round trip as codecbench computed it when the cache held decoded PCM: the encoder's packets (side data
    included) straight into the decoder, the decoder dropping LAME's priming itself."""
    cond = codecs.parse_condition(cond_name)
    spec, sr = cond.spec, codecs.codec_rate(cond, SR)
    y = codecs.resample(x, SR, sr)
    enc = av.CodecContext.create(spec.encoder, "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate, enc.thread_count = sr, "mono", spec.sample_format, \
        cond.kbps * 1000, 1
    enc.open()
    padded = np.concatenate([y, np.zeros((-len(y)) % (enc.frame_size or 1024), dtype=np.float32)])
    frame = av.AudioFrame.from_ndarray(pyav.to_frame_array(padded, spec.sample_format), format=spec.sample_format,
                                       layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = sr, 0, fractions.Fraction(1, sr)
    packets = [*enc.encode(frame), *enc.encode(None)]
    first = packets[0]
    priming = -int(first.pts) if first.pts is not None and first.pts < 0 else 0
    if first.has_sidedata("skip_samples") or spec.header_carries_priming:
        priming = 0
    if cond.codec == "sbc":
        priming += codecs.table._sbc_filter_delay(bytes(first))
    dec = av.CodecContext.create(spec.decoder, "r")
    dec.sample_rate, dec.layout = sr, "mono"
    if enc.extradata:
        dec.extradata = enc.extradata
    frames = [f.to_ndarray() for p in packets + [None] for f in dec.decode(p)]
    decoded = fit_length(pyav.decoded_to_float(frames)[priming:], len(y))
    return fit_length(codecs.resample(decoded, sr, SR), len(x))


@pytest.mark.parametrize("condition", PYAV)
def test_cached_bitstream_decodes_to_the_signal_the_pcm_cache_held(cache, wav_folder, condition):
    fill(wav_folder[:1], [C(condition)], cache, jobs=1, progress=False)
    source, _ = sf.read(wav_folder[0], dtype="float32")
    from_cache = load_coded(wav_folder[0], C(condition), cache)
    assert from_cache.dtype == np.float32 and np.array_equal(from_cache, pcm_roundtrip(source, condition))
    assert np.array_equal(from_cache, codecs.roundtrip(source, SR, condition))


def test_bitstream_entries_are_what_the_encoder_produced(cache, wav_folder):
    fill(wav_folder[:1], [C("mp3@64")], cache, jobs=1, progress=False)
    bitstream = load_bitstream(cache, clip_key(wav_folder[0], codecs.parse_condition("mp3@64")))
    assert bitstream.decoder == "pyav:mp3float" and bitstream.skip > 0 and len(bitstream.sizes) > 10
    assert bitstream.encoded_bytes == len(bitstream.payload) and abs(bitstream.achieved_kbps - 64) < 10


def test_cached_features_equal_the_float64_recipe_within_1e_6(cache, wav_folder):
    fill(wav_folder[:2], [C("wav"), C("mp3@32")], cache, with_features=True, jobs=1, progress=False)
    from codecbench.store.inputs import load_features
    x, _ = load_features(wav_folder[:2], C("mp3@32"), cache, jobs=1, progress=False)
    for i, path in enumerate(wav_folder[:2]):
        signal = load_coded(path, C("mp3@32"), cache)
        np.testing.assert_allclose(x[i], reference_features(signal), atol=1e-6)
        assert np.array_equal(x[i], features.extract(signal))


def test_a_ten_second_pair_takes_at_most_0_35_mb(tmp_path):
    clips = []
    for i in range(3):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, synth_scene(i, np.random.default_rng(i), 10.0, SR), SR, subtype="PCM_16")
        clips.append(path)
    cache = Cache(tmp_path / "cache")
    conditions = [C(c) for c in ("aac@64", "mp3@64", "opus@64", "sbc@64")]
    fill(clips, conditions, cache, with_features=True, jobs=1, progress=False)
    info = cache.info()
    per_pair = (info["coded"]["bytes"] + info["features"]["bytes"]) / (len(clips) * len(conditions))
    assert per_pair <= 0.35 * 2**20, per_pair


def test_gc_removes_older_formats_and_unused_entries(cache, wav_folder, capsys):
    fill(wav_folder[:2], [C("sbc@64")], cache, with_features=True, jobs=1, progress=False)
    legacy = cache.root / "audio" / "ab" / ("ab" + "0" * 62 + ".cbc")
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"CBC1" + bytes(100))
    older = cache.path(CODED_NS, "cd" + "0" * 62)
    older.parent.mkdir(parents=True)
    older.write_bytes(b"CBC1" + bytes(50))
    stale = next(cache.entries(FEATURES_NS))
    os.utime(stale, (time.time() - 40 * 86400,) * 2)
    assert main(["cache", "gc", "--cache-dir", str(cache.root)]) == 0
    assert "2 entries of older formats" in capsys.readouterr().out
    assert not legacy.exists() and not older.exists() and stale.exists()
    assert main(["cache", "gc", "--cache-dir", str(cache.root), "--older-than", "30"]) == 0
    assert "1 entries not read for 30 days" in capsys.readouterr().out and not stale.exists()
    assert sum(1 for _ in cache.entries(CODED_NS)) == 2 and MAGIC == b"CBC2"


def test_cache_info_shows_bytes_per_entry(cache, wav_folder, capsys):
    fill(wav_folder[:2], [C("mp3@64")], cache, with_features=True, jobs=1, progress=False)
    assert main(["cache", "info", "--cache-dir", str(cache.root)]) == 0
    out = capsys.readouterr().out
    assert "KiB per entry" in out and "| coded " in out and "| features " in out


# --------------------------------------------------------------------------- entries checked against their key

def _coded_path(cache, path, condition):
    return cache.path(CODED_NS, clip_key(path, codecs.parse_condition(condition)))


@pytest.mark.parametrize("other", ["another clip", "another condition"])
def test_a_valid_entry_moved_over_another_key_is_removed_and_recomputed(cache, wav_folder, other):
    from codecbench.core.cache import CacheCorruptionWarning

    fill(wav_folder[:2], [C("mp3@64"), C("aac@32")], cache, jobs=1, progress=False)
    target = _coded_path(cache, wav_folder[0], "aac@32")
    expected = load_coded(wav_folder[0], C("aac@32"), cache)
    source = _coded_path(cache, wav_folder[1], "aac@32") if other == "another clip" else \
        _coded_path(cache, wav_folder[0], "mp3@64")
    target.write_bytes(source.read_bytes())
    with pytest.warns(CacheCorruptionWarning, match=r"is damaged .*holds the entry of key"):
        again = load_coded(wav_folder[0], C("aac@32"), cache)
    np.testing.assert_array_equal(again, expected)


def test_a_truncated_or_undecodable_bitstream_is_damage_never_padding(cache, wav_folder):
    import dataclasses

    from codecbench.core.cache import CacheCorruptionWarning
    from codecbench.store.fill import store_bitstream

    fill(wav_folder[:1], [C("mp3@64")], cache, jobs=1, progress=False)
    key = clip_key(wav_folder[0], codecs.parse_condition("mp3@64"))
    good = load_bitstream(cache, key)
    expected = codecs.decode(good)
    half = len(good.sizes) // 2
    short = dataclasses.replace(good, sizes=good.sizes[:half], payload=good.payload[:sum(good.sizes[:half])])
    with pytest.raises(codecs.DecodeError, match="fewer than the"):
        codecs.decode(short)
    store_bitstream(cache, key, short)   # a valid checksum over a truncated bitstream
    with pytest.warns(CacheCorruptionWarning, match=r"does not decode .*fewer than the"):
        np.testing.assert_array_equal(load_coded(wav_folder[0], C("mp3@64"), cache), expected)
    # a header that is not a bitstream's (no decoder configuration), checksum valid
    meta = {k: v for k, v in good.header().items() if k != "config"}
    cache.store(CODED_NS, key, np.frombuffer(good.payload, dtype=np.uint8), meta)
    with pytest.warns(CacheCorruptionWarning, match="not a bitstream's"):
        np.testing.assert_array_equal(load_coded(wav_folder[0], C("mp3@64"), cache), expected)
    assert load_bitstream(cache, key).header() == good.header()
