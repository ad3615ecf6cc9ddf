"""Scene datasets: TAU Urban Acoustic Scenes 2020 Mobile, a folder per class, and synthetic scenes.

All three end up as a :class:`Dataset`: clips per split, each with its path, scene label and
recording device, and the class names in sorted order. The synthetic scenes are written to
disk in the TAU layout and read back by the TAU loader, so the embedded default exercises
the same code path as the real data.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from codecbench.datasets.base import AUDIO_SUFFIXES, Clip, Dataset, DatasetError, check_unique, device_of, make_clip
from codecbench.datasets.folder import load_folder
from codecbench.datasets.folds import detect as folds_layout
from codecbench.datasets.folds import load_folds, parse_folds
from codecbench.datasets.synth import DEVICES, SCENES
from codecbench.datasets.synthetic import (
    RECIPE_FILE,
    SYNTHETIC_DEFAULTS,
    SYNTHETIC_MANIFEST,
    SYNTHETIC_VERSION,
    _parse_synthetic,
    pending_splits,
    read_synthetic_manifest,
    regenerate_and_compare,
    scene_wav_bytes,
    synth_scene,
    synthesize,
    synthetic_clips,
    synthetic_manifest_text,
)
from codecbench.datasets.tau import SPLIT_FILES, load_tau, read_split_file

__all__ = ["AUDIO_SUFFIXES", "DEVICES", "SCENES", "SPLIT_FILES", "SYNTHETIC_DEFAULTS", "SYNTHETIC_MANIFEST",
           "SYNTHETIC_VERSION", "Clip", "Dataset", "DatasetError", "check_unique", "device_of", "load_dataset",
           "load_folder", "load_folds", "load_tau", "make_clip", "parse_folds", "read_split_file",
           "read_synthetic_manifest", "regenerate_and_compare", "scene_wav_bytes", "synth_scene", "synthesize",
           "synthetic_clips", "synthetic_manifest_text"]


def load_dataset(spec: str | os.PathLike = "synthetic", *, cache_dir=None, allow_partial: bool = False,
                 listing_only: bool = False, splits: tuple[str, ...] | None = None,
                 folds: dict[str, tuple[int, ...]] | None = None, log: Callable[[str], None] | None = None,
                 **synthetic_params) -> Dataset:
    """A dataset by name or folder, in whichever layout it has.

    Parameters
    ----------
    spec : str or path
        ``"synthetic"`` (the embedded default; parameters can ride along:
        ``synthetic:train=8,evaluate=4,duration=1,seed=2``), a TAU 2020 Mobile root (detected by its
        ``evaluation_setup/``), an UrbanSound8K or ESC-50 folder (detected by its metadata file), or a folder
        per class.
    cache_dir : path, optional
        Where the synthetic default is written (default: the cache folder).
    allow_partial, listing_only, splits
        As :func:`load_tau`. For the synthetic default, ``splits`` are the splits whose audio is generated on first
        use (default: all) and ``listing_only`` generates none (a plan counts what is still to generate:
        :attr:`Dataset.to_generate`).
    folds : dict, optional
        For UrbanSound8K and ESC-50: split name -> folds (default: the dataset's usual train/evaluate folds).
    log : callable, optional
        Where the synthetic default says that it generates a split, and how long that takes (default: stderr).

    Returns
    -------
    Dataset
        Clips per split with path, label and device, and the class names.
    """
    text = str(spec)
    if text == "synthetic" or text.startswith("synthetic:"):
        params = {**_parse_synthetic(text), **synthetic_params}
        recipe = {**SYNTHETIC_DEFAULTS, **params}
        chosen = tuple(s for s in (splits or recipe["clips_per_class"]) if int(recipe["clips_per_class"].get(s, 0)))
        root = synthesize(cache_dir=cache_dir, splits=() if listing_only else chosen, log=log, **params)
        dataset = load_tau(root, name="synthetic", splits=chosen or tuple(recipe["clips_per_class"]),
                           listing_only=listing_only)
        dataset.recipe = json.loads((root / RECIPE_FILE).read_text())
        for split in dataset.splits:  # known from the recipe, whether or not the audio is there yet
            dataset._rates[split] = [int(dataset.recipe["sample_rate"])]
            dataset._longest[split] = float(dataset.recipe["duration"])
        dataset.to_generate = {s: len(dataset.splits[s]) for s in pending_splits(root, dataset.splits)}
        return dataset
    root = Path(spec).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder not found (use 'synthetic' for the embedded default)")
    if folds_layout(root):
        return load_folds(root, folds=folds, splits=splits, listing_only=listing_only)
    if folds:
        raise DatasetError(f"--folds: {root} is not a fold-based dataset (UrbanSound8K, ESC-50); its splits are "
                           "fixed by its own layout")
    if (root / "evaluation_setup").is_dir():
        # only the splits asked for need their audio: an evaluation-only download benchmarks
        return load_tau(root, splits=splits or ("train", "evaluate"), allow_partial=allow_partial,
                        listing_only=listing_only)
    return load_folder(root)
