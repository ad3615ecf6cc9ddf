"""Segments of a model, after the paper's Fig. 1, and freezing all but some of them.

The rule works for any Keras model whose weighted layers are convolutions, batch
normalisations and dense layers: segment k is the k-th convolution with the batch
normalisations that follow it (batch normalisations before the first convolution belong
to segment 1), and the dense layers after the last convolution form the final segment
(the channel attention of the FCNN: segment 10 of the paper's model).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from codecbench.core.backend import keras
from codecbench.errors import ModelError, UsageError

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D,
         keras.layers.SeparableConv2D)


@dataclasses.dataclass(frozen=True)
class Segment:
    index: int
    layers: tuple[str, ...]
    params: int
    kind: str  # "conv" or "dense"


def derive_segments(model: keras.Model) -> list[Segment]:
    """The model's segments in order; every layer with weights belongs to exactly one."""
    groups: list[list] = []
    kinds: list[str] = []
    pending_bn: list = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, _CONV):
            groups.append(pending_bn + [layer])
            kinds.append("conv")
            pending_bn = []
        elif isinstance(layer, keras.layers.Dense):
            if not kinds or kinds[-1] != "dense":
                groups.append([])
                kinds.append("dense")
            groups[-1].append(layer)
        elif groups:
            groups[-1].append(layer)
        else:
            pending_bn.append(layer)
    if pending_bn:
        raise ModelError(f"model {model.name!r} has weighted layers but no convolution or dense layer to "
                         "attach them to; its segments cannot be derived")
    return [Segment(i + 1, tuple(l.name for l in g), sum(int(w.numpy().size) for l in g for w in l.weights), k)
            for i, (g, k) in enumerate(zip(groups, kinds))]


def parse_segments(text: str | int | list, n_segments: int) -> list[int]:
    """``"7"``, ``"1-10"``, ``"1,3,5-7"`` or a list, checked against the model's segment count."""
    if isinstance(text, int):
        items = [text]
    elif isinstance(text, (list, tuple)):
        items = [int(t) for t in text]
    else:
        items = []
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if "-" in part:
                    lo, hi = (int(p) for p in part.split("-", 1))
                    items += list(range(lo, hi + 1))
                else:
                    items.append(int(part))
            except ValueError:
                raise UsageError(f"segment spec {text!r}: expected numbers and ranges like '7', '1-10' or '2,4'") \
                    from None
    bad = [i for i in items if not 1 <= i <= n_segments]
    if bad or not items:
        raise UsageError(f"segment spec {text!r}: segments run from 1 to {n_segments}")
    return sorted(set(items))


def freeze_except(model: keras.Model, segments: list[int] | None) -> list[Segment]:
    """Make only the given segments trainable (None: all). Frozen BatchNorm layers then run in
    inference mode in Keras 3, so their moving statistics stay put too. Returns the trainable segments."""
    all_segments = derive_segments(model)
    chosen = set(s.index for s in all_segments) if segments is None else set(segments)
    trainable = {name for s in all_segments if s.index in chosen for name in s.layers}
    for layer in model.layers:
        if layer.weights:
            layer.trainable = layer.name in trainable
    return [s for s in all_segments if s.index in chosen]


def forward_flops(model: keras.Model, frames: int) -> dict[int, float]:
    """Floating-point operations of one example's forward pass through each segment, at ``frames`` input frames:
    two per multiply-add of every kernel over its layer's output positions (batch normalisations, activations and
    pooling, a small share of the arithmetic, are not counted)."""

    weighted = [layer for layer in model.layers if any("kernel" in w.path.rsplit("/", 1)[-1] for w in layer.weights)]
    shape = list(model.input_shape)
    shape[0] = 1
    shape = [frames if s is None else s for s in shape]
    probe = keras.Model(model.inputs, [layer.output for layer in weighted])
    outputs = probe.compute_output_spec(keras.KerasTensor(tuple(shape)))
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    owner = {name: s.index for s in derive_segments(model) for name in s.layers}
    flops: dict[int, float] = {s.index: 0.0 for s in derive_segments(model)}
    for layer, out in zip(weighted, outputs):
        positions = float(np.prod(out.shape[1:-1])) if len(out.shape) > 2 else 1.0
        kernels = sum(float(np.prod(w.shape)) for w in layer.weights if "kernel" in w.path.rsplit("/", 1)[-1])
        flops[owner[layer.name]] += 2.0 * kernels * positions
    return flops


def training_step_shares(model: keras.Model, frames: int) -> dict[int, float]:
    """Each segment's fine-tuning step (all others frozen) as a share of a full fine-tuning step, counted in
    floating-point operations: the forward pass through the whole model, the input gradients of the segments after
    the trained one (the backward pass stops there), and the trained segment's weight gradients; full fine-tuning
    does the forward pass, every weight gradient and every input gradient but the first segment's. A model of the
    arithmetic, not a timing: ``codecbench bench model --segments`` measures the steps on a device."""

    flops = forward_flops(model, frames)
    order = sorted(flops)
    forward = sum(flops.values())
    full = 3.0 * forward - flops[order[0]]
    return {k: (forward + sum(flops[j] for j in order if j > k) + flops[k]) / full for k in order}
