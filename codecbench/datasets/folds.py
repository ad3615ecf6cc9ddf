"""Fold-based datasets: UrbanSound8K and ESC-50, detected from their metadata files, split by folds.

Both publish a fixed assignment of clips to folds (10 for UrbanSound8K, 5 for ESC-50), and results are only
comparable on those folds. A split is a set of folds: ``--folds train=1-9,evaluate=10`` (the default for
UrbanSound8K; ESC-50's is ``train=1-4,evaluate=5``). Class names come from the metadata; clips keep their own
length and sample rate.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from codecbench.datasets.base import Clip, Dataset, DatasetError, check_unique, make_clip

#: (metadata file, file-name column, fold column, class column, audio folder of a row, default folds)
LAYOUTS = {
    "urbansound8k": ("metadata/UrbanSound8K.csv", "slice_file_name", "fold", "class",
                     lambda row: f"audio/fold{int(row['fold'])}/{row['slice_file_name']}",
                     {"train": tuple(range(1, 10)), "evaluate": (10,)}),
    "esc50": ("meta/esc50.csv", "filename", "fold", "category", lambda row: f"audio/{row['filename']}",
              {"train": (1, 2, 3, 4), "evaluate": (5,)}),
}


def detect(root: Path) -> str | None:
    """The fold-based layout ``root`` has, from its metadata file, or None."""
    return next((name for name, layout in LAYOUTS.items() if (root / layout[0]).is_file()), None)


def parse_folds(text: str) -> dict[str, tuple[int, ...]]:
    """``train=1-9,evaluate=10`` (ranges and single folds, ``+`` joins: ``train=1-3+5``) -> split: folds."""
    out: dict[str, tuple[int, ...]] = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        split, sep, spec = part.partition("=")
        if not sep or not split.strip() or not spec.strip():
            raise DatasetError(f"--folds {text!r}: expected split=folds, e.g. train=1-9,evaluate=10; got {part!r}")
        folds: list[int] = []
        for piece in spec.split("+"):
            low, dash, high = piece.strip().partition("-")
            try:
                first, last = int(low), int(high) if dash else int(low)
            except ValueError:
                raise DatasetError(f"--folds {text!r}: {piece!r} is not a fold number or a range such as 1-9") from None
            if first < 1 or last < first:
                raise DatasetError(f"--folds {text!r}: {piece!r} is not an ascending range of folds from 1")
            folds += range(first, last + 1)
        out[split.strip()] = tuple(sorted(set(folds)))
    if not out:
        raise DatasetError(f"--folds {text!r}: no split given; e.g. train=1-9,evaluate=10")
    return out


def folds_text(folds: dict[str, tuple[int, ...]]) -> str:
    """``{"train": (1, ..., 9), "evaluate": (10,)}`` -> ``train=1-9,evaluate=10``, which :func:`parse_folds` reads
    back (runs of consecutive folds as ranges, joined by ``+``)."""
    parts = []
    for split, numbers in folds.items():
        runs: list[list[int]] = []
        for fold in sorted(set(numbers)):
            if runs and fold == runs[-1][1] + 1:
                runs[-1][1] = fold
            else:
                runs.append([fold, fold])
        parts.append(f"{split}=" + "+".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs))
    return ",".join(parts)


def fold_presence(root: str | os.PathLike) -> dict[int, tuple[int, int]]:
    """Per fold of a fold-based dataset folder: ``(clips whose audio is here, clips its metadata lists)``."""
    root = Path(root)
    layout = detect(root)
    if layout is None:
        return {}
    meta_file, name_col, fold_col, class_col, relative, _ = LAYOUTS[layout]
    try:
        table = pd.read_csv(root / meta_file)
    except (OSError, ValueError, pd.errors.ParserError):
        return {}
    if fold_col not in table.columns:
        return {}
    out: dict[int, tuple[int, int]] = {}
    for fold, rows in table.groupby(fold_col):
        out[int(fold)] = (sum((root / relative(row)).is_file() for _, row in rows.iterrows()), len(rows))
    return out


def fold_ranges_text(folds) -> str:
    """``(1, 2, 3, 5)`` -> ``1-3+5``."""
    return folds_text({"": tuple(folds)})[1:]


def presence_text(presence: dict[int, tuple[int, int]], usual: dict[str, tuple[int, ...]] | None = None) -> str:
    """Which folds are complete here, which partial and which absent, and a ``--folds`` over the complete ones."""
    complete = [f for f, (here, listed) in sorted(presence.items()) if here == listed and listed]
    partial = [f"{f} ({here} of {listed} clips)" for f, (here, listed) in sorted(presence.items()) if 0 < here < listed]
    absent = [f for f, (here, _) in sorted(presence.items()) if here == 0]
    parts = [f"folds with all their audio here: {fold_ranges_text(complete) if complete else 'none'}"]
    if partial:
        parts.append(f"partial: {', '.join(partial)}")
    if absent:
        parts.append(f"absent: {fold_ranges_text(absent)}")
    if len(complete) >= 2:
        parts.append(f"e.g. --folds train={fold_ranges_text(complete[:-1])},evaluate={complete[-1]}")
    return "; ".join(parts)


def load_folds(root: str | os.PathLike, *, folds: dict[str, tuple[int, ...]] | None = None,
               splits: tuple[str, ...] | None = None, listing_only: bool = False) -> Dataset:
    """Load an UrbanSound8K or ESC-50 folder.

    Parameters
    ----------
    root : path
        The folder holding the dataset's metadata file and ``audio/``.
    folds : dict, optional
        Split name -> fold numbers (default: the dataset's usual train/evaluate folds); see :func:`parse_folds`.
    splits : tuple of str, optional
        The splits whose audio must be present (default: all); the others are listed only.
    listing_only : bool
        Keep every listed clip, present or not (for planning before the audio is there).

    Returns
    -------
    Dataset
        Named ``urbansound8k:<folder>`` or ``esc50:<folder>``.

    Raises
    ------
    DatasetError
        Naming the metadata file, a missing column, an unknown fold or a missing clip.
    """
    root = Path(root)
    layout = detect(root)
    if layout is None:
        raise DatasetError(f"{root}: neither {LAYOUTS['urbansound8k'][0]} nor {LAYOUTS['esc50'][0]} found")
    meta_file, name_col, fold_col, class_col, relative, default_folds = LAYOUTS[layout]
    try:
        table = pd.read_csv(root / meta_file)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DatasetError(f"{root / meta_file}: cannot read ({exc})") from None
    missing = [c for c in (name_col, fold_col, class_col) if c not in table.columns]
    if missing:
        raise DatasetError(f"{root / meta_file}: missing column(s) {', '.join(missing)}")
    known = sorted(int(f) for f in table[fold_col].unique())
    if folds:
        chosen = folds
        unknown = sorted({f for fs in chosen.values() for f in fs} - set(known))
        if unknown:
            raise DatasetError(f"--folds: fold(s) {unknown} are not in {root / meta_file} (its folds: {known}); "
                               + presence_text(fold_presence(root)))
    else:  # the usual split, over the folds this copy has (a subset is fine; an empty split is not)
        chosen = {split: tuple(f for f in fs if f in known) for split, fs in default_folds.items()}
        empty = [split for split, fs in chosen.items() if not fs]
        if empty:
            raise DatasetError(f"{root / meta_file}: no clips for split(s) {', '.join(empty)} in the usual folds "
                               f"({default_folds}); its folds are {known}: choose them with --folds")
    classes = sorted(str(c) for c in table[class_col].unique())
    by_split: dict[str, list[Clip]] = {}
    for split, split_folds in chosen.items():
        rows = table[table[fold_col].isin(split_folds)]
        clips = [make_clip(root, relative(row), str(row[class_col]), None, source=str(root / meta_file))
                 for _, row in rows.iterrows()]
        needed = splits is None or split in splits
        absent = [c for c in clips if not c.path.is_file()]
        if absent and needed and not listing_only:
            raise DatasetError(f"{root}: {len(absent)} clips of split {split!r} (folds {fold_ranges_text(split_folds)})"
                               f" listed in {meta_file} are missing, e.g. {absent[0].path}; "
                               + presence_text(fold_presence(root), default_folds))
        by_split[split] = check_unique(clips, str(root / meta_file))
    return Dataset(f"{layout}:{root.name}", root, classes, by_split, folds=dict(chosen))
