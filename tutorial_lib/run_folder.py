"""Who may write a run folder: the library only, and one process at a time.

    with claim_folder(out, "run"):        # ValueError (exit 2) when out is not ours, or is busy
        ...                               # write the run's files

- **Only folders of this library.** A folder is written only when it is missing, empty, or made
  by this library: it holds the lock file (`.run.lock` in a training run folder,
  `.reproduce.lock` in a `reproduce` folder, `.study.lock` in a study folder), or, for folders
  written before the lock file existed, a `config.json` of a TrainConfig (a run) or such run folders `ce/`, `descriptors/`
  (reproduce). Any other folder (the user's own `config.json`, `metrics.csv`, other files) is
  refused: the library never overwrites a file it did not write.
- **One process.** The lock file is locked by the operating system (`fcntl.flock` on POSIX,
  `msvcrt.locking` of one byte on Windows) for as long as the block runs, and holds the PID of its
  holder; a second process is refused with the folder and that PID. The OS drops the lock when
  its process ends in any way, SIGKILL included, so a dead process's lock never needs clearing;
  the file stays, as the folder's mark. A claim is re-entrant within a process (train, then its
  evaluation). On a file system without file locks (some network mounts) the run goes on
  unlocked, with a warning.
- **Stale temporaries.** An atomic write killed half-way leaves `.NAME.*.tmp`;
  `remove_stale_temporaries` deletes them, which is safe only under the lock.

Torch-free, except the check of a legacy `config.json` (which loads tutorial_lib.config).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from tutorial_lib.errors import RunFolderBusyError

__all__ = [
    "LOCK_FILES",
    "claim_folder",
    "check_folder_is_ours",
    "remove_stale_temporaries",
]

LOCK_FILES = {"run": ".run.lock", "reproduce": ".reproduce.lock", "study": ".study.lock"}
_WINDOWS_LOCK_OFFSET = 1 << 20  # the locked byte, past the PID: other processes can still read it
_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)}
_HELD: dict[Path, int] = {}  # lock files this process holds -> how many claims are open


def _is_run_config(path: Path) -> bool:
    """Does `path` hold a TrainConfig written by `train` (the mark of a folder made before locks)?"""
    from tutorial_lib.config import config_from_dict  # loads torch: only for legacy folders

    try:
        config_from_dict(json.loads(path.read_text()))
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a run's config
        return False
    return True


def _is_run_folder(folder: Path) -> bool:
    return (folder / LOCK_FILES["run"]).is_file() or _is_run_config(folder / "config.json")


def check_folder_is_ours(folder: str | os.PathLike, kind: str) -> None:
    """Raise ValueError unless `folder` is missing, empty, or a `kind` folder of this library."""
    if kind not in LOCK_FILES:
        raise ValueError(f"kind: expected one of {tuple(LOCK_FILES)}, got {kind!r}")
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(f"out_dir: expected a folder, got a file at {folder}")
    names = sorted(p.name for p in folder.iterdir())
    if not names or LOCK_FILES[kind] in names:
        return
    if kind == "run" and _is_run_folder(folder):
        return
    if kind == "reproduce" and any(_is_run_folder(folder / m) for m in ("ce", "descriptors")):
        return
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    what = {"run": "a training run", "reproduce": "a reproduce", "study": "a study"}[kind]
    raise ValueError(
        f"out_dir: expected a missing or empty folder, or {what} folder of this library, got "
        f"{folder} holding {shown}; nothing was written: choose another --out"
    )


def _holder(fd: int) -> str:
    """The PID written in a lock file by the process that holds it ('?' before it is written)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32)
    except OSError:
        text = b""
    return text.decode(errors="replace").strip() or "?"


def _lock(fd: int, folder: Path) -> None:
    """Lock `fd` without waiting; RunFolderBusyError naming the holder when another process has it.

    On a file system without file locks (some network mounts) the run goes on unlocked, with a
    warning: the folder is then the user's to keep to one process.
    """
    try:
        if os.name == "nt":
            import msvcrt

            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in _BUSY:
            warnings.warn(
                f"{folder}: no file lock on this file system ({error}); make sure that no other "
                "process writes this folder",
                stacklevel=3,
            )
            return
        raise RunFolderBusyError(
            f"run folder {folder}: expected no other process writing it, got process "
            f"{_holder(fd)} using it; wait for it to end, or choose another --out"
        ) from None


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode())


@contextlib.contextmanager
def claim_folder(folder: str | os.PathLike, kind: str) -> Iterator[Path]:
    """Hold `folder` for this process while the block runs (see the module docstring).

    Checks that the folder is ours (`check_folder_is_ours`), creates it, locks its lock file, and
    yields the folder. Nothing is written before the lock is held, except the folder and the lock
    file themselves. The lock is released when the block ends, whatever ends it.
    """
    check_folder_is_ours(folder, kind)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = (folder / LOCK_FILES[kind]).resolve()
    if key in _HELD:  # this process holds it already: nested claim
        yield folder
        return
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, folder)
        _write_pid(fd)
        _HELD[key] = fd
        try:
            yield folder
        finally:
            del _HELD[key]
    finally:
        os.close(fd)  # closing the file drops the lock


def _is_temporary(name: str) -> bool:
    """`.metrics.csv.k2j3.tmp` (runlog.atomic_write_bytes) or `.predictions.png.tmp.png` (figures)."""
    return name.startswith(".") and (name.endswith(".tmp") or ".tmp." in name)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of killed atomic writes in `folder` and its `checkpoints/`.

    Call it only while holding the folder (`claim_folder`): no write of ours is in progress then.
    Returns the paths removed.
    """
    removed = []
    for place in (Path(folder), Path(folder) / "checkpoints"):
        if not place.is_dir():
            continue
        for path in place.iterdir():
            if _is_temporary(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
