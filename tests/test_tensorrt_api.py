"""TensorRT API surface: every TensorRT call sonomap makes exists in the installed bindings.

``tensorrt_lean`` (tensorrt-lean-cu13, runtime classes only) installs here and has the same
runtime classes as the full package, so the backend's calls are checked against it. The
builder calls need the full ``tensorrt`` module: checked when present, skipped otherwise.
Nothing here runs an engine (no GPU); `sonomap selfcheck` does that on the target.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.backends.tensorrt import TensorRTBackend
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.manifest import load_manifest
from edge_runtime.tensorrt.engine_io import EXPECTED_IO, check_engine_io
from edge_runtime.tensorrt.key import STRONGLY_TYPED_FROM, parse_version

# (class, methods) the backend, its engine loader and engines.load_engine use (edge_runtime/backends/tensorrt.py,
# edge_runtime/tensorrt/engine_loader.py).
RUNTIME_CALLS = {
    "Runtime": ["deserialize_cuda_engine"],
    "ICudaEngine": [
        "num_io_tensors",
        "get_tensor_name",
        "get_tensor_mode",
        "get_tensor_dtype",
        "get_tensor_profile_shape",
        "get_tensor_shape",  # the fixed input shape when the profile is empty (static engine)
        "create_execution_context",
    ],
    "IExecutionContext": ["set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3"],
}
# What edge_runtime/tensorrt/build.py uses.
BUILDER_CALLS = {
    "Builder": [
        "create_network",
        "create_builder_config",
        "create_optimization_profile",
        "build_serialized_network",
    ],
    "OnnxParser": ["parse", "num_errors", "get_error"],
    "IBuilderConfig": [
        "set_memory_pool_limit",
        "set_flag",
        "clear_flag",
        "add_optimization_profile",
        "create_timing_cache",
        "set_timing_cache",
        "get_timing_cache",
    ],
    "IOptimizationProfile": ["set_shape"],
    "ITimingCache": ["serialize"],
    "INetworkDefinition": ["num_inputs", "get_input"],
}


def _check(trt, calls):
    missing = [
        f"{cls}.{name}"
        for cls, names in calls.items()
        for name in names
        if not hasattr(getattr(trt, cls, None), name)
    ]
    assert not missing, f"TensorRT {trt.__version__} lacks {missing}"


@pytest.fixture(scope="module")
def lean():
    return pytest.importorskip("tensorrt_lean", reason="tensorrt-lean-cu13 not installed")


@pytest.fixture(scope="module")
def full():
    trt = pytest.importorskip("tensorrt", reason="full TensorRT cannot be installed on this machine")
    if not hasattr(trt, "Builder"):
        pytest.skip("module 'tensorrt' has no Builder (runtime-only package)")
    return trt


def test_runtime_calls_exist_in_lean(lean):
    _check(lean, RUNTIME_CALLS)
    assert hasattr(lean.Logger, "WARNING")


def test_io_enums_and_dtypes_map_to_numpy(lean):
    assert np.dtype(lean.nptype(lean.DataType.UINT8)) == np.uint8
    assert np.dtype(lean.nptype(lean.DataType.FLOAT)) == np.float32
    modes = {mode for mode, _ in EXPECTED_IO.values()}
    dtypes = {dtype for _, dtype in EXPECTED_IO.values()}
    assert modes <= set(lean.TensorIOMode.__members__) and dtypes <= set(lean.DataType.__members__)


class _EngineView:
    """An engine's I/O table as TensorRT reports it (names, modes, dtypes use lean's real enums)."""

    def __init__(self, trt, table):
        self.trt, self.table = trt, table
        self.num_io_tensors = len(table)

    def get_tensor_name(self, i):
        return list(self.table)[i]

    def get_tensor_mode(self, name):
        return getattr(self.trt.TensorIOMode, self.table[name][0])

    def get_tensor_dtype(self, name):
        return getattr(self.trt.DataType, self.table[name][1])


def test_engine_io_contract_check(lean):
    check_engine_io(lean, _EngineView(lean, EXPECTED_IO), "good.engine")
    wrong = {**EXPECTED_IO, "prob": ("OUTPUT", "HALF")}
    with pytest.raises(ConfigError, match="bad.engine: engine tensors"):
        check_engine_io(lean, _EngineView(lean, wrong), "bad.engine")


def test_builder_calls_exist_in_full_tensorrt(full):
    _check(full, BUILDER_CALLS)
    assert hasattr(full.MemoryPoolType, "WORKSPACE")
    if parse_version(full.__version__)[:2] >= STRONGLY_TYPED_FROM:
        assert hasattr(full.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    else:
        assert hasattr(full.BuilderFlag, "FP16")


@pytest.fixture(scope="module")
def tiny_onnx():
    from export_fixtures import shared_tiny_onnx

    return shared_tiny_onnx()


def test_backend_without_tensorrt_fails_clearly(tiny_onnx, tmp_path):
    """Constructing is cheap (CUDA starts in the inference thread); the first infer needs TensorRT."""
    model = tiny_onnx
    backend = TensorRTBackend(model, load_manifest(model), cache_dir=tmp_path / "cache")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here; the missing-module path cannot be exercised")
    except ImportError:
        pass
    with pytest.raises(SonomapError, match="tensorrt"):
        backend.infer(np.zeros((64, 64), np.uint8))
    backend.close()


def test_backend_refuses_unfolded_model(tiny_onnx, tmp_path):
    model = tiny_onnx
    manifest = load_manifest(model)
    manifest.preprocessing_in_graph = False
    with pytest.raises(ConfigError, match="folded model"):
        TensorRTBackend(model, manifest)
    with pytest.raises(SonomapError, match="not found"):
        TensorRTBackend(tmp_path / "missing.engine", load_manifest(model))
