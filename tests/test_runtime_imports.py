"""The runtime must run on a Jetson without torch: importing it must not pull torch in."""

from __future__ import annotations

import subprocess
import sys

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
