"""What a TensorRT engine depends on, and which build path a TensorRT version needs.

An engine runs only with the exact TensorRT version that built it, on the same GPU model
(NVIDIA: "engines are specific to the exact GPU model they were built on"), and only for
the ONNX file, precision and input range it was built from. :class:`EngineKey` records all
of these; its digest names the cache file, so any change selects a different file and
triggers a build, and :meth:`EngineKey.mismatches` explains why a given engine is unusable.

Build paths (TensorRT docs: 10.12 release notes deprecate weak typing; the 10.x -> 11.x
migration guide removes ``BuilderFlag.FP16`` in favour of strongly typed FP16 networks):

- ``fp32``: plain network, no precision flag;
- ``fp16-builder-flag``: TensorRT 10.0 - 10.11, FP32 ONNX + ``BuilderFlag.FP16``
  (JetPack 6 ships 10.3);
- ``strongly-typed``: TensorRT >= 10.12 and 11.x, network created with
  ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` from the FP16 ONNX (``model.fp16.onnx``),
  whose tensor types decide the precision.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

from edge_runtime.errors import ConfigError
from edge_runtime.tensorrt import modules

FP32, FP16 = "fp32", "fp16"
PRECISIONS = (FP32, FP16)
PATH_FP32 = "fp32"
PATH_FP16_FLAG = "fp16-builder-flag"
PATH_STRONGLY_TYPED = "strongly-typed"
MIN_TRT = (10, 0)  # the name-based v3 API (set_tensor_address/execute_async_v3)
STRONGLY_TYPED_FROM = (10, 12)  # weak typing (BuilderFlag.FP16) deprecated from here, removed in 11
NOT_CHECKED_FROM = (12,)  # the next major release: refused until its API is read (pyproject pins < 12)
# Part of every key, so of every cache file name. Bump it whenever the build settings change
# (edge_runtime/tensorrt/build.py: builder flags, network creation, parser options): an engine
# built with the old settings has the same ONNX, GPU, TensorRT and profile, and would otherwise
# still be loaded. 2: TF32 cleared on the FP32 path.
KEY_SCHEMA = 2


def parse_version(text: str) -> tuple[int, ...]:
    """'10.3.0.30' -> (10, 3, 0, 30); raises ConfigError on text without a leading number.

    By hand: ``packaging`` is not among the Jetson runtime's packages, and only the numbers matter."""
    parts = re.findall(r"\d+", str(text).split("+")[0])
    if not parts:
        raise ConfigError(f"cannot read a TensorRT version from {text!r}")
    return tuple(int(p) for p in parts)


def choose_build_path(trt_version: str, precision: str, has_fp16_flag: bool = True) -> str:
    """The build path for this TensorRT version and precision (see module docstring)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {PRECISIONS}")
    version = parse_version(trt_version)
    if version[:2] < MIN_TRT:
        raise ConfigError(
            f"TensorRT {trt_version} is too old: sonomap needs TensorRT >= 10.0 "
            "(name-based tensor API, execute_async_v3)"
        )
    if version[:1] >= NOT_CHECKED_FROM:
        raise ConfigError(
            f"TensorRT {trt_version} is not supported yet: sonomap is checked against the 10.x and "
            f"11.x Python API; install TensorRT < {NOT_CHECKED_FROM[0]} ('pip install sonomap[tensorrt]' "
            "pins it)"
        )
    if precision == FP32:
        return PATH_FP32
    if version[:2] >= STRONGLY_TYPED_FROM or not has_fp16_flag:
        return PATH_STRONGLY_TYPED
    return PATH_FP16_FLAG


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "8.7"
    sm_count: int


def current_gpu(device_index: int = 0) -> GpuInfo:
    """The GPU this process would build/run on (pycuda; no context is created)."""
    cuda = modules.import_pycuda_driver()
    dev = cuda.Device(device_index)
    major, minor = dev.compute_capability()
    return GpuInfo(
        name=str(dev.name()),
        compute_capability=f"{major}.{minor}",
        sm_count=int(dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)),
    )


@dataclass(frozen=True)
class EngineKey:
    # of the bytes of the ONNX file the network is parsed from (hashed, not taken from its manifest)
    onnx_sha256: str
    gpu_name: str
    compute_capability: str
    sm_count: int
    trt_version: str
    precision: str
    build_path: str
    profile: dict = field(default_factory=dict)  # input -> {"min": [...], "opt": [...], "max": [...]}
    workspace_mb: int = 0
    schema: int = KEY_SCHEMA

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, origin: str = "<engine key>") -> EngineKey:
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise ConfigError(f"{origin}: malformed engine key ({exc})") from exc

    def digest(self) -> str:
        """sha256 of the canonical JSON of every field: the cache file name."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def mismatches(self, other: EngineKey) -> list[str]:
        """Human-readable differences ``field: engine has X, this machine/model needs Y``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"{name}: engine has {theirs[name]!r}, needed {mine[name]!r}"
            for name in mine
            if mine[name] != theirs.get(name)
        ]


def machine_mismatches(engine_key: EngineKey, gpu: GpuInfo, trt_version: str) -> list[str]:
    """Only the machine part of a key comparison: the GPU (name, compute capability and SM count, as
    in the cache key: an engine is specific to the exact GPU) and the TensorRT version."""
    problems = []
    if engine_key.trt_version != trt_version:
        problems.append(f"built with TensorRT {engine_key.trt_version}, this machine has {trt_version}")
    built = (engine_key.gpu_name, engine_key.compute_capability, engine_key.sm_count)
    if built != (gpu.name, gpu.compute_capability, gpu.sm_count):
        name, capability, sm_count = built
        problems.append(
            f"built for {name} (sm {capability}, {sm_count} SMs), "
            f"this machine has {gpu.name} (sm {gpu.compute_capability}, {gpu.sm_count} SMs)"
        )
    return problems
