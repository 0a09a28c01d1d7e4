"""What the overlay paints, per class: the model's classes styled by the runtime config's ``overlay``.

Input: the model's manifest (class ids, names, RGB colours, threshold, the cancer class) and the
``overlay`` config section (:class:`edge_runtime.config_schema.OverlayConfig`: default alpha and
contour, per-class ``color``/``alpha``/``contour``/``show`` keyed by class name, ``ema``, ``style``,
``threshold``). Output: :class:`ClassStyle` per painted class and the checked settings, which
:meth:`edge_runtime.render.overlay.Overlay.from_config` builds the renderer from. Bad keys, unknown
class names and out-of-range values are a :class:`ConfigError` naming the key. No drawing here.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.config_schema import CLASS_KEYS, OverlayConfig, check_cancer_visible
from edge_runtime.errors import ConfigError

DEFAULT_THRESHOLD = 0.5  # two classes: cancer where its probability is the larger one
DEFAULT_ALPHA = 0.4  # the tint shows, and the speckle under it stays readable
MASK_STYLE, HEATMAP_STYLE = "mask", "heatmap"
STYLES = (MASK_STYLE, HEATMAP_STYLE)
BACKGROUND_ID = 0  # background tissue is never painted


@dataclass
class ClassStyle:
    name: str
    bgr: tuple[int, int, int]
    alpha: float = DEFAULT_ALPHA
    contour: bool = True
    show: bool = True


def class_styles(manifest, config: OverlayConfig) -> dict[int, ClassStyle]:
    """class id -> style for every class but the background: the manifest's colour, overridden by
    ``overlay.classes.<name>`` (a mapping keyed by class name), else the section's defaults. Settings
    that would never draw the cancer class are refused here too: a struct built in code skips the
    loader's check."""
    check_cancer_visible(config, "overlay settings")
    styles = {}
    for c in manifest.classes:
        if c.id == BACKGROUND_ID:
            continue
        o = config.classes.get(c.name) or {}
        bad = set(o) - CLASS_KEYS
        if bad:
            raise ConfigError(f"overlay.classes.{c.name}: unknown key {sorted(bad)[0]!r}")
        r, g, b = o.get("color", c.color)
        styles[c.id] = ClassStyle(
            c.name,
            (int(b), int(g), int(r)),
            float(o.get("alpha", config.alpha)),
            bool(o.get("contour", config.contour)),
            bool(o.get("show", True)),
        )
    for name in config.classes:
        if name not in {c.name for c in manifest.classes}:
            raise ConfigError(f"overlay.classes: {name!r} is not a class of model {manifest.name!r}")
    return styles


def checked_ema(config: OverlayConfig) -> float:
    """``overlay.ema`` in [0, 1) (a struct built in code is not validated: check what would break rendering)."""
    ema = float(config.ema)
    if not 0.0 <= ema < 1.0:
        raise ConfigError(f"overlay.ema must be in [0, 1), got {ema}")
    return ema


def checked_style(config: OverlayConfig) -> str:
    """``overlay.style``: one of :data:`STYLES`."""
    if config.style not in STYLES:
        raise ConfigError(f"overlay.style must be one of {STYLES}, got {config.style!r}")
    return config.style


def cut_off(manifest, config: OverlayConfig) -> float:
    """The cancer probability cut-off: ``overlay.threshold``, else the manifest's."""
    return float(manifest.threshold if config.threshold is None else config.threshold)
