"""Overlay settings that would never draw the cancer class, or draw it too faintly to see, are refused:
at load, through the real `sonomap replay`, on a config reload, and for a struct built in code. With
the badge at AI ON, raw video would otherwise read as "no cancer". So is a tint so opaque it hides the
speckle under it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli import sonomap
from runtime_model import dark_onnx

from edge_runtime.config import load_config
from edge_runtime.config_schema import OverlayConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, save_manifest
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.render.overlay import Overlay

BUSI = Path(__file__).parent / "data" / "busi" / "images"

HIDDEN = {  # overlay section -> the key the error must name
    "{alpha: 0.0, contour: false}": "overlay.alpha",
    "{classes: {cancer: {show: false}}}": "overlay.classes.cancer.show",
    "{contour: false, classes: {cancer: {alpha: 0}}}": "overlay.classes.cancer.alpha",
    "{classes: {cancer: {alpha: 0, contour: false}}}": "overlay.classes.cancer.alpha",
    "{alpha: 0.001, contour: false}": "overlay.alpha",  # a tint no one can see on B-mode
    "{classes: {cancer: {alpha: 0.1, contour: false}}}": "overlay.classes.cancer.alpha",
    "{alpha: 1}": "overlay.alpha",  # an opaque tint hides the speckle under it
    "{classes: {cancer: {alpha: 0.9}}}": "overlay.classes",
    "{style: heatmap, alpha: 0}": "overlay.alpha",  # the heat map's contour goes with its tint
    "{style: heatmap, classes: {cancer: {show: false}}}": "overlay.classes.cancer.show",
    "{threshold: 1.0}": "overlay.threshold",  # no probability is above 1
    "{threshold: 0.999999}": "overlay.threshold",  # reached by almost no pixel: AI ON over a clear lesion
    "{threshold: 0}": "overlay.threshold",  # every pixel is cancer: the lesion cannot be told apart
    # a grey or black colour tinted onto grey B-mode reads as speckle, at any alpha
    "{classes: {cancer: {color: [20, 20, 20], alpha: 0.15, contour: false}}}": "overlay.classes.cancer.color",
    "{classes: {cancer: {color: [128, 128, 128]}}}": "overlay.classes.cancer.color",
    "{classes: {cancer: {color: [255, 200, 160]}}}": "overlay.classes.cancer.color",  # pale skin tone
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs")
    shutil.copy(BUSI / "malignant_002.png", folder)
    return folder


@pytest.mark.parametrize("section, key", HIDDEN.items())
def test_replay_refuses_an_overlay_that_hides_cancer(images, tmp_path, section, key):
    config = tmp_path / "hide.yaml"
    config.write_text(f"overlay: {section}\n")
    out = tmp_path / "o.mp4"
    res = sonomap(
        "replay",
        images,
        "--model",
        dark_onnx(),
        "--roi",
        "full",
        "--config",
        config,
        "--out",
        out,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"sonomap replay: error: {config}: config key '{key}'"), lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "section",
    [
        "{alpha: 0.0}",  # the contour still outlines the lesion
        "{contour: false, alpha: 0.0, classes: {cancer: {alpha: 0.5}}}",
        "{contour: false, alpha: 0.15}",  # the faintest tint that shows without its contour
        "{alpha: 0.01}",  # a faint tint, outlined by the contour
        "{alpha: 0.7}",  # the most opaque tint: the speckle still shows through
        "{style: heatmap, contour: false}",  # the heat map's contour does not depend on the mask's
        "{classes: {cancer: {color: [255, 127, 0]}}}",  # orange: chroma 255
        "{classes: {cancer: {color: [0, 200, 72]}}}",  # chroma 200
        "{threshold: 0.01}",  # the band's edges
        "{threshold: 0.99}",
    ],
)
def test_settings_that_still_show_cancer_load(tmp_path, section):
    config = tmp_path / "ok.yaml"
    config.write_text(f"overlay: {section}\n")
    load_config(config)


def test_a_reload_that_would_hide_cancer_is_rejected_and_the_old_overlay_kept(tmp_path):
    path = tmp_path / "c.yaml"
    head = f"source: {{input: synthetic}}\ninference: {{model: {dark_onnx()}}}\n"
    path.write_text(head + "overlay: {alpha: 0.6}\n")
    pipeline = Pipeline(load_config(path), config_path=path)
    try:
        for section, key in HIDDEN.items():
            path.write_text(head + f"overlay: {section}\n")
            pipeline.request_reload()
            pipeline.apply_reload()
            style = pipeline.overlay.styles[1]
            assert (style.alpha, style.contour, style.show) == (pytest.approx(0.6), True, True)
            assert f"config key '{key}'" in pipeline.stats()["last_error"], section
    finally:
        pipeline.close()


def test_the_renderer_refuses_a_hidden_cancer_style_built_in_code():
    manifest = load_manifest(dark_onnx())
    with pytest.raises(ConfigError, match=r"'overlay.classes.cancer.show'"):
        Overlay.from_config(manifest, OverlayConfig(classes={"cancer": {"show": False}}))
    with pytest.raises(ConfigError, match=r"'overlay.alpha'"):
        Overlay.from_config(manifest, OverlayConfig(alpha=0.0, contour=False))
    with pytest.raises(ConfigError, match=r"'overlay.threshold': 0.999999 is outside \[0.01, 0.99\]"):
        Overlay.from_config(manifest, OverlayConfig(threshold=0.999999))


def test_a_manifest_whose_cancer_colour_is_grey_is_refused_naming_it(tmp_path):
    model = tmp_path / "grey.onnx"
    shutil.copy(dark_onnx(), model)
    manifest = load_manifest(dark_onnx())
    grey = [
        c.__class__(id=c.id, name=c.name, color=[90, 90, 90] if c.name == "cancer" else c.color)
        for c in manifest.classes
    ]
    manifest_file = tmp_path / "grey.onnx.yaml"
    save_manifest(manifest.derive(classes=grey), model)
    with pytest.raises(ConfigError) as caught:
        load_manifest(model)
    message = str(caught.value)
    assert message.startswith(
        f"{manifest_file}: manifest key 'classes[1].color': [90, 90, 90] is too close to grey"
    ), message
