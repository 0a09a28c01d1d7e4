"""What live ``strict`` draws in both overlay styles, the legends on small ROIs in both render paths,
and a model whose cancer class is id 0. Strict draws a frame's own mask with no EMA, but the heat map's
probability levels and an own ``overlay.threshold`` still apply: before, strict handed the backend's
0/1 class mask to the heat map, which read it as probability levels under its floor and painted
nothing under a green AI ON. Real live runs (the synthetic source, the stub of the live safety tests
answering cancer everywhere), the overlay on real frames, ONNX Runtime on the shipped model."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
import yaml
from export_fixtures import copy_model
from test_live_safety_support import CANCER_MARK, Collect, Scanner, Stub, config, everywhere, mask_drawn

from edge_runtime.backends import create_backend
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.model_contract import CONTRACT_KEY
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.overlay import Overlay
from edge_runtime.roi import Roi

FRAMES = 20
GREY = 128
CHANGED = 3  # grey levels: more than an I420 round trip moves a pixel


def strict_run(**overlay):
    collect = Collect()
    cfg = config(live={"mode": "strict", "stale_ms": 500}, overlay={"hud": False, **overlay})
    Pipeline(
        cfg, source=Scanner(FRAMES, mark=CANCER_MARK), observers=[collect], backend=Stub(everywhere)
    ).run()
    return [
        (frame, image) for frame, prediction, image, ai in collect.items if ai["state"] == "ON" and prediction
    ]


@pytest.mark.parametrize("style", ["mask", "heatmap"])
def test_strict_draws_cancer_on_every_frame_shown_with_the_ai_on(style):
    shown = strict_run(style=style, legend=False)  # the heat map's legend is taller than the band left out
    assert len(shown) >= FRAMES // 2, "too few frames with their own mask under AI ON"
    for frame, image in shown:
        assert mask_drawn(frame, image), f"{style}: frame {frame.index} raw under AI ON, cancer everywhere"


@pytest.mark.parametrize("style", ["mask", "heatmap"])
def test_strict_cuts_at_the_overlay_threshold(style):
    # the stub answers 0.95 everywhere; an own threshold above it leaves nothing to draw, in both styles
    shown = strict_run(style=style, threshold=0.99, legend=False)
    assert shown
    for frame, image in shown:
        drawn = mask_drawn(frame, image)
        assert not drawn or style == "heatmap", f"frame {frame.index}: a mask above the overlay threshold"
    if style == "heatmap":  # the probability is still shown, but no pixel reaches the contour's colour
        overlay = Overlay.from_config(
            load_manifest(Stub().model_path), OverlayConfig(style=style, threshold=0.99)
        )
        prob = np.full((8, 8), 0.95, np.float32)
        levels = overlay.smooth((prob > 0.5).astype(np.uint8), prob, temporal=False)
        assert levels.max() < 0.99 * 255


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > CHANGED


@pytest.mark.parametrize("style", ["mask", "heatmap"])
@pytest.mark.parametrize("roi_h", [30, 60, 80, 100, 140])
def test_a_legend_on_a_small_roi_stays_inside_it_in_both_render_paths(style, roi_h):
    height, width = 300, 320  # the largest ROI below ends at row 260
    roi = Roi(40, 120, 200, roi_h)
    manifest = load_manifest(DEFAULT_MODEL)
    screen = np.full((height, width, 3), GREY, np.uint8)
    outside = np.ones((height, width), bool)
    outside[roi.y : roi.y + roi.h, roi.x : roi.x + roi.w] = False
    nothing = np.zeros((roi.h, roi.w), np.uint8)
    bgr = Overlay.from_config(manifest, OverlayConfig(style=style, hud=False)).render(screen, roi, nothing)
    i420 = cv2.cvtColor(screen, cv2.COLOR_BGR2YUV_I420)
    Overlay.from_config(manifest, OverlayConfig(style=style, hud=False)).render_i420(i420, roi, nothing)
    yuv = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    assert not changed(bgr, screen)[outside].any(), "the BGR legend painted outside the ROI"
    assert not changed(yuv, screen)[outside].any(), "the I420 legend painted over the scanner's screen"
    # the same legend in both paths (up to the chroma subsampling at its edges)
    assert abs(int(changed(bgr, screen).sum()) - int(changed(yuv, screen).sum())) <= roi_h + roi.w


def test_a_model_with_cancer_as_class_zero_is_refused_in_one_line(tmp_path):
    # an unstamped graph (no contract to disagree with) and a hand-written manifest: cancer is id 0,
    # which every reader of a mask takes for "no finding"
    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    graph = onnx.load(str(model))
    kept = [p for p in graph.metadata_props if p.key != CONTRACT_KEY]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    onnx.save(graph, str(model))
    save_manifest(load_manifest(model, verify_hash=False), model)
    data = yaml.safe_load(manifest_path(model).read_text())
    data["classes"] = [
        {"id": 0, "name": "cancer", "color": [255, 40, 40]},
        {"id": 1, "name": "tissue", "color": [0, 0, 0]},
    ]
    manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        create_backend("onnxruntime", model, load_manifest(model), device="cpu")
    message = str(caught.value)
    assert (
        str(manifest_path(model)) in message
        and "'classes': cancer is id 0" in message
        and "\n" not in message
    )
