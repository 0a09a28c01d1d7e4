"""The run's summary is written atomically: a write that fails (a file size limit, a device) keeps a
previous summary whole and is a one-line error naming the file. Real limits (RLIMIT_FSIZE), the real
CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
from cli import sonomap
from file_size_limit import sonomap_with_file_size_limit
from runtime_model import dark_onnx

LIMIT = 1024  # bytes: below a summary (a few KiB), so only the summary's write fails
PREVIOUS = {"frames": 7, "note": "a previous good summary"}


def image(tmp_path):
    path = tmp_path / "screen.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(40, 200, (120, 160, 3), dtype=np.uint8))
    return path


def test_a_summary_cut_short_keeps_the_previous_one_and_names_the_file(tmp_path):
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps(PREVIOUS))
    result = sonomap_with_file_size_limit(
        LIMIT, "replay", image(tmp_path), "--model", dark_onnx(), "--summary", summary
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f"sonomap replay: error: {summary}: File too large"
    assert json.loads(summary.read_text()) == PREVIOUS  # not truncated, not replaced
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_summary_on_a_device_is_refused_naming_it(tmp_path):
    result = sonomap("replay", image(tmp_path), "--model", dark_onnx(), "--summary", "/dev/full", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sonomap replay: error: --summary /dev/full: ") and "it is a device" in last, last
