"""The in-process LAME route codes MP3 to exactly the bytes libavcodec's libmp3lame gives, or is not used."""
from __future__ import annotations

import numpy as np
import pytest

from codecbench import codecs
from codecbench.codecs import lame
from codecbench.codecs import parse_condition as C
from codecbench.datasets import synth_scene

from . import optional

needs_lame = optional.needs("lame", lame.library()[0] is not None,
                            f"libmp3lame is not installed here ({lame.library()[1]})")


def _reference(x, sr, name):
    cond = codecs.parse_condition(name)
    rate = codecs.codec_rate(cond, sr)
    return codecs.BACKENDS["pyav"].encode(codecs.resample(x, sr, rate), rate, cond, sr, len(x))


@needs_lame
@pytest.mark.parametrize("sr,name", [(44100, "mp3@32"), (44100, "mp3@64"), (44100, "mp3@320"), (48000, "mp3@96"),
                                     (16000, "mp3@64")])
def test_same_bytes_priming_and_samples_as_libavcodec(sr, name):
    x = synth_scene(3, np.random.default_rng(7), 3.0, sr)
    ours, reference = codecs.encode(x, sr, name), _reference(x, sr, name)
    assert ours.backend == "lame" and reference.backend == "pyav"
    assert ours.payload == reference.payload and ours.sizes == reference.sizes and ours.skip == reference.skip
    assert np.array_equal(codecs.decode(ours), codecs.decode(reference))


@needs_lame
def test_turned_off_means_libavcodec(monkeypatch):
    monkeypatch.setenv("CODECBENCH_LAME", "off")
    codecs.forget_availability()
    try:
        assert codecs.encode(synth_scene(0, np.random.default_rng(0), 1.0, 44100), 44100, "mp3@64").backend == "pyav"
    finally:
        monkeypatch.delenv("CODECBENCH_LAME")
        codecs.forget_availability()
    assert codecs.encode(synth_scene(0, np.random.default_rng(0), 1.0, 44100), 44100, "mp3@64").backend == "lame"


def test_a_library_that_is_not_there_is_not_used(monkeypatch):
    monkeypatch.setenv("CODECBENCH_LAME", "/nonexistent/libmp3lame.so.0")
    codecs.forget_availability()
    try:
        assert lame.library()[0] is None and "/nonexistent" in lame.library()[1]
        assert not lame.matches_libavcodec()
        assert codecs.encode(synth_scene(0, np.random.default_rng(0), 1.0, 44100), 44100, "mp3@64").backend == "pyav"
        with pytest.raises(lame.LameError, match="not available"):
            lame.encode(np.zeros(2000, np.float32), 44100, 64)
    finally:
        monkeypatch.delenv("CODECBENCH_LAME")
        codecs.forget_availability()


def test_frames_are_split_from_their_headers_and_garbage_is_refused():
    reference = _reference(synth_scene(1, np.random.default_rng(1), 1.0, 44100), 44100, "mp3@64")
    assert [len(f) for f in lame.split_frames(reference.payload)] == list(reference.sizes)
    with pytest.raises(lame.LameError, match="frame header at byte 0"):
        lame.split_frames(b"RIFF0000WAVE")
    with pytest.raises(lame.LameError, match="ends inside a frame"):
        lame.split_frames(reference.payload[:-5])


def test_mp3_is_labelled_by_the_route_that_codes_it_everywhere(tmp_path):
    """The library named in cache entries, cache keys, sidecars and run metadata is the one that coded it."""
    import soundfile as sf

    from codecbench.core.cache import Cache
    from codecbench.store.fill import CODED_NS, clip_key, fill

    if not lame.matches_libavcodec():
        optional.missing("lame", "the system LAME (libmp3lame0) is not installed or does not match libavcodec's bytes")
    assert codecs.codec_library("mp3@64").startswith("LAME ") and "system libmp3lame" in codecs.codec_library("mp3@64")
    path = tmp_path / "x.wav"
    sf.write(path, synth_scene(0, np.random.default_rng(0), 1.0, 44100), 44100)
    cache = Cache(tmp_path / "c")
    fill([path], [C("mp3@64")], cache, jobs=1, progress=False)
    _, meta = cache.load(CODED_NS, clip_key(path, codecs.parse_condition("mp3@64")))
    assert meta["backend"] == "lame" and meta["library"] == codecs.codec_library("mp3@64")
