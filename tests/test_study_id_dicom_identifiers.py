"""A study ID that holds an identifier of the DICOM image being read (its PatientID, name, birth date,
...) is refused: by check_study_id, by `sonomap replay --study-id` of that file, and by the viewer's
`POST /study-id` while `sonomap live` plays it. The refusal never repeats the value.

Before, the source's own PatientID (``MRN778899``) has the shape of a pseudonym (letters and digits),
so it was accepted and written into each case.yaml as ``capture.study_id``, and on export into the
DICOM PatientID, although those identifiers were registered with the log redactor all along.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from child_process import reaped
from cli import sonomap
from loopback import LIVE_START_TIMEOUT_S, LOOPBACK, SONOMAP, free_port, request, wait_healthy
from runtime_model import dark_onnx

from edge_runtime import privacy
from edge_runtime.biopsy.study_id import check_study_id
from edge_runtime.errors import ConfigError

pydicom = pytest.importorskip("pydicom")

PATIENT_ID = "MRN778899"  # letters and digits: the general rule alone lets it through
WHY = "holds an identifier from the DICOM header of the image being read"  # the refusal's reason


def _scan(folder: Path) -> Path:
    """A copy of pydicom's 30-frame ultrasound example with PatientID set to PATIENT_ID."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
    ds.PatientID = PATIENT_ID
    path = folder / "scan.dcm"
    ds.save_as(path)
    return path


def test_check_study_id_refuses_a_registered_dicom_identifier(tmp_path):
    assert check_study_id(PATIENT_ID) == PATIENT_ID  # nothing registered yet: the general rule only
    privacy.register_dicom(pydicom.dcmread(_scan(tmp_path), stop_before_pixels=True))
    for typed in (PATIENT_ID, PATIENT_ID.lower(), f"X{PATIENT_ID}"):
        with pytest.raises(ConfigError) as refused:
            check_study_id(typed, "study ID")
        assert f"study ID refused ({WHY})" in str(refused.value)
        assert typed not in str(refused.value)
    assert check_study_id("BX-0042") == "BX-0042"


def test_replay_refuses_the_input_patient_id_as_study_id(tmp_path):
    cases = tmp_path / "cases"
    out = sonomap(
        "replay",
        _scan(tmp_path),
        "--model",
        dark_onnx(),
        "--cases",
        cases,
        "--study-id",
        PATIENT_ID,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and f"--study-id refused ({WHY})" in out.stderr
    assert PATIENT_ID not in out.stdout + out.stderr
    assert not cases.exists()  # refused before anything started


def test_the_viewer_refuses_the_source_patient_id_as_study_id(tmp_path):
    cases, port = tmp_path / "cases", free_port()
    config = tmp_path / "loop.yaml"
    config.write_text("source:\n  loop: true\n")  # the 30 frames play until the test ends
    argv = ["live", "--source", _scan(tmp_path), "--config", config, "--model", dark_onnx(), "--headless"]
    argv += ["--cases", cases, "--http", f"{LOOPBACK}:{port}", "--duration", 60]
    proc = subprocess.Popen(
        [*SONOMAP, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://{LOOPBACK}:{port}/"
    with reaped(proc):
        wait_healthy(base, proc, LIVE_START_TIMEOUT_S)
        code, text = request(base + "study-id", "POST", PATIENT_ID.encode())
        assert code == 400 and f"study ID refused ({WHY})" in text, text
        assert PATIENT_ID not in text
        assert json.loads(request(base + "study-id")[1])["study_id"] is None
        assert request(base + "study-id", "POST", b"BX-0042") == (200, "study ID set\n")
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert PATIENT_ID not in out + err
