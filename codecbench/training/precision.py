"""Numeric precision of Keras models: the dtype policy a run asks for (``auto``, ``float32``, ``mixed_bfloat16``),
what ``auto`` resolves to on this machine and why (:func:`choose_precision`), and a model switched to it."""
from __future__ import annotations

import dataclasses
import platform
import subprocess

from ..backend import keras

#: CPU feature flags (Linux ``/proc/cpuinfo`` names) that mean native bfloat16 arithmetic: AVX-512 BF16
#: (Cooper Lake, Sapphire Rapids, Zen 4 and later), AMX (Sapphire Rapids and later), and Arm's BF16 extension
#: (``bf16`` on Linux, ``FEAT_BF16`` on macOS). Without them bfloat16 is emulated: training 4-10x slower.
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """The dtype policy a run uses and why (recorded in results and sidecars)."""

    policy: str
    reason: str


def cpu_flags() -> set[str]:
    """This CPU's feature flags (lower case): ``/proc/cpuinfo`` on Linux (``flags`` on x86, ``Features`` on Arm),
    ``sysctl`` on macOS; empty where neither answers."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    return {flag.lower() for flag in line.split(":", 1)[1].split()}
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                 timeout=5).stdout.strip()
            return {"bf16"} if out == "1" else set()
        except (OSError, subprocess.SubprocessError):
            pass
    return set()


def choose_precision(precision: str, *, reproducible: bool = False, flags: set[str] | None = None,
                     accelerators: list[str] | None = None) -> PrecisionChoice:
    """The policy for ``precision`` on this machine, with the reason.

    ``"auto"`` is mixed_bfloat16 on an accelerator or a CPU with native bfloat16 (:data:`BF16_FLAGS`), float32
    elsewhere, and float32 whenever ``reproducible`` (a generated dataset such as the embedded default, whose
    results must be the same on every machine). ``flags`` and ``accelerators`` default to this machine's.
    """
    if precision != "auto":
        return PrecisionChoice(precision, "asked for")
    if reproducible:
        return PrecisionChoice("float32", "auto: float32 on a generated dataset, so its results are the same on "
                                          "every machine")
    if accelerators is None:
        from ..devices import local_accelerators
        accelerators = local_accelerators()
    if accelerators:
        return PrecisionChoice("mixed_bfloat16", f"auto: accelerator {accelerators[0]}")
    native = sorted(set(BF16_FLAGS) & (cpu_flags() if flags is None else {f.lower() for f in flags}))
    if native:
        return PrecisionChoice("mixed_bfloat16", f"auto: the CPU computes bfloat16 natively ({', '.join(native)})")
    return PrecisionChoice("float32", "auto: no accelerator, and the CPU has no native bfloat16 "
                                      f"({'/'.join(BF16_FLAGS)})")


def resolve_precision(precision: str, *, reproducible: bool = False) -> str:
    """The policy of :func:`choose_precision`, without the reason."""
    return choose_precision(precision, reproducible=reproducible).policy


def with_precision(model, precision: str, *, synchronized_batchnorm: bool = False):
    """``model`` computing under the dtype policy ``precision`` ("float32" or "mixed_bfloat16").

    A Keras model keeps the policy it was built with (its configuration names it per layer), so a change of
    policy is a clone with the same weights and trainable flags. The output layer stays float32, as Keras
    advises for a softmax. ``synchronized_batchnorm``: batch normalisation over the global batch of a
    distribution strategy (always a clone). Returns ``model`` itself when nothing changes.
    """
    if precision == "float32":
        from ..devices import exact_float32
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
