"""`sonomap bench` on a clip it cannot decode (empty, a text file, missing): one line naming the clip,
exit status 2, no traceback, as replay. The real command (`tests/cli.py`), real files."""

from __future__ import annotations

import pytest
from cli import sonomap


@pytest.mark.parametrize(
    ("name", "content"), [("zero.mp4", b""), ("notes.mp4", b"not a video\n"), ("missing.mp4", None)]
)
def test_an_undecodable_clip_is_one_line_naming_it(tmp_path, name, content):
    clip = tmp_path / name
    if content is not None:
        clip.write_bytes(content)
    report = tmp_path / "bench.json"
    result = sonomap("bench", clip, "--frames", "5", "--live-seconds", "0", "--json", report, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sonomap bench: error: ") and str(clip) in lines[0]
    assert not report.exists()
