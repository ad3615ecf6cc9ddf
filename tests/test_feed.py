"""Feeding an accelerator: the log-mel front-end as Keras ops against librosa (values and predictions), worker
processes that read exactly what the reader reads, `bench feed` on a tiny configuration, and plans that price every
stage from measured rates and name the stage (and the part of it) that bounds the run."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

#: largest difference allowed between the device front-end and the librosa features, on their [0, 1] scale
FRONTEND_TOLERANCE = 1e-4


@pytest.mark.parametrize("source_rate", [22050, 44100, 48000])
@pytest.mark.backend_matrix
def test_the_device_front_end_matches_the_librosa_features(source_rate):
    from codecbench.core.backend import keras
    from codecbench.core.dsp import resample
    from codecbench.datasets import synth_scene
    from codecbench.models.frontend_layer import LogMelLayer
    from codecbench.signal import features
    from codecbench.signal.frontends import BASELINE

    n = 2 * 44100
    clips = []
    for i in range(3):
        x = synth_scene(3 * i, np.random.default_rng(i), 2.0, source_rate).astype(np.float32)
        clips.append(np.pad(resample(x, source_rate, 44100), (0, n))[:n].astype(np.float32))
    clips[-1][n // 2:] = 0.0  # digital silence in half a clip: the log offset's floor, as a codec's empty band
    reference = np.stack([features.extract(c) for c in clips])
    out = keras.ops.convert_to_numpy(LogMelLayer.from_frontend(BASELINE)(np.stack(clips)))
    assert out.shape == reference.shape and out.dtype == np.float32
    assert np.max(np.abs(out - reference)) <= FRONTEND_TOLERANCE


@pytest.mark.backend_matrix
def test_the_layer_computes_in_float32_under_a_bfloat16_model_and_round_trips_its_config():
    from codecbench.core.backend import keras
    from codecbench.models.frontend_layer import LogMelLayer
    from codecbench.signal.frontends import parse_frontend

    frontend = parse_frontend("logmel:n_mels=64,deltas=false,normalise=none")
    layer = LogMelLayer.from_frontend(frontend, dtype="mixed_bfloat16")
    assert layer.dtype_policy.name == "float32"
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert again.get_config() == layer.get_config()
    assert again.compute_output_shape((None, 44100)) == (None, 64, 44, 1)


@pytest.mark.backend_matrix
def test_models_with_the_front_end_on_the_device_predict_as_with_cached_features(tiny):
    """The same network, fed cached features or decoded waveforms with the log-mel computed in Keras ops."""
    from codecbench.codecs import parse_condition

    from .evaluators import split_evaluator

    runs = {}
    for on_device in (False, True):
        evaluator = split_evaluator(tiny["dataset"], "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"], jobs=1,
                                    progress=False, log=lambda m: None, frontend_on_device=on_device)
        base = tiny["zoo"].entry("base")
        runs[on_device] = {c: evaluator.evaluate(base, parse_condition(c)) for c in ("wav", "mp3@32")}
        assert evaluator.model(base).frontend.on_device is on_device
    for cond in ("wav", "mp3@32"):
        host, device = runs[False][cond], runs[True][cond]
        agree = np.mean(np.array(host.predictions) == np.array(device.predictions))
        assert host.n == device.n == 20 and agree >= 0.995, (cond, agree)


def test_an_on_device_front_end_is_declared_in_sidecars_and_caches_no_features():
    from codecbench.signal.frontends import BASELINE, FrontEndError, parse_frontend

    fe = parse_frontend("hu2020:on_device")
    assert fe.on_device and not fe.cached and fe.on_host == BASELINE
    assert parse_frontend(fe.to_dict()) == fe and "on_device" not in BASELINE.to_dict()
    assert fe.describe() == "hu2020 log-mel + deltas on the model's device"
    assert len(fe(np.zeros(44100, dtype=np.float32), 44100)) == 44100  # the host hands over the waveform
    with pytest.raises(FrontEndError, match="on_device 'yes'"):
        parse_frontend({"kind": "logmel", "on_device": "yes"})


def test_worker_processes_read_exactly_what_the_reader_reads(tiny):
    from codecbench.codecs import parse_condition
    from codecbench.signal.frontends import FrontEnd
    from codecbench.store.feed import ProcessFeed, feeding
    from codecbench.store.inputs import input_reader

    clips = tiny["dataset"].clips("evaluate")
    for frontend in (None, FrontEnd("waveform", 16000)):
        reader, _ = input_reader(clips, parse_condition("mp3@64"), tiny["cache"], frontend=frontend, jobs=1,
                                 progress=False)
        feed = ProcessFeed(reader, workers=2)
        order = [7, 3, 19, 0, 11, 5, 2]
        assert np.array_equal(feed(order), reader(order))
        assert np.array_equal(feed([4]), reader([4])) and len(feed) == len(reader)
    assert feeding(reader, workers=0) is reader
    assert isinstance(feeding(reader, workers=2), ProcessFeed)


def test_bench_feed_runs_on_a_tiny_configuration():
    from codecbench.bench.feed import bench_feed, format_feed_bench
    from codecbench.bench.fill import STEADY_CLIPS_PER_WORKER

    result = bench_feed(clips=3, seconds=1.0, rounds=1, workers=[1])
    assert set(result["modes"]) == {"features", "waveforms"}
    for row in result["modes"].values():
        assert row["in_process"] > 0 and row["workers"][1] > 0 and row["per_core_all_cores"] > 0
    assert result["feed_clips_per_s_per_worker"]["features"] == result["modes"]["features"]["per_core_all_cores"]
    # steady-state coding with the start-up apart, and the decoder alone beside the waveform feed
    assert result["fill_clips_per_s_per_core"] > 0 and result["worker_startup_s"] >= 0
    # several clips per worker: no worker ends alone on the last one
    assert result["fill_clips"] == max(3, STEADY_CLIPS_PER_WORKER * result["cores"])
    # the original's pairs (features only) at their own rate (how it compares with coding is bench feed's to print,
    # not a timed assertion's), and the CPU they ran on
    assert result["fill_original_clips_per_s_per_core"] > 0
    assert result["host"]["cpu"] and "simd" in result["host"]
    assert result["decoder_alone_clips_per_s"] > 0 and result["decoder_every_core_clips_per_s_per_core"] > 0
    assert result["waveforms_over_decoder_every_core"] == pytest.approx(
        result["modes"]["waveforms"]["per_core_all_cores"] / result["decoder_every_core_clips_per_s_per_core"])
    assert result["waveforms_over_decoder"] == pytest.approx(
        result["modes"]["waveforms"]["per_core_all_cores"] / result["decoder_alone_clips_per_s"])
    text = format_feed_bench(result)
    assert "per core, all cores working" in text and "targets:" in text and "the decoder alone" in text
    assert f"cores of {result['host']['cpu']} (SIMD: " in text.splitlines()[0]
    assert "features alone (the original" in text
    assert "every core decoding" in text and "x the decoder on every core" in text


def test_bench_feed_checks_the_disk_first_and_leaves_no_folder_when_stopped(tmp_path, monkeypatch):
    """200,000 paper-size clips do not fit: refused before a clip is written. A run stopped by SIGTERM removes its
    folder, and a folder left by a run killed outright (SIGKILL) is removed by the next."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from codecbench.bench import feed as bench
    from codecbench.bench import scratch
    from codecbench.errors import EnvironmentProblem

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(bench.tempfile, "tempdir", None)  # TMPDIR read again
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    with monkeypatch.context() as small_disk, pytest.raises(
            EnvironmentProblem, match=r"--clips 200000: needs about 441\.0 GB in .* which has 50\.0 GB free; use "
                                      r"fewer --clips, or point TMPDIR at a larger disk"):
        small_disk.setattr(scratch.shutil, "disk_usage", lambda path: usage(10**12, 0, 50 * 10**9))
        bench.bench_feed(clips=200_000)
    assert not list(tmp_path.glob("codecbench-feed-*"))
    abandoned = tmp_path / "codecbench-feed-old"
    abandoned.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (abandoned / ".pid").write_text(str(dead.pid))  # a process that is gone
    run = subprocess.Popen([sys.executable, "-m", "codecbench", "bench", "feed", "--clips", "400"],
                           env={**os.environ, "TMPDIR": str(tmp_path)}, stderr=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not [p for p in tmp_path.glob("codecbench-feed-*") if (p / ".pid").is_file() and p != abandoned] and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert not abandoned.exists()  # removed when the new run started
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) != 0
    assert not list(tmp_path.glob("codecbench-feed-*"))
    bench.tempfile.tempdir = None


