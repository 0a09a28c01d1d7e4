"""An MP4 cut short (a copy stopped half-way) whose header still declares every frame: the frames that
are there are played and written, and the run ends in one line saying the file is cut short, how many
of its declared frames were read, exit status 2. It played the first part, said "skipped 1 corrupt
input frame" and exited 0, replacing an earlier output with the partial one as if it were whole. A
real clip written by PyAV with its index in front (faststart, as cameras and editors write MP4)."""

from __future__ import annotations

import json

import av
from cli import sonomap
from clips import write_noise_clip

FRAMES, SIZE = 60, (180, 320)  # rows, columns


def test_a_video_cut_short_plays_what_is_there_then_says_so(tmp_path):
    whole = tmp_path / "whole.mp4"
    write_noise_clip(whole, FRAMES, *SIZE, movflags="faststart")
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
