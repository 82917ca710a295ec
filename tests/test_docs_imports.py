"""Every `from tutorial_lib... import ...` shown to a reader (README, docs, Binder's build script)
names something that exists: a moved function must not leave a dead line in the docs."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", ROOT / "binder" / "postBuild", *sorted((ROOT / "docs").glob("*.md"))]
IMPORT = re.compile(r"from (tutorial_lib(?:\.\w+)*) import ([\w, ]+)")


def _imports() -> list[tuple[str, str, str]]:
    found = []
    for path in FILES:
        for module, names in IMPORT.findall(path.read_text()):
            for name in (n.strip() for n in names.split(",")):
                if name:
                    found.append((path.relative_to(ROOT).as_posix(), module, name))
    return found


@pytest.mark.parametrize(("where", "module", "name"), _imports())
def test_shown_import_exists(where, module, name):
    parent = importlib.import_module(module)
    if hasattr(parent, "__path__") and importlib.util.find_spec(f"{module}.{name}"):
        return  # a submodule: `from tutorial_lib import plots`
    assert hasattr(parent, name), f"{where}: {module} has no {name}"


def test_the_check_finds_the_imports_it_should():
    assert ("binder/postBuild", "tutorial_lib.run_setup", "resolve_data_root") in _imports()
