"""Fetching public datasets: resumable downloads checked against the publisher's manifest, and unpacking.

A dataset's record (file names, sizes and checksums as its publisher lists them) is package data
(``codecbench/manifests/datasets/<name>.json``). ``download`` fetches what is missing into ``DIR/archives/``,
resuming a partial archive with an HTTP range request; a finished archive is checked against its size and MD5,
fetched again once if it does not match, and then refused naming the file. It checks the free disk before it
starts, retries a dropped connection with backoff, and unpacks each archive (once, marked done) into the layout
:func:`codecbench.datasets.load_dataset` reads. ``--mirror URL`` (or ``$CODECBENCH_MIRROR``) fetches the same
file names from another host; ``$CODECBENCH_DATASET_MANIFESTS`` names a folder of further records.

The HTTP part is written here on ``requests`` rather than taken from pooch: pooch checks hashes, retries and shows
progress, but restarts an interrupted file from its first byte, and resuming a 1.8 GB archive is the point.
Hashes are computed with ``pooch.file_hash``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
import zipfile
from importlib import resources
from pathlib import Path

from ..errors import CodecbenchError

#: Bytes read per request chunk.
CHUNK = 1 << 16


class DownloadError(CodecbenchError, RuntimeError):
    """A download that cannot be done or finished; the message names the file, the URL or what is missing."""


@dataclasses.dataclass(frozen=True)
class DatasetRecord:
    """A downloadable dataset: where its files are and what they must be."""

    name: str
    title: str
    licence: str
    source: str
    url: str
    #: the folder the archives unpack into (the dataset's root)
    root: str
    files: tuple[dict, ...]

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.files)


def records() -> dict[str, DatasetRecord]:
    """Every known dataset: the packaged records, and those in ``$CODECBENCH_DATASET_MANIFESTS``."""
    folders = [Path(str(resources.files("codecbench") / "manifests" / "datasets"))]
    if os.environ.get("CODECBENCH_DATASET_MANIFESTS"):
        folders.append(Path(os.environ["CODECBENCH_DATASET_MANIFESTS"]))
    out = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                out[data["name"]] = DatasetRecord(data["name"], data["title"], data["licence"], data["source"],
                                                  data["url"], data["root"], tuple(data["files"]))
            except (OSError, ValueError, KeyError) as exc:
                raise DownloadError(f"{path}: not a dataset record ({type(exc).__name__}: {exc})") from None
    return out


def record(name: str) -> DatasetRecord:
    known = records()
    if name not in known:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(known) or 'none'}")
    return known[name]


def _md5(path: Path) -> str:
    import pooch

    return pooch.file_hash(str(path), alg="md5")


def _complete(path: Path, entry: dict) -> bool:
    return path.is_file() and path.stat().st_size == int(entry["size"]) and _md5(path) == entry["md5"]


def _fetch(url: str, part: Path, size: int, *, timeout: float, retries: int, log) -> None:
    """Bring ``part`` to ``size`` bytes from ``url``, resuming from what it holds, retrying with backoff."""
    import requests
    import urllib3

    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if have >= size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
                if response.status_code == 416 or response.status_code >= 400:
                    raise DownloadError(f"{url}: HTTP {response.status_code}")
                if have and response.status_code != 206:
                    have = 0  # the server ignored the range: start the file again
                with open(part, "ab" if have else "wb") as out:
                    # read1: whatever has arrived, at most CHUNK; each piece is on disk before the next read, so a
                    # dropped connection loses nothing already received
                    while chunk := response.raw.read1(CHUNK):
                        out.write(chunk)
            if part.stat().st_size >= size:
                return
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.HTTPError) as exc:  # read1 reads the raw stream: urllib3's errors come as they are
            if attempt == retries:
                raise DownloadError(f"{url}: no answer after {retries + 1} attempts "
                                    f"({type(exc).__name__}); {part.stat().st_size if part.exists() else 0} of "
                                    f"{size} bytes are kept in {part}, and the same command resumes") from None
            log(f"codecbench: {url}: {type(exc).__name__}; retrying in {2 ** attempt} s")
            time.sleep(min(2 ** attempt, 30))
    raise DownloadError(f"{url}: the server ended the file early {retries + 1} times; {part} is kept to resume")


def download(name: str, to: str | Path, *, mirror: str | None = None, unpack: bool = True, timeout: float = 60.0,
             retries: int = 3, log=None) -> Path:
    """Fetch, check and unpack a known dataset into ``to``; return the dataset's root.

    Parameters
    ----------
    name : str
        A known dataset (``codecbench dataset list``), e.g. ``"tau2020-mobile"``.
    to : path
        Where archives (``to/archives/``) and the unpacked dataset (``to/<root>/``) go.
    mirror : str, optional
        Another host serving the same file names (default: ``$CODECBENCH_MIRROR``, else the publisher).
    unpack : bool
        Unpack the archives after checking them.
    timeout, retries
        Seconds to wait for the server, and attempts after the first on a dropped connection.

    Raises
    ------
    DownloadError
        Too little free disk (before anything is fetched), a server that does not answer, or an archive that is
        still wrong after being fetched again; the message names the file.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    rec = record(name)
    to = Path(to)
    archives = to / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    base = (mirror or os.environ.get("CODECBENCH_MIRROR") or rec.url).rstrip("/") + "/"
    todo = [f for f in rec.files if not (archives / f["name"]).is_file()]
    partial = sum((archives / f"{f['name']}.part").stat().st_size for f in todo
                  if (archives / f"{f['name']}.part").exists())
    needed = sum(int(f["size"]) for f in todo) - partial
    needed += sum(int(f["size"]) for f in rec.files if unpack and not _unpacked_marker(to, f["name"]).exists())
    free = shutil.disk_usage(to).free
    if needed > free:
        raise DownloadError(f"{to}: {needed / 1e9:.1f} GB are needed (the missing archives and their unpacked "
                            f"contents), {free / 1e9:.1f} GB are free; nothing was downloaded")
    for entry in rec.files:
        target, part = archives / entry["name"], archives / f"{entry['name']}.part"
        if target.is_file():
            log(f"codecbench: {entry['name']}: already here, skipped")
            continue
        for fetch in ("first", "again"):
            _fetch(base + entry["name"], part, int(entry["size"]), timeout=timeout, retries=retries, log=log)
            if _complete(part, entry):
                part.rename(target)
                log(f"codecbench: {entry['name']}: {int(entry['size']):,} bytes, checksum ok")
                break
            part.unlink()
            if fetch == "again":
                raise DownloadError(f"{base + entry['name']}: fetched twice and still not the publisher's file "
                                    f"(expected {entry['size']} bytes, MD5 {entry['md5']}); nothing of it is kept")
            log(f"codecbench: {entry['name']}: size or checksum wrong; fetching it once more")
    if unpack:
        for entry in rec.files:
            _unpack(archives / entry["name"], to, log)
    return to / rec.root


