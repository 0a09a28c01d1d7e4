"""Overlay stage: draw the prediction over the scanner screen, plus HUD, legend, banners.

Input: the full BGR frame, its ROI, a Prediction at ROI size (or None), HUD values and the AI's
state (:class:`edge_runtime.aistate.AiStatus`). Output: a new BGR frame (the input is never modified),
or the decoder's I420 planes drawn in place (:meth:`Overlay.render_i420`). The state is a coloured
badge at the right end of the HUD row (:mod:`edge_runtime.render.hudrow`: above the ROI when the screen
has room there, else below it, else in its bottom-right corner, the legend then lifted clear of it); it is
drawn even with the HUD switched off.
The prediction is painted by :mod:`edge_runtime.render.mask` (class colours) or
:mod:`edge_runtime.render.heatmap` (``overlay.style: heatmap``); what each class looks like comes from
:mod:`edge_runtime.render.styles`; the warning banners at the ROI's top are laid out and drawn by
:mod:`edge_runtime.render.banners` (the same lines in both paths). Optional EMA smoothing of the
probability reduces flicker; ``flicker`` reports the mean fraction of ROI pixels whose class changed
between consecutive frames (lower is steadier).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge_runtime import yuv
from edge_runtime.aistate import AiStatus
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.frames import Prediction
from edge_runtime.mask_filter import MaskFilter, filter_mask
from edge_runtime.render import banners as banner_lines
from edge_runtime.render import heatmap, hudrow
from edge_runtime.render.mask import MaskPainter, draw_legend, legend_size
from edge_runtime.render.styles import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    HEATMAP_STYLE,
    MASK_STYLE,
    ClassStyle,
    checked_ema,
    checked_style,
    class_styles,
    cut_off,
)
from edge_runtime.roi import Roi

HUD_SCALE = hudrow.HUD_SCALE
MIN_HUD_SCALE = hudrow.MIN_HUD_SCALE
# the banners' full-size line and colours, for whoever reads a rendered frame (the live safety checks)
BANNER_PX = banner_lines.BANNER_PX
BANNER_BGR = banner_lines.BANNER_BGR
HUD_REFRESH_S = 0.25  # the YUV path re-renders the HUD text at most this often (values change every frame)


@dataclass
class Overlay:
    """Renders frames. Build with :meth:`from_config` (manifest classes + config overrides)."""

    styles: dict[int, ClassStyle]
    threshold: float = DEFAULT_THRESHOLD
    legend: bool = True
    hud: bool = True
    ema: float = 0.0  # 0 disables smoothing; else weight of the newest prob
    cancer_index: int = 1
    style: str = MASK_STYLE  # heatmap: what is drawn is the probability (edge_runtime.render.heatmap)
    mask_filter: MaskFilter | None = None  # the manifest's: which mask parts count as a finding
    heat_floor: float = heatmap.HEAT_FLOOR  # heatmap style: nothing below it is painted (floor_for)
    # overlay.threshold replaces the manifest's: the backend's mask was cut at the manifest's, so the
    # mask drawn is cut again from the probability (then the mask filter, as the runtime applies it)
    recut: bool = False
    _smoothed: np.ndarray | None = field(default=None, repr=False)
    _previous_mask: np.ndarray | None = field(default=None, repr=False)
    _flicker_sum: float = 0.0
    _flicker_n: int = 0
    _mask: MaskPainter = field(init=False, repr=False)
    # the YUV path's HUD row: (time, key, layout, BGR patch)
    _hud_patch: tuple | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._mask = MaskPainter(self.styles)

    @classmethod
    def from_config(cls, manifest, config: OverlayConfig | None = None) -> Overlay:
        """The model's classes styled by the config's ``overlay`` section (None: its defaults), checked
        by :mod:`edge_runtime.render.styles`."""
        config = OverlayConfig() if config is None else config
        threshold = cut_off(manifest, config)
        return cls(
            class_styles(manifest, config),
            threshold,
            bool(config.legend),
            bool(config.hud),
            checked_ema(config),
            manifest.cancer_index,
            checked_style(config),
            manifest.mask_filter,
            heatmap.floor_for(manifest, threshold),
            recut=threshold != manifest.threshold,
        )

    # --- temporal smoothing ---------------------------------------------------
    def smooth(self, mask: np.ndarray, prob: np.ndarray | Prediction, temporal: bool = True) -> np.ndarray:
        """EMA over the cancer probability (when enabled); returns the mask to draw.
        ``prob``: the probability at the mask's size, or the Prediction it comes from (whose ``prob``
        is read only when smoothing, an own ``overlay.threshold`` or the heat map needs it, so a plain
        frame never makes the full-size float image). In heatmap style it returns the (smoothed)
        probability as uint8 levels instead, the contour carried in them (heatmap.contour_on).
        ``temporal=False`` (live ``strict``: a frame's own mask only) leaves out the EMA alone: the
        own threshold and the heat map's levels still apply, so both styles draw what they promise."""
        ema = self.ema if temporal else 0.0
        if ema > 0.0:
            prob = _probability(prob)
            if self._smoothed is None or self._smoothed.shape != prob.shape:
                self._smoothed = prob.astype(np.float32).copy()
            else:
                cv2.addWeighted(prob, ema, self._smoothed, 1.0 - ema, 0.0, dst=self._smoothed)
            out = self._cut(self._smoothed, float(self._smoothed.max()), mask.shape)
        elif self.recut:
            peak = prob.native_prob.max() if isinstance(prob, Prediction) else prob.max()
            out = self._cut(_probability(prob), float(peak), mask.shape)
        elif self.style == HEATMAP_STYLE:  # the contour: the runtime's (filtered) mask, cut on the float
            out = mask * self._at_cut(_probability(prob), mask.shape)  # not on the 8-bit colour levels
        else:
            out = mask
        if self._previous_mask is not None and self._previous_mask.shape == out.shape:
            self._flicker_sum += float(np.count_nonzero(out != self._previous_mask)) / out.size
            self._flicker_n += 1
        self._previous_mask = out
        if self.style == HEATMAP_STYLE:
            shown = self._smoothed if ema > 0.0 else _probability(prob)
            return heatmap.contour_on(heatmap.levels(shown, out.shape), out, self.threshold)
        return out

    def _at_cut(self, prob: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """uint8 0/1 at ``shape``: probability >= the cut-off (as the folded graph cuts)."""
        if prob.shape != shape:
            prob = cv2.resize(prob, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        return np.greater_equal(prob, self.threshold).view(np.uint8)

    def _cut(self, prob: np.ndarray, peak: float, shape: tuple[int, ...]) -> np.ndarray:
        """The cancer mask at ``shape`` cut at the cut-off, then the manifest's mask filter with the
        frame's ``peak`` probability (as the runtime applies it to the backend's mask)."""
        out = self._at_cut(prob, shape) * np.uint8(self.cancer_index)
        return filter_mask(out, peak, self.mask_filter)

    def reset_smoothing(self) -> None:
        """Start the EMA afresh: the next :meth:`smooth` blends nothing of an image that is gone."""
        self._smoothed = self._previous_mask = None

    @property
    def flicker(self) -> float:
        return self._flicker_sum / self._flicker_n if self._flicker_n else 0.0

    # --- drawing --------------------------------------------------------------
    def render(
        self,
        image: np.ndarray,
        roi: Roi,
        mask: np.ndarray | None,
        fade: float = 1.0,
        hud: dict | None = None,
        banners: list[tuple[str, str]] | None = None,
        ai: AiStatus | None = None,
    ) -> np.ndarray:
        """Return a copy of ``image`` with mask (alpha x ``fade``), HUD, banners and AI badge drawn."""
        out = image.copy()
        region = roi.crop(out)
        heat = self.style == HEATMAP_STYLE
        if mask is not None and fade > 0.0:
            if heat:
                heatmap.draw_heat(region, mask, self.threshold, self._heat_alpha(), fade, self.heat_floor)
            else:
                self._mask.paint(region, mask, fade)
        layout = hudrow.layout(out.shape[1], out.shape[0], roi, (hud or {}) if self.hud else None, ai)
        above_row = region[: roi.h - self._legend_lift(layout, roi)]
        if self.legend and heat:
            heatmap.draw_legend(above_row, self.threshold, roi.h, self.heat_floor, self._heat_alpha())
        elif self.legend:
            draw_legend(above_row, self._legend_styles(), roi.h)
        if banners:  # most frames have none: they never enter the banners module
            banner_lines.draw(region, banner_lines.layout(banners, roi.w, roi.h))
        if layout is not None:
            hudrow.draw(out, layout, 0, 0)
        return out

    def render_i420(
        self,
        i420: np.ndarray,
        roi: Roi,
        mask: np.ndarray | None,
        fade: float = 1.0,
        hud: dict | None = None,
        banners: list[tuple[str, str]] | None = None,
        ai: AiStatus | None = None,
    ) -> np.ndarray:
        """Same drawing as :meth:`render`, IN PLACE on an I420 frame ``(H*3/2, W)`` (the decoder's
        planes, see :mod:`edge_runtime.yuv`); returns it. Mask blending touches only the mask's
        box in Y/U/V; legend, banners and HUD are drawn on small boxes by the BGR code."""
        heat = self.style == HEATMAP_STYLE
        if heat and mask is not None and fade > 0.0:
            heatmap.draw_heat_i420(i420, roi, mask, self.threshold, self._heat_alpha(), fade, self.heat_floor)
        elif mask is not None and fade > 0.0:
            self._mask.paint_i420(i420, roi, mask, fade)
        layout, patch = self._row_i420(i420, roi, hud or {}, ai)
        lift = self._legend_lift(layout, roi)
        if self.legend and heat:
            heatmap.draw_legend_i420(i420, roi, self.threshold, self.heat_floor, self._heat_alpha(), lift)
        elif self.legend:
            lw, lh = legend_size(self._legend_styles(), roi.h)
            bottom = roi.y + roi.h - lift
            corner = (roi.x, max(roi.y, bottom - lh), roi.x + min(lw, roi.w), bottom)  # in the ROI
            with yuv.bgr_box(i420, corner) as box:
                if box is not None:
                    draw_legend(box, self._legend_styles(), roi.h)
        lines = banner_lines.layout(banners, roi.w, roi.h) if banners else []
        if lines:  # the same lines as the BGR path, on a box just their height
            top = (roi.x, roi.y, roi.x + roi.w, roi.y + banner_lines.height(lines))
            with yuv.bgr_box(i420, top) as box:
                if box is not None:
                    banner_lines.draw(box, lines)
        if layout is not None:
            with yuv.bgr_box(i420, layout.box) as box:
                if box is not None:
                    box[...] = patch[: box.shape[0], : box.shape[1]]
        return i420

    def _legend_lift(self, row: hudrow.Row | None, roi: Roi) -> int:
        """Rows to lift the legend (bottom-left) by so the HUD row, when it sits in the ROI and
        reaches that far left, covers none of it."""
        covered = hudrow.rows_in_roi(row, roi)
        if not covered:  # the row above or below the ROI, as on a scanner's screen: no legend to measure
            return 0
        heat = self.style == HEATMAP_STYLE
        legend_w = (heatmap.legend_size(roi.h) if heat else legend_size(self._legend_styles(), roi.h))[0]
        return covered if row.box[0] < roi.x + legend_w else 0

    def _heat_alpha(self) -> float:
        return self.styles[self.cancer_index].alpha if self.cancer_index in self.styles else DEFAULT_ALPHA

    def _row_i420(self, i420: np.ndarray, roi: Roi, hud: dict, ai: AiStatus | None):
        """The HUD row's layout and its drawn patch (both None when there is no row)."""
        # The text (fps, latency) changes every frame; re-render it a few times a second and
        # paste the cached patch in between: putText with anti-aliasing is the costly part.
        # A change of AI state is drawn at once.
        now = time.monotonic()
        width, height = i420.shape[1], i420.shape[0] * 2 // 3  # I420: the Y plane, then U and V
        key = (width, height, roi, None if ai is None else ai.state)
        cached = self._hud_patch
        if cached is None or now - cached[0] >= HUD_REFRESH_S or cached[1] != key:
            layout = hudrow.layout(width, height, roi, hud if self.hud else None, ai)
            patch = None
            if layout is not None:
                x0, y0, x1, y1 = layout.box
                patch = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
                hudrow.draw(patch, layout, x0, y0)
            cached = self._hud_patch = (now, key, layout, patch)
        return cached[2], cached[3]

    def _legend_styles(self) -> list[ClassStyle]:
        # a hidden class gets no swatch: the legend names only colours the overlay can paint
        return [s for s in self.styles.values() if s.show]


def _probability(prob: np.ndarray | Prediction) -> np.ndarray:
    return prob.prob if isinstance(prob, Prediction) else prob
