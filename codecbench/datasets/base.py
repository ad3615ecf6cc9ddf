"""What every dataset layout becomes: :class:`Dataset`, clips per split with path, label and device."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import CodecbenchError
from ..fsutil import file_digest

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class DatasetError(CodecbenchError, ValueError):
    """A dataset that cannot be used as asked; the message names the file or folder."""


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
    _rates: dict[str, list[int]] = dataclasses.field(default_factory=dict, repr=False, compare=False)

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
        import soundfile as sf

        if split not in self._rates:
            rates = set()
            for clip in self.clips(split):
                try:
                    rates.add(int(sf.info(str(clip.path)).samplerate))
                except (sf.LibsndfileError, RuntimeError, OSError):
                    continue  # an unreadable file is refused, naming it, when it is coded
            self._rates[split] = sorted(rates)
        return self._rates[split]

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
