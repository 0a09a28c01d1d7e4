"""OpenIGTLink frames get the same automatic ROI as any other source, and the whole frame is never
used without a warning.

A PLUS frame grabber without a clip rectangle sends the whole scanner screen, patient line and all.
The runtime used to take every OpenIGTLink image as the ultrasound area; now, with ``roi.rect: auto``,
the image is found on it and the rest blanked. Through the real ``sonomap live`` against a pyigtl
server on loopback standing in for PLUS; the raw recording is decoded and looked at.
"""

from __future__ import annotations

import logging
import re
import subprocess

import numpy as np
import pytest
from clips import decode
from loopback import SONOMAP
from runtime_model import dark_onnx
from test_igtl_standin import PlusStandIn, pyigtl
from test_roi_privacy_detect import POSITION_TOL_PX, screen

from edge_runtime.config import build_config
from edge_runtime.frames import Frame
from edge_runtime.pipeline import roi_chooser

BLANK_MAX = 16  # black within H.264 noise
TEXT_MIN = 120  # the burned-in text is drawn at grey level 200
IMAGE_MIN_MEAN = 20
LIVE_SECONDS = 4.0
PROC_TIMEOUT_S = 40
N_SCREENS = 6


def box(image: np.ndarray, b) -> np.ndarray:
    x, y, w, h = b
    return image[y : y + h, x : x + w]


@pytest.mark.timeout(90)
def test_a_whole_scanner_screen_over_openigtlink_is_blanked_but_the_image(tmp_path):
    assert pyigtl is not None
    screens = [screen(index=i)[0][:, :, 0].copy() for i in range(N_SCREENS)]  # gray, as PLUS sends
    _, sim = screen()
    assert box(screens[0], sim.patient_box).max() > TEXT_MIN
    plus = PlusStandIn(screens)
    raw = tmp_path / "raw.mp4"
    try:
        proc = subprocess.run(
            [
                *SONOMAP,
                *(
                    "-v",
                    "live",
                    "--source",
                    f"igtl://127.0.0.1:{plus.port}?device=Image_Reference&timeout=10",
                ),
                *("--headless", "--duration", str(LIVE_SECONDS), "--model", str(dark_onnx())),
                *("--record-raw", str(raw)),
            ],
            capture_output=True,
            text=True,
            timeout=PROC_TIMEOUT_S,
        )
    finally:
        plus.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = decode(raw)
    assert recorded, proc.stderr[-3000:]
    for frame in recorded:
        assert box(frame, sim.patient_box).max() <= BLANK_MAX, "the patient line left over OpenIGTLink"
    assert sim.roi.crop(recorded[-1]).mean() > IMAGE_MIN_MEAN  # the image itself goes on
    chosen = [int(m.group(1)) for m in re.finditer(r"ROI Roi\(x=(\d+),", proc.stderr)]
    assert chosen and abs(chosen[0] - sim.roi.x) <= POSITION_TOL_PX, proc.stderr[-3000:]
    assert "whole frame" not in proc.stderr


def choose(config: dict, image: np.ndarray, meta: dict | None = None):
    chooser = roi_chooser.RoiChooser(build_config(config))
    return chooser.choose(Frame(0, image, 0.0, None, dict(meta or {})))


@pytest.mark.parametrize(
    "config,meta",
    [
        ({"roi": {"rect": "full"}}, {}),
        ({"roi": {"rect": f"0,0,{640},{360}"}}, {}),
        ({}, {"default_roi": "full"}),  # a source whose frames default to the whole frame
    ],
    ids=["full", "rect-spanning-the-frame", "source-default"],
)
def test_the_whole_frame_as_the_image_is_always_warned_about(caplog, config, meta):
    image, _ = screen()
    with caplog.at_level(logging.WARNING, logger="sonomap.privacy"):
        roi = choose(config, image, meta)
    assert roi.as_list() == [0, 0, 640, 360] and not roi.undecided
    warned = [r.getMessage() for r in caplog.records if r.name == "sonomap.privacy"]
    assert any("whole frame" in m for m in warned), warned


def test_an_auto_roi_is_not_warned_about(caplog):
    image, sim = screen()
    with caplog.at_level(logging.WARNING, logger="sonomap.privacy"):
        roi = choose({}, image)
    assert abs(roi.x - sim.roi.x) <= POSITION_TOL_PX
    assert not [r for r in caplog.records if "whole frame" in r.getMessage()]
