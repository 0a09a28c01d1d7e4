"""A full disk while `sonomap evaluate` writes its report: one line naming the file under --out as the
user typed it (a figure saved by matplotlib too, which names no file by itself), never the hidden
staging folder beside it, and nothing left behind. Real commands under a real file size limit
(RLIMIT_FSIZE: a write past it fails with EFBIG, as one to a full disk fails with ENOSPC)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixtures import shared_tiny_onnx
from file_size_limit import CHILD_TIMEOUT_S, small_disk

EXIT_USER_ERROR = 2
FIGURES = (
    "reliability",
    "reliability_uncalibrated",
    "confusion_counts",
    "confusion_normalised",
    "boxplot",
    "gallery",
)


def _evaluate_on_small_disk(limit: int, data, cwd) -> subprocess.CompletedProcess:
    """``sonomap evaluate ... --out report`` (relative, as a user types it) run in CWD."""
    args = [
        "evaluate",
        "--checkpoint",
        shared_tiny_onnx(),
        "--data",
        data,
        "--split",
        "test",
        "--out",
        "report",
    ]
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *map(str, args)],
        cwd=cwd,
        preexec_fn=small_disk(limit),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )


@pytest.mark.parametrize(
    ("limit", "named"),
    [
        (1, r"report/pred/[^/]+\.png"),  # the first prediction PNG, written in the staging folder
        (20 * 1024, r"report/(" + "|".join(FIGURES) + r")\.png"),  # the masks fit, a figure does not
    ],
)
def test_a_full_disk_names_the_report_file_under_out(busi_dataset, tmp_path, limit, named):
    shared_tiny_onnx()  # made before the limit applies
    proc = _evaluate_on_small_disk(limit, busi_dataset, tmp_path)
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"sonomap evaluate: error: {named}: File too large", last), last
    assert ".partial" not in proc.stderr and str(tmp_path) not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no report, no staging folder, no temp file


def test_an_error_from_the_staging_folder_made_from_other_arguments_is_renamed_too(tmp_path):
    """An UnreadableImage (made from a path and a reason, not a message) about a file in the staging
    folder: renaming it must not fail with a TypeError in place of the error."""
    from edge_runtime.errors import SonomapError
    from edge_runtime.image_files import UnreadableImage
    from training.staged_names import final_names

    stage = tmp_path / ".REPORT.1.ab12.partial"
    with pytest.raises(SonomapError, match=r"^REPORT/pred/x\.png: unreadable image \(empty file\)$"):
        with final_names(stage, Path("REPORT")):
            raise UnreadableImage(stage / "pred" / "x.png", "empty file")
