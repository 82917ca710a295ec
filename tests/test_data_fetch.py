"""Downloads against a local HTTP server on 127.0.0.1: checksums, truncation, unsafe archives,
login pages, caching, the --archive path, `python -m tutorial_lib fetch` and data_fetch.py."""

import hashlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from data_http_server import serve

import data_fetch
from tutorial_lib import cli
from tutorial_lib.data import fetch as fetch_module
from tutorial_lib.data.archives import unpack_archive
from tutorial_lib.data.fetch import ChecksumMismatchError, FetchError, Source, fetch
from tutorial_lib.data.storage import CorruptFileError


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def make_tar(
    members: dict[str, bytes], links: dict[str, str] | None = None, *, mode: str = "w"
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buffer.getvalue()


ARCHIVE = make_zip({"training/patient001/info.txt": b"ED: 1\n", "training/readme.txt": b"hi"})


def source_for(url: str, body: bytes, *, algorithm: str = "sha256", filename="data.zip") -> Source:
    digest = hashlib.new(algorithm, body).hexdigest()
    return Source("promise12", url, filename, f"{algorithm}:{digest}", "the page", "TERMS", "CITE")


def run_fetch(tmp_path, source, logs=None, **kwargs):
    return fetch(
        source.name,
        tmp_path / "raw",
        cache_dir=tmp_path / "cache",
        source=source,
        progress=False,
        log=(logs.append if logs is not None else lambda _: None),
        **kwargs,
    )


def test_right_checksum_unpacks_and_a_second_call_downloads_nothing(tmp_path):
    with serve() as server:
        url = server.add("/data.zip", ARCHIVE)
        logs = []
        dest = run_fetch(tmp_path, source_for(url, ARCHIVE), logs)
        assert (dest / "training" / "patient001" / "info.txt").read_bytes() == b"ED: 1\n"
        assert any("TERMS" in line and "CITE" in line for line in logs)
        again = run_fetch(tmp_path, source_for(url, ARCHIVE))
        assert again == dest and server.requests["/data.zip"] == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["data.zip"]


def test_md5_sources_and_tar_archives_work(tmp_path):
    body = make_tar({"Task05_Prostate/imagesTr/prostate_00.nii.gz": b"x" * 100})
    with serve() as server:
        url = server.add("/Task05_Prostate.tar", body)
        source = source_for(url, body, algorithm="md5", filename="Task05_Prostate.tar")
        dest = run_fetch(tmp_path, source)
    assert (dest / "Task05_Prostate" / "imagesTr" / "prostate_00.nii.gz").stat().st_size == 100


def test_checksum_mismatch_shows_both_hashes_and_the_flag(tmp_path):
    with serve() as server:
        url = server.add("/data.zip", ARCHIVE)
        wrong = source_for(url, b"something else")
        with pytest.raises(ChecksumMismatchError) as info:
            run_fetch(tmp_path, wrong)
        message = str(info.value)
        assert hashlib.sha256(ARCHIVE).hexdigest() in message
        assert message.startswith(
            f"{tmp_path / 'cache' / 'data.zip'}: expected the published SHA256"
        )
        assert wrong.known_hash.split(":")[1] in message and "--accept-checksum" in message
        assert not (tmp_path / "raw").exists()
        logs = []
        dest = run_fetch(tmp_path, wrong, logs, accept_checksum=True)
        assert (dest / "training" / "readme.txt").exists()
        assert any("Accepted" in line for line in logs)
        assert server.requests["/data.zip"] == 1  # the kept download was reused


def test_truncated_transfer_keeps_nothing_and_says_so(tmp_path):
    with serve() as server:
        url = server.add("/data.zip", ARCHIVE * 50, mode="truncate")
        with pytest.raises(FetchError, match="cut short"):
            run_fetch(tmp_path, source_for(url, ARCHIVE * 50))
    assert not list((tmp_path / "cache").glob("*"))
    assert not (tmp_path / "raw").exists()


def test_login_needed_prints_what_to_download_and_the_archive_flag(tmp_path):
    with serve() as server:
        url = server.add("/data.zip", ARCHIVE, mode="forbidden")
        with pytest.raises(FetchError) as info:
            run_fetch(tmp_path, source_for(url, ARCHIVE))
    message = str(info.value)
    assert "needs a login" in message and url in message
    assert "--archive /path/to/data.zip" in message and "the page" in message


def test_unreachable_host_prints_what_to_download(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/data.zip"
    with pytest.raises(FetchError, match=r"cannot be reached(.|\n)*--archive"):
        run_fetch(tmp_path, source_for(url, ARCHIVE))


def test_a_login_page_instead_of_the_archive_is_recognised(tmp_path):
    page = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
    with serve() as server:
        url = server.add("/data.zip", page)
        with pytest.raises(ChecksumMismatchError, match=r"web page(.|\n)*--archive"):
            run_fetch(tmp_path, source_for(url, ARCHIVE))


@pytest.mark.parametrize(
    "body",
    [
        make_zip({"ok.txt": b"1", "../evil.txt": b"2"}),
        make_zip({"/abs/evil.txt": b"2"}),
        make_tar({"ok.txt": b"1", "sub/../../evil.txt": b"2"}),
        make_tar({"ok.txt": b"1"}, links={"link": "../../outside"}),
    ],
    ids=["zip-dotdot", "zip-absolute", "tar-dotdot", "tar-symlink"],
)
def test_members_escaping_the_target_are_refused_before_writing(tmp_path, body):
    archive = tmp_path / "bad.archive"
    archive.write_bytes(body)
    with pytest.raises(
        ValueError,
        match=(
            r"bad\.archive: expected members inside the target folder, got '.*', "
            "which would land outside"
        ),
    ):
        unpack_archive(archive, tmp_path / "out" / "dest")
    assert not (tmp_path / "out" / "dest").exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
    assert not list((tmp_path / "out").glob(".*unpacking"))


def test_local_archive_needs_no_network_and_a_missing_one_is_named(tmp_path):
    archive = tmp_path / "ACDC.zip"
    archive.write_bytes(ARCHIVE)
    source = source_for("http://127.0.0.1:9/never", ARCHIVE)
    dest = run_fetch(tmp_path, source, archive=archive)
    assert (dest / "training" / "readme.txt").exists()
    with pytest.raises(FileNotFoundError, match="nope.zip"):
        run_fetch(tmp_path, source, archive=tmp_path / "nope.zip")


def test_truncated_local_archive_is_reported(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(make_tar({"a.txt": b"x" * 5000})[:3000])
    with pytest.raises(
        ValueError, match=r"a\.tar: expected an intact archive, got a corrupt or truncated one \("
    ):
        unpack_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path / "data"))
    with serve() as server:
        url = server.add("/data.zip", ARCHIVE)
        monkeypatch.setitem(fetch_module.SOURCES, "promise12", source_for(url, ARCHIVE))
        assert data_fetch.main(["promise12", "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert "TERMS" in out and "prepare promise12" in out
        assert (tmp_path / "data" / "raw" / "promise12" / "training" / "readme.txt").exists()
        assert (tmp_path / "data" / "downloads" / "data.zip").exists()
        monkeypatch.setitem(fetch_module.SOURCES, "promise12", source_for(url, b"other"))
        assert data_fetch.main(["promise12", "--no-progress", "--dest", str(tmp_path / "d2")]) == 2
        assert "--accept-checksum" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_fetch.main(["imagenet"])


def test_fetch_subcommand_downloads_and_maps_errors_to_exit_codes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path / "data"))
    with serve() as server:
        url = server.add("/data.zip", ARCHIVE)
        monkeypatch.setitem(fetch_module.SOURCES, "promise12", source_for(url, ARCHIVE))
        dest = tmp_path / "raw"
        assert cli.main(["fetch", "promise12", "--no-progress", "--dest", str(dest)]) == 0
        out = capsys.readouterr().out
        assert "TERMS" in out and "CITE" in out and f"prepare promise12 --src {dest}" in out
        assert (dest / "training" / "readme.txt").exists()
        assert cli.main(["fetch", "promise12", "--no-progress", "--dest", str(dest)]) == 0
        assert "already holds this archive" in capsys.readouterr().out
        assert server.requests["/data.zip"] == 1

        # bad input, exit code 2: a checksum mismatch, a missing --archive, a --dest in use
        monkeypatch.setitem(fetch_module.SOURCES, "promise12", source_for(url, b"other"))
        d2 = str(tmp_path / "d2")
        assert cli.main(["fetch", "promise12", "--no-progress", "--dest", d2]) == 2
        assert "--accept-checksum" in capsys.readouterr().err
        accepted = ["fetch", "promise12", "--no-progress", "--dest", d2, "--accept-checksum"]
        assert cli.main(accepted) == 0
        assert "Accepted because --accept-checksum" in capsys.readouterr().out
        missing = str(tmp_path / "nope.zip")
        assert cli.main(["fetch", "promise12", "--archive", missing, "--dest", d2]) == 2
        assert "nope.zip" in capsys.readouterr().err
        (tmp_path / "busy").mkdir()
        (tmp_path / "busy" / "other.txt").write_text("x")
        busy = ["fetch", "promise12", "--dest", str(tmp_path / "busy"), "--accept-checksum"]
        assert cli.main(busy) == 2
        assert "absent or empty" in capsys.readouterr().err

        # the download itself failed, exit code 1
        forbidden = server.add("/login.zip", ARCHIVE, mode="forbidden")
        monkeypatch.setitem(
            fetch_module.SOURCES, "promise12", source_for(forbidden, ARCHIVE, filename="login.zip")
        )
        assert (
            cli.main(["fetch", "promise12", "--no-progress", "--dest", str(tmp_path / "d3")]) == 1
        )
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "needs a login" in err and "--archive" in err
    with pytest.raises(SystemExit):
        cli.main(["fetch", "imagenet"])


@pytest.mark.parametrize(
    "entry", [["data_fetch.py"], ["-m", "tutorial_lib", "fetch"]], ids=["data_fetch", "module"]
)
def test_both_entry_points_run_as_scripts(tmp_path, entry):
    root = Path(__file__).resolve().parents[1]
    argv = [*entry, "promise12", "--archive", str(tmp_path / "nope.zip"), "--dest", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, *argv], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "error: --archive" in done.stderr and "nope.zip" in done.stderr


def make_tar_gz(members: dict[str, bytes]) -> bytes:
    return make_tar(members, mode="w:gz")


NOISE = random.Random(0).randbytes(200_000)  # incompressible: a cut lands inside the data
BIG_ZIP = make_zip({"training/a.bin": NOISE, "training/b.txt": b"b"})
BIG_TAR_GZ = make_tar_gz({"Task05/a.bin": NOISE, "Task05/b.txt": b"b"})


@pytest.mark.parametrize("mode", ["truncate", "truncate-no-length"])
@pytest.mark.parametrize("body", [BIG_ZIP, BIG_TAR_GZ], ids=["zip", "tar.gz"])
def test_a_cut_transfer_is_never_kept_nor_offered_to_accept_checksum(tmp_path, mode, body):
    with serve() as server:
        url = server.add("/data.zip", body, mode=mode)
        for accept in (False, True):
            with pytest.raises(FetchError, match="cut short") as info:
                run_fetch(tmp_path, source_for(url, body), accept_checksum=accept)
            assert "--accept-checksum" not in str(info.value)
            assert list((tmp_path / "cache").iterdir()) == []
        assert server.requests["/data.zip"] == 2  # nothing was cached, each call asked again
    assert not (tmp_path / "raw").exists()


def test_a_whole_transfer_without_content_length_is_kept(tmp_path):
    with serve() as server:
        url = server.add("/data.zip", BIG_ZIP, mode="no-length")
        dest = run_fetch(tmp_path, source_for(url, BIG_ZIP))
    assert (dest / "training" / "a.bin").read_bytes() == NOISE


@pytest.mark.parametrize("body", [BIG_ZIP, BIG_TAR_GZ], ids=["zip", "tar.gz"])
def test_a_truncated_archive_on_disk_is_not_offered_to_accept_checksum(tmp_path, body, capsys):
    archive = tmp_path / "ACDC.zip"
    archive.write_bytes(body[: len(body) // 2])
    source = source_for("http://127.0.0.1:9/never", body)
    for accept in (False, True):
        with pytest.raises(CorruptFileError, match="got an incomplete or damaged one") as info:
            run_fetch(tmp_path, source, archive=archive, accept_checksum=accept)
        assert "--accept-checksum" not in str(info.value) and "download it again" in str(info.value)
    argv = ["promise12", "--archive", str(archive), "--dest", str(tmp_path / "d")]
    assert data_fetch.main([*argv, "--accept-checksum", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") <= 3 and "Traceback" not in err and "download it again" in err
    assert not (tmp_path / "d").exists()


def _damaged_archives():
    text = "".join(f"line {i}: {i * i}\n" for i in range(20_000)).encode()
    gz_bad_data = bytearray(make_tar_gz({"a.txt": text, "b.txt": b"b"}))
    gz_bad_data[len(gz_bad_data) // 2 : len(gz_bad_data) // 2 + 8] = b"\xff" * 8
    zip_bad_data = bytearray(BIG_ZIP)
    zip_bad_data[1000] ^= 0xFF  # inside a member's data, directory intact
    return {
        "zip-truncated": BIG_ZIP[: len(BIG_ZIP) // 2],
        "zip-bad-data": bytes(zip_bad_data),
        "tar.gz-truncated": BIG_TAR_GZ[: len(BIG_TAR_GZ) // 2],
        "tar.gz-bad-data": bytes(gz_bad_data),
        "tar-truncated": make_tar({"a.bin": NOISE})[:50_000],
    }


@pytest.mark.parametrize("name", list(_damaged_archives()))
def test_a_damaged_archive_is_a_bad_input_naming_the_file(tmp_path, name):
    archive = tmp_path / "data.archive"
    archive.write_bytes(_damaged_archives()[name])
    with pytest.raises(CorruptFileError, match="expected an intact archive") as info:
        unpack_archive(archive, tmp_path / "out" / "dest")
    assert str(info.value).startswith(f"{archive}: ") and "download it again" in str(info.value)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_killed_download_leaves_a_part_file_that_the_next_call_removes(tmp_path):
    root = Path(__file__).resolve().parents[1]
    with serve() as server:
        url = server.add("/data.zip", BIG_ZIP, mode="stall")
        script = (
            "import sys; from pathlib import Path; from tutorial_lib.data.fetch import Source, fetch\n"
            f"s = Source('promise12', {url!r}, 'data.zip', 'sha256:0', 'p', 't', 'c')\n"
            f"fetch('promise12', {str(tmp_path / 'raw')!r}, cache_dir={str(tmp_path / 'cache')!r},"
            " source=s, progress=False)\n"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", script], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
        )
        deadline = time.monotonic() + 60
        parts = []
        while not parts and time.monotonic() < deadline and child.poll() is None:
            parts = list((tmp_path / "cache").glob(f".data.zip.{child.pid}.part"))
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert parts and parts[0].is_file()  # the kill left the partial transfer behind
        server.add("/data.zip", BIG_ZIP)
        dest = run_fetch(tmp_path, source_for(url, BIG_ZIP))
    assert (dest / "training" / "b.txt").read_bytes() == b"b"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["data.zip"]


def test_an_unpacking_of_a_dead_process_is_removed_by_the_next_one(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = tmp_path / f".dest.{int(done.stdout)}.x1y2.unpacking"
    (orphan / "training").mkdir(parents=True)
    mine = tmp_path / f".dest.{os.getpid()}.z3.unpacking"  # this process is alive: kept
    mine.mkdir()
    archive = tmp_path / "a.zip"
    archive.write_bytes(ARCHIVE)
    unpack_archive(archive, tmp_path / "dest")
    assert not orphan.exists() and mine.exists()


def test_checksums_stream_the_file_with_flat_memory(tmp_path):
    """A mismatching 400 MB file is hashed and inspected in chunks: the peak memory of the process
    that checks it stays far below the file's size (it read the whole file before). Measured as
    the peak of Python's allocations (tracemalloc) and, on Linux, the process's peak RSS (VmHWM:
    ru_maxrss would carry over the test process's own peak through fork)."""
    big = tmp_path / "ACDC.zip"
    with open(big, "wb") as handle:
        handle.truncate(400 * 2**20)  # sparse: costs no disk
    root = Path(__file__).resolve().parents[1]
    script = (
        "import tracemalloc; tracemalloc.start(); from pathlib import Path\n"
        "from tutorial_lib.data.fetch import ChecksumMismatchError, Source, verify_checksum\n"
        "s = Source('acdc', 'u', 'ACDC.zip', 'sha256:' + '0' * 64, 'p', 't', 'c')\n"
        "try:\n"
        f"    verify_checksum(Path({str(big)!r}), s)\n"
        "except ChecksumMismatchError as e:\n"
        "    assert 'got ' in str(e)\n"
        "status = Path('/proc/self/status')\n"
        "lines = status.read_text().splitlines() if status.exists() else []\n"
        "hwm = [int(x.split()[1]) // 1024 for x in lines if x.startswith('VmHWM')] or [0]\n"
        "print(tracemalloc.get_traced_memory()[1] // 2**20, hwm[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    python_peak, rss_peak = (int(v) for v in done.stdout.split()[-2:])
    assert python_peak < 250 and rss_peak < 250, (python_peak, rss_peak)


def test_a_dest_that_is_a_file_is_a_bad_input(tmp_path, capsys):
    archive = tmp_path / "a.zip"
    archive.write_bytes(ARCHIVE)
    (tmp_path / "d").write_text("mine")
    monkey = source_for("http://127.0.0.1:9/never", ARCHIVE)
    with pytest.raises(FileExistsError, match="it is a file"):
        fetch("promise12", tmp_path / "d", archive=archive, source=monkey, log=lambda _: None)
    assert (tmp_path / "d").read_text() == "mine"
