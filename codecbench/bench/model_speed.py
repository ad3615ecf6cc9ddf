"""``codecbench bench model|finetune``: inference and training throughput of the FCNN presets."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..datasets import synth_scene
from .timing import PAPER_GFLOP_PER_CLIP, devices, matmul_gflops, median_time


def bench_model(batch_sizes=(1, 4, 16), repeats: int = 2) -> dict:
    """Inference clips/s of the paper FCNN, its GFLOP/s against a plain Keras matmul, and feature cost."""
    from .. import features
    from ..backend import keras
    from ..models import build_fcnn, preset_config

    model = build_fcnn(preset_config("paper"))
    result = {"backend": keras.backend.backend(), "model_params": model.count_params(), "batches": {}}
    for bs in batch_sizes:
        x = np.random.default_rng(bs).random((bs, 128, 423, 3), dtype=np.float32)
        model.predict_on_batch(x)  # trace and warm up
        seconds = median_time(lambda: model.predict_on_batch(x), repeats)
        clips_per_s = bs / seconds
        result["batches"][bs] = {"seconds": seconds, "clips_per_s": clips_per_s,
                                 "gflops": clips_per_s * PAPER_GFLOP_PER_CLIP}
    result["matmul_gflops"] = matmul_gflops()
    best = max(r["gflops"] for r in result["batches"].values())
    result["model_vs_matmul"] = best / result["matmul_gflops"]
    clip = synth_scene(0, np.random.default_rng(0), 10.0, 44100)
    features.extract(clip)
    result["features_ms_per_clip"] = median_time(lambda: features.extract(clip), 5) * 1000
    result["targets"] = {"model_vs_matmul>=0.8": result["model_vs_matmul"] >= 0.8}
    return result


def format_model_bench(result: dict) -> str:
    lines = [f"paper FCNN ({result['model_params']:,} parameters, {result['backend']} backend), inference:"]
    for bs, row in result["batches"].items():
        lines.append(f"  batch {bs:>3}: {row['clips_per_s']:6.2f} clips/s  = {row['gflops']:7.1f} GFLOP/s")
    lines.append(f"plain Keras matmul: {result['matmul_gflops']:.1f} GFLOP/s; best model / matmul = "
                 f"{result['model_vs_matmul']:.2f}x")
    lines.append(f"feature extraction: {result['features_ms_per_clip']:.1f} ms per 10-s clip")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- fine-tuning


def bench_finetune(steps: int = 2) -> dict:
    """Training-step time of full vs segment-1/7/10 fine-tuning, for the demo and the paper preset."""
    from ..backend import keras
    from ..models import build_fcnn, freeze_except, preset_config

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
