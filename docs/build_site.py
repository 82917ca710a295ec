"""Build the course site: README as the landing page, every notebook run in fast mode with its
outputs, docs/*.md, and one API page per `tutorial_lib` module made from its docstrings.

    python docs/build_site.py OUT [--commit SHA] [--runs DIR] [--timeout S]

1. stage: copy README.md (as index.md), docs/*.md and notebooks/*.ipynb to a temporary folder,
   each notebook's install cell pinned to the commit (`git+https://github.com/OWNER/NAME@SHA`),
   the `# NBVAL_...` test markers dropped, and `# NBVAL_SKIP` cells (real data, a GPU) left unrun;
2. execute: run each notebook there in order (nbclient, TUTORIAL_FAST=1, widget state saved, the
   library of this checkout on PYTHONPATH);
3. render: Sphinx with myst-nb, sphinx-autodoc2 (one API page per module, from the source) and
   sphinx-book-theme (docs/site/conf.py), every warning an error;
4. move the finished site to OUT (missing, empty, or an earlier site).

A cell error, a broken internal link or a missing image stops the build with exit 1, and OUT is
left as it was. Needs the `site` extra: `pip install -e ".[site]"`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "docs" / "site"
DOC_ORDER = ("method", "teaching", "design")  # the guides, in the order the menu shows them
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
NBVAL_MARKER = re.compile(r"# NBVAL_\w+")  # the notebook tests' cell markers: not for readers


class SiteBuildError(RuntimeError):
    """The site cannot be built as it stands: a cell failed, or Sphinx warned."""


def repository() -> str:
    """`owner/name` on GitHub: the constant the notebooks' badges are made from (notebooks/sync.py)."""
    spec = importlib.util.spec_from_file_location("notebook_sync", ROOT / "notebooks" / "sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.REPO


def current_commit(root: Path) -> str | None:
    """The commit being built: $GITHUB_SHA in a workflow, else `git rev-parse HEAD`, else None."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def pin_install(text: str, repo: str, commit: str) -> str:
    """`text` with the install URL `git+https://github.com/<repo>` pinned to `@commit`."""
    url = re.escape(f"git+https://github.com/{repo}")
    return re.sub(
        rf"{url}(?:@[\w.\-/]+)?(?=[\"'\s]|$)", f"git+https://github.com/{repo}@{commit}", text
    )


def stage_notebook(source: Path, dest: Path, *, repo: str, commit: str | None) -> None:
    """Copy a notebook for the site: the install URL pinned to `commit`; the test markers'
    lines (`# NBVAL_...`) dropped, and a `# NBVAL_SKIP` cell (real data, a GPU) left unrun."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        if any(line.strip() == "# NBVAL_SKIP" for line in lines):
            cell.metadata.setdefault("tags", []).append("skip-execution")  # nbclient skips it
        text = "\n".join(line for line in lines if not NBVAL_MARKER.fullmatch(line.strip()))
        cell.source = pin_install(text, repo, commit) if commit else text
    nbformat.write(nb, dest)


def _toctree(caption: str, entries: list[str]) -> str:
    body = "\n".join(entries)
    return f"\n```{{toctree}}\n:hidden:\n:caption: {caption}\n\n{body}\n```\n"


def stage_sources(root: Path, stage: Path, *, repo: str, commit: str | None) -> list[Path]:
    """Copy the pages to `stage` (same relative paths as in `root`); return the staged notebooks."""
    (stage / "docs").mkdir(parents=True)
    (stage / "notebooks").mkdir()
    guides = sorted(
        (root / "docs").glob("*.md"),
        key=lambda p: (DOC_ORDER.index(p.stem) if p.stem in DOC_ORDER else len(DOC_ORDER), p.stem),
    )
    for folder in ("docs", "notebooks"):
        for image in sorted((root / folder).glob("*")):
            if image.suffix.lower() in IMAGE_SUFFIXES or image in guides:
                shutil.copy2(image, stage / folder / image.name)
    for image in sorted((root / "docs" / "figures").rglob("*")):  # figures the pages show
        if image.suffix.lower() in IMAGE_SUFFIXES:
            target = stage / image.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(image, target)
    notebooks = []
    for source in sorted((root / "notebooks").glob("[0-9][0-9]*_*.ipynb")):
        stage_notebook(source, stage / "notebooks" / source.name, repo=repo, commit=commit)
        notebooks.append(stage / "notebooks" / source.name)
    readme = (root / "README.md").read_text(encoding="utf-8")
    readme += _toctree("The course", [f"notebooks/{p.stem}" for p in notebooks])
    readme += _toctree("Guides", [f"docs/{p.stem}" for p in guides])
    readme += _toctree("Reference", ["api/tutorial_lib/tutorial_lib"])
    (stage / "index.md").write_text(readme, encoding="utf-8")  # beside docs/: links still work
    return notebooks


def kernel_env(root: Path, runs: Path) -> dict[str, str]:
    """The notebooks' environment: fast mode, this checkout's library first, runs in `runs`."""
    env = dict(os.environ)
    env["TUTORIAL_FAST"] = "1"
    env["TUTORIAL_RUNS"] = str(runs)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    return env


def execute_notebook(path: Path, env: dict[str, str], timeout: int) -> None:
    """Run every cell of `path` in its folder and save the outputs and the widget state in place."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        raise SiteBuildError(f"notebooks/{path.name}: a cell failed\n{error}") from None
    nbformat.write(nb, path)


def run_sphinx(stage: Path, html: Path, env: dict[str, str]) -> None:
    """Render `stage` into `html`; any warning (broken link, missing image, ...) is an error."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q"]
    command += ["-c", str(CONF_DIR), "-d", str(stage / ".doctrees"), str(stage), str(html)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SiteBuildError(f"Sphinx stopped (every warning is an error):\n{done.stderr.strip()}")


def check_out(out: Path) -> None:
    """OUT must be missing, an empty folder, or an earlier site (Sphinx's `.buildinfo` in it)."""
    if not out.exists() or (
        out.is_dir() and (not any(out.iterdir()) or (out / ".buildinfo").is_file())
    ):
        return
    raise ValueError(f"out: expected a missing or empty folder or an earlier site, got {out}")


def publish(html: Path, out: Path) -> None:
    """Put the finished `html` at `out`: the earlier site renamed aside, the new one renamed in."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.replace(old)
    html.replace(out)
    shutil.rmtree(old, ignore_errors=True)


def build_site(
    out: Path,
    *,
    root: Path = ROOT,
    commit: str | None = None,
    runs: Path | None = None,
    timeout: int = 900,
    log: Callable[[str], None] = print,
) -> Path:
    """Build the site of `root` into `out` (see the module's docstring); return `out`."""
    out = Path(out).absolute()
    check_out(out)
    commit = commit or current_commit(root)
    repo = repository()
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="site-") as tmp:
            stage = Path(tmp) / "src"
            notebooks = stage_sources(root, stage, repo=repo, commit=commit)
            env = kernel_env(root, Path(runs).absolute() if runs else Path(tmp) / "runs")
            env.update(SITE_REPO=repo, SITE_COMMIT=commit or "main")
            env["SITE_LIBRARY"] = os.path.relpath(root / "tutorial_lib", stage)
            for path in notebooks:
                began = time.perf_counter()
                execute_notebook(path, env, timeout)
                log(f"executed notebooks/{path.name} in {time.perf_counter() - began:.0f} s")
            began = time.perf_counter()
            run_sphinx(stage, partial, env)
            log(f"rendered {len(notebooks)} notebooks in {time.perf_counter() - began:.0f} s")
        publish(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log(f"site written to {out} in {time.perf_counter() - start:.0f} s (commit {commit})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the site's folder (missing, empty or a site)")
    parser.add_argument("--commit", help="the commit to pin the install cells to (default: HEAD)")
    parser.add_argument("--runs", type=Path, help="training runs to reuse (default: a new folder)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    args = parser.parse_args(argv)
    try:
        build_site(args.out, commit=args.commit, runs=args.runs, timeout=args.timeout)
    except ValueError as error:
        print(f"build_site: {error}", file=sys.stderr)
        return 2
    except SiteBuildError as error:
        print(f"build_site: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
