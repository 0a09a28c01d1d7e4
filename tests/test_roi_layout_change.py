"""A scanner that changes its screen layout without changing the frame size (the image zoomed out by a
depth change, the image moved) gets its ROI chosen again on the first frame of the new layout.

Before, the auto-detected ROI stayed where the image had been, since what it held still looked like an
image, and the patient line that the new layout put inside it went into the raw recording and the
replay output on every frame. Real clip from ``sonomap make-clip --patient-line``, re-laid out with
OpenCV, written with PyAV (H.264: replay takes the YUV path), replayed by the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from cli import sonomap
from clips import decode

PATIENT_LINE = "DOE^JANE 123456 1970-01-01"
SIZE = (640, 360)
FRAMES, CHANGE_AT = 12, 6  # the layout changes on this frame
ZOOM_OUT = 0.8  # about the screen's centre: the patient line moves down into where the image was
SHIFT = (60, 20)  # pixels right and down: likewise
BLANK_MAX = 16  # black within H.264 noise; the patient line's text is drawn at grey 200
# The new ROI against the image's new place: it may cut this much of the image (H.264, the image's
# 2 px frame) and take this much of the background around it (detected on the YUV path's luma, the
# box runs a few pixels looser than on BGR where H.264 rings next to the image); the old ROI is 25 px
# or more off on some side in both layouts.
CUT_PX, LOOSE_PX = 4, 12
FPS = 30


def layouts() -> dict[str, np.ndarray]:
    """The 2x3 affine map of each new layout."""
    centre = (SIZE[0] / 2, SIZE[1] / 2)
    return {
        "zoomed out": cv2.getRotationMatrix2D(centre, 0, ZOOM_OUT),
        "moved": np.float64([[1, 0, SHIFT[0]], [0, 1, SHIFT[1]]]),
    }


def mapped(rect, matrix: np.ndarray) -> tuple[int, int, int, int]:
    """An (x, y, w, h) rect under the affine ``matrix``, as (x0, y0, x1, y1), rounded outwards."""
    x, y, w, h = rect
    corners = np.float64([[x, y, 1], [x + w, y + h, 1]]) @ matrix.T
    return (
        int(np.floor(corners[0, 0])),
        int(np.floor(corners[0, 1])),
        int(np.ceil(corners[1, 0])),
        int(np.ceil(corners[1, 1])),
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("layout")
    path = root / "screen.mp4"
    sonomap("make-clip", "--out", path, "--frames", FRAMES, "--size", "x".join(map(str, SIZE)),
            "--patient-line", PATIENT_LINE)  # fmt: skip
    return path, json.loads(path.with_suffix(".json").read_text())


@pytest.mark.parametrize("layout", sorted(layouts()))
def test_a_new_layout_of_the_same_size_is_blanked_for_the_new_image(tmp_path, clip, layout):
    path, info = clip
    matrix = layouts()[layout]
    x0, y0, x1, y1 = mapped(info["patient_box"], matrix)
    old = info["roi"]
    # the test's premise: the new layout puts part of the patient line where the image was
    assert x1 > old[0] and y1 > old[1] and x0 < old[0] + old[2] and y0 < old[1] + old[3], (x0, y0, x1, y1)
    moved = tmp_path / "moved.mp4"
    with av.open(str(moved), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for i, screen in enumerate(decode(path)):
            if i >= CHANGE_AT:
                screen = cv2.warpAffine(screen, matrix, SIZE)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(screen, format="bgr24")))
        out.mux(stream.encode())
    raw, summary = tmp_path / "raw.mp4", tmp_path / "summary.json"
    sonomap("replay", moved, "--out", tmp_path / "out.mp4", "--record-raw", raw, "--summary", summary)
    frames = decode(raw)
    assert len(frames) == FRAMES
    for i, frame in enumerate(frames[CHANGE_AT:], CHANGE_AT):
        line = frame[max(0, y0) : y1, max(0, x0) : x1]
        assert int(line.max()) <= BLANK_MAX, f"{layout}: frame {i}: the patient line left the process"
    image = mapped(info["roi"], matrix)  # where the image is now, clipped to the screen
    image = (max(0, image[0]), max(0, image[1]), min(SIZE[0], image[2]), min(SIZE[1], image[3]))
    x, y, w, h = json.loads(summary.read_text())["roi"]
    got = (x, y, x + w, y + h)
    outward = (image[0] - got[0], image[1] - got[1], got[2] - image[2], got[3] - image[3])  # > 0: looser
    assert all(-CUT_PX <= d <= LOOSE_PX for d in outward), f"{layout}: ROI {got}, the image now at {image}"


TIGHT_PX = 8  # the ROI against the zoomed image's box: H.264 blurs its 2 px frame, nothing more


def test_the_yuv_paths_luma_frames_a_zoomed_4_3_screen_as_tightly_as_bgr(tmp_path):
    """Replay detects on the decoded Y plane mapped to full range, which reads H.264's near-black
    blocks around text a grey level or two above their BGR conversion: with a margin of 4 over the
    background that block noise beside the patient line joined the image, and the ROI ran 90 px
    wide of it, up to the line. The same frame, both ways, against where the image is."""
    from edge_runtime import roi as rois
    from edge_runtime import yuv

    size, zoom = (640, 480), 0.85
    path = tmp_path / "screen.mp4"
    sonomap("make-clip", "--out", path, "--frames", 2, "--size", "x".join(map(str, size)),
            "--patient-line", PATIENT_LINE)  # fmt: skip
    info = json.loads(path.with_suffix(".json").read_text())
    matrix = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), 0, zoom)
    zoomed = tmp_path / "zoomed.mp4"
    with av.open(str(zoomed), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for screen in decode(path):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(cv2.warpAffine(screen, matrix, size), "bgr24")))
        out.mux(stream.encode())
    image = mapped(info["roi"], matrix)
    with av.open(str(zoomed)) as c:
        frame = next(c.decode(c.streams.video[0]))
        luma = yuv.full_range_luma(yuv.planes(frame.to_ndarray(format="yuv420p"))[0])
        for name, screen in (("luma", luma), ("bgr", frame.to_ndarray(format="bgr24"))):
            x, y, w, h = rois.detect_roi(screen).as_list()
            outward = (image[0] - x, image[1] - y, x + w - image[2], y + h - image[3])
            assert all(abs(d) <= TIGHT_PX for d in outward), f"{name}: ROI {(x, y, w, h)}, image at {image}"
