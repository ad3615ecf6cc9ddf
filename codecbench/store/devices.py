"""The devices of this machine as the Keras backend sees them, in one place, for every backend.

What runs where: :func:`local_accelerators` (the GPUs/TPUs the backend can use), :func:`all_devices` (CPUs
included), :func:`resolve_devices` (``--devices``), :func:`feed_workers` (processes that read and decode inputs
for an accelerator; on a machine without one, decided without importing the backend), :func:`nvidia_gpu_present`
(a GPU the driver shows, whether or not the backend can use it), the precision ``--precision auto`` means here
(:func:`choose_precision`) and :func:`report` (what ``codecbench devices`` prints). TensorFlow, JAX and PyTorch
each name devices their own way; callers get short names (``gpu:0``, ``cuda:0``, ``cpu:0``) and never import a
backend themselves.
"""
from __future__ import annotations

import dataclasses
import functools
import glob
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys

from codecbench.core.parallel import usable_cores
from codecbench.errors import EnvironmentProblem, UsageError

#: How each backend's GPU build is installed (what ``codecbench devices`` suggests when a GPU is present but unused).
GPU_INSTALL = {
    "tensorflow": 'pip uninstall -y tensorflow-cpu && pip install "tensorflow[and-cuda]>=2.16"',
    "jax": 'pip install -e ".[jax-cuda]"  (then KERAS_BACKEND=jax)',
    "torch": 'pip install -e ".[torch-cuda]"  (then KERAS_BACKEND=torch)',
}


def backend() -> str:
    """The Keras backend in use: ``tensorflow``, ``jax`` or ``torch``."""
    from codecbench.core.backend import keras  # slow (the backend's framework): only where a device is asked about

    return keras.backend.backend()


def local_accelerators() -> list[str]:
    """Names of the local GPUs/TPUs the Keras backend can use (empty on a CPU-only machine)."""
    return [name for name, kind in _devices() if kind != "CPU"]


def all_devices() -> list[str]:
    """Every device the backend sees: the accelerators, or the CPUs where there is none."""
    found = _devices()
    return [n for n, k in found if k != "CPU"] or [n for n, k in found if k == "CPU"]


def default_device() -> str:
    """The first local accelerator, else the CPU."""
    return (local_accelerators() or ["CPU"])[0]


def short_name(name: str) -> str:
    """``/job:localhost/replica:0/task:0/device:GPU:1``, ``/gpu:1``, ``GPU:1``, ``cuda:1`` -> lower case short name."""
    return str(name).strip().rsplit("device:", 1)[-1].lstrip("/").lower()


