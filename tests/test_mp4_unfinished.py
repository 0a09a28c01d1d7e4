"""An mp4 recording whose last writes fail while FFmpeg closes it (the disk fills up, a file size limit)
is a failed recording, not a ``wrote`` line: FFmpeg returns from closing without an error and leaves
the file cut short (its last fragment and closing index missing), so the recorder reads the index back.

No root and no mocks: the failing disk is a real file size limit (RLIMIT_FSIZE, SIGXFSZ ignored, so a
write past it fails with EFBIG as on a full disk) set in a child process, placed so that every write
during the run succeeds and only those made at close fail. A fragmented mp4 writes a fragment when the
next keyframe starts (one a second), so the last second of a clip is written at close."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cli import sonomap
from file_size_limit import CHILD_TIMEOUT_S, sonomap_with_file_size_limit
from runtime_model import dark_onnx

from edge_runtime.sinks.mp4_file import unfinished

FPS = 30
FRAMES = 2 * FPS  # two one-second fragments: the second is written when the file is closed
CLIP_SIZE = "320x180"


def boxes(path: Path) -> list[tuple[int, bytes, int]]:
    """The mp4's top-level boxes: (offset, type, size)."""
    data, out, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        out.append((pos, kind, size))
        pos += size
    return out


def limit_in_last_fragment(reference: Path) -> int:
    """A file size limit half way through the last fragment of a file like ``reference``: past every
    byte written before close, short of what close writes."""
    last_moof = [offset for offset, kind, _ in boxes(reference) if kind == b"moof"][-1]
    return (last_moof + reference.stat().st_size) // 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", FRAMES, "--fps", FPS, "--size", CLIP_SIZE, "--noise", 0)
    return out


def test_a_complete_recording_has_its_index_and_a_cut_one_does_not(clip, tmp_path):
    assert unfinished(clip) is None
    assert [kind for _, kind, _ in boxes(clip)][-1] == b"mfra"
    for cut in (1, 40, clip.stat().st_size // 3):
        short = tmp_path / f"cut{cut}.mp4"
        short.write_bytes(clip.read_bytes()[:-cut])
        assert "writing the end of the file failed" in unfinished(short)
    assert unfinished(Path("/dev/null")) is None  # not a regular file: nothing to read back


def test_mp4_sink_reports_writes_lost_at_close(tmp_path):
    """The sink itself, in a child process: every frame written, then a size limit just above the
    file's current size, then close. The sink's ``error`` says the end of the file failed."""
    out = tmp_path / "rec.mp4"
    child = f"""
import json, os, resource, signal, time
import numpy as np
from edge_runtime.live_stats import EVENTS
from edge_runtime.sinks.mp4 import Mp4Sink

sink = Mp4Sink({str(out)!r}, fps={FPS})
rng = np.random.default_rng(0)
for _ in range({FRAMES}):
    sink.write(rng.integers(0, 255, (180, 320, 3), dtype=np.uint8))
deadline = time.monotonic() + 60
while sink.frames < {FRAMES} and time.monotonic() < deadline:  # the writer thread has encoded them all
    time.sleep(0.01)
size = os.path.getsize({str(out)!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))
sink.close()
print(json.dumps({{"frames": sink.frames, "size": size, "error": None if sink.error is None else str(sink.error),
                  "failed": EVENTS.snapshot().get("recording_failed", 0)}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["frames"] == FRAMES and report["size"] > 0
    assert report["error"] and f"{out}: writing the end of the file failed" in report["error"], report
    assert report["failed"] == 1  # counted like any failed recording (/metrics, the HUD)
    assert out.stat().st_size == report["size"] + 100  # the file really is cut short


def test_replay_with_the_end_of_its_recording_lost_is_an_error(clip, tmp_path):
    model = dark_onnx()
    reference = tmp_path / "reference.mp4"
    sonomap("replay", clip, "--model", model, "--out", reference)
    assert unfinished(reference) is None
    out, summary = tmp_path / "overlay.mp4", tmp_path / "summary.json"
    limit = limit_in_last_fragment(reference)
    result = sonomap_with_file_size_limit(
        limit, "replay", clip, "--model", model, "--out", out, "--summary", summary
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap replay: error: --out {out}: recording failed: ") and (
        "writing the end of the file failed" in last
    ), last
    assert f"wrote {out}" not in result.stdout
    assert "writing the end of the file failed" in json.loads(summary.read_text())["failed_outputs"]["video"]
    assert out.stat().st_size == limit  # what was written is kept


def test_make_clip_with_the_end_of_its_file_lost_is_an_error_without_json(clip, tmp_path):
    """Cut inside the closing index only: every frame is in the file, but not all FFmpeg wrote."""
    out = tmp_path / "again.mp4"
    size = clip.stat().st_size  # make-clip is deterministic: the same settings give the same bytes
    mfra = [box for box in boxes(clip) if box[1] == b"mfra"][0][2]
    result = sonomap_with_file_size_limit(
        size - mfra // 2,
        "make-clip",
        "--out",
        out,
        "--frames",
        FRAMES,
        "--fps",
        FPS,
        "--size",
        CLIP_SIZE,
        "--noise",
        0,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap make-clip: error: --out {out}: writing the end of the file failed"), last
    assert "wrote" not in result.stdout and not out.with_suffix(".json").exists()