def _unpacked_marker(to: Path, name: str) -> Path:
    return to / "archives" / f".{name}.unpacked"


def _unpack(archive: Path, to: Path, log) -> None:
    marker = _unpacked_marker(to, archive.name)
    if marker.exists():
        return
    target = to.resolve()
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            if not (target / member).resolve().is_relative_to(target):
                raise DownloadError(f"{archive}: member {member!r} would be written outside {to}; not unpacked")
        z.extractall(to)
    marker.touch()
    log(f"codecbench: {archive.name}: unpacked")


def verify(name: str, to: str | Path) -> list[str]:
    """What is missing or wrong in a download folder (empty when complete): archives not present or not the
    publisher's, archives not unpacked, and clips the dataset's split files list but the folder lacks."""
    from . import load_dataset

    rec = record(name)
    to = Path(to)
    problems = []
    for entry in rec.files:
        path = to / "archives" / entry["name"]
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif not _complete(path, entry):
            problems.append(f"{path}: size or MD5 differs from the publisher's ({entry['size']} bytes, "
                            f"{entry['md5']})")
        elif not _unpacked_marker(to, entry["name"]).exists():
            problems.append(f"{path}: not unpacked")
    root = to / rec.root
    if not root.is_dir():
        problems.append(f"{root}: the dataset folder is missing")
    else:
        try:
            dataset = load_dataset(root, listing_only=True)
            for split, clips in dataset.splits.items():
                absent = [c for c in clips if not c.path.is_file()]
                if absent:
                    problems.append(f"{root}: {len(absent)} clips of split {split!r} are missing, e.g. "
                                    f"{absent[0].path}")
        except CodecbenchError as exc:
            problems.append(str(exc))
    return problems
