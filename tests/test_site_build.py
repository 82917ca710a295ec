"""The course site (docs/build_site.py) on a tiny repository: it renders a notebook with its outputs
and its widget state, pins the install cell to the commit, and refuses to publish when a cell
fails, an internal link is broken or an image is missing (OUT then keeps the earlier site)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

for _name in ("sphinx", "myst_nb", "autodoc2", "sphinx_book_theme", "nbclient"):
    pytest.importorskip(_name, reason=f"the site needs {_name}: pip install -e '.[site]'")

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _build_module():
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "docs" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site = _build_module()


def _notebook(*cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_markdown_cell("# 00 · Tiny\n\n*A tiny chapter.*")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    return nbformat.writes(nb)


INSTALL = f'url = "git+https://github.com/{site.repository()}"'
GOOD_CELLS = (
    INSTALL,
    "# NBVAL_IGNORE_OUTPUT\nprint('six times seven is', 6 * 7)",
    "# NBVAL_SKIP\nraise RuntimeError('this cell needs the real data')",
    "import ipywidgets\nipywidgets.IntSlider(value=3, description='tiny slider')",
)


def _repository(root: Path, *, readme: str = "", method: str = "", cells=GOOD_CELLS) -> Path:
    """A repository with the folders the site reads: README, docs/, notebooks/, tutorial_lib/."""
    (root / "docs").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "tutorial_lib").mkdir()
    (root / "README.md").write_text(f"# Tiny course\n\nSee [the method](docs/method.md).\n{readme}")
    (root / "docs" / "method.md").write_text(f"# The method\n\nA page.\n{method}")
    (root / "tutorial_lib" / "__init__.py").write_text(
        '"""A tiny library."""\n\n\ndef answer() -> int:\n    """`6 * 7`."""\n    return 42\n'
    )
    if cells:
        (root / "notebooks" / "00_tiny.ipynb").write_text(_notebook(*cells))
    return root


def _build(root: Path, out: Path) -> Path:
    return site.build_site(out, root=root, commit=COMMIT, runs=root / "runs", log=lambda _: None)


# the smallest valid PNG (1x1), as the README's figures under docs/figures/
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = _repository(
        tmp_path_factory.mktemp("good"), readme="\n![a figure](docs/figures/sweep.png)\n"
    )
    (root / "docs" / "figures").mkdir()
    (root / "docs" / "figures" / "sweep.png").write_bytes(PNG)
    return _build(root, root / "site")


def test_the_site_has_the_readme_the_notebook_with_outputs_and_the_api(built: Path):
    assert "Tiny course" in (built / "index.html").read_text()
    page = (built / "notebooks" / "00_tiny.html").read_text()
    assert "six times seven is 42" in page  # the cell ran and its output is on the page
    assert "application/vnd.jupyter.widget-state+json" in page  # the slider's saved state
    assert f"git+https://github.com/{site.repository()}@{COMMIT}" in page  # pinned install
    assert "NBVAL" not in page and "needs the real data" in page  # markers gone, skipped cell kept
    assert "Traceback" not in page  # ... and not run
    api = built / "api" / "tutorial_lib" / "tutorial_lib.html"
    assert "A tiny library." in api.read_text()
    assert (built / "docs" / "method.html").is_file()
    assert "sweep.png" in (built / "index.html").read_text()  # a figure of docs/figures/ shown


def test_a_cell_error_stops_the_build(tmp_path: Path):
    root = _repository(tmp_path, cells=("raise RuntimeError('a broken cell')",))
    with pytest.raises(site.SiteBuildError, match=r"(?s)00_tiny\.ipynb.*a broken cell"):
        _build(root, tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_a_broken_link_or_a_missing_image_stops_the_build_and_keeps_the_earlier_site(
    tmp_path: Path, built: Path
):
    out = tmp_path / "site"
    site.publish(_copy(built, tmp_path / "earlier"), out)
    before = (out / "index.html").read_text()
    root = _repository(
        tmp_path / "repo",
        readme="[gone](docs/missing.md)\n",
        method="![a figure](no_such_figure.png)\n",
        cells=(),
    )
    with pytest.raises(site.SiteBuildError) as stopped:
        _build(root, out)
    assert "docs/missing.md" in str(stopped.value)  # each is reported (Sphinx --keep-going)
    assert "no_such_figure.png" in str(stopped.value)
    assert (out / "index.html").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "site"]  # no partial left


def test_out_must_be_missing_empty_or_an_earlier_site(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="out: expected a missing or empty folder"):
        site.check_out(tmp_path)
    site.check_out(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    site.check_out(tmp_path / "empty")


def test_pin_install_pins_and_repins():
    url = "git+https://github.com/o/n"
    assert site.pin_install(f'["{url}"]', "o/n", "abc") == f'["{url}@abc"]'
    assert site.pin_install(f'"{url}@main"', "o/n", "abc") == f'"{url}@abc"'
    assert site.pin_install('"git+https://github.com/o/other"', "o/n", "abc").endswith('other"')


def _copy(src: Path, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, dest))
