"""Build a serialized TensorRT plan from a folded ONNX model (TensorRT 10/11 Python API).

Steps (NVIDIA TensorRT Python API: Builder, OnnxParser, IBuilderConfig, ITimingCache; read in
NVIDIA/TensorRT's python/docstrings/infer/pyCoreDoc.h and python/src/infer/pyCore.cpp at
tags v10.3.0, v10.13.0 and v11.1):
builder -> network (STRONGLY_TYPED flag on the strongly typed path) -> ONNX parser, every
parser error collected -> config: workspace pool limit, FP16 flag on the 10.x weak-typing
path only, TF32 (on by default) cleared on the FP32 path, one optimisation profile for the
``frame`` input, timing cache loaded from and saved back to disk -> ``build_serialized_network``.

Not testable on machines without TensorRT and a GPU: ``sonomap selfcheck`` proves it on
the target.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.tensorrt import modules
from edge_runtime.tensorrt.key import PATH_FP16_FLAG, PATH_FP32, PATH_STRONGLY_TYPED, parse_version

log = logging.getLogger("sonomap.tensorrt")
MIB = 1 << 20
ALWAYS_STRONGLY_TYPED_FROM = 11  # major version


class EngineBuildError(SonomapError):
    """The ONNX parser or the TensorRT builder rejected the model."""


def parser_errors(parser) -> list[str]:
    """Every error the ONNX parser recorded, one readable string each."""
    errors = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        parts = [str(err.desc()) if hasattr(err, "desc") else str(err)]
        if hasattr(err, "node") and err.node() >= 0:
            op = err.node_operator() if hasattr(err, "node_operator") else ""
            name = err.node_name() if hasattr(err, "node_name") else ""
            parts.append(f"at node {err.node()} {op} {name}".rstrip())
        if hasattr(err, "code"):
            parts.append(f"[{err.code()}]")
        errors.append(" ".join(parts))
    return errors


def network_flags(trt, build_path: str) -> int:
    """``create_network`` flags. 10.12 - 10.x: the STRONGLY_TYPED bit on the strongly typed path
    (its value is read from the enum: it is 1 in 10.x and 0 in 11.x). 11.x: none, since
    "Strongly typed mode is always enabled" there and the flag is deprecated (NvInfer.h, v11.1)."""
    if build_path == PATH_STRONGLY_TYPED and parse_version(trt.__version__)[0] < ALWAYS_STRONGLY_TYPED_FROM:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def build_plan(
    trt,
    onnx_path: str | Path,
    build_path: str,
    profile: dict[str, dict[str, list[int]]],
    workspace_mb: int,
    timing_cache: str | Path | None,
    logger=None,
) -> bytes:
    """Parse ``onnx_path`` and build a plan; ``profile`` maps input name -> min/opt/max shapes.
    ``logger`` defaults to the process's shared one (:func:`edge_runtime.tensorrt.modules.trt_logger`)."""
    onnx_path = Path(onnx_path)
    # the process's logger, the runtime's too; a Builder that cannot start is TensorRTUnavailable
    builder = trt.Builder(logger) if logger is not None else modules.construct(trt, "Builder")
    logger = logger or modules.trt_logger(trt)
    network = builder.create_network(network_flags(trt, build_path))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = parser_errors(parser)
        raise EngineBuildError(
            f"{onnx_path}: TensorRT {trt.__version__} ONNX parser reported {len(errors)} "
            f"error(s): " + " | ".join(errors)
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) * MIB)
    if build_path == PATH_FP16_FLAG:
        config.set_flag(trt.BuilderFlag.FP16)
    if build_path == PATH_FP32 and hasattr(trt.BuilderFlag, "TF32"):
        # kTF32 is "Enabled by default" (NvInfer.h, 10.3 - 10.13): left set, an "fp32" engine runs its
        # convolutions and matrix products in TF32 (10-bit mantissa) on Ampere and later GPUs
        config.clear_flag(trt.BuilderFlag.TF32)
    opt_profile = builder.create_optimization_profile()
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    for name in inputs:
        if name not in profile:
            raise ConfigError(
                f"{onnx_path}: no optimisation profile for input {name!r} (have {sorted(profile)})"
            )
        shapes = profile[name]
        opt_profile.set_shape(name, tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
    # set_shape raises RuntimeError on inconsistent shapes; add_optimization_profile instead returns
    # "the index of the optimization profile ... or -1 if the input is not valid" (pyCoreDoc.h, 10.3 - 11.1).
    if config.add_optimization_profile(opt_profile) < 0:
        raise EngineBuildError(
            f"{onnx_path}: TensorRT {trt.__version__} rejected the optimisation profile {profile}"
        )
    # ``cache`` stays referenced until the plan is built: "The cache must not be destroyed until
    # after the engine is built" (IBuilderConfig.set_timing_cache docstring, TensorRT 10.3 - 11.1).
    cache = attach_timing_cache(config, Path(timing_cache)) if timing_cache is not None else None
    modules.logged_errors(trt)  # forget earlier errors: only the build's own explain its failure
    plan = builder.build_serialized_network(network, config)  # None on failure, the reason in the log
    if plan is None:
        raise EngineBuildError(
            f"{onnx_path}: TensorRT {trt.__version__} could not build an engine "
            f"({build_path}, workspace {workspace_mb} MiB): {modules.logged_errors(trt) or 'see its log'}"
        )
    if cache is not None:
        save_timing_cache(config, Path(timing_cache))
    return bytes(plan)


def attach_timing_cache(config, path: Path):
    """Load the timing cache at ``path`` into ``config`` (an empty one when the file is missing or
    unreadable: a bad cache costs build time, never the build). Returns the attached cache.

    TensorRT Python API (python/src/infer/pyCore.cpp, 10.3 - 11.1): ``create_timing_cache``
    returns the C++ pointer as is, so a blob TensorRT cannot read gives None, not an exception;
    ``set_timing_cache`` returns a bool ("whether the operation is done successfully"), False
    e.g. for a cache made on another device.
    """
    blob = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(blob) if blob else None
    if blob and cache is None:
        log.warning(
            "timing cache %s is unreadable by this TensorRT; starting an empty one (it is rewritten "
            "after this build)",
            path,
        )
    elif cache is not None and not config.set_timing_cache(cache, False):
        # ignore_mismatch=False: a cache from another GPU/TensorRT is not merged (the file name
        # already separates them; this is the second line of defence).
        log.warning(
            "TensorRT refused the timing cache %s (made on another device or TensorRT?); "
            "starting an empty one",
            path,
        )
        cache = None
    if cache is None:
        cache = config.create_timing_cache(b"")
        if cache is None or not config.set_timing_cache(cache, False):
            raise EngineBuildError(f"TensorRT could not create an empty timing cache for {path}")
    return cache


def save_timing_cache(config, path: Path) -> None:
    """Write the cache the builder used (``get_timing_cache``: "The timing cache used in current
    IBuilderConfig, or None if no timing cache is set") back to ``path``, atomically; a write that
    fails is a warning, never the build's failure."""
    used = config.get_timing_cache()
    if used is None:
        log.warning("TensorRT reports no timing cache after the build; %s is not updated", path)
        return
    try:
        atomic_write_bytes(path, bytes(used.serialize()), durable=True)  # now holds this build's timings too
    except OSError as exc:  # a full disk: the engine just built (minutes of work) is still good
        log.warning("timing cache %s not saved (%s); the next build measures its timings again", path, exc)
        return
    log.info("timing cache saved to %s", path)
