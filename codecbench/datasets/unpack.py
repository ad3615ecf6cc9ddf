"""Unpacking checked archives (zip and tar, compressed or not) into the download folder, all or nothing.

Every member is inspected before a byte is written: only regular files and folders, with relative paths that stay
inside the target; links, devices and absolute or ``..`` paths refuse the whole archive, naming the member. The
members' declared sizes are checked against the free disk, and members that cannot all be written (a file ``a``
beside ``a/b``) are refused, before anything is written. The
members are unpacked into a staging folder beside the target and moved into place only when all of them are out,
so a failure (a damaged archive, a full disk) leaves no half-unpacked dataset; a marker in ``archives/`` records an
archive as unpacked, so a second run does not unpack it again.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from codecbench.core.progress import progress
from codecbench.datasets.records import DownloadError


def marker(to: Path, name: str) -> Path:
    """The file that records archive ``name`` as unpacked into ``to``."""
    return to / "archives" / f".{name}.unpacked"


def _check_path(archive: Path, member: str) -> None:
    path = PurePosixPath(member.replace("\\", "/"))
    if not member or path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DownloadError(f"{archive}: member {member!r} would be written outside the download folder; "
                            "nothing of this archive was unpacked")


def _counted(members: list, desc: str):
    """``members`` one by one, the progress advanced as each is taken (extractall writes them in this order)."""
    bar = progress(len(members), desc, unit="file")
    try:
        for member in members:
            yield member
            bar.update()
    finally:
        bar.close()


def _zip_members(archive: Path, z: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = z.infolist()
    for info in infos:
        _check_path(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no Unix type recorded (a plain file)
            raise DownloadError(f"{archive}: member {info.filename!r} is a link or special file, which a dataset "
                                "archive does not hold; nothing of this archive was unpacked")
    return infos


def _tar_members(archive: Path, t: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = t.getmembers()
    for member in members:
        _check_path(archive, member.name)
        if not (member.isfile() or member.isdir()):
            raise DownloadError(f"{archive}: member {member.name!r} is a link or special file, which a dataset "
                                "archive does not hold; nothing of this archive was unpacked")
    return members


def _check_layout(archive: Path, members: list[tuple[str, bool]]) -> None:
    """Refuse members that cannot all be written: a file whose name another member uses as a folder (``a`` and
    ``a/b``)."""
    files = {PurePosixPath(name.replace("\\", "/")).as_posix().rstrip("/") for name, is_dir in members if not is_dir}
    for name, _ in members:
        for parent in PurePosixPath(name.replace("\\", "/")).parents:
            if parent.as_posix() in files:
                raise DownloadError(f"{archive}: member {parent.as_posix()!r} is a file, and member {name!r} needs a "
                                    "folder of that name; the archive cannot be unpacked as it is, and nothing of it "
                                    "was")


def _check_space(archive: Path, to: Path, declared: int) -> None:
    """Refuse, before a byte is written, an archive whose members declare more bytes than ``to`` has free."""
    free = shutil.disk_usage(to).free
    if declared > free:
        raise DownloadError(f"{archive}: unpacks to {declared:,} bytes (as its members declare), and {to} has "
                            f"{free:,} bytes free; free {declared - free:,} bytes or more and run the same command "
                            "again (nothing was unpacked)")


def unpack(archive: Path, to: Path, log) -> bool:
    """Unpack ``archive`` into ``to`` unless its marker says it was; True when it unpacked now."""
    done = marker(to, archive.name)
    if done.exists():
        return False
    staging = to / f".unpacking-{archive.name}"
    shutil.rmtree(staging, ignore_errors=True)  # a run that died while unpacking
    staging.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            try:
                with zipfile.ZipFile(archive) as z:
                    infos = _zip_members(archive, z)
                    _check_layout(archive, [(i.filename, i.is_dir()) for i in infos])
                    _check_space(archive, to, sum(i.file_size for i in infos))
                    z.extractall(staging, _counted(infos, f"unpacking {archive.name}"))
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                raise DownloadError(f"{archive}: damaged zip archive ({exc}); delete it and download again") from None
            except OSError as exc:
                _disk_full(archive, exc)
                raise
        elif tarfile.is_tarfile(archive):
            try:
                with tarfile.open(archive, "r:*") as t:
                    found = _tar_members(archive, t)
                    _check_layout(archive, [(m.name, m.isdir()) for m in found])
                    _check_space(archive, to, sum(m.size for m in found if m.isfile()))
                    members = _counted(found, f"unpacking {archive.name}")
                    if hasattr(tarfile, "data_filter"):
                        t.extractall(staging, members, filter="data")
                    else:  # pragma: no cover - Python without PEP 706; the members were checked above
                        t.extractall(staging, members)
            except (tarfile.TarError, EOFError, OSError) as exc:
                if isinstance(exc, OSError) and not isinstance(exc, (tarfile.TarError, EOFError)):
                    _disk_full(archive, exc)
                raise DownloadError(f"{archive}: damaged tar archive ({exc}); delete it and download again") \
                    from None
        else:
            raise DownloadError(f"{archive}: neither a zip nor a tar archive; delete it and download again")
        _merge(staging, to)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    done.touch()
    log(f"codecbench: {archive.name}: unpacked")
    return True


def _disk_full(archive: Path, exc: OSError) -> None:
    """A full disk while unpacking, named (the declared sizes fitted, but the disk filled meanwhile)."""
    if exc.errno == 28:
        raise DownloadError(f"{archive}: the disk is full while unpacking; free space and run the same command "
                            "again") from None


def _merge(staging: Path, to: Path) -> None:
    """Move every file of ``staging`` to the same place under ``to`` (several archives share one root)."""
    for folder, dirs, files in os.walk(staging):
        relative = Path(folder).relative_to(staging)
        (to / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(Path(folder) / name, to / relative / name)
