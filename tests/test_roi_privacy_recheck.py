"""A patient form before or during the clip never leaves the process, through the real ``sonomap replay``.

The form (grey fields with the patient's name, ID and birth date) used to be taken for the image
on the first frame and kept for the whole session, and a form opened after the image was found was
recorded through the old ROI. Now the form's frames are blanked whole (raw recording and mask dump),
and the image is found again once it is back. A PNG folder (BGR frames) and an H.264 clip (replay's
YUV path) of the same screens, named after the patient.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from cli import sonomap
from runtime_model import dark_onnx
from test_roi_privacy_detect import POSITION_TOL_PX, form_screen, screen

from edge_runtime.sinks.mp4 import Mp4Sink

PATIENT = "DOE_JANE_1970"  # the inputs' name: no log line may carry it
BLANK_MAX = 16  # black within H.264 noise
IMAGE_MIN_MEAN = 20  # the B-mode image's mean grey level is well above this
FPS = 30


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]


def session(root: Path, layout: list[tuple[str, int]], kind: str) -> tuple[Path, list[str], object]:
    """Screens in ``layout`` order (("clip" | "form", count) runs) as a PNG folder or an mp4 named
    after the patient: (input, the kind of each frame, the simulator)."""
    _, sim = screen()
    frames, kinds, index = [], [], 0
    for what, count in layout:
        for _ in range(count):
            frames.append(sim.frame(index) if what == "clip" else form_screen())
            kinds.append(what)
            index += 1
    if kind == "folder":
        folder = root / PATIENT
        folder.mkdir()
        for i, image in enumerate(frames):
            cv2.imwrite(str(folder / f"{i:03d}.png"), image)
        return folder, kinds, sim
    clip = root / f"{PATIENT}.mp4"
    sink = Mp4Sink(clip, fps=FPS, preset="veryfast")
    for image in frames:
        sink.write(image)
    sink.close()
    return clip, kinds, sim


def replay(source: Path, out: Path):
    """``sonomap -v replay`` with every output: (stderr, rendered frames, raw frames, dumped screens,
    summary)."""
    rendered, raw, masks, summary = out / "o.mp4", out / "raw.mp4", out / "masks", out / "s.json"
    result = sonomap(
        *("-v", "replay", source, "--model", dark_onnx(), "--out", rendered, "--record-raw", raw),
        *("--save-masks", masks, "--summary", summary),
    )
    dumped = [cv2.imread(str(p)) for p in sorted(masks.glob("*_frame.png"))]
    return result.stderr, decode(rendered), decode(raw), dumped, json.loads(summary.read_text())


def assert_no_form_leaves(kinds, raw, dumped, stderr) -> None:
    for i, what in enumerate(kinds):
        if what == "form":
            assert raw[i].max() <= BLANK_MAX, f"frame {i}, the form, is in the raw recording"
            assert dumped[i].max() == 0, f"frame {i}, the form, is in the mask dump"
    assert PATIENT not in stderr and "DOE" not in stderr and "JANE" not in stderr


@pytest.mark.parametrize("kind", ["folder", "mp4"])
def test_a_form_before_the_image_is_blanked_and_the_image_found_after(tmp_path, kind):
    source, kinds, sim = session(tmp_path, [("form", 10), ("clip", 12)], kind)
    stderr, rendered, raw, dumped, stats = replay(source, tmp_path)
    assert len(raw) == len(dumped) == len(kinds)
    assert_no_form_leaves(kinds, raw, dumped, stderr)
    assert stats["roi"] is not None and abs(stats["roi"][0] - sim.roi.x) <= POSITION_TOL_PX, stats["roi"]
    assert abs(stats["roi"][2] - sim.roi.w) <= 2 * POSITION_TOL_PX
    assert stats["roi_undecided_frames"] >= kinds.count("form")
    assert sim.roi.crop(raw[-1]).mean() > IMAGE_MIN_MEAN  # the image (and the AI) came back


@pytest.mark.parametrize("kind", ["folder", "mp4"])
def test_a_form_opened_after_the_image_was_found_is_blanked_whole(tmp_path, kind):
    """The decided ROI is checked on every frame: the form's first frame already chooses again (no
    image: undecided, blanked whole), and the image is found again when the form closes."""
    source, kinds, sim = session(tmp_path, [("clip", 6), ("form", 8), ("clip", 10)], kind)
    stderr, rendered, raw, dumped, stats = replay(source, tmp_path)
    assert len(raw) == len(kinds)
    assert sim.roi.crop(raw[0]).mean() > IMAGE_MIN_MEAN  # the image was found on the first frame
    assert_no_form_leaves(kinds, raw, dumped, stderr)
    assert sim.roi.crop(raw[-1]).mean() > IMAGE_MIN_MEAN and stats["roi_undecided"] == ""
    first_form = kinds.index("form")
    assert f"frame {first_form}:" in stderr, stderr[-2000:]  # the warning names where the image went
