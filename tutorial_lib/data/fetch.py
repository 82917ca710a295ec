"""Download (or take from `--archive`) and unpack the real datasets: ACDC, PROMISE12, MSD prostate.

The archive is cached in `$TUTORIAL_DATA_DIR/downloads` (default `~/.cache/tutorial_lib`),
checked against its published checksum, and unpacked safely into `$TUTORIAL_DATA_DIR/raw/<name>`
(or `--dest`). A checksum mismatch stops with both hashes; `--accept-checksum` accepts the file
(servers that build zips on the fly may re-pack them), but never a truncated or damaged archive.
A transfer cut short (fewer bytes than announced, or an archive without its end) is not kept.
Files are hashed and copied in chunks: memory stays flat whatever the archive's size. When a
host needs a login or cannot be reached, the error says what to download by hand and how to
pass it with `--archive`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm.auto import tqdm

from tutorial_lib.data.archives import archive_problem, remove_orphans, unpack_archive
from tutorial_lib.data.storage import CorruptFileError, data_dir

MARKER = ".tutorial_fetch.json"  # written inside an unpacked folder: which archive it came from


@dataclass(frozen=True)
class Source:
    """Where a dataset's archive lives and the terms under which it may be used."""

    name: str
    url: str
    filename: str
    known_hash: str  # "sha256:<hex>" or "md5:<hex>"
    page: str  # the human-readable page to download from by hand
    terms: str
    citation: str


SOURCES: dict[str, Source] = {
    "acdc": Source(
        name="acdc",
        url="https://humanheart-project.creatis.insa-lyon.fr/database/api/v1/collection/"
        "637218c173e9f0047faa00fb/download",
        filename="ACDC.zip",
        known_hash="sha256:2787e08b0d3525cbac710fc3bdf69ee7c5fd7446472e49db8bc78548802f6b5e",
        page="https://humanheart-project.creatis.insa-lyon.fr/database/ "
        "(collection 637218c173e9f0047faa00fb, 'ACDC'; the site may ask you to sign in)",
        terms="ACDC (MICCAI 2017 challenge) data: research use only; any publication that uses "
        "them must cite the challenge paper below (mandatory).",
        citation="O. Bernard et al., 'Deep Learning Techniques for Automatic MRI Cardiac "
        "Multi-structures Segmentation and Diagnosis: Is the Problem Solved?', IEEE Transactions "
        "on Medical Imaging 37(11):2514-2525, 2018.",
    ),
    "promise12": Source(
        name="promise12",
        url="https://zenodo.org/records/8026660/files/training_data.zip?download=1",
        filename="PROMISE12_training_data.zip",
        known_hash="sha256:150287d0c74cd0105d8b70b43af4a7bf4f1fd3e1748829779177a0ccaf948f45",
        page="https://zenodo.org/records/8026660 (file training_data.zip)",
        terms="PROMISE12 data: read LICENSE.TXT in the Zenodo record before use.",
        citation="G. Litjens et al., 'Evaluation of prostate segmentation algorithms for MRI: "
        "the PROMISE12 challenge', Medical Image Analysis 18(2):359-373, 2014.",
    ),
    "msd-prostate": Source(
        name="msd-prostate",
        url="https://msd-for-monai.s3-us-west-2.amazonaws.com/Task05_Prostate.tar",
        filename="Task05_Prostate.tar",
        known_hash="md5:35138f08b1efaef89d7424d2bcc928db",
        page="http://medicaldecathlon.com/ (Task05_Prostate.tar)",
        terms="Medical Segmentation Decathlon data: CC-BY-SA 4.0 (attribution, share-alike).",
        citation="M. Antonelli et al., 'The Medical Segmentation Decathlon', Nature "
        "Communications 13:4128, 2022; A. L. Simpson et al., arXiv:1902.09063, 2019.",
    ),
}


class FetchError(RuntimeError):
    """The archive could not be obtained (login needed, host unreachable, transfer cut)."""


class ChecksumMismatchError(ValueError):
    """The archive's hash differs from the published one."""


class IncompleteTransfer(Exception):
    """The server sent fewer bytes than it announced, or an archive without its end."""


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"dataset: expected a dataset name in {sorted(SOURCES)}, got {name!r}")
    return SOURCES[name]


def manual_instructions(source: Source) -> str:
    """What to download by hand, and the command that uses the file."""
    return (
        f"Download it by hand from {source.page}\n"
        f"  (direct link: {source.url})\n"
        f"then run:\n  python data_fetch.py {source.name} --archive /path/to/{source.filename}"
    )


def _describe_request_error(exc: Exception, source: Source) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        why = "needs a login" if code in (401, 403) else f"answered HTTP {code}"
        return f"the host of {source.url} {why}."
    if isinstance(
        exc,
        requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | IncompleteTransfer,
    ):
        return f"the transfer of {source.url} was cut short ({exc}); nothing was kept, run again."
    return f"the host of {source.url} cannot be reached ({type(exc).__name__})."


CHUNK = 1 << 20  # bytes read or written at a time: memory stays flat whatever the file size