def _rates(tmp_path, *, train=3000.0, infer=6000.0, feed=400.0, fill=0.5, cores=16, startup=None, segments=None,
           original=None):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"rates": {"train_examples_per_s": train, "inference_clips_per_s": infer,
                                           "precision": "mixed_bfloat16", "device": "cuda:0 NVIDIA H200",
                                           **({} if segments is None else
                                              {"segment_train_examples_per_s": segments})}}))
    feed_file = tmp_path / "feed.json"
    feed_file.write_text(json.dumps({"modes": {}, "cores": cores, "fill_clips_per_s_per_core": 1.0 / fill,
                                     "feed_clips_per_s_per_worker": {"features": feed, "waveforms": feed / 3},
                                     **({} if startup is None else {"worker_startup_s": startup}),
                                     **({} if original is None else
                                        {"fill_original_clips_per_s_per_core": 1.0 / original})}))
    from codecbench.run.rates import Rates
    return Rates.from_files([model, feed_file])


@pytest.mark.parametrize("case, rates, stage, bound", [
    # a fast GPU starved by 15 feed workers at 10 paper-size clips/s (100 of these 1-s clips): the feed bounds it
    ("feed-bound", dict(train=3000.0, feed=10.0, fill=0.01), "fine-tune", "the feed (15 workers)"),
    # a CPU-speed model: the model bounds it
    ("model-bound", dict(train=3.0, feed=400.0, fill=0.01), "fine-tune", "the model (cuda:0 NVIDIA H200)"),
    # slow codecs on few cores: coding is the largest stage
    ("coding-bound", dict(train=3000.0, feed=400.0, fill=500.0, cores=2), "coding + features", "coding (2 cores)"),
])
def test_the_plan_names_the_bottleneck_from_given_rates(tiny, tmp_path, case, rates, stage, bound):
    from codecbench.codecs import parse_condition
    from codecbench.core.cache import Cache
    from codecbench.models import preset_config
    from codecbench.run.plan import training_plan
    from codecbench.training.schedule import TrainingRun

    given = _rates(tmp_path, **rates)
    empty = Cache(tmp_path / "cache")  # everything still to code
    plan = training_plan(case, tiny["dataset"], [parse_condition("wav"), parse_condition("mp3@64")], empty,
                         config=preset_config("small", (128, 40, 3), 10), train_config=tiny["config"],
                         runs=[TrainingRun("fine-tune", 10)], jobs=2, rates=given)
    assert plan.bottleneck.name == stage and plan.bottleneck.bound_by == bound, plan.report()
    text = plan.report()
    assert f"bottleneck: {stage}" in text and "time on the machine of" in text


