"""Capture numbers after a restarted session: a session killed after core 1 and started again for the
same study ID goes on from 2 (the number is the DICOM series number, one study per study ID and UTC
day), another study ID or day starts at 1, and a case.yaml that cannot be read keeps its folder's
number taken; sessions sharing one folder at the same time never give one number twice, and where
the folder takes no lock the numbers go on and the log says they are unguarded. Real case folders
written by the capture observer, in real processes where sessions share the folder."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import yaml

from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.numbering import LOCK_FILE, CaptureNumbers
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.frames import Frame
from edge_runtime.roi import Roi

ROOT = Path(__file__).resolve().parents[1]
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
    new = sorted(f for f in set(cases.iterdir()) - before if not f.name.startswith("."))  # dot files: no case
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


SESSION = """
import sys, time
from pathlib import Path
import numpy as np
from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.frames import Frame
from edge_runtime.roi import Roi
cases, ready, go, count = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
marks = MarkRequests()
model = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
observer = CaptureObserver(cases, model, "synthetic", marks=marks, study=StudyIdSlot(), study_id="BX-0042")
ready.touch()
while not go.exists():
    time.sleep(0.005)
for i in range(count):
    marks.request("key")
    image = np.full((48, 64, 3), 10 * (i + 1), np.uint8)
    observer.on_frame(Frame(i, image, time.monotonic(), i / 30, {"roi": Roi(0, 0, 64, 48, 0.1)}), None, image, {})
observer.close()
"""
SESSION_TIMEOUT_S = 120
CASES_EACH = 4


def _started(cases: Path, name: str, count: int) -> tuple[subprocess.Popen, Path]:
    """A real `sonomap`-like session process: it reads ``cases`` at start, then waits for its go file
    before marking ``count`` biopsies on successive frames."""
    ready, go = cases.parent / f"{name}.ready", cases.parent / f"{name}.go"
    argv = [sys.executable, "-c", SESSION, str(cases), str(ready), str(go), str(count)]
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + SESSION_TIMEOUT_S
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
        time.sleep(0.01)
    return proc, go


def _numbers(cases: Path) -> list[int]:
    return sorted(
        yaml.safe_load((f / "case.yaml").read_text())["capture"]["number"]
        for f in cases.iterdir()
        if not f.name.startswith(".")
    )


def _hostile_case(cases: Path, number: int, utc: str) -> None:
    folder = cases / f"{datetime.now(timezone.utc):{STAMP}}-{number}"
    folder.mkdir(parents=True)
    capture = {"number": number, "study_id": "BX-0300", "pre_fire": {"utc": utc}}
    (folder / "case.yaml").write_text(yaml.safe_dump({"id": folder.name, "capture": capture}))


def test_a_time_at_the_calendars_edge_keeps_its_number_and_the_session_captures(tmp_path, caplog):
    # year 1 east of UTC cannot be converted (OverflowError): the session crashed at its start, or
    # lost its first biopsy unsaid when the folder appeared mid-session
    cases = tmp_path / "cases"
    _hostile_case(cases, 9, "0001-01-01T00:00:00+05:00")
    assert _session(cases, "BX-0300", 1) == [10]  # its number stays taken, as any unreadable case's
    assert "capture numbers go on after 9" in caplog.text


def test_a_capture_that_fails_unexpectedly_is_reported_on_screen_not_lost(tmp_path, caplog, monkeypatch):
    # any fault inside a capture (here the numbering, made to fail) reached the frame path, which
    # counted a sink error and went on: the biopsy was lost with nothing on screen
    marks = MarkRequests()
    observer = CaptureObserver(
        tmp_path, MODEL, "synthetic", marks=marks, study=StudyIdSlot(), study_id="BX-0300"
    )

    def broken(*_):
        raise RuntimeError("the numbering met something it did not expect")

    monkeypatch.setattr(observer.book.numbers, "next", broken)
    image = np.full((48, 64, 3), 10, np.uint8)
    assert marks.request("http")
    observer.on_frame(Frame(0, image, time.monotonic(), 0.0, {"roi": ROI}), None, image, {})
    shown = [
        text for _, text in observer.banners(Frame(1, image, time.monotonic(), 1 / 30, {"roi": ROI}), "OFF")
    ]
    observer.close()
    assert "BIOPSY NOT CAPTURED: capture failed (RuntimeError), see the log" in shown, shown
    assert "biopsy (http) on frame 0 not captured: RuntimeError: the numbering met something" in caplog.text


def test_sessions_sharing_the_folder_at_once_never_give_one_number_twice(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    # all three read the (empty) folder before any captures: each alone would start at 1
    sessions = [_started(cases, name, CASES_EACH) for name in ("a", "b", "late")]
    try:
        for _, go in sessions[:2]:
            go.touch()  # a and b capture at the same time
        for proc, _ in sessions[:2]:
            assert proc.wait(SESSION_TIMEOUT_S) == 0, proc.stderr.read()
        assert _numbers(cases) == list(range(1, 2 * CASES_EACH + 1))
        late, go = sessions[2]
        go.touch()  # captures after both ended: it goes on after their published cases
        assert late.wait(SESSION_TIMEOUT_S) == 0, late.stderr.read()
        assert _numbers(cases) == list(range(1, 3 * CASES_EACH + 1))
    finally:
        for proc, _ in sessions:  # a failed check leaves none waiting for its go file
            proc.kill()
            proc.wait()


def test_numbers_go_on_unguarded_and_say_so_where_the_folder_takes_no_lock(tmp_path, caplog):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / LOCK_FILE).mkdir()  # the lock file cannot be made there: a folder has its name
    numbers = CaptureNumbers(cases)
    now = datetime.now(timezone.utc)
    assert [numbers.next("BX-0042", now) for _ in range(3)] == [1, 2, 3]
    unguarded = [r.getMessage() for r in caplog.records if "not guarded against other sessions" in r.message]
    assert len(unguarded) == 1 and "BX-0042" not in unguarded[0], caplog.text
