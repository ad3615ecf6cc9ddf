"""``codecbench reproduce peters`` end to end on a tiny synthetic configuration: killed after its first fine-tuning
epoch, the same command resumes without redoing finished work, and the report puts the paper's Table 2 beside the
run's."""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest

from .conftest import TINY_DATASET

DATA = TINY_DATASET  # its clips come generated in the tiny_data_cache fixture's cache, the commands' --cache-dir


def _command(tmp_path, *extra):
    return [sys.executable, "-m", "codecbench", "reproduce", "peters", "--data", DATA, "--preset", "small",
            "--out", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache"), "--full-epochs", "1,4",
            "--segments", "10", "--segment-epochs", "1", "--jobs", "1", *extra]


@pytest.mark.long_run
def test_reproduce_resumes_after_a_kill_and_reports_the_paper_beside_the_run(tmp_path, tiny_data_cache, capsys):
    from codecbench.cli import main

    work = tmp_path / "work"
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(_command(tmp_path), stdout=log, stderr=subprocess.STDOUT, text=True)
    checkpoint = work / "zoo" / "checkpoints" / "finetuned_full.keras"
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)  # a crash (or a reboot): no handler runs
    first.wait()
    log.close()
    assert first.returncode == -signal.SIGKILL, \
        f"the first run was not stopped after its first epoch:\n{(tmp_path / 'first.log').read_text()[-3000:]}"
    e1 = work / "zoo" / "finetuned_full@e1.keras"
    base = work / "zoo" / "base.keras"
    assert e1.is_file() and not (work / "zoo" / "finetuned_full@e4.keras").exists()
    before = {p: p.stat().st_mtime_ns for p in (e1, base)}

    # the same command again (in this process: the resumed run is what is checked, not a second start-up), coding
    # the evaluation set beside the trainings as it does on an accelerator
    assert main(_command(tmp_path)[3:] + ["--code-ahead", "on"]) == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "note: coding the evaluation set (20 clips x 8 conditions) beside the trainings" in out
    assert "the evaluation set: coded beside the trainings in" in out
    assert out.index("the evaluation set: coded beside") < out.index("[7/8]")
    assert "[2/8] base model: skipping" in out
    assert "0 coded now" in out  # the fine-tuning set was coded by the first run
    assert "skipping finetuned_full@e1 (finished)" in out
    resumed = [line for line in out.splitlines() if "resuming from the checkpoint after epoch" in line]
    assert resumed, out[-4000:]
    assert "epoch 1/4" not in out.split(resumed[0])[1]  # epoch 1 is not trained again
    assert "validation accuracy (running batch-norm statistics) wav" in out  # per epoch, on the evaluation split
    first_out = (tmp_path / "first.log").read_text()  # epoch 1 is saved: its figures are the saved model's
    assert "full fine-tuning: epoch 1/4" in first_out
    assert "validation accuracy (batch-norm statistics re-estimated, as saved) wav" in first_out
    assert {p: p.stat().st_mtime_ns for p in (e1, base)} == before
    assert (work / "zoo" / "finetuned_full@e4.keras").is_file() and (work / "zoo" / "finetuned_seg10.keras").is_file()
    assert not checkpoint.exists()  # the finished run supersedes its checkpoint

    items = sorted((work / "results" / "runs" / "reproduce" / "items").glob("*.json"))
    models = {json.loads(p.read_text())["model"] for p in items}
    assert models == {"base", "finetuned_full@e1", "finetuned_full@e4", "finetuned_seg10"}
    report = (work / "report" / "report.md").read_text()
    # synthetic data is not the paper's: the findings are compared, not the numbers
    assert "## Findings: paper vs this run (on synthetic, not the paper's data)" in report
    assert "| the base model's worst condition" in report and "mp3@32 (0.256)" in report
    assert "## Table 2: paper vs this run" not in report
    # ... and so does the CSV, naming both datasets (no TAU number set beside the synthetic one as if comparable)
    table = (work / "report" / "paper_vs_run.csv").read_text()
    assert table.splitlines()[0] == "dataset,paper_dataset,finding,paper,run"
    assert "synthetic" in table and "0.7692" not in table and "paper_inside_ci" not in table

    # a third run finds everything finished and recomputes nothing
    mtimes = {p: p.stat().st_mtime_ns for p in items}
    assert main(_command(tmp_path)[3:]) == 0
    assert f"0 results computed, {len(items)} skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in items} == mtimes


def test_reproduce_refuses_another_recipe_in_the_same_folder_and_needs_a_checkpoint(tmp_path):
    from codecbench.errors import UsageError
    from codecbench.reproduce import ReproduceOptions, _check_recipe, reproduce
    from codecbench.run.resolve import Workspace
    from codecbench.run.spec import RunSpec

    options = ReproduceOptions(paper="peters", data=DATA, out=tmp_path / "work", preset="small")
    _check_recipe(options.out, options.recipe(None))
    other = ReproduceOptions(paper="peters", data=DATA, out=tmp_path / "work", preset="small", segments=(7,))
    with pytest.raises(UsageError, match="segments: .*then"):
        _check_recipe(other.out, other.recipe(None))
    where = Workspace(RunSpec.build({"cache_dir": str(tmp_path / "cache")}, use_pyproject=False))
    with pytest.raises(UsageError, match="--checkpoint: .*10class-fcnn-model-0.7694"):
        reproduce(where, ReproduceOptions(paper="peters", data="synthetic", out=tmp_path / "w2", preset="paper"))
    with pytest.raises(UsageError, match="--checkpoint: .*missing.hdf5 is not a file"):
        reproduce(where, ReproduceOptions(paper="peters", data="synthetic", out=tmp_path / "w2",
                                          checkpoint=tmp_path / "missing.hdf5"))


