"""A content-addressed, checksummed, process-safe cache of arrays (decoded audio, features).

Entries live under ``<root>/<namespace>/<key[:2]>/<key>.cbc``; a key is the SHA-256 of
everything that determines the array (source content, condition, library versions,
settings), so a changed input never hits a stale entry. Each file holds a JSON header and
the payload; one SHA-256 covers both (metadata such as the achieved bit rate included), so
any damage is detected on read, reported, removed and recomputed. Writes are atomic
(:func:`codecbench.core.fsutil.atomic_write`), so concurrent writers of one key never leave a
partial file under the final name.

The root carries a ``CACHEDIR.TAG`` marker (the standard one backup tools honour). Clearing
deletes only cache entries, their shard folders and temporaries, in the known namespaces,
and refuses a root without the marker: pointing ``--cache-dir`` at a project folder can
never delete the project.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import time
import warnings
from pathlib import Path

import numpy as np

from codecbench.core.fsutil import atomic_write, file_digest  # noqa: F401  (file_digest: part of this module's API)
from codecbench.errors import CacheError

#: Format of an entry; entries of another format are ignored (and removed by ``cache gc``).
MAGIC = b"CBC2"
#: The header field naming the key an entry was stored under, checked on every read.
KEY_FIELD = "_key"
SUFFIX = ".cbc"
#: The namespaces codecbench writes; nothing else under the root is ever touched.
NAMESPACES = ("coded", "features", "datasets")
#: Namespaces of earlier cache formats, removed by ``cache gc`` (``audio``: decoded PCM, before bitstreams).
LEGACY_NAMESPACES = ("audio",)
MARKER = "CACHEDIR.TAG"
_MARKER_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by codecbench.\n"
                "# For information about cache directory tags see https://bford.info/cachedir/\n")


class CacheCorruptionWarning(UserWarning):
    """A cache entry failed its checksum (or could not be read) and will be recomputed."""


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$CODECBENCH_CACHE``, else ``~/.cache/codecbench``."""
    # absolute from here on: the path travels to loky and dask workers, whose working folder may be another one
    if cache_dir:
        return Path(cache_dir).expanduser().absolute()
    if os.environ.get("CODECBENCH_CACHE"):
        return Path(os.environ["CODECBENCH_CACHE"]).expanduser().absolute()
    return Path.home() / ".cache" / "codecbench"


