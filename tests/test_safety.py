"""Defects found by adversarial testing (data loss, wrong statistics, bad option values), one test each."""
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codecbench import codecs
from codecbench.cli import main
from codecbench.codecs import parse_condition
from codecbench.codecs import parse_condition as C
from codecbench.core.cache import MARKER, CacheCorruptionWarning
from codecbench.core.fsutil import file_digest
from codecbench.datasets import DatasetError, load_folder, load_tau, synthesize
from codecbench.errors import CodecbenchError, UsageError
from codecbench.results.judge import judge
from codecbench.results.stats import paired_comparison
from codecbench.run.spec import RunSpec
from codecbench.store.fill import CODED_NS, EncodeError, achieved_kbps, clip_key, fill
from codecbench.zoo import Zoo, ZooError, packaged_model_dir

from .plugin_args import run_plugin

pytest_plugins = ["pytester"]
SR = 44100


# 1. cache clear deletes only cache entries ------------------------------------------------------

def test_clear_refuses_a_folder_without_the_cache_marker(tmp_path, capsys):
    project = tmp_path / "project"
    for sub in (".git", "src", "benchmarks"):
        (project / sub).mkdir(parents=True)
        (project / sub / "file.txt").write_text("precious")
    assert main(["cache", "clear", "--cache-dir", str(project)]) == 2
    assert "carries no codecbench cache marker" in capsys.readouterr().err
    assert sorted(p.name for p in project.iterdir()) == [".git", "benchmarks", "src"]


def test_clear_removes_entries_only_and_keeps_foreign_files(cache):
    cache.store("coded", "ab" + "0" * 62, np.zeros(3))
    cache.store("features", "cd" + "0" * 62, np.zeros(3))
    (cache.root / "coded" / "notes.txt").write_text("mine")
    (cache.root / "coded" / "ab" / "keep.wav").write_bytes(b"x")
    (cache.root / "src").mkdir()
    assert cache.clear() == 2
    assert (cache.root / "coded" / "notes.txt").is_file() and (cache.root / "coded" / "ab" / "keep.wav").is_file()
    assert (cache.root / "src").is_dir() and (cache.root / MARKER).is_file()
    assert not (cache.root / "features").exists()


@pytest.mark.parametrize("namespace", ["..", "/", "audio/../..", "models"])
def test_clear_accepts_only_known_namespaces(tmp_path, namespace, capsys):
    with pytest.raises(SystemExit) as info:
        main(["cache", "clear", "--cache-dir", str(tmp_path), "--namespace", namespace])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert tmp_path.is_dir()


# 2. clips are keyed by their path relative to the dataset root ---------------------------------

