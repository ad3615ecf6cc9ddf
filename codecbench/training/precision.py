"""Numeric precision of Keras models: a model switched to the dtype policy a run uses (``float32``,
``mixed_bfloat16``); what ``auto`` resolves to on this machine, and why, is
:func:`codecbench.store.devices.choose_precision`."""
from __future__ import annotations

from codecbench.core.backend import keras
from codecbench.core.vocabulary import PRECISIONS, Precision, one_of
from codecbench.store.devices import choose_precision, exact_float32


def resolve_precision(precision: str, *, reproducible: bool = False) -> Precision:
    """The policy of :func:`codecbench.store.devices.choose_precision`, without the reason."""

    return one_of(choose_precision(precision, reproducible=reproducible).policy, PRECISIONS, "precision")


def with_precision(model, precision: str, *, synchronized_batchnorm: bool = False):
    """``model`` computing under the dtype policy ``precision`` ("float32" or "mixed_bfloat16").

    A Keras model keeps the policy it was built with (its configuration names it per layer), so a change of
    policy is a clone with the same weights and trainable flags. The output layer stays float32, as Keras
    advises for a softmax. ``synchronized_batchnorm``: batch normalisation over the global batch of a
    distribution strategy (always a clone). Returns ``model`` itself when nothing changes.
    """
    if precision == "float32":
        exact_float32()
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
