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


def parse_hw(text: str, flag: str) -> tuple[int, int]:
    """'480x640' -> (480, 640); a bad value names the flag."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ConfigError(f"{flag} {text!r}: expected HEIGHTxWIDTH, e.g. 480x640") from exc
    if h <= 0 or w <= 0:
        raise ConfigError(f"{flag} {text!r}: height and width must be positive")
    return h, w


def parse_nchw(text: str, flag: str) -> list[int]:
    """'1x1x480x640' -> [1, 1, 480, 640]."""
    try:
        dims = [int(v) for v in text.lower().split("x")]
    except ValueError as exc:
        raise ConfigError(f"{flag} {text!r}: expected NxCxHxW, e.g. 1x1x480x640") from exc
    if len(dims) != 4 or dims[1] != 1 or min(dims) <= 0:
        raise ConfigError(f"{flag} {text!r}: expected N x 1 x H x W with positive sizes")
    return dims


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
        if self.max_batch < 1:
            raise ConfigError(f"--max-batch must be >= 1, got {self.max_batch}")

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