def make_key(*parts) -> str:
    """A stable SHA-256 hex key of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def check_namespace(namespace: str) -> str:
    if namespace not in NAMESPACES:
        raise CacheError(f"unknown cache namespace {namespace!r}; expected one of {', '.join(NAMESPACES)}")
    return namespace


class Cache:
    """Arrays by namespace and key. Stateless apart from its root folder, so safe to pickle to workers."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = default_cache_dir(root)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def path(self, namespace: str, key: str) -> Path:
        return self.root / check_namespace(namespace) / key[:2] / f"{key}{SUFFIX}"

    def contains(self, namespace: str, key: str) -> bool:
        return self.path(namespace, key).is_file()

    def mark(self) -> None:
        """Create the root and its cache marker (idempotent)."""
        marker = self.root / MARKER
        if not marker.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(marker, _MARKER_TEXT, fsync=False)

    @property
    def is_marked(self) -> bool:
        return (self.root / MARKER).is_file()

    def load(self, namespace: str, key: str) -> tuple[np.ndarray, dict] | None:
        """The entry's array and metadata, or None if missing or unreadable (an unreadable one is removed)."""
        path = self.path(namespace, key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # a directory in place of the entry, a permission problem, ...
            self._discard(path, exc)
            return None
        if blob[:3] == MAGIC[:3] and blob[:4] != MAGIC:
            return None  # an entry of another cache format: a plain miss, overwritten when recomputed
        try:
            array, meta = decode_entry(blob)
        except Exception as exc:  # any damage at all: the entry is rebuilt from its source
            self._discard(path, exc)
            return None
        stored_key = meta.pop(KEY_FIELD, None)
        if stored_key is None:
            return None  # written before entries named their key: a plain miss, overwritten when recomputed
        if stored_key != key:
            # a valid entry of another key (moved or copied over this one): it would serve another clip's audio
            self._discard(path, ValueError(f"it holds the entry of key {stored_key[:16]}..., not {key[:16]}..."))
            return None
        _note_use(path)
        return array, meta

    def shape(self, namespace: str, key: str) -> tuple[int, ...] | None:
        """The shape of an entry's array from its header alone (no payload read, no checksum), or None if missing or
        unreadable; what a reader needs to pad a batch to the longest clip before reading the clips."""
        try:
            with open(self.path(namespace, key), "rb") as f:
                head = f.read(8)
                if head[:4] != MAGIC:
                    return None
                (hlen,) = struct.unpack("<I", head[4:8])
                return tuple(int(n) for n in json.loads(f.read(hlen))["shape"])
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None

    def discard(self, namespace: str, key: str, reason: str) -> None:
        """Remove an entry found damaged by its reader (it does not decode, say); it is recomputed."""
        self._discard(self.path(namespace, key), ValueError(reason))

    @staticmethod
    def _discard(path: Path, exc: BaseException) -> None:
        warnings.warn(f"cache entry {path} is damaged ({type(exc).__name__}: {exc}); removed, it will be recomputed",
                      CacheCorruptionWarning, stacklevel=3)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def store(self, namespace: str, key: str, array: np.ndarray, meta: dict | None = None) -> Path:
        """Write one entry atomically."""
        self.mark()
        path = self.path(namespace, key)
        if path.is_dir():
            shutil.rmtree(path)
        return atomic_write(path, encode_entry(np.ascontiguousarray(array), {**(meta or {}), KEY_FIELD: key}))

    def entries(self, namespace: str):
        folder = self.root / check_namespace(namespace)
        return folder.glob(f"??/*{SUFFIX}") if folder.is_dir() else iter(())

    def info(self) -> dict[str, dict[str, int]]:
        """Entries, bytes and bytes per entry per namespace (datasets: files of the generated datasets)."""
        out: dict[str, dict[str, int]] = {}
        for ns in NAMESPACES:
            folder = self.root / ns
            if not folder.is_dir():
                continue
            files = [f for f in (folder.rglob("*") if ns == "datasets" else self.entries(ns)) if f.is_file()]
            total = sum(f.stat().st_size for f in files)
            out[ns] = {"entries": len(files), "bytes": total, "bytes_per_entry": total // len(files) if files else 0}
        return out

    def gc(self, older_than_days: float | None = None) -> dict[str, int]:
        """Remove entries of older cache formats (and their namespaces), and with ``older_than_days`` entries not
        read for that long. Returns counts: ``{"old_format": n, "unused": n, "bytes": freed}``."""
        if not self.root.is_dir():
            return {"old_format": 0, "unused": 0, "damaged": 0, "bytes": 0}
        if not self.is_marked:
            raise CacheError(f"{self.root} carries no codecbench cache marker ({MARKER}); refusing to delete "
                             "anything there")

        counts = {"old_format": 0, "unused": 0, "damaged": 0, "bytes": 0}
        cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
        for ns in (*LEGACY_NAMESPACES, *NAMESPACES):
            folder = self.root / ns
            if ns == "datasets" or not folder.is_dir():
                continue
            # listed shard by shard: pathlib's glob raises when another gc or clear removes a shard meanwhile
            shards = [d for d in _listing(folder) if len(d.name) == 2]
            for entry in (e for d in shards for e in _listing(d) if e.name.endswith(SUFFIX)):
                try:  # another gc or clear may remove the entry first: then it is simply gone
                    st = entry.lstat()
                    if not stat.S_ISREG(st.st_mode):  # a folder or link under an entry's name: damage, removed
                        if stat.S_ISDIR(st.st_mode):
                            shutil.rmtree(entry, ignore_errors=True)
                        else:
                            _unlink(entry)
                        counts["damaged"] += 1
                        continue
                    with open(entry, "rb") as fh:
                        magic = fh.read(4)
                except FileNotFoundError:
                    continue
                kind = "old_format" if ns in LEGACY_NAMESPACES or magic != MAGIC else (
                    "unused" if cutoff is not None and st.st_mtime < cutoff else None)
                if kind and _unlink(entry):
                    counts[kind] += 1
                    counts["bytes"] += st.st_size
            for shard in _listing(folder):
                if shard.is_dir() and len(shard.name) == 2:
                    _rmdir_if_empty(shard)
            _rmdir_if_empty(folder)
        return counts

    def clear(self, namespace: str | None = None) -> int:
        """Remove the entries of one namespace or of all; return how many were removed.

        Only codecbench's own files are deleted: ``*.cbc`` entries and temporaries in shard
        folders, then the shard folders if empty; generated datasets under ``datasets/``.
        """
        namespaces = [check_namespace(namespace)] if namespace else list(NAMESPACES)
        if not self.root.is_dir():
            return 0
        if not self.is_marked:
            raise CacheError(f"{self.root} carries no codecbench cache marker ({MARKER}); refusing to delete "
                             "anything there. Is --cache-dir / [tool.codecbench] cache_dir pointing at the "
                             "right folder?")
        removed = 0
        for ns in namespaces:
            folder = self.root / ns
            if not folder.is_dir():
                continue
            if ns == "datasets":
                for ds in _listing(folder):
                    if ds.is_dir() and ds.name.startswith("synthetic-"):
                        shutil.rmtree(ds, ignore_errors=True)   # another clear may be removing it too
                        removed += 1
                    elif ds.is_file() and ds.name.startswith("synthetic-") and ds.suffix == ".lock":
                        _unlink(ds)
            else:
                for shard in _listing(folder):
                    if not (shard.is_dir() and len(shard.name) == 2):
                        continue
                    for entry in _listing(shard):
                        if entry.is_file() and entry.suffix == SUFFIX:
                            removed += _unlink(entry)
                        elif entry.is_file() and entry.name.startswith(".") and entry.name.endswith(".tmp"):
                            _unlink(entry)
                    _rmdir_if_empty(shard)
            _rmdir_if_empty(folder)
        return removed


#: An entry's mtime is moved to "now" when it is read and older than this: ``cache gc --older-than`` measures
#: disuse to this resolution (a day was coarser than the fractions of a day gc takes: an entry read minutes ago was
#: removed as unused because it was written 20 h before).
USE_RESOLUTION_S = 600


def _note_use(path: Path) -> None:
    """Mark an entry as read (its mtime, at most every ten minutes), so ``cache gc --older-than`` keeps what is
    used."""

    try:
        if time.time() - path.stat().st_mtime > USE_RESOLUTION_S:
            os.utime(path)
    except OSError:
        pass


def _unlink(path: Path) -> bool:
    """Remove a file; False if another process removed it first."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def _listing(folder: Path) -> list[Path]:
    """A folder's entries, or none if another process removed the folder."""
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def encode_entry(array: np.ndarray, meta: dict) -> bytes:
    """``MAGIC | header length | header JSON | payload``; the header's sha256 covers header and payload."""
    payload = array.tobytes()
    header = {"dtype": array.dtype.str, "shape": list(array.shape), "meta": meta}
    digest = _digest(header, payload)
    blob = json.dumps({**header, "sha256": digest}, sort_keys=True, default=str).encode()
    return MAGIC + struct.pack("<I", len(blob)) + blob + payload


def _digest(header: dict, payload: bytes) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    h.update(payload)
    return h.hexdigest()


def decode_entry(blob: bytes) -> tuple[np.ndarray, dict]:
    if blob[:4] != MAGIC:
        raise CacheError(f"not a {MAGIC.decode()} entry (older format or damaged)")
    (hlen,) = struct.unpack("<I", blob[4:8])
    header = json.loads(blob[8:8 + hlen])
    payload = blob[8 + hlen:]
    digest = header.pop("sha256")
    if _digest(header, payload) != digest:
        raise CacheError("checksum mismatch")
    array = np.frombuffer(payload, dtype=np.dtype(header["dtype"])).reshape(header["shape"])
    return array, header["meta"]
