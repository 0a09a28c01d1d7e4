"""A biopsy that was captured but not written must not read as saved: the toast turns into a warning
naming it (the queue full while marks come faster than the disk writes, the write failed), /metrics
counts written cases and failed ones apart, and `sonomap live` ends with a one-line error and a non-zero
exit status. The queue fills while the writer is held from starting a case (``CaseWriter.held``), so
it fills on any disk; the writes fail for real: the --cases folder replaced by a file, or a file-size
limit below a case's size (as on a full disk)."""

from __future__ import annotations

import re
import resource
import shutil
import signal
import time

import numpy as np
from loopback import LIVE_START_TIMEOUT_S, free_port, request, start_live, wait_healthy

from edge_runtime.biopsy.case_writer import QUEUE_DEPTH
from edge_runtime.biopsy.marks import MarkRequests
from edge_runtime.biopsy.observer import CaptureObserver
from edge_runtime.biopsy.study_id import StudyIdSlot
from edge_runtime.frames import Frame, Prediction
from edge_runtime.live_stats import EVENTS
from edge_runtime.pipeline.deidentify import ROI_META_KEY
from edge_runtime.roi import Roi

ROI = Roi(10, 10, 400, 300, mm_per_pixel=0.1)
MODEL = {"name": "m", "file": "m.onnx", "sha256": "0" * 64}
MARKS_IN_A_ROW = 5 * QUEUE_DEPTH  # one a frame: far more than the queue holds
FAILURE_TIMEOUT_S = 10
FILE_SIZE_LIMIT = 20_000  # bytes: a case's PNG is larger, so its write fails ('File too large')
CAPTURE_EVENT, FAILED_EVENT = "biopsy_captures", "biopsy_not_saved"  # /metrics: a count, an error kind
NOT_SAVED = re.compile(r"^BIOPSY (?P<numbers>[\d, ]+)(?: and (?P<more>\d+) more)? NOT SAVED: (?P<why>.+)$")


def _frame(index: int) -> Frame:
    image = np.random.default_rng(index).integers(0, 255, (340, 440, 3), dtype=np.uint8)
    return Frame(index, image, time.monotonic(), pts=index / 30, meta={ROI_META_KEY: ROI})  # as tagged live


def _step(observer: CaptureObserver, index: int) -> Frame:
    frame = _frame(index)
    prediction = Prediction(
        np.zeros((ROI.h, ROI.w), np.uint8), np.zeros((ROI.h, ROI.w), np.float32), frame=frame
    )
    observer.on_frame(frame, prediction, frame.image, {})
    return frame


def _observer(cases) -> tuple[CaptureObserver, MarkRequests]:
    marks = MarkRequests()
    return CaptureObserver(cases, MODEL, "synthetic", marks=marks, study=StudyIdSlot()), marks


def test_captures_the_queue_refuses_are_shown_as_not_saved_and_not_counted(tmp_path):
    """Marks on successive frames, each its own biopsy, while the writer starts no case (held, as when
    the disk is slower than the operator, however fast this machine's disk is): the queue fills and
    refuses the rest. Released, the writer writes the cases the queue took."""
    before = EVENTS.snapshot()
    observer, marks = _observer(tmp_path / "cases")
    with observer.book.writer.held():
        for index in range(MARKS_IN_A_ROW):
            marks.request("key")
            frame = _step(observer, index)
        banners = observer.banners(frame, "ON")
    observer.close()
    warnings = [text for level, text in banners if level == "warning"]
    assert len(warnings) == 1, banners
    written, failed = observer.book.writer.written, observer.book.writer.failed
    # the queue holds QUEUE_DEPTH, and the writer may have taken one off it before it waited
    assert MARKS_IN_A_ROW - QUEUE_DEPTH - 1 <= len(failed) <= MARKS_IN_A_ROW - QUEUE_DEPTH
    assert len(written) + len(failed) == MARKS_IN_A_ROW == observer.book.captures
    assert all(miss.reason == f"{QUEUE_DEPTH} cases already wait for the disk" for miss in failed)
    shown = NOT_SAVED.match(warnings[0])
    numbers = [int(n) for n in shown["numbers"].split(", ")]
    assert numbers == [miss.number for miss in failed][: len(numbers)]
    assert len(numbers) + int(shown["more"] or 0) == len(failed)
    assert shown["why"] == f"{QUEUE_DEPTH} cases already wait for the disk"
    refused = {miss.number for miss in failed}
    assert not any(level == "info" and int(text.split()[1]) in refused for level, text in banners)
    after = EVENTS.snapshot()
    assert after.get(CAPTURE_EVENT, 0) - before.get(CAPTURE_EVENT, 0) == len(written)
    assert after.get(FAILED_EVENT, 0) - before.get(FAILED_EVENT, 0) == len(failed)


def test_a_failed_write_turns_the_captured_toast_into_a_warning(tmp_path):
    cases = tmp_path / "cases"
    observer, marks = _observer(cases)
    _step(observer, 0)
    shutil.rmtree(cases)  # the folder, with the hidden file sessions number their captures by
    cases.write_text("a file where the folder was")  # the case cannot be written
    marks.request("key")
    frame = _step(observer, 1)
    assert observer.banners(frame, "ON") == [("info", "BIOPSY 1 CAPTURED")]  # taken; written on a thread
    deadline = time.monotonic() + FAILURE_TIMEOUT_S
    while time.monotonic() < deadline and not observer.book.writer.failed:
        time.sleep(0.05)
    frame = _step(observer, 2)  # the next frame shows it
    assert observer.banners(frame, "ON") == [("warning", "BIOPSY 1 NOT SAVED: File exists")]
    observer.close()
    assert observer.book.writer.written == []


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_live_ends_with_an_error_when_a_capture_was_not_saved(tmp_path):
    port, cases = free_port(), tmp_path / "cases"
    proc = start_live("--no-ai", "--cases", cases, "--duration", 60, port=port, preexec_fn=_limit_file_size)
    base = f"http://127.0.0.1:{port}/"
    failed = re.compile(r'^sonomap_errors_total\{kind="biopsy_not_saved"\} 1\.0$', re.M)
    try:
        wait_healthy(base, proc, LIVE_START_TIMEOUT_S)
        assert request(base + "mark", "POST") == (200, "mark queued for the next frame\n")
        deadline = time.monotonic() + FAILURE_TIMEOUT_S
        while time.monotonic() < deadline and not failed.search(request(base + "metrics")[1]):
            time.sleep(0.2)
        metrics = request(base + "metrics")[1]
        assert failed.search(metrics) and "sonomap_biopsy_captures_total 0.0" in metrics, metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"captured 0 biopsies into {cases} (1 could not be written)" in out
    errors = [line for line in err.splitlines() if line.startswith("sonomap live: error:")]
    assert errors == [
        f"sonomap live: error: --cases {cases}: 1 of 1 biopsy capture(s) not saved (biopsy 1: File too large)"
    ]
    assert [f for f in cases.iterdir() if not f.name.startswith(".")] == []  # dot files: not cases