def test_a_plan_with_no_training_left_does_not_time_the_model(tiny, tmp_path, monkeypatch):
    """A repeated or resumed reproduce whose trainings all finished plans the fill alone: timing the model would
    build, compile and train it for two short epochs to price nothing."""
    from codecbench.codecs import parse_condition
    from codecbench.core.cache import Cache
    from codecbench.models import preset_config
    from codecbench.run import plan as plans

    def refuse(*args, **kwargs):
        raise AssertionError("the model was timed for a plan with no training")

    monkeypatch.setattr(plans, "model_rates", refuse)
    plan = plans.training_plan("finished", tiny["dataset"], [parse_condition("wav")], Cache(tmp_path / "cache"),
                               config=preset_config("small", (128, 40, 3), 10), train_config=tiny["config"], runs=[],
                               jobs=1, rates=_rates(tmp_path, startup=1.0, original=0.01))
    assert [s.name for s in plan.stages] == ["coding + features"]
    assert "no training left to run: the model is not timed" in plan.report()


def test_a_plan_adds_the_workers_start_up_once_to_the_steady_coding_rate(tmp_path):
    """A rates file with start-up measured apart: pairs x core-s / cores, plus the start-up once (the workers start
    together); an older file without it prices with its rate alone and says that the rate includes start-up."""
    from codecbench.codecs import parse_condition
    from codecbench.core.cache import Cache
    from codecbench.run.plan import fill_stage, new_plan

    clips = [str(tmp_path / f"clip{i}.wav") for i in range(100)]
    conditions = [parse_condition("mp3@64")]
    plan = new_plan("check", clips, conditions, Cache(tmp_path / "cache"))
    plan.coded_missing = plan.features_missing = 100
    (stage,) = fill_stage(plan, 10.0, 2, None, _rates(tmp_path, fill=0.4, cores=4, startup=3.0))
    assert stage.seconds == pytest.approx(100 * 0.4 / 4 + 3.0) and "+ 3.0 s start-up" in stage.work
    (older,) = fill_stage(plan, 10.0, 2, None, _rates(tmp_path, fill=0.4, cores=4))
    assert older.seconds == pytest.approx(100 * 0.4 / 4) and "start-up included in that rate" in older.work
    plan.coded_missing = plan.features_missing = 0
    (nothing,) = fill_stage(plan, 10.0, 2, None, _rates(tmp_path, fill=0.4, cores=4, startup=3.0))
    assert nothing.seconds == 0.0  # nothing to code: no worker starts
    with pytest.raises(Exception, match="worker_startup_s is -1, expected a number >= 0"):
        _rates(tmp_path, startup=-1)


