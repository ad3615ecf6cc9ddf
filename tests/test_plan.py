"""A plan before every long run: counts, bytes, free disk and time; a run that would not fit stops first."""
import re

import pytest

from codecbench.cli import main
from codecbench.run import plan as plan_module

from .plugin_args import run_plugin

TAU_SPLITS = __import__("pathlib").Path(__file__).resolve().parent / "data" / "tau2020-mobile"


def test_encode_dry_run_counts_cached_and_missing_without_coding(tmp_path, capsys):
    args = ["encode", "--cache-dir", str(tmp_path / "c"), "--dataset", "synthetic:train=1,evaluate=1,duration=1.0",
            "--condition", "mp3@32,sbc@64", "--features", "-q", "--jobs", "1"]
    assert main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "coded pairs: 0 cached, 20 to code" in out and "feature pairs: 0 cached, 20 to featurise" in out
    assert "free:" in out and "| coding " in out and "| features " in out
    assert not (tmp_path / "c" / "coded").exists()
    assert main(args) == 0
    capsys.readouterr()
    assert main(args + ["--dry-run"]) == 0
    assert "coded pairs: 20 cached, 0 to code" in capsys.readouterr().out


def test_a_run_that_would_not_fit_the_disk_stops_before_it_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plan_module, "free_bytes", lambda folder: 1000)
    args = ["encode", "--cache-dir", str(tmp_path / "c"), "--dataset", "synthetic:train=1,evaluate=1,duration=1.0",
            "--condition", "mp3@32", "-q", "--jobs", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "would grow by" in err and "only 1.0 kB are free; nothing was started" in err and "--force" in err
    assert not (tmp_path / "c" / "coded").exists()
    assert main(args + ["--force"]) == 0


def test_the_papers_experiment_is_planned_from_its_split_files_without_audio(tmp_path, capsys, monkeypatch):
    """The real fold-1 lists (no audio here): the paper's counts, bytes and hours, with the model timed quickly."""
    monkeypatch.setattr(plan_module, "model_rates", lambda config, **kw: {
        "backend": "test", "inference_clips_per_s": 10.0, "train_examples_per_s": 2.0})
    assert main(["zoo", "build", "--preset", "paper", "--dataset", str(TAU_SPLITS), "--cache-dir",
                 str(tmp_path / "c"), "--model-dir", str(tmp_path / "zoo"), "--dry-run", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "clips: 13,965 (13,965 listed files not present: estimated at 10 s each)" in out
    assert "TAU Urban Acoustic Scenes 2020 Mobile" in out
    available = [c for c in ("aac@32", "he-aac@16", "he-aac@32", "mp3@64")
                 if __import__("codecbench").codecs.availability(c)[0]]
    assert f"coded pairs: 0 cached, {13965 * len(available):,} to code" in out
    assert re.search(r"\| base training \(original audio\) +\| 126 epochs x 13,965 examples at 2.0/s", out)
    assert "| Experiment A: full fine-tuning" in out and "Experiment B: 10 segment fine-tunings" in out
    assert not (tmp_path / "zoo").exists()


def test_the_benchmark_plan_prints_and_runs_nothing(tiny, pytester, tmp_path):
    pytester.makepyfile(test_suite="def test_codec_robustness(codecbench_case, codecbench_check):\n"
                                   "    codecbench_check(codecbench_case)\n")
    result = run_plugin(
        pytester, "--model-dir", str(tiny["zoo"].root), "--dataset",
        tiny["spec"], "--cache-dir", str(tmp_path / "fresh-cache"), "--matrix", str(tiny["matrix_path"]),
        "--results", str(tmp_path / "out"), "--plan")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["plan: benchmark 4 models x 4 conditions on synthetic evaluate",
                                 "*coded pairs: 0 cached, 60 to code*", "*| evaluation *| 4 models x 20 clips*"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "fresh-cache" / "coded").exists()
    one = tiny["zoo"].names()[0]
    result = run_plugin(
        pytester, "--model-dir", str(tiny["zoo"].root), "--dataset",
        tiny["spec"], "--cache-dir", str(tmp_path / "fresh-cache"), "--matrix", str(tiny["matrix_path"]),
        "--results", str(tmp_path / "out"), "--model", one, "--plan")
    result.stdout.fnmatch_lines(["plan: benchmark 1 model x 4 conditions on synthetic evaluate",
                                 "*| evaluation *| 1 model x 20 clips*"])


pytest_plugins = ["pytester"]


def test_training_is_planned_at_the_clips_own_length(tmp_path, capsys, monkeypatch):
    """4-s clips have fewer frames than a 400-frame crop, so the crop is no crop and the plan times batches of the
    clips' own frames (it timed 400 and overestimated a 4-s training run by 1.7x)."""
    import numpy as np
    import soundfile as sf

    from codecbench.datasets import synth_scene

    seen = {}

    def rates(config, **kw):
        seen.update(kw)
        return {"backend": "test", "inference_clips_per_s": 10.0, "train_examples_per_s": 2.0}

    monkeypatch.setattr(plan_module, "model_rates", rates)
    for label in ("a", "b"):
        for k in range(3):
            (tmp_path / "d" / label).mkdir(parents=True, exist_ok=True)
            sf.write(tmp_path / "d" / label / f"{k}.wav", synth_scene(k, np.random.default_rng(k), 4.0, 44100), 44100)
    assert plan_module.clip_seconds(sorted((tmp_path / "d").rglob("*.wav"))) == 4.0
    assert main(["train", "--dataset", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c"), "--model-dir",
                 str(tmp_path / "zoo"), "--dry-run", "--jobs", "1"]) == 0
    from codecbench.signal.features import n_frames

    frames = n_frames(4 * 44100)
    assert frames < 400 and seen["full_frames"] == frames and seen["crop_frames"] == frames
    assert f"x {frames} frames (clips of 4 s)" in capsys.readouterr().out


def test_plans_price_the_crops_that_run_state_memory_and_say_when_the_machine_is_busy(tmp_path, capsys, monkeypatch):
    """reproduce's plan priced the preset's 64-frame crops where its fine-tuning scales them to the data's clips (134
    on UrbanSound8K); every training plan states what it holds in memory, and a loaded machine is said to be one."""
    import os

    seen = []

    def rates(config, **kw):
        seen.append(kw)
        return {"backend": "test", "inference_clips_per_s": 10.0, "train_examples_per_s": 2.0}

    monkeypatch.setattr(plan_module, "model_rates", rates)
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    data = "synthetic:train=2,evaluate=1,duration=4.0,seed=3"
    assert main(["reproduce", "peters", "--data", data, "--preset", "small", "--dry-run", "--out",
                 str(tmp_path / "work"), "--cache-dir", str(tmp_path / "c"), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    from codecbench.remedies.finetune import PRESETS

    preset = PRESETS["demo"]  # what reproduce --preset small runs: 64 of the demo's 79 frames
    scaled = seen[0]["crop_frames"]
    assert scaled > preset["finetune"].crop_frames and f"batch 32 x {scaled} frames" in out
    assert "memory: the model's 84,251 parameters with gradients and momentum" in out
    assert f"this machine is busy (load 64.0 on {os.cpu_count()} cores)" in out


def test_a_models_rates_are_measured_once_per_process_and_configuration(monkeypatch):
    """reproduce plans again when it resumes in the same process: the same model, shapes and schedule are not
    trained for two more calibration epochs; another shape is measured, and callers get their own copies."""
    from codecbench.models import preset_config
    from codecbench.run import rates as rates_module

    measured = []

    def measure(config, **kw):
        measured.append(kw)
        return {"backend": "test", "inference_clips_per_s": 10.0 + len(measured)}

    monkeypatch.setattr(rates_module, "_MEASURED", {})
    monkeypatch.setattr(rates_module, "_measure_model", measure)
    config = preset_config("small", (128, 36, 3), 10)
    first = rates_module.model_rates(config, batch_size=8, crop_frames=None, full_frames=36, train=False)
    first["inference_clips_per_s"] = 0.0  # a caller's change stays its own
    again = rates_module.model_rates(config, batch_size=8, crop_frames=None, full_frames=36, train=False)
    longer = rates_module.model_rates(config, batch_size=8, crop_frames=None, full_frames=72, train=False)
    assert len(measured) == 2 and again["inference_clips_per_s"] == 11.0 and longer["inference_clips_per_s"] == 12.0


def test_the_evaluation_set_is_planned_beside_the_trainings_where_an_accelerator_leaves_the_host_idle(tmp_path, capsys,
                                                                                                       monkeypatch):
    """The paper's plan on one H200-like machine (its model and feed rates, 16 cores, 15 feed workers): coded beside
    Experiments A and B, on the core-hours their feed leaves idle, the evaluation set's coding adds nothing to the
    total; with --code-ahead off it adds its own time, and on a CPU (no feed workers) it is not run beside."""
    # the rates docs/cache-and-scale.md prices the paper with (the H200's model and feed, this machine's coding)
    model, feed = (TAU_SPLITS.parents[2] / "docs" / "rates" / f"h200-{kind}.json" for kind in ("model", "feed"))
    plans = []
    report = plan_module.Plan.report
    monkeypatch.setattr(plan_module.Plan, "report", lambda self: plans.append(self) or report(self))
    checkpoint = TAU_SPLITS.parent / "models" / "smallfcnn-model-0.9618.hdf5"
    for mode in ("auto", "off"):
        assert main(["reproduce", "peters", "--data", str(TAU_SPLITS), "--checkpoint", str(checkpoint), "--dry-run",
                     "--rates", f"{model},{feed}", "--out", str(tmp_path / "work"), "--cache-dir",
                     str(tmp_path / "c"), "--code-ahead", mode]) == 0
    beside, alone = plans
    out = capsys.readouterr().out
    coding = [s for s in alone.stages if s.name == "coding + features"][1]  # the evaluation set's (23,760 pairs)
    assert "23,760 pairs" in coding.work and coding.seconds == pytest.approx(23_760 * 0.179 / 16 + 3.9)
    assert beside.seconds == pytest.approx(alone.seconds - coding.seconds)
    assert [s.name for s in beside.stages if s.beside] == ["coding + features"]
    assert "leave 9.0 core-h of the host's 16 cores idle; the work beside them takes 1.2 core-h, so it adds nothing " \
           "to the total" in out
    assert beside.bottleneck.name.startswith("Experiment B")
    # step 7 scores the 15 models together on each condition's inputs, read once: the feed's 3,030 clips/s are paid
    # once, the models' 4,761 clips/s fifteen times (it was priced as fifteen feed-bound reads: 2.0 min)
    evaluation = next(s for s in alone.stages if s.name == "evaluation")
    assert evaluation.seconds == pytest.approx(15 * 23_760 / 4761.0) and evaluation.bound_by.startswith("the model")
    assert "each condition's inputs read once for all" in evaluation.work
    # a CPU's training keeps every core busy: nothing is idle for it, and auto does not run it beside
    from codecbench.reproduce import code_ahead_jobs
    from codecbench.run.spec import RunSpec
    assert code_ahead_jobs("auto", RunSpec(), feed_workers=0) == 0
    assert code_ahead_jobs("auto", RunSpec(), feed_workers=15) >= 1 and code_ahead_jobs("off", RunSpec()) == 0
    assert code_ahead_jobs("on", RunSpec(scheduler="tcp://127.0.0.1:8786"), feed_workers=15) == 0
    busy = plan_module.Plan("p", tmp_path, 1, 0, [], cores=4, stages=[
        plan_module.Stage("train", "", 100.0), plan_module.Stage("code", "", 50.0, beside=("train",))])
    assert busy.seconds == 150.0  # a training of unknown host work is taken to keep every core busy
