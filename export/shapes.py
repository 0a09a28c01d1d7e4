"""Input shapes of an exported model: a fixed ROI size or dynamic H/W with a range.

The range (min/opt/max ``[N,1,H,W]``) is recorded in the manifest's ``io.profile`` so the
TensorRT engine build on the cart (which may not import export) uses the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.errors import ConfigError

INPUT_NAME = "frame"
OUTPUT_NAMES = ("prob", "mask")
OUTPUT_DTYPES = {"prob": "float32", "mask": "uint8"}
# Defaults sized for a scanner screen's B-mode area (about 1200x840 on a 1080p screen).
DEFAULT_MIN_HW = (64, 64)
DEFAULT_OPT_HW = (840, 1200)
DEFAULT_MAX_HW = (1080, 1920)
DEFAULT_MAX_BATCH = 4
# Upper limits of a shape flag. The cart runs one video stream, and an 8K frame is twice a 4K
# scanner screen: anything larger is a typo, which TensorRT would only report, as a TypeError
# from its 32-bit Dims or an out-of-memory build, long after the manifest recorded it.
MAX_BATCH = 64
MAX_SIDE = 8192


def parse_hw(text: str, flag: str) -> tuple[int, int]:
    """'480x640' -> (480, 640); a bad value names the flag."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"{flag} {text!r}: expected HEIGHTxWIDTH, e.g. 480x640") from exc
    if h <= 0 or w <= 0:
        raise ConfigError(f"{flag} {text!r}: height and width must be positive")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ConfigError(f"{flag} {text!r}: height and width must be at most {MAX_SIDE} pixels")
    return h, w


def parse_nchw(text: str, flag: str) -> list[int]:
    """'1x1x480x640' -> [1, 1, 480, 640]. The batch must be 1: the TensorRT backend binds one
    (1, 1, H, W) frame, and no flag of ``export tensorrt`` asks for a batched engine."""
    try:
        dims = [int(v) for v in text.lower().split("x")]
    except ValueError as exc:
        raise ConfigError(f"{flag} {text!r}: expected NxCxHxW, e.g. 1x1x480x640") from exc
    if len(dims) != 4 or dims[1] != 1 or min(dims) <= 0:
        raise ConfigError(f"{flag} {text!r}: expected N x 1 x H x W with positive sizes")
    if dims[0] > MAX_BATCH or max(dims[2:]) > MAX_SIDE:
        raise ConfigError(
            f"{flag} {text!r}: the batch must be at most {MAX_BATCH} and height and width at most {MAX_SIDE}"
        )
    if dims[0] != 1:
        raise ConfigError(
            f"{flag} {text!r}: the batch must be 1 (the runtime runs one frame at a time), e.g. 1x1x{dims[2]}x{dims[3]}"
        )
    return dims


def given_shapes(args) -> dict[str, str | None]:
    """The --min/--opt/--max texts (None where not given)."""
    return {"min": args.min_shape, "opt": args.opt_shape, "max": args.max_shape}


def checked_profile(given: dict[str, str | None], base: dict, origin: str) -> dict[str, list[int]]:
    """min/opt/max [N,1,H,W] from the flags in ``given``, the others from ``base`` (whose origin
    ``origin`` names the error); each dimension must satisfy min <= opt <= max."""
    profile = {k: parse_nchw(v, f"--{k}") if v else list(base.get(k, [])) for k, v in given.items()}
    missing = [k for k, v in profile.items() if not v]
    if missing:
        raise ConfigError(f"--{missing[0]} is needed ({origin} has no io.profile)")
    for axis in range(4):
        if not profile["min"][axis] <= profile["opt"][axis] <= profile["max"][axis]:
            raise ConfigError(
                f"--min/--opt/--max: dimension {axis} must satisfy min <= opt <= max, got "
                f"{profile['min'][axis]}/{profile['opt'][axis]}/{profile['max'][axis]}"
            )
    return profile


@dataclass
class ShapeSpec:
    roi: tuple[int, int] | None = None  # fixed (H, W); None = dynamic H/W
    dynamic_batch: bool = False
    min_hw: tuple[int, int] = DEFAULT_MIN_HW
    opt_hw: tuple[int, int] = DEFAULT_OPT_HW
    max_hw: tuple[int, int] = DEFAULT_MAX_HW
    max_batch: int = DEFAULT_MAX_BATCH

    def validate(self) -> None:
        if self.roi is None:
            for i, axis in enumerate(("height", "width")):
                if not self.min_hw[i] <= self.opt_hw[i] <= self.max_hw[i]:
                    raise ConfigError(
                        f"shape range: {axis} must satisfy min <= opt <= max, got "
                        f"{self.min_hw[i]} / {self.opt_hw[i]} / {self.max_hw[i]}"
                    )
        if not 1 <= self.max_batch <= MAX_BATCH:
            raise ConfigError(f"--max-batch must be between 1 and {MAX_BATCH}, got {self.max_batch}")
        sides = [*(self.roi or ()), *self.min_hw, *self.opt_hw, *self.max_hw]
        if max(sides) > MAX_SIDE:
            raise ConfigError(f"shape range: height and width must be at most {MAX_SIDE}, got {max(sides)}")

    @property
    def dims(self) -> list:
        """Symbolic input dims as recorded in the manifest and the ONNX graph."""
        batch = "batch" if self.dynamic_batch else 1
        if self.roi is None:
            return [batch, 1, "height", "width"]
        return [batch, 1, self.roi[0], self.roi[1]]

    def example_hw(self) -> tuple[int, int]:
        return self.roi if self.roi is not None else self.opt_hw

    def profile(self) -> dict[str, list[int]]:
        """TensorRT optimisation profile for the input: min/opt/max [N,1,H,W]."""
        max_n = self.max_batch if self.dynamic_batch else 1
        if self.roi is not None:
            lo, opt, hi = self.roi, self.roi, self.roi
        else:
            lo, opt, hi = self.min_hw, self.opt_hw, self.max_hw
        return {"min": [1, 1, *lo], "opt": [1, 1, *opt], "max": [max_n, 1, *hi]}

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes: dict[int, str] = {}
        if self.dynamic_batch:
            axes[0] = "batch"
        if self.roi is None:
            axes.update({2: "height", 3: "width"})
        return {name: dict(axes) for name in (INPUT_NAME, *OUTPUT_NAMES)}

    def io(self, opset: int) -> dict:
        """The manifest's ``io`` section (the runtime reads names/dtypes/shapes from it)."""
        return {
            "inputs": [{"name": INPUT_NAME, "dtype": "uint8", "shape": self.dims}],
            "outputs": [{"name": n, "dtype": OUTPUT_DTYPES[n], "shape": self.dims} for n in OUTPUT_NAMES],
            "opset": opset,
            "dynamic_hw": self.roi is None,
            "dynamic_batch": self.dynamic_batch,
            "profile": self.profile(),
        }
