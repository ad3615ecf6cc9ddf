"""What every dataset layout becomes: :class:`Dataset`, clips per split with path, label and device."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from codecbench.core.fsutil import file_digest
from codecbench.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class DatasetError(DataError, ValueError):
    """A dataset that cannot be used as asked; the message names the file or folder."""


def fold_ranges(folds) -> str:
    """``(1, 2, 3, 5)`` -> ``1-3+5``: folds as ``--folds`` writes them."""
    out: list[str] = []
    run: list[int] = []
    for f in sorted(folds):
        if run and f == run[-1] + 1:
            run.append(f)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [f]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return "+".join(out)


@dataclasses.dataclass(frozen=True)
class Clip:
    path: Path
    label: str | None
    device: str | None
    #: The clip's path relative to the dataset root (POSIX form): its identity in results and pairings.
    key: str = ""

    @property
    def name(self) -> str:
        return self.key or self.path.name


@dataclasses.dataclass
class Dataset:
    name: str
    root: Path
    class_names: list[str]
    splits: dict[str, list[Clip]]
    #: How a generated dataset was made (generator version and parameters); None for recorded data.
    recipe: dict | None = None
    #: For fold-based datasets (UrbanSound8K, ESC-50): the folds of each split.
    folds: dict[str, tuple[int, ...]] | None = None
    #: For a generated dataset loaded as a listing: clips per split whose audio is still to be generated.
    to_generate: dict[str, int] = dataclasses.field(default_factory=dict)
    _rates: dict[str, list[int]] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    _longest: dict[str, float] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def describe(self) -> str:
        """``urbansound8k:UrbanSound8K: train 7,895 clips (folds 1-9), evaluate 837 clips (fold 10)``: what a
        command prints before it starts, so the split it works on is never a guess."""
        parts = []
        for split, clips in self.splits.items():
            folds = (self.folds or {}).get(split)
            where = f" ({'folds' if len(folds) > 1 else 'fold'} {fold_ranges(folds)})" if folds else ""
            parts.append(f"{split} {len(clips):,} clips{where}")
        return f"{self.name}: {', '.join(parts)}"

    def clips(self, split: str) -> list[Clip]:
        if split not in self.splits:
            raise DatasetError(f"{self.root}: no split {split!r}; available: {', '.join(self.splits)}")
        if not self.splits[split]:
            others = [f"{s} ({len(c)} clips)" for s, c in self.splits.items() if c and s != split]
            raise DatasetError(f"{self.root}: split {split!r} holds no clips"
                               + (f"; use another split ({', '.join(others)}) or add clips" if others
                                  else "; add clips") +
                               (" (a folder per class puts 30 % of each class, rounded, into 'evaluate': "
                                "give each class at least 2 clips)" if self.name.startswith("folder:") else ""))
        return self.splits[split]

    def labels(self, split: str) -> np.ndarray:
        if any(c.label is None for c in self.clips(split)):
            raise DatasetError(f"{self.root}: split {split!r} has unlabelled clips; a classifier cannot be scored")
        index = {c: i for i, c in enumerate(self.class_names)}
        return np.array([index[str(c.label)] for c in self.clips(split)], dtype=np.int64)

    def sample_rates(self, split: str) -> list[int]:
        """The rates (Hz) the split's audio was recorded at, read from the files' headers."""
        if split not in self._rates:
            self._read_headers(split)
        return self._rates[split]

    def longest_seconds(self, split: str) -> float:
        """The longest clip of the split in seconds, from the files' headers (batches are padded to it)."""
        if split not in self._rates:
            self._read_headers(split)
        return self._longest[split]

    def _read_headers(self, split: str) -> None:

        rates, longest = set(), 0.0
        for clip in self.clips(split):
            try:
                info = sf.info(str(clip.path))
            except (sf.LibsndfileError, RuntimeError, OSError):
                continue  # an unreadable file is refused, naming it, when it is coded
            rates.add(int(info.samplerate))
            longest = max(longest, info.frames / info.samplerate)
        self._rates[split], self._longest[split] = sorted(rates), longest

    def clip_digests(self, split: str) -> dict[str, str]:
        """The SHA-256 of each clip's file, by clip key: what a run scored, clip by clip."""
        return {clip.key: file_digest(clip.path) for clip in self.clips(split)}

    def fingerprint(self, split: str) -> str:
        """Content fingerprint of a split: clip keys, labels and file digests."""
        h = hashlib.sha256()
        digests = self.clip_digests(split)
        for clip in self.clips(split):
            h.update(f"{clip.key}\t{clip.label}\t{digests[clip.key]}\n".encode())
        return h.hexdigest()[:16]


def make_clip(root: Path, relative: str, label: str | None, device: str | None, *, source: str = "") -> Clip:
    """A clip at ``root / relative``; a path that is absolute or leaves the root is refused (``source`` says where
    it was listed)."""
    rel = str(relative).replace("\\", "/")
    where = f"{source}: " if source else ""
    if not rel or Path(rel).is_absolute() or rel.startswith("/"):
        raise DatasetError(f"{where}{rel!r} is not a path relative to the dataset root {root}")
    normal = os.path.normpath(rel).replace(os.sep, "/")
    if normal == ".." or normal.startswith("../") or normal == ".":
        raise DatasetError(f"{where}{rel!r} leaves the dataset root {root}; split files may only list files "
                           "inside it")
    return Clip(root / normal, label, device, normal)


def check_unique(clips: list[Clip], source: str) -> list[Clip]:
    """Refuse two clips with the same key: results pair clips by key."""
    seen: dict[str, int] = {}
    for i, clip in enumerate(clips):
        if clip.key in seen:
            raise DatasetError(f"{source}: {clip.key!r} is listed twice (entries {seen[clip.key] + 1} and {i + 1}); "
                               "each clip may appear once per split")
        seen[clip.key] = i
    return clips


def device_of(filename: str) -> str | None:
    """The TAU recording device is the last dash-separated token: ``...-6129-a.wav`` -> ``a``."""
    stem = Path(filename).stem
    return stem.rsplit("-", 1)[-1] if "-" in stem else None
