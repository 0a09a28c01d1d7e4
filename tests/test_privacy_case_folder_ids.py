"""A case.yaml without ``id`` takes its folder's name as case id (and, without a patient or study id,
as patient id). A folder named after the patient must not become a dataset file name, a report
value or the QA header: such a name has to pass the study-ID rule, or be a capture's folder name,
else the case is refused in one line that names its case.yaml and says to set ``id:``. Through the
real CLI on a simulated case."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from cli import sonomap

PATIENT_FOLDER = "Jane_Doe"  # passes safe_name, fails the study-ID rule (no digit)


def case_in(folder: Path, simulated_case: Path, drop=("id", "patient_id"), **keys) -> Path:
    """A copy of the simulated case in ``folder``, its case.yaml without the keys ``drop``."""
    shutil.copytree(simulated_case, folder)
    spec = yaml.safe_load((folder / "case.yaml").read_text())
    for key in drop:
        spec.pop(key, None)
    spec.update(keys)
    (folder / "case.yaml").write_text(yaml.safe_dump(spec))
    return folder / "case.yaml"


def test_register_refuses_a_patient_named_folder_as_case_id(simulated_case, tmp_path):
    case_yaml = case_in(tmp_path / PATIENT_FOLDER, simulated_case)
    out = tmp_path / "out"
    res = sonomap("register", case_yaml, "--out", out, check=False)
    assert res.returncode == 2, (res.stdout, res.stderr)
    err = res.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert str(case_yaml) in err and "set 'id:'" in err and "refused" in err, err
    assert PATIENT_FOLDER not in res.stdout
    assert not out.exists() or not any(out.iterdir())


def test_a_study_id_or_capture_folder_name_still_stands_in_for_the_id(simulated_case, tmp_path):
    for name in ("P-0042", "20240131T101500Z-3"):
        case_yaml = case_in(tmp_path / name, simulated_case)
        out = tmp_path / f"out-{name}"
        res = sonomap("register", case_yaml, "--out", out)
        report = json.loads((out / "report.json").read_text())
        assert report["case_id"] == name and report["patient_id"] == name
        assert res.stdout.startswith(f"{name}: ")


def test_a_written_id_lets_a_patient_named_folder_register(simulated_case, tmp_path):
    case_yaml = case_in(tmp_path / PATIENT_FOLDER, simulated_case, id="BX-0007-1")
    out = tmp_path / "out"
    res = sonomap("register", case_yaml, "--out", out)
    report = json.loads((out / "report.json").read_text())
    assert report["case_id"] == "BX-0007-1" and PATIENT_FOLDER not in json.dumps(report)
    assert PATIENT_FOLDER not in res.stdout


def test_register_batch_keeps_a_patient_named_folder_out_of_the_dataset(simulated_case, tmp_path):
    cases = tmp_path / "cases"
    named = case_in(cases / PATIENT_FOLDER, simulated_case)
    # the same folder name on a case that is pending (no slide back yet): refused too, not listed by it
    pending = case_in(cases / "pending" / PATIENT_FOLDER, simulated_case)
    spec = yaml.safe_load(pending.read_text())
    del spec["pathology"]
    pending.write_text(yaml.safe_dump(spec))
    case_in(cases / "P-0042", simulated_case)
    ds = tmp_path / "ds"
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    summary = json.loads((ds / "batch_report.json").read_text())
    assert summary["registered"] == 1 and summary["pending"] == 0
    errors = {f["case"]: f["error"] for f in summary["failures"]}
    # named by their places among the sorted case files: Jane_Doe/, P-0042/, pending/Jane_Doe/
    assert set(errors) == {"case 1 of 3", "case 3 of 3"}, (named, pending)
    assert all("set 'id:'" in e for e in errors.values()), errors
    assert PATIENT_FOLDER not in json.dumps(summary)
    assert not [p for p in ds.rglob("*") if PATIENT_FOLDER in p.name]
    assert PATIENT_FOLDER not in (ds / "cases.csv").read_text()


def test_the_cases_listing_calls_a_patient_named_folder_broken_not_ready(simulated_case, tmp_path):
    """`sonomap cases` says what register would: such a case is broken, with the same advice, not
    "ready to register" under the folder's name as its id."""
    cases = tmp_path / "cases"
    cases.mkdir()
    case_in(cases / PATIENT_FOLDER, simulated_case)
    case_in(cases / "P-0042", simulated_case)
    res = sonomap("cases", cases)
    rows = {line.split()[0]: line for line in res.stdout.splitlines() if line and not line[0].isdigit()}
    assert "broken" in rows[PATIENT_FOLDER] and "set 'id:'" in rows[PATIENT_FOLDER], res.stdout
    assert "ready to register" in rows["P-0042"], res.stdout
    assert f"patient {PATIENT_FOLDER}" not in res.stdout
