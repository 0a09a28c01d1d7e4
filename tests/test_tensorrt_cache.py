"""Engine cache and build-path logic on real exported ONNX files (no TensorRT/GPU needed).

TensorRT itself cannot be installed here: these tests cover every decision the cache makes
before and after TensorRT runs (key, file names, atomic writes, stale/corrupt detection,
version-dependent build path). The TensorRT calls are covered by tests/test_tensorrt_api.py
(API surface) and, on a GPU machine, by `sonomap selfcheck`.
"""

from __future__ import annotations

import importlib.util
import os
import types

import pytest
import yaml
from export_fixtures import copy_model, make_checkpoint, shared_tiny_onnx

from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError, InputError, SonomapError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.tensorrt.cache import (
    BUILD,
    LOAD,
    check_engine_file,
    inspect_cached,
    timing_cache_path,
    write_engine,
)
from edge_runtime.tensorrt.engines import ensure_engine, load_engine, plan_engine
from edge_runtime.tensorrt.key import (
    PATH_FP16_FLAG,
    PATH_FP32,
    PATH_STRONGLY_TYPED,
    GpuInfo,
    choose_build_path,
    parse_version,
)
from export.fp16 import fp16_path
from export.onnx_export import export_onnx
from export.shapes import ShapeSpec

ORIN = GpuInfo("Orin", "8.7", 16)
RTX = GpuInfo("NVIDIA RTX A4000", "8.6", 48)
TRT_JETPACK6 = "10.3.0.30"
TRT_NEW = "10.13.0.35"
PLAN = b"not-a-real-plan:" + bytes(range(256)) * 4
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def onnx_model():
    return shared_tiny_onnx()  # profile 64x64 / 240x320 / 480x640


@pytest.mark.parametrize(
    "version, precision, has_flag, expected",
    [
        (TRT_JETPACK6, "fp16", True, PATH_FP16_FLAG),
        ("10.11.0.33", "fp16", True, PATH_FP16_FLAG),
        ("10.12.0.36", "fp16", True, PATH_STRONGLY_TYPED),
        ("11.4.0.106", "fp16", False, PATH_STRONGLY_TYPED),
        (TRT_JETPACK6, "fp16", False, PATH_STRONGLY_TYPED),  # a build without the flag: types decide
        (TRT_JETPACK6, "fp32", True, PATH_FP32),
        ("11.4.0.106", "fp32", False, PATH_FP32),
    ],
)
def test_build_path_by_version(version, precision, has_flag, expected):
    assert choose_build_path(version, precision, has_flag) == expected


def test_build_path_rejects_old_tensorrt_and_bad_precision():
    with pytest.raises(ConfigError, match="8.6.1"):
        choose_build_path("8.6.1", "fp16")
    with pytest.raises(ConfigError, match="int8"):
        choose_build_path(TRT_JETPACK6, "int8")
    assert parse_version("10.3.0.30") == (10, 3, 0, 30)
    with pytest.raises(ConfigError):
        parse_version("unknown")


def test_installed_lean_module_gets_strongly_typed_path():
    """tensorrt-lean-cu13 installs here: 11.x, and its BuilderFlag has no FP16 member."""
    trt = pytest.importorskip("tensorrt_lean")
    assert not hasattr(trt.BuilderFlag, "FP16")
    assert choose_build_path(trt.__version__, "fp16", hasattr(trt.BuilderFlag, "FP16")) == PATH_STRONGLY_TYPED


def test_fresh_cache_builds_then_loads(onnx_model, tmp_path):
    plan = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN)
    assert plan.state.action == BUILD and "no cached engine" in plan.state.reason
    assert plan.key.build_path == PATH_FP16_FLAG and plan.build_onnx == onnx_model
    assert plan.key.profile["frame"] == {
        "min": [1, 1, 64, 64],
        "opt": [1, 1, 240, 320],
        "max": [1, 1, 480, 640],
    }
    write_engine(plan.path, PLAN, plan.key, plan.manifest, onnx_model.name)
    again = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN)
    assert again.path == plan.path and again.state.action == LOAD
    engine_manifest = load_manifest(plan.path)  # sha256 of the plan verified
    assert engine_manifest.format == "tensorrt" and engine_manifest.extra["engine_key"] == plan.key.to_dict()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    "change", ["gpu-model", "trt", "precision", "profile", "workspace"]
)  # no bare "gpu" id: conftest skips that keyword
def test_key_change_selects_another_engine(onnx_model, tmp_path, change):
    base = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN)
    write_engine(base.path, PLAN, base.key, base.manifest, onnx_model.name)
    args = {
        "precision": "fp16",
        "trt_version": TRT_JETPACK6,
        "gpu": ORIN,
        "profile": None,
        "workspace_mb": 1024,
    }
    args.update(
        {
            "gpu-model": {"gpu": RTX},
            "trt": {"trt_version": "10.3.1.1"},
            "precision": {"precision": "fp32"},
            "profile": {"profile": {"min": [1, 1, 64, 64], "opt": [1, 1, 480, 640], "max": [1, 1, 480, 640]}},
            "workspace": {"workspace_mb": 2048},
        }[change]
    )
    other = plan_engine(
        onnx_model,
        tmp_path,
        args["precision"],
        args["trt_version"],
        args["gpu"],
        profile=args["profile"],
        workspace_mb=args["workspace_mb"],
    )
    assert other.path != base.path and other.state.action == BUILD
    stale = inspect_cached(base.path, other.key)  # the old file, judged against the new needs
    assert stale.action == BUILD and "stale" in stale.reason


