"""Bounded and early: workers capped, devices, schedulers, bit rates and output folders checked before any work,
and one condition's failure confined to its own items."""
import socket
import time
import warnings

import pytest

from codecbench.codecs import parse_condition as C
from codecbench.core.parallel import SchedulerError, check_scheduler, parallel_map
from codecbench.errors import UsageError
from codecbench.run.spec import RunSpec
from codecbench.store.devices import resolve_devices

from . import optional
from .plugin_args import run_plugin

pytest_plugins = ["pytester"]


def test_jobs_beyond_the_cores_are_capped_with_a_message():
    import os

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = RunSpec.build({"jobs": "1000"}, use_pyproject=False)
    assert spec.jobs == (os.cpu_count() or 1)
    assert any("--jobs 1000: capped at" in str(w.message) for w in caught)
    assert sorted(parallel_map(abs, [-1, -2], jobs=1000)) == [1, 2]


def test_unknown_devices_are_a_usage_error_listing_what_the_backend_sees():
    with pytest.raises(UsageError, match=r"/gpu:7, /gpu:8 are not a device .* it sees .*cpu:0"):
        resolve_devices("/gpu:7,/gpu:8")
    with pytest.raises(UsageError, match="/gpu:7 is not a device"):
        resolve_devices("/gpu:7")   # one unknown name is no longer ignored and recorded as used
    assert resolve_devices("cpu:0") is None and resolve_devices("/device:CPU:0") is None


def test_an_unreachable_scheduler_is_named_within_seconds(monkeypatch):
    from codecbench.core import parallel

    monkeypatch.setattr(parallel, "SCHEDULER_TIMEOUT_S", 2)  # the limit is honoured, whatever its length
    with socket.socket() as s:   # a port on this machine that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(SchedulerError, match=f"--scheduler tcp://127.0.0.1:{port}: no dask scheduler answered"):
        check_scheduler(f"tcp://127.0.0.1:{port}")
    assert time.perf_counter() - start < 20


def _suite(pytester, tiny, *extra):
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    return run_plugin(
        pytester, "--model-dir", str(tiny["zoo"].root), "--dataset", tiny["spec"],
        "--cache-dir", str(tiny["cache"].root), "--matrix", str(tiny["matrix_path"]), "--jobs", "1",
        "--model", "base", *extra)


def test_a_read_only_or_impossible_results_folder_is_refused_before_any_work(tiny, pytester, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _suite(pytester, tiny, "--condition", "wav", "--results", str(blocker / "reports"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--results" in result.stderr.str() and "cannot write there" in result.stderr.str()
    assert "encoding" not in result.stdout.str()


def test_a_bit_rate_the_codec_cannot_code_at_the_dataset_rate_is_refused_at_validation(tiny, pytester, tmp_path):
    from codecbench import codecs

    if not codecs.availability("he-aac@16")[0]:
        optional.missing("fdk", "libfdk-aac is not installed (HE-AAC unavailable): its bit-rate ranges cannot be "
                                "checked")
    matrix = tmp_path / "m.toml"
    matrix.write_text('[categories.cat1]\nconditions = ["wav", "he-aac@8"]\n')
    result = run_plugin(
        pytester, "--model-dir", str(tiny["zoo"].root), "--dataset",
        tiny["spec"], "--cache-dir", str(tiny["cache"].root), "--matrix", str(matrix), "--jobs", "1",
        "--model", "base", "--results", str(tmp_path / "out"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "he-aac@8: for mono input at 44100 Hz the valid range is" in result.stderr.str()


def test_one_conditions_coding_failure_fails_only_its_own_evaluation(tiny, tmp_path, monkeypatch):
    """mp3@64 fails to code (a fault injected into the in-process encoder); wav, filled in the same pass, is
    still scored, and mp3@64 fails naming the error."""
    from codecbench import codecs
    from codecbench.core.cache import Cache
    from codecbench.store.fill import EncodeError

    from .evaluators import split_evaluator

    real_encode = codecs.encode

    def encode(signal, sample_rate, condition, *args, **kwargs):
        if codecs.parse_condition(condition).name == "mp3@64":
            raise RuntimeError("encoder crashed")
        return real_encode(signal, sample_rate, condition, *args, **kwargs)

    monkeypatch.setattr(codecs, "encode", encode)
    ev = split_evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], Cache(tmp_path / "c"), jobs=1,
                   backend="sequential", log=lambda m: None)
    ev.store.prepare([C("wav"), C("mp3@64")])
    assert ev.evaluate(tiny["zoo"].entry("base"), C("wav")).n == len(tiny["dataset"].clips("evaluate"))
    with pytest.raises(EncodeError, match=r"\[mp3@64\]: RuntimeError: encoder crashed"):
        ev.evaluate(tiny["zoo"].entry("base"), C("mp3@64"))


def test_an_evaluation_only_tau_folder_is_benchmarked(tiny, tmp_path):
    """Its split files list the training clips too, whose audio is not there: the benchmark needs only the
    split it scores."""
    import shutil

    from codecbench.run.session import BenchmarkSession

    root = tmp_path / "tau"
    (root / "evaluation_setup").mkdir(parents=True)
    (root / "audio").mkdir()
    rows = []
    for clip in tiny["dataset"].clips("evaluate"):
        shutil.copy(clip.path, root / clip.key)
        rows.append(f"{clip.key}\t{clip.label}")
    (root / "evaluation_setup" / "fold1_evaluate.csv").write_text("filename\tscene_label\n" + "\n".join(rows) + "\n")
    (root / "evaluation_setup" / "fold1_train.csv").write_text(
        "filename\tscene_label\naudio/airport-lisbon-1000-40000-a.wav\tairport\n")
    spec = RunSpec.build({"dataset": str(root), "model_dir": str(tiny["zoo"].root), "model": ["base"],
                          "condition": ["wav"], "cache_dir": str(tiny["cache"].root), "jobs": "1",
                          "results": str(tmp_path / "out")}, use_pyproject=False)
    session = BenchmarkSession.from_spec(spec, log=lambda m: None)
    record, verdict = session.run(session.cases()[0])
    assert record["n"] == len(rows) and verdict.passed
