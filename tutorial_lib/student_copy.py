"""The student copy of the course: the notebooks with no way to the exercises' reference solutions.

`write_student_copy(out_dir)` writes every `NN_name.ipynb` of the course (default: `notebooks/` of
the clone this library runs from) into `out_dir`, each changed by `student_notebook`:

- the exercises' checks import `check_without_solution as check`: an untouched stub is told
  "not yet" with a first step, and the reference solution is never run;
- the sentences that point at the reference solutions say what the check does instead;
- the Colab badge, which opens the full notebooks, is left out; outputs are cleared.

It refuses, before writing anything, a notebook whose exercise cell is not its stub (a solution
pasted into the course would reach the learners) or whose text still names the solutions after
the changes above (a new sentence this module does not know). The copy is written to a temporary
folder beside `out_dir`, then moved into place; `out_dir` must be missing or empty, or, with
`force`, an earlier student copy (marked by its `.student-copy.json`).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from tutorial_lib import __version__

MARKER = ".student-copy.json"
STUDENT_IMPORT = "from tutorial_lib.exercises import check_without_solution as check"
_COURSE_IMPORT = re.compile(r"^from tutorial_lib\.exercises import check$", re.MULTILINE)


def _words(text: str) -> re.Pattern[str]:
    """`text` as a pattern that matches it however its lines were wrapped."""
    return re.compile(r"\s+".join(re.escape(word) for word in text.split()))


_POINTER = _words(
    "While the stub is untouched, the check runs the reference solution instead and says so. "
    "The reference solutions are in `tutorial_lib/solutions.py`: open it once you have tried."
)
_STUDENT_POINTER = (
    'While the stub is untouched, the check says "not yet" and suggests a first step; it never '
    "shows an answer."
)
_COLAB_BADGE = re.compile(r"\s*\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
_LEAKS = (  # what no cell of the copy may hold once it is made
    re.compile(r"solutions\.py"),
    re.compile(r"tutorial_lib\.solutions|import\s+solutions"),
    re.compile(r"reference\s+solution", re.IGNORECASE),
    re.compile(r"import\s+tutorial_lib\.exercises|exercises\.check\b"),
    re.compile(r"tutorial_lib\.exercises\s+import\s+(?!check_without_solution as check$).*$", re.M),
    re.compile(r"colab\.research\.google\.com/github"),
)


def default_source() -> Path:
    """`notebooks/` of the clone this library is imported from."""
    return Path(__file__).resolve().parents[1] / "notebooks"


def notebook_paths(src: str | os.PathLike) -> list[Path]:
    """The course's notebooks in `src`: `NN_name.ipynb`, in order."""
    found = sorted(Path(src).glob("[0-9][0-9]*_*.ipynb"))
    if not found:
        raise FileNotFoundError(
            f"--src: expected the course's NN_name.ipynb notebooks in {src} (the notebooks/ folder "
            "of a clone of the course), got none"
        )
    return found


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _set_text(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def _parse(code: str, where: str) -> ast.Module:
    """A code cell's syntax tree; IPython magics (`%...`, `!...`) are read as comments."""
    lines = [
        "#" + line if line.lstrip().startswith(("%", "!")) else line for line in code.split("\n")
    ]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError as error:
        raise ValueError(f"{where}: expected Python code, got a syntax error ({error})") from None


def _is_stub(node: ast.stmt) -> bool:
    """`def f(...): raise NotImplementedError` (or `return ...`), or `NAME = ...`."""
    if isinstance(node, ast.Assign):
        return isinstance(node.value, ast.Constant) and node.value.value is Ellipsis
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            body = body[1:]  # a docstring
    if len(body) != 1:
        return False
    only = body[0]
    if isinstance(only, ast.Raise):
        exc = only.exc.func if isinstance(only.exc, ast.Call) else only.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    value = only.value if isinstance(only, (ast.Return, ast.Expr)) else None
    return isinstance(value, ast.Constant) and value.value is Ellipsis


def _definitions(tree: ast.Module) -> dict[str, ast.stmt]:
    """The functions and the plain `NAME = value` assignments a cell defines, by name."""
    found: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node
    return found


def _checked(tree: ast.Module) -> list[tuple[str, str]]:
    """The `check("NN.k", NAME)` calls of a cell: (exercise id, name of the answer)."""
    calls = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "check"
        ):
            first, answer = (node.args + [None, None])[:2]
            if isinstance(first, ast.Constant) and isinstance(answer, ast.Name):
                calls.append((str(first.value), answer.id))
    return calls


