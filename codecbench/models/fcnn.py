"""The FCNN of Hu et al. (DCASE 2020 Task 1a): VGG-like convolutions, channel attention, softmax.

Built from a :class:`FCNNConfig` (a list of convolutions, each with its padding, stride,
pooling and dropout), so the paper's 11.8M-parameter preset, the small CPU preset and the
legacy checkpoints of the same family (whose layout is inferred from the file) all come
out of one builder. Only ``keras`` and ``keras.ops`` are used, so TensorFlow and JAX both work.
"""
from __future__ import annotations

import dataclasses

from codecbench.core.backend import keras
from codecbench.errors import UsageError


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    filters: int
    kernel: int = 3
    stride: int = 1
    pad: int = 1
    pool: bool = False
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class FCNNConfig:
    """Everything that decides the network's layers and weight shapes."""

    input_shape: tuple[int, int, int]
    n_classes: int
    convs: tuple[ConvSpec, ...]
    attention_ratio: int = 2
    attention_bias: bool = True
    preset: str = "custom"

    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "n_classes": self.n_classes,
                "convs": [dataclasses.asdict(c) for c in self.convs], "attention_ratio": self.attention_ratio,
                "attention_bias": self.attention_bias, "preset": self.preset}

    @classmethod
    def from_dict(cls, data: dict) -> "FCNNConfig":
        return cls(tuple(data["input_shape"]), int(data["n_classes"]), tuple(ConvSpec(**c) for c in data["convs"]),
                   int(data.get("attention_ratio", 2)), bool(data.get("attention_bias", True)),
                   data.get("preset", "custom"))


def _hu_convs(base: tuple[int, int, int], channels: int, n_classes: int) -> tuple[ConvSpec, ...]:
    f1, f2, f3 = (b * channels for b in base)
    return (ConvSpec(f1, 5, 2, 2), ConvSpec(f1, pool=True),
            ConvSpec(f2), ConvSpec(f2, pool=True),
            ConvSpec(f3, dropout=0.3), ConvSpec(f3, dropout=0.3), ConvSpec(f3, dropout=0.3), ConvSpec(f3, pool=True),
            ConvSpec(n_classes, 1, 1, 0))


#: Base filter counts; each is multiplied by the input channels, as in the baseline.
PRESET_FILTERS = {"paper": (48, 96, 192), "small": (4, 8, 16)}


def preset_config(preset: str = "paper", input_shape=(128, 423, 3), n_classes: int = 10) -> FCNNConfig:
    """``paper``: the baseline (11,786,711 parameters for 10 classes on (128, 423, 3)); ``small``: for CPUs."""
    if preset not in PRESET_FILTERS:
        raise UsageError(f"unknown preset {preset!r}; expected one of {', '.join(PRESET_FILTERS)}")
    input_shape = tuple(int(d) for d in input_shape)
    return FCNNConfig(input_shape, n_classes, _hu_convs(PRESET_FILTERS[preset], input_shape[-1], n_classes),
                      preset=preset)


def parameter_count(config: FCNNConfig) -> int:
    """The parameters :func:`build_fcnn` makes of ``config`` (trainable and batch-norm statistics), counted without
    building it: what a plan prices memory with."""
    channels = config.input_shape[-1]
    total, previous = 4 * channels, channels  # the input batch normalisation
    for k, conv in enumerate(config.convs, start=1):
        total += previous * conv.filters * conv.kernel ** 2
        # batch normalisation: gamma, beta, mean, variance; the last convolution's two without centre and scale
        total += 4 * conv.filters if k < len(config.convs) else 2 * 2 * conv.filters
        previous = conv.filters
    hidden = max(1, config.n_classes // config.attention_ratio)
    bias = 1 if config.attention_bias else 0
    total += previous * hidden + bias * hidden + hidden * config.n_classes + bias * config.n_classes
    return total


def build_fcnn(config: FCNNConfig, name: str = "fcnn") -> keras.Model:
    """The network of ``config``; layer names carry the segment number (``seg03_conv`` ...)."""
    he = "he_normal"
    bins, _, channels = config.input_shape
    # the time axis is left open: the network is fully convolutional, so crops and full clips both fit
    inputs = keras.Input(shape=(bins, None, channels), name="logmel")
    x = keras.layers.BatchNormalization(name="seg01_input_bn")(inputs)
    last = len(config.convs)
    for k, conv in enumerate(config.convs, start=1):
        tag = f"seg{k:02d}"
        if conv.pad:
            x = keras.layers.ZeroPadding2D(conv.pad, name=f"{tag}_pad")(x)
        x = keras.layers.Conv2D(conv.filters, conv.kernel, strides=conv.stride, padding="valid", use_bias=False,
                                kernel_initializer=he, name=f"{tag}_conv")(x)
        if k == last:  # output convolution: BN without centre/scale, ReLU, BN again
            x = keras.layers.BatchNormalization(center=False, scale=False, name=f"{tag}_bn")(x)
            x = keras.layers.Activation("relu", name=f"{tag}_relu")(x)
            x = keras.layers.BatchNormalization(center=False, scale=False, name=f"{tag}_bn2")(x)
            break
        x = keras.layers.BatchNormalization(name=f"{tag}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{tag}_relu")(x)
        if conv.dropout:
            x = keras.layers.Dropout(conv.dropout, name=f"{tag}_dropout")(x)
        if conv.pool:
            x = keras.layers.MaxPooling2D(2, name=f"{tag}_pool")(x)
    x = channel_attention(x, config.n_classes, config.attention_ratio, config.attention_bias, f"seg{last + 1:02d}")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def channel_attention(x, channels: int, ratio: int, use_bias: bool, tag: str):
    """CBAM-style channel attention: a shared two-layer MLP on average- and max-pooled maps."""
    hidden = keras.layers.Dense(max(1, channels // ratio), activation="relu", use_bias=use_bias,
                                kernel_initializer="he_normal", name=f"{tag}_att_dense1")
    out = keras.layers.Dense(channels, use_bias=use_bias, kernel_initializer="he_normal", name=f"{tag}_att_dense2")
    avg = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{tag}_att_avg")(x)
    mx = keras.layers.GlobalMaxPooling2D(keepdims=True, name=f"{tag}_att_max")(x)
    scale = keras.layers.Add(name=f"{tag}_att_add")([out(hidden(avg)), out(hidden(mx))])
    scale = keras.layers.Activation("sigmoid", name=f"{tag}_att_sigmoid")(scale)
    return keras.layers.Multiply(name=f"{tag}_att_scale")([x, scale])
