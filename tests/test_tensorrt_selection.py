"""How the runtime config reaches the TensorRT backend: ``backend: auto`` passes ``inference.fp16``
as ``backend: tensorrt`` does, ``device: cpu`` never gets TensorRT, ``input_size`` (which TensorRT
does not apply) is refused, and an explicit engine reports the precision it was built with.

TensorRT and pycuda cannot be installed here: "installed" means ``auto`` finds both and the
backend's start-up check gets the stand-in module of tests/trt_standins.py.
"""

from __future__ import annotations

import pytest
from export_fixtures import copy_model, shared_tiny_onnx
from trt_standins import runtime_module

import edge_runtime.backends as backends
from edge_runtime.backends import backend_from_config, choose_backend, create_backend
from edge_runtime.config_schema import InferenceConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest
from edge_runtime.tensorrt import modules
from edge_runtime.tensorrt.cache import write_engine
from edge_runtime.tensorrt.engines import plan_engine
from edge_runtime.tensorrt.key import GpuInfo

ORIN = GpuInfo("Orin", "8.7", 16)


@pytest.fixture
def installed(monkeypatch):
    """As on a cart with TensorRT and pycuda installed."""
    lean = pytest.importorskip("tensorrt_lean", reason="tensorrt-lean-cu13 not installed")
    monkeypatch.setattr(backends, "_has", lambda module: True)
    monkeypatch.setattr(modules, "import_tensorrt", lambda: runtime_module(lean))


@pytest.fixture(scope="module")
def model():
    return shared_tiny_onnx()


def _from_config(model, **inference):
    return backend_from_config(InferenceConfig(**inference), model, load_manifest(model))


@pytest.mark.parametrize("fp16, precision", [(False, "fp32"), (True, "fp16")])
def test_auto_passes_the_configured_precision_to_tensorrt(installed, model, fp16, precision):
    for name in ("auto", "tensorrt"):
        backend = _from_config(model, backend=name, fp16=fp16)
        assert backend.name == "tensorrt" and backend.precision == precision, name
        backend.close()


def test_device_cpu_never_gets_tensorrt(installed, model):
    backend = _from_config(model, backend="auto", device="cpu")
    assert backend.name == "onnxruntime" and "cpu" in backend.selected_because
    backend.close()
    assert choose_backend(model, "auto")[0] == "tensorrt"
    with pytest.raises(ConfigError, match=r"inference\.device: cpu.*TensorRT engine"):
        choose_backend("model.engine", "cpu")
    with pytest.raises(ConfigError, match=r"inference\.device: cpu.*backend tensorrt"):
        _from_config(model, backend="tensorrt", device="cpu")


@pytest.mark.parametrize("name", ["auto", "tensorrt"])
def test_tensorrt_refuses_input_size_it_would_not_apply(installed, model, name):
    with pytest.raises(ConfigError, match=r"inference\.input_size.*TensorRT"):
        _from_config(model, backend=name, input_size=(512, 512))


@pytest.mark.parametrize("built, configured", [("fp32", True), ("fp16", False)])
def test_an_explicit_engine_reports_the_precision_it_was_built_with(tmp_path, built, configured):
    onnx = copy_model(shared_tiny_onnx(), tmp_path / "m")
    plan = plan_engine(onnx, tmp_path / "cache", built, "10.3.0.30", ORIN)
    write_engine(plan.path, b"PLAN", plan.key, plan.manifest, onnx.name)
    backend = create_backend("tensorrt", plan.path, load_manifest(plan.path), fp16=configured)
    assert backend.precision == built and backend.describe()["precision"] == built
    backend.close()
