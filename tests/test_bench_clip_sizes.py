"""bench on clips the pipeline takes but libx264's 4:2:0 cannot encode as they are: an odd-sized clip
(641x361, 4:4:4) is measured (its naive loop drops the last row and column), and a 1x1 clip is one line
naming the file and frame, exit 2. Both ended in a traceback from the naive loop's encoder. Real clips
written by PyAV."""

from __future__ import annotations

from cli import sonomap
from clips import write_noise_clip
from runtime_model import dark_onnx


def _bench(clip):
    return sonomap(
        "bench", clip, "--model", dark_onnx(), "--frames", 4, "--rounds", 1, "--live-seconds", 0, check=False
    )


def test_an_odd_sized_clip_is_measured(tmp_path):
    clip = tmp_path / "odd.mp4"
    write_noise_clip(clip, 6, 361, 641, "libx264", "yuv444p")
    run = _bench(clip)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert (
        "naive sequential loop: " in run.stdout and "ratio pipeline / naive loop throughput" in run.stdout
    ), run.stdout


def test_a_clip_below_the_minimum_size_is_one_line(tmp_path):
    clip = tmp_path / "one.mp4"
    write_noise_clip(clip, 6, 1, 1, "libx264rgb", "rgb24")
    run = _bench(clip)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1] == (
        f"sonomap bench: error: {clip}: frame 0 is 1x1, smaller than the minimum 16x16"
    )
