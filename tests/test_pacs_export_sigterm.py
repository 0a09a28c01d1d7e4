"""`sonomap cases export --dry-run OUT` stopped by SIGTERM (`timeout`, a batch scheduler) as by Ctrl-C:
one line saying so, exit 143 (128 + SIGTERM), the file being written left out with its hidden temp
file removed, and the files written before it whole. A real process and a real signal, sent as it
starts writing the first case's segmentation, after its image (tests/sigterm_stop.py
`sigterm_at_write`)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import yaml
from captured_cases import SHAPE, write_captured_case
from pacs_cases import FALLBACK_ID
from sigterm_stop import sigterm_at_write

pytest.importorskip("highdicom", reason="highdicom not installed (pacs extra)")

CASE_IDS = ("20260101T100000Z-1", "20260101T100001Z-2")


def _case(root, name: str):
    """A captured case with the pre-fire frame and time the export reads."""
    folder = write_captured_case(root / name, np.zeros(SHAPE, bool), study_id=FALLBACK_ID)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"]["pre_fire"] = {"frame": 3, "image": "prefire.png", "utc": "2026-01-01T10:00:00Z"}
    (folder / "case.yaml").write_text(yaml.safe_dump(case))
    return folder


def test_sigterm_stops_a_dry_run_export_between_files(tmp_path):
    cases = tmp_path / "cases"
    for name in CASE_IDS:
        _case(cases, name)
    out = tmp_path / "dcm"
    args = ["cases", "export", cases, "--dry-run", out]
    stderr = sigterm_at_write(args, ".seg.dcm.*.tmp", tmp_path / "writing")
    assert len(stderr.strip().splitlines()) == 1, stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    first = f"{FALLBACK_ID}/{CASE_IDS[0]}"
    # the first case's image only: no segmentation, no temp file, the second case not begun
    assert written == [FALLBACK_ID, first, f"{first}/image.dcm"], written
    image = pydicom.dcmread(out / first / "image.dcm")
    assert image.pixel_array.shape == SHAPE  # whole: read back to its last pixel
