"""``codecbench bench precision``: mixed bfloat16 against float32, speed and accuracy."""
from __future__ import annotations

import dataclasses
import statistics

import numpy as np

from codecbench.api import evaluate
from codecbench.bench.timing import devices, median_time
from codecbench.store.devices import choose_precision, cpu_flags, local_accelerators


def bench_precision(repeats: int = 2, accuracy: bool = True) -> dict:
    """float32 against mixed_bfloat16, side by side: inference clips/s and training examples/s of the small and the
    paper FCNN on the device Keras sees, and (``accuracy``) the demo zoo's base and finetuned_full@e10 on the
    embedded default under wav and mp3@32 with both policies, with Wilson intervals and paired agreement."""
    from codecbench.core.backend import keras
    from codecbench.models import build_fcnn, preset_config
    from codecbench.training.precision import with_precision

    flags = cpu_flags()
    result: dict = {"backend": keras.backend.backend(), "devices": devices(),
                    "cpu_bf16": sorted(f for f in flags if "bf16" in f), "speed": {},
                    "auto": dataclasses.asdict(choose_precision("auto"))}

    paper_batch = 32 if local_accelerators() else 4  # the recipe's batch where it is affordable
    for preset, shape, batch, crop in (("small", (128, 79, 3), 32, 64), ("paper", (128, 423, 3), paper_batch, 400)):
        keras.utils.set_random_seed(0)
        base = build_fcnn(preset_config(preset, shape, 10))
        x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        xt = x[:, :, :crop]
        y = keras.utils.to_categorical(np.arange(batch) % 10, 10)
        models = {p: with_precision(base, p) for p in ("float32", "mixed_bfloat16")}
        for m in models.values():
            m.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
            m.predict_on_batch(x), m.train_on_batch(xt, y)  # trace and warm up
        times: dict[str, dict[str, list[float]]] = {p: {"infer": [], "train": []} for p in models}
        for _ in range(repeats):  # interleaved
            for p, m in models.items():
                times[p]["infer"].append(median_time(lambda: m.predict_on_batch(x), 1))
                times[p]["train"].append(median_time(lambda: m.train_on_batch(xt, y), 1))
        rows = {p: {"inference_clips_per_s": batch / statistics.median(t["infer"]),
                    "train_examples_per_s": batch / statistics.median(t["train"])} for p, t in times.items()}
        rows["mixed_vs_float32"] = {k: rows["mixed_bfloat16"][k] / rows["float32"][k] for k in rows["float32"]}
        result["speed"][preset] = rows
    if accuracy:

        frames = {p: evaluate(["base", "finetuned_full@e10"], conditions=["wav", "mp3@32"], precision=p)
                  for p in ("float32", "mixed_bfloat16")}
        accuracy_rows = []
        f32, bf = frames["float32"].attrs["records"], frames["mixed_bfloat16"].attrs["records"]
        for key in f32:
            a, b = f32[key], bf[key]
            agree = float(np.mean(np.array(a["predictions"]) == np.array(b["predictions"])))
            inside = a["ci_low"] <= b["accuracy"] <= a["ci_high"]
            accuracy_rows.append({"model": key[0], "condition": key[1], "float32": a["accuracy"],
                                  "float32_ci": [a["ci_low"], a["ci_high"]], "mixed_bfloat16": b["accuracy"],
                                  "mixed_ci": [b["ci_low"], b["ci_high"]], "prediction_agreement": agree,
                                  "mixed_within_float32_ci": inside})
        result["accuracy"] = accuracy_rows
    return result


def format_precision_bench(result: dict) -> str:
    lines = [f"float32 vs mixed_bfloat16 ({result['backend']} on {', '.join(result['devices']) or 'default device'};"
             f" CPU bf16 instructions: {', '.join(result['cpu_bf16']) or 'none'}; --precision auto here: "
             f"{result['auto']['policy']} ({result['auto']['reason']})):"]
    for preset, rows in result["speed"].items():
        r32, rbf, ratio = rows["float32"], rows["mixed_bfloat16"], rows["mixed_vs_float32"]
        lines.append(f"  {preset} FCNN: inference {r32['inference_clips_per_s']:.2f} -> "
                     f"{rbf['inference_clips_per_s']:.2f} clips/s ({ratio['inference_clips_per_s']:.2f}x), training "
                     f"{r32['train_examples_per_s']:.2f} -> {rbf['train_examples_per_s']:.2f} examples/s "
                     f"({ratio['train_examples_per_s']:.2f}x)")
    for row in result.get("accuracy", []):
        lines.append(f"  demo {row['model']} on {row['condition']}: float32 {row['float32']:.3f} "
                     f"[{row['float32_ci'][0]:.3f}, {row['float32_ci'][1]:.3f}], mixed_bfloat16 "
                     f"{row['mixed_bfloat16']:.3f}; same prediction for {row['prediction_agreement']:.1%} of clips; "
                     f"{'within' if row['mixed_within_float32_ci'] else 'OUTSIDE'} the float32 interval")
    return "\n".join(lines)