def test_new_onnx_changes_the_key(onnx_model, tmp_path):
    first = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN)
    retrained = tmp_path / "m2" / "model.onnx"
    export_onnx(
        make_checkpoint(tmp_path / "ck2", steps=2),
        retrained,
        ShapeSpec(min_hw=(64, 64), opt_hw=(240, 320), max_hw=(480, 640)),
    )
    second = plan_engine(retrained, tmp_path, "fp16", TRT_JETPACK6, ORIN)
    assert second.key.onnx_sha256 != first.key.onnx_sha256 and second.path != first.path


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "no-manifest"])
def test_corrupt_engine_is_rebuilt(onnx_model, tmp_path, damage):
    plan = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN)
    write_engine(plan.path, PLAN, plan.key, plan.manifest, onnx_model.name)
    data = plan.path.read_bytes()
    if damage == "truncate":
        plan.path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        plan.path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif damage == "empty":
        plan.path.write_bytes(b"")
    else:
        manifest_path(plan.path).unlink()
    state = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN).state
    assert state.action == BUILD
    assert ("no manifest" if damage == "no-manifest" else "corrupt") in state.reason


def test_explicit_engine_for_other_gpu_or_version(onnx_model, tmp_path):
    plan = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN)
    write_engine(plan.path, PLAN, plan.key, plan.manifest, onnx_model.name)
    assert check_engine_file(plan.path, ORIN, TRT_JETPACK6) == plan.key
    with pytest.raises(ConfigError, match="built for Orin.*RTX A4000"):
        check_engine_file(plan.path, RTX, TRT_JETPACK6)
    with pytest.raises(ConfigError, match="TensorRT 10.3.0.30, this machine has 10.7.0"):
        check_engine_file(plan.path, ORIN, "10.7.0")
    plan.path.write_bytes(PLAN[:10])
    with pytest.raises(ConfigError, match="corrupt engine"):
        check_engine_file(plan.path, ORIN, TRT_JETPACK6)
    with pytest.raises(InputError, match="not found"):
        check_engine_file(tmp_path / "none.engine", ORIN, TRT_JETPACK6)


def test_strongly_typed_path_needs_the_fp16_twin(tmp_path):
    onnx_model = copy_model(DEFAULT_MODEL, tmp_path / "model")
    with pytest.raises(InputError, match="export onnx --fp16"):
        plan_engine(onnx_model, tmp_path, "fp16", TRT_NEW, ORIN)
    twin = copy_model(fp16_path(DEFAULT_MODEL), tmp_path / "model")  # the shipped twin: its check passed
    plan = plan_engine(onnx_model, tmp_path, "fp16", TRT_NEW, ORIN)
    assert plan.build_onnx == twin and plan.key.build_path == PATH_STRONGLY_TYPED
    assert plan.key.onnx_sha256 == load_manifest(twin).sha256
    with pytest.raises(ConfigError, match="FP32 engine needs the FP32 ONNX"):
        plan_engine(twin, tmp_path, "fp32", TRT_NEW, ORIN)
    data = yaml.safe_load(manifest_path(twin).read_text())
    data["source"]["fp32_onnx_sha256"] = "0" * 64
    manifest_path(twin).write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="not converted from model.onnx"):
        plan_engine(onnx_model, tmp_path, "fp16", TRT_NEW, ORIN)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("preprocessing_in_graph", False, "not a folded sonomap ONNX"),
        ("opset", 9, "io.opset 9 is unsupported"),
    ],
)
def test_unusable_onnx_is_refused(onnx_model, tmp_path, key, value, message):
    copy = tmp_path / "plain.onnx"
    copy.write_bytes(onnx_model.read_bytes())
    data = yaml.safe_load(manifest_path(onnx_model).read_text())
    data["file"] = copy.name  # the manifest names the file it sits beside
    if key == "opset":
        data["io"]["opset"] = value
    else:
        data[key] = value
    manifest_path(copy).write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        plan_engine(copy, tmp_path, "fp16", TRT_JETPACK6, ORIN)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "x.engine"
    atomic_write_bytes(target, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails inside the write
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["x.engine"]
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(ConfigError, match="empty"):
        write_engine(tmp_path / "e.engine", b"", None, None, "m.onnx")  # refused before key/manifest are used


def test_timing_cache_is_per_tensorrt_and_gpu(onnx_model, tmp_path):
    a = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, ORIN).key
    b = plan_engine(onnx_model, tmp_path, "fp16", "10.3.1.1", ORIN).key
    c = plan_engine(onnx_model, tmp_path, "fp16", TRT_JETPACK6, RTX).key
    names = {timing_cache_path(tmp_path, k).name for k in (a, b, c)}
    assert len(names) == 3 and timing_cache_path(tmp_path, a).parent == tmp_path


