"""Capture numbers of two sessions in one process writing into one cases folder: POSIX record locks
belong to the process, so without more the second session's claim of a number the first holds would
succeed, and the first session's close would drop the second's claims. Both sessions race on threads
(released together by a barrier, many times over), with real lock files, case folders and, for the
claims that must outlive a session's close, a real second process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.numbering import LOCK_FILE, CaptureNumbers, lock_offset
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.frames import Frame
from edge_runtime.roi import Roi

MODEL = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
ROI = Roi(0, 0, 64, 48, 0.1)
STUDY = "BX-0042"
CLAIMS_EACH = 40
CASES_EACH = 6
JOIN_TIMEOUT_S = 60
TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
except OSError:
    sys.exit(3)
"""


def _race(bodies: list) -> None:
    """Run ``bodies`` (each called with the barrier) on threads at once; re-raise the first failure."""
    barrier, errors = threading.Barrier(len(bodies)), []

    def run(body) -> None:
        try:
            body(barrier)
        except Exception as exc:  # reported on the test's thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]


def test_two_numberers_in_one_process_never_give_one_number_twice(tmp_path):
    now = datetime.now(timezone.utc)
    sessions = [CaptureNumbers(tmp_path), CaptureNumbers(tmp_path)]  # both read the empty folder first
    given: list[list[int]] = [[], []]

    def claims(numbers: CaptureNumbers, out: list[int]):
        def body(barrier: threading.Barrier) -> None:
            for _ in range(CLAIMS_EACH):
                barrier.wait()  # both claim at once, every time
                out.append(numbers.next(STUDY, now))

        return body

    try:
        _race([claims(numbers, out) for numbers, out in zip(sessions, given, strict=True)])
    finally:
        for numbers in sessions:
            numbers.close()
    assert sorted(given[0] + given[1]) == list(range(1, 2 * CLAIMS_EACH + 1)), given


def test_a_session_closing_keeps_the_claims_of_the_other_session_of_its_process(tmp_path):
    now = datetime.now(timezone.utc)
    first, second = CaptureNumbers(tmp_path), CaptureNumbers(tmp_path)
    try:
        assert (first.next(STUDY, now), second.next(STUDY, now)) == (1, 2)
        first.close()  # its case written: its claim goes, the other session's stays
        lock_file, held = tmp_path / LOCK_FILE, lock_offset(STUDY, now.date(), 2)
        freed = lock_offset(STUDY, now.date(), 1)
        other = [sys.executable, "-c", TRY_LOCK, str(lock_file)]
        assert subprocess.run([*other, str(held)], timeout=JOIN_TIMEOUT_S).returncode == 3
        assert subprocess.run([*other, str(freed)], timeout=JOIN_TIMEOUT_S).returncode == 0
        third = CaptureNumbers(tmp_path)  # a session started in the process since: 1 was given up
        assert [third.next(STUDY, now), third.next(STUDY, now)] == [1, 3]  # 2 the other session holds
        third.close()
    finally:
        first.close()
        second.close()


def test_two_observers_in_one_process_write_cases_with_distinct_numbers(tmp_path):
    cases = tmp_path / "cases"
    sessions = []
    for _ in range(2):
        marks = MarkRequests()
        observer = CaptureObserver(
            cases, MODEL, "synthetic", marks=marks, study=StudyIdSlot(), study_id=STUDY
        )
        sessions.append((observer, marks))

    def marking(observer: CaptureObserver, marks: MarkRequests):
        def body(barrier: threading.Barrier) -> None:
            for i in range(CASES_EACH):
                assert marks.request("key")
                image = np.full((48, 64, 3), 10 * (i + 1), np.uint8)
                barrier.wait()  # both capture on the same beat, before either case is on disk
                observer.on_frame(Frame(i, image, time.monotonic(), i / 30, {"roi": ROI}), None, image, {})
            barrier.wait()
            observer.close()

        return body

    _race([marking(observer, marks) for observer, marks in sessions])
    numbers = sorted(
        yaml.safe_load((folder / "case.yaml").read_text())["capture"]["number"]
        for folder in Path(cases).iterdir()
        if not folder.name.startswith(".")
    )
    assert numbers == list(range(1, 2 * CASES_EACH + 1))
