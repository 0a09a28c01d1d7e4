"""What the runtime checks of a deserialised TensorRT engine before it runs a frame.

Input: a TensorRT ``ICudaEngine`` (or a stand-in with the same methods). Output: the input's
min/opt/max shapes (:func:`input_range`), or a ConfigError naming the engine when its tensors are
not the folded sonomap contract (:func:`check_engine_io`) or its input has no usable shape.
"""

from __future__ import annotations

from edge_runtime.errors import ConfigError

INPUT, OUTPUTS = "frame", ("prob", "mask")
EXPECTED_IO = {"frame": ("INPUT", "UINT8"), "prob": ("OUTPUT", "FLOAT"), "mask": ("OUTPUT", "UINT8")}
PROFILE_SHAPES = 3  # min, opt, max
NCHW = 4


def input_range(engine, origin) -> list[tuple[int, ...]]:
    """min/opt/max (N, 1, H, W) of the input: profile 0, or the engine's fixed input shape when the
    profile is empty or holds -1 (TensorRT's failure value, e.g. for a static engine)."""
    try:
        shapes = [tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(INPUT, 0)]
    except (RuntimeError, TypeError, ValueError, IndexError):
        shapes = []
    if len(shapes) == PROFILE_SHAPES and all(len(s) == NCHW and min(s) > 0 for s in shapes):
        return shapes
    fixed = tuple(int(d) for d in engine.get_tensor_shape(INPUT))
    if len(fixed) != NCHW or min(fixed) <= 0:
        raise ConfigError(
            f"{origin}: engine input '{INPUT}' has no usable optimisation profile ({shapes}) "
            f"and no fixed shape ({fixed})"
        )
    return [fixed] * PROFILE_SHAPES


def check_engine_io(trt, engine, origin) -> None:
    """The engine must have exactly the folded contract's tensors, modes and dtypes."""
    found = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        found[name] = (engine.get_tensor_mode(name).name, engine.get_tensor_dtype(name).name)
    if found != EXPECTED_IO:
        raise ConfigError(
            f"{origin}: engine tensors are {found}, expected {EXPECTED_IO} "
            "(not built from a folded sonomap ONNX)"
        )