class _StandInRuntime:
    """Stands in for trt.Runtime (TensorRT is not installable here): accepts only the
    bytes the stand-in builder produced, like TensorRT rejects a foreign/corrupt plan."""

    def __init__(self):
        self.calls = 0

    def deserialize_cuda_engine(self, data: bytes):
        self.calls += 1
        return ("engine", len(data)) if data.startswith(b"not-a-real-plan") else None


def _stand_in_trt(version=TRT_JETPACK6):
    return types.SimpleNamespace(__version__=version, BuilderFlag=types.SimpleNamespace(FP16=object()))


def test_ensure_engine_builds_announces_and_reuses(onnx_model, tmp_path):
    builds, hooks = [], []

    def build(trt, onnx, path, profile, workspace, timing):
        builds.append((onnx, path, timing))
        return PLAN

    opts = {"trt": _stand_in_trt(), "gpu": ORIN, "build": build, "on_long_build": hooks.append}
    first = ensure_engine(onnx_model, tmp_path, **opts)
    assert first.built and len(builds) == 1 and hooks and hooks[0] >= 60
    assert builds[0][1] == PATH_FP16_FLAG and builds[0][2] == timing_cache_path(tmp_path, first.key)
    second = ensure_engine(onnx_model, tmp_path, **opts)
    assert not second.built and len(builds) == 1 and len(hooks) == 1 and second.path == first.path
    forced = ensure_engine(onnx_model, tmp_path, force=True, **opts)
    assert forced.built and len(builds) == 2


def test_build_removes_superseded_engines_of_the_same_model(onnx_model, tmp_path):
    opts = {"gpu": ORIN, "build": lambda *a: PLAN}
    old = ensure_engine(onnx_model, tmp_path, trt=_stand_in_trt(TRT_JETPACK6), **opts)
    fp32 = ensure_engine(onnx_model, tmp_path, precision="fp32", trt=_stand_in_trt(TRT_JETPACK6), **opts)
    new = ensure_engine(onnx_model, tmp_path, trt=_stand_in_trt("10.3.1.1"), **opts)  # TensorRT upgrade
    assert new.path != old.path and not old.path.exists() and not manifest_path(old.path).exists()
    assert fp32.path.exists() and new.path.exists()  # another precision is another engine, kept


def test_load_engine_rebuilds_when_deserialisation_fails(onnx_model, tmp_path):
    opts = {"trt": _stand_in_trt(), "gpu": ORIN, "build": lambda *a: PLAN}
    record = ensure_engine(onnx_model, tmp_path, **opts)
    # Same key and a matching manifest, but content TensorRT rejects (e.g. written by a
    # different TensorRT build with the same version string): sha256 passes, deserialise fails.
    record.path.write_bytes(b"garbage")
    save_manifest(load_manifest(record.path, verify_hash=False), record.path)
    runtime = _StandInRuntime()
    engine, again = load_engine(runtime, onnx_model, tmp_path, **opts)
    assert engine == ("engine", len(PLAN)) and again.built and "deserialise" in again.reason
    assert runtime.calls == 2 and record.path.read_bytes() == PLAN


@pytest.mark.skipif(HAS_TENSORRT, reason="full TensorRT is installed here")
def test_missing_tensorrt_is_a_clear_error(onnx_model, tmp_path):
    with pytest.raises(SonomapError, match="TensorRT Python module 'tensorrt' not found"):
        ensure_engine(onnx_model, tmp_path, gpu=ORIN)
