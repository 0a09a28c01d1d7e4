"""An MP4 cut short (a copy stopped half-way) whose header still declares every frame: the frames that
are there are played and written, and the run ends in one line saying the file is cut short, how many
of its declared frames were read, exit status 2. It played the first part, said "skipped 1 corrupt
input frame" and exited 0, replacing an earlier output with the partial one as if it were whole. A
real clip written by PyAV with its index in front (faststart, as cameras and editors write MP4)."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
from cli import sonomap

FRAMES, SIZE = 60, (180, 320)  # rows, columns


def _faststart_clip(path) -> None:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=Fraction(30))
        stream.height, stream.width = SIZE
        stream.pix_fmt = "yuv420p"
        for i in range(FRAMES):
            image = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_a_video_cut_short_plays_what_is_there_then_says_so(tmp_path):
    whole = tmp_path / "whole.mp4"
    _faststart_clip(whole)
    with av.open(str(whole)) as c:
        assert c.streams.video[0].frames == FRAMES  # the header declares them all
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out, summary = tmp_path / "o.mp4", tmp_path / "s.json"
    res = sonomap("replay", cut, "--out", out, "--summary", summary, "--roi", "full", check=False)
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    played = json.loads(summary.read_text())["frames"]
    assert 0 < played < FRAMES
    assert f"the file is cut short or damaged: {played} of the {FRAMES} frames it declares" in last, last
    with av.open(str(out)) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == played  # what was there, finalised
    whole_run = sonomap("replay", whole, "--out", tmp_path / "w.mp4", "--roi", "full", check=False)
    assert whole_run.returncode == 0, whole_run.stderr[-2000:]  # the whole file: no such error
