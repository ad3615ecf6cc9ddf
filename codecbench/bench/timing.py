"""What every benchmark shares: timing, the devices and CPU features of this machine, the paper's sizes."""
from __future__ import annotations

import numpy as np

from codecbench.run import rates
from codecbench.store.devices import device_details, local_accelerators


def median_time(func, repeats: int) -> float:
    return rates.median_time(func, repeats, warmup=False)


def devices() -> list[str]:
    """The devices the Keras backend computes on, with their model where known (``cuda:0 NVIDIA H200``)."""
    accelerators = bool(local_accelerators())
    return [" ".join(str(v) for v in (d["name"], d.get("model")) if v) for d in device_details()
            if not accelerators or d["kind"] != "CPU"]


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    from codecbench.core.backend import keras
    a = keras.ops.convert_to_tensor(np.random.default_rng(0).random((n, n), dtype=np.float32))
    keras.ops.matmul(a, a)
    seconds = median_time(lambda: np.asarray(keras.ops.matmul(a, a)), repeats)
    return 2 * n ** 3 / seconds / 1e9


PAPER_GFLOP_PER_CLIP = 30.7  # the paper preset, one 10-s clip (128 x 423 x 3), multiply-adds counted as 2


PAPER_COUNTS = {"train_clips": 13965, "evaluate_clips": 2970, "models": 15}


def paper_like_zoo(shape=(128, 423, 3)) -> dict:
    """The paper zoo's structure at the paper's size: base, four independently trained full fine-tunings, and ten
    segment-k models that differ from base in segment k only (random weights: the cost does not depend on them)."""
    from codecbench.core.backend import keras
    from codecbench.models import build_fcnn, derive_segments, preset_config

    config = preset_config("paper", shape, 10)
    keras.utils.set_random_seed(0)
    base = build_fcnn(config)
    zoo = {"base": base}
    for i, epochs in enumerate((1, 10, 20, 40)):
        keras.utils.set_random_seed(1 + i)
        zoo[f"finetuned_full@e{epochs}"] = build_fcnn(config)
    rng = np.random.default_rng(0)
    for k, segment in enumerate(derive_segments(base), start=1):
        model = build_fcnn(config)
        model.set_weights(base.get_weights())
        for name in segment.layers:
            layer = model.get_layer(name)
            layer.set_weights([w + rng.normal(0, 1e-3, w.shape).astype(w.dtype) for w in layer.get_weights()])
        zoo[f"finetuned_seg{k}"] = model
    return zoo
