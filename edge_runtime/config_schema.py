"""The runtime config as typed structs: one section per pipeline stage, keys, types, ranges, defaults.

This is the one place the runtime's defaults live (``edge_runtime/configs/default.yaml`` is the
commented copy shipped; a test checks it against these structs). Read with
``edge_runtime.config.load_config``; code reads attributes (``config.overlay.alpha``).
A bad value is a one-line ``ConfigError``: ``config key 'overlay.alpha' must be a number in [0, 1]``.
"""

# no `from __future__ import annotations`: msgspec reads these annotations as objects
from typing import Annotated, Any, Literal

from msgspec import Meta, field

from edge_runtime.typed_config import Rule, Section, described, finite, number

RGB_CHANNELS = 3
RGB_MAX = 255
MAX_DIMENSION_PX = 16384  # 16K: above any scanner output; a typo'd 1080000 must not allocate gigabytes
LIVE_MODES = ("latest", "strict")
OVERLAY_STYLES = ("mask", "heatmap")

FLAG = described(bool, "true/false")
NUMBER = number("a number")
POSITIVE = number("a number > 0", gt=0)
NON_NEGATIVE = number("a number >= 0", ge=0)
UNIT = number("a number in [0, 1]", ge=0, le=1)
COUNT = number("an integer >= 1", integer=True, ge=1)
DIMENSION = number(f"an integer in [1, {MAX_DIMENSION_PX}]", integer=True, ge=1, le=MAX_DIMENSION_PX)
PATH = described(str | None, "a path")
PIXEL = Annotated[int, Meta(ge=0)]
EXTENT = Annotated[int, Meta(ge=1)]
SIDE = Annotated[int, Meta(ge=1)]
BOXES = described(
    list[tuple[PIXEL, PIXEL, EXTENT, EXTENT]], "a list of [x, y, w, h] integer boxes (w, h >= 1)"
)


def overlay_classes(v: Any) -> bool:
    """Per-class styles: {name: {color: [r, g, b], alpha, contour, show}} (unknown style keys are
    named by ``Overlay.from_config``, which knows the model's classes)."""
    for style in v.values():
        if not isinstance(style, dict):
            return False
        color = style.get("color")
        if color is not None and not (
            isinstance(color, (list, tuple))
            and len(color) == RGB_CHANNELS
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= RGB_MAX for c in color)
        ):
            return False
        alpha = style.get("alpha", 0)
        if not (finite(alpha) and 0 <= alpha <= 1):
            return False
        if not all(isinstance(style.get(k, True), bool) for k in ("contour", "show")):
            return False
    return True


class SourceConfig(Section):
    input: described(Annotated[int, Meta(ge=0)] | str | None, "a path, URL, device or 'synthetic'") = None
    loop: FLAG = False  # replay: start again at the end
    realtime: FLAG = False  # replay: pace at the clip's frame rate
    fps: POSITIVE | None = None  # capture/synthetic frame rate (None: device/clip default)
    width: DIMENSION | None = None  # V4L2 capture size
    height: DIMENSION | None = None
    fourcc: described(str | None, "4 characters") = None
    image: PATH = None  # synthetic: the BUSI image to animate
    frames: COUNT | None = None  # synthetic: number of frames (None: endless)
    max_frames: COUNT | None = None


class RoiConfig(Section):
    rect: described(
        str | tuple[NUMBER, NUMBER, NUMBER, NUMBER] | None,
        "auto, full or [x, y, w, h]",
    ) = "auto"
    mm_per_pixel: POSITIVE | None = None


class InferenceConfig(Section):
    model: PATH = None  # None: edge_runtime/models/default/model.onnx
    backend: described(str, "a backend name") = "auto"
    device: described(str, "auto, cpu or cuda") = "auto"
    threads: COUNT | None = None
    fp16: FLAG = True
    cuda_graphs: FLAG = False
    # int bounds in a union with a tuple crash msgspec's type compiler: the int's range is a Rule
    input_size: described(
        int | tuple[SIDE, SIDE] | None,
        "[h, w] integers",
        Rule(lambda v: not isinstance(v, int) or v > 0),
    ) = None
    retry_after_s: NON_NEGATIVE = 1.0
    retry_max_s: NON_NEGATIVE = 30.0
    reload_after_errors: COUNT = 3
    enabled: FLAG = True
    deadline_ms: POSITIVE = 1000.0
    stall_restart_s: described(POSITIVE | None, "a number > 0, or null (never restart)") = 30.0


class OverlayConfig(Section):
    alpha: UNIT = 0.4
    contour: FLAG = True
    classes: described(
        dict[str, Any], "{class: {color: [r, g, b], alpha, contour, show}}", Rule(overlay_classes)
    ) = field(default_factory=dict)
    legend: FLAG = True
    hud: FLAG = True
    ema: number("a number in [0, 1)", ge=0, lt=1) = 0.0
    threshold: described(UNIT | None, "a number in [0, 1]") = None  # None: the manifest's
    style: described(Literal[OVERLAY_STYLES], "mask or heatmap") = "mask"


class SinksConfig(Section):
    video: PATH = None
    raw: PATH = None
    masks: described(str | None, "a folder") = None
    window: FLAG = False
    fullscreen: FLAG = False
    preset: described(str, "an x264 preset") = "ultrafast"
    summary: PATH = None
    fps: POSITIVE | None = None
    min_free_gb: number("a number >= 0 (GB)", ge=0) = 1.0
    retention_days: described(POSITIVE | None, "a number > 0 (days)") = None


class LiveConfig(Section):
    mode: described(Literal[LIVE_MODES], f"one of {LIVE_MODES}") = "latest"
    stale_ms: NON_NEGATIVE = 500.0
    fade_ms: NON_NEGATIVE = 300.0
    duration_s: POSITIVE | None = None


class PrivacyConfig(Section):  # see edge_runtime/pipeline/deidentify.py
    deidentify: FLAG = True
    blank: BOXES = field(default_factory=list)
    keep: BOXES = field(default_factory=list)


class RuntimeConfig(Section):
    """The whole runtime config; sections in pipeline order."""

    source: SourceConfig = field(default_factory=SourceConfig)
    roi: RoiConfig = field(default_factory=RoiConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    sinks: SinksConfig = field(default_factory=SinksConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)


SECTIONS = tuple(RuntimeConfig.__struct_fields__)
