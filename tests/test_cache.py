import multiprocessing

import numpy as np
import pytest

from codecbench.codecs import parse_condition
from codecbench.codecs import parse_condition as C
from codecbench.core.cache import Cache, CacheCorruptionWarning, make_key
from codecbench.store.fill import CODED_NS, clip_key, fill


def test_store_and_load_roundtrip(cache):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.store("features", make_key("a"), x, {"k": 1})
    y, meta = cache.load("features", make_key("a"))
    assert np.array_equal(x, y) and meta == {"k": 1}
    assert cache.load("features", make_key("b")) is None
    assert cache.info()["features"]["entries"] == 1
    assert not list(cache.root.rglob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_entry_is_detected_and_recomputed(cache, wav_folder, damage):
    fill(wav_folder[:1], [C("mp3@64")], cache, jobs=1, progress=False)
    path = cache.path(CODED_NS, clip_key(wav_folder[0], parse_condition("mp3@64")))
    good = path.read_bytes()
    path.write_bytes(good[:-100] if damage == "truncate" else good[:-10] + bytes(10))
    with pytest.warns(CacheCorruptionWarning, match="corrupt"):
        summary = fill(wav_folder[:1], [C("mp3@64")], cache, jobs=1, progress=False)
    assert summary.misses == 1
    assert path.read_bytes() == good  # recomputed bit-identically


def _fill_in_process(paths, root):
    fill(paths, [C("aac@32"), C("sbc@64")], Cache(root), jobs=1, progress=False)


def test_two_processes_filling_the_same_entries_corrupt_nothing(tmp_path, wav_folder):
    root = tmp_path / "shared-cache"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_fill_in_process, args=([str(p) for p in wav_folder], str(root))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    cache = Cache(root)
    summary = fill(wav_folder, [C("aac@32"), C("sbc@64")], cache, jobs=1, progress=False)
    assert summary.misses == 0 and summary.hits == 2 * len(wav_folder)
    assert not list(root.rglob("*.tmp"))


def test_cache_location_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "env"))
    assert Cache().root == tmp_path / "env"
    assert Cache(tmp_path / "arg").root == tmp_path / "arg"
    monkeypatch.delenv("CODECBENCH_CACHE")
    assert Cache().root.parts[-2:] == (".cache", "codecbench")


def test_clear(cache):
    cache.store("coded", make_key(1), np.zeros(3))
    cache.store("features", make_key(2), np.zeros(3))
    assert cache.clear("coded") == 1
    assert "coded" not in cache.info() and cache.info()["features"]["entries"] == 1
    assert cache.clear() == 1
