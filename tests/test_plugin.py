"""The pytest plugin, run for real through pytester on the tiny zoo."""
import json
import sqlite3
import xml.etree.ElementTree as ET

import pytest

from codecbench.codecs import parse_condition as C

from .plugin_args import PLUGIN_ARGS, run_plugin

pytest_plugins = ["pytester"]

SUITE = """
def test_codec_robustness(codecbench_case, codecbench_check):
    codecbench_check(codecbench_case)
"""


@pytest.fixture
def suite(pytester, tiny):
    pytester.makepyfile(test_suite=SUITE)

    def run(*args):
        base = ["--model-dir", str(tiny["zoo"].root),
                "--dataset", tiny["spec"], "--cache-dir", str(tiny["cache"].root), "--matrix",
                str(tiny["matrix_path"]), "--results", str(pytester.path / "reports"), "--jobs", "1"]
        return run_plugin(pytester, *base, *args)
    return run


def test_matrix_runs_records_and_summarises(suite, pytester):
    result = suite("--model", "base", "--model", "finetuned_seg10", "--junitxml", "junit.xml", "-v")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*test_codec_robustness?finetuned_seg10-mp3@32?*PASSED*",
                                 "*codecbench results (8 model x condition, synthetic)*",
                                 "| model *| wav *| mp3@64 *| mp3@32 *| sbc@64 *|"])
    reports = pytester.path / "reports"
    doc = json.loads((reports / "results.json").read_text())
    assert {(r["model"], r["condition"]) for r in doc["results"]} == {
        (m, c) for m in ("base", "finetuned_seg10") for c in ("wav", "mp3@64", "mp3@32", "sbc@64")}
    assert doc["meta"]["dataset"]["name"] == "synthetic" and len(doc["meta"]["models"]["base"]) == 64
    assert (reports / "predictions.csv").read_text().count("\n") == 1 + 8 * 20
    with sqlite3.connect(reports / "history.sqlite") as con:
        assert con.execute("select count(*) from results").fetchone()[0] == 8
        assert con.execute("select count(*) from runs").fetchone()[0] == 1
    case = ET.parse(pytester.path / "junit.xml").getroot().find(".//testcase")
    props = {p.get("name"): p.get("value") for p in case.find("properties")}
    assert {"accuracy", "ci_low", "ci_high", "threshold", "n"} <= set(props)


def test_markers_and_ids_select(suite):
    suite("--model", "base", "-m", "cat3").assert_outcomes(passed=1)
    suite("-k", "finetuned_seg9 and mp3", "-m", "finetune").assert_outcomes(passed=2)


def test_threshold_failure_shows_accuracy_interval_threshold_and_n(suite, pytester):
    pytester.path.joinpath("thr.toml").write_text('[default]\ncat1 = 0.0\n[models.base]\nwav = 1.0\n')
    result = suite("--model", "base", "--condition", "wav", "--condition", "sbc@64", "--thresholds", "thr.toml",
                   "--maxfail", "1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*base-wav: accuracy 0.* (95% CI 0.*-*, n=20) is below the threshold 1.000*"])
    # the run stopped after its first item; what it finished is in the results and the history
    doc = json.loads((pytester.path / "reports" / "results.json").read_text())
    assert [(r["model"], r["condition"], r["outcome"]) for r in doc["results"]] == [("base", "wav", "failed")]
    with sqlite3.connect(pytester.path / "reports" / "history.sqlite") as con:
        assert con.execute("select outcome from results").fetchall() == [("failed",)]


