"""Overlay settings that only the model can judge (a class name) or that misspell a style key are
refused in one line that starts with the config file, as every other config error does: through the
real `sonomap replay`, and on a SIGHUP reload, which keeps the running overlay."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli import sonomap
from runtime_model import dark_onnx

from edge_runtime.config import load_config
from edge_runtime.pipeline.graph import Pipeline

BUSI = Path(__file__).parent / "data" / "busi" / "images"

MISTAKES = {  # overlay section -> words the line must hold after the file name
    "{classes: {cancer: {colour: [255, 0, 0]}}}": "config key 'overlay.classes'",  # British spelling
    "{classes: {Cancer: {alpha: 0.5}}}": "'Cancer' is not a class of model",  # class names are exact
}


@pytest.mark.parametrize("section, words", MISTAKES.items())
def test_replay_names_the_config_file(tmp_path, section, words):
    config = tmp_path / "site.yaml"
    config.write_text(f"overlay: {section}\n")
    out = tmp_path / "o.mp4"
    res = sonomap("replay", BUSI, "--model", dark_onnx(), "--config", config, "--out", out, check=False)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sonomap replay: error: {config}: "), res.stderr
    assert words in lines[0] and not out.exists()


def test_a_reload_with_a_class_the_model_lacks_names_the_file_and_keeps_the_overlay(tmp_path):
    path = tmp_path / "c.yaml"
    head = f"source: {{input: synthetic}}\ninference: {{model: {dark_onnx()}}}\n"
    path.write_text(head + "overlay: {alpha: 0.6}\n")
    pipeline = Pipeline(load_config(path), config_path=path)
    try:
        path.write_text(head + "overlay: {classes: {Cancer: {alpha: 0.5}}}\n")
        pipeline.request_reload()
        pipeline.apply_reload()
        assert pipeline.overlay.styles[1].alpha == pytest.approx(0.6)
        assert pipeline.stats()["last_error"].startswith(
            f"reload rejected: {path}: overlay.classes: 'Cancer'"
        )
    finally:
        pipeline.close()
