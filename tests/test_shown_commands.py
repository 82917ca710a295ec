"""Every command shown to a reader works: README.md and docs/teaching.md, run; the rest, parsed.

Each command of the fenced shell blocks of README.md and docs/teaching.md is parsed by its own
parser (an option it lacks, or a value it refuses, fails here). The `python -m tutorial_lib ...`
and `python data_fetch.py ...` ones are then run in order, in a sandbox, with tiny settings
substituted: HOME in a temporary folder (so `~/.cache/tutorial_lib` is the sandbox's), downloads
from a local HTTP server serving fake archives laid out as the real ones (tests/data_fake_raw.py),
every preset shrunk to a seconds-long run, `prepare` at 32 px with one validation and one test
patient. They must exit 0. The install lines, the clone and the test commands are not run: the
clone's address must be the notebooks' repository (notebooks/sync.py), an extra must exist in
pyproject.toml, and the options of pip, venv and pytest must be in their `--help`.
The commands written in backticks in the prose, and the notebooks' fenced blocks, are parsed
(options only, even the ones too slow to run: a GPU benchmark, a 200-epoch run).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import zipfile
from functools import cache
from pathlib import Path

import pytest
from data_fake_raw import make_fake_acdc, make_fake_msd, make_fake_promise12
from data_http_server import serve
from shown_commands import (
    ROOT,
    Command,
    fenced_commands,
    help_text,
    inline_commands,
    kind,
    options_in,
    parse_fully,
    parser_option_strings,
    script_parser,
)

from tutorial_lib import presets
from tutorial_lib.cli import build_parser, main
from tutorial_lib.data import fetch as fetch_module

RUN = (ROOT / "README.md", ROOT / "docs" / "teaching.md")  # their fenced commands are run
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
PARSED_ONLY = {"pytest", "pip", "venv", "clone", "cd", "activate", "script", "shell"}


def _markdown(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def _where(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _fenced(paths) -> list[Command]:
    return [c for p in paths for c in fenced_commands(_markdown(p), _where(p))]


def _inline(paths) -> list[Command]:
    return [c for p in paths for c in inline_commands(_markdown(p), _where(p))]


SHOWN = _fenced(RUN) + _fenced(NOTEBOOKS)
INLINE = _inline(RUN) + _inline(NOTEBOOKS)


def test_the_commands_are_found() -> None:
    """The parsing above is not blind: the README's own commands are among those found."""
    shown = {str(c) for c in SHOWN}
    assert "python -m tutorial_lib reproduce --dataset toy-cardiac --fast" in shown
    assert "python -m pytest" in shown and "python data_fetch.py acdc" in shown
    assert any(c.argv[:2] == ["python", "benchmarks/epoch_time.py"] for c in INLINE)
    assert all(kind(c.argv) in PARSED_ONLY | {"tutorial_lib", "data_fetch"} for c in SHOWN), [
        f"{c.where}: {c}" for c in SHOWN if kind(c.argv) == "unknown"
    ]


# --- options: every command, run or not --------------------------------------------------------
def _subcommand_options(name: str) -> set[str]:
    parser = build_parser([name])
    sub = next(a for a in parser._actions if a.choices and name in a.choices)
    return parser_option_strings(sub.choices[name])


@cache
def _help(*argv: str) -> str:
    return help_text(*argv)


def _unknown(options: list[str], known: set[str], what: str) -> str | None:
    unknown = [o for o in options if o not in known | {"--help", "-h"}]
    return f"{what} has no option {unknown}" if unknown else None


