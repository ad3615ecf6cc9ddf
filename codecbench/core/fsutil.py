"""File-system helpers every stage shares: atomic writes, content digests and work-folder claims.

One atomic-write helper for the cache entries, models, results and synthetic audio: the
content goes to a uniquely named temporary file beside the target (so concurrent writers
never share one), is flushed to disk, and is renamed over the target; a writer that dies
leaves at most a ``.*.tmp`` file, never a partial file under the final name.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from codecbench.errors import FolderBusy, NotARegularFile, UsageError


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[Path], None], *,
                 fsync: bool = True) -> Path:
    """Write ``data`` (bytes, text, or a function that writes a given temporary path) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".{os.getpid()}.tmp")
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; the result should look like any other file
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
            if fsync:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
                fh.flush()
                if fsync:
                    os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(folder: str | os.PathLike, pattern: str = ".*.tmp*") -> int:
    """Remove temporary files in ``folder`` left by writers that died (their process no longer exists)."""
    removed = 0
    for tmp in Path(folder).glob(pattern):
        pid = _pid_of(tmp.name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _pid_of(name: str) -> int | None:
    for part in reversed(name.split(".")):
        if part.isdigit():
            return int(part)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_digest(path: str | os.PathLike, _memo: dict = {}) -> str:
    """SHA-256 of a file's bytes, remembered per (path, size, mtime) within the process. Only regular files are
    hashed (a device or FIFO has no end): anything else is an ``OSError`` naming it."""

    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):

        raise NotARegularFile(errno.EINVAL, "not a regular file (a device, FIFO or folder?)", os.fspath(path))
    memo_key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if memo_key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _memo[memo_key] = h.hexdigest()
    return _memo[memo_key]


@contextlib.contextmanager
def file_lock(path: str | os.PathLike):
    """An exclusive advisory lock (flock) on ``path``, held for the ``with`` block."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_writable(folder: str | os.PathLike, option: str, consequence: str = "") -> None:
    """Refuse, with a usage error naming the option and the folder, a folder that cannot be written or created: a
    temporary file is made and removed in it, or in its nearest existing parent (nothing is left behind, no folder
    created). Every command that writes asks this before any work (a read-only target ended in an OSError
    traceback after minutes of work)."""
    folder = Path(folder).expanduser()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    why = None
    if not existing.is_dir():
        why = f"{existing} is a file, not a folder"
    else:
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".codecbench-write-check-"):
                pass
        except OSError as exc:
            why = exc.strerror or str(exc)
    if why:
        raise UsageError(f"{option} {folder}: cannot write there ({why})" + (f"; {consequence}" if consequence
                                                                            else "; choose a writable folder"))


@contextlib.contextmanager
def waiting_lock(path: str | os.PathLike, what: str, say=None):
    """:func:`file_lock`, saying so when another process holds it: ``say`` (a logger) is told which process (its pid
    and command, kept in the lock file by whoever holds it) and that this one waits for it to finish ``what``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            if say is not None:
                say(f"codecbench: waiting for {holder} to finish {what} ({path})")
            started = time.monotonic()
            fcntl.flock(fh, fcntl.LOCK_EX)
            if say is not None:
                say(f"codecbench: {path.name} free after {time.monotonic() - started:.0f} s")
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"process {os.getpid()} ({' '.join(sys.argv)[:200]})")
            fh.flush()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def claim_folder(folder: str | os.PathLike, what: str):
    """Hold ``folder`` for one codecbench process for the ``with`` block, or refuse at once.

    Two commands writing one work folder (a download folder, a ``reproduce --out``, an export target, a results
    folder) would each finish half of it; the second one is refused with :class:`~codecbench.errors.FolderBusy`
    naming the first one's process, rather than made to wait for a run of hours. The claim is an advisory
    ``flock`` on ``<folder>/.codecbench.lock`` (released by the kernel when the process dies, so a killed run leaves
    no stale claim); the file keeps the holder's pid and command for the message.
    """


    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".codecbench.lock"
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise FolderBusy(f"{folder}: another codecbench process is using this folder ({holder}); wait for it "
                             f"to end, or give this {what} another folder") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}: {what} ({' '.join(Path(sys.argv[0]).name.split()[:1] + sys.argv[1:3])})")
        fh.flush()
        yield folder
    finally:
        fh.close()  # closing the descriptor releases the flock


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
