"""``codecbench bench model|finetune``: inference and training throughput of the FCNN presets."""
from __future__ import annotations

from typing import Any

import numpy as np

from codecbench.bench.timing import PAPER_GFLOP_PER_CLIP, devices, matmul_gflops, median_time
from codecbench.core.dsp import resample
from codecbench.datasets import synth_scene
from codecbench.signal import features
from codecbench.signal.frontends import BASELINE
from codecbench.store.devices import choose_precision, local_accelerators


def bench_model(batch_sizes=None, repeats: int = 2, train_batch: int | None = None, precision: str = "auto",
                segments: bool = False) -> dict:
    """The paper FCNN on the device Keras sees: inference clips/s per batch size (default 1/4/16 on a CPU,
    16/64/128 on an accelerator), training examples/s at ``train_batch`` x 400 frames under ``precision`` (what a plan
    prices a run with: ``rates``), GFLOP/s against a plain Keras matmul, the host's feature cost, and the log-mel
    front-end as Keras ops on the device (clips/s, and its largest difference from the librosa features).
    ``segments``: also each segment fine-tuned alone (Experiment B's steps), beside its share of a full step's
    arithmetic (:func:`~codecbench.models.training_step_shares`); the rates carry them."""
    from codecbench.core.backend import keras
    from codecbench.models import build_fcnn, preset_config
    from codecbench.training.precision import with_precision

    accelerated = bool(local_accelerators())
    batch_sizes = batch_sizes or ((16, 64, 128) if accelerated else (1, 4, 16))
    train_batch = train_batch or (32 if accelerated else 4)
    choice = choose_precision(precision)
    keras.utils.set_random_seed(0)
    model = with_precision(build_fcnn(preset_config("paper")), choice.policy)
    result: dict[str, Any] = {"backend": keras.backend.backend(), "devices": devices(),
                              "model_params": model.count_params(), "precision": choice.policy,
                              "precision_reason": choice.reason, "batches": {}}
    for bs in batch_sizes:
        x = np.random.default_rng(bs).random((bs, 128, 423, 3), dtype=np.float32)
        model.predict_on_batch(x)  # trace and warm up
        seconds = median_time(lambda: model.predict_on_batch(x), repeats)
        clips_per_s = bs / seconds
        result["batches"][bs] = {"seconds": seconds, "clips_per_s": clips_per_s,
                                 "gflops": clips_per_s * PAPER_GFLOP_PER_CLIP}
    xt = np.random.default_rng(1).random((train_batch, 128, 400, 3), dtype=np.float32)
    yt = keras.utils.to_categorical(np.arange(train_batch) % 10, 10)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
    model.train_on_batch(xt, yt)
    train_seconds = median_time(lambda: model.train_on_batch(xt, yt), repeats)
    result["train"] = {"batch": train_batch, "crop_frames": 400, "examples_per_s": train_batch / train_seconds}
    if segments:
        result["segments"] = _segment_steps(model, xt, yt, train_seconds, repeats)
    result["matmul_gflops"] = matmul_gflops()
    best = max(r["gflops"] for r in result["batches"].values())
    result["model_vs_matmul"] = best / result["matmul_gflops"]
    clip = synth_scene(0, np.random.default_rng(0), 10.0, 44100)
    features.extract(clip)
    result["features_ms_per_clip"] = median_time(lambda: features.extract(clip), 5) * 1000
    result["frontend_on_device"] = _device_frontend(batch_sizes[-1], repeats)
    # what a plan prices a run with (codecbench.run.rates.Rates)
    result["rates"] = {"inference_clips_per_s": max(r["clips_per_s"] for r in result["batches"].values()),
                       "train_examples_per_s": result["train"]["examples_per_s"], "precision": choice.policy,
                       "backend": result["backend"], "device": (result["devices"] or ["cpu"])[0]}
    if segments:
        result["rates"]["segment_train_examples_per_s"] = {str(k): row["examples_per_s"]
                                                           for k, row in result["segments"].items()}
    result["targets"] = {"model_vs_matmul>=0.8": result["model_vs_matmul"] >= 0.8,
                         "frontend_on_device_within_1e-4": result["frontend_on_device"]["max_abs_diff"] <= 1e-4}
    return result


def _segment_steps(model, x, y, full_seconds: float, repeats: int) -> dict[int, dict]:
    """Each segment fine-tuned alone (the others frozen, as Experiment B trains): examples/s of a training step on
    ``x``, its time as a share of the full step's (``full_seconds``), and its share of the arithmetic."""
    from codecbench.core.backend import keras
    from codecbench.models import freeze_except, training_step_shares

    shares = training_step_shares(model, x.shape[2])
    rows = {}
    for k in sorted(shares):
        freeze_except(model, [k])
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
        model.train_on_batch(x, y)  # trace and warm up
        seconds = median_time(lambda: model.train_on_batch(x, y), repeats)
        rows[k] = {"examples_per_s": len(x) / seconds, "share_measured": seconds / full_seconds,
                   "share_arithmetic": shares[k]}
    freeze_except(model, None)
    return rows


