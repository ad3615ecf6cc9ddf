"""A broken results history costs no result: the run folder has them, the benchmark warns and passes, the
report reads read-only, and `codecbench history check|rebuild` recovers."""
import json
import sqlite3

import pytest

from codecbench.cli import main
from codecbench.results.files import HistoryError, latest_document, record_result

from .plugin_args import run_plugin

pytest_plugins = ["pytester"]


def _suite(pytester, tiny, results, *extra):
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    return run_plugin(
        pytester, "--model-dir", str(tiny["zoo"].root), "--dataset", tiny["spec"],
        "--cache-dir", str(tiny["cache"].root), "--matrix", str(tiny["matrix_path"]), "--results", str(results),
        "--jobs", "1", "--model", "base", "--condition", "wav,mp3@64", *extra)


def test_a_corrupt_history_warns_and_loses_no_result(tiny, pytester, tmp_path, capsys):
    results = tmp_path / "reports"
    results.mkdir()
    (results / "history.sqlite").write_bytes(b"this is not a database" * 100)
    run = _suite(pytester, tiny, results)
    run.assert_outcomes(passed=2)
    assert "WARNING" in run.stdout.str() and "history.sqlite" in run.stdout.str()
    assert run.stdout.str().count("WARNING: ") == 1
    doc = json.loads((results / "results.json").read_text())
    assert {(r["model"], r["condition"]) for r in doc["results"]} == {("base", "wav"), ("base", "mp3@64")}
    # check names the damage; rebuild sets the file aside and restores the history from the run folders
    assert main(["history", "check", "--results", str(results)]) == 1
    assert "damaged" in capsys.readouterr().out
    assert main(["history", "rebuild", "--results", str(results)]) == 0
    assert "rebuilt from 1 run folders (2 results)" in capsys.readouterr().out
    assert any(p.name.startswith("history.sqlite.broken-") for p in results.iterdir())
    assert main(["history", "check", "--results", str(results)]) == 0
    assert len(latest_document(results / "history.sqlite")["results"]) == 2


def test_a_locked_history_is_a_named_error_not_a_traceback(tmp_path, monkeypatch):
    from codecbench.results import files

    monkeypatch.setattr(files, "HISTORY_LOCK_TIMEOUT_S", 0.5)  # the wait, not its length, is what is tested
    path = tmp_path / "history.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE x (a)")
    con.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match=r"history.sqlite: the results history cannot be used .*rebuild"):
            record_result(path, "r", {"model": "m", "model_sha256": "", "condition": "wav", "category": None,
                                      "n": 1, "correct": 1, "accuracy": 1.0, "ci_low": 0.2, "ci_high": 1.0,
                                      "achieved_kbps": None}, "now")
    finally:
        con.rollback()
        con.close()


def test_report_opens_the_history_read_only(tiny, pytester, tmp_path):
    """Rendering with --out elsewhere changes nothing in the results folder (so a read-only one reads too)."""
    import hashlib

    results = tmp_path / "reports"
    _suite(pytester, tiny, results).assert_outcomes(passed=2)

    def state():
        return {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(results.rglob("*")) if p.is_file()}

    before = state()
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "out"), "--format", "md"]) == 0
    assert state() == before


def test_a_later_run_of_one_model_joins_the_earlier_cells_in_the_report_marked_as_theirs(tiny, pytester, tmp_path,
                                                                                          capsys):
    """Two runs into one results folder: the second re-runs some models; the report takes their cells from it and
    the others' from the first, marked `†` (what the CI example's users see after a partial run)."""
    import re

    results = tmp_path / "reports"
    # _suite runs base on wav and mp3@64; --model adds to its selection
    _suite(pytester, tiny, results, "--model", "finetuned_seg9,finetuned_seg10").assert_outcomes(passed=6)
    _suite(pytester, tiny, results, "--model", "finetuned_seg10").assert_outcomes(passed=4)
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    markdown = (tmp_path / "report" / "report.md").read_text()
    segments = markdown.split("## Segmental fine-tuning")[1].split("##")[0]
    header = [c.strip() for c in segments.splitlines()[2].strip("|").split("|")]
    wav_row = next(line for line in segments.splitlines() if "| wav " in line)
    by_column = dict(zip(header, [c.strip() for c in wav_row.strip("|").split("|")]))
    assert not by_column["seg10"].endswith("†") and not by_column["base"].endswith("†"), by_column  # the newest run
    assert by_column["seg9"].endswith("†"), by_column  # from the first
    assert re.search(r"Cells marked `†` come from earlier runs", markdown)
