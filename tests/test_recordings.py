"""A live session never records over an earlier one; recording paths take strftime fields."""

from __future__ import annotations

import time

import av
import pytest
from runtime_model import dark_onnx

from edge_runtime.config import build_config
from edge_runtime.errors import InputError
from edge_runtime.pipeline.graph import Pipeline
from edge_runtime.sinks.recordings import MAX_SUFFIX, expand, session_path

SESSION_S = 1.0
FIXED_TIME = time.mktime((2026, 11, 25, 14, 30, 5, 0, 0, -1))


def frames_in(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def live_session(**sinks) -> dict:
    config = build_config(
        {
            "source": {"input": "synthetic", "fps": 30, "width": 640, "height": 360},
            "inference": {"model": str(dark_onnx())},
            "live": {"duration_s": SESSION_S},
            "sinks": sinks,
        }
    )
    return Pipeline(config).run()


def test_a_restarted_live_session_keeps_the_earlier_recording(tmp_path):
    """What systemd's restart after a crash does: the same config runs again."""
    video, masks = tmp_path / "rec" / "overlay.mp4", tmp_path / "rec" / "masks"
    first = live_session(video=str(video), masks=str(masks))
    size = video.stat().st_size
    second = live_session(video=str(video), masks=str(masks))
    assert first["outputs"] == {"video": str(video), "masks": str(masks)}
    assert second["outputs"] == {
        "video": str(tmp_path / "rec" / "overlay-1.mp4"),
        "masks": str(tmp_path / "rec" / "masks-1"),
    }
    assert video.stat().st_size == size and frames_in(video) > 0  # untouched
    assert frames_in(second["outputs"]["video"]) > 0
    assert any((tmp_path / "rec" / "masks-1").glob("*_mask.png"))


def test_recording_path_with_time_fields(tmp_path):
    template = tmp_path / "%Y%m%d" / "%H%M%S-overlay.mp4"
    summary = live_session(video=str(template))
    written = summary["outputs"]["video"]
    assert "%" not in written and written.endswith("-overlay.mp4") and frames_in(written) > 0
    assert expand(template, FIXED_TIME) == tmp_path / "20261125" / "143005-overlay.mp4"
    assert expand(tmp_path / "100%%.mp4") == tmp_path / "100%.mp4"


def test_replay_outputs_are_overwritten_and_suffixes_run_out(tmp_path):
    out = tmp_path / "overlay.mp4"
    out.write_bytes(b"old")
    assert session_path(out, keep_existing=False) == out  # replay: re-made on demand
    (tmp_path / "empty").mkdir()
    assert session_path(tmp_path / "empty", keep_existing=True) == tmp_path / "empty"  # nothing to keep
    for n in range(1, MAX_SUFFIX + 1):
        (tmp_path / f"overlay-{n}.mp4").touch()
    with pytest.raises(InputError, match="overlay.mp4: 9999 earlier recordings"):
        session_path(out, keep_existing=True)
