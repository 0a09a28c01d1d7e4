"""``--save-masks``: a frame or mask PNG that cannot be written stops the mask dump as a failed recorder
(counted, in the summary's ``failed_outputs``, a replay exits 2 with one line naming the PNG), instead
of losing frames without a word. Nothing half-written is left in the folder (the PNGs are written
atomically, :func:`edge_runtime.atomic.atomic_write_png`).

No root and no mocks: the full disk is a real file size limit (RLIMIT_FSIZE, SIGXFSZ ignored, so a
write past it fails with EFBIG as on a full disk) set in a child process. The limit lies between the
size of a mask PNG (mostly one value: a few hundred bytes) and a frame PNG (ultrasound texture)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli import sonomap
from file_size_limit import python_with_file_size_limit, sonomap_with_file_size_limit
from runtime_model import dark_onnx

CLIP_FRAMES = 4
CLIP_SIZE = "320x180"
FILE_SIZE_LIMIT = 8000  # bytes: above a mask PNG of this clip and its summary JSON, below a frame PNG


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", CLIP_FRAMES, "--size", CLIP_SIZE)
    return out


def test_the_limit_lies_between_a_mask_and_a_frame_png(clip, tmp_path):
    masks, summary = tmp_path / "masks", tmp_path / "summary.json"
    sonomap("replay", clip, "--model", dark_onnx(), "--save-masks", masks, "--summary", summary)
    sizes = {kind: [p.stat().st_size for p in masks.glob(f"*_{kind}.png")] for kind in ("frame", "mask")}
    assert len(sizes["frame"]) == len(sizes["mask"]) == CLIP_FRAMES
    assert max(sizes["mask"]) < FILE_SIZE_LIMIT < min(sizes["frame"]), sizes
    assert summary.stat().st_size < FILE_SIZE_LIMIT  # the summary of the failing run is written


def test_replay_whose_frame_pngs_cannot_be_written_fails_naming_the_png(clip, tmp_path):
    masks, summary = tmp_path / "masks", tmp_path / "summary.json"
    result = sonomap_with_file_size_limit(
        FILE_SIZE_LIMIT,
        "replay",
        str(clip),
        "--model",
        str(dark_onnx()),
        "--save-masks",
        str(masks),
        "--summary",
        str(summary),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    first = masks / "000000_frame.png"
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sonomap replay: error: --save-masks {masks}: recording failed: ") and (
        f"File too large: '{first}'" in error
    ), error
    assert "sink masks failed and stops recording" in result.stderr  # the log says it once
    assert "wrote" not in result.stdout, result.stdout
    assert list(masks.iterdir()) == []  # no frame lost quietly, no half-written PNG, no temp file
    assert f"File too large: '{first}'" in json.loads(summary.read_text())["failed_outputs"]["masks"]


def test_a_mask_png_that_cannot_be_written_stops_the_sink_and_is_counted(tmp_path):
    """The sink itself: a dark frame (a tiny PNG) is written, its noisy mask (a large one) is not."""
    out = tmp_path / "masks"
    child = f"""
import json
import numpy as np
from edge_runtime.live_stats import EVENTS
from edge_runtime.sinks.masks import MaskDumpSink

sink = MaskDumpSink({str(out)!r})
mask = np.random.default_rng(0).integers(0, 2, (360, 640), dtype=np.uint8)
sink.write(0, np.zeros((360, 640), np.uint8), mask)
sink.close()
print(json.dumps({{"error": str(sink.error), "failed": EVENTS.snapshot().get("recording_failed", 0)}}))
"""
    result = python_with_file_size_limit(FILE_SIZE_LIMIT, "-c", child)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert f"File too large: '{out / '000000_mask.png'}'" in report["error"], report
    assert report["failed"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["000000_frame.png"]
