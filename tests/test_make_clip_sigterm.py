"""`make-clip` stopped by SIGTERM (`timeout`, `systemctl stop`) as by Ctrl-C: a line saying so, exit 143
(128 + SIGTERM), no hidden temp file left, and the earlier clip and its .json byte for byte (a clip short
of frames must not replace a whole one the .json describes). A real process and a real signal, sent once
the clip's hidden file holds its first fragment (tests/sigterm_stop.py `sigterm_when`: FFmpeg opens it
in native code, which Python's audit hook does not see)."""

from __future__ import annotations

from cli import sonomap
from sigterm_stop import sigterm_when
from test_make_clip_interrupt import ENDLESS_FRAMES, STARTED_BYTES, TINY


def test_sigterm_mid_clip_keeps_the_earlier_clip_and_json(tmp_path):
    out = tmp_path / "c.mp4"
    info = out.with_suffix(".json")
    sonomap("make-clip", "--out", out, "--frames", 2, *TINY)
    good_clip, good_info = out.read_bytes(), info.read_bytes()

    def writing() -> bool:
        return any(p.stat().st_size >= STARTED_BYTES for p in tmp_path.glob(".c.mp4.*.partial"))

    stderr = sigterm_when(["make-clip", "--out", out, "--frames", ENDLESS_FRAMES, *TINY], writing)
    # the stop's line last (sigterm_when checks it), after the writer's saying that it kept the earlier clip
    *before, _stopped = stderr.strip().splitlines()
    assert len(before) == 1 and before[0].endswith(
        f"the earlier {out} is kept; this run's unfinished file is deleted"
    )
    assert out.read_bytes() == good_clip and info.read_bytes() == good_info
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.mp4"]
