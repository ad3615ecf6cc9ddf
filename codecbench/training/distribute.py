"""The local devices and data-parallel training over them (the training copy itself is made by :mod:`.loop`).

Training and fine-tuning run data-parallel over the devices given (``--devices``; ``auto``: every local
accelerator when there is more than one):

- TensorFlow backend: ``tf.distribute.MirroredStrategy``; batch normalisation is made ``synchronized``, so its
  batch statistics are those of the whole global batch, as on one device.
- JAX backend: Keras 3's ``keras.distribution.DataParallel`` over the JAX devices (one jitted program on the
  sharded global batch, so batch statistics are global too).

Scaling: ``--batch-size`` stays the *global* batch (the recipe's 32 by default), split evenly across devices,
and the learning rate is unchanged: each step's gradient is the mean over the same 32 examples as on one
device, so the recipe and its results carry over. To use more devices for throughput, raise ``--batch-size``
(e.g. 32 x devices) and scale ``--lr`` with it (the linear scaling rule); that is a different recipe.

The model a caller holds stays float32 on the default device; training runs on a *twin* (same weights, the
run's dtype policy, created under the strategy), whose weights are copied back before every epoch callback.
"""
from __future__ import annotations

import os

from ..backend import keras
from ..errors import UsageError


def local_accelerators() -> list[str]:
    """Names of the local GPUs/TPUs the Keras backend sees (empty on a CPU-only machine)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return [d.name for d in tf.config.list_logical_devices() if d.device_type in ("GPU", "TPU")]
    if backend == "jax":
        import jax
        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    return []


def default_device() -> str:
    """The first local accelerator, else the CPU."""
    return (local_accelerators() or ["CPU"])[0]


def reader_threads() -> int:
    """Threads that read and finish cached features: 1 on a CPU-only machine (the model already uses every core,
    and one reader overlapping it measured best), more with an accelerator, which needs the whole CPU to feed it
    (one thread finishes ~550 paper-sized clips/s; a GPU infers thousands)."""
    return max(1, min(8, (os.cpu_count() or 2) - 1)) if local_accelerators() else 1


def resolve_devices(value: str | None) -> list[str] | None:
    """``None``/``"auto"``: every local accelerator if there are at least two, else None (one device, no
    strategy). ``"cpu:0,cpu:1"`` (TensorFlow device names) or ``"2"`` (the first two devices the backend
    lists, CPUs included): those. A list of one device is no distribution (None)."""
    text = (value or "auto").strip()
    if text == "auto":
        found = local_accelerators()
        return found if len(found) > 1 else None
    if text.isdigit():
        count = int(text)
        available = _all_devices()
        if count > len(available):
            raise UsageError(f"--devices {count}: this machine's Keras backend sees {len(available)} devices "
                             f"({', '.join(available)})")
        chosen = available[:count]
    else:
        known = _device_names()
        chosen, unknown = [], []
        for name in (d.strip() for d in text.split(",") if d.strip()):
            short = _short_device_name(name)
            (chosen.append(known[short]) if short in known else unknown.append(name))
        if unknown:
            # an unknown device never hangs training or passes as used: named, with what the backend sees
            raise UsageError(f"--devices: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a device "
                             f"of this machine's Keras backend ({keras.backend.backend()}); it sees "
                             f"{', '.join(sorted(known)) or 'none'}")
        if len(set(chosen)) != len(chosen):
            raise UsageError(f"--devices {text}: a device is named twice")
    return chosen if len(chosen) > 1 else None


def _short_device_name(name: str) -> str:
    """``/job:localhost/replica:0/task:0/device:GPU:1``, ``/gpu:1``, ``GPU:1`` -> ``gpu:1``."""
    return name.strip().rsplit("device:", 1)[-1].lstrip("/").lower()


def _device_names() -> dict[str, str]:
    """Every device the backend sees, short name -> the name the backend takes."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return {_short_device_name(d.name): d.name for d in tf.config.list_logical_devices()}
    if backend == "jax":
        import jax
        return {_short_device_name(str(d)): str(d) for d in jax.devices()}
    return {}


def _all_devices() -> list[str]:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        accelerators = [d.name for d in tf.config.list_logical_devices() if d.device_type != "CPU"]
        return accelerators or [d.name for d in tf.config.list_logical_devices("CPU")]
    if backend == "jax":
        import jax
        return [str(d) for d in jax.devices()]
    return []
