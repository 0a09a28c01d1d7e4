"""Biopsy capture under what a procedure room does to it: the AI stalled at the moment of a fire, and
the disk under the --cases folder stalling (a hung network mount; here a real ext4 file system frozen
with fsfreeze, as root). A case must not record an AI finding from before the pre-fire frame as that
frame's, and a case the disk does not take must not go on reading CAPTURED on screen, nor keep the
session from stopping before systemd kills it."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli import sonomap

from edge_runtime.biopsy.case_writer import STALL_S, Capture, FrameRecord, write_case
from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.biopsy.yield_band import YieldBand
from edge_runtime.frames import Frame, Prediction
from edge_runtime.pipeline.deidentify import ROI_META_KEY
from edge_runtime.roi import Roi

ROOT = Path(__file__).resolve().parents[1]
WHEN = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
ROI = Roi(10, 10, 200, 150, mm_per_pixel=0.1)
MODEL = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
BAND = np.array([[20.0, 20.0], [120.0, 20.0], [120.0, 60.0], [20.0, 60.0]])  # ROI pixels
EARLIER_FRACTION = 0.62  # the band's fraction over a prediction shown frames before the fire
DISK_MB = 16
FRAME_S = 1 / 30
STALL_WAIT_S = STALL_S + 2.0
SERVICE_UNIT = ROOT / "systemd" / "sonomap.service"
NOT_SAVED_YET = re.compile(r"^BIOPSY 1 NOT SAVED YET: ")


def _record(prediction: Prediction | None, ai: str) -> FrameRecord:
    return FrameRecord(7, 0.23, WHEN, np.full((ROI.h, ROI.w), 90, np.uint8), prediction, ai=ai)


def _capture(pre: FrameRecord) -> Capture:
    band = YieldBand(BAND, EARLIER_FRACTION, (120.0, 40.0))
    return Capture(
        1, "key", pre, pre, None, ROI.as_list(), ROI.mm_per_pixel, 14, MODEL, "synthetic", 1, (5, band)
    )


def test_a_fire_while_the_ai_stalls_records_no_yield_from_an_earlier_prediction(tmp_path):
    stalled = write_case(tmp_path, _capture(_record(None, "STALLED")))
    cap = yaml.safe_load((stalled / "case.yaml").read_text())["capture"]
    assert cap["prediction"] is None and cap["pre_fire"]["ai"] == "STALLED"
    assert cap["expected_yield"]["fraction"] is None  # not EARLIER_FRACTION: no prediction was shown
    assert cap["expected_yield"]["needle_frame"] == 5 and len(cap["expected_yield"]["band"]) == 4

    everywhere = np.ones((ROI.h, ROI.w), np.uint8)  # the pre-fire frame's own prediction: all cancer
    shown = Prediction(everywhere, everywhere.astype(np.float32))
    on = write_case(tmp_path, _capture(_record(shown, "ON")))
    assert yaml.safe_load((on / "case.yaml").read_text())["capture"]["expected_yield"]["fraction"] == 1.0


def _stop_timeout_s() -> float:
    """systemd's TimeoutStopSec for the cart's service: after it, the service is killed."""
    return float(re.search(r"^TimeoutStopSec=(\d+)$", SERVICE_UNIT.read_text(), re.M)[1])


@pytest.fixture
def freezable(tmp_path):
    """A real ext4 file system on a loop device that the test can freeze; root and util-linux only."""
    tools = ("mount", "umount", "mkfs.ext4", "fsfreeze")
    if any(shutil.which(tool) is None for tool in tools) or not Path("/dev/loop-control").exists():
        pytest.skip("needs root, loop devices, mkfs.ext4 and fsfreeze")
    image, mnt = tmp_path / "disk.img", tmp_path / "mnt"
    with open(image, "wb") as f:
        f.truncate(DISK_MB << 20)
    mnt.mkdir()
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    if subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a loop device here (not root, or no loop support)")
    try:
        yield mnt
    finally:
        subprocess.run(["fsfreeze", "-u", str(mnt)], capture_output=True)
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _frame(index: int) -> Frame:
    image = np.random.default_rng(index).integers(0, 255, (180, 230, 3), dtype=np.uint8)
    return Frame(index, image, time.monotonic(), pts=index * FRAME_S, meta={ROI_META_KEY: ROI})


def _run_frames(observer: CaptureObserver, start: int, seconds: float) -> tuple[int, list[str]]:
    """Feed frames for ``seconds``; (the next index, the last frame's banner texts)."""
    index, end = start, time.monotonic() + seconds
    while True:
        frame = _frame(index)
        observer.on_frame(frame, None, frame.image, {"ai": {"state": "OFF"}})
        texts = [text for _, text in observer.banners(frame, "OFF")]
        index += 1
        if time.monotonic() >= end:
            return index, texts
        time.sleep(FRAME_S)


def test_a_stalled_disk_is_shown_as_not_saved_yet_and_the_session_stops_in_time(freezable):
    marks = MarkRequests()
    observer = CaptureObserver(freezable / "cases", MODEL, "synthetic", marks=marks, study=StudyIdSlot())
    subprocess.run(["fsfreeze", "-f", str(freezable)], check=True)
    marks.request("key")
    index, texts = _run_frames(observer, 0, STALL_WAIT_S)
    assert any(NOT_SAVED_YET.match(t) for t in texts) and "BIOPSY 1 CAPTURED" not in texts, texts
    assert observer.book.writer.written == []

    subprocess.run(["fsfreeze", "-u", str(freezable)], check=True)  # the disk answers again
    index, texts = _run_frames(observer, index, 1.0)
    assert not any("NOT SAVED" in t for t in texts), texts
    assert [p.name.endswith("-1") for p in observer.book.writer.written] == [True]

    subprocess.run(["fsfreeze", "-f", str(freezable)], check=True)
    marks.request("key")
    _run_frames(observer, index, FRAME_S)
    started = time.monotonic()
    observer.close()  # the disk still frozen: the case is reported, within systemd's stop timeout
    assert time.monotonic() - started < _stop_timeout_s()
    assert [(m.number, m.reason) for m in observer.book.writer.failed] == [
        (2, "still being written when the session ended")
    ]


def test_a_cases_folder_that_cannot_be_made_is_one_line_naming_the_option(tmp_path):
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 2, "--size", "64x36")
    # procfs refuses every new folder, as a read-only or foreign file system does, even to root
    cases = Path("/proc/sonomap-cases")
    res = sonomap("replay", clip, "--out", tmp_path / "o.mp4", "--cases", cases, check=False)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap replay: error: --cases {cases}: "), res.stderr
    assert "Traceback" not in res.stderr and "recordings directory" not in last
