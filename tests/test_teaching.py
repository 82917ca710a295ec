"""docs/teaching.md stays true to the code: its table of environment variables is the list of the
variables the course reads, and it covers every notebook and every exercise."""

from __future__ import annotations

import re
from pathlib import Path

from tutorial_lib.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
TEACHING = (ROOT / "docs" / "teaching.md").read_text(encoding="utf-8")
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]*_*.py"))

# Where the course reads its settings: the library, the notebooks' sources, the download script
# and Binder's build (a shell script with Python inside).
SOURCES = sorted(
    [*(ROOT / "tutorial_lib").rglob("*.py"), *(ROOT / "notebooks").glob("*.py")]
    + [ROOT / "data_fetch.py", *(p for p in (ROOT / "binder").iterdir() if p.is_file())]
)
NAME = r"['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]"
PYTHON_READS = [
    re.compile(rf"os\.environ\.(?:get|setdefault|pop)\(\s*{NAME}"),
    re.compile(rf"os\.environ\[\s*{NAME}\s*\]"),
    re.compile(rf"os\.getenv\(\s*{NAME}"),
    re.compile(rf"{NAME}\s+(?:not\s+)?in\s+os\.environ"),
]
SHELL_READS = [
    re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)"),  # $NAME, ${NAME}
    re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=\S*\s+\S", re.MULTILINE),  # NAME=value command
]
SHELL_LOCAL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=\S*\s*$", re.MULTILINE)  # NAME=value
ANY_ENVIRONMENT = re.compile(r"\benviron\b|\bgetenv\b")


def _is_shell(path: Path) -> bool:
    return path.suffix != ".py"


def variables_read() -> dict[str, set[str]]:
    """Variable name -> the files that read it. A line that touches the environment in a way the
    patterns above do not name fails here (a variable read through a name, `from os import
    environ`): a read the table could miss is not let through."""
    found: dict[str, set[str]] = {}
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT).as_posix()
        patterns = PYTHON_READS + (SHELL_READS if _is_shell(path) else [])
        local = set(SHELL_LOCAL.findall(text)) if _is_shell(path) else set()
        for pattern in patterns:
            for name in set(pattern.findall(text)) - local:
                found.setdefault(name, set()).add(where)
        for line in text.splitlines():
            if ANY_ENVIRONMENT.search(line):
                assert any(p.search(line) for p in PYTHON_READS), f"{where}: unnamed read: {line}"
    return found


def table_variables() -> set[str]:
    section = TEACHING.split("## Settings (environment variables)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z_][A-Z0-9_]*)`", row.split("|")[1])}


def test_the_scan_finds_the_reads_it_should() -> None:
    found = variables_read()
    assert "tutorial_lib/runlog.py" in found["TUTORIAL_RUNS"]
    assert "notebooks/05_acdc.py" in found["TUTORIAL_ACDC"]
    assert "binder/postBuild" in found["HOME"] and "binder/postBuild" in found["MKL_NUM_THREADS"]
    assert "tutorial_lib/cli.py" in found["OMP_WAIT_POLICY"]


def test_the_table_lists_exactly_the_variables_the_code_reads() -> None:
    read, listed = variables_read(), table_variables()
    missing = {name: sorted(files) for name, files in read.items() if name not in listed}
    assert not missing, f"docs/teaching.md: add these to the settings table: {missing}"
    extra = listed - set(read)
    assert not extra, f"docs/teaching.md lists variables that no code reads: {sorted(extra)}"


def test_every_notebook_has_its_needs_and_its_notes() -> None:
    for stem in NOTEBOOKS:
        number, title = stem.split("_", 1)[0], stem.split("_", 1)[1].replace("_", " ")
        text = TEACHING.lower()  # "05 ACDC" for 05_acdc
        assert f"| {number} {title} |" in text, f"{stem}: no row in 'What each notebook needs'"
        assert f"**{number} {title}.**" in text, f"{stem}: no instructor notes"


def test_the_two_day_plan_covers_every_notebook_and_exercise() -> None:
    plan = TEACHING.split("### A 2-day course", 1)[1].split("\n## ", 1)[0]
    for stem in NOTEBOOKS:
        number, title = stem.split("_", 1)
        assert f"| {number} {title.replace('_', ' ')} |" in plan.lower(), stem
    ids = set(re.findall(r"\b(\d\d[a-z]?\.\d)\b", plan))
    for first, lo, hi in re.findall(r"(\d\d)\.(\d)–\d\d\.(\d)", plan):
        ids |= {f"{first}.{k}" for k in range(int(lo), int(hi) + 1)}
    assert ids == set(EXERCISES), sorted(set(EXERCISES) ^ ids)