def download(source: Source, cache_dir: Path, *, progress: bool = True) -> Path:
    """Return the cached archive, downloading it first if absent (nothing partial is kept).

    The transfer goes to `.<filename>.<pid>.part` in the cache and is renamed only when complete:
    as many bytes as the server announced (Content-Length, when it sends one), and an archive
    whose end is there (`archive_problem`: the only check when no length was announced). A cut transfer is a FetchError and is not
    kept; the `.part` files of a killed download are removed by the next call.
    """
    target = cache_dir / source.filename
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(cache_dir, f".{source.filename}.*.part")
    part = cache_dir / f".{source.filename}.{os.getpid()}.part"
    try:
        _transfer(source.url, part, progress)
        problem = archive_problem(part)
        if problem is not None:
            raise IncompleteTransfer(f"the file received is not a complete archive ({problem})")
        os.replace(part, target)
    except (requests.RequestException, OSError, IncompleteTransfer) as exc:
        raise FetchError(
            f"Could not download {source.name}: {_describe_request_error(exc, source)}\n"
            + manual_instructions(source)
        ) from exc
    finally:
        part.unlink(missing_ok=True)
    return target


def _transfer(url: str, part: Path, progress: bool) -> None:
    """Stream `url` into `part`, chunk by chunk; IncompleteTransfer if bytes are missing."""
    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        announced = response.headers.get("Content-Length")
        total = int(announced) if announced and announced.isdigit() else None
        received = 0
        bar = tqdm(total=total, unit="B", unit_scale=True, disable=not progress, leave=False)
        with bar, open(part, "wb") as handle:
            for chunk in response.iter_content(CHUNK):
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise IncompleteTransfer(f"received {received} of the {total} bytes announced")


def file_hash(path: Path, algorithm: str) -> str:
    """The hex digest of the file, read in chunks of CHUNK bytes."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, source: Source, *, accept: bool = False, log=print) -> str:
    """Compare the file's hash with the published one; return the file's hash.

    A mismatch raises ChecksumMismatchError with both hashes unless `accept` is true; a file
    that is a truncated or damaged archive, or a web page, is never accepted.
    """
    algorithm, expected = source.known_hash.split(":", 1)
    actual = file_hash(path, algorithm)
    if actual == expected:
        return actual
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    web_page = head.startswith((b"<!doctype html", b"<html"))
    message = (
        f"{path}: expected the published {algorithm.upper()} of the {source.name} archive, "
        f"{expected},\ngot {actual}."
    )
    problem = None if web_page else archive_problem(path)
    if problem is not None:
        raise CorruptFileError(
            f"{path}: expected the complete {source.name} archive, got an incomplete or damaged "
            f"one ({problem}; {algorithm.upper()} {actual}): delete it and download it again "
            "(or pass an intact copy with --archive)"
        )
    if web_page:
        message += "\nThe file is a web page (probably a login page), not the archive.\n"
        message += manual_instructions(source)
    if accept and not web_page:
        log(f"WARNING: {message}\nAccepted because --accept-checksum was given.")
        return actual
    raise ChecksumMismatchError(
        message
        + (
            ""
            if web_page
            else "\nServers that build archives on the fly may re-pack them. If you trust this "
            "file, run again with --accept-checksum; otherwise delete it to download it again."
        )
    )


def fetch(
    name: str,
    dest: str | os.PathLike | None = None,
    *,
    archive: str | os.PathLike | None = None,
    accept_checksum: bool = False,
    cache_dir: str | os.PathLike | None = None,
    source: Source | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Obtain dataset `name`, verify it, unpack it into `dest` and return `dest`.

    `archive` uses a file already on disk instead of downloading. `source` overrides the
    built-in SOURCES entry (tests use a local server). A second call with the same archive
    finds the cached download and the unpacked folder and does nothing.
    """
    source = source or get_source(name)
    base = data_dir()
    cache = Path(cache_dir) if cache_dir is not None else base / "downloads"
    dest = Path(dest) if dest is not None else base / "raw" / source.name
    log(f"{source.name}: {source.terms}\nCite: {source.citation}")
    if archive is not None:
        path = Path(archive)
        if not path.is_file():
            raise FileNotFoundError(f"--archive: expected an existing file; {path} does not exist")
    else:
        path = download(source, cache, progress=progress)
    digest = verify_checksum(path, source, accept=accept_checksum, log=log)
    marker = dest / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("hash") == digest:
        log(f"{dest} already holds this archive, unpacked.")
        return dest
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"--dest: expected a folder or nothing at {dest}; it is a file")
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(
            f"expected {dest} to be absent or empty before unpacking; it holds other files "
            "(remove it or choose another --dest)"
        )
    if dest.exists():
        dest.rmdir()
    log(f"Unpacking {path} into {dest} ...")
    info = {"dataset": source.name, "archive": str(path), "hash": digest}
    unpack_archive(path, dest, extra_files={MARKER: json.dumps(info, indent=1)})
    log(
        f"Done. Next: python -m tutorial_lib prepare {source.name} --src {dest} "
        f"--dest {base / 'prepared' / source.name}"
    )
    return dest
