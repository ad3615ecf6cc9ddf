"""Running a Keras classifier for its class probabilities, in memory-bounded batches."""
from __future__ import annotations

import numpy as np

from codecbench.core.backend import keras
from codecbench.store.inputs import INPUT_BUDGET_BYTES


def predict_proba(model: keras.Model, x: np.ndarray, batch_size: int | None = None,
                  input_budget_bytes: int = INPUT_BUDGET_BYTES) -> np.ndarray:
    """Class probabilities in batches, with the model in inference mode.

    By default a batch holds as many clips as fit in ``input_budget_bytes`` of input: large
    batches amortise per-call overhead, the budget bounds activation memory. ``predict_on_batch``
    runs the compiled graph (traced once per batch shape), several times faster than eager calls.
    """
    if batch_size is None:
        per_clip = int(np.prod(x.shape[1:])) * 4 if len(x) else 1
        batch_size = max(1, input_budget_bytes // per_clip)
    out = [np.asarray(model.predict_on_batch(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
