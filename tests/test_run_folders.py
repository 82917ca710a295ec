"""Run folders: one process at a time (an OS lock), only folders the library made, damaged run
files as bad input (exit 2), `--resume --epochs`, stale temporaries, Ctrl-C (exit 130)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_config

from tutorial_lib.checkpoint import load_checkpoint, save_checkpoint
from tutorial_lib.cli import main
from tutorial_lib.errors import DamagedRunFileError, RunFolderBusyError
from tutorial_lib.run_folder import claim_folder
from tutorial_lib.run_setup import resolve_data_root
from tutorial_lib.runlog import read_csv

ROOT = Path(__file__).parents[1]
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def data_root():
    """The tiny toy dataset, generated here first: the processes below only read it."""
    return str(resolve_data_root(tiny_config("ce"), None))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _train_argv(data_root: str, out: Path, *extra: str) -> list[str]:
    return [
        *("train", "--preset", "toy-cardiac-ce", "--data", data_root, "--out", str(out)),
        *("--quiet", "--threads", "1", "--device", "cpu", *extra),
    ]


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal, even when these tests run with SIGINT ignored (a
    background job of a script); an ignored SIGINT would be inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(argv: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
        **kwargs,
    )


def _wait_for(condition, seconds: float = 120.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name]


# --------------------------------------------------------------------------- one process per folder


def test_two_processes_racing_for_one_folder(tmp_path, data_root):
    out = tmp_path / "run"
    seeds = (11, 12)
    # 40 epochs: the winner still holds the folder when the other process has imported torch and
    # arrives (with 6, a fast winner could finish first and the other meet a finished run instead)
    procs = [
        _start(["-m", "tutorial_lib", *_train_argv(data_root, out, "--epochs", "40", "--seed", s)])
        for s in map(str, seeds)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read(), p.pid) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    (_, _, _, winner), (_, _, message, _) = sorted(results, key=lambda r: r[0])
    assert message.strip() == (
        f"error: run folder {out}: expected no other process writing it, got process {winner} "
        "using it; wait for it to end, or choose another --out"
    )
    seed = seeds[[p.pid for p in procs].index(winner)]
    # the folder holds the winner's run only
    assert json.loads((out / "config.json").read_text())["seed"] == seed
    for name in ("last.pt", "best.pt"):
        assert load_checkpoint(out / "checkpoints" / name)["config"]["seed"] == seed
    assert [r["epoch"] for r in read_csv(out / "metrics.csv")] == list(range(40))
    assert not _temporaries(out)


def _holder(folder: Path, kind: str) -> subprocess.Popen:
    """Another process that holds `folder` until it is killed."""
    holder = _start(
        [
            "-c",
            "import sys, time; from tutorial_lib.run_folder import claim_folder\n"
            f"with claim_folder({str(folder)!r}, {kind!r}):\n"
            "    print('held', flush=True); time.sleep(600)",
        ]
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_lock_is_refused_while_held_and_taken_over_after_its_process_dies(tmp_path):
    folder = tmp_path / "run"
    holder = _holder(folder, "run")
    with pytest.raises(RunFolderBusyError, match=f"got process {holder.pid} using it"):
        with claim_folder(folder, "run"):
            pass
    holder.kill()  # SIGKILL: no clean-up at all
    holder.wait()
    with claim_folder(folder, "run"):  # the OS dropped the dead process's lock
        with claim_folder(folder, "run"):  # and a claim is re-entrant within a process
            assert (folder / ".run.lock").read_text().strip() == str(os.getpid())


@pytest.mark.skipif(os.name != "posix", reason="fcntl")
def test_a_file_system_without_locks_runs_unlocked_with_a_warning(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="no file lock on this file system"):
        with claim_folder(tmp_path / "run", "run"):
            pass


def test_a_second_reproduce_into_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "rep"
    holder = _holder(out, "reproduce")
    try:
        argv = ["reproduce", "--dataset", "toy-cardiac", "--out", str(out), "--quiet"]
        assert main([*argv, "--threads", "1", "--device", "cpu"]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err == f"error: run folder {out}: expected no other process writing it, got process " + (
        f"{holder.pid} using it; wait for it to end, or choose another --out\n"
    )
    assert sorted(p.name for p in out.iterdir()) == [".reproduce.lock"]


# --------------------------------------------------------------------------- only our folders


@pytest.mark.parametrize("files", [("config.json", "metrics.csv"), ("notes.txt",)])
def test_a_folder_the_library_did_not_make_is_refused(tmp_path, capsys, files):
    out = tmp_path / "mine"
    out.mkdir()
    for name in files:
        (out / name).write_text("the user's own file\n")
    argv = ["train", "--preset", "toy-cardiac-ce", "--out", str(out), "--quiet", "--threads", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"got {out} holding {', '.join(sorted(files))}" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(files)  # nothing written, nothing lost
    assert all((out / n).read_text() == "the user's own file\n" for n in files)
    argv = ["reproduce", "--dataset", "toy-cardiac", "--out", str(out), "--quiet", "--threads", "1"]
    assert main(argv) == 2
    assert "a reproduce folder of this library" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(files)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_root):
    """A finished 2-epoch tiny CE run (copied by each test that changes it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(_train_argv(data_root, out, "--epochs", "2")) == 0
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _resume_argv(data_root: str, out: Path, epochs: int) -> list[str]:
    return [
        *("train", "--preset", "toy-cardiac-ce", "--data", data_root, "--out", str(out)),
        *("--resume", "--epochs", str(epochs), "--quiet", "--threads", "1", "--device", "cpu"),
    ]


def test_a_run_folder_made_before_lock_files_is_still_resumed(finished, tmp_path, data_root):
    run = _copy(finished, tmp_path)
    (run / ".run.lock").unlink()  # recognised by its config.json alone
    assert main(_resume_argv(data_root, run, 3)) == 0
    assert len(read_csv(run / "metrics.csv")) == 3


# --------------------------------------------------------------------------- damaged run files


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_key(path: Path) -> None:
    state = load_checkpoint(path)
    del state["optimizer"], state["format"]
    save_checkpoint(path, state)


def _wrong_weights(path: Path) -> None:
    state = load_checkpoint(path)
    state["model"] = {"conv.weight": torch.zeros(3)}
    del state["format"]
    save_checkpoint(path, state)


DAMAGES = {
    "truncated last.pt": ("checkpoints/last.pt", _truncate, "got a damaged file"),
    "garbage last.pt": ("checkpoints/last.pt", lambda p: p.write_text("x" * 99), "damaged file"),
    "last.pt missing keys": ("checkpoints/last.pt", _drop_key, r"without \['optimizer'\]"),
    "last.pt other weights": ("checkpoints/last.pt", _wrong_weights, "a checkpoint of this run"),
    "garbage config.json": ("config.json", lambda p: p.write_text("{not json"), "JSONDecodeError"),
    "config.json not a config": ("config.json", lambda p: p.write_text("[1]"), "config of a run"),
    "garbage metrics.csv": ("metrics.csv", lambda p: p.write_text("a,b\n1,2\n"), "per epoch"),
}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_a_damaged_run_file_is_bad_input_on_resume(finished, tmp_path, capsys, data_root, case):
    name, damage, what = DAMAGES[case]
    run = _copy(finished, tmp_path)
    damage(run / name)
    assert main(_resume_argv(data_root, run, 3)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert err.startswith(f"error: {run / name}: expected ")
    assert f"delete the run folder {run} and run again" in err
    assert re.search(what, err), err


def test_a_damaged_best_checkpoint_is_bad_input_on_evaluate(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path)
    _truncate(run / "checkpoints" / "best.pt")
    assert main(["evaluate", "--run", str(run), "--threads", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run}/checkpoints/best.pt: expected a checkpoint written by")
    with pytest.raises(DamagedRunFileError):
        load_checkpoint(run / "checkpoints" / "best.pt")


# --------------------------------------------------------------------------- resume --epochs


def test_resume_with_other_epochs_keeps_config_json_true(finished, tmp_path, data_root, capsys):
    run = _copy(finished, tmp_path)
    assert main(_resume_argv(data_root, run, 3)) == 0  # more epochs: the run goes on
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert len(read_csv(run / "metrics.csv")) == 3
    assert load_checkpoint(run / "checkpoints" / "last.pt")["config"]["epochs"] == 3
    before = (run / "metrics.csv").read_text()
    assert main(_resume_argv(data_root, run, 1)) == 0  # fewer than done: nothing is trained
    assert json.loads((run / "config.json").read_text())["epochs"] == 3  # not rewritten to 1
    assert (run / "metrics.csv").read_text() == before
    assert json.loads((run / "summary.json").read_text())["epochs_done"] == 3
    capsys.readouterr()


def test_stale_temporaries_of_a_killed_write_are_removed(finished, tmp_path, data_root):
    run = _copy(finished, tmp_path)
    stale = [run / "checkpoints" / ".last.pt.k2j3x.tmp", run / ".metrics.csv.a8b.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    assert main(_resume_argv(data_root, run, 2)) == 0
    assert not _temporaries(run)


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_a_training_process_with_exit_130(tmp_path, data_root):
    out = tmp_path / "run"
    proc = _start(["-m", "tutorial_lib", *_train_argv(data_root, out, "--epochs", "500")])
    _wait_for(lambda: (out / "checkpoints" / "last.pt").exists() or proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    err = proc.stderr.read()
    assert err == (
        f"interrupted: {out} keeps the epochs finished so far (checkpoints/last.pt); run the "
        "same command with --resume to continue\n"
    )
    done = load_checkpoint(out / "checkpoints" / "last.pt")["epoch"]
    assert done >= 1 and not _temporaries(out)
    with claim_folder(out, "run"):  # the lock went with the process
        pass
    # and --resume continues it
    resumed = _start(["-m", "tutorial_lib", *_resume_argv(data_root, out, done + 1)])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert len(read_csv(out / "metrics.csv")) == done + 1


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(os.name != "posix", reason="process groups and SIGINT: POSIX")
def test_ctrl_c_stops_reproduce_and_its_two_processes(tmp_path, data_root):
    out = tmp_path / "rep"
    argv = [str(TESTS / "tiny_cli.py"), "reproduce", "--dataset", "toy-cardiac", "--out", str(out)]
    argv += ["--jobs", "2", "--quiet", "--threads", "2", "--device", "cpu"]
    env = {**_env(), "TINY_EPOCHS": "500"}
    # its own process group, as a terminal's foreground job
    proc = _start(argv, env=env, start_new_session=True)
    runs = [out / "ce", out / "descriptors"]
    last = [r / "checkpoints" / "last.pt" for r in runs]
    _wait_for(lambda: all(p.exists() for p in last) or proc.poll() is not None)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    assert proc.wait(timeout=120) == 130
    err = proc.stderr.read()
    assert err == (
        f"interrupted: {out}/ce and {out}/descriptors keep the epochs finished so far; run the "
        "same command again to continue\n"
    )  # one line: no traceback of a child, no leaked semaphore warning
    _wait_for(lambda: not _group_alive(proc.pid), seconds=20)  # no orphan process left
    for run in runs:
        assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] >= 1
        assert not _temporaries(run)
        with claim_folder(run, "run"):
            pass
