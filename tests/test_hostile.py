"""Hostile and careless input (#31), one test per class of defect: wrong results without a word (sources above full
scale, CodecAugment's shapes, dtypes and threads, cache use times, non-finite cached features), hangs (a clip that is
a device), crashes (damaged cache folders, concurrent gc and clear, a relative cache folder, malformed results
files), unclear messages (a damaged resume checkpoint, CodecAugment's parameters), injection (report strings), and a
walk over every command with a malformed input: a one-line ``codecbench ...: error:``, never a traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import soundfile as sf

from codecbench.cli import COMMANDS, main
from codecbench.codecs import parse_condition as C
from codecbench.core.cache import Cache, CacheCorruptionWarning
from codecbench.datasets import load_dataset, synth_scene
from codecbench.errors import ArgumentError

SR = 44100


def _loud_folder(tmp_path, peak=40.0):
    """A folder-per-class dataset whose class ``a`` clips are float WAVs far above full scale."""
    for label in ("a", "b"):
        (tmp_path / "loud" / label).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            x = synth_scene(i, np.random.default_rng(i), 1.0, SR)
            x = (x / np.max(np.abs(x)) * (peak if label == "a" else 0.5)).astype(np.float32)
            sf.write(tmp_path / "loud" / label / f"{label}{i}.wav", x, SR, subtype="FLOAT")
    return tmp_path / "loud" / "a" / "a0.wav"


# --- wrong results without a word ---------------------------------------------------------------------------------

def test_a_source_above_full_scale_is_scaled_once_for_every_condition(tmp_path, cache):
    from codecbench.signal.audio import LEVEL_POLICY, read_source
    from codecbench.store.fill import coded_signal, fill

    path = _loud_folder(tmp_path)
    signal, _, notes = read_source(path)
    assert np.max(np.abs(signal)) == pytest.approx(1.0) and "peak 40 above full scale" in notes[0]
    summary = fill([path], [C("mp3@32"), C("sbc@64")], cache, jobs=1, progress=False)
    assert any("above full scale" in note for _, note in summary.notes)
    original = coded_signal(path, C("wav"), cache)[0]
    assert np.max(np.abs(original)) == pytest.approx(1.0)  # the original condition sees the same scaled clip
    for cond in ("mp3@32", "sbc@64"):
        coded = coded_signal(path, C(cond), cache)[0]
        assert np.max(np.abs(coded)) < 1.5, cond  # unscaled, MP3 kept a peak of 34.8 and SBC clipped at 1.0
    assert "scaled to peak 1.0" in LEVEL_POLICY


def test_the_run_metadata_records_the_level_policy_and_the_scaled_clips(tmp_path):
    from codecbench.run.session import BenchmarkSession
    from codecbench.run.spec import RunSpec

    _loud_folder(tmp_path)
    spec = RunSpec.build({"dataset": str(tmp_path / "loud"), "cache_dir": str(tmp_path / "cache"),
                          "model": "base", "condition": "mp3@32", "jobs": 1, "results": str(tmp_path / "res")},
                         use_pyproject=False)
    session = BenchmarkSession.from_spec(spec, log=lambda message: None)
    session.evaluator  # noqa: B018  (prepares the clips: codes them)
    level = session.meta()["source_level"]
    assert "scaled to peak 1.0" in level["policy"]
    scaled = {os.path.basename(p) for p in level["scaled_in_this_run"]}
    assert scaled and scaled <= {"a0.wav", "a1.wav", "a2.wav"}


@pytest.mark.parametrize("samples, message", [
    (np.zeros((11025, 2), np.float32), r"shape \(11025, 2\) has more channels than samples.*samples\.T"),
    (np.zeros(11025, np.int16), r"dtype int16.*float32 \(samples / 32768\)"),
    (np.zeros((1, 2, 3), np.float32), r"shape \(1, 2, 3\); CodecAugment takes \(n,\) or \(channels, n\)"),
    (np.zeros(0, np.float32), r"shape \(0,\)"),
])
def test_codec_augment_refuses_shapes_and_dtypes_it_would_destroy(samples, message):
    from codecbench.augment import CodecAugment

    with pytest.raises(ArgumentError, match=message):
        CodecAugment(["mp3@32"], p=1.0, seed=0)(samples, SR)


@pytest.mark.parametrize("kwargs, message", [
    ({"codecs": ["mp3"], "bitrates": {"mp3": (float("nan"), 64)}}, r"bitrates: mp3 needs finite"),
    ({"seed": -1}, r"seed: None or a whole number >= 0, got -1"),
    ({"seed": "abc"}, r"seed: None or a whole number >= 0, got 'abc'"),
    ({"p": float("nan")}, r"p: a probability in \[0, 1\], got nan"),
    ({"p": True}, r"p: a probability"),
])
def test_codec_augment_names_the_parameter_it_refuses(kwargs, message):
    from codecbench.augment import CodecAugment

    conditions = None if "codecs" in kwargs else ["mp3@32"]
    with pytest.raises(ArgumentError, match=message):
        CodecAugment(conditions, **kwargs)


def test_codec_augment_takes_numpy_probabilities_and_draws_per_thread():
    from codecbench.augment import CodecAugment
    from codecbench.codecs import roundtrip

    assert CodecAugment(["mp3@32"], p=np.float32(0.5)).p == 0.5
    augment = CodecAugment(["mp3@32", "mp3@64", "opus@16", "wav"], p=1.0, seed=3)
    x = synth_scene(2, np.random.default_rng(2), 0.25, SR)
    wrong: list = []

    def worker():
        for _ in range(12):
            y = augment(x, SR)
            cond = augment.parameters["condition"]  # this thread's own draw, whatever the other one drew since
            expected = x if cond == "wav" else roundtrip(x, SR, C(cond))
            if not np.array_equal(y, expected):
                wrong.append(cond)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_gc_keeps_entries_read_minutes_ago_though_written_long_before(cache):
    cache.store("features", "ab" * 32, np.zeros(3, np.float32))
    path = cache.path("features", "ab" * 32)
    old = time.time() - 20 * 3600
    os.utime(path, (old, old))
    assert cache.load("features", "ab" * 32) is not None  # read now
    assert cache.gc(older_than_days=0.5)["unused"] == 0 and path.is_file()
    os.utime(path, (old, old))  # not read since 20 h
    assert cache.gc(older_than_days=0.5)["unused"] == 1 and not path.exists()


def test_non_finite_cached_features_are_named_as_cache_damage_and_recomputed(tmp_path, cache):
    from codecbench.store.inputs import input_reader

    dataset = load_dataset("synthetic:train=1,evaluate=1,duration=1.0,seed=4", cache_dir=tmp_path / "data")
    clips = dataset.clips("evaluate")[:2]
    reader, _ = input_reader(clips, C("wav"), cache, jobs=1, progress=False)
    good = reader.get(0)
    entry, meta = cache.load("features", reader.keys[0])
    cache.store("features", reader.keys[0], np.full_like(entry, np.nan), meta)  # valid checksum, NaN content
    with pytest.warns(CacheCorruptionWarning, match=r"hold NaN/Inf\); removed, it will be recomputed"):
        again = reader.get(0)
    assert np.array_equal(again, good)
    stored, _ = cache.load("features", reader.keys[0])  # the damaged entry was replaced by the recomputed one
    assert np.all(np.isfinite(stored)) and np.array_equal(stored, entry)


# --- hangs ----------------------------------------------------------------------------------------------------------

def test_a_clip_that_is_a_link_to_a_device_is_refused_at_once(tmp_path, cache):
    from codecbench.store.fill import EncodeError, fill

    (tmp_path / "d" / "a").mkdir(parents=True)
    os.symlink("/dev/zero", tmp_path / "d" / "a" / "endless.wav")
    started = time.monotonic()
    with pytest.raises(EncodeError, match=r"endless\.wav.*not a regular file"):
        fill([tmp_path / "d" / "a" / "endless.wav"], [C("mp3@32")], cache, jobs=1, progress=False)
    assert time.monotonic() - started < 30


# --- crashes instead of messages ----------------------------------------------------------------------------------

def test_damaged_cache_folders_and_concurrent_gc_and_clear(tmp_path):
    cache = Cache(tmp_path / "cache")
    rng = np.random.default_rng(0)
    for i in range(400):
        cache.store("features", f"{i:064x}", rng.random(8).astype(np.float32))
    odd = cache.path("features", "ff" * 32)
    odd.mkdir(parents=True)  # a folder under an entry's name
    assert cache.gc()["damaged"] == 1 and not odd.exists()
    odd.mkdir(parents=True)
    assert main(["cache", "clear", "--cache-dir", str(cache.root)]) == 0
    for i in range(400):
        cache.store("features", f"{i:064x}", rng.random(8).astype(np.float32))
    script = ("import sys; from codecbench.core.cache import Cache; c = Cache(sys.argv[1]); "
              "[c.gc(older_than_days=0.0001) if sys.argv[2] == 'gc' else c.clear() for _ in range(3)]")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(cache.root), what], stderr=subprocess.PIPE)
             for what in ("gc", "clear", "gc", "clear")]
    errors = [p.communicate()[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors


def test_a_relative_cache_folder_is_absolute_before_it_travels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Cache("relcache").root == tmp_path / "relcache" and Cache("relcache").root.is_absolute()


@pytest.mark.parametrize("row, message", [
    ({"model": "base", "condition": "wav", "accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6}, r"'n' must be"),
    ({"model": "base", "condition": "wav", "n": 10, "accuracy": "0.5", "ci_low": 0.4, "ci_high": 0.6},
     r"'accuracy' must be a number in \[0, 1\], got '0\.5'"),
    ({"model": "base", "condition": "wav", "n": 10, "accuracy": float("nan"), "ci_low": 0.4, "ci_high": 0.6},
     r"'accuracy' must be a number in \[0, 1\], got nan"),
    ({"model": "<img src=x onerror=alert(1)>", "condition": "wav", "n": 1, "accuracy": 1.0}, r"model name"),
    ({"model": "base", "condition": "=HYPERLINK(\"x\")", "n": 1, "accuracy": 1.0}, r"condition"),
])
def test_a_malformed_results_row_is_named_with_its_file_and_index(tmp_path, capsys, row, message):
    from codecbench.results.files import FORMAT_VERSION

    path = tmp_path / "results.json"
    path.write_text(json.dumps({"format": FORMAT_VERSION, "meta": {}, "results": [row]}))
    assert main(["report", "--results", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: results[0]" in err and "Traceback" not in err
    import re
    assert re.search(message, err), err


# --- unclear messages ---------------------------------------------------------------------------------------------

def test_a_damaged_resume_checkpoint_says_what_to_delete_and_what_follows(tmp_path):
    from codecbench.errors import UsageError
    from codecbench.training.persist import load_checkpoint as _load_checkpoint
    from codecbench.zoo import Zoo

    folder = tmp_path / "zoo" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "finetuned_full.keras").write_bytes(b"half a zip")
    (folder / "finetuned_full.json").write_text(json.dumps({"kind": "keras", "epochs": 3}))
    with pytest.raises(UsageError, match=r"the resume checkpoint is damaged .* delete .*finetuned_full\.keras and its "
                                         r"\.json to restart \(the same command then starts again from the parent "
                                         r"'base' at epoch 0\)"):
        _load_checkpoint(Zoo(folder), "finetuned_full", "the same command then starts again from the parent 'base' "
                                                        "at epoch 0")


# --- injection: every string from a run reaches a report as literal text ------------------------------------------

def test_report_strings_are_literal_in_markdown_and_csv():
    import pandas as pd

    from codecbench.report.table import csv_frame, markdown_text

    assert markdown_text("<script>|x|[a](b)\n# h") == "\\<script\\>\\|x\\|\\[a\\](b) \\# h"
    frame = csv_frame(pd.DataFrame({"name": ["=1+1", "+cmd", "-2", "@x", "plain"], "v": [1, 2, 3, 4, 5]}))
    assert list(frame["name"]) == ["'=1+1", "'+cmd", "'-2", "'@x", "plain"] and list(frame["v"]) == [1, 2, 3, 4, 5]


# --- every command, a malformed input: a named error, never a traceback -------------------------------------------

def _malformed(tmp_path) -> dict[str, list[str]]:
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a model")
    nan_results = tmp_path / "nan" / "results.json"
    nan_results.parent.mkdir()
    from codecbench.results.files import FORMAT_VERSION
    nan_results.write_text(json.dumps({"format": FORMAT_VERSION, "meta": {}, "results": [
        {"model": "base", "condition": "wav", "n": 3, "accuracy": float("nan")}]}))
    (tmp_path / "file").write_text("a file")
    (tmp_path / "history").mkdir()
    (tmp_path / "history" / "history.sqlite").write_bytes(b"not sqlite at all" * 100)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    return {
        "conditions": ["conditions", "--matrix", str(tmp_path / "missing.toml")],
        "encode": ["encode", "--dataset", str(tmp_path / "no-such-folder"), *cache],
        "export": ["export", "--dataset", "synthetic:train=1,evaluate=1,duration=1", "--conditions", "wav",
                   "--to", str(tmp_path / "file"), *cache],
        "cache": ["cache", "clear", "--cache-dir", str(tmp_path)],  # a folder without the cache's marker
        "segments": ["segments", "nosuch", "--model-dir", str(tmp_path / "nozoo")],
        "import-model": ["import-model", str(garbage), "--name", "x", "--model-dir", str(tmp_path / "zoo")],
        "train": ["train", "--dataset", str(tmp_path / "file"), "--model-dir", str(tmp_path / "zoo"), *cache],
        "finetune": ["finetune", "--segment", "7", "--model-dir", str(tmp_path / "nozoo"), *cache],
        "postfilter": ["postfilter", "train", "--from", "nosuch", "--model-dir", str(tmp_path / "nozoo"), *cache],
        "zoo": ["zoo", "compare", "--other", str(tmp_path / "file"), "--model-dir", str(tmp_path / "nozoo")],
        "report": ["report", "--results", str(nan_results), "--out", str(tmp_path / "r")],
        "reproduce": ["reproduce", "peters", "--data", "synthetic:train=1,evaluate=1,duration=1", "--preset", "small",
                      "--out",
                      str(tmp_path / "file"), *cache],
        "dataset": ["dataset", "verify", "nosuch", str(tmp_path)],
        "leaderboard": ["leaderboard", str(nan_results), "--out", str(tmp_path / "lb")],
        "history": ["history", "check", "--results", str(tmp_path / "history")],  # a damaged SQLite file
        "compare": ["compare", str(nan_results), str(nan_results)],
        "thresholds": ["thresholds", "--results", str(nan_results)],
        "devices": ["devices", "--json", "--unknown-flag"],
        "bench": ["bench", "codecs", "--clips", "-3"],
        "diagnose": ["diagnose", "--model", "nosuch", "--condition", "mp3@32", "--model-dir", str(tmp_path / "nozoo"),
                     *cache],
        "consistency": ["consistency", "--from", "nosuch", "--model-dir", str(tmp_path / "nozoo"), *cache],
        "submit": ["submit", "--results", str(nan_results), "--model", "base", "--out", str(tmp_path / "s.json")],
    }


def test_every_command_answers_a_malformed_input_with_a_named_error(tmp_path, capsys):
    cases = _malformed(tmp_path)
    assert set(cases) == set(COMMANDS), "a command without a malformed-input case: add one"
    for command, argv in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse's own usage errors
                rc = exc.code
        err = capsys.readouterr().err
        assert rc not in (0, None), f"{command}: {argv} was accepted"
        if command == "history":  # `history check` reports what is wrong as its output, exit 1
            continue
        assert "Traceback" not in err and "error:" in err, f"{command}: {err[-2000:]}"
        assert (tmp_path / "file").read_text() == "a file"