def _check_options(command: Command, fenced: bool) -> str | None:
    """None when each option the command names is one its parser has, else what is wrong; a
    fenced command must also parse as it is (its values too)."""
    argv, what = command.argv, kind(command.argv)
    if what == "tutorial_lib":
        if fenced:
            return parse_fully(build_parser(argv[3:]), argv[3:])
        return _unknown(options_in(argv[4:]), _subcommand_options(argv[3]), argv[3])
    if what == "data_fetch":
        import data_fetch

        if fenced:
            return parse_fully(data_fetch.build_parser(), argv[2:])
        known = parser_option_strings(data_fetch.build_parser())
        return _unknown(options_in(argv[2:]), known, "data_fetch.py")
    if what == "script":
        known = parser_option_strings(script_parser(ROOT / argv[1]))
        return _unknown(options_in(argv[2:]), known, argv[1])
    if what == "shell":
        return None if (ROOT / argv[1]).is_file() else f"no script {argv[1]}"
    if what in ("pytest", "pip", "venv"):
        rest = argv[argv.index("install") + 1 :] if what == "pip" else argv[3:]
        if not options_in(rest):
            return None
        text = _help(*(["-m", "pip", "install"] if what == "pip" else argv[1:3]))
        missing = [o for o in options_in(rest) if not re.search(rf"(^|[\s,]){o}\b", text)]
        return f"{what} --help has no {missing}" if missing else None
    return None


@pytest.mark.parametrize(
    ("command", "fenced"),
    [(c, True) for c in SHOWN] + [(c, False) for c in INLINE],
    ids=lambda c: f"{c.where} {c}"[:90] if isinstance(c, Command) else "",
)
def test_every_option_shown_is_one_the_parser_has(command, fenced) -> None:
    problem = _check_options(command, fenced)
    assert problem is None, f"{command.where}: `{command}`: {problem}"


def test_install_lines_name_this_repository_and_existing_extras() -> None:
    sync = (ROOT / "notebooks" / "sync.py").read_text()
    repo = re.search(r'^REPO = "([^"]+)"', sync, re.MULTILINE).group(1)
    pyproject = (ROOT / "pyproject.toml").read_text()
    table = re.search(r"^\[project\.optional-dependencies\]\n(.*?)^\[", pyproject, re.M | re.S)
    extras = re.findall(r"^([\w-]+)\s*=", table.group(1), re.MULTILINE)
    assert "dev" in extras
    clones = [c for c in SHOWN if kind(c.argv) == "clone"]
    assert clones
    for command in clones:
        assert command.argv[2] == f"https://github.com/{repo}.git", command.where
    for command in SHOWN:
        if kind(command.argv) == "cd":
            assert command.argv[1] == repo.split("/")[1], command.where
        for arg in command.argv if kind(command.argv) == "pip" else []:
            for extra in re.findall(r"\[([\w,-]+)\]", arg):
                assert set(extra.split(",")) <= set(extras), f"{command.where}: {arg}"


# --- running: README.md and docs/teaching.md, in a sandbox --------------------------------------
def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


FAKE_RAW = {"acdc": make_fake_acdc, "promise12": make_fake_promise12, "msd-prostate": make_fake_msd}
TINY = {  # options added to a command when it does not name them
    "fetch": ["--no-progress"],
    "prepare": ["--size", "32", "--val", "1", "--test", "1", "--no-progress"],
    "train": ["--quiet", "--threads", "1"],
    "evaluate": ["--threads", "1"],
    "reproduce": ["--quiet", "--threads", "1", "--jobs", "1"],
}


