"""``codecbench bench pipeline``: training and inference fed from the cache against from memory."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from codecbench import codecs
from codecbench.bench.timing import devices, median_time
from codecbench.core.cache import Cache
from codecbench.datasets import synth_scene
from codecbench.store.devices import local_accelerators
from codecbench.store.inputs import INPUT_BUDGET_BYTES, cached_features, predict_stream
from codecbench.training.schedule import TrainConfig

PIPELINE_SETUPS: dict[str, dict[str, Any]] = {
    # the demo: small FCNN on 2-s clips (79 frames, 64-frame crops) - the fastest model, so the hardest to feed
    "small": {"preset": "small", "seconds": 2.0, "crop": 64, "batch": 32, "steps": 12, "eval_clips": 256},
    # the paper: 11.8M-parameter FCNN on 10-s clips (423 frames, 400-frame crops); batch 16 keeps a CPU run short
    "paper": {"preset": "paper", "seconds": 10.0, "crop": 400, "batch": 16, "steps": 2, "eval_clips": 32},
}


class _EpochSeconds:
    def __init__(self):
        from codecbench.core.backend import keras

        outer = self

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer.seconds.append(time.perf_counter() - outer.start)

        self.start = time.perf_counter()
        self.seconds: list[float] = []
        self.callback = Timer()


def bench_pipeline(setups=("small", "paper"), repeats: int = 3, clips: int | None = None) -> dict:
    """Training examples/s and inference clips/s fed from real cached features (with the paper's augmentation:
    random crops, masks, mixup) against the same model and batch size on in-memory random tensors.

    Both sides run interleaved in one process, so a burst of load on a shared machine hits both alike; the
    ratio (cache-fed / in-memory) is the figure that carries over (target: >= 0.9 on a CPU, >= 0.8 on a GPU).
    """
    from codecbench.core.backend import keras
    from codecbench.models import build_fcnn, preset_config
    from codecbench.training.loop import AugmentedBatches

    result: dict = {"backend": keras.backend.backend(), "devices": devices(), "setups": {}}
    sr = 44100
    with tempfile.TemporaryDirectory(prefix="codecbench-pipeline-") as tmp:
        for name in setups:
            s = PIPELINE_SETUPS[name]
            n_clips = clips or max(s["batch"] * 2, min(s["eval_clips"], s["batch"] * s["steps"]))
            paths = []
            for i in range(n_clips):
                p = Path(tmp) / f"{name}{i:04d}.wav"
                sf.write(p, synth_scene(i % 10, np.random.default_rng(i), s["seconds"], sr), sr, subtype="PCM_16")
                paths.append(p)
            reader, _ = cached_features(paths, codecs.ORIGINAL, Cache(Path(tmp) / "cache"), jobs=2, progress=False)
            shape = reader.get(0).shape
            labels = np.arange(len(reader)) % 10
            model = build_fcnn(preset_config(s["preset"], shape, 10))
            model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy",
                          metrics=["accuracy"], jit_compile=False)
            config = TrainConfig(batch_size=s["batch"], crop_frames=s["crop"], time_mask_frames=min(40, s["crop"] // 4))
            n_train = s["batch"] * s["steps"]
            rng = np.random.default_rng(0)
            x_mem = rng.random((n_train, shape[0], s["crop"], shape[2]), dtype=np.float32)
            y_mem = keras.utils.to_categorical(np.arange(n_train) % 10, 10)
            train_idx = np.arange(n_train) % len(reader)

            def cached_epoch(timer):
                batches = AugmentedBatches(lambda idx: reader(train_idx[idx]), labels[train_idx], 10, config)
                model.fit(batches, epochs=1, callbacks=[timer.callback], verbose=0)

            def memory_epoch(timer):
                model.fit(x_mem, y_mem, batch_size=s["batch"], epochs=1, shuffle=False, callbacks=[timer.callback],
                          verbose=0)

            # inference: every clip at full length, in the evaluator's batch, read ahead from the cache
            eval_batch = max(1, min(64, INPUT_BUDGET_BYTES // int(np.prod(shape) * 4)))
            x_eval = rng.random((len(reader),) + shape, dtype=np.float32)

            def cached_predict():
                predict_stream(model.predict_on_batch, reader, batch_size=eval_batch)

            def memory_predict():
                for i in range(0, len(x_eval), eval_batch):
                    np.asarray(model.predict_on_batch(x_eval[i:i + eval_batch]))

            warm_c, warm_m = _EpochSeconds(), _EpochSeconds()
            cached_epoch(warm_c), memory_epoch(warm_m)  # trace both input signatures
            memory_predict()
            tc, tm, pc, pm = _EpochSeconds(), _EpochSeconds(), [], []
            for _ in range(repeats):  # interleaved
                cached_epoch(tc)
                memory_epoch(tm)
                pc.append(median_time(cached_predict, 1))
                pm.append(median_time(memory_predict, 1))
            train_c, train_m = n_train / statistics.median(tc.seconds), n_train / statistics.median(tm.seconds)
            infer_c, infer_m = len(reader) / statistics.median(pc), len(reader) / statistics.median(pm)
            result["setups"][name] = {
                "preset": s["preset"], "input_shape": list(shape), "batch": s["batch"], "crop_frames": s["crop"],
                "train_examples": n_train, "eval_clips": len(reader), "eval_batch": eval_batch,
                "train_cached_examples_per_s": train_c, "train_memory_examples_per_s": train_m,
                "train_ratio": train_c / train_m,
                "inference_cached_clips_per_s": infer_c, "inference_memory_clips_per_s": infer_m,
                "inference_ratio": infer_c / infer_m}
    on_gpu = bool(local_accelerators())
    floor = 0.8 if on_gpu else 0.9
    result["targets"] = {f"{name}_{kind}_ratio>={floor}": row[f"{kind}_ratio"] >= floor
                         for name, row in result["setups"].items() for kind in ("train", "inference")}
    return result


def format_pipeline_bench(result: dict) -> str:
    lines = [f"input pipeline ({result['backend']} on {', '.join(result['devices']) or 'default device'}): "
             "cache-fed (with augmentation) vs in-memory random tensors, same model and batch"]
    for name, r in result["setups"].items():
        lines.append(f"  {name} FCNN, input {tuple(r['input_shape'])}:")
        train_c, train_m = r["train_cached_examples_per_s"], r["train_memory_examples_per_s"]
        lines.append(f"    training  batch {r['batch']:>3} x {r['crop_frames']} frames: cache {train_c:8.2f}  "
                     f"memory {train_m:8.2f} examples/s   ratio {r['train_ratio']:.2f}")
        infer_c, infer_m = r["inference_cached_clips_per_s"], r["inference_memory_clips_per_s"]
        lines.append(f"    inference batch {r['eval_batch']:>3}, full clips:  cache {infer_c:8.2f}  "
                     f"memory {infer_m:8.2f} clips/s      ratio {r['inference_ratio']:.2f}")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in result["targets"].items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- prefix-shared evaluation
