"""A fixed ROI (``--roi x,y,w,h``, ``full``) is the operator's and never re-detected, but on a frame where it
holds one plain level (the probe lifted: black; a capture card's blank) it holds no image: the AI reads
OFF with a banner, not ON over nothing (raw video with no overlay must never look like "no cancer"), and
no inference runs there. The AI is on again from the first frame with an image.

Real clips from ``sonomap make-clip --patient-line``, vendored BUSI images, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap
from clips import decode
from runtime_model import dark_onnx

from edge_runtime import likeness
from edge_runtime.config import build_config
from edge_runtime.frames import Frame
from edge_runtime.pipeline.roi_chooser import NO_IMAGE_IN_FIXED_ROI, RoiChooser

SIZE = "1280x720"
FRAMES = 9
LIFTED = (3, 4, 5)  # the probe lifted: the fixed ROI all black on these frames
BANNER_ROWS = 30  # the banner sits at the top of the screen on a frame without a ROI
BANNER_MIN_MEAN = 60
VENDORED_BUSI = Path(__file__).parent / "data" / "busi" / "images"
DIMMED_GAIN = 0.3  # a low-gain image: still an image, never plain
NOISE_LEVELS = (0, 2, 4, 6)  # analogue capture noise (sigma, grey levels) on a plain screen
PLAIN_LEVELS = (0, 16, 40, 128)  # black, video-range black, a dark grey, a mid grey standby screen


@pytest.fixture(scope="module")
def lifted(tmp_path_factory) -> tuple[Path, list[int]]:
    """A folder of the clip's screens as PNGs, the ROI black on LIFTED, and the clip's ROI."""
    root = tmp_path_factory.mktemp("fixed")
    clip = root / "screen.mp4"
    sonomap("make-clip", "--out", clip, "--frames", FRAMES, "--size", SIZE, "--patient-line", "DOE^JANE")
    x, y, w, h = rect = json.loads(clip.with_suffix(".json").read_text())["roi"]
    folder = root / "screens"
    folder.mkdir()
    for i, image in enumerate(decode(clip)):
        if i in LIFTED:
            image[y : y + h, x : x + w] = 0
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    return folder, rect


def test_a_fixed_rect_holding_no_image_turns_the_ai_off_and_back_on(lifted, tmp_path):
    folder, rect = lifted
    out, masks, summary = tmp_path / "o.mp4", tmp_path / "m", tmp_path / "s.json"
    result = sonomap(
        *("replay", folder, "--model", dark_onnx(), "--out", out, "--roi", ",".join(map(str, rect))),
        *("--save-masks", masks, "--summary", summary),
    )
    stats = json.loads(summary.read_text())
    assert stats["frames"] == FRAMES and stats["roi_undecided_frames"] == len(LIFTED)
    assert f"no image {len(LIFTED)}" in result.stdout  # the console line counts them too
    assert stats["roi"] == rect and stats["roi_undecided"] == ""  # the operator's rect, back at the end
    inferred = {int(png.name[:6]) for png in masks.glob("*_mask.png")}
    assert inferred == set(range(FRAMES)) - set(LIFTED)  # no inference over nothing
    rendered = decode(out)
    for i in LIFTED:  # "AI OFF: no ultrasound image in the fixed ROI ..." across the top
        assert rendered[i][:BANNER_ROWS].mean() > BANNER_MIN_MEAN
    assert rendered[LIFTED[-1] + 1][:BANNER_ROWS].mean() < rendered[LIFTED[0]][:BANNER_ROWS].mean()
    lines = result.stderr.splitlines()
    off = [line for line in lines if NO_IMAGE_IN_FIXED_ROI in line]
    on = [line for line in lines if "the AI is on again" in line]
    assert len(off) == 1 and f"frame {LIFTED[0]}:" in off[0], result.stderr[-2000:]
    assert len(on) == 1 and f"frame {LIFTED[-1] + 1}:" in on[0], result.stderr[-2000:]


@pytest.mark.parametrize("rect", ["full", "100,80,300,200"])
def test_the_chooser_undecides_a_fixed_roi_on_the_plain_frame_itself(rect):
    """Every frame is checked: the first black frame is undecided, the first image frame decided."""
    image = cv2.imread(str(sorted(VENDORED_BUSI.glob("*.png"))[0]))
    screen = cv2.resize(image, (640, 480))
    chooser = RoiChooser(build_config({"roi": {"rect": rect}}))
    frames = [screen, np.zeros_like(screen), np.zeros_like(screen), screen]
    rois = [chooser.choose(Frame(i, f.copy(), 0.0, None, {})) for i, f in enumerate(frames)]
    assert [bool(r.undecided) for r in rois] == [False, True, True, False]
    assert rois[1].undecided.startswith(NO_IMAGE_IN_FIXED_ROI)
    assert rois[0] == rois[3] and chooser.undecided_frames == 2


def test_plain_screens_under_noise_are_plain_and_dimmed_busi_images_are_not():
    rng = np.random.default_rng(0)
    for sigma in NOISE_LEVELS:
        for level in PLAIN_LEVELS:
            noisy = np.clip(level + rng.normal(0, sigma, (720, 1280)), 0, 255).astype(np.uint8)
            assert likeness.plain(likeness.sampled_gray(noisy)) == likeness.PLAIN, (sigma, level)
    images = sorted(VENDORED_BUSI.glob("*.png"))
    assert images
    for path in images:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        dimmed = (gray * DIMMED_GAIN).astype(np.uint8)
        assert likeness.plain(likeness.sampled_gray(dimmed)) == "", path.name
