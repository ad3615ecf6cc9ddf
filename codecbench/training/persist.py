"""Writing and reading a training run's models: saves announced with their size and time, and resume checkpoints
that, when damaged, say what to delete and what follows (not a Keras traceback)."""
from __future__ import annotations

import time
from typing import Callable

from codecbench.errors import CodecbenchError, UsageError


def load_checkpoint(checkpoint, name: str, restart: str):
    """A resume checkpoint, or a :class:`UsageError` saying it is damaged and what to do (not a Keras traceback)."""
    try:
        return checkpoint.load(name)
    except (CodecbenchError, OSError, ValueError, KeyError) as exc:
        files = f"{checkpoint.root / name}.keras and its .json"
        raise UsageError(f"{checkpoint.root / name}.keras: the resume checkpoint is damaged ({type(exc).__name__}: "
                         f"{str(exc)[:200]}); delete {files} to restart ({restart}); the epochs it held are lost, "
                         "nothing else is") from None


def save_announced(zoo, name: str, model, meta: dict, overwrite: bool, progress: Callable[[str], None] | None) -> None:
    """``zoo.save`` announced on ``progress``, with the file's size and the seconds it took."""
    start = time.perf_counter()
    if progress is not None:
        progress(f"{name}: saving: writing {zoo.root / name}.keras")
    path = zoo.save(name, model, meta, overwrite=overwrite)
    if progress is not None:
        progress(f"{name}: saved {path} ({path.stat().st_size / 2**20:.1f} MiB, {time.perf_counter() - start:.1f} s)")
