"""``codecbench export``: the coded versions of a split written as audio files in the TAU layout, for any toolkit.

``<to>/audio/<condition>/<clip key>`` holds each clip decoded after coding (at the clip's own rate, 24-bit WAV or
FLAC), and ``<to>/evaluation_setup/fold1_<split>.csv`` lists every file with its label, its condition and the
source clip, so :func:`codecbench.datasets.load_dataset` (or a toolkit's TAU reader) reads the set back. Coding goes
through the cache (:func:`codecbench.encode.fill`, in parallel); files are written atomically, so an interrupted
export leaves only complete files and the same command continues, skipping them; at the end every listed file is
checked to be present and readable with the clip's length.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import soundfile as sf

from .cache import Cache
from .codecs import Condition
from .errors import CodecbenchError
from .fsutil import atomic_write

#: File formats: soundfile's format and subtype (24-bit, as TAU's recordings are).
FORMATS = {"wav": ("WAV", "PCM_24"), "flac": ("FLAC", "PCM_24")}
#: The TAU split file of each split name.
SPLIT_FILES = {"train": "fold1_train.csv", "evaluate": "fold1_evaluate.csv", "test": "fold1_test.csv"}


class ExportError(CodecbenchError, RuntimeError):
    """An export that could not be written or checked; the message names the file."""


@dataclasses.dataclass
class ExportSummary:
    written: int = 0
    skipped: int = 0
    coded: int = 0
    files: int = 0

    def report(self) -> str:
        return (f"{self.files} files: {self.written} written, {self.skipped} already there (skipped); "
                f"{self.coded} (clip, condition) pairs coded, the rest from the cache")


def condition_folder(cond: Condition) -> str:
    return cond.name.replace("@", "_")


def export(dataset, split: str, conditions: Sequence[Condition], to: Path, cache: Cache, *, file_format: str = "wav",
           jobs: int | None = None, backend: str = "loky", scheduler: str | None = None,
           log: Callable[[str], None] = lambda message: None) -> ExportSummary:
    """Write ``split`` of ``dataset`` under every condition into ``to`` in the TAU layout (see the module)."""
    from .encode import coded_signal, fill

    if file_format not in FORMATS:
        raise ExportError(f"--format: one of {', '.join(FORMATS)}, got {file_format!r}")
    if split not in SPLIT_FILES:
        raise ExportError(f"--split: the TAU layout has splits {', '.join(SPLIT_FILES)}, not {split!r}")
    clips = dataset.clips(split)
    to = Path(to)
    suffix = "." + file_format
    summary = ExportSummary()
    rows = []
    for cond in conditions:
        targets = [to / "audio" / condition_folder(cond) / Path(c.key).with_suffix(suffix) for c in clips]
        todo = [(c, t) for c, t in zip(clips, targets) if not t.is_file()]
        summary.skipped += len(clips) - len(todo)
        if todo and not cond.is_original:
            summary.coded += fill([c for c, _ in todo], [cond], cache, jobs=jobs, backend=backend,
                                  scheduler=scheduler).misses
        for clip, target in todo:
            signal, rate = coded_signal(clip.path, cond, cache)
            fmt, subtype = FORMATS[file_format]

            def write(tmp: Path, signal=signal, rate=rate) -> None:
                sf.write(str(tmp), signal, rate, format=fmt, subtype=subtype)

            atomic_write(target, write, fsync=False)
            summary.written += 1
        log(f"codecbench export: {cond.name}: {len(todo)} written, {len(clips) - len(todo)} already there")
        rows += [(t.relative_to(to).as_posix(), c.label or "", cond.name, c.key) for c, t in zip(clips, targets)]
    _check(to, rows, {c.key: c for c in clips})
    lines = ["filename\tscene_label\tcondition\tsource"] + ["\t".join(r) for r in rows]
    atomic_write(to / "evaluation_setup" / SPLIT_FILES[split], "\n".join(lines) + "\n", fsync=False)
    summary.files = len(rows)
    return summary


def _check(to: Path, rows: list[tuple], clips: dict) -> None:
    """Every listed file present, readable, and as long as its source clip (in seconds, within 10 ms)."""
    for rel, _, cond, key in rows:
        path = to / rel
        try:
            info = sf.info(str(path))
            source = sf.info(str(clips[key].path))
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            raise ExportError(f"{path} ({cond} of {key}): not readable after writing ({exc}); delete it and run "
                              "the export again") from None
        if abs(info.duration - source.duration) > 0.01:
            raise ExportError(f"{path} ({cond} of {key}): {info.duration:.3f} s, its source {source.duration:.3f} "
                              "s; delete it and run the export again")
