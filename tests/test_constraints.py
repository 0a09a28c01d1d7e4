"""constraints.txt pins the environment the tests and golden frames were checked with: every package
the project depends on is pinned there, and the test environment holds exactly those versions."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pinned_versions import pins

tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib to read pyproject.toml")

REPO = Path(__file__).resolve().parent.parent
# Pinned elsewhere or not installable here: torch/torchvision in the Makefile (local wheels), TensorRT
# and its friends come from NVIDIA's index on the cart only.
NOT_PINNED_HERE = {"torch", "torchvision", "tensorrt", "pycuda", "torch-tensorrt"}


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {canonicalize_name(Requirement(s).name) for s in specs}


def test_every_dependency_is_pinned():
    missing = declared() - set(pins()) - NOT_PINNED_HERE
    assert not missing, f"add to constraints.txt (the version the tests pass with): {sorted(missing)}"


def test_the_test_environment_has_the_pinned_versions():
    wrong = {}
    for name, version in pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "nothing"  # a pin nothing needs any more is stale
        if installed != version:
            wrong[name] = f"{installed} installed, {version} pinned"
    assert not wrong, f"the venv is not the pinned one (make install): {wrong}"