def _cell(model, condition, correct, n=2970):
    """A result cell of ``correct`` of ``n`` clips, with its Wilson interval."""
    from codecbench.results.stats import wilson_interval

    low, high = wilson_interval(correct, n)
    return {"model": model, "condition": condition, "n": n, "accuracy": correct / n, "ci_low": low, "ci_high": high}


def test_paper_rows_say_whether_the_published_value_lies_in_the_interval():
    from codecbench.report.paper import load_paper, segment_rows, table2_rows
    from codecbench.report.table import ResultTable

    cell = _cell
    paper = load_paper("peters")
    doc = {"meta": {}, "results": [cell("base", "wav", 2285), cell("base", "mp3@32", 1500),
                                   cell("finetuned_seg7", "mp3@32", 1900), cell("finetuned_seg1", "mp3@32", 1600)]}
    rows = {(r["condition"], r["epoch"]): r for r in table2_rows(ResultTable(doc), paper)}
    assert rows[("wav", 0)]["paper"] == 0.7692 and rows[("wav", 0)]["paper_inside_ci"] is True  # 2285/2970 = .7694
    assert rows[("mp3@32", 0)]["paper_inside_ci"] is False and rows[("mp3@32", 0)]["delta"] > 0.2
    assert rows[("wav", 10)]["paper_inside_ci"] is None and math.isnan(rows[("wav", 10)]["run"])  # a gap
    seg = segment_rows(ResultTable(doc), paper)
    assert seg == [{"condition": "mp3@32", "best_segments": [7], "best_gain": pytest.approx(400 / 2970),
                    "ranks_of_strong": {7: 1}, "full_gain": pytest.approx(math.nan, nan_ok=True), "segments": 2}]
    with pytest.raises(Exception, match="no published numbers for paper 'nobody'"):
        load_paper("nobody")


def test_numbers_are_compared_only_on_the_papers_data_and_captions_say_what_the_run_used():
    from codecbench.report.paper import load_paper, paper_sections
    from codecbench.report.table import ResultTable

    cell = _cell
    paper = load_paper("peters")
    results = [cell("base", "wav", 2285), cell("base", "mp3@32", 760), cell("base", "mp3@64", 2000),
               cell("finetuned_full@e4", "mp3@32", 1800), cell("finetuned_full@e10", "mp3@32", 1900)]
    facts = {"finetuned_full@e4": {"strategy": "full", "epochs": 4},
             "finetuned_full@e10": {"strategy": "full", "epochs": 10}}
    tau = {"meta": {"dataset": {"name": paper["dataset_name"], "split": "evaluate"}, "model_facts": facts},
           "results": results}
    text = "\n".join(paper_sections(ResultTable(tau), paper)[0])
    assert "## Table 2: paper vs this run" in text
    wav = next(line for line in text.splitlines() if "| wav " in line and "0 (base)" in line)
    assert [c.strip() for c in wav.strip("|").split("|")][3:] == ["0.769", "0.769 [0.754, 0.784]", "+0.000", "yes"]
    assert "This run: TAU Urban Acoustic Scenes 2020 Mobile, development set (fold 1), evaluate split, 2,970 clips; " \
           "full fine-tuning saved at epochs 4, 10" in text
    assert "epoch 4 (finetuned_full@e4)" in text  # an epoch the paper did not report, as a row of its own
    urban = {"meta": {"dataset": {"name": "UrbanSound8K", "split": "evaluate"}, "model_facts": facts},
             "results": [dict(r, n=837) for r in results]}
    text = "\n".join(paper_sections(ResultTable(urban), paper)[0])
    assert "## Findings: paper vs this run (on UrbanSound8K, not the paper's data)" in text
    assert "0.769 /" not in text and "UrbanSound8K, evaluate split, 837 clips" in text
    assert "| the base model's worst condition" in text
    assert "| full fine-tuning's gain on mp3@32 after 10 epochs" in text
    # a dataset's name is the user's text: it cannot format the report or inject markup
    hostile = {"meta": {"dataset": {"name": "x](javascript:alert(1)) <b>#", "split": "evaluate"}}, "results": results}
    text = "\n".join(paper_sections(ResultTable(hostile), paper)[0])
    assert "x\\](javascript:alert(1)) \\<b\\>\\#" in text and "<b>" not in text


