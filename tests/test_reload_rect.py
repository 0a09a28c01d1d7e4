"""A configured ROI that does not fit the frames never ends a run: a SIGHUP reload with such a
``roi.rect`` is rejected (the running config kept, a warning naming the frame), and a source that
changes its frame size under a configured ``--roi`` goes on with the AI off and blank outputs until
the rect fits again. The real `sonomap live` and `sonomap replay`, real signals and PNG folders."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from cli import sonomap
from clips import decode
from runtime_model import dark_onnx

SIZE, OTHER_SIZE = (480, 640), (240, 320)  # (H, W)
ROI = "100,100,400,300"  # fits 640x480, not 320x240
SMALL = range(5, 10)  # the frames at the other size
FRAMES = 15
BLANK_MAX = 16
IMAGE_MIN_MEAN = 20
STARTUP_S = 90
POLL_S = 0.2
LIVE_S = 60


def size_changing_folder(root: Path) -> Path:
    folder = root / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(FRAMES):
        h, w = OTHER_SIZE if i in SMALL else SIZE
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(40, 200, (h, w, 3), dtype=np.uint8))
    return folder


def test_replay_goes_on_when_the_frame_size_no_longer_fits_the_configured_roi(tmp_path):
    folder = size_changing_folder(tmp_path)
    out, raw, summary = tmp_path / "o.mp4", tmp_path / "raw.mp4", tmp_path / "s.json"
    result = sonomap(
        *("replay", folder, "--roi", ROI, "--model", dark_onnx()),
        *("--out", out, "--record-raw", raw, "--summary", summary),
    )
    warning = [line for line in result.stderr.splitlines() if "lies outside the 320x240 frame" in line]
    assert warning and "WARNING" in warning[0] and f"frame {SMALL[0]}:" in warning[0], result.stderr
    stats = json.loads(summary.read_text())
    assert stats["frames"] == FRAMES and stats["roi_undecided_frames"] == len(SMALL)
    assert stats["roi"] == [int(v) for v in ROI.split(",")]  # the rect fits again at the end
    recorded = decode(raw)
    assert len(recorded) == len(decode(out)) == FRAMES
    for i, frame in enumerate(recorded):
        if i in SMALL:
            assert frame.max() <= BLANK_MAX  # nothing of a screen the ROI does not fit
        else:
            assert frame.mean() > IMAGE_MIN_MEAN


def test_live_goes_on_when_the_frame_size_no_longer_fits_the_configured_roi(tmp_path):
    folder = size_changing_folder(tmp_path)
    raw = tmp_path / "raw.mp4"
    result = sonomap(
        *("live", "--source", folder, "--headless", "--roi", ROI, "--model", dark_onnx()),
        *("--record-raw", raw),
    )
    assert "lies outside the 320x240 frame" in result.stderr and "error" not in result.stderr.lower()
    assert decode(raw)


def test_sighup_with_a_roi_outside_the_frame_is_rejected_and_the_run_goes_on(tmp_path):
    config = tmp_path / "hup.yaml"
    settings = {
        "source": {"input": "synthetic", "fps": 15, "width": 320, "height": 240},
        "inference": {"model": str(dark_onnx())},
    }
    config.write_text(yaml.safe_dump(settings))
    summary = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime.cli", "-v", "live", "--config", config, "--headless"]
        + ["--summary", str(summary), "--duration", str(LIVE_S)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("ROI " in line for line in lines), STARTUP_S, proc, lines)  # frames flow
        config.write_text(yaml.safe_dump({**settings, "roi": {"rect": [5000, 5000, 10, 10]}}))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("config reload rejected" in line for line in lines), STARTUP_S, proc, lines)
        time.sleep(2)  # frames after the rejected reload: the run must still be going
        assert proc.poll() is None, "".join(lines[-20:])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "".join(lines[-20:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    rejected = next(line for line in lines if "config reload rejected" in line)
    assert "WARNING" in rejected and "5000,5000,10,10 lies outside the 320x240 frame (frame " in rejected
    assert json.loads(summary.read_text())["roi_undecided_frames"] == 0  # the old ROI kept


def wait_for(condition, timeout: float, proc: subprocess.Popen, lines: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, "".join(lines[-20:])
        time.sleep(POLL_S)
    raise AssertionError(f"timed out; log tail: {lines[-10:]}")
