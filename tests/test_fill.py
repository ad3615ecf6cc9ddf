"""The cache fill (codecbench/store/fill.py): every clip coded once per condition, in parallel on loky or a real dask
cluster, the same bytes whichever runs it, failures named and kept apart."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecbench.codecs import CodecUnavailable, roundtrip
from codecbench.codecs import parse_condition as C
from codecbench.core.cache import Cache
from codecbench.signal.audio import read_audio
from codecbench.signal.features import n_frames
from codecbench.store.fill import EncodeError, fill, load_coded
from codecbench.store.inputs import load_features

from . import optional

SR = 44100


def test_fill_counts_hits_and_misses_and_reports_bitrates(cache, wav_folder):
    first = fill(wav_folder, [C("aac@32"), C("mp3@64")], cache, jobs=2, progress=False)
    assert (first.hits, first.misses) == (0, 8)
    assert abs(first.kbps["mp3@64"] - 64) < 10
    second = fill(wav_folder, [C("aac@32"), C("mp3@64"), C("sbc@64")], cache, jobs=2, progress=False)
    assert (second.hits, second.misses) == (8, 4)
    assert "8 cache hits" in second.report() and "sbc@64" in second.report()


def test_cached_audio_equals_a_fresh_roundtrip(cache, wav_folder):
    fill(wav_folder[:1], [C("opus@64")], cache, jobs=1, progress=False)
    source, _ = read_audio(wav_folder[0])
    assert np.array_equal(load_coded(wav_folder[0], C("opus@64"), cache), roundtrip(source, SR, C("opus@64")))


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_backends_give_identical_entries(tmp_path, wav_folder, backend):
    a, b = Cache(tmp_path / "a"), Cache(tmp_path / "b")
    fill(wav_folder, [C("sbc@64")], a, jobs=1, progress=False)
    fill(wav_folder, [C("sbc@64")], b, jobs=2, backend=backend, progress=False)
    files_a = sorted(p.relative_to(a.root) for p in a.root.rglob("*.cbc"))
    assert files_a == sorted(p.relative_to(b.root) for p in b.root.rglob("*.cbc"))
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files_a)


def test_dask_local_cluster_fills_the_same_cache(tmp_path, wav_folder):
    if not optional.has_module("dask.distributed"):
        optional.missing("dask", "dask.distributed is not installed")
    ref, dask_cache = Cache(tmp_path / "ref"), Cache(tmp_path / "dask")
    fill(wav_folder, [C("aac@32")], ref, jobs=1, with_features=True, progress=False)
    summary = fill(wav_folder, [C("aac@32")], dask_cache, jobs=2, scheduler="local", with_features=True,
                   progress=False)
    assert summary.misses == len(wav_folder)
    files = sorted(p.relative_to(ref.root) for p in ref.root.rglob("*.cbc"))
    assert files and all((ref.root / f).read_bytes() == (dask_cache.root / f).read_bytes() for f in files)


@pytest.fixture
def bad_files(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "silent0.wav", np.zeros(0, dtype=np.float32), SR)
    x = np.zeros(SR // 2, dtype=np.float32)
    x[10] = np.nan
    sf.write(folder / "nan.wav", x, SR, subtype="FLOAT")
    return sorted(folder.iterdir())


def test_bad_files_raise_naming_the_file(cache, bad_files):
    for path in bad_files:
        with pytest.raises(EncodeError, match=str(path.name)):
            fill([path], [C("mp3@64")], cache, jobs=1, progress=False)


def test_skip_records_failures_and_keeps_what_was_cached(cache, wav_folder, bad_files):
    fill(wav_folder, [C("mp3@64")], cache, jobs=1, progress=False)
    before = sorted(cache.root.rglob("*.cbc"))
    summary = fill([*wav_folder, *bad_files], [C("mp3@64")], cache, jobs=2, on_error="skip", progress=False)
    assert sorted(p for p, _, _ in summary.failures) == sorted(str(p) for p in bad_files)
    assert summary.hits == len(wav_folder)
    assert all(p.is_file() for p in before)
    assert "failures (skipped)" in summary.report()


def test_stereo_and_odd_rates_are_treated_and_logged(cache, tmp_path, scene):
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([scene, scene], axis=1), SR, subtype="PCM_16")
    odd = tmp_path / "odd.wav"
    sf.write(odd, scene[: SR // 2], 22050, subtype="PCM_16")
    summary = fill([stereo, odd], [C("aac@32")], cache, jobs=1, progress=False)
    notes = dict(summary.notes)
    assert "downmixed 2 channels" in notes[str(stereo)]
    # coded at the rate it was recorded at, which AAC takes: no resampling, and the summary says so
    assert str(odd) not in notes
    assert summary.rates["aac@32"] == {"source": [22050, SR], "codec": [22050, SR]} and not summary.resampled()
    assert load_coded(odd, C("aac@32"), cache).shape == (SR // 2,)


def test_a_codec_that_cannot_take_the_sources_rate_resamples_and_says_so(cache, tmp_path, scene):
    low = tmp_path / "low.wav"
    sf.write(low, scene[: SR // 2], 22050, subtype="PCM_16")
    summary = fill([low], [C("mp3@32"), C("sbc@64"), C("opus@64")], cache, jobs=1, progress=False)
    assert summary.rates["mp3@32"] == {"source": [22050], "codec": [22050]}  # MPEG-2 Layer III: its own rate
    assert summary.rates["sbc@64"] == {"source": [22050], "codec": [32000]}  # SBC: the nearest rate above
    assert summary.rates["opus@64"] == {"source": [22050], "codec": [48000]}
    assert set(summary.resampled()) == {"sbc@64", "opus@64"}
    assert any("sbc@64: coded at 32000 Hz" in note for path, note in summary.notes)
    assert load_coded(low, C("opus@64"), cache).shape == (SR // 2,)  # back at the source's rate


def test_unavailable_condition_is_refused_before_any_work(cache, wav_folder):
    from codecbench.codecs import availability
    if availability("he-aac@16")[0]:
        optional.not_applicable("libfdk_aac is installed here, so HE-AAC is available")
    with pytest.raises(CodecUnavailable, match="libfdk_aac"):
        fill(wav_folder, [C("he-aac@16")], cache, progress=False)


def test_load_features_stacks_cached_features(cache, wav_folder):
    x, kept = load_features(wav_folder, C("mp3@32"), cache, jobs=1, progress=False)
    assert x.shape == (4, 128, n_frames(SR), 3) and kept == [0, 1, 2, 3]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_dask_scheduler_and_two_workers_fill_the_same_cache(tmp_path, wav_folder):
    """`dask scheduler` and two `dask worker` processes on localhost, as on a cluster; bytes equal a local fill."""
    import shutil
    import subprocess
    import sys
    import time

    if not optional.has_module("dask.distributed"):
        optional.missing("dask", "dask.distributed is not installed")
    dask = shutil.which("dask") or shutil.which("dask", path=str(Path(sys.executable).parent))
    if dask is None:
        optional.missing("dask", "the `dask` command (dask[distributed]) is not on PATH")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--name", f"w{i}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client
        deadline = time.time() + 120
        with Client(address, timeout="60s") as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.time() < deadline, "the two dask workers did not register in time"
                time.sleep(0.5)
        ref, remote = Cache(tmp_path / "ref"), Cache(tmp_path / "remote")
        fill(wav_folder, [C("aac@32"), C("sbc@64")], ref, jobs=1, with_features=True, progress=False)
        summary = fill(wav_folder, [C("aac@32"), C("sbc@64")], remote, scheduler=address, with_features=True,
                       progress=False)
        assert summary.misses == 2 * len(wav_folder)
        files = sorted(p.relative_to(ref.root) for p in ref.root.rglob("*.cbc"))
        assert files and files == sorted(p.relative_to(remote.root) for p in remote.root.rglob("*.cbc"))
        assert all((ref.root / f).read_bytes() == (remote.root / f).read_bytes() for f in files)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_inputs_of_clips_of_different_lengths_are_padded_to_the_longest():
    from codecbench.store.inputs import stack_to_longest

    waves = stack_to_longest([np.ones(3, np.float32), np.ones(5, np.float32)])
    assert waves.shape == (2, 5) and waves[0].tolist() == [1, 1, 1, 0, 0]  # silence after the shorter clip
    short, long = np.full((4, 2, 3), -5.0, np.float32), np.zeros((4, 6, 3), np.float32)
    short[0, 0, 0] = -9.0
    feats = stack_to_longest([short, long])
    assert feats.shape == (2, 4, 6, 3) and np.all(feats[0, :, 2:] == -9.0)  # the clip's own floor
    same = [np.arange(4.0), np.arange(4.0)]
    assert np.array_equal(stack_to_longest(same), np.stack(same))


def test_a_fill_beside_other_work_codes_in_its_own_lower_priority_process_and_stops_with_it(cache, wav_folder):
    """What reproduce codes beside its trainings: a process of its own, at a lower priority, that imports no
    framework; the entries are the ones a fill here makes, and an error in the work beside it stops it."""
    import os
    import sys
    import time

    from codecbench.store.beside import NICENESS, FillBeside
    from codecbench.store.fill import coded_key

    said = []
    conditions = [C("mp3@32"), C("wav")]
    with FillBeside(wav_folder, conditions, cache, jobs=1, say=said.append, what="the clips") as beside:
        pid = beside.process.pid
        # the child's priority, read while it runs (Linux; field 19 of /proc/PID/stat): lower than this process's
        stat = Path(f"/proc/{pid}/stat")
        niceness = None
        for _ in range(3000):
            try:
                niceness = int(stat.read_text().rsplit(")", 1)[1].split()[16])
            except (OSError, IndexError):  # it ended
                break
            if niceness > os.nice(0):
                break
            time.sleep(0.01)
    assert beside.exitcode == 0 and beside.seconds > 0, said
    if sys.platform.startswith("linux") and niceness is not None:
        assert niceness == os.nice(0) + NICENESS
    assert said[0].startswith("      note: coding the clips (4 clips x 2 conditions) beside the trainings: 1 worker")
    assert "the clips: coded beside the trainings in" in said[1]
    # the same entries a fill in this process finds: all cached
    again = fill(wav_folder, conditions, cache, with_features=True, jobs=1, progress=False)
    assert (again.hits, again.misses) == (8, 0)
    reference = Cache(cache.root.parent / "reference")
    fill(wav_folder[:1], [C("mp3@32")], reference, jobs=1, progress=False)
    from codecbench.core.fsutil import file_digest
    from codecbench.signal.audio import source_rate
    key = coded_key(file_digest(wav_folder[0]), C("mp3@32"), source_rate(wav_folder[0]))
    assert cache.path("coded", key).read_bytes() == reference.path("coded", key).read_bytes()

    # work beside it that fails stops the fill: no process is left behind
    with pytest.raises(RuntimeError, match="the training failed"):
        with FillBeside(wav_folder, [C("sbc@64")], Cache(cache.root.parent / "stopped"), jobs=1, say=said.append,
                        what="the clips") as stopped:
            raise RuntimeError("the training failed")
    assert not stopped.process.is_alive() and stopped.exitcode is None
    # a clip that cannot be read: the process says so in one line and ends with 1; the parent goes on
    broken = wav_folder[0].parent / "broken.wav"
    broken.write_bytes(b"RIFF not audio")
    with FillBeside([broken], [C("mp3@32")], Cache(cache.root.parent / "broken"), jobs=1, say=said.append,
                    what="the clips") as failing:
        pass
    assert failing.exitcode == 1 and "stopped (exit code 1); what it left is coded by the benchmark" in said[-1]
    from codecbench.errors import UsageError
    with pytest.raises(UsageError, match="jobs: 0"):
        FillBeside(wav_folder, conditions, cache, jobs=0, say=said.append, what="the clips")
