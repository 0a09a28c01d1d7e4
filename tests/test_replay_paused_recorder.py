"""A replay's recorder that pauses below ``sinks.min_free_gb`` has failed: a replay's outputs are results
re-made on demand, every frame expected in them. It is listed in the summary's ``failed_outputs`` with
after how many frames it paused and how many it did not write, no ``wrote`` line names it, and the
replay exits 2 like any failed output. A replay's pause is final (no ``-1`` file with the rest); live
recorders still pause and resume (tests/test_recording_hygiene.py).

No mocks and no tmpfs: ``sinks.min_free_gb`` is set against the real free space of the test's disk,
above it (as if the disk were nearly full) and then below it (space is back).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from cli import sonomap
from runtime_model import dark_onnx

from edge_runtime.live_stats import EVENTS
from edge_runtime.sinks import recordings
from edge_runtime.sinks.masks import MaskDumpSink
from edge_runtime.sinks.mp4 import Mp4Sink

CLIP_FRAMES = 6
CLIP_SIZE = "320x180"
FPS = 10
WAIT_S = 30.0
MORE_THAN_ANY_DISK_GB = 1000  # added to the disk's free space: a threshold it is below
PAUSED = "paused for low disk"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", CLIP_FRAMES, "--size", CLIP_SIZE, "--noise", 0)
    return out


def nearly_full(tmp_path: Path) -> Path:
    """A runtime config whose sinks.min_free_gb is above the free space of the test's disk."""
    config = tmp_path / "nearly-full.yaml"
    free = recordings.free_gib(tmp_path)
    config.write_text(yaml.safe_dump({"sinks": {"min_free_gb": round(free + MORE_THAN_ANY_DISK_GB)}}))
    return config