def test_a_plan_prices_the_originals_pairs_at_their_own_rate_where_a_rates_file_has_it(tmp_path):
    """The original's pairs are featurised only (no encode, no decode): a rates file from ``bench feed`` carries
    their rate, and the plan prices them with it; an older file has none, and they are priced as coded pairs."""
    from codecbench.codecs import parse_condition
    from codecbench.core.cache import Cache
    from codecbench.run.plan import fill_stage, new_plan, plan_fill

    clips = [str(tmp_path / f"clip{i}.wav") for i in range(100)]  # absent: counted as 10-s clips
    conditions = [parse_condition("wav"), parse_condition("mp3@64"), parse_condition("aac@32")]
    cache = Cache(tmp_path / "cache")
    plan = plan_fill(new_plan("check", clips, conditions, cache), clips, conditions, cache, with_features=True)
    assert (plan.coded_missing, plan.features_missing, plan.original_features_missing) == (200, 300, 100)
    (stage,) = fill_stage(plan, 10.0, 2, None, _rates(tmp_path, fill=0.4, cores=4, startup=3.0, original=0.02))
    assert stage.seconds == pytest.approx((200 * 0.4 + 100 * 0.02) / 4 + 3.0)
    assert "200 pairs, 0.40 core-s each, and 100 of the original, 0.020 core-s each, 4 cores" in stage.work
    (older,) = fill_stage(plan, 10.0, 2, None, _rates(tmp_path, fill=0.4, cores=4, startup=3.0))
    assert older.seconds == pytest.approx(300 * 0.4 / 4 + 3.0) and "of the original" not in older.work
    with pytest.raises(Exception, match="fill_original_clips_per_s_per_core is -1"):
        _rates(tmp_path, original=-1.0)
    # an hour or more: the total in minutes too (in hours it is rounded to 6 minutes)
    plan.stages = [dataclasses.replace(stage, seconds=3630.0)]
    assert "| 1.0 h (60.5 min)" in plan.report()


