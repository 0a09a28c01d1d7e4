"""The TensorRT backend, engine build and selfcheck timing around the pycuda/TensorRT objects.

pycuda and the full TensorRT cannot be installed here (no GPU), so the objects they would return
(CUDA context, stream, buffers, engine, execution context, builder config, timing cache) are the
small stand-ins of tests/trt_standins.py, which follow the behaviour pycuda's and NVIDIA's
sources document; enums and dtypes are tensorrt_lean's. Everything else is the real code: the
backend class, its thread, the engine-cache functions, the folded ONNX model and its manifest.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from export_fixtures import copy_model, shared_tiny_onnx
from trt_standins import TIMING_MAGIC, FakeBuilderConfig, FakeCuda, FakeEngine, builder_module, runtime_module

from edge_runtime.backends import tensorrt as trt_backend
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest
from edge_runtime.tensorrt import build, engines, key, modules
from edge_runtime.tensorrt.key import GpuInfo, choose_build_path
from edge_runtime.tensorrt.preflight import preflight
from export.selfcheck import timed_latency

FRAME = np.arange(120 * 160, dtype=np.uint32).reshape(120, 160).astype(np.uint8)
OTHER_SIZE = np.full((96, 128), 200, np.uint8)
TIMED_RUNS = 3


@pytest.fixture(scope="module")
def lean():
    return pytest.importorskip("tensorrt_lean", reason="tensorrt-lean-cu13 not installed")


@pytest.fixture(scope="module")
def tiny_onnx():
    return shared_tiny_onnx()


@pytest.fixture
def gpu(lean, monkeypatch):
    """Route the backend's TensorRT/pycuda imports and its engine loading to the stand-ins."""
    cuda, trt = FakeCuda(), runtime_module(lean)
    engine = FakeEngine(trt, cuda)
    monkeypatch.setattr(modules, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(modules, "import_pycuda_driver", lambda: cuda)
    monkeypatch.setattr(key, "current_gpu", lambda index=0: GpuInfo("Orin", "8.7", 16))
    monkeypatch.setattr(engines, "load_engine", lambda runtime, path, cache_dir, **options: (engine, None))
    return cuda, engine


def _backend(model, tmp_path):
    return trt_backend.TensorRTBackend(model, load_manifest(model), cache_dir=tmp_path / "engines")


def _in_thread(fn, *args):
    result = {}
    worker = threading.Thread(target=lambda: result.update(value=fn(*args)))
    worker.start()
    worker.join()
    return result["value"]


def test_close_from_another_thread_destroys_the_context(gpu, tiny_onnx, tmp_path):
    """The pipeline infers on one thread and may close on another (reload, shutdown): the CUDA
    context must be destroyed by the thread that made it, or pycuda silently leaks it."""
    cuda, _ = gpu
    backend = _backend(tiny_onnx, tmp_path)
    pred = _in_thread(backend.infer, FRAME)
    assert pred.mask.shape == FRAME.shape and np.array_equal(pred.mask, (FRAME >= 128).astype(np.uint8))
    backend.close()  # main thread
    (ctx,) = cuda.contexts
    assert ctx.destroyed and not ctx.leaked
    assert cuda.threads == {ctx.owner}, "every CUDA call must run on the thread owning the context"
    backend.close()  # twice is safe


def test_inference_from_several_threads_uses_one_context(gpu, tiny_onnx, tmp_path):
    cuda, _ = gpu
    backend = _backend(tiny_onnx, tmp_path)
    first = _in_thread(backend.infer, FRAME)
    second = backend.infer(FRAME)
    assert np.array_equal(first.mask, second.mask) and len(cuda.contexts) == 1
    backend.close()
    assert cuda.contexts[0].destroyed and len(cuda.threads) == 1


def test_refused_input_shape_fails_loudly(gpu, tiny_onnx, tmp_path):
    cuda, engine = gpu
    backend = _backend(tiny_onnx, tmp_path)
    backend.infer(FRAME)
    engine.contexts[0].accept_shape = False
    with pytest.raises(RuntimeError, match=r"refused input shape \(1, 1, 96, 128\) for 'frame'"):
        backend.infer(OTHER_SIZE)
    engine.contexts[0].accept_shape = True
    assert backend.infer(OTHER_SIZE).mask.shape == OTHER_SIZE.shape  # the next frame binds again
    backend.close()


def test_refused_tensor_address_fails_loudly(gpu, tiny_onnx, tmp_path):
    cuda, engine = gpu
    backend = _backend(tiny_onnx, tmp_path)
    backend.infer(FRAME)
    engine.contexts[0].accept_address = False
    with pytest.raises(RuntimeError, match="refused the device buffer of tensor 'frame'"):
        backend.infer(OTHER_SIZE)
    backend.close()


def test_selfcheck_latency_never_times_a_rebind(gpu, tiny_onnx, tmp_path):
    """selfcheck runs its parity frames (various sizes) and then times one frame: a run that
    re-binds buffers for a new size must not be among the timed ones."""
    cuda, engine = gpu
    backend = _backend(tiny_onnx, tmp_path)
    backend.infer(OTHER_SIZE)  # the last parity frame had another size
    rebinds = []

    def infer(gray):
        before = engine.contexts[0].binds
        backend.infer(gray)
        rebinds.append(engine.contexts[0].binds - before)

    samples = timed_latency(infer, FRAME, runs=TIMED_RUNS)
    backend.close()
    assert len(samples) == TIMED_RUNS and sum(rebinds) == 1
    assert rebinds[-TIMED_RUNS:] == [0] * TIMED_RUNS, f"a timed run re-bound buffers: {rebinds}"


def test_missing_fp16_twin_fails_at_construction(lean, tiny_onnx, tmp_path, monkeypatch):
    """TensorRT >= 10.12 builds FP16 from model.fp16.onnx: its absence is reported when the
    backend is made (service start-up), not at the first frame."""
    model = copy_model(tiny_onnx, tmp_path / "m")
    monkeypatch.setattr(
        modules, "import_tensorrt", lambda: runtime_module(lean, "10.13.0.35", fp16_flag=True)
    )
    with pytest.raises(
        InputError, match=r"model\.fp16\.onnx: FP16 ONNX not found.*sonomap export onnx --fp16"
    ):
        _backend(model, tmp_path)
    monkeypatch.setattr(modules, "import_tensorrt", lambda: runtime_module(lean, "10.3.0.30", fp16_flag=True))
    _backend(model, tmp_path).close()  # 10.3 builds from the FP32 file with the FP16 flag


def test_preflight_names_the_build_file(tmp_path):
    from export.fp16 import fp16_path
    from export.selfcheck import DEFAULT_MODEL

    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    assert preflight(model, "fp16", "10.3.0.30") == (model, load_manifest(model).sha256)
    with pytest.raises(InputError, match="fp16.onnx"):
        preflight(model, "fp16", "11.4.0.106", has_fp16_flag=False)
    twin = copy_model(fp16_path(DEFAULT_MODEL), tmp_path / "m")  # the shipped twin: its check passed
    assert preflight(model, "fp16", "11.4.0.106", has_fp16_flag=False) == (twin, load_manifest(twin).sha256)


def test_tensorrt_12_is_refused():
    with pytest.raises(ConfigError, match="TensorRT 12.0.0 is not supported yet.*< 12"):
        choose_build_path("12.0.0", "fp16")
    assert choose_build_path("11.9.0", "fp16", False) == "strongly-typed"


def _build(trt, onnx, timing):
    profile = {"frame": {"min": [1, 1, 64, 64], "opt": [1, 1, 240, 320], "max": [1, 1, 480, 640]}}
    return build.build_plan(trt, onnx, "fp16-builder-flag", profile, 64, timing)


def test_unreadable_timing_cache_is_replaced(tiny_onnx, tmp_path, caplog):
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"half-written by a power cut")
    with caplog.at_level(logging.WARNING, logger="sonomap.tensorrt"):
        assert _build(builder_module(), tiny_onnx, timing) == b"PLAN"
    assert "unreadable" in caplog.text and str(timing) in caplog.text
    assert timing.read_bytes() == TIMING_MAGIC + b"+timings"  # rewritten from the cache the build used
    assert _build(builder_module(), tiny_onnx, timing) == b"PLAN"
    assert timing.read_bytes() == TIMING_MAGIC + b"+timings+timings"  # and read back the next time