def exercise_stubs(nb: dict, where: str) -> list[str]:
    """The exercise ids that `nb` checks; a ValueError unless each answer is still its stub."""
    defined: dict[str, ast.stmt] = {}
    ids = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tree = _parse(_text(cell), f"{where}, cell {i}")
        for exercise_id, name in _checked(tree):
            node = defined.get(name)
            if node is None or not _is_stub(node):
                got = "no definition above it" if node is None else "an answer"
                raise ValueError(
                    f"{where}, cell {i}, exercise {exercise_id}: expected the stub ({name} raising "
                    f"NotImplementedError, or {name} = ...), got {got}: a solution must not reach "
                    "the student copy"
                )
            ids.append(exercise_id)
        defined.update(_definitions(tree))
    return ids


def student_notebook(nb: dict, where: str) -> tuple[dict, list[str]]:
    """(the student version of notebook `nb`, the exercise ids it checks); see the module's doc."""
    ids = exercise_stubs(nb, where)
    student = copy.deepcopy(nb)
    for i, cell in enumerate(student.get("cells", [])):
        text = _text(cell)
        if cell.get("cell_type") == "code":
            text = _COURSE_IMPORT.sub(STUDENT_IMPORT, text)
            cell["outputs"], cell["execution_count"] = [], None
        elif cell.get("cell_type") == "markdown":
            text = _COLAB_BADGE.sub("", _POINTER.sub(_STUDENT_POINTER, text)).rstrip()
        _set_text(cell, text)
        for leak in _LEAKS:
            found = leak.search(text)
            if found:
                raise ValueError(
                    f"{where}, cell {i}: expected no way to the reference solutions in the student "
                    f"copy, got {found.group(0)!r}; reword the notebook, or teach "
                    "tutorial_lib/student_copy.py this sentence"
                )
    return student, ids


def _check_target(out: Path, src: Path, force: bool) -> None:
    """Refuse an `out_dir` that is a file, holds the course, or holds files that are not a copy."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"OUT_DIR: expected a folder or nothing at {out}, got a file")
    if out.resolve() == src.resolve() or out.resolve() in src.resolve().parents:
        raise ValueError(f"OUT_DIR: expected a folder apart from the course's {src}, got {out}")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise FileExistsError(
            f"OUT_DIR: expected a missing or empty folder, got {out} holding files; pass --force "
            "to replace an earlier student copy"
        )
    if not (out / MARKER).is_file():
        raise FileExistsError(
            f"OUT_DIR: expected an earlier student copy (with its {MARKER}) for --force to "
            f"replace, got {out} holding other files; choose another folder"
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _move_into_place(tmp: Path, out: Path) -> None:
    """`tmp` becomes `out`; an earlier copy in `out` is moved aside first, then removed."""
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    elif out.is_dir():
        out.rmdir()
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old)


def write_student_copy(
    out_dir: str | os.PathLike, src: str | os.PathLike | None = None, *, force: bool = False
) -> dict[str, list[str]]:
    """Write the student copy of the notebooks in `src` into `out_dir`: {notebook: exercise ids}."""
    src = Path(src) if src is not None else default_source()
    out = Path(out_dir)
    paths = notebook_paths(src)
    _check_target(out, src, force)
    copies = {}
    for path in paths:  # every notebook is made and checked before anything is written
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: expected a notebook (JSON), got {error}") from None
        copies[path.name] = student_notebook(nb, str(path))
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.absolute().parent))
    try:
        tmp.chmod(0o777 & ~_umask())  # a folder as mkdir makes it, not mkdtemp's private one
        for name, (nb, _) in copies.items():
            text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
            (tmp / name).write_text(text, encoding="utf-8")
        made = {"made_by": "python -m tutorial_lib student-copy", "version": __version__}
        made["exercises"] = {name: ids for name, (_, ids) in copies.items()}
        (tmp / MARKER).write_text(json.dumps(made, indent=1) + "\n", encoding="utf-8")
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {name: ids for name, (_, ids) in copies.items()}
