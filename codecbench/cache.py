"""A content-addressed, checksummed, process-safe cache of arrays (decoded audio, features).

Entries live under ``<root>/<namespace>/<key[:2]>/<key>.cbc``; a key is the SHA-256 of
everything that determines the array (source content, condition, library versions,
settings), so a changed input never hits a stale entry. Each file holds a JSON header
with the payload's SHA-256: a truncated or corrupted entry is detected on read, reported
and recomputed. Writes go to a temporary file in the same folder and are renamed into
place, so concurrent writers of one key never leave a partial file under the final name.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np

MAGIC = b"CBC1"
SUFFIX = ".cbc"


class CacheCorruptionWarning(UserWarning):
    """A cache entry failed its checksum and will be recomputed."""


def default_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$CODECBENCH_CACHE``, else ``~/.cache/codecbench``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("CODECBENCH_CACHE"):
        return Path(os.environ["CODECBENCH_CACHE"]).expanduser()
    return Path.home() / ".cache" / "codecbench"


def make_key(*parts) -> str:
    """A stable SHA-256 hex key of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def file_digest(path: str | os.PathLike, _memo: dict = {}) -> str:
    """SHA-256 of a file's bytes, remembered per (path, size, mtime) within the process."""
    st = os.stat(path)
    memo_key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if memo_key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _memo[memo_key] = h.hexdigest()
    return _memo[memo_key]


class Cache:
    """Arrays by namespace and key. Stateless apart from its root folder, so safe to pickle to workers."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = default_cache_dir(root)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def path(self, namespace: str, key: str) -> Path:
        return self.root / namespace / key[:2] / f"{key}{SUFFIX}"

    def contains(self, namespace: str, key: str) -> bool:
        return self.path(namespace, key).is_file()

    def load(self, namespace: str, key: str) -> tuple[np.ndarray, dict] | None:
        """The entry's array and metadata, or None if missing or corrupt (a corrupt one is removed)."""
        path = self.path(namespace, key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _decode(blob)
        except (ValueError, KeyError, struct.error, json.JSONDecodeError) as exc:
            warnings.warn(f"cache entry {path} is corrupt ({exc}); it will be recomputed",
                          CacheCorruptionWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None

    def store(self, namespace: str, key: str, array: np.ndarray, meta: dict | None = None) -> Path:
        """Write atomically: temp file in the target folder, fsync, rename."""
        path = self.path(namespace, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = _encode(np.ascontiguousarray(array), meta or {})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def info(self) -> dict[str, dict[str, int]]:
        """Entries and bytes per namespace."""
        out: dict[str, dict[str, int]] = {}
        if not self.root.is_dir():
            return out
        for ns in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = list(ns.rglob(f"*{SUFFIX}"))
            out[ns.name] = {"entries": len(files), "bytes": sum(f.stat().st_size for f in files)}
        return out

    def clear(self, namespace: str | None = None) -> int:
        """Remove one namespace or every entry; return the number of entries removed."""
        targets = [self.root / namespace] if namespace else (
            [p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else [])
        removed = 0
        for ns in targets:
            if ns.is_dir():
                removed += sum(1 for _ in ns.rglob(f"*{SUFFIX}"))
                shutil.rmtree(ns)
        return removed


def _encode(array: np.ndarray, meta: dict) -> bytes:
    payload = array.tobytes()
    header = json.dumps({"dtype": array.dtype.str, "shape": list(array.shape),
                         "sha256": hashlib.sha256(payload).hexdigest(), "meta": meta},
                        sort_keys=True, default=str).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + payload


def _decode(blob: bytes) -> tuple[np.ndarray, dict]:
    if blob[:4] != MAGIC:
        raise ValueError("bad magic")
    (hlen,) = struct.unpack("<I", blob[4:8])
    header = json.loads(blob[8:8 + hlen])
    payload = blob[8 + hlen:]
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise ValueError("checksum mismatch")
    array = np.frombuffer(payload, dtype=np.dtype(header["dtype"])).reshape(header["shape"])
    return array, header["meta"]
