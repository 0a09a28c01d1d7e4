"""Types and ranges of the runtime config values (config.py checks names, this checks values).

Found by fuzzing (tests/test_fuzz.py): a YAML edit like ``overlay: {alpha: abc}`` or
``inference: {threads: x}`` used to pass loading and crash later with a bare ValueError.
:func:`check_values` raises :class:`ConfigError` naming ``section.key`` instead. Keys not
listed here are not checked (config.py owns which keys exist).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from edge_runtime.errors import ConfigError

RGB_CHANNELS = 3
RGB_MAX = 255
ROI_FIELDS = 4
SIZE_FIELDS = 2
MAX_DIMENSION_PX = 16384  # 16K: above any scanner output; a typo'd 1080000 must not allocate gigabytes
MAX_MESSAGE_CHARS = 300  # a fuzzed value can be huge: the one-line error stays readable


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def opt(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def positive(v: Any) -> bool:
    return _num(v) and v > 0


def non_negative(v: Any) -> bool:
    return _num(v) and v >= 0


def unit(v: Any) -> bool:
    return _num(v) and 0 <= v <= 1


def text(v: Any) -> bool:
    return isinstance(v, str)


def flag(v: Any) -> bool:
    return isinstance(v, bool)


def count(v: Any) -> bool:
    return _int(v) and v >= 1


def dimension(v: Any) -> bool:
    return _int(v) and 1 <= v <= MAX_DIMENSION_PX


def roi_rect(v: Any) -> bool:
    return (
        v is None
        or isinstance(v, str)
        or (isinstance(v, (list, tuple)) and len(v) == ROI_FIELDS and all(_num(x) for x in v))
    )


def input_size(v: Any) -> bool:
    return (
        v is None
        or (_int(v) and v > 0)
        or (isinstance(v, (list, tuple)) and len(v) == SIZE_FIELDS and all(_int(x) and x > 0 for x in v))
    )


def source_input(v: Any) -> bool:
    return v is None or isinstance(v, str) or (_int(v) and v >= 0)


def boxes(v: Any) -> bool:
    """A list of [x, y, w, h] screen boxes (x, y >= 0; w, h >= 1)."""
    return isinstance(v, list) and all(
        isinstance(b, (list, tuple))
        and len(b) == ROI_FIELDS
        and all(_int(c) for c in b)
        and b[0] >= 0
        and b[1] >= 0
        and b[2] >= 1
        and b[3] >= 1
        for b in v
    )


def overlay_classes(v: Any) -> bool:
    if not isinstance(v, dict):
        return False
    for style in v.values():
        if not isinstance(style, dict):  # unknown style keys: Overlay.from_config names them
            return False
        color = style.get("color")
        if color is not None and not (
            isinstance(color, (list, tuple))
            and len(color) == RGB_CHANNELS
            and all(_int(c) and 0 <= c <= RGB_MAX for c in color)
        ):
            return False
        if not (unit(style.get("alpha", 0)) and all(flag(style.get(k, True)) for k in ("contour", "show"))):
            return False
    return True


CHECKS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "source": {
        "input": (source_input, "a path, URL, device or 'synthetic'"),
        "loop": (flag, "true/false"),
        "realtime": (flag, "true/false"),
        "fps": (opt(positive), "a number > 0"),
        "width": (opt(dimension), f"an integer in [1, {MAX_DIMENSION_PX}]"),
        "height": (opt(dimension), f"an integer in [1, {MAX_DIMENSION_PX}]"),
        "fourcc": (opt(text), "4 characters"),
        "image": (opt(text), "a path"),
        "frames": (opt(count), "an integer >= 1"),
        "max_frames": (opt(count), "an integer >= 1"),
    },
    "roi": {
        "rect": (roi_rect, "auto, full or [x, y, w, h]"),
        "mm_per_pixel": (opt(positive), "a number > 0"),
    },
    "inference": {
        "model": (opt(text), "a path"),
        "backend": (text, "a backend name"),
        "device": (text, "auto, cpu or cuda"),
        "threads": (opt(count), "an integer >= 1"),
        "fp16": (flag, "true/false"),
        "cuda_graphs": (flag, "true/false"),
        "input_size": (input_size, "[h, w] integers"),
        "retry_after_s": (non_negative, "a number >= 0"),
        "retry_max_s": (non_negative, "a number >= 0"),
        "reload_after_errors": (count, "an integer >= 1"),
        "enabled": (flag, "true/false"),
        "deadline_ms": (positive, "a number > 0"),
        "stall_restart_s": (opt(positive), "a number > 0, or null (never restart)"),
    },
    "overlay": {
        "alpha": (unit, "a number in [0, 1]"),
        "contour": (flag, "true/false"),
        "classes": (overlay_classes, "{class: {color: [r, g, b], alpha, contour, show}}"),
        "legend": (flag, "true/false"),
        "hud": (flag, "true/false"),
        "ema": (unit, "a number in [0, 1)"),
        "threshold": (opt(unit), "a number in [0, 1]"),
        "style": (lambda v: v in ("mask", "heatmap"), "mask or heatmap"),
    },
    "sinks": {
        "video": (opt(text), "a path"),
        "raw": (opt(text), "a path"),
        "masks": (opt(text), "a folder"),
        "window": (flag, "true/false"),
        "fullscreen": (flag, "true/false"),
        "preset": (text, "an x264 preset"),
        "summary": (opt(text), "a path"),
        "fps": (opt(positive), "a number > 0"),
        "min_free_gb": (non_negative, "a number >= 0 (GB)"),
        "retention_days": (opt(positive), "a number > 0 (days)"),
    },
    "live": {
        "mode": (text, "latest or strict"),
        "stale_ms": (non_negative, "a number >= 0"),
        "fade_ms": (non_negative, "a number >= 0"),
        "duration_s": (opt(positive), "a number > 0"),
    },
    "privacy": {
        "deidentify": (flag, "true/false"),
        "blank": (boxes, "a list of [x, y, w, h] integer boxes (w, h >= 1)"),
        "keep": (boxes, "a list of [x, y, w, h] integer boxes (w, h >= 1)"),
    },
}


def check_values(config: dict, origin: str = "<config>") -> None:
    """Raise ConfigError naming the first ``section.key`` whose value has a wrong type/range."""
    for section, keys in CHECKS.items():
        values = config.get(section) or {}
        for key, (check, expected) in keys.items():
            if key in values and not check(values[key]):
                raise ConfigError(
                    f"{origin}: config key '{section}.{key}' must be {expected}, got {values[key]!r}"[
                        :MAX_MESSAGE_CHARS
                    ]
                )