def test_experiment_b_is_priced_per_segment_measured_or_by_its_arithmetic(tiny, tmp_path, monkeypatch):
    """Each segment at its own rate: the measured one a rates file carries (``bench model --segments``), else the
    full step's rate over the segment's share of the arithmetic; a plan says which. Where an accelerator's feed
    reads the data the segments train together on one pass: the model's times add up, the feed's is paid once."""
    from codecbench.codecs import parse_condition
    from codecbench.core.cache import Cache
    from codecbench.models import build_fcnn, preset_config, training_step_shares
    from codecbench.run.plan import training_plan
    from codecbench.run.rates import Rates, RatesError
    from codecbench.training.schedule import TrainingRun

    config = preset_config("small", (128, 40, 3), 10)
    runs = [TrainingRun("Experiment A", 2), TrainingRun("Experiment B", 3, segments=(2, 7))]
    monkeypatch.setenv("CODECBENCH_FEED_WORKERS", "0")  # this machine's feed, where a plan uses it: in process

    def plan_with(model_only=False, feed=1e6, **rates):
        given = _rates(tmp_path, train=100.0, feed=feed, **rates)
        if model_only:  # no feed file: this machine's feed, which has no worker processes (no accelerator here)
            given = Rates.from_files([tmp_path / "model.json"])
        return training_plan("segments", tiny["dataset"], [parse_condition("wav")], Cache(tmp_path / "cache"),
                             config=config, train_config=tiny["config"], runs=runs, jobs=2, rates=given)

    def stage(plan, name):
        return next(s for s in plan.stages if s.name == name)

    examples = len(tiny["dataset"].clips("train"))
    shares = training_step_shares(build_fcnn(config), tiny["config"].crop_frames)  # the clips are longer
    by_arithmetic = plan_with()
    assert stage(by_arithmetic, "Experiment A").seconds == pytest.approx(2 * examples / 100.0)
    segments = stage(by_arithmetic, "Experiment B")
    assert segments.seconds == pytest.approx(3 * examples * (shares[2] + shares[7]) / 100.0)
    assert segments.seconds < 2 * 3 * examples / 100.0  # less than full fine-tuning twice over
    assert "2 segments together on one pass of the data" in segments.work and "the model" in segments.bound_by
    assert any("share of a full step's arithmetic" in note for note in by_arithmetic.notes)
    # a slow feed: paid once for both segments, not once each
    starved = stage(plan_with(feed=0.5), "Experiment B")
    assert starved.bound_by == "the feed (15 workers)"
    assert starved.seconds == pytest.approx(3 * examples / (0.5 * 10.0 / 1.0 * 15))  # 1-s clips: 10x a 10-s one
    measured = plan_with(model_only=True, segments={str(k): 50.0 * k for k in shares})
    segments = stage(measured, "Experiment B")
    assert segments.seconds == pytest.approx(3 * examples * (1 / 100.0 + 1 / 350.0))
    assert "per segment at 100.0-350.0/s" in segments.work and any("measured on" in note for note in measured.notes)
    for bad, why in (({"one": 3.0}, "has the key 'one'"), ({"2": float("nan")}, r"\[2\] is nan"), ([], "expected")):
        with pytest.raises(RatesError, match=f"model.json: rates.segment_train_examples_per_s.*{why}"):
            _rates(tmp_path, segments=bad)


def test_bench_fill_sets_the_fill_beside_the_sum_of_its_parts():
    from codecbench.bench.fill import bench_fill, format_fill_bench
    from codecbench.codecs import parse_condition

    result = bench_fill(clips=2, seconds=1.0, conditions=[parse_condition("mp3@64")], jobs=2, repeats=1,
                        clips_per_worker=2)
    row = result["conditions"]["mp3@64"]
    assert row["parts_s"] == pytest.approx(row["encode_s"] + row["decode_s"] + row["frontend_s"])
    # the fill does the parts and more (reading, hashing, two cache writes): never less than a fraction of them
    assert row["fill_s"] > 0.5 * row["parts_s"] and row["fill_over_parts"] == pytest.approx(row["fill_s"] /
                                                                                           row["parts_s"])
    # the parts on 2 clips; the matrix's fills on 2 per worker, so that no worker ends alone on the last clip
    jobs = result["jobs"]  # 2, or 1 on a one-core runner
    assert result["scale_clips"] == max(2, 2 * jobs) and result["pairs"] == result["scale_clips"]
    assert result["speedup"] == pytest.approx(result["one_job_s"] / result["jobs_s"])
    assert result["worker_startup_s"] >= 0.0
    text = format_fill_bench(result)
    assert "fill/parts" in text and "start-up" in text and "targets:" in text
    assert f"{result['pairs']} pairs ({result['scale_clips']} clips)" in text


