"""Heat-map overlay style (overlay.style: heatmap): golden frames, the ramp and its legend, YUV path,
a heat map of one pixel, the floor."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from golden_frames import GOLDEN, GOLDEN_IDS, assert_matches_golden, render_golden_ids

from edge_runtime.aistate import AiStatus
from edge_runtime.config import build_config
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import DEFAULT_CLASSES, Manifest
from edge_runtime.render import heatmap, hudrow
from edge_runtime.render.overlay import Overlay
from edge_runtime.render.styles import DEFAULT_ALPHA
from edge_runtime.roi import Roi

SIZE = 200
ROI = Roi(20, 10, SIZE, SIZE)


def manifest() -> Manifest:
    return Manifest("t", "x", "onnx", 64, 64, 0.5, 0.25, DEFAULT_CLASSES, threshold=0.5)


def ramp_prob() -> np.ndarray:
    """Probability rising left to right from 0 to 1 over the ROI."""
    return np.tile(np.linspace(0.0, 1.0, SIZE, dtype=np.float32), (SIZE, 1))


BADGE_MIN_SHARE = 0.3  # the badge's own colour fills at least this much of its box (the rest: label)
BAR_TOLERANCE = 2  # a tick sits on a bar row within half a row of its probability: a level or so


def viridis_over_grey(p: float, alpha: float) -> np.ndarray:
    """What the bar shows for ``p``: viridis blended at ``alpha`` over the bar's reference grey."""
    ramp = cv2.applyColorMap(np.uint8([[round(p * 255)]]), cv2.COLORMAP_VIRIDIS)[0, 0].astype(float)
    return alpha * ramp + (1.0 - alpha) * heatmap.REFERENCE_GREY


def assert_badge_shown(frame: np.ndarray, state: str = "ON") -> None:
    """The AI state badge is drawn where the HUD row puts it (full-frame ROI), in its state's colour."""
    height, width = frame.shape[:2]
    row = hudrow.layout(width, height, Roi(0, 0, width, height), None, AiStatus(state))
    x0, y0, x1, y1 = row.box
    badge = frame[y0:y1, x0 + row.hud_w : x1]
    share = (badge == hudrow.AI_BADGE_BGR[state]).all(axis=-1).mean()
    assert share >= BADGE_MIN_SHARE, f"AI {state} badge missing ({share:.0%} of its box in its colour)"


