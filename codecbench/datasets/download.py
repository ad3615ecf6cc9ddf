"""Fetching public datasets: resumable downloads checked against the publisher's record, and unpacking.

A dataset's record (:mod:`codecbench.datasets.records`) names its archives. ``download`` fetches what is missing into
``DIR/archives/``, resuming a partial archive with an HTTP range request; a finished archive is checked against its
size and MD5, fetched again once if it does not match, and then refused naming the file. An archive already in
``archives/`` (copied there by hand, or left by an earlier run) is checked the same way before it is used; one that
fails is set aside as ``<name>.rejected`` and fetched again. The folder is claimed for one process; free disk is
checked before the first request; a dropped connection is retried with backoff. What a server sends is bounded:
every phase of a request is bounded and named when it ends one: connecting (``timeout``), the status line and
headers (all of them within ``timeout``, however slowly they trickle), the body (a read waits at most ``timeout``,
and a transfer that makes less than ``stall_bytes`` of progress in ``stall_seconds`` is stopped: a server that
trickles keeps a socket timeout from ever firing); a body longer than the record's size is refused before it is
read and never written past that size, and redirects are limited. ``--mirror URL`` (or ``$CODECBENCH_MIRROR``)
fetches the same file names from another http(s) host.

The HTTP part is written here on ``requests`` rather than taken from pooch: pooch checks hashes, retries and shows
progress, but restarts an interrupted file from its first byte, and resuming a 1.8 GB archive is the point.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import requests
import requests.adapters
import urllib3
import urllib3.connection

from codecbench.core.fsutil import claim_folder
from codecbench.core.wording import counted
from codecbench.datasets.records import Archive, DatasetRecord, DownloadError, http_url, record, records
from codecbench.datasets.unpack import marker, unpack

__all__ = ["DownloadError", "download", "record", "records"]

#: Bytes read per request chunk.
CHUNK = 1 << 16
#: Redirects followed before a download is refused (a loop would otherwise run until requests gives up).
MAX_REDIRECTS = 10


def _fetch(archive: Archive, url: str, part: Path, *, timeout: float, retries: int, stall_bytes: int,
           stall_seconds: float, log) -> None:
    """Bring ``part`` to the archive's size (or the end of the body, where no size is published) from ``url``,
    resuming from what it holds and retrying with backoff."""

    ceiling = archive.size if archive.size is not None else archive.max_size
    session, opened = _bounded_session()
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if archive.size is not None and have >= archive.size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with _headers_within(timeout, opened) as deadline, \
                    session.get(url, headers=headers, stream=True, timeout=timeout) as response:
                deadline.cancel()  # the status line and headers are in: the body has its own rule
                if response.status_code == 416 and archive.size is None and have:
                    return  # the whole body is here already
                if response.status_code >= 400:
                    raise DownloadError(f"{url}: HTTP {response.status_code}")
                http_url(response.url, f"{url}: redirected")
                if have and response.status_code != 206:
                    have = 0  # the server ignored the range: start the file again
                announced = response.headers.get("Content-Length")
                if announced is not None and announced.isdigit() and have + int(announced) > ceiling:
                    raise DownloadError(f"{url}: the server announces {have + int(announced):,} bytes, more than the "
                                        f"record's {ceiling:,}; not the publisher's file, nothing of it was read")
                with open(part, "ab" if have else "wb") as out:
                    window_start, window_bytes = time.monotonic(), 0
                    # read1: whatever has arrived, at most CHUNK; each piece is on disk before the next read, so a
                    # dropped connection loses nothing already received
                    while chunk := response.raw.read1(CHUNK):
                        if have + len(chunk) > ceiling:
                            out.write(chunk[:ceiling - have])
                            raise DownloadError(f"{url}: the server sent more than the record's {ceiling:,} bytes; "
                                                "not the publisher's file")
                        out.write(chunk)
                        have += len(chunk)
                        window_bytes += len(chunk)
                        now = time.monotonic()
                        if now - window_start >= stall_seconds:
                            if window_bytes < stall_bytes:
                                raise DownloadError(
                                    f"{url}: stalled: {window_bytes:,} bytes in the last {now - window_start:.0f} s "
                                    f"(the minimum is {stall_bytes:,} bytes per {stall_seconds:g} s); {have:,} bytes "
                                    f"are kept in {part}, and the same command resumes")
                            window_start, window_bytes = now, 0
            if archive.size is None or part.stat().st_size >= archive.size:
                return
        except requests.TooManyRedirects:
            raise DownloadError(f"{url}: more than {MAX_REDIRECTS} redirects (a redirect loop?); check the URL or "
                                "--mirror") from None
        except requests.exceptions.InvalidSchema as exc:
            raise DownloadError(f"{url}: {exc}; only http(s) URLs are fetched") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.HTTPError) as exc:  # read1 reads the raw stream: urllib3's errors come as they are
            phase = _phase(exc, deadline.fired, timeout)
            if attempt == retries:
                raise DownloadError(f"{url}: no answer after {counted(retries + 1, 'attempt')} "
                                    f"({type(exc).__name__}: {phase}); "
                                    f"{part.stat().st_size if part.exists() else 0:,} bytes "
                                    f"are kept in {part}, and the same command resumes") from None
            log(f"codecbench: {url}: {type(exc).__name__} ({phase}); retrying in {2 ** attempt} s")
            time.sleep(min(2 ** attempt, 30))
    raise DownloadError(f"{url}: the server ended the file early {retries + 1} times; {part} is kept to resume")


class _Deadline:
    """Shuts the connections a request opened when its status line and headers have not all arrived within
    ``seconds``: a socket timeout bounds each read, so a server that sends a header byte now and then would
    otherwise hold the request forever."""

    def __init__(self, seconds: float, opened: list):
        self.fired = False
        self._opened = opened
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        for connection in list(self._opened):
            sock = getattr(connection, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once, and requests raises
                except OSError:
                    pass

    def cancel(self) -> None:
        self._timer.cancel()

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _headers_within(seconds: float, opened: list) -> _Deadline:
    """The request's deadline: the connection within ``seconds`` (the socket's own bound), then the status line and
    headers within ``seconds`` more."""
    return _Deadline(2 * seconds, opened)


def _bounded_session() -> tuple[requests.Session, list]:
    """A session whose connections are recorded as they open (so a :class:`_Deadline` can shut them), with the
    redirect limit."""
    opened: list = []

    class Tracked(urllib3.connection.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            opened.append(self)

    class TrackedTLS(urllib3.connection.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            opened.append(self)

    class Pool(urllib3.HTTPConnectionPool):
        ConnectionCls = Tracked

    class PoolTLS(urllib3.HTTPSConnectionPool):
        ConnectionCls = TrackedTLS

    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    for adapter in session.adapters.values():
        if isinstance(adapter, requests.adapters.HTTPAdapter):
            adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": PoolTLS}
    return session, opened


def _phase(exc: Exception, deadline_fired: bool, timeout: float) -> str:
    """Which phase of a request an error ended, for its message."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    if deadline_fired:
        return f"the status line and headers did not arrive within {timeout:g} s of connecting"
    if isinstance(exc, requests.ReadTimeout):
        return f"no byte for {timeout:g} s"
    return "the connection failed or dropped"


