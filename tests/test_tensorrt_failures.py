"""The TensorRT backend when a build fails, on a static engine, and with its one logger; the
export's batch rule. Stand-ins as in test_tensorrt_backend.py (no GPU or full TensorRT here): the
build runs the real ``load_engine``/``ensure_engine``/``build_plan`` on the real folded model,
with the builder's ``build_serialized_network`` answering None as TensorRT does on failure."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from export_fixtures import copy_model, shared_tiny_onnx
from trt_standins import FakeCuda, FakeEngine, full_module

from edge_runtime.backends import tensorrt as trt_backend
from edge_runtime.backends.failsafe import BANNER_FAULT, GuardedInference
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest
from edge_runtime.stats import Stats
from edge_runtime.tensorrt import engines, key, modules
from edge_runtime.tensorrt.build import EngineBuildError
from edge_runtime.tensorrt.failed_builds import FAILED_BUILDS
from edge_runtime.tensorrt.key import GpuInfo
from export.shapes import checked_profile

ATTEMPTS = 10


@pytest.fixture(scope="module")
def lean():
    return pytest.importorskip("tensorrt_lean", reason="tensorrt-lean-cu13 not installed")


@pytest.fixture
def model(tmp_path):
    return copy_model(shared_tiny_onnx(), tmp_path / "m")


@pytest.fixture
def failing(lean, monkeypatch):
    """TensorRT whose builder cannot build this model; a fresh memory of failed builds."""
    cuda, trt = FakeCuda(), full_module(lean, plan=None)
    monkeypatch.setattr(modules, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(modules, "import_pycuda_driver", lambda: cuda)
    monkeypatch.setattr(key, "current_gpu", lambda index=0: GpuInfo("Orin", "8.7", 16))
    FAILED_BUILDS.forget_all()
    return cuda, trt


def _backend(model, tmp_path, **options):
    return trt_backend.TensorRTBackend(model, load_manifest(model), cache_dir=tmp_path / "engines", **options)


def test_a_failed_build_is_not_repeated(failing, model, tmp_path):
    """The guard calls prepare again on every retry and re-creates the backend every few faults:
    a model TensorRT cannot build is built once, and every later attempt reports the same error."""
    cuda, trt = failing
    errors = []
    backends = [_backend(model, tmp_path), _backend(model, tmp_path)]  # as the guard re-creates it
    for i in range(ATTEMPTS):
        with pytest.raises(EngineBuildError) as caught:
            backends[i % 2].prepare()
        errors.append(str(caught.value))
    for backend in backends:
        backend.close()
    assert len(trt.builds) == 1 and len(cuda.contexts) == 1
    assert "could not build an engine" in errors[0]
    assert all(e.startswith(errors[0]) and "not retried" in e for e in errors[1:])


def test_changed_settings_build_again(failing, model, tmp_path):
    cuda, trt = failing
    for workspace_mb in (1024, 1024, 512):
        backend = _backend(model, tmp_path, workspace_mb=workspace_mb)
        with pytest.raises(EngineBuildError):
            backend.prepare()
        backend.close()
    assert len(trt.builds) == 2


def test_guard_shows_the_reason_without_rebuilding(failing, model, tmp_path, caplog):
    cuda, trt = failing
    stats = Stats()
    guard = GuardedInference(
        lambda: _backend(model, tmp_path), stats, retry_after_s=0.0, retry_max_s=0.0, reload_after_errors=3
    )
    with caplog.at_level(logging.CRITICAL):
        results = [guard.infer(np.zeros((120, 160), np.uint8)) for _ in range(ATTEMPTS)]
    assert results == [None] * ATTEMPTS and len(trt.builds) == 1
    guard.close()
    assert guard.banner() == ("error", BANNER_FAULT)
    assert "EngineBuildError" in stats.last_error and "could not build an engine" in stats.last_error


def test_builder_and_runtime_share_one_logger(failing, model, tmp_path):
    """TensorRT keeps one logger per process and warns when another is passed (NVIDIA/TensorRT#1475)."""
    cuda, trt = failing
    backend = _backend(model, tmp_path)
    with pytest.raises(EngineBuildError):
        backend.prepare()
    backend.close()
    assert len(trt.loggers) == 1
    assert trt.runtime_loggers == trt.builder_loggers == trt.loggers


@pytest.mark.parametrize("profile", [[], [(-1,), (-1,), (-1,)], [(1, 1, -1, -1)] * 3])
def test_static_engine_runs_at_its_fixed_size(lean, model, tmp_path, monkeypatch, profile):
    """No usable profile (empty or -1 Dims): the engine's fixed input shape is the range, and a
    frame of another size is resized in and back out."""
    cuda, trt = FakeCuda(), full_module(lean)
    engine = FakeEngine(trt, cuda, profile=profile, fixed_shape=(1, 1, 120, 160))
    monkeypatch.setattr(modules, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(modules, "import_pycuda_driver", lambda: cuda)
    monkeypatch.setattr(key, "current_gpu", lambda index=0: GpuInfo("Orin", "8.7", 16))
    monkeypatch.setattr(engines, "load_engine", lambda runtime, path, cache_dir, **options: (engine, None))
    backend = _backend(model, tmp_path)
    prediction = backend.infer(np.full((96, 128), 200, np.uint8))
    assert prediction.mask.shape == (96, 128) and prediction.mask.all()
    assert engine.contexts[0].shapes["frame"] == (1, 1, 120, 160)
    backend.close()


def test_engine_without_profile_or_fixed_shape_is_refused(lean, model, tmp_path, monkeypatch):
    cuda, trt = FakeCuda(), full_module(lean)
    engine = FakeEngine(trt, cuda, profile=[])
    monkeypatch.setattr(modules, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(modules, "import_pycuda_driver", lambda: cuda)
    monkeypatch.setattr(key, "current_gpu", lambda index=0: GpuInfo("Orin", "8.7", 16))
    monkeypatch.setattr(engines, "load_engine", lambda runtime, path, cache_dir, **options: (engine, None))
    backend = _backend(model, tmp_path)
    with pytest.raises(ConfigError, match="no usable optimisation profile"):
        backend.prepare()
    backend.close()
    assert cuda.contexts[0].destroyed


BASE = {"min": [1, 1, 64, 64], "opt": [1, 1, 240, 320], "max": [1, 1, 480, 640]}


@pytest.mark.parametrize("flag", ["min", "opt", "max"])
def test_profile_batch_must_be_1(flag):
    given = {"min": None, "opt": None, "max": None, flag: "2x1x240x320"}
    with pytest.raises(ConfigError, match=f"^--{flag} '2x1x240x320': the batch must be 1") as caught:
        checked_profile(given, BASE, "the manifest")
    assert "\n" not in str(caught.value)
    given[flag] = "1x1x240x320"
    assert checked_profile(given, BASE, "the manifest")[flag] == [1, 1, 240, 320]


def test_export_refuses_a_batched_profile_before_tensorrt(tmp_path):
    from export.tensorrt_command import profile_from_args

    args = SimpleNamespace(min_shape=None, opt_shape="4x1x240x320", max_shape="4x1x480x640")
    with pytest.raises(ConfigError, match="--opt .*batch must be 1"):
        profile_from_args(args, shared_tiny_onnx())
