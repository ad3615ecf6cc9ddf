"""What every benchmark shares: timing, the devices and CPU features of this machine, the paper's sizes."""
from __future__ import annotations

import numpy as np


def median_time(func, repeats: int) -> float:
    from ..plan import median_time
    return median_time(func, repeats, warmup=False)


def devices() -> list[str]:
    try:
        import tensorflow as tf
        return [d.name for d in tf.config.list_logicaldevices()]
    except Exception:  # another backend: the device list is informative only
        return []


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    from ..backend import keras
    a = keras.ops.convert_to_tensor(np.random.default_rng(0).random((n, n), dtype=np.float32))
    keras.ops.matmul(a, a)
    seconds = median_time(lambda: np.asarray(keras.ops.matmul(a, a)), repeats)
    return 2 * n ** 3 / seconds / 1e9


PAPER_GFLOP_PER_CLIP = 30.7  # the paper preset, one 10-s clip (128 x 423 x 3), multiply-adds counted as 2


PAPER_COUNTS = {"train_clips": 13965, "evaluate_clips": 2970, "models": 15}