def _tiny(argv: list[str]) -> list[str]:
    """`argv` with `~` expanded as a shell would and the tiny options of its command added."""
    argv = [os.path.expanduser(a) if a.startswith("~") else a for a in argv]
    extra, i = TINY.get(argv[0] if argv[0] != "data_fetch.py" else "fetch", []), 0
    while i < len(extra):
        option, values = extra[i], []
        i += 1
        while i < len(extra) and not extra[i].startswith("--"):
            values.append(extra[i])
            i += 1
        if option not in argv:
            argv += [option, *values]
    return argv


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A home, a working folder, fake downloads on a local server and seconds-long presets."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TUTORIAL_DATA_DIR", raising=False)
    monkeypatch.delenv("TUTORIAL_RUNS", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for name, cfg in list(presets.PRESETS.items()):
        toy = name.startswith("toy-")
        data = dataclasses.replace(cfg.data, size=32, **({"n_patients": 5} if toy else {}))
        small = {"model": "small_unet", "model_options": {"base": 4, "depth": 2}}
        monkeypatch.setitem(
            presets.PRESETS, name, dataclasses.replace(cfg, data=data, epochs=1, **small)
        )
        monkeypatch.setitem(presets.FAST_OVERRIDES, name, {"epochs": 1})
    with serve() as server:
        for name, make in FAKE_RAW.items():
            body = _zip_folder(make(tmp_path / "raw" / name))
            url = server.add(f"/{name}.zip", body)
            source = dataclasses.replace(
                fetch_module.SOURCES[name],
                url=url,
                filename=f"{name}.zip",
                known_hash="sha256:" + hashlib.sha256(body).hexdigest(),
            )
            monkeypatch.setitem(fetch_module.SOURCES, name, source)
        yield work


def _run(command: Command) -> int:
    argv = command.argv
    if kind(argv) == "data_fetch":
        import data_fetch

        return data_fetch.main(_tiny(["data_fetch.py", *argv[2:]])[1:])
    return main(_tiny(argv[3:]))


@pytest.mark.parametrize("path", RUN, ids=_where)
def test_every_command_shown_runs(path, sandbox, monkeypatch, capsys) -> None:
    commands = [c for c in fenced_commands(_markdown(path), _where(path))]
    ran = 0
    for command in commands:
        if kind(command.argv) in PARSED_ONLY:
            continue
        with monkeypatch.context() as env:
            for name, value in command.env.items():
                env.setenv(name, value)
            code = _run(command)
        out = capsys.readouterr()
        assert code == 0, f"{command.where}: `{command}` exited {code}:\n{out.err[-2000:]}"
        ran += 1
    assert ran >= 1, f"{_where(path)}: expected commands to run, found none"
    if path.name == "README.md":
        _check_what_the_readme_lists()


def _check_what_the_readme_lists() -> None:
    """The files the README says the toy reproduction writes are where it says."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = re.search(r"It writes, in `([^`]+)`:(.*?)\n\n", readme, re.DOTALL)
    out_dir, listed = paragraph.group(1), paragraph.group(2)
    names = re.findall(r"`([\w.]+\.(?:png|json))`", listed)
    assert "summary.json" in names and len(names) >= 5
    for name in names:
        inside = [out_dir, "ce"] if name in ("config.json", "test.json") else [out_dir]
        assert Path(*inside, name).is_file(), f"README.md lists {name}: not written"
    for folder in re.findall(r"`(\w+)/`", listed):
        assert Path(out_dir, folder).is_dir(), f"README.md lists {folder}/: not written"


def test_the_sandbox_runs_what_it_is_given(sandbox, monkeypatch, capsys) -> None:
    """The runner is not blind: an unknown preset, or a download that fails, is not exit 0."""
    assert (
        main(_tiny(["train", "--preset", "toy-cardiac-ce", "--out", "runs/x", "--data", "nowhere"]))
        == 2
    )
    assert "expected a prepared dataset" in capsys.readouterr().err
    wrong = "sha256:" + "0" * 64
    source = dataclasses.replace(fetch_module.SOURCES["promise12"], known_hash=wrong)
    monkeypatch.setitem(fetch_module.SOURCES, "promise12", source)
    assert main(_tiny(["fetch", "promise12"])) == 2
    assert "checksum" in capsys.readouterr().err.lower()


@pytest.mark.parametrize(
    ("shown", "fenced", "problem"),
    [
        ("python -m tutorial_lib train --preset NAME --epoch 3", False, "train has no option"),
        ("python -m tutorial_lib reproduce --dataset acdc-2", True, "invalid choice"),
        ("python -m tutorial_lib student-copy", True, "required: OUT_DIR"),
        ("python data_fetch.py acdc --archives F", True, "unrecognized arguments"),
        ("python benchmarks/soak_resume.py --kill 5", False, "has no option"),
        ("python -m pytest --nbval-strict", True, "pytest --help has no"),
    ],
)
def test_a_wrong_option_or_value_is_caught(shown, fenced, problem) -> None:
    found = _check_options(Command(shown.split()), fenced)
    assert found is not None and problem in found, found
