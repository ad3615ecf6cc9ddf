"""Where a result came from: library versions, machine, git commit, time. Shared by models and runs."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("codecbench", "numpy", "librosa", "av", "keras", "tensorflow", "tensorflow-cpu", "jax", "soundfile",
                 "joblib", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    try:
        from .backend import keras
        out["keras_backend"] = keras.backend.backend()
    except Exception:  # keras missing or broken: versions are informative, never fatal
        pass
    return out


def machine() -> dict[str, str | int]:
    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count() or 0,
            "hostname": platform.node()}


def git_commit(folder: str | os.PathLike | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
