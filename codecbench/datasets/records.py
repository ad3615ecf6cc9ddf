"""Dataset records: what a public dataset's publisher serves, and what its unpacked copy must hold.

A record (``codecbench/manifests/datasets/<name>.json``, or a file in ``$CODECBENCH_DATASET_MANIFESTS``) names
the archives (file name, where from, size and MD5 as the publisher lists them, or a size ceiling where the
publisher gives neither) and the unpacked dataset (its root folder, how many clips its listing holds and what
every clip must be: a minimum size, and for ``verify --deep`` its rate and length). It is validated once, here,
when read: file names are plain names and the root a relative folder, so nothing a record says can write outside
the download folder, and URLs are http(s).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from importlib import resources
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pooch

from codecbench.errors import DataError

_MD5 = re.compile(r"[0-9a-f]{32}")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class DownloadError(DataError, RuntimeError):
    """A download that cannot be done or finished; the message names the file, the URL or what is missing."""


@dataclasses.dataclass(frozen=True)
class Archive:
    """One file the publisher serves."""

    name: str
    url: str
    #: bytes, as published; None where the publisher gives no size (then ``max_size`` caps the body)
    size: int | None
    md5: str | None
    max_size: int

    @property
    def expected(self) -> str:
        parts = [f"{self.size:,} bytes" if self.size is not None else f"at most {self.max_size:,} bytes"]
        parts.append(f"MD5 {self.md5}" if self.md5 else "no published checksum")
        return ", ".join(parts)

    def matches(self, path: Path) -> bool:
        """Whether ``path`` is this archive, by size and MD5 where they are published."""
        if not path.is_file():
            return False
        size = path.stat().st_size
        if (self.size is not None and size != self.size) or size > self.max_size:
            return False
        return self.md5 is None or md5(path) == self.md5


@dataclasses.dataclass(frozen=True)
class ClipRule:
    """What every listed clip of the unpacked dataset must be."""

    #: clips the dataset's listing holds (all splits together), as published
    count: int | None = None
    #: bytes below which a clip cannot hold its audio (header + samples at the published format)
    min_bytes: int = 45
    #: sample rate and length every clip has (``verify --deep``); None where clips differ
    rate: int | None = None
    seconds: float | None = None
    #: the longest clip, where lengths differ
    max_seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """A downloadable dataset: where its files are and what they must be."""

    name: str
    title: str
    licence: str
    source: str
    #: the folder the archives unpack into (the dataset's root), relative to the download folder
    root: str
    files: tuple[Archive, ...]
    clips: ClipRule
    layout: str

    @property
    def size(self) -> int:
        """Bytes of the archives (the ceiling where a size is not published)."""
        return sum(f.size if f.size is not None else f.max_size for f in self.files)

    @property
    def size_known(self) -> bool:
        return all(f.size is not None for f in self.files)


def http_url(url: str, where: str) -> str:
    """``url`` if it is http(s), else a :class:`DownloadError` naming ``where`` it came from."""
    scheme = urlparse(str(url)).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"{where}: {url!r} is not an http(s) URL (a folder of archives is used by copying them "
                            "into <to>/archives/, where they are checked like downloaded ones)")
    return str(url)


def md5(path: Path) -> str:

    return pooch.file_hash(str(path), alg="md5")


def _parse(data: dict, path: Path) -> DatasetRecord:
    def bad(message: str):
        return DownloadError(f"{path}: {message}")

    for key in ("name", "title", "licence", "source", "url", "root", "files"):
        if key not in data:
            raise bad(f"missing key {key!r}")
    root = PurePosixPath(str(data["root"]))
    if not str(data["root"]) or root.is_absolute() or any(p in ("..", "") for p in root.parts) \
            or "\\" in str(data["root"]):
        raise bad(f"root {data['root']!r} must be a relative folder inside the download folder (no '..')")
    base = http_url(data["url"], f"{path}: url")
    files = []
    if not isinstance(data["files"], list) or not all(isinstance(e, dict) for e in data["files"]):
        raise bad("files: expected a list of objects with name, size and md5")
    for i, entry in enumerate(data["files"]):
        name = str(entry.get("name", ""))
        if not _PLAIN_NAME.fullmatch(name) or name.endswith((".part", ".rejected")):
            raise bad(f"files[{i}]: name {name!r} must be a plain file name (letters, digits, . _ + -)")
        size, md5_ = entry.get("size"), entry.get("md5")
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise bad(f"files[{i}] ({name}): size {size!r} must be a positive whole number of bytes")
        if md5_ is not None and not _MD5.fullmatch(str(md5_)):
            raise bad(f"files[{i}] ({name}): md5 {md5_!r} is not 32 lower-case hex digits")
        max_size = entry.get("max_size", size)
        if not isinstance(max_size, int) or max_size <= 0:
            raise bad(f"files[{i}] ({name}): a file without a published size needs max_size (a ceiling in bytes)")
        url = http_url(entry.get("url") or base.rstrip("/") + "/" + name, f"{path}: files[{i}].url")
        files.append(Archive(name, url, size, md5_, max(max_size, size or 0)))
    if len({f.name for f in files}) != len(files):
        raise bad("two files share a name")
    rule = data.get("clips", {})
    if not isinstance(rule, dict):
        raise bad(f"clips: expected an object of count, min_bytes, rate, seconds, max_seconds; got {rule!r}")
    unknown = sorted(set(rule) - {f.name for f in dataclasses.fields(ClipRule)})
    if unknown:
        raise bad(f"clips: unknown field(s) {', '.join(unknown)}")
    for key, value in rule.items():
        whole = key in ("count", "min_bytes", "rate")
        number = isinstance(value, int) if whole else isinstance(value, (int, float)) and math.isfinite(value)
        if value is None and key != "min_bytes":
            continue
        if isinstance(value, bool) or not number or value <= 0:
            raise bad(f"clips.{key}: {value!r} must be a positive {'whole number' if whole else 'number'}"
                      f"{' or null' if key != 'min_bytes' else ''}")
    clips = ClipRule(**rule)
    return DatasetRecord(str(data["name"]), str(data["title"]), str(data["licence"]), str(data["source"]),
                         str(root), tuple(files), clips, str(data.get("layout", "")))


def records() -> dict[str, DatasetRecord]:
    """Every known dataset: the packaged records, and those in ``$CODECBENCH_DATASET_MANIFESTS`` (which replace a
    packaged record of the same name)."""
    folders = [Path(str(resources.files("codecbench") / "manifests" / "datasets"))]
    if os.environ.get("CODECBENCH_DATASET_MANIFESTS"):
        folders.append(Path(os.environ["CODECBENCH_DATASET_MANIFESTS"]))
    out = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise DownloadError(f"{path}: not a dataset record ({type(exc).__name__}: {exc})") from None
            if not isinstance(data, dict):
                raise DownloadError(f"{path}: not a dataset record (a JSON object is expected)")
            rec = _parse(data, path)
            out[rec.name] = rec
    return out


def record(name: str) -> DatasetRecord:
    """The record named ``name``; a :class:`DownloadError` listing the known ones otherwise."""
    known = records()
    if name not in known:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(known) or 'none'}")
    return known[name]
