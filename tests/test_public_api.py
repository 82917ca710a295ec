"""The public API is listed once (``tutorial_lib.STABLE``, ``COURSE_MODULES``) and kept true.

- every stable name is importable from ``tutorial_lib`` and from its home module, and is the same
  object both ways; ``import tutorial_lib`` imports no torch;
- docs/design.md's "Public API (stable)" section lists the same names and modules;
- each stable name's docstring says where it is taught ("Taught in notebook NN.") or shown
  ("Shown in examples/<file>.py."), and that notebook or example uses it in its code;
- the notebooks import only stable names (from ``tutorial_lib`` or their home module), modules
  of the API, and public names of the course modules.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tutorial_lib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.py"))
HOME = {name: module for module, names in tutorial_lib.STABLE.items() for name in names}
API_MODULES = set(tutorial_lib.STABLE) | set(tutorial_lib.COURSE_MODULES)


def test_all_is_the_stable_list_and_each_name_resolves():
    assert tutorial_lib.__all__ == sorted(HOME)
    assert len(HOME) == sum(len(v) for v in tutorial_lib.STABLE.values())  # no name twice
    for name, module in HOME.items():
        assert getattr(tutorial_lib, name) is getattr(importlib.import_module(module), name)
    assert set(tutorial_lib.__all__) <= set(dir(tutorial_lib))
    with pytest.raises(AttributeError, match="has no attribute 'not_a_name'"):
        tutorial_lib.not_a_name  # noqa: B018
    for module in tutorial_lib.COURSE_MODULES:
        importlib.import_module(module)


def test_importing_the_package_stays_light():
    code = "import sys, tutorial_lib; print('torch' in sys.modules, len(tutorial_lib.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", str(len(HOME))], out.stderr


def _design_section() -> str:
    text = (ROOT / "docs" / "design.md").read_text()
    found = re.search(r"^## Public API \(stable\)\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, "docs/design.md: expected a '## Public API (stable)' section"
    return found.group(1)


def test_design_lists_the_same_api():
    section = _design_section()
    listed = dict(re.findall(r"^- `(tutorial_lib[\w.]*)`: (.+)$", section, re.M))
    stable = {m: tuple(sorted(re.findall(r"`(\w+)`", names))) for m, names in listed.items()}
    assert stable == {m: tuple(sorted(n)) for m, n in tutorial_lib.STABLE.items()}
    course = re.search(r"^Course modules: (.+)$", section, re.M)
    assert course, "docs/design.md: expected a 'Course modules: ...' line"
    assert re.findall(r"`(tutorial_lib[\w.]*)`", course.group(1)) == list(
        tutorial_lib.COURSE_MODULES
    )


def _code_of(path: Path) -> str:
    """A jupytext notebook's or a script's code: its lines that are not comments or markdown."""
    return "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    )


def _docstring(name: str) -> str:
    obj = getattr(tutorial_lib, name)
    if callable(obj):
        return obj.__doc__ or ""
    for path in sorted((ROOT / "tutorial_lib").rglob("*.py")):  # a constant's attribute docstring
        body = ast.parse(path.read_text()).body
        for node, after in zip(body, body[1:], strict=False):
            targets = (
                node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            )
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                    return after.value.value
    return ""


@pytest.mark.parametrize("name", sorted(HOME))
def test_each_stable_name_says_where_it_is_taught_and_is_used_there(name):
    doc = _docstring(name)
    notebooks = re.findall(r"Taught in notebook (\d\d[a-z]?)\b", doc)
    examples = re.findall(r"Shown in (examples/[\w/]+\.py)", doc)
    assert notebooks or examples, (
        f"{name}: expected 'Taught in notebook NN.' or 'Shown in examples/...' in its docstring"
    )
    places = [next((ROOT / "notebooks").glob(f"{nn}_*.py")) for nn in notebooks]
    places += [ROOT / e for e in examples]
    for place in places:
        assert re.search(rf"\b{name}\b", _code_of(place)), (
            f"{name}: said taught in {place.name}, not used in its code"
        )


def _public_names(module: str) -> set[str]:
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    return set(names) if names is not None else {n for n in vars(mod) if not n.startswith("_")}


def _allowed(module: str, name: str) -> bool:
    """May a notebook use ``name`` from ``module``?"""
    if module == "tutorial_lib":
        return name in HOME or f"tutorial_lib.{name}" in API_MODULES
    if module in tutorial_lib.COURSE_MODULES:
        return name in _public_names(module)
    return HOME.get(name) == module


def _tutorial_lib_uses(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, name) for every name a notebook takes from tutorial_lib: imports, and
    attributes of the modules it imports (``descriptors.DESCRIPTORS``)."""
    tree = ast.parse(path.read_text())
    uses, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tutorial_lib"):
            for alias in node.names:
                uses.append((node.lineno, node.module, alias.name))
                full = f"{node.module}.{alias.name}"
                if full in API_MODULES:
                    aliases[alias.asname or alias.name] = full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in aliases:
                uses.append((node.lineno, aliases[node.value.id], node.attr))
    return uses


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_use_only_the_public_api(path):
    bad = [
        f"line {line}: {module}.{name}"
        for line, module, name in _tutorial_lib_uses(path)
        if not _allowed(module, name)
    ]
    assert not bad, (
        f"{path.name}: names outside the public API (tutorial_lib.STABLE, COURSE_MODULES): {bad}"
    )


def test_the_rule_refuses_what_it_should():
    assert _allowed("tutorial_lib.descriptors", "soft_size")
    assert _allowed("tutorial_lib", "ShapeDescriptorLoss") and _allowed("tutorial_lib", "plots")
    assert _allowed("tutorial_lib.widgets", "make_shape")
    assert not _allowed("tutorial_lib.descriptors", "Geometry")  # public there, not stable
    assert not _allowed("tutorial_lib.losses", "soft_size")  # a stable name from another module
    assert not _allowed("tutorial_lib.loss_tables", "_constant_rows")  # private
    assert not _allowed("tutorial_lib", "cli")  # not an API module
    uses = _tutorial_lib_uses(ROOT / "notebooks" / "00_overview.py")
    assert (
        next(line for line, _, name in uses if name == "DESCRIPTORS"),
        "tutorial_lib.descriptors",
        "DESCRIPTORS",
    ) in uses
