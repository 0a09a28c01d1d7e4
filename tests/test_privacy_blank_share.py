"""privacy.blank boxes that cover most of the image area leave the AI nothing to read: such a frame has
no image (AI OFF with its banner, no inference), never AI ON over a black ROI that reads as "no cancer".
A small box (initials on the image) leaves the AI on. Real `sonomap make-clip` + `sonomap replay`."""

from __future__ import annotations

import json

import pytest
from cli import sonomap
from runtime_model import dark_onnx

from edge_runtime.pipeline.roi_chooser import MOSTLY_BLANKED
from edge_runtime.roi import Roi, covered_share

FRAMES = 3


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", FRAMES, "--size", "320x180", "--noise", 0)
    return out


@pytest.mark.parametrize("boxes, undecided", [("[[0, 0, 100000, 100000]]", FRAMES), ("[[0, 0, 12, 12]]", 0)])
def test_blank_boxes_over_most_of_the_image_turn_the_ai_off(clip, tmp_path, boxes, undecided):
    config = tmp_path / "c.yaml"
    config.write_text(f"privacy: {{blank: {boxes}}}\n")
    summary = tmp_path / "s.json"
    sonomap(
        "replay",
        clip,
        "--model",
        dark_onnx(),
        "--config",
        config,
        "--out",
        tmp_path / "o.mp4",
        "--summary",
        summary,
    )
    report = json.loads(summary.read_text())
    assert report["roi_undecided_frames"] == undecided
    assert report["frames"] == FRAMES


def test_covered_share_counts_overlapping_boxes_once():
    roi = Roi(10, 10, 100, 50)
    assert covered_share([(10, 10, 50, 50), (10, 10, 50, 50)], roi) == pytest.approx(0.5)
    assert covered_share([(0, 0, 10, 10)], roi) == 0.0  # above and left of the ROI
    assert covered_share([(0, 0, 12, 12)], roi) == pytest.approx(4 / 5000)  # its corner reaches in
    assert covered_share([(0, 0, 1000, 1000)], roi) == 1.0
    assert MOSTLY_BLANKED.startswith("the privacy.blank boxes")