def test_bench_plan_plans_a_fill_then_runs_it_and_prints_both():
    from codecbench.bench.plan_check import bench_plan, format_plan_bench

    result = bench_plan(clips=3, seconds=1.0)
    assert [s["name"] for s in result["stages"]] == ["coding", "features"]
    assert result["planned_s"] > 0 and result["planned_s"] == pytest.approx(sum(s["seconds"] for s in result["stages"]))
    assert result["measured_s"] > 0 and result["measured_over_planned"] == pytest.approx(
        result["measured_s"] / result["planned_s"])
    text = format_plan_bench(result)
    assert "planned in all" in text and "x the plan" in text and "targets: within 15%" in text


def test_rates_files_that_cannot_be_used_are_named(tmp_path):
    from codecbench.errors import message
    from codecbench.run.rates import RatesError
    from codecbench.run.spec import RunSpec

    (tmp_path / "other.json").write_text('{"batches": {}}')
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "bad.json").write_text('{"rates": {"train_examples_per_s": -1, "inference_clips_per_s": 5}}')
    (tmp_path / "inf.json").write_text('{"rates": {"train_examples_per_s": 5, "inference_clips_per_s": Infinity}}')
    for name, why in (("missing.json", "cannot read it"), ("broken.json", "not JSON"),
                      ("other.json", "neither `codecbench bench model --json`"),
                      ("bad.json", "train_examples_per_s is -1, expected a positive, finite number"),
                      ("inf.json", "inference_clips_per_s is inf, expected a positive, finite number")):
        with pytest.raises(RatesError, match=f"{name}.*{why}") as raised:
            RunSpec.build({"rates": str(tmp_path / name)}, use_pyproject=False)
        # kept in its family (a file that cannot be used), the option noted for the edges to print first
        assert message(raised.value).startswith(f"--rates: {tmp_path / name}: ")


