"""``codecbench export``: the coded versions of a split written as audio files in the TAU layout, for any toolkit.

``<to>/audio/<condition>/<clip key>`` holds each clip decoded after coding (at the clip's own rate, 24-bit WAV or
FLAC), and ``<to>/evaluation_setup/fold1_<split>.csv`` lists every file with its label, its condition and the
source clip, so :func:`codecbench.datasets.load_dataset` (or a toolkit's TAU reader) reads the set back. Coding goes
through the cache (:func:`codecbench.store.fill.fill`, in parallel); files are written atomically, so an interrupted
export leaves only complete files and the same command continues, skipping them; at the end every listed file is
checked to be present and readable with the clip's length.

An export owns only what it wrote: ``<to>/.codecbench-export.json`` records every file it wrote with the content
digest of its source clip, its condition and format, and the digest of the file as written. A file is skipped only
when that record matches the source as it is now (a changed source clip is exported again); a file in the target
that the record does not name (a dataset's own split listing, another tool's audio), or one changed since it was
written (a row added to the listing), is never overwritten: the export is refused, naming it. Folder names are
portable (``aac_128_to_mp3_32``: no ``>``, which NTFS, FAT and SMB refuse). A target
that is, or lies inside, the source dataset's folder is refused, and the target is claimed for one process.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Sequence

import soundfile as sf

from codecbench.codecs import Condition
from codecbench.core.cache import Cache
from codecbench.core.fsutil import atomic_write, claim_folder, file_digest
from codecbench.core.vocabulary import ParallelBackend
from codecbench.errors import DataError
from codecbench.store.fill import coded_signal, fill

#: File formats: soundfile's format and subtype (24-bit, as TAU's recordings are).
FORMATS = {"wav": ("WAV", "PCM_24"), "flac": ("FLAC", "PCM_24")}
#: The export's own record of the files it wrote, in the target folder.
MANIFEST = ".codecbench-export.json"
#: The TAU split file of each split name.
SPLIT_FILES = {"train": "fold1_train.csv", "evaluate": "fold1_evaluate.csv", "test": "fold1_test.csv"}


class ExportError(DataError, RuntimeError):
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
    """A condition's folder name, portable to every file system a user copies an export to: ``aac_128``,
    ``aac_128_to_mp3_32`` (``>`` is not allowed on NTFS, FAT or SMB shares), ``opus_24+loss5``."""
    return cond.name.replace("@", "_").replace(">", "_to_")


def _written(path: Path, **facts) -> dict:
    """What the record keeps of a file the export wrote: ``facts`` and the file's content digest."""
    stat = path.stat()
    return {**facts, "sha256": file_digest(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _changed_by_someone(path: Path, entry: dict) -> bool:
    """Whether a file the export wrote no longer holds what it wrote (edited or replaced since; records of an older
    codecbench, without a digest, cannot tell and say no)."""
    if not entry.get("sha256") or not path.is_file():
        return False
    stat = path.stat()
    if stat.st_size == entry.get("size") and stat.st_mtime_ns == entry.get("mtime_ns"):
        return False  # untouched since written: no need to read it (an export of the paper's set is ~44 GB)
    return stat.st_size != entry.get("size") or file_digest(path) != entry["sha256"]


def export(dataset, split: str, conditions: Sequence[Condition], to: Path, cache: Cache, *, file_format: str = "wav",
           jobs: int | None = None, backend: ParallelBackend = "loky", scheduler: str | None = None,
           log: Callable[[str], None] = lambda message: None) -> ExportSummary:
    """Write ``split`` of ``dataset`` under every condition into ``to`` in the TAU layout (see the module)."""

    if file_format not in FORMATS:
        raise ExportError(f"--format: one of {', '.join(FORMATS)}, got {file_format!r}")
    if split not in SPLIT_FILES:
        raise ExportError(f"--split: the TAU layout has splits {', '.join(SPLIT_FILES)}, not {split!r}")
    clips = dataset.clips(split)
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise ExportError(f"--to {to}: is a file, not a folder; give a folder for the exported audio")
    source_root = Path(dataset.root).resolve()
    if to.resolve() == source_root or to.resolve().is_relative_to(source_root):
        raise ExportError(f"--to {to}: lies inside the source dataset {source_root}; an export writes its own split "
                          "listing, which would replace the dataset's. Choose a folder outside it")
    with claim_folder(to, "export"):
        return _export(clips, split, conditions, to, cache, file_format, jobs, backend, scheduler, log)


def _read_manifest(to: Path) -> dict:
    path = to / MANIFEST
    exc: object
    if not path.is_file():
        return {"files": {}}
    try:
        data = json.loads(path.read_text())
        if isinstance(data.get("files"), dict):
            return data
        exc = "no 'files' object"
    except (OSError, ValueError, AttributeError) as error:
        exc = error
    raise ExportError(f"{path}: the export's record is damaged ({exc}); without it codecbench cannot tell its "
                      "files from others. Move the folder's contents aside, or choose another --to") from None


def _export(clips, split, conditions, to: Path, cache: Cache, file_format: str, jobs, backend, scheduler,
            log) -> ExportSummary:

    suffix = "." + file_format
    summary = ExportSummary()
    manifest = _read_manifest(to)
    owned: dict = manifest["files"]
    listing = to / "evaluation_setup" / SPLIT_FILES[split]
    listing_rel = listing.relative_to(to).as_posix()
    if listing.exists() and listing_rel not in owned:
        raise ExportError(f"{listing}: a split listing this export did not write; it is never overwritten. Choose "
                          "another --to (or move the file away)")
    if _changed_by_someone(listing, owned.get(listing_rel, {})):
        raise ExportError(f"{listing}: changed since this export wrote it (rows added or edited?); it is never "
                          "overwritten. Move it aside (or restore it) and export again")
    digests = {c.key: file_digest(c.path) for c in clips}
    plans = []
    for cond in conditions:
        targets = [to / "audio" / condition_folder(cond) / Path(c.key).with_suffix(suffix) for c in clips]
        foreign = [t for t in targets if t.exists() and t.relative_to(to).as_posix() not in owned]
        if foreign:
            raise ExportError(f"{foreign[0]}: a file this export did not write ({len(foreign)} such in "
                              f"{foreign[0].parent}); it is never overwritten. Choose another --to")
        edited = [t for t in targets if _changed_by_someone(t, owned.get(t.relative_to(to).as_posix(), {}))]
        if edited:
            raise ExportError(f"{edited[0]}: changed since this export wrote it ({len(edited)} such in "
                              f"{edited[0].parent}); it is never overwritten. Move it aside (or restore it) and "
                              "export again")
        plans.append((cond, targets))

    def recipe(clip, cond) -> dict:
        return {"source": clip.key, "source_sha256": digests[clip.key], "condition": cond.name, "format": file_format}

    def save_manifest() -> None:
        atomic_write(to / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True), fsync=False)

    def current(entry: dict | None) -> dict | None:
        """The recipe part of a record's entry (without what it says of the file's content)."""
        return None if entry is None else {k: v for k, v in entry.items() if k not in ("sha256", "size", "mtime_ns")}

    rows = []
    for cond, targets in plans:
        todo = [(c, t) for c, t in zip(clips, targets)
                if not t.is_file() or current(owned.get(t.relative_to(to).as_posix())) != recipe(c, cond)]
        stale = sum(1 for _, t in todo if t.is_file())
        summary.skipped += len(clips) - len(todo)
        if todo and not cond.is_original:
            summary.coded += fill([c for c, _ in todo], [cond], cache, jobs=jobs, backend=backend,
                                  scheduler=scheduler).misses
        # claimed in the record before any is written: a file this run writes is ours even if it dies half-way
        for _, target in todo:
            owned[target.relative_to(to).as_posix()] = {"writing": True}
        save_manifest()
        for i, (clip, target) in enumerate(todo):
            signal, rate = coded_signal(clip.path, cond, cache)
            fmt, subtype = FORMATS[file_format]

            def write(tmp: Path, signal=signal, rate=rate) -> None:
                sf.write(str(tmp), signal, rate, format=fmt, subtype=subtype)

            if i and i % 200 == 0:
                save_manifest()
            atomic_write(target, write, fsync=False)
            owned[target.relative_to(to).as_posix()] = _written(target, **recipe(clip, cond))
            summary.written += 1
        save_manifest()
        log(f"codecbench export: {cond.name}: {len(todo)} written ({stale} of them because their source changed), "
            f"{len(clips) - len(todo)} already there")
        rows += [(t.relative_to(to).as_posix(), c.label or "", cond.name, c.key) for c, t in zip(clips, targets)]
    _check(to, rows, {c.key: c for c in clips})
    lines = ["filename\tscene_label\tcondition\tsource"] + ["\t".join(r) for r in rows]
    owned[listing_rel] = {"listing": split, "writing": True}
    save_manifest()
    atomic_write(listing, "\n".join(lines) + "\n", fsync=False)
    owned[listing_rel] = _written(listing, listing=split)
    save_manifest()
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