def test_a_timing_cache_that_cannot_be_saved_keeps_the_built_engine(tiny_onnx, tmp_path, caplog):
    """The save after the build fails for real (its folder is a file: as a full disk, an OSError):
    the plan, minutes of work on a Jetson, is returned, with a warning naming the cache."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_bytes(b"")
    timing = blocked / "timing.cache"
    with caplog.at_level(logging.WARNING, logger="sonomap.tensorrt"):
        assert _build(builder_module(), tiny_onnx, timing) == b"PLAN"
    assert f"timing cache {timing} not saved" in caplog.text


def test_refused_timing_cache_starts_empty(tiny_onnx, tmp_path, caplog):
    timing = tmp_path / "timing.cache"
    timing.write_bytes(TIMING_MAGIC + b"other-gpu")
    trt = builder_module(config=FakeBuilderConfig(refuse_cache=True))
    with caplog.at_level(logging.WARNING, logger="sonomap.tensorrt"):
        assert _build(trt, tiny_onnx, timing) == b"PLAN"
    assert "refused the timing cache" in caplog.text
    assert timing.read_bytes() == TIMING_MAGIC + b"+timings"


@pytest.mark.parametrize("version, expected", [("10.13.0.35", 1 << 1), ("11.4.0.106", 0)])
def test_strongly_typed_network_flag(version, expected):
    """10.x: the STRONGLY_TYPED bit (value from the enum); 11.x: none (always strongly typed)."""
    trt = builder_module(version)
    trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED = 1 if version.startswith("10.") else 0
    assert build.network_flags(trt, "strongly-typed") == expected
    assert build.network_flags(trt, "fp32") == 0


def test_an_fp32_engine_is_built_without_tf32(tiny_onnx):
    """A new builder config has TF32 set ("Enabled by default", kTF32 in NvInfer.h): an FP32 engine
    would round its matrix maths to TF32 on Ampere and later GPUs unless it is cleared."""
    profile = {"frame": {"min": [1, 1, 64, 64], "opt": [1, 1, 240, 320], "max": [1, 1, 480, 640]}}
    trt = builder_module()
    build.build_plan(trt, tiny_onnx, "fp32", profile, 64, None)
    assert trt.BuilderFlag.TF32 not in trt.config.flags
    lean_like = builder_module()
    del lean_like.BuilderFlag.TF32  # a TensorRT without the flag builds as before
    assert build.build_plan(lean_like, tiny_onnx, "fp32", profile, 64, None) == b"PLAN"


def test_rejected_optimisation_profile_fails_the_build(tiny_onnx, tmp_path):
    trt = builder_module(config=FakeBuilderConfig(profile_index=-1))
    with pytest.raises(build.EngineBuildError, match="rejected the optimisation profile"):
        _build(trt, tiny_onnx, None)


def test_prepare_makes_the_engine_on_the_owner_thread_before_the_first_frame(gpu, tiny_onnx, tmp_path):
    """The runtime calls prepare() first (shown as AI LOADING: building engine), so the first frame
    only runs the engine; infer() then uses the same context."""
    cuda, _ = gpu
    backend = _backend(tiny_onnx, tmp_path)
    assert backend.prepare_label == "building engine"
    _in_thread(backend.prepare)
    (ctx,) = cuda.contexts
    backend.prepare()  # a second call builds nothing
    assert backend.infer(FRAME).mask.shape == FRAME.shape and cuda.contexts == [ctx]
    backend.close()
    assert ctx.destroyed and cuda.threads == {ctx.owner}
