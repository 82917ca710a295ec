"""The library's shape: small modules, short functions, one error dialect, no unused public API.

These are the rules of docs/design.md ("Code style") checked on the source text, so that a module
that grows past them, or an error message in another dialect, fails here rather than in review.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "tutorial_lib"
MAX_MODULE_LINES = 420  # figures (tutorial_lib/plots/) excepted
MAX_FUNCTION_LINES = 70
# The core: every public name of these modules is used by the library, the notebooks or the examples.
CORE_MODULES = (
    "geometry",
    "descriptor_registry",
    "descriptors",
    "laplacian",
    "penalties",
    "bounds",
    "losses",
    "weak_labels",
    "weak_label_files",
    "metrics",
    "schedules",
    "data/splits",
    "data/augment",
)

MODULES = sorted(LIBRARY.rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_module_is_short(path: Path) -> None:
    if "plots" in path.relative_to(LIBRARY).parts:
        pytest.skip("figures are long by nature")
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, (
        f"{_relative(path)}: expected <= {MAX_MODULE_LINES} lines, got {n}"
    )


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_functions_are_short(path: Path) -> None:
    tree = ast.parse(path.read_text())
    long = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert not long, f"{_relative(path)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def _message_text(node: ast.expr) -> str | None:
    """The literal text of a message expression (f-string holes become '{}'), None if not literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _message_text(node.left), _message_text(node.right)
        return None if left is None or right is None else left + right
    return None


def _value_error_names() -> set[str]:
    """ValueError and the library's subclasses of it (a CorruptFileError is a bad input too)."""
    names, classes = {"ValueError"}, []
    for path in MODULES:
        classes += [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for node in classes:
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if node.name not in names and bases & names:
                names.add(node.name)
                grew = True
    return names


VALUE_ERRORS = _value_error_names()


def _value_error_messages(path: Path) -> list[tuple[int, str]]:
    messages = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        func = node.exc.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if not name.endswith("Error") or not node.exc.args:
            continue
        text = _message_text(node.exc.args[0])
        if text is not None and name in VALUE_ERRORS:
            messages.append((node.lineno, text))
    return messages


DIALECT = re.compile(r"^[^\s:][^:]*: expected .+got ", re.DOTALL)


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_value_errors_speak_one_dialect(path: Path) -> None:
    """Every ValueError reads "name: expected X, got Y" (what was expected and what came)."""
    bad = [
        f"line {line}: {text!r}"
        for line, text in _value_error_messages(path)
        if not DIALECT.match(text)
    ]
    assert not bad, f"{_relative(path)}: messages not in the 'name: expected X, got Y' form: {bad}"


def test_value_error_subclasses_are_checked_too() -> None:
    assert {"ValueError", "CorruptFileError", "ChecksumMismatchError"} <= VALUE_ERRORS
    assert "FetchError" not in VALUE_ERRORS  # a RuntimeError: a failure, not a bad input


def test_dialect_check_catches_other_forms() -> None:
    assert DIALECT.match("margin: expected a number >= 0, got -1")
    assert not DIALECT.match("margin must be >= 0; got -1")
    assert not DIALECT.match("expected a number, got -1")


def _public_names(module: str) -> list[str]:
    tree = ast.parse((LIBRARY / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return [ast.literal_eval(e) for e in node.value.elts]
    return [  # no __all__: its functions and classes without a leading underscore
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    ]


def _users_text(module: str) -> str:
    """The library's, the notebooks' and the examples' sources as one text; in `module` itself,
    its code without the definitions' first lines and its `__all__` (a name listed or defined is
    not used)."""
    own = LIBRARY / f"{module}.py"
    body = re.sub(r"__all__ = \[.*?\]", "", own.read_text(), flags=re.S)
    body = re.sub(r"^(?:def|class) \w+|^[A-Z_]+(?:: [^=]+)? =", "", body, flags=re.M)
    paths = [p for p in MODULES if p != own] + sorted((ROOT / "notebooks").glob("*.py"))
    paths += sorted((ROOT / "examples").glob("*.py"))
    return "\n".join([body, *(p.read_text() for p in paths)])


@pytest.mark.parametrize("module", [m for m in CORE_MODULES if (LIBRARY / f"{m}.py").is_file()])
def test_core_public_names_are_used(module: str) -> None:
    """A public name of the core serves the library, the course or the examples, not only the tests."""
    text = _users_text(module)
    unused = [n for n in _public_names(module) if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not unused, f"tutorial_lib/{module}.py: public names used only by tests: {unused}"
