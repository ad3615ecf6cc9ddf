"""Where a result came from: library versions, machine, git commit, time. Shared by models and runs."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata

from codecbench.core.parallel import usable_cores

#: Python distributions whose version can change a result's bytes or numbers.
DISTRIBUTIONS = ("codecbench", "numpy", "scipy", "soxr", "librosa", "av", "keras", "tensorflow", "tensorflow-cpu",
                 "jax", "jaxlib", "torch", "soundfile", "joblib", "pandas", "onnxruntime")


def library_versions() -> dict[str, str]:
    """Versions of the Python distributions, libsndfile, the C library, and the BLAS numpy calls."""
    out = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    try:
        import soundfile
        out["libsndfile"] = soundfile.__libsndfile_version__
    except Exception:  # soundfile missing or without its library: informative only
        pass
    libc, version = platform.libc_ver()
    if libc:
        out[libc] = version
    out.update(blas_in_use())
    try:
        from codecbench.core.backend import keras
        out["keras_backend"] = keras.backend.backend()
    except Exception:  # keras missing or broken: versions are informative, never fatal
        pass
    return out


def blas_in_use() -> dict[str, str]:
    """The BLAS library numpy calls, its version and the kernel it picked for this CPU (via threadpoolctl)."""
    try:
        import numpy  # noqa: F401  (loads its BLAS so threadpoolctl can see it)
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            kernel = pool.get("architecture")
            return {"blas": f"{pool.get('internal_api')} {pool.get('version')}" + (f" ({kernel})" if kernel else "")}
    return {}


def cpu_summary() -> dict[str, str]:
    """The CPU's model name and the SIMD levels numpy dispatches to on it (what decides which loops run)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    out = {"cpu": model}
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy < 2: no dispatch facts
        return out
    out["simd"] = " ".join(f for f in __cpu_dispatch__ if __cpu_features__.get(f)) or "baseline"
    return out


def host_text(summary: dict) -> str:
    """:func:`cpu_summary` in words, for a benchmark's first line: ``AMD EPYC (SIMD: X86_V3 X86_V4)``."""
    return f"{summary.get('cpu', 'an unknown CPU')} (SIMD: {summary.get('simd', 'not known')})"


def machine() -> dict[str, str | int]:
    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": usable_cores(),
            "hostname": platform.node(), **cpu_summary()}


def git_commit(folder: str | os.PathLike | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
