"""The FP16 twin (model.fp16.onnx) that TensorRT >= 10.12 builds FP16 engines from is held to what
a model served directly is held to: its manifest must record a passed parity check and describe
its graph. The memory of failed builds is keyed on that file too, so replacing a twin builds again.

On copies of the shipped model and its checked twin (real files); TensorRT cannot be installed here,
so the builder is a stand-in (tests/trt_standins.py) and plans are fake bytes.
"""

from __future__ import annotations

import types

import pytest
import yaml
from export_fixtures import copy_model, shared_tiny_onnx
from trt_standins import FakeCuda, full_module

from edge_runtime.backends import tensorrt as trt_backend
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.tensorrt import engines, key, modules
from edge_runtime.tensorrt.build import EngineBuildError
from edge_runtime.tensorrt.failed_builds import FAILED_BUILDS
from edge_runtime.tensorrt.key import PATH_STRONGLY_TYPED, GpuInfo
from edge_runtime.tensorrt.preflight import preflight
from export.fp16 import convert_fp16, fp16_path

ORIN = GpuInfo("Orin", "8.7", 16)
TRT_NEW = "10.13.0.35"  # >= 10.12: FP16 engines are built from the twin


def shipped_pair(folder):
    """A copy of the shipped model and of its twin, whose manifest records a passed check."""
    copy_model(fp16_path(DEFAULT_MODEL), folder)
    return copy_model(DEFAULT_MODEL, folder)


def edit_twin_manifest(model, change) -> None:
    twin = fp16_path(model)
    data = yaml.safe_load(manifest_path(twin).read_text())
    change(data)
    manifest_path(twin).write_text(yaml.safe_dump(data, sort_keys=False))


def failed_check(data) -> None:
    data["extra"]["parity"]["passed"] = False
    data["extra"]["parity"]["chain"][-1].update(passed=False, failures=["mask agreement 0.990 < bar 0.995"])


def no_check(data) -> None:
    del data["extra"]["parity"]


def test_a_checked_twin_is_what_the_fp16_engine_is_built_from(tmp_path):
    model = shipped_pair(tmp_path / "m")
    plan = engines.plan_engine(model, tmp_path / "cache", "fp16", TRT_NEW, ORIN)
    assert plan.build_onnx == fp16_path(model) and plan.key.build_path == PATH_STRONGLY_TYPED
    assert preflight(model, "fp16", TRT_NEW).path == fp16_path(model)


@pytest.mark.parametrize(
    "edit, message",
    [
        (failed_check, r"failed parity check \(onnxruntime-fp16 vs onnxruntime-fp32: .*0\.990 < bar"),
        (no_check, r"records no passed parity check"),
    ],
)
def test_a_twin_whose_check_did_not_pass_is_never_built(tmp_path, edit, message):
    model = shipped_pair(tmp_path / "m")
    edit_twin_manifest(model, edit)
    builds = []
    trt = types.SimpleNamespace(__version__=TRT_NEW, BuilderFlag=types.SimpleNamespace())
    with pytest.raises(ConfigError, match=message) as caught:
        engines.ensure_engine(
            model, tmp_path / "cache", trt=trt, gpu=ORIN, build=lambda *a: builds.append(a) or b"PLAN"
        )
    assert str(fp16_path(model)) in str(caught.value) and "sonomap export onnx --fp16" in str(caught.value)
    assert builds == []
    with pytest.raises(ConfigError, match=message):  # at service start-up, not at the first frame
        preflight(model, "fp16", TRT_NEW)
    assert preflight(model, "fp16", "10.3.0.30").path == model  # 10.3 builds from the FP32 file


def test_a_just_converted_twin_is_refused_until_checked(tmp_path):
    model = copy_model(shared_tiny_onnx(), tmp_path / "m")
    convert_fp16(model)  # converted, its FP16-vs-FP32 check not run
    with pytest.raises(ConfigError, match=r"model\.fp16\.onnx: its manifest records a failed parity check"):
        engines.plan_engine(model, tmp_path / "cache", "fp16", TRT_NEW, ORIN)


def test_a_twin_whose_manifest_does_not_describe_its_graph_is_refused(tmp_path):
    model = shipped_pair(tmp_path / "m")
    edit_twin_manifest(model, lambda data: data.update(threshold=0.9))
    with pytest.raises(ConfigError, match=r"model\.fp16\.onnx\.yaml.*'threshold'"):
        engines.plan_engine(model, tmp_path / "cache", "fp16", TRT_NEW, ORIN)


def replace_twin(model) -> None:
    """Another twin at the same path (other bytes, same checks passed): what a re-export leaves."""
    import onnx

    twin = fp16_path(model)
    graph = onnx.load(str(twin))
    graph.doc_string = "converted again"
    onnx.save(graph, str(twin))
    save_manifest(load_manifest(twin, verify_hash=False), twin)


@pytest.fixture
def failing(monkeypatch):
    """TensorRT >= 10.12 whose builder cannot build this model; a fresh memory of failed builds."""
    lean = pytest.importorskip("tensorrt_lean", reason="tensorrt-lean-cu13 not installed")
    cuda, trt = FakeCuda(), full_module(lean, TRT_NEW, plan=None)
    monkeypatch.setattr(modules, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(modules, "import_pycuda_driver", lambda: cuda)
    monkeypatch.setattr(key, "current_gpu", lambda index=0: ORIN)
    FAILED_BUILDS.forget_all()
    yield trt
    FAILED_BUILDS.forget_all()


def _prepare_fails(model, tmp_path) -> str:
    backend = trt_backend.TensorRTBackend(model, load_manifest(model), cache_dir=tmp_path / "engines")
    with pytest.raises(EngineBuildError) as caught:
        backend.prepare()
    backend.close()
    return str(caught.value)


def test_a_replaced_twin_is_built_again_after_a_failed_build(failing, tmp_path):
    model = shipped_pair(tmp_path / "m")
    first, again = _prepare_fails(model, tmp_path), _prepare_fails(model, tmp_path)
    assert len(failing.builds) == 1 and "not retried" not in first and "not retried" in again
    replace_twin(model)  # model.onnx unchanged: only the file the build parses is new
    assert "not retried" not in _prepare_fails(model, tmp_path)
    assert len(failing.builds) == 2