def _needed_bytes(rec: DatasetRecord, archives: Path, to: Path, unpack_too: bool) -> int:
    needed = 0
    for f in rec.files:
        ceiling = f.size if f.size is not None else f.max_size
        if not (archives / f.name).is_file():
            part = archives / f"{f.name}.part"
            needed += ceiling - (part.stat().st_size if part.exists() else 0)
        if unpack_too and not marker(to, f.name).exists():
            needed += ceiling  # the unpacked contents (about the archive's size: audio does not compress)
    return needed


def download(name: str, to: str | os.PathLike, *, mirror: str | None = None, unpack_archives: bool = True,
             timeout: float = 60.0, retries: int = 3, stall_bytes: int = 256 << 10, stall_seconds: float = 120.0,
             log=None) -> Path:
    """Fetch, check and unpack a known dataset into ``to``; return the dataset's root.

    Parameters
    ----------
    name : str
        A known dataset (``codecbench dataset list``), e.g. ``"tau2020-mobile"``, ``"urbansound8k"``, ``"esc50"``.
    to : path
        Where archives (``to/archives/``) and the unpacked dataset (``to/<root>/``) go.
    mirror : str, optional
        Another http(s) host serving the same file names (default: ``$CODECBENCH_MIRROR``, else the publisher).
    unpack_archives : bool
        Unpack the archives after checking them.
    timeout, retries
        Seconds to wait for the server, and attempts after the first on a dropped connection.
    stall_bytes, stall_seconds
        The least progress a transfer must make per window before it is stopped (a trickling server).

    Raises
    ------
    DownloadError
        Too little free disk (before anything is fetched), a server that does not answer, sends too much or stalls,
        or an archive that is still wrong after being fetched again; the message names the file.
    FolderBusy
        Another codecbench process is downloading into ``to``.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    rec = record(name)
    to = Path(to)
    if to.exists() and not to.is_dir():
        raise DownloadError(f"--to {to}: is a file, not a folder; give a folder for the archives and the dataset")
    mirror = mirror or os.environ.get("CODECBENCH_MIRROR")
    if mirror:
        http_url(mirror, "--mirror")
    with claim_folder(to, "download"):
        archives = to / "archives"
        archives.mkdir(parents=True, exist_ok=True)
        for entry in rec.files:  # an archive found here is checked before it is trusted
            target = archives / entry.name
            if target.is_file() and not entry.matches(target):
                target.replace(archives / f"{entry.name}.rejected")
                marker(to, entry.name).unlink(missing_ok=True)
                log(f"codecbench: {target}: not the publisher's file ({entry.expected}); set aside as "
                    f"{entry.name}.rejected and fetched again")
        needed = _needed_bytes(rec, archives, to, unpack_archives)
        free = shutil.disk_usage(to).free
        if needed > free:
            raise DownloadError(f"{to}: {needed / 1e9:.1f} GB are needed (the missing archives and their unpacked "
                                f"contents), {free / 1e9:.1f} GB are free; nothing was downloaded")
        for entry in rec.files:
            target, part = archives / entry.name, archives / f"{entry.name}.part"
            if target.is_file():
                log(f"codecbench: {entry.name}: already here, checked")
                continue
            url = mirror.rstrip("/") + "/" + entry.name if mirror else entry.url
            for fetch in ("first", "again"):
                _fetch(entry, url, part, timeout=timeout, retries=retries, stall_bytes=stall_bytes,
                       stall_seconds=stall_seconds, log=log)
                if entry.matches(part):
                    part.rename(target)
                    log(f"codecbench: {entry.name}: {target.stat().st_size:,} bytes, "
                        + ("checksum ok" if entry.md5 else "no published checksum: its contents are checked after "
                                                           "unpacking"))
                    break
                part.unlink()
                if fetch == "again":
                    raise DownloadError(f"{url}: fetched twice and still not the publisher's file "
                                        f"(expected {entry.expected}); nothing of it is kept")
                log(f"codecbench: {entry.name}: size or checksum wrong; fetching it once more")
        if unpack_archives:
            for entry in rec.files:
                unpack(archives / entry.name, to, log)
    return to / rec.root
