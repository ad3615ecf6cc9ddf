"""Checking a download folder: archives, unpacking, and every listed clip by size (and with ``deep``, content).

A dataset folder is complete when every archive is the publisher's (size and MD5 where published) and unpacked,
its listing holds the published number of clips, and every listed clip is a regular file of at least the size its
published format needs (a truncated or emptied clip fails here). ``deep`` also opens every clip: a readable audio
header, and the published rate and length (or at most the published longest length).
"""
from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from codecbench.datasets.folds import detect, fold_presence, presence_text
from codecbench.datasets.records import record
from codecbench.datasets.unpack import marker
from codecbench.errors import CodecbenchError

#: Seconds a clip's length may differ from the published one (a few samples of encoder padding).
LENGTH_TOLERANCE = 0.01


def _clip_problem(path: Path, rule, deep: bool) -> str | None:
    try:
        st = os.stat(path)  # follows links: a link to a regular file of the right size is fine
    except OSError:
        return "missing"
    if not path.is_file():
        return "not a regular file"
    if st.st_size < rule.min_bytes:
        return f"{st.st_size:,} bytes, fewer than the {rule.min_bytes:,} its format needs (truncated?)"
    if not deep:
        return None

    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        return f"not readable audio ({exc})"
    if info.frames <= 0:
        return "no audio frames"
    if rule.rate is not None and info.samplerate != rule.rate:
        return f"{info.samplerate} Hz, the dataset's clips are {rule.rate} Hz"
    seconds = info.frames / info.samplerate
    if rule.seconds is not None and abs(seconds - rule.seconds) > LENGTH_TOLERANCE:
        return f"{seconds:.3f} s long, the dataset's clips are {rule.seconds:g} s"
    if rule.max_seconds is not None and seconds > rule.max_seconds + LENGTH_TOLERANCE:
        return f"{seconds:.3f} s long, longer than the dataset's {rule.max_seconds:g} s"
    return None


def verify(name: str, to: str | os.PathLike, *, deep: bool = False) -> list[str]:
    """What is missing or wrong in a download folder (empty when complete).

    Parameters
    ----------
    name : str
        The dataset the folder holds (``codecbench dataset list``).
    to : path
        The folder given to ``download --to``.
    deep : bool
        Also open every clip (header, rate, length); slower, reads every clip's header.

    Returns
    -------
    list of str
        One line per problem, naming the file.
    """
    from codecbench.datasets import load_dataset

    rec = record(name)
    to = Path(to)
    problems = []
    for entry in rec.files:
        path = to / "archives" / entry.name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif not entry.matches(path):
            problems.append(f"{path}: not the publisher's file (expected {entry.expected})")
        elif not marker(to, entry.name).exists():
            problems.append(f"{path}: not unpacked")
    root = to / rec.root
    if not root.is_dir() and _is_dataset_root(to, rec):
        # given the dataset folder itself (what load_dataset takes), not the download folder holding it
        problems = [f"{to}: the dataset folder itself (its archives, if any, would be in "
                    f"{to.parent / 'archives'}; pass --to {to.parent} to check them too)"]
        root = to
    elif not root.is_dir():
        problems.append(f"{root}: the dataset folder is missing")
        return problems
    try:
        dataset = load_dataset(root, listing_only=True)
    except CodecbenchError as exc:
        problems.append(str(exc))
        return problems
    clips = {c.path: c for split in dataset.splits.values() for c in split}
    if rec.clips.count is not None and len(clips) != rec.clips.count:
        problems.append(f"{root}: its listing names {len(clips):,} clips, the publisher's {rec.clips.count:,}")
    bad: dict[str, list[tuple[Path, str]]] = {}
    for path in sorted(clips):
        problem = _clip_problem(path, rec.clips, deep)
        if problem:
            bad.setdefault(problem if problem in ("missing", "not a regular file") else "damaged", []).append(
                (path, problem))
    for kind, items in bad.items():
        shown = "; ".join(f"{p} ({why})" if kind == "damaged" else str(p) for p, why in items[:3])
        more = f" and {len(items) - 3} more" if len(items) > 3 else ""
        problems.append(f"{root}: {len(items)} listed clips are {kind}: {shown}{more}")
    presence = fold_presence(root)
    if bad and presence:  # a partial copy of a fold-based set: which folds can be used as they are
        problems.append(f"{root}: {presence_text(presence)}")
    return problems


def _is_dataset_root(folder: Path, rec) -> bool:
    """Whether ``folder`` is itself a dataset's root (its metadata, or TAU's evaluation_setup/, inside)."""
    return folder.is_dir() and (folder.name == Path(rec.root).name or detect(folder) is not None
                                or (folder / "evaluation_setup").is_dir())