@pytest.mark.parametrize("text, message", [
    ("[models.nosuch]\nwav = 0.5\n", "models.nosuch: unknown model; the zoo has base"),
    ("[default]\n\"mp3@48\" = 0.5\n", "condition mp3@48 is not in matrix"),
    ("[default]\ncat1 = 1.5\n", "default.cat1 = 1.5: an accuracy must be a number in [0, 1]"),
])
def test_bad_thresholds_are_usage_errors_naming_the_key(suite, pytester, text, message):
    pytester.path.joinpath("thr.toml").write_text(text)
    result = suite("--thresholds", "thr.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_unknown_model_lists_the_available_ones(suite):
    result = suite("--model", "finetuned_seg77")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown model 'finetuned_seg77'" in result.stderr.str()
    assert "available: base, finetuned_full@e1, finetuned_seg9, finetuned_seg10" in result.stderr.str()


def test_regression_gate_fails_only_on_significant_drops(suite, pytester):
    suite("--model", "base", "--condition", "wav", "--condition", "sbc@64").assert_outcomes(passed=2)
    doc = json.loads((pytester.path / "reports" / "results.json").read_text())
    same = pytester.path / "same.json"
    same.write_text(json.dumps(doc))
    suite("--model", "base", "--condition", "wav", "--baseline", str(same)).assert_outcomes(passed=1)

    better = json.loads(json.dumps(doc))  # an earlier run that got every clip right
    for r in better["results"]:
        r["predictions"], r["accuracy"], r["correct"] = list(r["labels"]), 1.0, r["n"]
    (pytester.path / "better.json").write_text(json.dumps(better))
    result = suite("--model", "base", "--condition", "wav", "--condition", "sbc@64", "--baseline", "better.json")
    failed = [r for r in doc["results"] if r["accuracy"] < 0.75]
    result.assert_outcomes(failed=len(failed), passed=2 - len(failed))
    assert failed, "the tiny base model is expected to miss at least 5 of 20 clips under sbc@64"
    result.stdout.fnmatch_lines(["*dropped from 1.000 to *exact McNemar p = *< alpha 0.05*"])

    other = json.loads(json.dumps(doc))
    other["meta"]["dataset"]["fingerprint"] = "0123456789abcdef"
    (pytester.path / "other.json").write_text(json.dumps(other))
    result = suite("--model", "base", "--baseline", "other.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "cannot be compared" in result.stderr.str()
    assert "labelled differently" in result.stderr.str()


def test_adding_a_model_encodes_and_featurises_nothing_new(tiny):
    from .evaluators import split_evaluator

    def evaluator():
        return split_evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"], jobs=1,
                               log=lambda m: None)
    first = evaluator()
    for cond in ("wav", "mp3@32"):
        first.evaluate(tiny["zoo"].entry("base"), C(cond))
    second = evaluator()
    for model in ("base", "finetuned_seg9"):
        for cond in ("wav", "mp3@32"):
            second.evaluate(tiny["zoo"].entry(model), C(cond))
    assert second.counts == {"encoded": 0, "featurised_conditions": 2, "model_loads": 2, "evaluations": 4}
    base = tiny["zoo"].entry("base")
    assert second.evaluate(base, C("wav")) is second.evaluate(base, C("wav"))


def test_settings_come_from_pyproject(pytester, tiny):
    pytester.makepyfile(test_suite=SUITE)
    pytester.path.joinpath("pyproject.toml").write_text(
        "[tool.codecbench]\n"
        f'model-dir = "{tiny["zoo"].root}"\ndataset = "{tiny["spec"]}"\ncache-dir = "{tiny["cache"].root}"\n'
        f'matrix = "{tiny["matrix_path"]}"\nresults = "out"\nmodel = ["finetuned_seg9"]\ncondition = ["wav"]\n'
        "jobs = 1\n")
    result = run_plugin(pytester)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "out" / "results.json").is_file()
    pytester.path.joinpath("pyproject.toml").write_text("[tool.codecbench]\nmodle = 'x'\n")
    result = run_plugin(pytester)
    assert "unknown key(s) modle" in result.stdout.str() + result.stderr.str()


