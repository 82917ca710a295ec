"""The course's notebooks: each .ipynb is its jupytext .py, without outputs, with the skeleton pieces."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.py"))
EXPECTED = [
    "00_overview",
    "01_size_and_centroid",
    "02_spread_and_length",
    "03_constrained_optimisation",
    "04_training_with_descriptors",
    "04b_what_makes_it_work",
    "05_acdc",
    "06_promise12",
    "07_anatomical_priors",
    "08_going_further",
]


def _sync_module():
    spec = importlib.util.spec_from_file_location("notebook_sync", NOTEBOOKS / "sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ids(paths):
    return [p.stem for p in paths]


def test_every_source_has_its_notebook_and_the_reverse():
    sources = {p.stem for p in SOURCES}
    notebooks = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")}
    assert sources == notebooks, f"unpaired: {sorted(sources ^ notebooks)}"
    assert sources <= set(EXPECTED), f"unexpected notebooks: {sorted(sources - set(EXPECTED))}"


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_ipynb_matches_its_py(source: Path):
    sync = _sync_module()
    target = source.with_suffix(".ipynb")
    assert target.read_text(encoding="utf-8") == sync.expected_notebook(source), (
        f"{target.name} is out of date with {source.name}: run `python notebooks/sync.py`"
    )
    py_cells = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
    nb_cells = [(c.cell_type, c.source) for c in jupytext.read(target).cells]
    assert py_cells == nb_cells


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_no_outputs_committed(source: Path):
    nb = json.loads(source.with_suffix(".ipynb").read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {i} has outputs"
            assert cell["execution_count"] is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_skeleton(source: Path):
    sync = _sync_module()
    cells = jupytext.read(source).cells
    head = cells[0]
    assert head.cell_type == "markdown"
    title = head.source.splitlines()[0]
    assert title.startswith("# ") and source.stem[:2] in title, f"title: {title!r}"
    assert re.search(r"^\*[^*].+\*$", head.source, re.M), "a one-line promise in italics"
    badge = sync.colab_url(source.with_suffix(".ipynb").name)
    assert f"]({badge})" in head.source, f"Colab badge must point at {badge}"

    code = [c.source for c in cells if c.cell_type == "code"]
    install = code[0]
    assert "import tutorial_lib" in install and "except ImportError" in install
    assert sync.install_url() in install
    install_code = "\n".join(
        line for line in install.splitlines() if not line.lstrip().startswith("#")
    )
    assert "torch" not in install_code, "the install cell must never (re)install torch"

    text = "\n".join(code)
    assert 'FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"' in text
    assert "device = get_device()" in text
    assert not re.search(r"""["']cuda""", text), "use get_device(), never a literal 'cuda'"
    assert "assert " in text, "teaching facts are asserts"
    for cell in code:
        lines = [line for line in cell.splitlines() if line.strip() and not line.startswith(" ")]
        shows = bool(lines) and re.match(
            r"(plots\.plot_|widgets\.\w+_(figure|explorer)\()", lines[-1]
        )
        if shows or "_explorer(" in cell:
            assert "NBVAL_IGNORE_OUTPUT" in cell, (
                f"figure/widget cell without NBVAL_IGNORE_OUTPUT:\n{cell}"
            )


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_widget_cells_also_call_the_function(source: Path):
    code = "\n".join(c.source for c in jupytext.read(source).cells if c.cell_type == "code")
    for name in re.findall(r"widgets\.(\w+)_explorer\(", code):
        assert f"widgets.{name}_figure(" in code, f"{name}_explorer without a call of {name}_figure"


def test_badges_and_install_cells_point_at_the_project_repository():
    """The Colab badges open `github/<owner>/<name>/blob/main/notebooks/<file>` of the repository
    that pyproject.toml names, and the install cells install from it."""
    pyproject = (NOTEBOOKS.parent / "pyproject.toml").read_text()
    source = re.search(r'^Source = "([^"]+)"', pyproject, re.M)
    sync = _sync_module()
    assert source and source.group(1) == f"https://github.com/{sync.REPO}"
    assert sync.colab_url("00_overview.ipynb") == (
        f"https://colab.research.google.com/github/{sync.REPO}/blob/main/notebooks/00_overview.ipynb"
    )
    assert sync.install_url() == f"git+https://github.com/{sync.REPO}"


@pytest.mark.parametrize("name", ["05_acdc", "06_promise12"])
def test_gpu_notebooks_say_how_long_the_full_runs_take_on_colab(name: str):
    install = [c for c in jupytext.read(NOTEBOOKS / f"{name}.py").cells if c.cell_type == "code"][0]
    assert "Colab's GPU" in install.source, f"{name}: the install cell states the Colab GPU time"


@pytest.mark.parametrize("source", SOURCES, ids=_ids(SOURCES))
def test_opening_and_closing(source: Path):
    """Opens with what the learner will do, the prerequisites and the time; ends with a recap and
    a link to the next notebook."""
    cells = jupytext.read(source).cells
    head = cells[0].source
    assert re.search(r"^\*\*You will\*\*$(\n^$)?(\n^\* .+$(\n^  .+$)*){3,5}", head, re.M), (
        "the head cell lists 3 to 5 things after **You will**"
    )
    assert re.search(r"^\*\*Prerequisites:\*\* .+", head, re.M)
    assert re.search(r"^\*\*Time\*\* .*fast mode", head, re.M | re.S)
    closing = "\n".join([c.source for c in cells if c.cell_type == "markdown"][-2:])
    assert "## Recap" in closing, "a recap near the end"
    assert "**Next:**" in closing
    position = EXPECTED.index(source.stem)
    if position + 1 < len(EXPECTED):
        following = EXPECTED[position + 1]
        assert f"]({following}.ipynb)" in closing, f"**Next:** links to {following}.ipynb"
