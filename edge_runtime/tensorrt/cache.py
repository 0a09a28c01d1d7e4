"""The engine cache: files named by their :class:`EngineKey`, written atomically, checked before use.

Layout of a cache directory (e.g. systemd's ``CacheDirectory=sonomap`` -> /var/cache/sonomap):

- ``<model>-<precision>-<digest16>.engine``: the serialized plan;
- ``<...>.engine.yaml``: its manifest (format tensorrt) with ``extra.engine_key`` (the full
  key) and ``sha256`` of the plan, so a truncated or foreign file is detected before
  TensorRT sees it, and ``source.onnx_location`` (a hash of the ONNX file's absolute path):
  two models with one file name in different folders share a cache without pruning each
  other's engines;
- ``<...>.engine.lock``: an empty file that :func:`~edge_runtime.tensorrt.lock.engine_lock`
  holds (``flock``) while one process checks, builds and writes that engine; kept while its
  engine is, and deleted with a pruned engine only when no process holds it;
- ``.<...>.engine.<random>.tmp``, ``.<...>.engine.yaml.<random>.tmp``: a plan or manifest being
  written (below); one that a killed writer left is removed by the next process that takes that
  engine's lock (:func:`~edge_runtime.tensorrt.lock.remove_leftovers`);
- ``timing-trt<version>-<gpu>-sm<cc>.cache``: the builder's timing cache, one per
  TensorRT version and GPU (its contents are only valid there), kept between builds.

The plan and its manifest are each written to a temp file, fsynced and renamed (plan first); the
manifest's ``sha256`` is that of the plan bytes written, not re-read from the file afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.atomic import atomic_write_bytes, check_creatable
from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path, save_manifest, sha256_file
from edge_runtime.tensorrt.key import EngineKey, GpuInfo, machine_mismatches
from edge_runtime.tensorrt.lock import remove_idle_lock

ENGINE_SUFFIX = ".engine"
DIGEST_CHARS = 16
# Under systemd, CacheDirectory=sonomap sets $CACHE_DIRECTORY (/var/cache/sonomap, persistent);
# from a shell the default is the user's own cache, which is not the service's
SERVICE_CACHE_DIR = Path("/var/cache/sonomap/engines")
DEFAULT_CACHE_DIR = (
    Path(os.environ["CACHE_DIRECTORY"].split(":")[0])
    if os.environ.get("CACHE_DIRECTORY")
    else Path.home() / ".cache" / "sonomap"
) / "engines"
LOCATION_CHARS = 16  # of the sha256 of the model's absolute path: unique enough for one cache folder
LOAD, BUILD = "load", "build"


def check_cache_dir(cache_dir: str | Path, label: str) -> None:
    """ConfigError ``LABEL DIR: ...`` when ``cache_dir`` cannot be an engine cache: it exists and is
    not a folder (the ONNX model itself, given as if --out named the engine file), or it is missing
    and cannot be made. Checked before TensorRT loads, not minutes later when the engine is written.
    An existing folder may be read-only: a valid cached engine is loaded without writing. An empty
    value is refused: ``Path("")`` is the working folder, and an unset shell variable is no choice."""
    if not str(cache_dir).strip():
        raise ConfigError(
            f"{label} is empty: give the engine cache folder, e.g. {label} /var/cache/sonomap/engines"
        )
    cache_dir = Path(cache_dir)
    if cache_dir.is_dir():
        return
    if cache_dir.exists() or cache_dir.is_symlink():
        raise ConfigError(f"{label} {cache_dir}: exists and is not a folder: give the engine cache folder")
    check_creatable(cache_dir, label)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def engine_path(cache_dir: str | Path, model_stem: str, key: EngineKey) -> Path:
    return (
        Path(cache_dir) / f"{_slug(model_stem)}-{key.precision}-{key.digest()[:DIGEST_CHARS]}{ENGINE_SUFFIX}"
    )


def timing_cache_path(cache_dir: str | Path, key: EngineKey) -> Path:
    return (
        Path(cache_dir)
        / f"timing-trt{_slug(key.trt_version)}-{_slug(key.gpu_name)}-sm{key.compute_capability}.cache"
    )


def model_location(onnx_path: str | Path) -> str:
    """Which model an engine belongs to, whatever its content: a hash of the ONNX file's absolute
    path (a hash, not the path: the manifest may be copied off the cart, and a folder may be
    named after a patient). An updated model at the same path keeps its location."""
    resolved = str(Path(onnx_path).resolve())
    return hashlib.sha256(resolved.encode()).hexdigest()[:LOCATION_CHARS]


def write_engine(
    path: str | Path,
    plan: bytes,
    key: EngineKey,
    onnx_manifest: Manifest,
    onnx_name: str,
    location: str | None = None,
) -> Path:
    """Store a plan and its manifest (plan first, so a manifest never points at nothing), both
    durably; the manifest's sha256 is the plan's, from the bytes in hand. ``location``
    (:func:`model_location`) lets :func:`prune_siblings` tell models apart."""
    path = Path(path)
    if not plan:
        raise ConfigError(f"{path}: refusing to cache an empty TensorRT plan")
    atomic_write_bytes(path, plan, durable=True)
    origin = {} if location is None else {"onnx_location": location}
    manifest = onnx_manifest.derive(
        format="tensorrt",
        source={**onnx_manifest.source, "onnx": onnx_name, "onnx_sha256": key.onnx_sha256, **origin},
        versions={**onnx_manifest.versions, "tensorrt": key.trt_version},
        extra={**onnx_manifest.extra, "precision": key.precision, "engine_key": key.to_dict()},
    )
    save_manifest(manifest, path, sha256=hashlib.sha256(plan).hexdigest(), durable=True)
    return path


def engine_location(path: str | Path) -> str | None:
    """The ``source.onnx_location`` recorded beside an engine; None when there is none (an engine
    cached before locations were recorded) or its manifest is missing or unreadable."""
    try:
        location = load_manifest(path, verify_hash=False).source.get("onnx_location")
    except (ConfigError, InputError):
        return None
    return location if isinstance(location, str) else None


# Key fields that make engines of one model different *uses* rather than versions: an engine
# built by 'sonomap export tensorrt --min/--opt/--max' and the service's own (manifest profile)
# must not delete each other.
USE_FIELDS = ("profile", "workspace_mb")


def _same_use(path: Path, key: EngineKey) -> bool:
    """Whether the engine at ``path`` was built for the same profile and workspace as ``key``
    (False when its key cannot be read: it is left alone)."""
    try:
        other = read_engine_key(path)
    except (ConfigError, InputError):
        return False
    return all(getattr(other, name) == getattr(key, name) for name in USE_FIELDS)


def prune_siblings(keep: str | Path) -> list[Path]:
    """Delete the other engines of the same model and precision (older ONNX, TensorRT or GPU
    keys) after a successful build, so a cart updated for months does not fill its disk.
    "The same model" is the same file name *and* the same recorded location: another folder's
    model.onnx sharing the cache keeps its engines, and an engine whose owner is unknown (no
    location recorded) is left alone. Only engines built for the same profile and workspace
    (:data:`USE_FIELDS`) are superseded: one per profile is kept. A deleted engine's lock file
    goes with it unless a process holds it; files this user may not delete (another user's) are
    left. Returns the deleted engine paths."""
    keep = Path(keep)
    location = engine_location(keep)
    if location is None:
        return []
    try:
        key = read_engine_key(keep)
    except (ConfigError, InputError):
        return []
    prefix = keep.name[: -(DIGEST_CHARS + len(ENGINE_SUFFIX))]  # "<model>-<precision>-"
    removed = []
    for old in keep.parent.glob(f"{prefix}*{ENGINE_SUFFIX}"):
        if (
            old != keep
            and len(old.name) == len(keep.name)
            and engine_location(old) == location
            and _same_use(old, key)
            and _delete_engine(old)
        ):
            removed.append(old)
    return removed


def _delete_engine(engine: Path) -> bool:
    """Delete an engine, its manifest and (unless held) its lock; False, with all three left, when
    this user may not delete the engine (another user's, in a sticky shared folder): a pruning
    that cannot delete one superseded engine must not fail the build that superseded it."""
    try:
        engine.unlink(missing_ok=True)
    except PermissionError:
        return False
    manifest_path(engine).unlink(missing_ok=True)
    remove_idle_lock(engine)
    return True


@dataclass
class CacheState:
    action: str  # LOAD or BUILD
    reason: str


def read_engine_key(path: str | Path) -> EngineKey:
    """The key recorded beside an engine; raises when the manifest is missing or malformed."""
    path = Path(path)
    manifest = load_manifest(path, verify_hash=False)
    if "engine_key" not in manifest.extra:
        raise ConfigError(f"{manifest_path(path)}: no 'extra.engine_key'; not an engine written by sonomap")
    return EngineKey.from_dict(manifest.extra["engine_key"], origin=str(manifest_path(path)))


def inspect_cached(path: str | Path, key: EngineKey) -> CacheState:
    """Decide whether the engine at ``path`` may be loaded for ``key`` (pure file checks)."""
    path = Path(path)
    if not path.is_file():
        return CacheState(BUILD, f"no cached engine {path.name}")
    if not manifest_path(path).is_file():
        return CacheState(BUILD, f"{path.name} has no manifest beside it; its origin is unknown")
    try:
        manifest = load_manifest(path, verify_hash=False)
        cached = read_engine_key(path)
    except (ConfigError, InputError) as exc:
        return CacheState(BUILD, f"manifest of {path.name} is unreadable ({exc})")
    if path.stat().st_size == 0 or sha256_file(path) != manifest.sha256:
        return CacheState(BUILD, f"{path.name} is corrupt or truncated (sha256 differs from its manifest)")
    differences = key.mismatches(cached)
    if differences:
        return CacheState(BUILD, f"{path.name} is stale: " + "; ".join(differences))
    return CacheState(LOAD, f"cached engine {path.name} matches")


def check_engine_file(path: str | Path, gpu: GpuInfo, trt_version: str) -> EngineKey:
    """For an engine named explicitly (not via the cache): refuse one from another GPU or
    TensorRT version, or a corrupt file, with a message saying how to rebuild."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: engine file not found")
    try:
        load_manifest(path, verify_hash=True)
    except ConfigError as exc:
        raise ConfigError(f"{path}: corrupt engine file ({exc})") from exc
    key = read_engine_key(path)
    problems = machine_mismatches(key, gpu, trt_version)
    if problems:
        raise ConfigError(
            f"{path}: engine unusable here: {'; '.join(problems)}; rebuild it on this machine "
            "with 'sonomap export tensorrt --onnx MODEL.onnx --out DIR'"
        )
    return key
