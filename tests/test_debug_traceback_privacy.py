"""A traceback goes through the same redaction as a one-line error: `--debug` prints the handled error's
traceback through the same redacting hook as ``sys.excepthook`` (which the console command replaces),
then the one-line error, with the command's exit status. Through the real
`sonomap replay` of pydicom's cine given the patient's identifiers, after its header has been read
(so they are registered), failing on an output named after the patient (a file size limit: a full disk)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from file_size_limit import small_disk

REPO = Path(__file__).resolve().parents[1]
PATIENT = {"PatientName": "Sorensen^Ingrid", "PatientID": "PID-90210-77"}
NAME_PARTS = ("Sorensen", "Ingrid", "90210")
# a file size limit (a full disk for this process): the recorder fails after the first frames are written
RECORDER_LIMIT_BYTES = 6000
TIMEOUT_S = 120


@pytest.fixture()
def patient_cine(tmp_path) -> Path:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    path = tmp_path / "Sorensen_Ingrid_PID-90210-77.dcm"
    ds.save_as(str(path))
    return path


def test_a_debug_traceback_names_no_identifier(patient_cine):
    args = ["--debug"]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_runtime.cli",
            *args,
            "replay",
            str(patient_cine),
            "--out",
            str(patient_cine.with_name("Sorensen_Ingrid.mp4")),
        ],
        preexec_fn=small_disk(RECORDER_LIMIT_BYTES),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert res.returncode == 2, res.stderr  # a user error's status, as without --debug
    assert res.stderr.strip().splitlines()[-1].startswith("sonomap replay: error: ")  # after the traceback
    assert "recording failed" in res.stderr  # the error itself is there
    assert "Traceback (most recent call last)" in res.stderr
    assert "edge_runtime.errors.SonomapError" in res.stderr
    for part in NAME_PARTS:
        assert part not in res.stderr, res.stderr
        assert part not in res.stdout, res.stdout


def test_a_threads_uncaught_error_is_printed_redacted_and_system_exit_silently(monkeypatch, capsys):
    from edge_runtime import privacy
    from edge_runtime.cli import print_redacted_thread_traceback

    monkeypatch.setattr(threading, "excepthook", print_redacted_thread_traceback)
    redactor = privacy.RedactingFilter()  # this test's own: other tests' identifiers stay unregistered
    redactor.register(["Sorensen"])
    monkeypatch.setattr(privacy, "REDACTOR", redactor)

    def fail():
        raise ValueError("cannot read /cases/Sorensen/us.dcm")

    for target in (fail, lambda: sys.exit(3)):
        thread = threading.Thread(target=target, name="capture")
        thread.start()
        thread.join()
    err = capsys.readouterr().err
    assert "Exception in thread capture:" in err and "ValueError: cannot read /cases/" in err
    assert "Sorensen" not in err and "SystemExit" not in err
