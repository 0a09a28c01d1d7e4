"""A missing package is a one-line error, never a traceback or an empty command list: the torch
backend without torch says how to install it, and a runtime missing one of its own dependencies
names the module instead of offering no commands. The other stages' commands stay optional.

Each case runs the real `sonomap` entry (``edge_runtime.cli.main``) in a fresh interpreter where the
package is absent the way importlib reports it (ModuleNotFoundError from a meta path finder).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from absent_packages import prelude
from runtime_model import dark_onnx

from edge_runtime.manifest import load_manifest, save_manifest

RUN_CLI = """
from edge_runtime.cli import main
sys.exit(main({argv!r}))
"""


def sonomap_without(absent: set[str], *argv) -> subprocess.CompletedProcess:
    code = prelude(absent) + RUN_CLI.format(argv=[str(a) for a in argv])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _torchscript_file(folder: Path) -> Path:
    """A ``model.ts`` with its manifest (the torch backend's format); its bytes are never read: the
    backend needs torch before it opens the file."""
    model = folder / "model.ts"
    model.write_bytes(b"TorchScript stand-in")
    manifest = load_manifest(dark_onnx()).derive(format="torchscript", file=model.name)
    save_manifest(manifest, model, sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    return model


def test_the_torch_backend_without_torch_is_one_line_with_install_advice(tmp_path, busi_sample):
    images = tmp_path / "img"
    images.mkdir()
    shutil.copy(busi_sample / "images" / "malignant_002.png", images)
    model = _torchscript_file(tmp_path)
    run = sonomap_without(
        {"torch", "torchvision"},
        *("replay", images, "--model", model, "--backend", "torch", "--out", tmp_path / "o.mp4"),
    )
    err = run.stderr.strip()
    assert run.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "needs torch" in err and "pip install" in err and str(model) in err


def test_a_runtime_missing_its_own_dependency_names_the_module(tmp_path):
    run = sonomap_without({"yaml"}, "replay", "--help")  # PyYAML: the runtime reads every config with it
    err = run.stderr.strip()
    assert run.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "'yaml'" in err and "invalid choice" not in err


def test_a_missing_optional_stage_still_leaves_the_runtime_commands(tmp_path):
    run = sonomap_without({"onnx", "scipy", "torch"}, "--help")
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("replay", "live", "bench"):
        assert f"    {name} " in run.stdout
