"""Get a usable engine for a folded ONNX model: load the cached one or build it.

:func:`plan_engine` is the decision (pure: files + versions, testable without a GPU);
:func:`ensure_engine` acts on it (TensorRT needed); :func:`load_engine` deserialises and,
when TensorRT rejects a cached plan, replaces it once: under the entry's lock, and only while the
file is still the plan it rejected (another process may have replaced it). The engine is keyed on the
sha256 of the bytes of the ONNX file the build parses, and a build runs under the entry's
:func:`~edge_runtime.tensorrt.lock.engine_lock`, so concurrent processes build it once.

Before any build it logs a clear warning and calls ``on_long_build(seconds_estimate)``:
the service passes a callback that sends systemd ``EXTEND_TIMEOUT_USEC`` so the unit's
start timeout does not kill a first-boot build.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path, sha256_file
from edge_runtime.tensorrt import modules
from edge_runtime.tensorrt.build import build_plan
from edge_runtime.tensorrt.cache import (
    LOAD,
    CacheState,
    engine_path,
    inspect_cached,
    model_location,
    prune_siblings,
    timing_cache_path,
    write_engine,
)
from edge_runtime.tensorrt.key import FP16, EngineKey, GpuInfo, choose_build_path, current_gpu
from edge_runtime.tensorrt.lock import engine_lock
from edge_runtime.tensorrt.preflight import INPUT_NAME, check_folded
from edge_runtime.tensorrt.twin import resolve_build_onnx

log = logging.getLogger("sonomap.tensorrt")

DEFAULT_WORKSPACE_MB = 1024
MIN_WORKSPACE_MB = 64
# 1 TiB: far above any GPU's memory, and int(mb) * MiB still fits the builder's 64-bit size_t
MAX_WORKSPACE_MB = 1 << 20
# Seconds announced to systemd before a build: FCN-101 FP16 takes minutes on a Jetson Orin
# without a timing cache; with one, far less. Generous on purpose: overshooting only delays
# the watchdog, undershooting gets the service killed mid-build.
BUILD_SECONDS_COLD = 1200
BUILD_SECONDS_WARM = 400

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


@dataclass
class _Request:
    """One engine asked for; TensorRT, the GPU and the builder default to the installed ones."""

    onnx_path: Path
    cache_dir: Path
    precision: str = FP16
    profile: dict | None = None
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    on_long_build: LongBuildHook | None = None
    trt: object = None
    gpu: GpuInfo | None = None
    build: Callable[..., bytes] | None = None

    def __post_init__(self) -> None:
        self.onnx_path, self.cache_dir = Path(self.onnx_path), Path(self.cache_dir)
        self.trt = self.trt or modules.import_tensorrt()
        self.gpu = self.gpu or current_gpu()
        self.build = self.build or build_plan

    def plan(self) -> EnginePlan:
        version, has_flag = self.trt.__version__, hasattr(self.trt.BuilderFlag, "FP16")
        args = (self.onnx_path, self.cache_dir, self.precision, version, self.gpu, has_flag, self.profile)
        return plan_engine(*args, self.workspace_mb)


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
    request = _Request(onnx_path, cache_dir, precision, profile, workspace_mb, on_long_build, trt, gpu, build)
    plan = request.plan()
    if plan.state.action == LOAD and not force:  # no lock to load: a read-only cache serves too
        return _cached(plan)
    with engine_lock(plan.path):
        return _build_unless_cached(request, force, why)


def _cached(plan: EnginePlan) -> EngineRecord:
    return EngineRecord(plan.path, plan.key, built=False, reason=plan.state.reason, seconds=0.0)


def _build_unless_cached(request: _Request, force: bool, why: str | None) -> EngineRecord:
    """Decide again and build if still needed; the caller holds the engine's lock (another process
    may have built it while this one waited for the lock)."""
    plan = request.plan()
    if plan.state.action == LOAD and not force:
        return _cached(plan)
    return _build(request, plan, why or plan.state.reason)


def _build(request: _Request, plan: EnginePlan, reason: str) -> EngineRecord:
    """Build the planned engine (the caller holds its lock), store it and prune the engines it supersedes."""
    trt = request.trt
    timing = timing_cache_path(plan.path.parent, plan.key)
    estimate = BUILD_SECONDS_WARM if timing.is_file() else BUILD_SECONDS_COLD
    log.warning(
        "building TensorRT %s engine for %s on %s (TensorRT %s, %s): %s. This can take up to %.0f min; "
        "the result is cached in %s",
        plan.key.precision,
        plan.build_onnx.name,
        request.gpu.name,
        trt.__version__,
        plan.key.build_path,
        reason,
        estimate / 60,
        plan.path.parent,
    )
    if request.on_long_build is not None:
        request.on_long_build(float(estimate))
    start = time.monotonic()
    blob = request.build(
        trt, plan.build_onnx, plan.key.build_path, plan.key.profile, request.workspace_mb, timing
    )
    location = model_location(request.onnx_path)
    write_engine(plan.path, blob, plan.key, plan.manifest, plan.build_onnx.name, location)
    seconds = time.monotonic() - start
    log.warning("TensorRT engine built in %.0f s: %s", seconds, plan.path)
    for old in prune_siblings(plan.path):
        log.warning("removed superseded engine %s", old.name)
    return EngineRecord(plan.path, plan.key, built=True, reason=reason, seconds=seconds)


def load_engine(runtime, onnx_path: str | Path, cache_dir: str | Path, **options):
    """Deserialise the cached engine (building it if needed); a plan TensorRT rejects is deleted and
    rebuilt once. Returns (ICudaEngine, EngineRecord)."""
    record = ensure_engine(onnx_path, cache_dir, **options)
    if not record.built:
        blob = None
        try:
            blob = _read_plan(record.path)
            return _deserialise(runtime, blob), record
        except EngineRejected as exc:
            log.warning("TensorRT could not deserialise %s (%s); replacing it", record.path, exc)
        rejected = hashlib.sha256(blob).hexdigest() if blob is not None else None
        record = _replace_rejected(_Request(onnx_path, cache_dir, **options), record.path, rejected)
    try:
        return _deserialise(runtime, _read_plan(record.path)), record
    except EngineRejected as exc:
        made = "it just built" if record.built else "another process rebuilt"
        raise ConfigError(f"{record.path}: TensorRT cannot deserialise the engine {made} ({exc})") from exc


def _replace_rejected(request: _Request, path: Path, rejected: str | None) -> EngineRecord:
    """Delete the rejected engine and build it again, under its lock and only while the file is still
    the one rejected: another process that rejected it too may already have put a good one there,
    which is then loaded rather than deleted and built a second time."""
    try:
        with engine_lock(path):
            if _digest(path) == rejected:
                path.unlink(missing_ok=True)
            return _build_unless_cached(request, force=False, why="cached engine failed to deserialise")
    except OSError as exc:  # e.g. a read-only cache: the engine can be neither replaced nor rebuilt
        raise ConfigError(f"{path}: cannot replace the engine TensorRT rejected ({exc})") from exc


def _digest(path: Path) -> str | None:
    """sha256 of the file's bytes; None when there is no file (another process removed it)."""
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


class EngineRejected(Exception):
    """TensorRT would not deserialise a plan, or it could not be read; the message says why."""


def _read_plan(path: Path) -> bytes:
    """The plan's bytes; :class:`EngineRejected` when they cannot be read (another process may have
    removed or replaced the file since the cache was checked)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EngineRejected(f"cannot read it: {exc}") from exc


def _deserialise(runtime, blob: bytes):
    """The engine; :class:`EngineRejected` when TensorRT rejects the plan (it returns None and
    logs; some bindings raise instead)."""
    modules.logged_errors()  # forget earlier errors: only this call's explain its failure
    try:
        engine = runtime.deserialize_cuda_engine(blob)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise EngineRejected(str(exc)) from exc
    if engine is None:
        raise EngineRejected(f"TensorRT returned no engine ({modules.logged_errors() or 'its log says why'})")
    return engine