@pytest.mark.parametrize("text, option", [("0,1", "--full-epochs"), ("x", "--segments"), ("", "--segments")])
def test_bad_reproduce_numbers_are_usage_errors_naming_the_option(text, option):
    from codecbench.cli.reproduce_command import _numbers
    from codecbench.errors import UsageError

    with pytest.raises(UsageError, match=option):
        _numbers(text, option)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, tiny_data_cache, capsys, monkeypatch):
    from codecbench.cli import main
    from codecbench.run import plan as plan_module

    # the plan's model timing is measured for real elsewhere (test_plan); here a fixed rate keeps it short
    monkeypatch.setattr(plan_module, "model_rates", lambda config, **kw: {
        "backend": "test", "inference_clips_per_s": 100.0, "train_examples_per_s": 50.0})
    assert main(_command(tmp_path, "--dry-run")[3:]) == 0
    out = capsys.readouterr().out
    assert "[1/8] data:" in out and "[3/8] plan: reproduce peters --preset small" in out
    from codecbench import codecs
    from codecbench.codecs.matrix import load_matrix

    matrix = load_matrix("peters")
    usable = [c for c in [codecs.ORIGINAL, *matrix.finetune] if codecs.availability(c)[0]]  # HE-AAC needs libfdk-aac
    assert "| Experiment A: full fine-tuning" in out and f"4 epochs x {30 * len(usable)} examples at 50.0/s" in out
    assert "| evaluation" in out and "4 models x 20 clips x 8 conditions" in out
    assert not (tmp_path / "work").exists()


def test_reproduce_takes_folds_prints_them_with_the_split_sizes_and_records_them(tmp_path, capsys, monkeypatch):
    from codecbench.cli import main
    from codecbench.run import plan as plan_module

    from .test_folds import urbansound8k

    monkeypatch.setattr(plan_module, "model_rates", lambda config, **kw: {
        "backend": "test", "inference_clips_per_s": 100.0, "train_examples_per_s": 50.0})
    root = urbansound8k(tmp_path / "UrbanSound8K")
    checkpoint = tmp_path / "base.keras"
    checkpoint.write_bytes(b"not read by a dry run")
    argv = ["reproduce", "peters", "--data", str(root), "--checkpoint", str(checkpoint), "--preset", "small",
            "--folds", "train=1,evaluate=2+10", "--cache-dir", str(tmp_path / "cache"), "--dry-run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "[1/8] data: urbansound8k:UrbanSound8K: train 6 clips (fold 1), evaluate 12 clips (folds 2+10)" in out
    assert main(argv[:-5] + ["--cache-dir", str(tmp_path / "cache"), "--dry-run"]) == 0  # the usual split
    assert "train 12 clips (folds 1-2), evaluate 6 clips (fold 10)" in capsys.readouterr().out
    from codecbench.reproduce import ReproduceOptions
    from codecbench.run.spec import to_folds

    options = ReproduceOptions("peters", str(root), tmp_path / "w", folds=to_folds("train=1,evaluate=10", "--folds"))
    assert options.recipe(None)["folds"] == {"train": [1], "evaluate": [10]}  # another split is another recipe
    assert "folds" not in ReproduceOptions("peters", str(root), tmp_path / "w").recipe(None)


def test_a_plan_from_the_split_files_alone_trains_at_the_papers_crops(tmp_path, capsys, monkeypatch):
    """TAU's listing without its audio: the clips are planned at 10 s, so the paper's 400-frame crops (it planned
    crops of 1 frame from a length of 0)."""
    import json

    from codecbench.cli import main
    from codecbench.run import plan as plan_module

    monkeypatch.setattr(plan_module, "model_rates", lambda config, **kw: {
        "backend": "test", "inference_clips_per_s": 100.0, "train_examples_per_s": 50.0})
    rates = tmp_path / "feed.json"  # the fill priced from a file: no codec timed here
    rates.write_text(json.dumps({"modes": {}, "cores": 16, "fill_clips_per_s_per_core": 5.0, "worker_startup_s": 4.0,
                                 "feed_clips_per_s_per_worker": {"features": 200.0}}))
    assert main(["reproduce", "peters", "--data", "tests/data/tau2020-mobile", "--checkpoint",
                 "tests/data/models/smallfcnn-model-0.9618.hdf5", "--out", str(tmp_path / "w"), "--cache-dir",
                 str(tmp_path / "cache"), "--rates", str(rates), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "13,965 listed files not present: estimated at 10 s each" in out
    assert "at batch 32 x 400 frames (clips of 10 s)" in out


def test_a_presets_crops_scale_to_the_datas_clip_length():
    from codecbench.remedies.finetune import PRESETS
    from codecbench.training.schedule import crops_for

    demo = PRESETS["demo"]["finetune"]
    assert crops_for(demo, 79, 79) == demo  # the demo's own 2-s clips: 64 of 79 frames
    ten_seconds = crops_for(demo, 79, 423)  # TAU's 10-s clips: the same share of each clip, not 64 frames
    assert (ten_seconds.crop_frames, ten_seconds.time_mask_frames) == (343, 54)
    paper = PRESETS["paper"]["finetune"]
    four_seconds = crops_for(paper, 423, 165)  # UrbanSound8K's 4-s clips under the paper's 400 of 423
    assert four_seconds.crop_frames == 156 and four_seconds.crop_frames <= 165
