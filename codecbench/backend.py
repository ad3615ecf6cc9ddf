"""Keras, imported quietly: the one place codecbench imports it.

TensorFlow's C++ start-up writes absl and CPU-feature lines to the process's stderr before any
Python logging setting applies, drowning the tool's own output. While TensorFlow is first
imported, file descriptor 2 points at /dev/null; afterwards everything (its errors included)
reaches stderr as usual. A user's own ``TF_CPP_MIN_LOG_LEVEL`` wins over ours.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys


def _import_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    wants_tf = os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
    if wants_tf and "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is not None:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            sys.stderr.flush()
            os.dup2(null, 2)
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
    import keras as _keras
    return _keras


keras = _import_quietly()


@contextlib.contextmanager
def quiet_retracing():
    """Hide TensorFlow's "triggered tf.function retracing" warnings: running many models (a zoo, or a shared
    prefix's sub-models) traces each one's predict function once, which is expected, not a problem."""
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_log.setLevel(level)


def with_precision(model, precision: str, *, synchronized_batchnorm: bool = False):
    """``model`` computing under the dtype policy ``precision`` ("float32" or "mixed_bfloat16").

    A Keras model keeps the policy it was built with (its configuration names it per layer), so a change of
    policy is a clone with the same weights and trainable flags. The output layer stays float32, as Keras
    advises for a softmax. ``synchronized_batchnorm``: batch normalisation over the global batch of a
    distribution strategy (always a clone). Returns ``model`` itself when nothing changes.
    """
    outputs = {t._keras_history[0].name for t in model.outputs}
    if not synchronized_batchnorm and all(
            layer.dtype_policy.name == ("float32" if layer.name in outputs else precision)
            for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)):
        return model

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32" if layer.name in outputs else precision
        if synchronized_batchnorm and isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = True
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    for source, target in zip(model.layers, copy.layers):
        target.trainable = source.trainable
    return copy
