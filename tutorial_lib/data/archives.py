"""Safe unpacking of zip and tar archives: every member must land inside the target folder.

The whole archive is checked before anything is written; it is unpacked into a temporary
folder next to the target, which is then renamed, so the target is complete or absent.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath


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


def _check_zip(archive: Path) -> list[str]:
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
            raise ValueError(
                f"{archive}: expected an intact archive, got a corrupt one (bad CRC in member "
                f"{bad!r})"
            )
        return [i.filename for i in infos]


def _check_tar(archive: Path) -> list[str]:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"{archive}: expected an intact archive, got a corrupt or truncated one ({exc})"
        ) from exc
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


def archive_kind(archive: Path) -> str:
    """'zip' or 'tar' (any compression), from the file's content, not its name."""
    if not archive.is_file():
        raise FileNotFoundError(f"expected an archive file; {archive} does not exist")
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ValueError(f"{archive}: expected a zip or tar archive, got neither")


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
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".unpacking", dir=target.parent))
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
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(
            f"{archive}: expected an intact archive, got a corrupt or truncated one ({exc})"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
