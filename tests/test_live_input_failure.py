"""A source that fails part way through ``sonomap live`` keeps what came before it, as in replay: the
recording holds the frames shown before the failure, finalised; the summary is written; the one-line
error says how many frames the outputs hold. The real CLI on a real PNG folder whose later images are
unreadable (more in a row than a source skips)."""

from __future__ import annotations

import json

import av
from cli import sonomap
from runtime_model import dark_onnx
from test_replay_input_failure import CORRUPT_RUN, good_images


def test_a_live_source_failing_part_way_keeps_the_recording_and_the_summary(tmp_path):
    folder, out, summary = tmp_path / "frames", tmp_path / "rec.mp4", tmp_path / "s.json"
    good_images(folder)
    for i in range(CORRUPT_RUN):
        (folder / f"z{i:03d}.png").write_bytes(b"not a png")
    result = sonomap(
        *("live", "--source", folder, "--headless", "--model", dark_onnx()),
        *("--record", out, "--summary", summary),
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sonomap live: error: {folder}: "), error
    written = json.loads(summary.read_text())  # the summary is written
    shown = written["frames"]
    assert shown > 0 and f"the outputs were finalised with the {shown} frame(s) before it" in error, error
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) == shown - written["sink_drops"]
