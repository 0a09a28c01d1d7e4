"""The runtime config as typed structs: one section per pipeline stage, keys, types, ranges, defaults.

This is the one place the runtime's defaults live (``edge_runtime/configs/default.yaml`` is the
commented copy shipped; a test checks it against these structs). Read with
``edge_runtime.config.load_config``; code reads attributes (``config.overlay.alpha``).
A bad value is a one-line ``ConfigError``: ``config key 'overlay.alpha' must be a number in [0, 1]``.
"""

# no `from __future__ import annotations`: the annotations are the checked types, read as objects
import math
import re
from typing import Annotated, Any, Literal

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import CANCER_CLASS, check_cancer_colour
from edge_runtime.typed_config import Rule, Section, described, finite, number
from edge_runtime.typed_struct import Meta, field

RGB_CHANNELS = 3
CLASS_KEYS = frozenset({"color", "alpha", "contour", "show"})  # what overlay.classes.<name> may set
RGB_MAX = 255
MAX_DIMENSION_PX = 16384  # 16K: above any scanner output; a typo'd 1080000 must not allocate gigabytes
LIVE_MODES = ("latest", "strict")
OVERLAY_STYLES = ("mask", "heatmap")
DEVICES = ("auto", "cpu", "cuda")
RECT_WORDS = ("", "auto", "full")  # roi.rect: decided from the frame
RECT_FIELDS = 4  # x, y, w, h
# libx264's presets (x264 --help): any other name fails in FFmpeg's avcodec_open2 only after the run
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
# Frame rates a source or a recording may claim: below 1 fps a realtime replay waits minutes a frame
# and the mp4's time base rounds to nothing; above 240 no scanner or capture card delivers frames.
MIN_FPS, MAX_FPS = 1, 240

FLAG = described(bool, "true/false")
NUMBER = number("a number")
POSITIVE = number("a number > 0", gt=0)
NON_NEGATIVE = number("a number >= 0", ge=0)
UNIT = number("a number in [0, 1]", ge=0, le=1)
# A tint's alpha: above MAX_ALPHA the colour hides the speckle under it, which the operator reads; below
# MIN_TINT_ALPHA a tint without its contour is too faint to see on a bright B-mode image, so a screen at
# AI ON would look cancer-free (0.15 still moves a grey level by about 40 of 255 towards the colour).
MAX_ALPHA, MIN_TINT_ALPHA = 0.7, 0.15
ALPHA = number(f"a number in [0, {MAX_ALPHA}]", ge=0, le=MAX_ALPHA)
COUNT = number("an integer >= 1", integer=True, ge=1)
DIMENSION = number(f"an integer in [1, {MAX_DIMENSION_PX}]", integer=True, ge=1, le=MAX_DIMENSION_PX)
PATH = described(str | None, "a path")
PIXEL = Annotated[int, Meta(ge=0)]
EXTENT = Annotated[int, Meta(ge=1)]
SIDE = Annotated[int, Meta(ge=1)]
# An own overlay threshold outside this band is all or nothing on any model: below it nearly every
# pixel is painted cancer, above it nearly none is, and a screen at AI ON would look cancer-free.
MIN_THRESHOLD, MAX_THRESHOLD = 0.01, 0.99
CUT_OFF_TEXT = f"a number in [{MIN_THRESHOLD}, {MAX_THRESHOLD}]"
CUT_OFF = number(CUT_OFF_TEXT, ge=MIN_THRESHOLD, le=MAX_THRESHOLD)
FPS = number(f"a number in [{MIN_FPS}, {MAX_FPS}] (frames per second)", ge=MIN_FPS, le=MAX_FPS)
BOXES = described(
    list[tuple[PIXEL, PIXEL, EXTENT, EXTENT]], "a list of [x, y, w, h] integer boxes (w, h >= 1)"
)


def rect_text(v: Any) -> bool:
    """A ``roi.rect`` given as text: auto, full or ``x,y,w,h`` finite numbers (what
    ``edge_runtime.roi.parse_roi`` reads), checked at load, not at the first frame."""
    if not isinstance(v, str) or v.strip().lower() in RECT_WORDS:
        return True
    parts = v.split(",")
    return len(parts) == RECT_FIELDS and all(_finite_text(p) for p in parts)


def _finite_text(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def overlay_classes(v: Any) -> bool:
    """Per-class styles: {name: {color: [r, g, b], alpha, contour, show}}; a class name the model
    lacks is named by ``Overlay.from_config``, which knows the model's classes."""
    for style in v.values():
        if not isinstance(style, dict) or set(style) - CLASS_KEYS:  # a misspelt key ('colour') is refused
            return False
        color = style.get("color")
        if color is not None and not (
            isinstance(color, (list, tuple))
            and len(color) == RGB_CHANNELS
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= RGB_MAX for c in color)
        ):
            return False
        alpha = style.get("alpha", 0)
        if not (finite(alpha) and 0 <= alpha <= MAX_ALPHA):
            return False
        if not all(isinstance(style.get(k, True), bool) for k in ("contour", "show")):
            return False
    return True