def _devices() -> list[tuple[str, str]]:
    """(name the backend takes, kind "CPU"/"GPU"/"TPU") for every device of the backend."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf
        return [(d.name, d.device_type) for d in tf.config.list_logical_devices()]
    if name == "jax":
        import jax
        return [(str(d), "CPU" if d.platform == "cpu" else d.platform.upper()) for d in jax.devices()]
    if name == "torch":
        import torch
        found = [("cpu:0", "CPU")]
        if torch.cuda.is_available():
            found += [(f"cuda:{i}", "GPU") for i in range(torch.cuda.device_count())]
        return found
    return []


def device_details() -> list[dict]:
    """Each device with what is known of it (name, kind, model, memory) for reports."""
    rows = []
    for name, kind in _devices():
        row: dict = {"name": short_name(name), "kind": kind}
        if kind == "GPU" and backend() == "torch":
            import torch
            props = torch.cuda.get_device_properties(int(name.split(":")[1]))
            row.update(model=props.name, memory_gib=round(props.total_memory / 2 ** 30, 1))
        elif kind == "GPU" and backend() == "jax":
            import jax
            dev = next(d for d in jax.devices() if str(d) == name)
            row["model"] = getattr(dev, "device_kind", "")
        elif kind == "GPU" and backend() == "tensorflow":
            import tensorflow as tf
            physical = tf.config.list_physical_devices("GPU")
            index = int(name.rsplit(":", 1)[1])
            if index < len(physical):
                row["model"] = tf.config.experimental.get_device_details(physical[index]).get("device_name", "")
        rows.append(row)
    return rows


def resolve_devices(value: str | None) -> list[str] | None:
    """``None``/``"auto"``: every local accelerator if there are at least two, else None (one device, no
    strategy). ``"gpu:0,gpu:1"`` (any backend's spelling) or ``"2"`` (the first two devices the backend lists,
    CPUs where there is no accelerator): those. A list of one device is no distribution (None)."""
    text = (value or "auto").strip()
    if text == "auto":  # (PyTorch: one device; Keras 3 distributes only TensorFlow and JAX)
        found = local_accelerators()
        return found if len(found) > 1 and backend() != "torch" else None
    if text.isdigit():
        count = int(text)
        available = all_devices()
        if count < 1 or count > len(available):
            raise UsageError(f"--devices {count}: this machine's Keras backend ({backend()}) sees {len(available)} "
                             f"device(s) ({', '.join(short_name(d) for d in available) or 'none'})")
        chosen = available[:count]
    else:
        known = {short_name(n): n for n, _ in _devices()}
        chosen, unknown = [], []
        for name in (d.strip() for d in text.split(",") if d.strip()):
            short = short_name(name)
            (chosen.append(known[short]) if short in known else unknown.append(name))
        if unknown:
            # an unknown device never hangs training or passes as used: named, with what the backend sees
            raise UsageError(f"--devices: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a device "
                             f"of this machine's Keras backend ({backend()}); it sees "
                             f"{', '.join(sorted(known)) or 'none'}")
        if not chosen:
            raise UsageError(f"--devices {text!r}: no device named")
        if len(set(chosen)) != len(chosen):
            raise UsageError(f"--devices {text}: a device is named twice")
    if len(chosen) > 1 and backend() == "torch":
        raise UsageError(f"--devices {text}: data-parallel training over several devices needs the TensorFlow or JAX "
                         "backend; Keras 3 has no multi-device distribution for PyTorch (use one device, or "
                         "KERAS_BACKEND=jax)")
    return chosen if len(chosen) > 1 else None


def exact_float32() -> None:
    """Make ``float32`` mean float32 on accelerators: NVIDIA GPUs since Ampere compute float32 matrix products and
    convolutions in TensorFloat-32 (10-bit mantissa) by default in JAX, and convolutions so in PyTorch (cuDNN) and
    TensorFlow, which changed 2 of 300 predictions per cell against a CPU's on an H200. Called whenever a model runs
    under the float32 policy (:func:`codecbench.training.precision.with_precision`); bfloat16 policies are
    unaffected."""
    name = backend()
    if name == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", "highest")
    elif name == "torch":
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif name == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(False)


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
        accelerators = local_accelerators()
    if accelerators:
        return PrecisionChoice("mixed_bfloat16", f"auto: accelerator {accelerators[0]}")
    native = sorted(set(BF16_FLAGS) & (cpu_flags() if flags is None else {f.lower() for f in flags}))
    if native:
        return PrecisionChoice("mixed_bfloat16", f"auto: the CPU computes bfloat16 natively ({', '.join(native)})")
    return PrecisionChoice("float32", "auto: no accelerator, and the CPU has no native bfloat16 "
                                      f"({'/'.join(BF16_FLAGS)})")


def feed_workers(accelerators: list[str] | None = None) -> int:
    """Processes that read and decode model inputs: every core but one with an accelerator (decoding and
    decompression hold the GIL, so threads alone do not scale, and the device must never wait on the host),
    none on a CPU-only machine (the model already uses every core; reads overlap it in one thread).
    ``CODECBENCH_FEED_WORKERS`` overrides."""
    forced = os.environ.get("CODECBENCH_FEED_WORKERS")
    if forced:
        try:
            value = int(forced)
        except ValueError:
            raise UsageError(f"CODECBENCH_FEED_WORKERS={forced!r}: expected a whole number >= 0") from None
        if value < 0:
            raise UsageError(f"CODECBENCH_FEED_WORKERS={forced!r}: expected a whole number >= 0")
        return value
    accelerators = feed_accelerators() if accelerators is None else accelerators
    return max(1, usable_cores() - 1) if accelerators else 0


def reader_threads() -> int:
    """Threads that assemble batches in the main process: one on a CPU-only machine (the model already uses every
    core, and one reader overlapping it measured best), a few with an accelerator (each waits on worker processes)."""
    return max(1, min(8, usable_cores() - 1)) if feed_accelerators() else 1


def feed_accelerators() -> list[str]:
    """The accelerators a feed serves: none where the machine has no accelerator at all (:func:`accelerator_hardware`,
    asked of the machine, so the backend is not imported: scoring a PyTorch or ONNX model imported TensorFlow, 10 s,
    to hear there was none), else :func:`local_accelerators`."""
    return local_accelerators() if accelerator_hardware() else []


@functools.lru_cache(maxsize=1)
def accelerator_hardware() -> bool:
    """Whether this machine shows any GPU or TPU: an NVIDIA GPU (:func:`nvidia_gpu_present`, or its device files
    ``/dev/nvidia0``... in a container without the driver's tools), AMD's ROCm device (``/dev/kfd``), a TPU's device
    files (``/dev/accel*``, ``/dev/vfio``). True wherever it cannot tell (not Linux): a wrong True only costs asking
    the backend."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(nvidia_gpu_present()) or os.path.exists("/dev/kfd") or os.path.exists("/dev/vfio") \
        or bool(glob.glob("/dev/accel*") or glob.glob("/dev/nvidia[0-9]*"))




def nvidia_gpu_present() -> list[str]:
    """The NVIDIA GPUs the driver shows (``nvidia-smi -L``, else ``/proc/driver/nvidia/gpus``), whatever the backend
    can use; empty without a driver."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
            gpus = [line.split(" (UUID")[0].strip() for line in out.splitlines() if line.startswith("GPU ")]
            if gpus:
                return gpus
        except (OSError, subprocess.SubprocessError):
            pass
    folder = "/proc/driver/nvidia/gpus"
    try:
        return [f"GPU at PCI {entry}" for entry in sorted(os.listdir(folder))]
    except OSError:
        return []


def tensorflow_distributions() -> list[str]:
    """The TensorFlow distributions installed side by side (two of them overwrite each other's files)."""
    found = []
    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly", "tensorflow-intel"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


@dataclasses.dataclass(frozen=True)
class DeviceReport:
    """What ``codecbench devices`` prints: the backend, its devices, the precision ``auto`` picks and why, the feed
    workers, and warnings (a GPU the backend cannot use, two TensorFlow distributions)."""

    backend: str
    devices: list[dict]
    accelerators: list[str]
    precision: str
    precision_reason: str
    feed_workers: int
    cores: int
    driver_gpus: list[str]
    warnings: list[str]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def text(self) -> str:
        lines = [f"Keras backend: {self.backend} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND', '') or 'unset'})",
                 "devices:"]
        for d in self.devices:
            extra = ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("name", "kind") and v)
            lines.append(f"  {d['name']:<8} {d['kind']}" + (f"  ({extra})" if extra else ""))
        lines.append(f"--precision auto: {self.precision} ({self.precision_reason})")
        lines.append(f"feed: {self.feed_workers} worker process(es) on {self.cores} cores"
                     + ("" if self.feed_workers else " (CPU-only: inputs are read in one thread beside the model)"))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def report() -> DeviceReport:
    """This machine's devices as the current Keras backend sees them (see :class:`DeviceReport`)."""
    accelerators = [short_name(a) for a in local_accelerators()]
    choice = choose_precision("auto", accelerators=accelerators)
    driver = nvidia_gpu_present()
    warnings = []
    if driver and not accelerators:
        warnings.append(f"the driver shows {len(driver)} NVIDIA GPU(s) ({'; '.join(driver)}) but the {backend()} "
                        f"backend cannot use them: install its GPU build: {GPU_INSTALL.get(backend(), '')}")
    tf_dists = tensorflow_distributions()
    if len(tf_dists) > 1:
        warnings.append(f"{len(tf_dists)} TensorFlow distributions are installed ({', '.join(tf_dists)}); they "
                        "overwrite each other's files: uninstall all but one")
    return DeviceReport(backend=backend(), devices=device_details(), accelerators=accelerators,
                        precision=choice.policy, precision_reason=choice.reason,
                        feed_workers=feed_workers(local_accelerators()), cores=usable_cores(), driver_gpus=driver,
                        warnings=warnings)


def require_accelerator() -> str:
    """The first accelerator, or :class:`EnvironmentProblem` naming what is missing (for GPU-only checks)."""
    found = local_accelerators()
    if not found:
        driver = nvidia_gpu_present()
        raise EnvironmentProblem(f"no accelerator for the {backend()} backend"
                                 + (f" (the driver shows {'; '.join(driver)}: {GPU_INSTALL.get(backend(), '')})"
                                    if driver else " (no GPU driver on this machine)"))
    return found[0]
