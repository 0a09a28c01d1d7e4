"""overlay.threshold replaces the manifest's cut-off in what is drawn: the mask style's mask (with and
without smoothing), the heat map's contour (cut from the float probability, then the mask filter) and
its colours (a pixel between the two cut-offs keeps its own level)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_runtime.config_schema import OverlayConfig
from edge_runtime.frames import Prediction
from edge_runtime.manifest import DEFAULT_CLASSES, Manifest
from edge_runtime.mask_filter import MaskFilter, filter_mask
from edge_runtime.render import heatmap
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi

SIZE = 120
MANIFEST_THRESHOLD = 0.5
CANCER = 1
# three blobs: well over both cut-offs, between 0.3 and the manifest's 0.5, and between 0.5 and 0.7
BLOBS = [((slice(10, 50), slice(10, 50)), 0.9), ((slice(60, 100), slice(10, 50)), 0.4)]
BLOBS.append(((slice(60, 100), slice(60, 100)), 0.6))
# keeps every part of at least 100 pixels of the 120x120 image: drops the 4x4 speck below
SPECK_FILTER = MaskFilter(min_area_fraction=100 / SIZE**2)
SPECK = (slice(20, 24), slice(80, 84))


def manifest(threshold: float = MANIFEST_THRESHOLD, rule: MaskFilter | None = None) -> Manifest:
    return Manifest(
        "t", "x", "onnx", 64, 64, 0.5, 0.25, DEFAULT_CLASSES, threshold=threshold, mask_filter=rule
    )


def scene(speck: float | None = None) -> np.ndarray:
    prob = np.zeros((SIZE, SIZE), np.float32)
    for box, p in BLOBS:
        prob[box] = p
    if speck is not None:
        prob[SPECK] = speck
    return prob


def backend_answer(prob: np.ndarray, m: Manifest) -> Prediction:
    """What the runtime hands the overlay: the graph's mask at the manifest's cut-off, filtered."""
    mask = (prob >= m.threshold).astype(np.uint8) * np.uint8(CANCER)
    return Prediction(filter_mask(mask, float(prob.max()), m.mask_filter), prob)


@pytest.mark.parametrize("cut", [0.3, 0.7])
@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_the_mask_style_draws_the_overlay_threshold(cut, ema):
    m = manifest()
    overlay = Overlay.from_config(m, OverlayConfig(threshold=cut, ema=ema))
    prob = scene()
    prediction = backend_answer(prob, m)
    drawn = overlay.smooth(prediction.mask, prediction)
    assert np.array_equal(drawn > 0, prob >= cut)


def test_the_heat_map_contour_and_colours_follow_a_lower_overlay_threshold():
    """overlay.threshold 0.3 under the manifest's 0.5, with an active mask filter: the blob at 0.4 is
    inside the contour with its own colour level, not held under the cut-off in one colour."""
    m = manifest(rule=SPECK_FILTER)
    overlay = Overlay.from_config(m, OverlayConfig(threshold=0.3, style="heatmap", legend=False))
    prob = scene()
    prediction = backend_answer(prob, m)
    heat = overlay.smooth(prediction.mask, prediction)
    assert np.array_equal(heat >= heatmap.level_of(0.3), prob >= 0.3)  # the contoured pixels
    band = (prob >= 0.3) & (prob < MANIFEST_THRESHOLD)
    assert (heat[band] == heatmap.level_of(0.4)).all()  # the colour of p = 0.4
    out = overlay.render(np.full((SIZE, SIZE, 3), 90, np.uint8), Roi(0, 0, SIZE, SIZE), heat)
    edge = out[60:100, 48:52]  # the 0.4 blob's right edge: the white contour
    assert (edge == heatmap.CONTOUR_BGR).all(axis=-1).any()


def test_the_heat_map_contour_is_cut_from_the_float_probability():
    """A pixel within half a colour level under the cut-off has the threshold's level when quantised;
    it is not inside the contour (the mask style would not paint it)."""
    cut = 0.6
    just_under = np.float32(cut - 0.4 / heatmap.LEVELS)
    assert heatmap.levels(np.full((1, 1), just_under), (1, 1))[0, 0] >= heatmap.level_of(cut)
    overlay = Overlay.from_config(manifest(cut), OverlayConfig(style="heatmap"))
    prob = scene()
    prob[(slice(60, 100), slice(60, 100))] = just_under
    heat = overlay.smooth((prob >= cut).astype(np.uint8), prob)
    assert np.array_equal(heat >= heatmap.level_of(cut), prob >= cut)


def test_the_mask_filter_applies_to_the_overlay_thresholds_mask():
    """A speck between the two cut-offs: cut at overlay.threshold it is a part the manifest's filter
    drops, in the mask style and in the heat map's contour (the heat map keeps its colour)."""
    m = manifest(rule=SPECK_FILTER)
    prob = scene(speck=0.4)
    prediction = backend_answer(prob, m)
    drawn = Overlay.from_config(m, OverlayConfig(threshold=0.3)).smooth(prediction.mask, prediction)
    assert not drawn[SPECK].any() and drawn[60:100, 10:50].all()
    overlay = Overlay.from_config(m, OverlayConfig(threshold=0.3, style="heatmap"))
    heat = overlay.smooth(prediction.mask, prediction)
    assert (heat[SPECK] == heatmap.level_of(0.3) - 1).all()  # coloured, just under the contour's level
    assert (heat[60:100, 10:50] >= heatmap.level_of(0.3)).all()
