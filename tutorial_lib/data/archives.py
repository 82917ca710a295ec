"""Safe unpacking of zip and tar archives: every member must land inside the target folder.

The whole archive is checked before anything is written; it is unpacked into a temporary
folder next to the target, which is then renamed, so the target is complete or absent. A
truncated or damaged archive is a `CorruptFileError` (a bad input) that names the file and says
to download it again. Temporary folders of an unpacking that was killed are removed by the next
call (`remove_orphans`).
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tutorial_lib.data.storage import CorruptFileError

# What a damaged archive raises while it is read (gzip's BadGzipFile is an OSError).
READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, KeyError)
AGAIN = "delete it and download it again (or pass an intact copy with --archive)"
# The first bytes of each kind of archive (a tar's "ustar" is at offset 257).
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def _check_member_name(name: str, archive: Path) -> None:
    """Raise ValueError if `name` is absolute or climbs out with '..'."""
    normalised = name.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    if (
        normalised.startswith("/")
        or (len(normalised) > 1 and normalised[1] == ":")
        or ".." in parts
    ):
        raise ValueError(
            f"{archive}: expected members inside the target folder, got {name!r}, which would "
            "land outside (a '..' or absolute path)"
        )


def _damaged(archive: Path, exc: BaseException | str) -> CorruptFileError:
    why = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return CorruptFileError(
        f"{archive}: expected an intact archive, got a corrupt or truncated one ({why}); {AGAIN}"
    )


def _check_zip(archive: Path) -> list[str]:
    try:
        return _zip_members(archive)
    except READ_ERRORS as exc:
        raise _damaged(archive, exc) from exc


def _zip_members(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member_name(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ValueError(
                    f"{archive}: expected files and folders as members, got {info.filename!r}, "
                    "a link"
                )
        bad = zf.testzip()
        if bad is not None:
            raise _damaged(archive, f"bad CRC in member {bad!r}")
        return [i.filename for i in infos]


def _tar_members(archive: Path) -> list[tarfile.TarInfo]:
    """The members, after reading the archive to its end: tarfile stops quietly at a damaged
    header, so what follows the last member must be the zero blocks of a tar's end (reading
    to the end also makes a compressed stream check its own CRC)."""
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        tf.fileobj.seek(tf.offset)
        while chunk := tf.fileobj.read(1 << 20):
            if chunk.count(0) != len(chunk):
                raise tarfile.ReadError(f"unreadable data after member {len(members)}")
    return members


def _check_tar(archive: Path) -> list[str]:
    try:
        members = _tar_members(archive)
    except READ_ERRORS as exc:
        raise _damaged(archive, exc) from exc
    for m in members:
        _check_member_name(m.name, archive)
        if m.issym() or m.islnk():
            _check_member_name(m.linkname, archive)
            if m.issym():
                target = PurePosixPath(m.name).parent / m.linkname
                _check_member_name(os.path.normpath(str(target)), archive)
        elif not (m.isfile() or m.isdir()):
            raise ValueError(
                f"{archive}: expected files, folders or links as members, got {m.name!r}, "
                "which is none of these"
            )
    return [m.name for m in members]


def looks_like(archive: Path) -> str | None:
    """'zip', 'tar' or None from the first bytes only (a truncated archive still has them)."""
    with open(archive, "rb") as handle:
        head = handle.read(512)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(COMPRESSED_MAGIC) or head[257:262] == b"ustar":
        return "tar"
    return None


def archive_kind(archive: Path) -> str:
    """'zip' or 'tar' (any compression), from the file's content, not its name."""
    if not archive.is_file():
        raise FileNotFoundError(f"expected an archive file; {archive} does not exist")
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    if looks_like(archive) is not None:  # the start of an archive whose end is missing
        raise _damaged(archive, "it ends early")
    raise ValueError(f"{archive}: expected a zip or tar archive, got neither")


def archive_problem(archive: str | os.PathLike) -> str | None:
    """What is wrong with a file that starts like an archive (truncated, damaged), else None.

    A zip's directory is at its end and a tar is listed member by member, so a file cut short
    is found without unpacking it; a file that is no archive at all (a web page) gives None.
    """
    archive = Path(archive)
    kind = looks_like(archive)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                zf.infolist()
        elif kind == "tar":
            _tar_members(archive)
    except READ_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def remove_orphans(folder: Path, pattern: str) -> list[Path]:
    """Remove the temporary files or folders `folder/pattern` whose writing process is gone.

    The names hold the writer's process id as their second dot-separated field
    (`.<name>.<pid>.<rest>`); one whose process still runs is kept.
    """
    removed = []
    for path in folder.glob(pattern):
        pid = path.name[len(pattern.split("*")[0]) :].split(".")[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def list_members(archive: str | os.PathLike) -> list[str]:
    """The member names of a zip or tar archive, after checking they all stay inside."""
    archive = Path(archive)
    return _check_zip(archive) if archive_kind(archive) == "zip" else _check_tar(archive)


def unpack_archive(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Unpack `archive` into the new folder `target` (which must not exist), atomically.

    `extra_files` (name -> text) are written into the folder before it is renamed.
    """
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise FileExistsError(f"expected {target} not to exist before unpacking into it")
    kind = archive_kind(archive)
    list_members(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(target.parent, f".{target.name}.*.unpacking")
    prefix = f".{target.name}.{os.getpid()}."
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".unpacking", dir=target.parent))
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        os.replace(tmp, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # not every OSError: a full disk is no bad input
        raise _damaged(archive, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
