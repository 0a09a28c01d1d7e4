"""A DICOM WSI's patient identifiers are redacted from `sonomap register`'s one-line error, as a DICOM
ultrasound image's are: the slide's header is registered with the redactor when the slide opens,
before any message can quote a patient-named folder or file. Real OpenSlide fixtures (vendored, the
two files of one DICOM WSI) with identifiers written into their headers by pydicom."""

from __future__ import annotations

from pathlib import Path

import pydicom
import yaml
from cli import sonomap

FIXTURES = Path(__file__).parent / "data" / "wsi-fixtures"
BUSI = Path(__file__).parent / "data" / "busi"
NAME, PATIENT_ID, BIRTH = "Zyxwv^Qutsr", "PHI98765", "19610203"


def test_register_names_no_identifier_of_a_dicom_slide(tmp_path):
    cases = tmp_path / "cases"
    sonomap(
        "simulate-biopsy",
        "--images",
        BUSI / "images",
        "--masks",
        BUSI / "masks",
        "--out",
        cases,
        "--n",
        "1",
        "--seed",
        "0",
    )
    case_yaml = next(cases.glob("*/case.yaml"))
    folder = case_yaml.parent / f"Zyxwv Qutsr {PATIENT_ID}"
    folder.mkdir()
    for n in (0, 1):  # one slide in two files; OpenSlide finds the second beside the first
        ds = pydicom.dcmread(FIXTURES / f"boxes_{n}.dcm")
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, BIRTH
        ds.save_as(folder / f"Zyxwv_{PATIENT_ID}_{n}.dcm")
    case = yaml.safe_load(case_yaml.read_text())
    case["pathology"]["wsi"] = f"{folder.name}/Zyxwv_{PATIENT_ID}_0.dcm"
    case_yaml.write_text(yaml.safe_dump(case))
    result = sonomap("register", case_yaml, "--out", tmp_path / "out", check=False)
    assert result.returncode == 2, result.stderr[-2000:]  # the boxes fixture holds no tissue
    line = result.stderr.strip()
    assert line.startswith("sonomap register: error: ") and "\n" not in line and "[REDACTED]" in line, line
    for identifier in ("Zyxwv", "Qutsr", PATIENT_ID, BIRTH):
        assert identifier.lower() not in line.lower(), line
    assert (folder / f"Zyxwv_{PATIENT_ID}_0.dcm").is_file()  # the inputs are read, never renamed