def _device_frontend(batch: int, repeats: int) -> dict:
    """The baseline log-mel as Keras ops on the device: clips/s for a batch of 10-s clips, and the largest difference
    from the librosa features over 8 clips recorded at 22.05, 44.1 and 48 kHz (each resampled to 44.1 kHz first)."""
    from codecbench.core.backend import keras
    from codecbench.models.frontend_layer import LogMelLayer

    layer = LogMelLayer.from_frontend(BASELINE)
    n = 441000
    clips = []
    for i, rate in enumerate((22050, 44100, 48000, 44100, 22050, 48000, 44100, 44100)):
        x = synth_scene(i % 10, np.random.default_rng(100 + i), 10.0, rate).astype(np.float32)
        clips.append(np.pad(resample(x, rate, 44100), (0, n))[:n].astype(np.float32))
    x = np.stack(clips)
    reference = np.stack([features.extract(c) for c in clips])
    diff = float(np.max(np.abs(keras.ops.convert_to_numpy(layer(x)) - reference)))
    wave_model = keras.Sequential([keras.Input((n,)), LogMelLayer.from_frontend(BASELINE)])
    big = np.tile(x, (max(1, batch // len(x)), 1))[:max(1, batch)]
    wave_model.predict_on_batch(big)
    seconds = median_time(lambda: np.asarray(wave_model.predict_on_batch(big)), repeats)
    return {"clips": len(clips), "max_abs_diff": diff, "batch": len(big), "clips_per_s": len(big) / seconds}


def format_model_bench(result: dict) -> str:
    lines = [f"paper FCNN ({result['model_params']:,} parameters, {result['backend']} backend on "
             f"{', '.join(result['devices']) or 'default device'}, {result['precision']}: "
             f"{result['precision_reason']}), inference:"]
    for bs, row in result["batches"].items():
        lines.append(f"  batch {bs:>3}: {row['clips_per_s']:8.2f} clips/s  = {row['gflops']:8.1f} GFLOP/s")
    train = result["train"]
    lines.append(f"training, batch {train['batch']} x {train['crop_frames']} frames: {train['examples_per_s']:.2f} "
                 "examples/s")
    for k, row in result.get("segments", {}).items():
        lines.append(f"  segment {k:>2} alone: {row['examples_per_s']:8.2f} examples/s = {row['share_measured']:.2f} "
                     f"of a full step's time ({row['share_arithmetic']:.2f} of its arithmetic)")
    lines.append(f"plain Keras matmul: {result['matmul_gflops']:.1f} GFLOP/s; best model / matmul = "
                 f"{result['model_vs_matmul']:.2f}x")
    lines.append(f"feature extraction on the host (librosa): {result['features_ms_per_clip']:.1f} ms per 10-s clip")
    fe = result["frontend_on_device"]
    lines.append(f"log-mel front-end as Keras ops: {fe['clips_per_s']:.1f} clips/s at batch {fe['batch']}; largest "
                 f"difference from librosa over {fe['clips']} clips (22.05/44.1/48 kHz sources): "
                 f"{fe['max_abs_diff']:.2e} of the [0, 1] range")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- fine-tuning


def bench_finetune(steps: int = 2) -> dict:
    """Training-step time of full vs segment-1/7/10 fine-tuning, for the demo and the paper preset."""
    from codecbench.core.backend import keras
    from codecbench.models import build_fcnn, freeze_except, preset_config

    setups: dict[str, dict[str, Any]] = {
        "demo": {"preset": "small", "shape": (128, 79, 3), "crop": 64, "batch": 32, "epoch_samples": 1800},
        # batch 8 keeps the CPU run to minutes; samples/s is what carries over to batch 32
        "paper": {"preset": "paper", "shape": (128, 423, 3), "crop": 400, "batch": 8, "epoch_samples": 13965 * 5}}
    result: dict[str, Any] = {"backend": keras.backend.backend(), "devices": devices(), "setups": {}}
    for name, s in setups.items():
        rows = {}
        x = np.random.default_rng(0).random((s["batch"], 128, s["crop"], 3), dtype=np.float32)
        y = keras.utils.to_categorical(np.arange(s["batch"]) % 10, 10)
        for strategy, segments in (("full", None), ("segment 1", [1]), ("segment 7", [7]), ("segment 10", [10])):
            model = build_fcnn(preset_config(s["preset"], s["shape"], 10))
            freeze_except(model, segments)
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
            model.train_on_batch(x, y)  # trace and warm up
            seconds = median_time(lambda: model.train_on_batch(x, y), steps)
            rows[strategy] = {"seconds_per_step": seconds, "samples_per_s": s["batch"] / seconds,
                              "seconds_per_epoch": s["epoch_samples"] / (s["batch"] / seconds)}
        result["setups"][name] = {**{k: v for k, v in s.items()}, "strategies": rows}
    return result


def format_finetune_bench(result: dict) -> str:
    lines = [f"fine-tuning step time ({result['backend']} on {', '.join(result['devices']) or 'default device'}):"]
    for name, setup in result["setups"].items():
        lines.append(f"  {name} ({setup['preset']} FCNN, batch {setup['batch']} x {setup['crop']} frames, "
                     f"epoch = {setup['epoch_samples']:,} samples):")
        for strategy, row in setup["strategies"].items():
            lines.append(f"    {strategy:<11} {row['samples_per_s']:7.1f} samples/s   "
                         f"{row['seconds_per_epoch']:9.1f} s/epoch")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the paper's scale