def test_clips_with_the_same_file_name_in_two_classes_pair_correctly(tmp_path):
    for label in ("bus", "park"):
        (tmp_path / label).mkdir()
        for i in range(4):
            sf.write(tmp_path / label / f"{i:03d}.wav", np.zeros(100, np.float32), SR)
    ds = load_folder(tmp_path)
    keys = [c.name for c in ds.clips("train")]
    assert len(set(keys)) == len(keys) and "bus/001.wav" in keys + [c.name for c in ds.clips("evaluate")]
    record = {"model": "m", "condition": "wav", "clips": keys, "labels": [0, 1] * (len(keys) // 2),
              "predictions": [0, 0] * (len(keys) // 2)}
    same = paired_comparison(record, json.loads(json.dumps(record)))
    assert same["p_value"] == 1.0 and same["reference_only"] == same["candidate_only"] == 0
    with pytest.raises(ValueError, match="lists a clip twice"):
        paired_comparison({**record, "clips": ["a.wav"] * len(keys)}, record)


def _tau_root(tmp_path, rows: str) -> Path:
    root = tmp_path / "tau"
    (root / "evaluation_setup").mkdir(parents=True)
    (root / "audio").mkdir()
    sf.write(root / "audio" / "a-1-a.wav", np.zeros(100, np.float32), SR)
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_text("filename\tscene_label\n" + rows)
    return root


def test_a_split_file_listing_a_clip_twice_is_refused(tmp_path):
    root = _tau_root(tmp_path, "audio/a-1-a.wav\tbus\naudio/./a-1-a.wav\tpark\n")
    with pytest.raises(DatasetError, match="fold1_evaluate.csv: 'audio/a-1-a.wav' is listed twice"):
        load_tau(root, splits=("evaluate",))


# 3. the synthetic default is generated once, safely, by concurrent processes --------------------

def _synthesize(cache_dir, queue):
    from codecbench.datasets import synthetic

    synthetic.POOL_STARTUP_S = 0.0  # a pool even for these few clips: its idle workers are part of what is tested
    try:
        queue.put(str(synthesize(cache_dir=cache_dir, seed=11, clips_per_class={"train": 1, "evaluate": 1},
                                 duration=0.5)))
    except BaseException as exc:  # reported to the parent, which fails the test
        queue.put(f"error: {exc!r}")


def test_concurrent_synthesis_does_not_race(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_synthesize, args=(str(tmp_path), queue)) for _ in range(2)]  # two racing suffice
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert len(set(results)) == 1 and not results[0].startswith("error"), results
    # the one that generated used a process pool: its idle workers must not keep it alive after its work
    assert [p.exitcode for p in procs] == [0, 0]
    root = Path(results[0])
    assert len(list((root / "audio").glob("*.wav"))) == 20 and not list(root.rglob("*.tmp"))


# 4. every unreadable cache entry heals ---------------------------------------------------------

@pytest.mark.parametrize("damage", ["dtype", "directory", "metadata", "foreign"])
def test_damaged_entries_are_reported_removed_and_recomputed(cache, wav_folder, damage):
    fill(wav_folder[:1], [C("mp3@64")], cache, jobs=1, progress=False)
    path = cache.path(CODED_NS, clip_key(wav_folder[0], parse_condition("mp3@64")))
    good = path.read_bytes()
    if damage == "directory":
        path.unlink()
        (path / "inside").mkdir(parents=True)
    elif damage == "foreign":
        path.write_bytes(b"\x00garbage")
    else:
        old, new = {"dtype": (b'"|u1"', b'"<x9"'), "metadata": (b'"encoded_bytes": ', b'"encoded_bytes": 1')}[damage]
        assert old in good
        path.write_bytes(good.replace(old, new, 1))
    with pytest.warns(CacheCorruptionWarning, match="is damaged"):
        summary = fill(wav_folder[:1], [C("mp3@64")], cache, jobs=1, progress=False)
    assert summary.misses == 1 and path.read_bytes() == good
    assert fill(wav_folder[:1], [C("mp3@64")], cache, jobs=1, progress=False).misses == 0


# 5. split files cannot reach outside the dataset root ------------------------------------------

@pytest.mark.parametrize("row", ["../outside/x.wav", "/etc/passwd", "audio/../../../etc/passwd"])
def test_split_file_paths_outside_the_root_are_refused(tmp_path, row):
    root = _tau_root(tmp_path, f"audio/a-1-a.wav\tbus\n{row}\tpark\n")
    with pytest.raises(DatasetError, match=r"fold1_evaluate.csv, row 3: .*(leaves the dataset root|not a path "
                                           r"relative)"):
        load_tau(root, splits=("evaluate",))


# 6. models are never overwritten silently, the packaged zoo never written -----------------------

def test_import_model_refuses_to_overwrite_without_force(tmp_path, capsys):
    from .test_cli import small_keras_model
    checkpoint = small_keras_model(tmp_path / "src")
    args = ["import-model", str(checkpoint), "--name", "small3", "--model-dir", str(tmp_path / "zoo")]
    assert main(args) == 0
    sha = file_digest(tmp_path / "zoo" / "small3.keras")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "small3 already exists" in err and "pass --force to replace" in err
    assert file_digest(tmp_path / "zoo" / "small3.keras") == sha
    assert main(args + ["--force"]) == 0


def test_nothing_is_written_into_the_packaged_zoo(tmp_path, monkeypatch, capsys):
    with pytest.raises(ZooError, match="packaged demo zoo, which codecbench never writes to"):
        Zoo(packaged_model_dir()).check_writable(["finetuned_seg7"])
    monkeypatch.setenv("CODECBENCH_MODELS", str(tmp_path / "user-models"))
    from .test_cli import small_keras_model
    checkpoint = small_keras_model(tmp_path / "src")
    assert main(["import-model", str(checkpoint), "--name", "mine"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "user-models" / "mine.keras").is_file() and "user-models" in out
    assert "mine" not in Zoo().names()


def test_finetune_refuses_existing_models_before_any_work(tiny, tmp_path):
    from codecbench.remedies.finetune import finetune

    base = tiny["zoo"].parent("base", "fine-tuning")
    with pytest.raises(ZooError, match="finetuned_seg9 already exists"):
        finetune(tiny["zoo"], base, tiny["dataset"], tiny["matrix"], tiny["cache"], segments=[9], epochs=1,
                 config=tiny["config"], jobs=1, verbose=0)


def test_a_killed_save_leaves_no_temporary_behind_the_next_save(tmp_path):
    import keras
    zoo = Zoo(tmp_path)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    zoo.save("a", model, {})
    stale = tmp_path / ".b.keras.abc123.999999999.tmp"  # left by a writer with a pid that no longer runs
    stale.write_bytes(b"half a model")
    zoo.save("b", model, {})
    assert not stale.exists() and zoo.names() == ["a", "b"]


# 7. option values are validated once, as usage errors ------------------------------------------

@pytest.mark.parametrize("given, message", [
    ({"tolerance": "abc"}, "--tolerance: expected a number, got 'abc'"),
    ({"tolerance": "nan"}, "--tolerance: expected a finite number, got 'nan'"),
    ({"baseline_max_changed": "inf"}, "--baseline-max-changed: expected a finite number, got 'inf'"),
    ({"baseline_metric": "f1"}, "--baseline-metric: unknown metric 'f1'"),
    ({"tolerance": "-0.1"}, "--tolerance: an accuracy drop tolerance lies in [0, 1)"),
    ({"alpha": "2"}, "--alpha: a significance level lies strictly between 0 and 1"),
    ({"jobs": "abc"}, "--jobs: expected a positive whole number"),
    ({"jobs": "0"}, "--jobs: expected a positive whole number"),
    ({"condition": [""]}, "--condition: empty"),
    ({"condition": ["mp3@999"]}, "--condition: condition 'mp3@999'"),
    ({"run_id": "../../x"}, "--run-id: a run id is"),
    ({"scheduler": "not an address"}, "--scheduler: expected 'local'"),
])
def test_bad_option_values_are_usage_errors_naming_the_option(given, message, tmp_path):
    with pytest.raises(UsageError) as info:
        RunSpec.build(given, start=tmp_path)
    assert message in str(info.value)


def test_environment_run_id_is_validated(tmp_path):
    with pytest.raises(UsageError, match=r"\$CODECBENCH_RUN_ID: a run id"):
        RunSpec.build({}, start=tmp_path, env={"CODECBENCH_RUN_ID": "../../x"})
    assert RunSpec.build({}, start=tmp_path, env={"CODECBENCH_RUN_ID": "ci-42"}).run_id == "ci-42"


def test_pyproject_values_are_validated_naming_the_file_and_key(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.codecbench]\njobs = 0\n")
    with pytest.raises(UsageError, match=r"pyproject.toml \[tool.codecbench\] jobs: expected a positive"):
        RunSpec.build({}, start=tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.codecbench]\nresults = "out"\njobs = 2\n')
    (tmp_path / "sub").mkdir()
    spec = RunSpec.build({}, start=tmp_path / "sub")  # found from a sub-folder; paths relative to the file
    assert spec.results == tmp_path / "out" and spec.jobs == 2 and spec.sources["jobs"].endswith("pyproject.toml")


@pytest.mark.parametrize("args, message", [
    (["--tolerance", "abc"], "--tolerance: expected a number, got 'abc'"),
    (["--jobs", "0"], "--jobs: expected a positive whole number"),
    (["--condition", ""], "--condition: empty"),
])
def test_bad_pytest_options_are_usage_errors_without_traceback(pytester, args, message):
    pytester.makepyfile(test_x="def test_x(): pass\n")
    result = run_plugin(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str() and "Traceback" not in result.stderr.str() + result.stdout.str()


# 8. empty selections are clear errors ----------------------------------------------------------

def test_an_empty_split_says_why_and_what_to_do(tmp_path, capsys):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        sf.write(tmp_path / label / "only.wav", np.zeros(100, np.float32), SR)
    with pytest.raises(DatasetError, match="split 'evaluate' holds no clips; use another split \\(train"):
        load_folder(tmp_path).clips("evaluate")
    assert main(["encode", "--dataset", str(tmp_path), "--cache-dir", str(tmp_path / "c"), "-q"]) == 2
    assert "at least 2 clips" in capsys.readouterr().err


def test_empty_condition_or_clip_lists_are_refused(cache, wav_folder):
    with pytest.raises(EncodeError, match="condition list is empty"):
        fill(wav_folder, [], cache, progress=False)
    with pytest.raises(EncodeError, match="selection is empty"):
        fill([], [C("mp3@64")], cache, progress=False)


# 9. smaller ------------------------------------------------------------------------------------

def test_achieved_bit_rate_is_weighted_by_duration():
    # a 10-s clip at 32 kbps and a 0.01-s clip whose header overhead reads as 400 kbps
    assert achieved_kbps([(40_000, 10.0), (500, 0.01)]) == pytest.approx((40_500 * 8 / 10.01) / 1000)
    assert achieved_kbps([(40_000, 10.0), (500, 0.01)]) < 33


@pytest.mark.parametrize("rate", [1, 0, -44100, 44100.5, 10_000_000])
def test_an_impossible_sample_rate_is_a_clear_error(rate):
    with pytest.raises(codecs.SignalError, match="sample_rate must be an integer number of Hz in 8000-384000"):
        codecs.roundtrip(np.zeros(1000, np.float32), rate, "mp3@32")


def test_commands_that_need_no_model_do_not_import_tensorflow(tmp_path):
    code = ("import sys; from codecbench.cli import main; rc = main(['conditions']); "
            "rc2 = main(['encode', '--jobs', 'abc']); "
            "print(rc, rc2, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1] == "0 2 False False", out.stderr[-2000:]


def test_every_deliberate_error_shares_one_base_class():
    from codecbench.codecs.matrix import MatrixError
    from codecbench.core.config import ConfigError
    from codecbench.models import CheckpointError
    from codecbench.results.files import ResultsError
    from codecbench.results.thresholds import ThresholdError
    for error in (ConfigError, MatrixError, CheckpointError, ResultsError, ThresholdError, DatasetError, ZooError,
                  EncodeError, codecs.CodecUnavailable, codecs.ConditionError, codecs.SignalError):
        assert issubclass(error, CodecbenchError), error


def test_judge_is_a_pure_decision():
    record = {"model": "m", "condition": "wav", "accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 100,
              "clips": [f"c{i}" for i in range(100)], "labels": [0] * 100, "predictions": [0] * 50 + [1] * 50}
    assert judge(record).passed and judge(record, 0.5).passed
    assert not judge(record, 0.6).passed
    better = {**record, "accuracy": 1.0, "predictions": [0] * 100}
    verdict = judge(record, baseline=better)
    assert not verdict.passed and verdict.facts["p_value"] < 1e-10 and "McNemar" in verdict.reasons[0]
    assert judge(record, baseline=record).passed and judge(record, baseline=better, tolerance=0.6).passed
