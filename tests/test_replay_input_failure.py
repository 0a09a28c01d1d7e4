"""An input that fails part way keeps what came before it: the frames decoded before the bad one are
inferred, drawn and written, every output is finalised and the summary written, then the one-line
error names the file and says how many frames the outputs hold. Frames too small to process are a
one-line error naming the file and the frame. Real PNG folders and clips, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from cli import sonomap
from runtime_model import dark_onnx

GOOD = 20
CORRUPT_RUN = 31  # more corrupt images in a row than a source skips (30)
SIZE = (480, 640)  # (H, W)


def frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def good_images(folder: Path, n: int = GOOD) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        image = np.zeros((*SIZE, 3), np.uint8)
        image[60:420, 100:540] = rng.integers(40, 200, (360, 440, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)


def replay(folder: Path, tmp_path: Path):
    out, masks, summary = tmp_path / "o.mp4", tmp_path / "m", tmp_path / "s.json"
    result = sonomap(
        *("replay", folder, "--model", dark_onnx(), "--out", out, "--save-masks", masks),
        *("--summary", summary),
        check=False,
    )
    return result, out, masks, summary


def test_a_bad_image_after_good_ones_keeps_the_good_frames_and_the_summary(tmp_path):
    folder = tmp_path / "frames"
    good_images(folder)
    cv2.imwrite(str(folder / "z.png"), np.full(SIZE, 1000, np.uint16))  # 16-bit: unsupported
    result, out, masks, summary = replay(folder, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sonomap replay: error: {folder / 'z.png'}: "), error
    assert f"finalised with the {GOOD} frame(s) before it" in error, error
    assert frames_in(out) == GOOD  # a whole, decodable file of the frames before the bad one
    assert len(list(masks.glob("*_frame.png"))) == GOOD
    assert json.loads(summary.read_text())["frames"] == GOOD


def test_too_many_corrupt_images_in_a_row_keep_the_frames_before_them(tmp_path):
    folder = tmp_path / "frames"
    good_images(folder, 5)
    for i in range(CORRUPT_RUN):
        (folder / f"{100 + i:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    result, out, masks, summary = replay(folder, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert f"{CORRUPT_RUN} corrupt frames in a row" in error and str(folder) in error, error
    assert "finalised with the 5 frame(s) before it" in error, error
    assert frames_in(out) == 5 and json.loads(summary.read_text())["frames"] == 5


def test_an_input_bad_from_its_first_frame_writes_nothing(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "z.png"), np.full(SIZE, 1000, np.uint16))
    result, out, masks, summary = replay(folder, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sonomap replay: error: {folder / 'z.png'}: ") and "finalised" not in error
    assert not out.exists() and not summary.exists()


@pytest.mark.parametrize("width, height", [(1, 1), (2, 1), (15, 40)])
def test_a_frame_below_the_minimum_size_is_a_one_line_error(tmp_path, width, height):
    image = tmp_path / "tiny.png"
    cv2.imwrite(str(image), np.full((height, width, 3), 128, np.uint8))
    result = sonomap("replay", image, "--model", dark_onnx(), "--out", tmp_path / "t.mp4", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip() == (
        f"sonomap replay: error: {image}: frame 0 is {width}x{height}, smaller than the minimum 16x16"
    )


def test_a_tiny_frame_after_good_ones_keeps_them(tmp_path):
    folder = tmp_path / "frames"
    good_images(folder, 3)
    cv2.imwrite(str(folder / "z.png"), np.full((1, 1, 3), 128, np.uint8))
    result, out, masks, summary = replay(folder, tmp_path)
    error = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "frame 3 is 1x1, smaller than the minimum 16x16" in error, error
    assert str(folder) in error and frames_in(out) == 3


def test_skipped_corrupt_images_are_counted_in_the_summary_and_said(tmp_path):
    """A glitchy input (two unreadable images among good ones) plays through, and both the summary
    and the printed report say how many frames the outputs lack."""
    folder = tmp_path / "frames"
    good_images(folder)
    for name in ("005b.png", "010b.png"):
        (folder / name).write_bytes(b"not a png")
    result, out, _, summary = replay(folder, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(summary.read_text())
    assert stats["frames"] == GOOD == frames_in(out) and stats["input_frames_skipped"] == 2
    assert "skipped 2 corrupt input frame(s)" in result.stdout, result.stdout
