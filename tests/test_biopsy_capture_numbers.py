"""Capture numbers after a restarted session: a session killed after core 1 and started again for the
same study ID goes on from 2 (the number is the DICOM series number, one study per study ID and UTC
day), another study ID or day starts at 1, and a case.yaml that cannot be read keeps its folder's
number taken. Real case folders written by the capture observer."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import yaml

from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.numbering import CaptureNumbers
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.frames import Frame
from edge_runtime.roi import Roi

MODEL = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
ROI = Roi(0, 0, 64, 48, 0.1)
STAMP = "%Y%m%dT%H%M%SZ"


def _session(cases: Path, study_id: str | None, marked: int) -> list[int]:
    """One session marking ``marked`` biopsies; the numbers its cases were written with."""
    marks = MarkRequests()
    observer = CaptureObserver(cases, MODEL, "synthetic", marks=marks, study=StudyIdSlot(), study_id=study_id)
    before = set(cases.iterdir())
    for i in range(marked):
        assert marks.request("key")
        image = np.full((48, 64, 3), 10 * (i + 1), np.uint8)
        observer.on_frame(Frame(i, image, time.monotonic(), i / 30, {"roi": ROI}), None, image, {})
    observer.close()
    new = sorted(set(cases.iterdir()) - before)
    return sorted(yaml.safe_load((f / "case.yaml").read_text())["capture"]["number"] for f in new)


def test_a_restarted_session_goes_on_after_the_cores_already_recorded(tmp_path):
    cases = tmp_path / "cases"
    assert _session(cases, "BX-0042", 1) == [1]
    assert _session(cases, "BX-0042", 2) == [2, 3]  # restarted for the same patient: no 'biopsy 1' twice
    assert _session(cases, "BX-0043", 1) == [1]  # another study starts at 1
    assert _session(cases, None, 1) == [1]
    assert _session(cases, None, 1) == [2]
    assert _session(cases, "BX-0042", 1) == [4]


def test_only_the_same_study_day_counts_and_an_unreadable_case_keeps_its_number(tmp_path):
    today = datetime.now(timezone.utc)
    yesterday = today - timedelta(days=1)
    for when, number, study in ((yesterday, 7, "BX-0042"), (today, 3, "BX-0042"), (today, 5, "BX-0099")):
        folder = tmp_path / f"{when:{STAMP}}-{number}"
        folder.mkdir()
        utc = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        capture = {"number": number, "study_id": study, "pre_fire": {"utc": utc}}
        (folder / "case.yaml").write_text(yaml.safe_dump({"id": folder.name, "capture": capture}))
    (tmp_path / "99999999T000000Z-50").mkdir()  # named like a case, but no date: not one
    numbers = CaptureNumbers(tmp_path, today.date())
    assert numbers.next("BX-0042", today) == 4
    assert numbers.next("BX-0042", today + timedelta(days=1)) == 5  # a session's own numbers keep rising
    broken = tmp_path / f"{today:{STAMP}}-9"
    broken.mkdir()
    (broken / "case.yaml").write_text("capture: {number: 9, number: 9}\n")  # refused: a key twice
    numbers = CaptureNumbers(tmp_path, today.date())
    assert numbers.next("BX-0042", today) == 10  # which study it held is unknown: 9 stays taken
    assert CaptureNumbers(tmp_path, today.date()).next("BX-0100", today) == 10