def test_compare_fails_below_the_agreement_asked_for(tmp_path, capsys):
    from codecbench.cli import main
    from codecbench.results.files import load_results

    doc = load_results("reports/example/results.json")
    changed = json.loads(json.dumps(doc))
    cell = changed["results"][0]
    flipped = [(p + 1) % 10 for p in cell["predictions"][:3]] + cell["predictions"][3:]
    cell["predictions"] = flipped
    # a consistent row (results that contradict themselves are refused on reading): its count and accuracy follow
    cell["correct"] = sum(int(a == b) for a, b in zip(cell["labels"], flipped))
    cell["accuracy"] = cell["correct"] / cell["n"]
    (tmp_path / "results.json").write_text(json.dumps(changed))
    assert main(["compare", "reports/example/results.json", str(tmp_path / "results.json"), "--json",
                 "--min-agreement", "0.995"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["min_agreement"] == pytest.approx(297 / 300) and found["identical"] == found["paired"] - 3
    assert main(["compare", "reports/example/results.json", "reports/example/results.json",
                 "--min-agreement", "0.995"]) == 0


@pytest.mark.backend_matrix
def test_training_read_by_worker_processes_gives_the_same_weights(tiny, monkeypatch):
    """A batch is a function of (seed, epoch, index) alone, so who reads it cannot change what is trained."""
    from codecbench.codecs import parse_condition
    from codecbench.core.backend import keras
    from codecbench.models import build_fcnn, preset_config
    from codecbench.store.inputs import input_reader
    from codecbench.training.loop import fit

    reader, _ = input_reader(tiny["dataset"].clips("train"), parse_condition("mp3@64"), tiny["cache"], jobs=1,
                             progress=False)
    labels = tiny["dataset"].labels("train")
    weights = {}
    for workers in ("0", "2"):
        monkeypatch.setenv("CODECBENCH_FEED_WORKERS", workers)
        keras.utils.set_random_seed(1)  # a fresh model with the same initial weights each time
        model = build_fcnn(preset_config("small", reader([0]).shape[1:], 10))
        fit(model, reader, labels, tiny["config"], verbose=0)
        weights[workers] = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(weights["0"], weights["2"]))


@pytest.fixture
def made_blocks(monkeypatch):
    """The names of the shared blocks the feed creates during the test (other processes of the machine make their
    own), none kept from an earlier test of this process."""
    from codecbench.store import feed

    made = []

    class Recorded(feed.SharedMemory):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if kwargs.get("create"):
                made.append(self.name)

    monkeypatch.setattr(feed, "SharedMemory", Recorded)
    feed.shutdown()
    return made


def test_a_killed_feed_worker_is_replaced_and_the_batch_read_again(tmp_path, made_blocks):
    """One worker killed as the OOM killer does (SIGKILL): the next batch starts a new pool and reads right; workers
    that die on every try end in a named error; no shared-memory block is left either way."""
    import os
    import signal
    import time
    from pathlib import Path

    from codecbench.store import feed

    from .feed_readers import Ramp

    made = made_blocks
    reader = feed.ProcessFeed(Ramp(range(8)), workers=2)
    np.testing.assert_array_equal(reader(range(8)), Ramp(range(8))(range(8)))
    pool = feed.shared_pool(2)
    os.kill(next(iter(pool._processes)), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not pool._broken and time.monotonic() < deadline:  # until the pool has seen its worker die
        time.sleep(0.05)
    np.testing.assert_array_equal(reader([7, 1, 3, 5]), Ramp(range(8))([7, 1, 3, 5]))
    assert feed.shared_pool(2) is not pool  # rebuilt, and kept for the batches after
    (tmp_path / "die").touch()
    dying = feed.ProcessFeed(Ramp(range(8), dies=str(tmp_path / "die")), workers=2)
    dying._sample = np.zeros(4, dtype=np.float32)  # the shape, without reading here (which would exit this process)
    with pytest.raises(feed.FeedError, match="died twice reading a batch of 8 clips.*CODECBENCH_FEED_WORKERS=0"):
        dying(range(8))
    # a read batch's block serves the next batches (one made for all three); the batch that failed removed it
    assert len(made) == 1 and not (Path("/dev/shm") / made[0].lstrip("/")).exists()
    np.testing.assert_array_equal(reader(range(8)), Ramp(range(8))(range(8)))
    assert len(made) == 2 and (Path("/dev/shm") / made[1].lstrip("/")).exists()  # kept for the next batch
    feed.shutdown()
    assert not [name for name in made if (Path("/dev/shm") / name.lstrip("/")).exists()]


def test_a_batch_is_lent_without_a_copy_and_its_block_serves_again_only_once_it_is_gone(made_blocks, monkeypatch):
    """The batch is the shared block itself: while any view of it lives, no later batch is read into it."""
    from pathlib import Path

    from codecbench.store import feed

    from .feed_readers import Ramp

    made = made_blocks
    reader = feed.ProcessFeed(Ramp(range(8)), workers=2)
    first = reader(range(8))
    part = first[4:]
    expected = part.copy()
    del first
    second = reader(range(7, -1, -1))
    np.testing.assert_array_equal(part, expected)  # its block was not lent again
    np.testing.assert_array_equal(second, Ramp(range(8))(range(7, -1, -1)))
    assert len(made) == 2 and part.flags.writeable
    del part, second
    np.testing.assert_array_equal(reader(range(8)), Ramp(range(8))(range(8)))
    assert len(made) == 2  # a block whose batch is gone serves the next one
    # beyond the batches that may be lent at once (shared memory is often small), a batch is a copy
    monkeypatch.setattr(feed, "LEND_BLOCKS", 1)
    held, copied, again = reader(range(8)), reader(range(8)), reader(range(8))
    assert isinstance(held.base, feed._Lease) and not isinstance(copied.base, feed._Lease)
    np.testing.assert_array_equal(again, held)
    assert len(made) == 2  # the copied batches' block served both at once
    del held, copied, again
    feed.shutdown()
    assert not [name for name in made if (Path("/dev/shm") / name.lstrip("/")).exists()]
