"""Get a usable engine for a folded ONNX model: load the cached one or build it.

:func:`plan_engine` is the decision (pure: files + versions, testable without a GPU);
:func:`ensure_engine` acts on it (TensorRT needed); :func:`load_engine` deserialises and,
when TensorRT rejects a cached plan, deletes it and rebuilds once. The engine is keyed on the
sha256 of the bytes of the ONNX file the build parses, and a build runs under the entry's
:func:`~edge_runtime.tensorrt.cache.engine_lock`, so concurrent processes build it once.

Before any build it logs a clear warning and calls ``on_long_build(seconds_estimate)``:
the service passes a callback that sends systemd ``EXTEND_TIMEOUT_USEC`` so the unit's
start timeout does not kill a first-boot build.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path
from edge_runtime.tensorrt import modules
from edge_runtime.tensorrt.build import build_plan
from edge_runtime.tensorrt.cache import (
    LOAD,
    CacheState,
    engine_lock,
    engine_path,
    inspect_cached,
    model_location,
    prune_siblings,
    timing_cache_path,
    write_engine,
)
from edge_runtime.tensorrt.key import (
    FP16,
    FP32,
    PATH_FP32,
    PATH_STRONGLY_TYPED,
    EngineKey,
    GpuInfo,
    choose_build_path,
    current_gpu,
)

log = logging.getLogger("sonomap.tensorrt")

INPUT_NAME = "frame"
DEFAULT_WORKSPACE_MB = 1024
MIN_WORKSPACE_MB = 64
# 1 TiB: far above any GPU's memory, and int(mb) * MiB still fits the builder's 64-bit size_t
MAX_WORKSPACE_MB = 1 << 20
# Seconds announced to systemd before a build: FCN-101 FP16 takes minutes on a Jetson Orin
# without a timing cache; with one, far less. Generous on purpose: overshooting only delays
# the watchdog, undershooting gets the service killed mid-build.
BUILD_SECONDS_COLD = 1200
BUILD_SECONDS_WARM = 400
FP16_TWIN_SUFFIX = ".fp16.onnx"
# Opsets sonomap exports and TensorRT 10.x's ONNX parser accepts for these ops.
SUPPORTED_OPSETS = range(17, 21)

LongBuildHook = Callable[[float], None]


@dataclass
class EnginePlan:
    key: EngineKey
    path: Path
    state: CacheState
    build_onnx: Path  # the ONNX file the network is parsed from
    manifest: Manifest  # that file's manifest


@dataclass
class EngineRecord:
    path: Path
    key: EngineKey
    built: bool
    reason: str
    seconds: float


def check_folded(onnx_path: Path, manifest: Manifest) -> None:
    names = [t.get("name") for t in manifest.io.get("inputs", [])]
    if manifest.format != "onnx" or not manifest.preprocessing_in_graph or names != [INPUT_NAME]:
        raise ConfigError(
            f"{manifest_path(onnx_path)}: not a folded sonomap ONNX model (needs format onnx, "
            f"preprocessing_in_graph true, input '{INPUT_NAME}'); re-export with 'sonomap export onnx'"
        )
    opset = manifest.io.get("opset")
    if opset is not None and int(opset) not in SUPPORTED_OPSETS:
        raise ConfigError(
            f"{manifest_path(onnx_path)}: io.opset {opset} is unsupported for TensorRT builds "
            f"(supported {SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1}); re-export with --opset 17"
        )


def resolve_build_onnx(onnx_path: Path, manifest: Manifest, build_path: str) -> tuple[Path, Manifest]:
    """The strongly typed path parses the FP16 ONNX (types decide precision); the others the FP32 one."""
    precision = manifest.extra.get("precision", FP32)
    if build_path != PATH_STRONGLY_TYPED:
        if build_path == PATH_FP32 and precision == FP16:
            raise ConfigError(f"{onnx_path}: an FP32 engine needs the FP32 ONNX, this one is FP16")
        return onnx_path, manifest
    if precision == FP16:
        return onnx_path, manifest
    twin = onnx_path.with_name(onnx_path.name[: -len(".onnx")] + FP16_TWIN_SUFFIX)
    if not twin.is_file():
        raise InputError(
            f"{twin}: FP16 ONNX not found; TensorRT >= 10.12 builds FP16 engines as strongly typed "
            f"networks from it: run 'sonomap export onnx --fp16' (or 'sonomap export tensorrt', "
            "which makes it)"
        )
    twin_manifest = load_manifest(twin)
    if twin_manifest.source.get("fp32_onnx_sha256") != manifest.sha256:
        raise ConfigError(
            f"{twin}: this FP16 ONNX was not converted from {onnx_path.name} "
            "(source.fp32_onnx_sha256 differs); re-run 'sonomap export onnx --fp16'"
        )
    return twin, twin_manifest


def preflight(onnx_path: str | Path, precision: str, trt_version: str, has_fp16_flag: bool = True) -> Path:
    """What :func:`plan_engine` would refuse, checked without a GPU or a build (the backend calls
    this at start-up): a model that is not folded, an unsupported opset or TensorRT version, or
    a missing FP16 twin on the strongly typed path. Returns the ONNX file the build will parse."""
    onnx_path = Path(onnx_path)
    manifest = load_manifest(onnx_path)
    check_folded(onnx_path, manifest)
    build_path = choose_build_path(trt_version, precision, has_fp16_flag)
    return resolve_build_onnx(onnx_path, manifest, build_path)[0]


def plan_engine(
    onnx_path: str | Path,
    cache_dir: str | Path,
    precision: str,
    trt_version: str,
    gpu: GpuInfo,
    has_fp16_flag: bool = True,
    profile: dict | None = None,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
) -> EnginePlan:
    """Which engine file this model needs here, and whether the cached one can be used."""
    onnx_path = Path(onnx_path)
    manifest = load_manifest(onnx_path)  # verifies the ONNX sha256
    check_folded(onnx_path, manifest)
    build_path = choose_build_path(trt_version, precision, has_fp16_flag)
    build_onnx, build_manifest = resolve_build_onnx(onnx_path, manifest, build_path)
    shapes = profile or manifest.io.get("profile")
    if not shapes:
        raise ConfigError(
            f"{manifest_path(onnx_path)}: no 'io.profile' and no --min/--opt/--max shapes given"
        )
    key = EngineKey(
        # the bytes TensorRT will parse: load_manifest required this hash and checked it against
        # the file (an empty one would let two models at one path share an engine file)
        onnx_sha256=build_manifest.sha256,
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        sm_count=gpu.sm_count,
        trt_version=str(trt_version),
        precision=precision,
        build_path=build_path,
        profile={INPUT_NAME: {k: list(shapes[k]) for k in ("min", "opt", "max")}},
        workspace_mb=int(workspace_mb),
    )
    path = engine_path(cache_dir, onnx_path.stem, key)
    return EnginePlan(
        key=key, path=path, state=inspect_cached(path, key), build_onnx=build_onnx, manifest=build_manifest
    )


def ensure_engine(
    onnx_path: str | Path,
    cache_dir: str | Path,
    precision: str = FP16,
    profile: dict | None = None,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    on_long_build: LongBuildHook | None = None,
    force: bool = False,
    why: str | None = None,
    trt=None,
    gpu: GpuInfo | None = None,
    build: Callable[..., bytes] | None = None,
) -> EngineRecord:
    """Return a valid cached engine for ``onnx_path`` or build one (atomically) into ``cache_dir``.

    ``build`` defaults to :func:`edge_runtime.tensorrt.build.build_plan` (same signature)."""
    if build is None:
        build = build_plan
    trt = trt or modules.import_tensorrt()
    gpu = gpu or current_gpu()
    options = {
        "profile": profile,
        "workspace_mb": workspace_mb,
        "has_fp16_flag": hasattr(trt.BuilderFlag, "FP16"),
    }
    plan = plan_engine(onnx_path, cache_dir, precision, trt.__version__, gpu, **options)
    if plan.state.action == LOAD and not force:  # no lock to load: a read-only cache serves too
        return EngineRecord(plan.path, plan.key, built=False, reason=plan.state.reason, seconds=0.0)
    with engine_lock(plan.path):
        # decided again under the lock: another process may have built it while this one waited
        plan = plan_engine(onnx_path, cache_dir, precision, trt.__version__, gpu, **options)
        if plan.state.action == LOAD and not force:
            return EngineRecord(plan.path, plan.key, built=False, reason=plan.state.reason, seconds=0.0)
        return _build(trt, gpu, plan, onnx_path, why or plan.state.reason, build, on_long_build, workspace_mb)


def _build(trt, gpu: GpuInfo, plan: EnginePlan, onnx_path, reason: str, build, on_long_build, workspace_mb):
    """Build the planned engine (the caller holds its lock), store it and prune the engines it supersedes."""
    timing = timing_cache_path(plan.path.parent, plan.key)
    estimate = BUILD_SECONDS_WARM if timing.is_file() else BUILD_SECONDS_COLD
    log.warning(
        "building TensorRT %s engine for %s on %s (TensorRT %s, %s): %s. This can take up to %.0f min; "
        "the result is cached in %s",
        plan.key.precision,
        plan.build_onnx.name,
        gpu.name,
        trt.__version__,
        plan.key.build_path,
        reason,
        estimate / 60,
        plan.path.parent,
    )
    if on_long_build is not None:
        on_long_build(float(estimate))
    start = time.monotonic()
    blob = build(trt, plan.build_onnx, plan.key.build_path, plan.key.profile, workspace_mb, timing)
    write_engine(plan.path, blob, plan.key, plan.manifest, plan.build_onnx.name, model_location(onnx_path))
    seconds = time.monotonic() - start
    log.warning("TensorRT engine built in %.0f s: %s", seconds, plan.path)
    for old in prune_siblings(plan.path):
        log.warning("removed superseded engine %s", old.name)
    return EngineRecord(plan.path, plan.key, built=True, reason=reason, seconds=seconds)


def load_engine(runtime, onnx_path: str | Path, cache_dir: str | Path, **options):
    """Deserialise the cached engine (building it if needed); a plan TensorRT rejects is
    deleted and rebuilt once. Returns (ICudaEngine, EngineRecord)."""
    record = ensure_engine(onnx_path, cache_dir, **options)
    if not record.built:
        try:
            return _deserialise(runtime, record.path), record
        except EngineRejected as exc:
            log.warning(
                "TensorRT could not deserialise %s (%s); deleting it and rebuilding", record.path, exc
            )
        record.path.unlink(missing_ok=True)
        record = ensure_engine(
            onnx_path, cache_dir, force=True, why="cached engine failed to deserialise", **options
        )
    try:
        return _deserialise(runtime, record.path), record
    except EngineRejected as exc:
        raise ConfigError(
            f"{record.path}: TensorRT cannot deserialise the engine it just built ({exc})"
        ) from exc


class EngineRejected(Exception):
    """TensorRT would not deserialise a plan; the message says what it reported."""


def _deserialise(runtime, path: Path):
    """The engine; :class:`EngineRejected` when TensorRT rejects the plan (it returns None and
    logs; some bindings raise instead)."""
    try:
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
    except (RuntimeError, TypeError, ValueError) as exc:
        raise EngineRejected(str(exc)) from exc
    if engine is None:
        raise EngineRejected("TensorRT returned no engine (its log says why)")
    return engine
