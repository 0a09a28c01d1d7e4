"""Overlay stage: colour/alpha maths, contour, legend, HUD, banners, EMA smoothing and flicker."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest
from edge_runtime.render import hudrow
from edge_runtime.render.overlay import BANNER_BGR, Overlay
from edge_runtime.roi import Roi

ROI = Roi(20, 40, 200, 120)


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(dark_onnx())


@pytest.fixture()
def screen(busi_sample):
    image = cv2.imread(str(busi_sample / "images" / "malignant_002.png"))
    canvas = np.zeros((200, 260, 3), np.uint8)
    canvas[40:160, 20:220] = cv2.resize(image, (200, 120))
    return canvas


def disc_mask():
    mask = np.zeros((ROI.h, ROI.w), np.uint8)
    cv2.circle(mask, (100, 60), 30, 1, -1)
    return mask


def test_translucent_class_colour_inside_mask_only(manifest, screen):
    overlay = Overlay.from_config(manifest, OverlayConfig(alpha=0.5, contour=False, legend=False, hud=False))
    out = overlay.render(screen, ROI, disc_mask())
    r, g, b = manifest.classes[1].color
    inside = (ROI.y + 60, ROI.x + 100)
    expected = 0.5 * screen[inside].astype(float) + 0.5 * np.array([b, g, r])
    assert np.abs(out[inside].astype(float) - expected).max() <= 1.0
    outside = disc_mask() == 0
    assert np.array_equal(ROI.crop(out)[outside], ROI.crop(screen)[outside])
    assert np.array_equal(out[: ROI.y], screen[: ROI.y])  # nothing outside the ROI
    assert not np.shares_memory(out, screen)


def test_contour_legend_hud_and_banner(manifest, screen):
    overlay = Overlay.from_config(
        manifest, OverlayConfig(alpha=0.0, classes={"cancer": {"color": [0, 255, 0]}})
    )
    out = overlay.render(
        screen,
        ROI,
        disc_mask(),
        hud={"fps": 29.9, "latency_ms": 41, "backend": "onnxruntime cpu"},
        banners=[("warning", "AI LAGGING")],
    )
    edge = ROI.crop(out)[60, 100 + 30]  # on the disc's rim
    assert tuple(int(v) for v in edge) == (0, 255, 0)
    legend = ROI.crop(out)[ROI.h - 8 - 8, 8 + 8]  # legend swatch, bottom-left
    assert tuple(int(v) for v in legend) == (0, 255, 0)
    assert tuple(int(v) for v in ROI.crop(out)[3, ROI.w - 4]) == BANNER_BGR["warning"]
    hud_band = out[ROI.y - 30 : ROI.y, ROI.x : ROI.x + ROI.w]  # HUD text sits above the ROI
    assert (hud_band > 200).any()


def test_fade_reduces_overlay_strength(manifest, screen):
    overlay = Overlay.from_config(manifest, OverlayConfig(alpha=0.6, contour=False, legend=False, hud=False))
    full = overlay.render(screen, ROI, disc_mask(), fade=1.0)
    half = overlay.render(screen, ROI, disc_mask(), fade=0.5)
    gone = overlay.render(screen, ROI, disc_mask(), fade=0.0)
    p = (ROI.y + 60, ROI.x + 100)
    d = lambda img: np.abs(img[p].astype(int) - screen[p]).sum()  # noqa: E731
    assert d(full) > d(half) > d(gone) == 0


def test_ema_smoothing_reduces_flicker(manifest):
    rng = np.random.default_rng(0)
    base = np.full((60, 80), 0.55, np.float32)
    frames = [np.clip(base + rng.normal(0, 0.1, base.shape).astype(np.float32), 0, 1) for _ in range(30)]
    flicker = {}
    for ema in (0.0, 0.2):
        overlay = Overlay.from_config(manifest, OverlayConfig(ema=ema))
        for prob in frames:
            overlay.smooth((prob > 0.5).astype(np.uint8), prob)
        flicker[ema] = overlay.flicker
    assert flicker[0.0] > 0.2 and flicker[0.2] < flicker[0.0] / 2


def test_overlay_config_errors_name_the_key(manifest):
    with pytest.raises(ConfigError, match="overlay.alphaa"):  # unknown keys: refused when loading
        build_config({"overlay": {"alphaa": 0.3}})
    with pytest.raises(ConfigError, match="lesion"):
        Overlay.from_config(manifest, OverlayConfig(classes={"lesion": {"alpha": 0.3}}))
    with pytest.raises(ConfigError, match="ema"):
        Overlay.from_config(manifest, OverlayConfig(ema=1.5))


# --- the YUV-native path (edge_runtime.yuv): same look, drawn in the decoder's I420 planes -------------
def _i420(bgr):
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)


def test_yuv_render_matches_bgr_render(manifest, screen):
    """Blend, contour, legend, banner and HUD drawn in I420 look like the BGR path (after the same
    4:2:0 round trip the encoder applies to BGR output), and nothing off the ROI changes."""
    overlay = Overlay.from_config(manifest, OverlayConfig())
    hud, banners = {"fps": 29.9, "latency_ms": 41, "backend": "onnxruntime cpu"}, [("warning", "AI LAGGING")]
    reference = cv2.cvtColor(
        _i420(overlay.render(screen, ROI, disc_mask(), hud=hud, banners=banners)), cv2.COLOR_YUV2BGR_I420
    )
    i420 = _i420(screen)
    raw = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    out = overlay.render_i420(i420, ROI, disc_mask(), hud=hud, banners=banners)
    assert out is i420  # drawn in place: no frame copy
    got = cv2.cvtColor(out, cv2.COLOR_YUV2BGR_I420)
    diff = np.abs(got.astype(int) - reference)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 40  # only chroma edges differ a little
    inside = (ROI.y + 60, ROI.x + 100)
    assert (
        int(got[inside][2]) - int(got[inside][1]) > int(raw[inside][2]) - int(raw[inside][1]) + 40
    )  # red tint
    rim = ROI.crop(got)[60, 100 + 30].astype(int)
    assert rim[2] > 200 and rim[1] < 90  # saturated red contour
    ys, _ = np.nonzero(np.abs(got.astype(int) - raw).max(axis=2) > 3)
    assert ys.min() >= ROI.y - 40  # the HUD band above the ROI
    assert np.array_equal(got[ROI.y + ROI.h :], raw[ROI.y + ROI.h :])  # nothing below or beside the ROI
    assert np.array_equal(got[ROI.y :, : ROI.x], raw[ROI.y :, : ROI.x])


def test_yuv_gray_roi_equals_bgr_gray(screen):
    from edge_runtime import yuv
    from edge_runtime.preprocess import to_gray

    i420 = _i420(screen)
    gray = yuv.gray_roi(i420, ROI)
    expected = to_gray(ROI.crop(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)))
    assert gray.flags.c_contiguous and gray.shape == (ROI.h, ROI.w)
    assert np.abs(gray.astype(int) - expected).max() <= 2


def test_yuv_frame_converts_to_bgr_only_when_asked(screen):
    from edge_runtime.yuv import YuvFrame, frame_shape

    frame = YuvFrame(0, _i420(screen), 0.0)
    assert frame_shape(frame) == screen.shape[:2] and frame._bgr is None
    assert frame.image.shape == screen.shape and frame.image is frame.image  # converted once, cached
    assert np.abs(frame.image.astype(int) - screen).mean() < 2


def test_hud_shows_no_rate_until_two_frames_are_timed():
    """0 fps is what the counter says before it has two frames; shown, it would read as a stall."""
    assert "-- fps" in hudrow.hud_text({"fps": 0.0}) and "0.0 fps" not in hudrow.hud_text({"fps": 0.0})
    assert "30.0 fps" in hudrow.hud_text({"fps": 29.97})