def assert_bar_reads_upwards(frame: np.ndarray, threshold: float, floor: float, alpha: float) -> None:
    """At each tick (floor, threshold, 1.0) the bar shows that probability's colour, 1.0 at the top."""
    x0, y0, bw, bh = heatmap.bar_box(frame.shape[0])
    rows = [heatmap.tick_row(p, y0, bh, floor) for p in (floor, threshold, 1.0)]
    assert rows[0] > rows[1] > rows[2]  # low at the bottom, high at the top
    for p, row in zip((floor, threshold, 1.0), rows, strict=True):
        drawn = frame[row, x0 + bw // 2].astype(float)
        assert np.abs(drawn - viridis_over_grey(p, alpha)).max() <= BAR_TOLERANCE, (p, drawn)


def test_golden_heatmap_frames(busi_sample, tmp_path):
    """Real BUSI images through the dark-region model, drawn as a heat map (HUD off: the AI badge
    stays). Regenerate with SONOMAP_REGEN_GOLDEN=1 after an intended change (and view them); the mask
    style's goldens are in test_replay. A missing badge or a flipped bar is within the golden's
    tolerance, so both are checked exactly, in the frame and in its golden."""
    collect = render_golden_ids(busi_sample, tmp_path, {"hud": False, "style": "heatmap"})
    assert len(collect.frames) == len(GOLDEN_IDS)
    for image_id, rendered in zip(GOLDEN_IDS, collect.frames, strict=False):
        assert_matches_golden(f"heatmap_{image_id}", rendered)
        mask_style = cv2.imread(str(GOLDEN / f"replay_{image_id}.png"))
        assert np.abs(mask_style.astype(np.int32) - rendered).mean() > 1.0  # not the mask style's picture
        golden = cv2.imread(str(GOLDEN / f"heatmap_{image_id}.png"))
        for frame in (rendered, golden):
            assert_badge_shown(frame)
            assert_bar_reads_upwards(frame, 0.5, heatmap.HEAT_FLOOR, DEFAULT_ALPHA)


def test_ramp_follows_probability_floor_and_contour():
    """Below the floor nothing is painted; above it the colour is viridis at that probability,
    blended at the overlay alpha; the threshold contour is white; the legend is the same ramp."""
    overlay = Overlay.from_config(
        manifest(), OverlayConfig(style="heatmap", alpha=1.0, legend=False, hud=False)
    )
    screen = np.full((SIZE + 20, SIZE + 40, 3), 60, np.uint8)
    prob = ramp_prob()
    heat = overlay.smooth((prob >= 0.5).astype(np.uint8), prob)
    assert heat.dtype == np.uint8 and heat[0, -1] == 255 and heat[0, 0] == 0
    out = overlay.render(screen, ROI, heat)
    region = ROI.crop(out)
    floor_col = int(heatmap.HEAT_FLOOR * (SIZE - 1)) - 2
    assert np.array_equal(region[:, :floor_col], ROI.crop(screen)[:, :floor_col])  # untouched below the floor
    col = int(0.8 * (SIZE - 1))
    expected = cv2.applyColorMap(np.uint8([[heat[5, col]]]), cv2.COLORMAP_VIRIDIS)[0, 0]
    assert np.abs(region[5, col].astype(int) - expected).max() <= 1  # viridis at p = 0.8
    threshold_col = int(np.argmax(heat[5] >= heatmap.level_of(0.5)))
    assert (
        (region[SIZE // 2, threshold_col - 1 : threshold_col + 2] == 255).all(axis=-1).any()
    )  # white contour
    with_legend = Overlay.from_config(manifest(), OverlayConfig(style="heatmap", hud=False)).render(
        screen, ROI, heat
    )
    bar = ROI.crop(with_legend)[SIZE - heatmap.BAR_MARGIN - 20, heatmap.BAR_MARGIN + 2]
    assert not np.array_equal(bar, screen[0, 0])  # colour bar drawn


def test_heatmap_i420_path_matches_bgr_path():
    """The YUV-native replay path draws the same heat map as the BGR path (within I420 rounding)."""
    overlay = Overlay.from_config(manifest(), OverlayConfig(style="heatmap", hud=False))
    rng = np.random.default_rng(0)
    screen = rng.integers(40, 200, (SIZE + 20, SIZE + 40, 3), dtype=np.uint8)
    screen = cv2.cvtColor(cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420)
    heat = heatmap.levels(ramp_prob(), (SIZE, SIZE))
    reference = overlay.render(screen, ROI, heat)
    i420 = cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420)
    out = cv2.cvtColor(overlay.render_i420(i420, ROI, heat), cv2.COLOR_YUV2BGR_I420)
    assert np.abs(out.astype(int) - reference).mean() < 3.0
    assert np.abs(out.astype(int) - screen).mean() > 10.0  # the heat map is there


def test_heatmap_with_ema_smooths_the_probability():
    overlay = Overlay.from_config(manifest(), OverlayConfig(style="heatmap", ema=0.5))
    one, zero = np.ones((8, 8), np.float32), np.zeros((8, 8), np.float32)
    overlay.smooth(np.ones((8, 8), np.uint8), one)
    heat = overlay.smooth(np.zeros((8, 8), np.uint8), zero)
    assert (heat == heatmap.level_of(0.5)).all()


def test_bad_style_is_a_one_line_error():
    with pytest.raises(ConfigError, match="overlay.style"):
        Overlay.from_config(manifest(), OverlayConfig(style="rainbow"))
    with pytest.raises(ConfigError, match="overlay.style"):
        build_config({"source": {"input": "synthetic"}, "overlay": {"style": 3}})


def test_the_floor_sits_above_a_calibration_curves_plateau_and_nothing_below_it_is_painted():
    from edge_runtime.config import DEFAULT_MODEL
    from edge_runtime.manifest import load_manifest

    plain = load_manifest(DEFAULT_MODEL).derive(calibration_curve=None, threshold=0.5)
    assert heatmap.floor_for(plain, 0.5) == heatmap.HEAT_FLOOR
    curve = {"margin": [-4.0, -2.0, -1.5, -1.0, 0.0, 2.0], "prob": [0.0, 0.238, 0.239, 0.240, 0.37, 1.0]}
    curved = plain.derive(calibration_curve=curve, threshold=0.37)
    floor = heatmap.floor_for(curved, 0.37)
    assert 0.238 < floor < 0.25  # just above the flat run, which would tint most of the image
    assert heatmap.floor_for(curved, 0.2) == heatmap.HEAT_FLOOR  # a flat run above the threshold: ignored
    assert heatmap.floor_for(curved, 0.05) == 0.05  # never above the threshold
    heat = heatmap.levels(np.full((20, 40), 0.239, np.float32), (20, 40))
    heat[5:15, 30:38] = heatmap.level_of(0.6)
    region = np.full((20, 40, 3), 100, np.uint8)
    heatmap.draw_heat(region, heat, 0.37, 0.5, floor=floor)
    assert (region[:, :25] == 100).all()  # the plateau: not painted
    assert (region[7:13, 32:36] != 100).any()  # above the floor: painted
    painted_at_default = np.full((20, 40, 3), 100, np.uint8)
    heatmap.draw_heat(painted_at_default, heat, 0.37, 0.5)
    assert (painted_at_default[:, :25] != 100).all()  # what the fixed 0.1 floor would have done


def test_a_curve_flat_only_near_one_keeps_the_default_floor():
    """A curve rising steadily at the low end and saturating at the top (knots within PLATEAU_STEP
    near 1.0): that flat run is above the threshold and must not lift the floor to it."""
    prob = [*np.linspace(0.0, 0.6, 10), 0.75, 0.9, 0.97, 0.996, 0.9995, 1.0]
    curve = {
        "margin": [float(m) for m in np.linspace(-4.0, 4.0, len(prob))],
        "prob": [float(p) for p in prob],
    }
    curved = manifest().derive(calibration_curve=curve, threshold=0.45)
    assert heatmap.floor_for(curved, 0.45) == heatmap.HEAT_FLOOR


@pytest.mark.parametrize("p", [0.3, 0.9])  # under the threshold (tint only), over it (tint + contour)
def test_a_heat_map_of_one_pixel_is_drawn_on_both_paths(p):
    """One ROI pixel at or above the floor (a faint peak as a lesion enters the view; benign_041 at a
    467x411 ROI on the shipped model): drawn on the BGR and the I420 path, the badge too."""
    overlay = Overlay.from_config(manifest(), OverlayConfig(style="heatmap"))
    prob = np.zeros((SIZE, SIZE), np.float32)
    prob[100, 120] = p
    heat = overlay.smooth((prob >= 0.5).astype(np.uint8), prob)
    assert np.count_nonzero(heat >= heatmap.level_of(overlay.heat_floor)) == 1
    screen = np.full((SIZE + 20, SIZE + 40, 3), 80, np.uint8)
    out = overlay.render(screen, ROI, heat, ai=AiStatus("ON"))
    assert not np.array_equal(ROI.crop(out)[100, 120], screen[0, 0])  # the pixel is painted
    i420 = cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420)
    bgr = cv2.cvtColor(overlay.render_i420(i420, ROI, heat, ai=AiStatus("ON")), cv2.COLOR_YUV2BGR_I420)
    assert np.abs(ROI.crop(bgr)[100, 120].astype(int) - 80).max() > 0  # painted on the I420 path too
    region = np.full((1, 1, 3), 80, np.uint8)  # the heat's own box: one pixel
    heatmap.draw_heat(region, np.uint8([[heatmap.level_of(p)]]), 0.5, 0.4)
    assert not (region == 80).all()


@pytest.mark.parametrize("grey", [30, heatmap.REFERENCE_GREY, 200])
def test_the_colour_bar_shows_the_ramp_as_the_heat_is_drawn(grey):
    """The bar is blended as the heat is (the overlay alpha over the reference grey): a probability
    drawn over tissue of the reference grey has exactly the bar's colour at that probability, and the
    bar's colour at the ticks goes from the floor (bottom) to 1.0 (top). Over other tissue the colour
    differs (documented); the bar never claims an opaque colour the heat cannot draw."""
    alpha, floor, threshold = DEFAULT_ALPHA, 0.2, 0.5
    region = np.zeros((300, 200, 3), np.uint8)
    heatmap.draw_legend(region, threshold, floor=floor, alpha=alpha)
    assert_bar_reads_upwards(region, threshold, floor, alpha)
    x0, y0, bw, bh = heatmap.bar_box(region.shape[0])
    for p in (floor, threshold, 1.0):
        bar = region[heatmap.tick_row(p, y0, bh, floor), x0 + bw // 2].astype(int)
        tissue = np.full((9, 9, 3), grey, np.uint8)  # the centre is clear of the contour at its edge
        heatmap.draw_heat(tissue, np.full((9, 9), heatmap.level_of(p), np.uint8), 1.01, alpha, floor=floor)
        drawn = tissue[4, 4].astype(int)
        if grey == heatmap.REFERENCE_GREY:
            assert np.abs(drawn - bar).max() <= BAR_TOLERANCE, (p, drawn, bar)
        else:
            assert np.abs(drawn - bar).max() > BAR_TOLERANCE
