"""Binder's environment: every runtime dependency of the package, from conda-forge, CPU-only torch."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
# conda-forge names where they differ from the package index's
CONDA_NAMES = {"torch": "pytorch-cpu", "matplotlib": "matplotlib-base", "simpleitk": "simpleitk"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(>=\s*[\w.]+)?")


def _dependencies() -> dict[str, str]:
    """pyproject's runtime dependencies: {conda name: lower bound}."""
    pyproject = (ROOT / "pyproject.toml").read_text()  # tomllib is Python 3.11+: read the block
    block = re.search(r"^dependencies = \[\n(.*?)^\]", pyproject, re.M | re.S).group(1)
    found = {}
    for requirement in re.findall(r'"([^"]+)"', block):
        name, bound = REQUIREMENT.match(requirement).groups()
        found[CONDA_NAMES.get(name.lower(), name.lower())] = (bound or "").replace(" ", "")
    return found


def _environment() -> dict[str, str]:
    """binder/environment.yml's dependencies: {name: version spec}."""
    listed = {}
    for line in (BINDER / "environment.yml").read_text().splitlines():
        match = re.match(r"^\s+-\s+([A-Za-z0-9_.-]+)\s*([<>=!].*)?$", line)
        if match:
            listed[match.group(1)] = (match.group(2) or "").strip()
    return listed


def test_every_runtime_dependency_is_in_the_binder_environment() -> None:
    listed = _environment()
    for name, bound in _dependencies().items():
        assert name in listed, f"binder/environment.yml: expected {name}, got {sorted(listed)}"
        assert listed[name] == bound, (
            f"{name}: expected {bound!r} as in pyproject, got {listed[name]!r}"
        )


def test_binder_takes_the_cpu_build_of_pytorch_from_conda_forge() -> None:
    text = (BINDER / "environment.yml").read_text()
    listed = _environment()
    assert "pytorch-cpu" in listed and "pytorch" not in listed and "torch" not in listed
    assert re.search(r"^channels:\n  - conda-forge\n(?!  -)", text, re.M)
    assert "://" not in text  # a channel by name, no address
    assert not (
        BINDER / "requirements.txt"
    ).exists()  # repo2docker would ignore it beside this file


def test_post_build_installs_the_package_without_its_dependencies() -> None:
    post_build = BINDER / "postBuild"
    assert post_build.stat().st_mode & 0o111, "binder/postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()
