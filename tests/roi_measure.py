"""Measure ROI auto-detection on real images laid out on capture-card screens (not a test).

Input: the BUSI images of a folder (default: the vendored sample; the full release for the numbers in
docs/privacy.md) and the 30 frames of pydicom's echo cine ``examples_ybr_color.dcm``, each
drawn by :func:`roi_screens.screen` on a black, a video-range and a dark grey UI (30) screen, as a
linear probe's rectangle and a curvilinear probe's fan. Output: one table row per (images, background,
layout): screens, undecided (the AI stays off), cuts the image (more than CUT_TOL_PX into its content's
box), loses over 1 % of its content, takes UI (any annotation pixel inside the ROI), takes the patient
line (any of its pixels inside the ROI); with ``--why`` the undecided reasons too. Each screen can be
put through a real H.264 round trip (``--codec h264``: :func:`roi_screens.h264`, as an RTSP stream or a
recorded clip gives it) and, before that, analogue capture noise over the whole screen (``--noise``
SIGMA grey levels: :func:`roi_screens.noisy`).

Run: ``.venv/bin/python tests/roi_measure.py [--images BUSI/images] [--codec h264] [--noise 4]
[--only busi] [--why]``.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import cv2
import numpy as np
import roi_screens

from edge_runtime.roi import detect_roi

SAMPLE = Path(__file__).resolve().parent / "data" / "busi" / "images"
BACKGROUNDS = {"black": (0, False), "video range": (0, True), "grey UI": (30, False)}
LAYOUTS = {"linear": False, "sector": True}
# The cine's SequenceOfUltrasoundRegions box (84, 31, 595, 414) is given for a 640x480 screen; its
# frames are 320x240, so the region is halved here.
ECHO_REGION = (42, 15, 298, 208)
CODECS = ("raw", "h264")
LOSES_FRACTION = 0.01  # "loses" the image: more than this share of its content outside the ROI


def echo_frames() -> list[np.ndarray]:
    """The gray image areas of pydicom's echo cine: each frame (pydicom gives its YBR colour as RGB)
    cut to its calibrated region, the sector without the scanner's own text and menu around it."""
    import pydicom
    from pydicom.data import get_testdata_file

    rgb = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm")).pixel_array
    x0, y0, x1, y1 = ECHO_REGION
    return [cv2.cvtColor(np.ascontiguousarray(f[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY) for f in rgb]


def busi_images(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))]


def capture(screen: np.ndarray, codec: str, noise: float, seed: int) -> np.ndarray:
    """The BGR ``screen`` as the capture path gives it: analogue ``noise`` (sigma, 0: none), then
    ``codec`` ("raw" or "h264")."""
    if noise:
        screen = roi_screens.noisy(screen, noise, seed)
    return roi_screens.h264(screen) if codec == "h264" else screen


def run(sets: dict[str, list[np.ndarray]], why: bool, codec: str = "raw", noise: float = 0.0) -> None:
    print(f"capture: {codec}, noise {noise:g}")
    print(
        "| images | background | layout | screens | undecided | cuts image | loses > 1 % | takes UI "
        "| takes the patient line |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for set_name, images in sets.items():
        for layout, sector in LAYOUTS.items():
            for bg_name, (level, video) in BACKGROUNDS.items():
                counts = collections.Counter()
                reasons = collections.Counter()
                for seed, image in enumerate(images):
                    screen, truth = roi_screens.screen(
                        image, background=level, sector=sector, video_range=video
                    )
                    roi = detect_roi(capture(screen, codec, noise, seed))
                    got = roi_screens.score(roi, truth)
                    counts["undecided"] += got.undecided
                    reasons[roi.undecided] += got.undecided
                    if not got.undecided:
                        counts["cuts"] += got.cut_px > roi_screens.CUT_TOL_PX
                        counts["loses"] += got.cut_fraction > LOSES_FRACTION
                        counts["ui"] += got.ui_pixels > 0
                        counts["patient"] += got.patient_pixels > 0
                print(
                    f"| {set_name} | {bg_name} | {layout} | {len(images)} | {counts['undecided']} | "
                    f"{counts['cuts']} | {counts['loses']} | {counts['ui']} | {counts['patient']} |",
                    flush=True,
                )
                if why and reasons:
                    print("|", dict(reasons), "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SAMPLE, help="a folder of BUSI PNG images")
    parser.add_argument("--why", action="store_true", help="also print the undecided reasons")
    parser.add_argument("--codec", choices=CODECS, default="raw", help="the capture path's compression")
    parser.add_argument("--noise", type=float, default=0.0, help="analogue noise sigma over the screen")
    parser.add_argument("--only", choices=("busi", "echo"), help="measure one image set only")
    args = parser.parse_args()
    sets = {}
    if args.only != "echo":
        sets["BUSI"] = busi_images(args.images)
    if args.only != "busi":
        sets["echo cine"] = echo_frames()
    run(sets, args.why, args.codec, args.noise)


if __name__ == "__main__":
    main()
