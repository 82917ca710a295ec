"""Regenerate every notebook `NN_name.ipynb` from its jupytext source `NN_name.py` (no outputs).

The repository that the Colab badges and the install cells point at is the single constant `REPO`:
change it here, run `python notebooks/sync.py`, and every notebook follows.

    python notebooks/sync.py          # rewrite the URLs in the .py files, then write the .ipynb files
    python notebooks/sync.py --check  # exit 1 if any .ipynb or URL is out of date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext

REPO = "shape-descriptors-course/shape-descriptors-course"
HERE = Path(__file__).resolve().parent
SOURCES = sorted(HERE.glob("[0-9][0-9]*_*.py"))

_COLAB = re.compile(
    r"https://colab\.research\.google\.com/github/[^/\s]+/[^/\s]+/blob/main/notebooks/[\w.]+"
)
_GIT = re.compile(r"git\+https://github\.com/[^/\s\"']+/[^/\s\"']+")


def colab_url(notebook: str) -> str:
    """The Colab address of `notebook` (a file name such as "00_overview.ipynb")."""
    return f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{notebook}"


def install_url() -> str:
    """What the guarded install cell gives to pip."""
    return f"git+https://github.com/{REPO}"


def with_urls(text: str, source: Path) -> str:
    """`text` (a .py source) with its Colab badge and install URL pointing at `REPO`."""
    text = _COLAB.sub(colab_url(source.with_suffix(".ipynb").name), text)
    return _GIT.sub(install_url(), text)


def expected_notebook(source: Path) -> str:
    """The .ipynb text that `source` generates: no outputs, no execution counts."""
    nb = jupytext.read(source)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:03d}"  # stable ids: regenerating gives the same file
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return jupytext.writes(nb, fmt="ipynb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    args = parser.parse_args(argv)
    stale = []
    for source in SOURCES:
        text = source.read_text(encoding="utf-8")
        fixed = with_urls(text, source)
        if fixed != text:
            stale.append(source.name)
            if not args.check:
                source.write_text(fixed, encoding="utf-8")
        target = source.with_suffix(".ipynb")
        want = expected_notebook(source)
        if not target.exists() or target.read_text(encoding="utf-8") != want:
            stale.append(target.name)
            if not args.check:
                tmp = target.with_suffix(".ipynb.tmp")
                tmp.write_text(want, encoding="utf-8")
                tmp.replace(target)
    if stale:
        print(("out of date: " if args.check else "updated: ") + ", ".join(stale))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
