"""A command whose extra is not installed ends in one line naming the module and the extra.

Every stage's commands are listed on any install; `sonomap train` on a cart with the runtime alone
reaches ``import torch``. Runs the real CLI in a fresh interpreter with the package absent
(:mod:`absent_packages`), and checks the module -> extra table against pyproject.toml and the
installed distributions. Outputs: none. Files: read only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from absent_packages import prelude

from edge_runtime.extras import EXTRA_OF_MODULE, missing_module_advice

REPO = Path(__file__).resolve().parents[1]
CLI = "import sys\nfrom edge_runtime.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def _sonomap_without(absent: set[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", prelude(absent) + CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_train_without_torch_is_one_line_naming_the_extra(tmp_path):
    run = _sonomap_without(
        {"torch"},
        "train",
        "--config",
        "configs/cpu-fast.yaml",
        "--data",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines() == [
        "sonomap train: error: this command needs module 'torch', which is not installed: "
        "pip install 'sonomap[train]'"
    ]


def test_debug_keeps_the_traceback(tmp_path):
    args = ("--config", "configs/cpu-fast.yaml", "--data", str(tmp_path), "--out", str(tmp_path / "o"))
    run = _sonomap_without({"torch"}, "--debug", "train", *args)
    assert run.returncode == 2, run.stderr[-2000:]  # the status without --debug: a traceback is added only
    assert "Traceback" in run.stderr and "ModuleNotFoundError" in run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith("sonomap train: error: this command needs module 'torch'")
    )


def test_a_module_of_no_extra_asks_for_a_reinstall():
    advice = missing_module_advice(ModuleNotFoundError("No module named 'yaml'", name="yaml"))
    assert (
        advice
        == "module 'yaml' is not installed; reinstall sonomap with its dependencies (pip install sonomap)"
    )


def _extras() -> dict[str, set[str]]:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in Python 3.11+")
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {
        extra: {re.split(r"[<>=!\[; ]", req, maxsplit=1)[0].lower() for req in reqs}
        for extra, reqs in table.items()
    }


def test_each_module_s_extra_lists_the_distribution_that_installs_it():
    extras, installed = _extras(), packages_distributions()
    checked = []
    for module, extra in EXTRA_OF_MODULE.items():
        assert extra in extras, f"{module}: no extra {extra!r} in pyproject.toml"
        for distribution in installed.get(module, []):
            if distribution.lower() in extras[extra]:
                checked.append(module)
                break
        else:
            if module in installed:
                pytest.fail(f"{module} is installed by {installed[module]}, none of them in [{extra}]")
    assert len(checked) >= 15, checked  # most extras are installed here: the check is not vacuous
