"""The TAU Urban Acoustic Scenes 2020 Mobile layout: ``audio/`` and ``evaluation_setup/fold1_*.csv``."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from codecbench.datasets.base import Clip, Dataset, DatasetError, check_unique, device_of, make_clip
from codecbench.datasets.synth import SCENES

SPLIT_FILES = {"train": "fold1_train.csv", "evaluate": "fold1_evaluate.csv", "test": "fold1_test.csv"}


def read_split_file(path: str | os.PathLike) -> pd.DataFrame:
    """A TAU split file: tab-separated, header ``filename[\\tscene_label]``, CRLF or LF endings."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DatasetError(f"{path}: cannot read split file ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    if "filename" not in frame.columns:
        raise DatasetError(f"{path}: expected a tab-separated header with 'filename', got {list(frame.columns)}")
    return frame.apply(lambda col: col.str.strip())


TAU2020_MOBILE = "TAU Urban Acoustic Scenes 2020 Mobile, development set (fold 1)"
TAU2020_SPLIT_SIZES = {"train": 13965, "evaluate": 2970}


def load_tau(root: str | os.PathLike, *, splits=("train", "evaluate"), allow_partial: bool = False,
             name: str | None = None, listing_only: bool = False) -> Dataset:
    """Load the TAU Urban Acoustic Scenes 2020 Mobile layout.

    Parameters
    ----------
    root : path
        The folder holding ``audio/`` and ``evaluation_setup/fold1_{train,evaluate,test}.csv``.
    splits : tuple of str
        The splits to read; only their audio must be present (an evaluation-only download benchmarks).
    allow_partial : bool
        Keep the listed clips that exist and drop missing ones instead of refusing the folder.
    name : str, optional
        The dataset's name in results (default: the folder's name).
    listing_only : bool
        Keep every listed clip, present or not (for planning a run before the audio is there).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        Naming the split file, row or clip at fault.
    """
    root = Path(root)
    setup = root / "evaluation_setup"
    if not setup.is_dir():
        raise DatasetError(f"{root}: not a TAU dataset folder (no evaluation_setup/ folder)")
    out: dict[str, list[Clip]] = {}
    labels: set[str] = set()
    listed: dict[str, int] = {}
    for split in splits:
        if split not in SPLIT_FILES:
            raise DatasetError(f"{root}: no split {split!r} in the TAU layout; splits: {', '.join(SPLIT_FILES)}")
        file = setup / SPLIT_FILES[split]
        if not file.is_file():
            raise DatasetError(f"{file}: split file not found")
        frame = read_split_file(file)
        has_labels = "scene_label" in frame.columns
        clips = check_unique([make_clip(root, row.filename, row.scene_label if has_labels else None,
                                        device_of(row.filename), source=f"{file}, row {i + 2}")
                              for i, row in enumerate(frame.itertuples(index=False))], str(file))
        missing = [] if listing_only else [c for c in clips if not c.path.is_file()]
        if missing and not allow_partial:
            shown = ", ".join(c.key for c in missing[:5])
            raise DatasetError(f"{root}: {len(missing)} of {len(clips)} audio files of split {split!r} are "
                               f"missing (e.g. {shown}); to use the rest pass allow_partial=True (Python) or "
                               "--allow-partial (codecbench encode); a benchmark scores every clip of its split")
        out[split] = [c for c in clips if c.path.is_file()] if missing else clips
        labels.update(c.label for c in clips if c.label is not None)
        listed[split] = len(clips)
    if name is None:  # named by what it is: a folder in the TAU layout is not necessarily TAU 2020 Mobile
        is_tau2020 = sorted(labels) == list(SCENES) and all(listed.get(k) == v for k, v in TAU2020_SPLIT_SIZES.items()
                                                            if k in listed)
        name = TAU2020_MOBILE if is_tau2020 else f"TAU-layout folder {root.name}"
    return Dataset(name, root, sorted(labels), out)
