"""`make-clip`'s clip and `bench --json` are written atomically: under a real file size limit
(RLIMIT_FSIZE, a full disk without root) the write fails with one line naming the file, and the
good files from an earlier run are still whole. make-clip names its image on stdout by content only."""

from __future__ import annotations

import json

import pytest
from cli import sonomap
from file_size_limit import sonomap_with_file_size_limit
from runtime_model import dark_onnx

from edge_runtime.manifest import sha256_file
from edge_runtime.sources.frame_size import MAX_FRAME_PIXELS, MAX_FRAME_SIDE

CLIP_LIMIT_BYTES = 1000  # below the 1-frame 64x36 clip (~2 KB), above its .json (~0.3 KB)
BENCH_LIMIT_BYTES = 4096  # above bench's own clip of a 64x36 input, below its report (~9 KB)
TINY = ("--size", "64x36", "--noise", "0")
REPLAY_LIMIT_BYTES = 16 * 1024  # the summary (~3 KB) fits, the 30-frame recording (~60 KB) does not


def test_make_clip_that_cannot_finish_keeps_the_earlier_clip_and_json_and_names_out(tmp_path):
    folder = tmp_path / "clips"
    out = folder / "c.mp4"
    info = out.with_suffix(".json")
    sonomap("make-clip", "--out", out, "--frames", 1, *TINY)
    good_clip, good_info = out.read_bytes(), info.read_text()
    assert len(good_clip) > CLIP_LIMIT_BYTES
    res = sonomap_with_file_size_limit(CLIP_LIMIT_BYTES, "make-clip", "--out", out, "--frames", 1, *TINY)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sonomap make-clip: error: --out {out}: ") and "file size limit" in last, last
    # the clip is staged under a hidden name: the earlier pair is untouched, and no temp file is left
    assert out.read_bytes() == good_clip and info.read_text() == good_info
    assert json.loads(good_info)["clip"] == "c.mp4"  # its name, not its path
    assert sorted(p.name for p in folder.iterdir()) == ["c.json", "c.mp4"]


def test_bench_json_write_failure_keeps_the_old_report_and_names_it(tmp_path):
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 4, *TINY)
    report = tmp_path / "b.json"
    args = ("bench", clip, "--model", dark_onnx(), "--frames", 4, "--live-seconds", 0, "--json", report)
    sonomap(*args)
    good = report.read_text()
    assert len(good) > BENCH_LIMIT_BYTES
    res = sonomap_with_file_size_limit(BENCH_LIMIT_BYTES, *args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1] == f"sonomap bench: error: {report}: File too large"
    assert report.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "clip.json", "clip.mp4"]


def test_make_clip_names_its_image_by_content_on_stdout(tmp_path, busi_sample):
    image = tmp_path / "DOE_JANE_1970.png"
    image.write_bytes((busi_sample / "images" / "malignant_002.png").read_bytes())
    res = sonomap("make-clip", "--image", image, "--out", tmp_path / "c.mp4", "--frames", 1, *TINY)
    assert "DOE_JANE" not in res.stdout + res.stderr
    assert f"from image sha256 {sha256_file(image)[:12]}" in res.stdout


def test_a_replay_recording_that_fills_the_disk_is_named_by_its_output_not_its_hidden_stand_in(tmp_path):
    clip = tmp_path / "clip.mp4"
    sonomap("make-clip", "--out", clip, "--frames", 60, "--size", "640x360")
    out, summary = tmp_path / "o.mp4", tmp_path / "s.json"
    res = sonomap_with_file_size_limit(
        REPLAY_LIMIT_BYTES, "replay", clip, "--model", dark_onnx(), "--out", out, "--summary", summary
    )
    assert res.returncode == 2, res.stderr
    text = res.stderr + summary.read_text()
    # the staged file was deleted by then: naming it would send the reader to a file that is not there
    assert ".partial" not in text and str(out) in res.stderr.strip().splitlines()[-1], res.stderr


@pytest.mark.parametrize("size", ["16384x16384", "8193x100", "5000x4000"])
def test_make_clip_refuses_a_screen_the_runtime_would_not_replay_before_rendering(tmp_path, size):
    """Beyond the runtime's largest frame (MAX_FRAME_SIDE a side, MAX_FRAME_PIXELS in all) replay
    refuses every frame, and at 16384 px libx264 failed only after all frames were rendered."""
    out = tmp_path / "c.mp4"
    res = sonomap("make-clip", "--out", out, "--frames", 1, "--size", size, "--noise", "0", check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip() == (
        f"sonomap make-clip: error: --size {size}: at most {MAX_FRAME_SIDE} px a side and "
        f"{MAX_FRAME_PIXELS / 1e6:.1f} Mpx, the largest frame the runtime replays"
    )
    assert list(tmp_path.iterdir()) == []
    sonomap(
        "make-clip", "--out", out, "--frames", 1, "--size", "4096x4096", "--noise", "0"
    )  # the limit itself
    assert out.is_file()