class SourceConfig(Section):
    input: described(Annotated[int, Meta(ge=0)] | str | None, "a path, URL, device or 'synthetic'") = None
    loop: FLAG = False  # replay: start again at the end
    realtime: FLAG = False  # replay: pace at the clip's frame rate
    fps: FPS | None = None  # capture/synthetic frame rate (None: device/clip default)
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
        Rule(rect_text),
    ) = "auto"
    mm_per_pixel: POSITIVE | None = None


class InferenceConfig(Section):
    model: PATH = None  # None: edge_runtime/models/default/model.onnx
    backend: described(str, "a backend name") = "auto"
    device: described(Literal[DEVICES], "auto, cpu or cuda") = "auto"
    threads: COUNT | None = None
    fp16: FLAG = True
    cuda_graphs: FLAG = False
    # a single int means a square side: its range is a Rule, a pair's sides are bounded by SIDE
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
    alpha: ALPHA = 0.4
    contour: FLAG = True
    classes: described(
        dict[str, Any],
        f"{{class: {{color: [r, g, b], alpha (0 to {MAX_ALPHA}), contour, show}}}}",
        Rule(overlay_classes),
    ) = field(default_factory=dict)
    legend: FLAG = True
    hud: FLAG = True
    ema: number("a number in [0, 1)", ge=0, lt=1) = 0.0
    # None: the manifest's. Below 1: a cut-off of 1 (probability >= 1) would hide nearly every lesion
    threshold: described(CUT_OFF | None, CUT_OFF_TEXT) = None
    style: described(Literal[OVERLAY_STYLES], "mask or heatmap") = "mask"


class SinksConfig(Section):
    video: PATH = None
    raw: PATH = None
    masks: described(str | None, "a folder") = None
    window: FLAG = False
    fullscreen: FLAG = False
    preset: described(Literal[X264_PRESETS], f"an x264 preset ({', '.join(X264_PRESETS)})") = "ultrafast"
    summary: PATH = None
    fps: FPS | None = None
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
    # the site's own pseudonym format, e.g. BX-[0-9]{4}: a study ID must match it whole (biopsy/study_id.py)
    study_id_pattern: described(str | None, "a regular expression") = None


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


def check_study_id_pattern(privacy: PrivacyConfig, origin: str) -> None:
    """A ``privacy.study_id_pattern`` that is no regular expression is a one-line ConfigError at load,
    not a traceback when the operator first types a study ID."""
    if privacy.study_id_pattern is None:
        return
    try:
        re.compile(privacy.study_id_pattern)
    except re.error as exc:
        raise ConfigError(
            f"{origin}: config key 'privacy.study_id_pattern' is not a regular expression ({exc})"
        ) from exc


def check_cancer_visible(overlay: OverlayConfig, origin: str) -> None:
    """Refuse (one-line ConfigError naming ``origin`` and the key) overlay settings that would never
    draw the cancer class: with the badge saying AI ON, raw video would then read as "no cancer".
    Every model has a class named ``cancer`` (the manifest's contract), so this needs no model and
    runs at load, on SIGHUP reload and on the renderer's own styles alike."""
    own = overlay.classes.get(CANCER_CLASS)
    own = own if isinstance(own, dict) else {}  # a struct built in code is unchecked: styles.py names it
    prefix = f"overlay.classes.{CANCER_CLASS}."
    alpha_key = prefix + "alpha" if "alpha" in own else "overlay.alpha"
    contour_key = prefix + "contour" if "contour" in own else "overlay.contour"
    alpha, contour = own.get("alpha", overlay.alpha), own.get("contour", overlay.contour)
    heatmap, no_tint = overlay.style == "heatmap", finite(alpha) and alpha <= 0
    faint = finite(alpha) and alpha < MIN_TINT_ALPHA
    why = None
    color = own.get("color")
    if (
        isinstance(color, (list, tuple))
        and len(color) == RGB_CHANNELS
        and all(isinstance(c, int) for c in color)
    ):
        check_cancer_colour(color, origin, f"config key '{prefix}color'")
    threshold = overlay.threshold
    if own.get("show", True) is False:
        key, why = prefix + "show", "false hides the cancer class"
    elif threshold is not None and not (finite(threshold) and MIN_THRESHOLD <= threshold <= MAX_THRESHOLD):
        key, why = (
            "overlay.threshold",
            f"{threshold} is outside [{MIN_THRESHOLD}, {MAX_THRESHOLD}], all or nothing on any model",
        )
    elif heatmap and no_tint:  # the heat map draws its threshold contour only with its tint
        key, why = alpha_key, "0 in the heatmap style paints nothing, not even the threshold contour"
    elif not heatmap and no_tint and not contour:
        key, why = alpha_key, f"0 with {contour_key} false paints nothing"
    elif not heatmap and faint and not contour:
        key, why = (
            alpha_key,
            f"{alpha:g} with {contour_key} false is too faint to see (below {MIN_TINT_ALPHA})",
        )
    if why is not None:
        raise ConfigError(
            f"{origin}: config key '{key}': {why}; the overlay must show cancer, or a screen with "
            "AI ON would look cancer-free (to see the raw video, set inference.enabled: false)"
        )
