"""The cart runtime needs no package outside the Jetson's list (tensorrt, pycuda, numpy, opencv, av,
pyyaml, onnxruntime): with msgspec (a typed-config library) and prometheus_client (an optional
extra) unimportable, the modules the runtime always loads import, and a config and a model manifest
load and are checked. Runs in a fresh interpreter; nothing else is mocked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from absent_packages import prelude

from edge_runtime.config import load_config
from edge_runtime.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "edge_runtime" / "configs" / "default.yaml"
MODEL = REPO / "edge_runtime" / "models" / "default" / "model.onnx"
ABSENT = ("msgspec", "prometheus_client")
MODULES = (
    "edge_runtime.cli",
    "edge_runtime.commands",
    "edge_runtime.config",
    "edge_runtime.manifest",
    "edge_runtime.pipeline.graph",
    "edge_runtime.pipeline.replay",
    "edge_runtime.pipeline.live",
    "edge_runtime.backends",
    "edge_runtime.backends.onnxruntime",
    "edge_runtime.backends.failsafe",
    "edge_runtime.sources.opener",
    "edge_runtime.render.overlay",
    "edge_runtime.sinks.writers",
    "edge_runtime.service.http_handler",
)
CODE = """
import importlib, json
for absent in {absent!r}:
    try:
        importlib.import_module(absent)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{{absent}} was importable: the test would prove nothing")
for module in {modules!r}:
    importlib.import_module(module)

from edge_runtime.config import build_config, load_config
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest

config = load_config({config!r})
manifest = load_manifest({model!r})
try:
    build_config({{"overlay": {{"alpha": 2}}}}, "c.yaml")
    error = None
except ConfigError as exc:
    error = str(exc)
print(json.dumps({{
    "alpha": config.overlay.alpha,
    "input": config.source.input,
    "sections": list(config.__struct_fields__),
    "manifest": manifest.to_dict(),
    "error": error,
    "loaded": sorted(m for m in sys.modules if m.partition(".")[0] in {absent!r}),
}}))
"""


def test_the_runtime_imports_and_loads_files_without_msgspec_or_prometheus_client():
    code = prelude(ABSENT) + CODE.format(
        absent=ABSENT, modules=list(MODULES), config=str(CONFIG), model=str(MODEL)
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    expected_config, expected_manifest = load_config(CONFIG), load_manifest(MODEL)
    assert out["alpha"] == expected_config.overlay.alpha and out["input"] == expected_config.source.input
    assert out["sections"] == list(expected_config.__struct_fields__)
    assert out["manifest"] == json.loads(json.dumps(expected_manifest.to_dict()))
    assert out["error"] == "c.yaml: config key 'overlay.alpha' must be a number in [0, 0.7], got 2"
    assert out["loaded"] == []
