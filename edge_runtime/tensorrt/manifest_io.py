"""The keys of a manifest's ``io`` section that an engine build reads, checked before any of them is used.

The manifest loader keeps ``io`` a free-form mapping (what it holds depends on the exporter), so
the engine path checks the keys it reads itself: ``io.inputs`` (a list of tensor mappings),
``io.opset`` (an integer) and ``io.profile`` (min/opt/max ``[N, 1, H, W]`` shapes). Both the
backend's start-up :func:`~edge_runtime.tensorrt.preflight.preflight` and
:func:`~edge_runtime.tensorrt.engines.plan_engine` call :func:`check_io`, so a wrong type is one
line naming the manifest file and the key, never an AttributeError or KeyError from deep inside.

Input: the model path (whose manifest is named in the error) and its loaded manifest. Output:
nothing when the keys are usable; otherwise a ConfigError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, manifest_path
from edge_runtime.typed_config import shown

PROFILE_KEYS = ("min", "opt", "max")
PROFILE_RANK = 4  # [N, 1, H, W]: the folded graph's one input


def check_io(onnx_path: str | Path, manifest: Manifest) -> None:
    """ConfigError naming the manifest and the key when ``io.inputs``, ``io.opset`` or ``io.profile``
    has a type the engine build cannot use; absent keys are left to the checks that need them."""
    origin = manifest_path(onnx_path)
    inputs = manifest.io.get("inputs")
    if inputs is not None and not (isinstance(inputs, list) and all(isinstance(t, dict) for t in inputs)):
        raise ConfigError(
            f"{origin}: 'io.inputs' must be a list of {{name, dtype, shape}} mappings, got {shown(inputs)}"
        )
    opset = manifest.io.get("opset")
    if opset is not None and not _is_integer(opset):
        raise ConfigError(f"{origin}: 'io.opset' must be an integer, got {shown(opset)}")
    profile = manifest.io.get("profile")
    if profile is not None:
        check_profile(profile, origin)


def check_profile(profile: Any, origin: str | Path) -> None:
    """A usable optimisation profile: a mapping with ``min``, ``opt`` and ``max``, each
    ``[N, 1, H, W]`` positive integers, with min <= opt <= max in every dimension (TensorRT refuses
    anything else, but only after a build has started)."""
    want = "a mapping of min/opt/max [N, 1, H, W] shapes"
    if not isinstance(profile, dict):
        raise ConfigError(f"{origin}: 'io.profile' must be {want}, got {shown(profile)}")
    for name in PROFILE_KEYS:
        if name not in profile:
            raise ConfigError(f"{origin}: 'io.profile' has no '{name}' (it must be {want})")
        shape = profile[name]
        if not (
            isinstance(shape, list | tuple)
            and len(shape) == PROFILE_RANK
            and all(_is_integer(d) and d > 0 for d in shape)
        ):
            raise ConfigError(
                f"{origin}: 'io.profile.{name}' must be [N, 1, H, W] positive integers, got {shown(shape)}"
            )
    for axis in range(PROFILE_RANK):
        low, opt, high = (profile[name][axis] for name in PROFILE_KEYS)
        if not low <= opt <= high:
            raise ConfigError(
                f"{origin}: 'io.profile' dimension {axis} must satisfy min <= opt <= max, "
                f"got {low}/{opt}/{high}"
            )


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # YAML's true is an int to Python
