"""Recording, source and inference settings that FFmpeg, the pacing or the backend would trip over
late (after a whole replay, in a hang, or silently on another device) are refused before anything
runs: one line naming the file and the key, through the real `sonomap replay`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli import sonomap
from runtime_model import dark_onnx

BUSI = Path(__file__).parent / "data" / "busi" / "images"

REFUSED = {  # config text -> the start of what the error says after the file name
    "sinks: {preset: bogus}": "config key 'sinks.preset' must be an x264 preset (ultrafast, superfast,",
    "sinks: {fps: 1.0e+300}": "config key 'sinks.fps' must be a number in [1, 240] (frames per second)",
    "sinks: {fps: 1.0e-9}": "config key 'sinks.fps' must be a number in [1, 240] (frames per second)",
    "source: {fps: 1.0e-9, realtime: true}": "config key 'source.fps' must be a number in [1, 240]",
    "inference: {device: tpu}": "config key 'inference.device' must be auto, cpu or cuda, got 'tpu'",
    "roi: {rect: '1,2,3'}": "config key 'roi.rect' must be auto, full or [x, y, w, h], got '1,2,3'",
}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs")
    for name in ("malignant_002.png", "benign_041.png"):
        shutil.copy(BUSI / name, folder)
    return folder


def replay(images: Path, out: Path, *extra) -> tuple[int, list[str]]:
    res = sonomap("replay", images, "--model", dark_onnx(), "--out", out, *extra, check=False, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, res.stderr.strip().splitlines()


@pytest.mark.parametrize("text, message", REFUSED.items())
def test_a_bad_setting_is_one_line_naming_file_and_key_before_the_run(images, tmp_path, text, message):
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n")
    out = tmp_path / "o.mp4"
    code, lines = replay(images, out, "--roi", "full", "--config", config)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"sonomap replay: error: {config}: {message}"), lines[0]
    assert not out.exists()


def test_a_bad_roi_flag_is_named_as_the_flag(images, tmp_path):
    out = tmp_path / "o.mp4"
    for value in ("1,2,3", "inf,0,10,10"):
        code, lines = replay(images, out, "--roi", value)
        assert code == 2 and lines == [
            f"sonomap replay: error: --roi: expected auto, full or x,y,w,h numbers, got '{value}'"
        ]
    assert not out.exists()


def test_a_named_preset_and_frame_rate_record(images, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("sinks: {preset: veryfast, fps: 12}\n")
    out = tmp_path / "o.mp4"
    code, lines = replay(images, out, "--roi", "full", "--config", config)
    assert code == 0, lines
    import av

    with av.open(str(out)) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(12)