def frame(i: int) -> np.ndarray:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, (i * 4) % 56 : (i * 4) % 56 + 8] = 255
    return img


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def test_replay_whose_recorders_pause_before_writing_fails_and_names_them(clip, tmp_path):
    out, raw, masks, summary = (tmp_path / n for n in ("out.mp4", "raw.mp4", "masks", "summary.json"))
    result = sonomap(
        "replay",
        clip,
        "--model",
        dark_onnx(),
        "--config",
        nearly_full(tmp_path),
        "--out",
        out,
        "--record-raw",
        raw,
        "--save-masks",
        masks,
        "--summary",
        summary,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sonomap replay: error: --out {out}: recording failed: {PAUSED}"), error
    lost = f"after 0 frame(s); {CLIP_FRAMES} frame(s) not written"
    for option, path in (("--out", out), ("--record-raw", raw), ("--save-masks", masks)):
        assert f"{option} {path}: recording failed: {PAUSED}" in error and lost in error, error
    assert "wrote" not in result.stdout, result.stdout  # no line names a file that is not there
    assert not out.exists() and not raw.exists() and not any(masks.iterdir())
    report = json.loads(summary.read_text())
    assert set(report["failed_outputs"]) == {"video", "raw", "masks"}
    assert all(PAUSED in why and lost in why for why in report["failed_outputs"].values())
    assert report["recording"] == recordings.REC_PAUSED and report["frames"] == CLIP_FRAMES
    assert "a replay does not resume" in result.stderr  # the log line at the pause says so


def test_replay_with_room_on_disk_writes_and_reports_as_before(clip, tmp_path):
    out, summary = tmp_path / "out.mp4", tmp_path / "summary.json"
    result = sonomap("replay", clip, "--model", dark_onnx(), "--out", out, "--summary", summary)
    assert f"wrote {out} (video)" in result.stdout and count_frames(out) == CLIP_FRAMES
    assert json.loads(summary.read_text())["failed_outputs"] == {}


def test_replay_sequence_recorder_that_pauses_fails_too(clip, tmp_path):
    pytest.importorskip("nrrd")
    sequence = tmp_path / "seq" / "rec.seq.nrrd"
    result = sonomap(
        "replay",
        clip,
        "--model",
        dark_onnx(),
        "--config",
        nearly_full(tmp_path),
        "--record-sequence",
        sequence,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        f"sonomap replay: error: --record-sequence {sequence}: recording failed: {PAUSED}"
    )
    assert f"{CLIP_FRAMES} frame(s) not written" in error and "wrote" not in result.stdout


def test_replay_recorder_that_pauses_part_way_keeps_its_frames_and_fails(tmp_path):
    """The recorder as a replay opens it (``resume=False``): 10 frames written, then the disk is
    "nearly full" for 5 frames, then space is back for 3. The pause is final: the file keeps its 10
    frames, no ``-1`` file is made, and at close the recorder has failed, counted in /metrics."""
    out = tmp_path / "rec.mp4"
    outputs = {"video": str(out)}
    sink = Mp4Sink(out, fps=FPS, min_free_gb=0.001, outputs=outputs, name="video", resume=False)
    sink.space.interval_s = 0  # check on every frame, not once a second
    failed_before = EVENTS.snapshot().get("recording_failed", 0)
    try:
        for i in range(10):
            sink.write(frame(i))
        wait_until(lambda: sink.frames == 10, "recording did not start")
        sink.space.min_free_gb = recordings.free_gib(tmp_path) + MORE_THAN_ANY_DISK_GB
        for i in range(5):
            sink.write(frame(i))
        wait_until(lambda: sink.paused_frames == 5, "recorder did not pause")
        sink.space.min_free_gb = 0.001  # space is back: a replay's recorder stays paused
        for i in range(3):
            sink.write(frame(i))
        wait_until(lambda: sink.paused_frames == 8, "recorder resumed")
        assert sink.error is None  # failed once the run is over, not while it goes on
    finally:
        sink.close()
    assert str(sink.error).startswith(PAUSED) and "after 10 frame(s); 8 frame(s) not written" in str(
        sink.error
    )
    assert sink.files == [out] and count_frames(out) == 10 and outputs == {"video": str(out)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mp4"]
    assert EVENTS.snapshot()["recording_failed"] == failed_before + 1


def test_replay_mask_dump_that_pauses_part_way_fails(tmp_path):
    sink = MaskDumpSink(tmp_path / "masks", min_free_gb=0.001, resume=False)
    sink.space.interval_s = 0
    mask = np.zeros((48, 64), np.uint8)
    try:
        sink.write(0, frame(0)[:, :, 0], mask)
        wait_until(lambda: sink.frames == 1, "mask dump did not write")
        sink.space.min_free_gb = recordings.free_gib(tmp_path) + MORE_THAN_ANY_DISK_GB
        sink.write(1, frame(1)[:, :, 0], mask)
        wait_until(lambda: sink.paused_frames == 1, "mask dump did not pause")
        sink.space.min_free_gb = 0.001
        sink.write(2, frame(2)[:, :, 0], None)
        wait_until(lambda: sink.paused_frames == 2, "mask dump resumed")
    finally:
        sink.close()
    assert "after 1 frame(s); 2 frame(s) not written" in str(sink.error)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["000000_frame.png", "000000_mask.png"]


def test_a_live_recorder_still_resumes_and_does_not_fail(tmp_path):
    """The default (live) recorder: paused, then resumed into ``rec-1.mp4``; no error at close."""
    sink = Mp4Sink(tmp_path / "rec.mp4", fps=FPS, min_free_gb=recordings.free_gib(tmp_path) + 1000)
    sink.space.interval_s = 0
    try:
        sink.write(frame(0))
        wait_until(lambda: sink.paused_frames == 1, "recorder did not pause")
        sink.space.min_free_gb = 0.001
        sink.write(frame(1))
        wait_until(lambda: sink.frames == 1, "recorder did not resume")
    finally:
        sink.close()
    assert (
        sink.error is None
        and sink.files == [tmp_path / "rec.mp4"]
        and count_frames(tmp_path / "rec.mp4") == 1
    )


def test_live_with_a_paused_recorder_warns_and_exits_0_without_a_wrote_line(clip, tmp_path):
    rec = tmp_path / "rec" / "live.mp4"
    result = sonomap(
        "live",
        "--source",
        clip,
        "--headless",
        "--model",
        dark_onnx(),
        "--config",
        nearly_full(tmp_path),
        "--record",
        rec,
    )
    assert "recording paused" in result.stderr and "it resumes when space returns" in result.stderr
    assert "recording failed" not in result.stderr, result.stderr[-2000:]
    assert not rec.exists() and "wrote" not in result.stdout, result.stdout  # no file, no wrote line
