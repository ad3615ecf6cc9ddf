"""A folder per class: a random, seeded split into train and evaluate."""
from __future__ import annotations

import os
import random
from pathlib import Path

from codecbench.datasets.base import AUDIO_SUFFIXES, Dataset, DatasetError, make_clip


def load_folder(root: str | os.PathLike, *, evaluate_fraction: float = 0.3, seed: int = 0) -> Dataset:
    """A folder per class (``root/<label>/*.wav``), split per class deterministically.

    Parameters
    ----------
    root : path
        The folder whose sub-folders are the classes.
    evaluate_fraction : float
        The share of each class's clips that goes to the ``evaluate`` split.
    seed : int
        Seeds the split, so the same folder always splits the same way.

    Returns
    -------
    Dataset
    """
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        flat = sorted(p for p in root.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES) if root.is_dir() else []
        if flat:  # unlabelled audio: enough to code and cache it, not to evaluate a classifier
            return Dataset(f"folder:{root.name}", root, [],
                           {"evaluate": [make_clip(root, p.name, None, None) for p in flat]})
        raise DatasetError(f"{root}: expected audio files, or one sub-folder of audio files per class; found none")
    train, evaluate = [], []
    for label in classes:
        files = sorted(p for p in (root / label).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise DatasetError(f"{root / label}: no audio files (.wav, .flac, .ogg)")
        random.Random(f"{seed}:{label}").shuffle(files)
        n_eval = max(1, round(len(files) * evaluate_fraction)) if len(files) > 1 else 0
        evaluate += [make_clip(root, p.relative_to(root).as_posix(), label, None) for p in sorted(files[:n_eval])]
        train += [make_clip(root, p.relative_to(root).as_posix(), label, None) for p in sorted(files[n_eval:])]
    return Dataset(f"folder:{root.name}", root, classes, {"train": train, "evaluate": evaluate})
