"""``codecbench bench prefix``: shared-prefix evaluation of many fine-tuned models against one by one."""
from __future__ import annotations

import statistics

import numpy as np

from codecbench.bench.timing import devices, median_time, paper_like_zoo
from codecbench.models.prefix import SharedPrefixPredictor
from codecbench.store.inputs import INPUT_BUDGET_BYTES
from codecbench.zoo import Zoo, packaged_model_dir


def bench_prefix(setups=("demo", "paper"), repeats: int = 2) -> dict:
    """Evaluation of a whole zoo with and without prefix sharing (:mod:`codecbench.models.prefix`), side by side:
    clips/s, FLOPs per clip from the layer shapes, and whether every prediction is identical."""
    from codecbench.core.backend import keras, quiet_retracing

    result: dict = {"backend": keras.backend.backend(), "devices": devices(), "setups": {}}
    for name in setups:
        if name == "demo":
            zoo = Zoo(packaged_model_dir())
            models = {m: zoo.scoring(m).keras_model for m in zoo.names()}
            shape, clips = (128, 79, 3), 256
        else:
            shape, clips = (128, 423, 3), 4
            models = paper_like_zoo(shape)
        x = np.random.default_rng(1).random((clips, *shape), dtype=np.float32)
        batch = max(1, min(clips, INPUT_BUDGET_BYTES // int(np.prod(shape) * 4)))
        predictor = SharedPrefixPredictor(models)

        def unshared():
            with quiet_retracing():
                return {k: np.concatenate([np.asarray(m.predict_on_batch(x[i:i + batch]))
                                           for i in range(0, clips, batch)]) for k, m in models.items()}

        def shared():
            return predictor.predict(x, batch_size=batch)

        reference, together = unshared(), shared()  # warm-up (traces every sub-model) and the identity check
        identical = all(np.array_equal(reference[k].argmax(1), together[k].argmax(1)) for k in models)
        max_diff = max(float(np.max(np.abs(reference[k] - together[k]))) for k in models)
        times_u, times_s = [], []
        for _ in range(repeats):  # interleaved
            times_u.append(median_time(unshared, 1))
            times_s.append(median_time(shared, 1))
        tu, ts = statistics.median(times_u), statistics.median(times_s)
        flops = predictor.flops(shape)
        result["setups"][name] = {
            "models": len(models), "clips": clips, "input_shape": list(shape), "batch": batch,
            "sub_model_calls_per_batch": predictor.calls_per_batch,
            "gflop_per_clip_unshared": flops["unshared"] / 1e9, "gflop_per_clip_shared": flops["shared"] / 1e9,
            "flop_ratio": flops["ratio"], "unshared_clips_per_s": clips / tu, "shared_clips_per_s": clips / ts,
            "speedup": tu / ts, "identical_predictions": identical, "max_probability_difference": max_diff}
    return result


def format_prefix_bench(result: dict) -> str:
    lines = [f"prefix-shared evaluation of a whole zoo ({result['backend']}):"]
    for name, r in result["setups"].items():
        lines.append(f"  {name}: {r['models']} models, {r['clips']} clips {tuple(r['input_shape'])}: "
                     f"{r['gflop_per_clip_unshared']:.2f} -> {r['gflop_per_clip_shared']:.2f} GFLOP per clip "
                     f"({r['flop_ratio']:.2f}x fewer); measured {r['unshared_clips_per_s']:.2f} -> "
                     f"{r['shared_clips_per_s']:.2f} clips/s through the zoo = {r['speedup']:.2f}x; predictions "
                     f"{'identical' if r['identical_predictions'] else 'DIFFERENT'} "
                     f"(max probability difference {r['max_probability_difference']:.1e})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- precision