def test_a_project_that_does_not_use_codecbench_sees_only_prefixed_options(pytester):
    """Installed, the plugin loads in every pytest run of the environment: it may claim no common name."""
    import re

    from codecbench.run.spec import OPTIONS

    pytester.makepyfile(test_other="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "codecbench", "--help", timeout=600)
    text = result.stdout.str()
    assert "--codecbench-model" in text and "--codecbench-plan" in text
    short = {o.flag for o in OPTIONS.values()} | {"--plan", "--force"}
    offered = set(re.findall(r"(?m)^\s+(--[a-z][a-z-]*)", text))
    assert not offered & short, sorted(offered & short)
    # nor a marker: cat1..cat3 and finetune are registered only where benchmarks are generated
    markers = pytester.runpytest_subprocess("-p", "codecbench", "--markers", timeout=600).stdout.str()
    assert not re.search(r"(?m)^@pytest\.mark\.(cat\d|finetune)\b", markers), markers
    result = pytester.runpytest_subprocess("-p", "codecbench", "--codecbench-model", "base", "--codecbench-jobs",
                                           "x", timeout=600)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "--codecbench-jobs: expected a positive" in \
        result.stderr.str()


def test_the_gate_says_when_a_model_changed_since_the_baseline(tiny, tmp_path):
    """A different hash behind a name is worth a line even when nothing fails."""
    from codecbench.run.session import BenchmarkSession
    from codecbench.run.spec import RunSpec

    common = {"dataset": tiny["spec"], "model_dir": str(tiny["zoo"].root), "model": ["base"], "condition": ["wav"],
              "cache_dir": str(tiny["cache"].root), "jobs": "1", "matrix": str(tiny["matrix_path"])}
    first = BenchmarkSession.from_spec(RunSpec.build({**common, "results": str(tmp_path / "a")}, use_pyproject=False),
                             log=lambda m: None)
    record, _ = first.run(first.cases()[0])
    doc = {"format": 1, "meta": {**first.meta(), "models": {"base": "0" * 64}}, "results": [record]}
    (tmp_path / "base.json").write_text(json.dumps(doc))
    said = []
    second = BenchmarkSession.from_spec(RunSpec.build({**common, "results": str(tmp_path / "b"),
                                             "baseline": str(tmp_path / "base.json")}, use_pyproject=False),
                              log=said.append)
    assert any("model 'base' has changed since the baseline (sha256 000000000000 then" in m for m in said)
    _, verdict = second.run(second.cases()[0])
    assert verdict.passed


def test_a_first_run_says_what_it_does_within_seconds(pytester, tiny, tmp_path):
    """On a fresh cache the default dataset is generated first: the run says so, with an estimate, before anything
    else (measured against a bare pytest start side by side, so a loaded machine does not fail it), and generates
    only the split it evaluates, before the session starts."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pytester.makepyfile(test_suite=SUITE)
    cache = tmp_path / "fresh-cache"
    spec = "synthetic:train=3,evaluate=1,duration=1.0,seed=11"

    def first_line(*args):
        """The first line and its time, and the output up to the session's start (then the run is stopped: what
        it runs is tested elsewhere, and its start-up here cost 15 s of the suite)."""
        start = time.perf_counter()
        # a session of its own, so that stopping it stops the generation's worker processes too
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=pytester.path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - start
        rest = []
        for later in proc.stdout:
            rest.append(later)
            if "test session starts" in later:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.communicate(timeout=600)
        return line, elapsed, line + "".join(rest)

    _, bare, _ = first_line("-p", "no:cacheprovider", "--version")
    line, elapsed, out = first_line(*PLUGIN_ARGS, "-p", "no:cacheprovider", "--dataset", spec, "--cache-dir",
                                    str(cache), "--model-dir", str(tiny["zoo"].root), "--matrix",
                                    str(tiny["matrix_path"]), "--model", "base", "--condition", "wav",
                                    "--results", str(tmp_path / "reports"), "--jobs", "1")
    assert line.startswith("codecbench: generating the embedded default's evaluate split: 10 synthetic clips"), out
    assert "codecbench: about " in out and "test session starts" in out  # generated before the session starts
    # about 3 s on a quiet 2-core machine; the bare start does not feel the other xdist worker's load, which took
    # the same run to 5.1-5.6 s in full suites: the bound says "seconds", not a speed target
    assert elapsed < max(10.0, bare + 8.0), (elapsed, bare)
    (root,) = [p for p in (cache / "datasets").glob("synthetic-*") if p.is_dir()]
    generated = sorted(p.name for p in (root / "audio").iterdir())
    assert len(generated) == 10 and all("-evaluate" in name for name in generated)  # no training clip
    assert sorted(p.name for p in (root / "generated").iterdir()) == ["evaluate"]
