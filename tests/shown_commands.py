"""The shell commands a reader is shown, and the options each command's parser knows.

`fenced_commands(text)`: the commands of the fenced shell blocks (```bash, ```sh, ```shell,
```console) of a Markdown text, one argv each (comments dropped, `&&` and `;` split, leading
`VAR=value` kept apart). `inline_commands(text)`: the commands written in backticks in the prose
(`python -m tutorial_lib train --preset NAME [--data DIR]`, `python benchmarks/x.py --jobs 2`).
`kind(argv)` names what a command is; `parser_options(...)` lists the options of its parser.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(?:bash|sh|shell|console)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SUBCOMMANDS = "demo|fetch|prepare|train|evaluate|reproduce|student-copy"  # tutorial_lib.cli's
INLINE = re.compile(rf"`((?:python|bash) [^`]+|(?:{SUBCOMMANDS}) --[^`]+)`")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SEPARATORS = {"&&", ";", "||"}


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    where: str = ""

    def __str__(self) -> str:
        return shlex.join(self.argv)


def _split_line(line: str, where: str) -> list[Command]:
    tokens = shlex.split(line, comments=True)
    commands, current = [], []
    for token in [*tokens, ";"]:
        if token in SEPARATORS:
            if current:
                env = {}
                while current and ASSIGNMENT.match(current[0]):
                    name, value = current.pop(0).split("=", 1)
                    env[name] = value
                commands.append(Command(current, env, where))
            current = []
        else:
            current.append(token)
    return commands


def fenced_commands(text: str, where: str) -> list[Command]:
    """Every command of the fenced shell blocks, in order."""
    found = []
    for block in FENCE.finditer(text):
        line_no = text[: block.start()].count("\n") + 2
        body = block.group(1).replace("\\\n", " ")
        for offset, line in enumerate(body.splitlines()):
            found += _split_line(line, f"{where}:{line_no + offset}")
    return found


def inline_commands(text: str, where: str) -> list[Command]:
    """The commands written in backticks in the prose (synopses: `[--x X]`, `A|B` are kept), and
    the library's commands written without `python -m tutorial_lib` (`train --preset NAME`)."""
    found = []
    for match in INLINE.finditer(text):
        line_no = text[: match.start()].count("\n") + 1
        argv = match.group(1).replace("[", " ").replace("]", " ").split()
        if argv[0] not in ("python", "bash"):  # `train --preset NAME`: a command of the library
            argv = ["python", "-m", "tutorial_lib", *argv]
        found.append(Command(argv, {}, f"{where}:{line_no}"))
    return found


def kind(argv: list[str]) -> str:
    """What a command is: tutorial_lib, data_fetch, pytest, pip, venv, clone, cd, activate,
    script (a Python script of the repository), shell (a bash script of the repository), or
    unknown."""
    if argv[:3] == ["python", "-m", "tutorial_lib"]:
        return "tutorial_lib"
    if argv[:2] == ["python", "data_fetch.py"]:
        return "data_fetch"
    if argv[:3] == ["python", "-m", "pytest"]:
        return "pytest"
    if argv[:2] == ["pip", "install"] or argv[:4] == ["python", "-m", "pip", "install"]:
        return "pip"
    if argv[:3] == ["python", "-m", "venv"]:
        return "venv"
    if argv[:2] == ["git", "clone"]:
        return "clone"
    if argv[0] == "cd" and len(argv) == 2:
        return "cd"
    if argv[0] in (".", "source") and len(argv) == 2 and argv[1].endswith("/bin/activate"):
        return "activate"
    if argv[0] == "python" and len(argv) > 1 and argv[1].endswith(".py"):
        return "script"
    if argv[0] == "bash" and len(argv) > 1 and argv[1].endswith(".sh"):
        return "shell"
    return "unknown"


def options_in(argv: list[str]) -> list[str]:
    """The long and short options a command names (`--x=1` gives `--x`)."""
    return [a.split("=", 1)[0] for a in argv if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", a)]


def parser_option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def script_parser(path: Path) -> argparse.ArgumentParser:
    """The argparse parser a script's `main()` builds, caught before it parses anything."""
    spec = importlib.util.spec_from_file_location(f"shown_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        spec.loader.exec_module(module)

        def capture(self, *args, **kwargs):
            raise _Captured(self)

        original = argparse.ArgumentParser.parse_args
        argparse.ArgumentParser.parse_args = capture
        try:
            module.main()
        except _Captured as caught:
            return caught.parser
        finally:
            argparse.ArgumentParser.parse_args = original
    finally:
        sys.path[:] = saved_path
    raise AssertionError(f"{path}: main() returned without parsing its arguments")


def help_text(*argv: str) -> str:
    """What `python -m ... --help` prints (pip, venv, pytest: parsers of other projects)."""
    extra = ["--noconftest"] if argv[-1] == "pytest" else []  # its options, not torch's import
    result = subprocess.run(
        [sys.executable, *argv, *extra, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def parse_fully(parser: argparse.ArgumentParser, args: list[str]) -> str | None:
    """None when `parser` accepts `args` as they are, else argparse's message."""
    from io import StringIO

    err = StringIO()
    with contextlib.redirect_stderr(err):
        try:
            parser.parse_args(args)
        except SystemExit as stop:
            if stop.code:
                return err.getvalue().strip().splitlines()[-1]
    return None
