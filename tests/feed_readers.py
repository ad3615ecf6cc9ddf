"""Picklable batch readers for the feed's worker processes (a test module's own classes would not import there)."""
from __future__ import annotations

import os

import numpy as np


class Ramp:
    """Clip ``i`` is ``i`` repeated ``width`` times; ``dies`` (a file) makes every worker that reads exit at once,
    as one killed by the OOM killer does."""

    def __init__(self, clips, width: int = 4, dies: str | None = None):
        self.clips, self.width, self.dies = list(clips), width, dies

    def __len__(self) -> int:
        return len(self.clips)

    def __call__(self, indices) -> np.ndarray:
        if self.dies and os.path.exists(self.dies):
            os._exit(9)
        return np.stack([np.full(self.width, float(self.clips[i]), dtype=np.float32) for i in indices])

    def take(self, indices) -> "Ramp":
        return Ramp([self.clips[i] for i in indices], self.width, self.dies)
