"""Segments of a model, after the paper's Fig. 1, and freezing all but some of them.

The rule works for any Keras model whose weighted layers are convolutions, batch
normalisations and dense layers: segment k is the k-th convolution with the batch
normalisations that follow it (batch normalisations before the first convolution belong
to segment 1), and the dense layers after the last convolution form the final segment
(the channel attention of the FCNN: segment 10 of the paper's model).
"""
from __future__ import annotations

import dataclasses

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
