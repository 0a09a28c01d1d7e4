"""The run's summary lists under ``outputs`` only the files the run wrote: a recorder that failed is
named under ``failed_outputs`` alone, so nothing reading the summary takes its file for a result.

Real CLI runs, no mocks: the failure is a real file size limit (RLIMIT_FSIZE, as a full disk) set in
the child, between the size of the overlay and raw videos (written whole) and a frame PNG of the mask
dump (which cannot be written, so the dump fails). The sizes are measured first on the same clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli import sonomap
from file_size_limit import sonomap_with_file_size_limit
from runtime_model import dark_onnx

CLIP_FRAMES = 3
CLIP_SIZE = "320x180"  # a frame PNG (~16 KB) is larger than either video of the clip (~9-12 KB)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    sonomap("make-clip", "--out", out, "--frames", CLIP_FRAMES, "--size", CLIP_SIZE, "--noise", 0)
    return out


def replay_args(clip: Path, folder: Path) -> list[str]:
    return [
        "replay",
        str(clip),
        "--model",
        str(dark_onnx()),
        "--out",
        str(folder / "ov.mp4"),
        "--record-raw",
        str(folder / "raw.mp4"),
        "--save-masks",
        str(folder / "masks"),
        "--summary",
        str(folder / "s.json"),
    ]


def limit_between_videos_and_frame_pngs(clip: Path, folder: Path) -> int:
    """A file size limit above both videos and the summary, below every frame PNG (measured)."""
    sonomap(*replay_args(clip, folder))
    whole = max((folder / name).stat().st_size for name in ("ov.mp4", "raw.mp4", "s.json"))
    frame = min(p.stat().st_size for p in (folder / "masks").glob("*_frame.png"))
    assert whole < frame, (whole, frame)
    return (whole + frame) // 2


def test_a_failed_recorder_is_only_under_failed_outputs(clip, tmp_path):
    limit = limit_between_videos_and_frame_pngs(clip, tmp_path / "measured")
    run = tmp_path / "run"
    run.mkdir()
    result = sonomap_with_file_size_limit(limit, *replay_args(clip, run))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    masks, video, raw = run / "masks", run / "ov.mp4", run / "raw.mp4"
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap replay: error: --save-masks {masks}: recording failed: "), last
    summary = json.loads((run / "s.json").read_text())
    assert set(summary["failed_outputs"]) == {"masks"}
    assert summary["outputs"] == {"video": str(video), "raw": str(raw)}  # written whole
    assert str(masks) not in summary["outputs"].values()
    for path in summary["outputs"].values():
        assert Path(path).stat().st_size > 0
        assert f"wrote {path}" in result.stdout
    assert f"wrote {masks}" not in result.stdout
