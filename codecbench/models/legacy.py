"""Legacy Keras-2 ``.hdf5`` checkpoints of the FCNN family, loaded by weights.

The file's architecture JSON is read as plain data (never deserialised into code), its
layout is turned into an :class:`~codecbench.models.fcnn.FCNNConfig`, the project's own
model is built from it, and the weights are copied layer by layer in file order. A file
whose layers do not fit the family is refused with the offending layer named; one with
``Lambda`` layers (which carry executable code) is refused unless the caller trusts it.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from codecbench.errors import CheckpointError
from codecbench.models.fcnn import ConvSpec, FCNNConfig, build_fcnn

_STRUCTURAL = {"InputLayer", "ZeroPadding2D", "Activation", "MaxPooling2D", "Dropout", "GlobalAveragePooling2D",
               "GlobalMaxPooling2D", "Reshape", "Add", "Multiply"}
_WEIGHTED = {"Conv2D", "BatchNormalization", "Dense"}


def _decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_architecture(path: str | Path) -> tuple[list[dict], dict]:
    """The layer list of a Keras-2 HDF5 model file, and the file's attributes, as plain data."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise CheckpointError(f"{path}: not a readable HDF5 file ({exc})") from None
    if "model_config" not in attrs:
        raise CheckpointError(f"{path}: no model_config attribute; a weights-only file needs an explicit --preset")
    config = json.loads(attrs["model_config"])
    layers = config.get("config", {}).get("layers")
    if not isinstance(layers, list):
        raise CheckpointError(f"{path}: model_config is not a functional/sequential model")
    return layers, attrs


def infer_config(path: str | Path, trust: bool = False) -> FCNNConfig:
    """Infer the FCNN layout from a checkpoint's layer list."""
    layers, _ = read_architecture(path)
    lambdas = [l["config"].get("name") for l in layers if l["class_name"] == "Lambda"]
    if lambdas and not trust:
        raise CheckpointError(f"{path}: contains Lambda layer(s) {', '.join(lambdas)}, which carry executable "
                              "code; refusing to load it. If you trust the file's origin, pass trust=True "
                              "(--trust-code) to load it with keras.models.load_model(safe_mode=False)")
    input_shape: tuple[int, int, int] | None = None
    convs: list[ConvSpec] = []
    pad = 0
    dense_units: list[int] = []
    dense_bias = True
    for layer in layers:
        kind, cfg = layer["class_name"], layer["config"]
        if kind not in _STRUCTURAL | _WEIGHTED:
            raise CheckpointError(f"{path}: layer {cfg.get('name')!r} of type {kind} does not fit the FCNN family")
        if kind == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            dims = tuple(int(d) for d in shape[1:])
            if len(dims) != 3:
                raise CheckpointError(f"{path}: input of shape {dims}; the FCNN family takes (bins, frames, channels)")
            input_shape = (dims[0], dims[1], dims[2])
        elif kind == "ZeroPadding2D":
            p = cfg["padding"]
            pad += int(p[0][0]) if isinstance(p[0], list) else int(p[0])
        elif kind == "Conv2D":
            kernel, stride = int(cfg["kernel_size"][0]), int(cfg["strides"][0])
            convs.append(ConvSpec(int(cfg["filters"]), kernel, stride, pad))
            pad = 0
        elif kind == "MaxPooling2D" and convs:
            convs[-1] = ConvSpec(**{**convs[-1].__dict__, "pool": True})
        elif kind == "Dropout" and convs:
            convs[-1] = ConvSpec(**{**convs[-1].__dict__, "dropout": float(cfg["rate"])})
        elif kind == "Dense":
            dense_units.append(int(cfg["units"]))
            dense_bias = bool(cfg.get("use_bias", True))
    if input_shape is None or len(convs) < 2 or len(dense_units) != 2:
        raise CheckpointError(f"{path}: expected an input, convolutions and a two-layer channel attention; "
                              f"found {len(convs)} convolutions and {len(dense_units)} dense layers")
    n_classes = convs[-1].filters
    if dense_units[1] != n_classes:
        raise CheckpointError(f"{path}: attention output {dense_units[1]} does not match {n_classes} classes")
    return FCNNConfig(input_shape, n_classes, tuple(convs), attention_ratio=max(1, n_classes // dense_units[0]),
                      attention_bias=dense_bias, preset=f"legacy:{Path(path).name}")


def _file_weights(path: Path, layers: list[dict]) -> list[tuple[str, str, list[np.ndarray]]]:
    out = []
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for layer in layers:
            if layer["class_name"] not in _WEIGHTED:
                continue
            name = layer["config"]["name"]
            group = root[name]
            names = [_decode(n) for n in group.attrs.get("weight_names", [])]
            out.append((name, layer["class_name"], [np.asarray(group[n]) for n in names]))
    return out


def load_legacy_hdf5(path: str | Path, trust: bool = False):
    """Build the project's FCNN for the checkpoint and copy its weights in; returns ``(model, config)``."""
    path = Path(path)
    config = infer_config(path, trust=trust)
    layers, _ = read_architecture(path)
    if any(l["class_name"] == "Lambda" for l in layers):  # trusted, and beyond our definition
        from codecbench.core.backend import keras
        return keras.models.load_model(path, compile=False, safe_mode=False), config
    model = build_fcnn(config, name=path.stem)
    ours = [l for l in model.layers if l.weights]
    theirs = _file_weights(path, layers)
    if len(ours) != len(theirs):
        raise CheckpointError(f"{path}: {len(theirs)} weighted layers in the file, {len(ours)} in the model built "
                              "from its layout")
    for layer, (name, kind, weights) in zip(ours, theirs):
        expected = [tuple(w.shape) for w in layer.weights]
        if [tuple(w.shape) for w in weights] != expected:
            raise CheckpointError(f"{path}: layer {name!r} ({kind}) has weights "
                                  f"{[w.shape for w in weights]}, expected {expected}")
        layer.set_weights(weights)
    return model, config
