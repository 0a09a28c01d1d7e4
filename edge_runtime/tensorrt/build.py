"""Build a serialized TensorRT plan from a folded ONNX model (TensorRT 10/11 Python API).

Steps (NVIDIA TensorRT Python API: Builder, OnnxParser, IBuilderConfig, ITimingCache):
builder -> network (STRONGLY_TYPED flag on the strongly typed path) -> ONNX parser, every
parser error collected -> config: workspace pool limit, FP16 flag on the 10.x weak-typing
path only, one optimisation profile for the ``frame`` input, timing cache loaded from and
saved back to disk -> ``build_serialized_network``.

Not testable on machines without TensorRT and a GPU: ``sonomap selfcheck`` proves it on
the target.
"""
from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime.errors import ConfigError, SonomapError
from edge_runtime.atomic import atomic_write_bytes
from edge_runtime.tensorrt.key import PATH_FP16_FLAG, PATH_STRONGLY_TYPED

log = logging.getLogger("sonomap.tensorrt")
MIB = 1 << 20


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
    if build_path == PATH_STRONGLY_TYPED:
        # On TensorRT 11 every network is strongly typed and the flag is accepted and ignored.
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def build_plan(trt, onnx_path: str | Path, build_path: str, profile: dict[str, dict[str, list[int]]],
               workspace_mb: int, timing_cache: str | Path | None, logger=None) -> bytes:
    """Parse ``onnx_path`` and build a plan; ``profile`` maps input name -> min/opt/max shapes."""
    onnx_path = Path(onnx_path)
    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, build_path))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = parser_errors(parser)
        raise EngineBuildError(f"{onnx_path}: TensorRT {trt.__version__} ONNX parser reported {len(errors)} "
                               f"error(s): " + " | ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) * MIB)
    if build_path == PATH_FP16_FLAG:
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    for name in inputs:
        if name not in profile:
            raise ConfigError(f"{onnx_path}: no optimisation profile for input {name!r} (have {sorted(profile)})")
        shapes = profile[name]
        opt_profile.set_shape(name, tuple(shapes["min"]), tuple(shapes["opt"]), tuple(shapes["max"]))
    config.add_optimization_profile(opt_profile)
    cache = None
    if timing_cache is not None:
        timing_cache = Path(timing_cache)
        blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
        cache = config.create_timing_cache(blob)
        # ignore_mismatch=False: a cache from another GPU/TensorRT is not merged (the file name
        # already separates them; this is the second line of defence).
        config.set_timing_cache(cache, False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError(f"{onnx_path}: TensorRT {trt.__version__} could not build an engine "
                               f"({build_path}, workspace {workspace_mb} MiB); see the TensorRT log above")
    if cache is not None:
        atomic_write_bytes(timing_cache, bytes(cache.serialize()), durable=True)  # now holds this build's timings too
        log.info("timing cache saved to %s", timing_cache)
    return bytes(plan)
