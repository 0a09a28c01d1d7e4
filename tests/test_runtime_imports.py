"""The runtime must run on a Jetson without torch: importing it must not pull torch in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME_MODULES = [
    "edge_runtime.cli",
    "edge_runtime.commands",
    "edge_runtime.config",
    "edge_runtime.sources.opener",
    "edge_runtime.roi",
    "edge_runtime.render.overlay",
    "edge_runtime.sinks.writers",
    "edge_runtime.pipeline.graph",
    "edge_runtime.pipeline.replay",
    "edge_runtime.pipeline.live",
    "edge_runtime.backends.failsafe",
    "edge_runtime.sources.synthetic",
    "edge_runtime.tools.bench",
    "edge_runtime.stats",
    "edge_runtime.backends",
    "edge_runtime.backends.onnxruntime",
    "edge_runtime.backends.torch",
]


def test_runtime_modules_do_not_import_torch_or_other_stages():
    code = (
        "import importlib, sys\n"
        f"for m in {RUNTIME_MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchvision', 'training', 'registration', 'export'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"runtime imported {out.stdout.strip()}"


def test_cli_help_lists_runtime_commands():
    out = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0
    for name in ("replay", "live", "bench", "make-clip"):
        assert name in out.stdout
    for name in ("replay", "live", "bench", "make-clip"):
        sub = subprocess.run(
            [sys.executable, "-m", "edge_runtime.cli", name, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sub.returncode == 0 and "usage:" in sub.stdout


def test_a_replay_run_does_not_import_torch(tmp_path):
    """Not only imports: building the pipeline and running the ONNX Runtime backend stays torch-free."""
    from runtime_model import dark_onnx

    code = (
        "import sys\n"
        "from edge_runtime.config import build_config\n"
        "from edge_runtime.pipeline.graph import Pipeline\n"
        f"cfg = build_config({{'source': {{'input': {str(tmp_path / 'img')!r}}}, 'roi': {{'rect': 'full'}},"
        f" 'inference': {{'model': {str(dark_onnx())!r}}}, 'sinks': {{'video': {str(tmp_path / 'o.mp4')!r}}}}})\n"
        "s = Pipeline(cfg).run()\n"
        "assert s['frames'] == 2, s\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'training', 'export'))))\n"
    )
    import shutil

    (tmp_path / "img").mkdir()
    for name in ("malignant_002.png", "benign_041.png"):
        shutil.copy(
            __import__("pathlib").Path(__file__).parent / "data" / "busi" / "images" / name, tmp_path / "img"
        )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"a replay imported {out.stdout.strip()}"


OTHER_STAGES = ("training", "registration", "export")
# What a Jetson gives the runtime (the project's rule): these distributions and what they require.
# tensorrt and pycuda are not installable here; the ONNX Runtime path is what these commands load.
JETSON_PACKAGES = ("numpy", "opencv-python", "av", "pyyaml", "onnxruntime", "tensorrt", "pycuda")


def allowed_distributions() -> set[str]:
    """JETSON_PACKAGES and, transitively, the distributions they require (installed ones only)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo, seen = [canonicalize_name(n) for n in JETSON_PACKAGES], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


@pytest.mark.parametrize("command", ["replay", "live", "bench"])
def test_a_runtime_command_loads_no_other_stage(tmp_path, command):
    """`sonomap replay/live/bench` through the real CLI entry (`edge_runtime.cli.main`, as the console
    script runs it): only the runtime's subcommands are loaded, so no training, registration or
    export module is imported, not even their command wiring; and every third-party package it
    loads is one a Jetson has (:data:`JETSON_PACKAGES`, or what they require)."""
    from runtime_model import dark_onnx

    images = tmp_path / "img"
    images.mkdir()
    shutil.copy(Path(__file__).parent / "data" / "busi" / "images" / "malignant_002.png", images)
    model = ("--model", str(dark_onnx()))
    clip = tmp_path / "clip.mp4"
    if command == "bench":  # bench replays a video
        subprocess.run(
            [sys.executable, "-m", "edge_runtime.cli", "make-clip", "--out", str(clip), "--frames", "2"]
            + ["--size", "64x36", "--noise", "0"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    argv = {
        "replay": ["replay", str(images), *model, "--roi", "full"],
        "live": ["live", "--source", "synthetic", "--headless", "--duration", "1", *model],
        "bench": ["bench", str(clip), *model, "--frames", "2", "--live-seconds", "0"],
    }[command]
    code = (
        "import sys\n"
        "at_start = set(sys.modules)  # what the interpreter's site set-up loaded (.pth hooks)\n"
        "from edge_runtime.cli import main\n"
        f"code = main({argv!r})\n"
        "ours = set(sys.modules) - at_start  # before this check imports anything itself\n"
        "from importlib import metadata\n"
        "from packaging.utils import canonicalize_name\n"
        "tops = metadata.packages_distributions()\n"
        "dists = {canonicalize_name(d) for m in ours for d in tops.get(m.split('.')[0], [])}\n"
        "print('DISTRIBUTIONS:', ','.join(sorted(dists - {'sonomap'})), file=sys.stderr)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {OTHER_STAGES!r})\n"
        "print('OTHER STAGES:', ','.join(bad), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    *_, dist_line, stage_line = out.stderr.strip().splitlines()
    assert stage_line == "OTHER STAGES:", out.stderr[-3000:]
    loaded = set(filter(None, dist_line.removeprefix("DISTRIBUTIONS:").strip().split(",")))
    assert loaded and not loaded - allowed_distributions(), (
        f"not on a Jetson: {loaded - allowed_distributions()}"
    )


def test_help_still_lists_every_stage_and_a_stage_command_still_runs():
    out = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    for name in ("replay", "train", "register", "export", "cases"):  # one of each stage
        assert f"    {name} " in out.stdout, out.stdout
    sub = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "-v", "register", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sub.returncode == 0 and sub.stdout.startswith("usage: sonomap register"), sub.stderr
