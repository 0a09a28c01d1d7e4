"""`sonomap concordance` on hand-edited case.yaml values and careless --out folders: a
``capture.expected_yield`` that is no mapping, or whose fraction is no number (a date, text), skips that
core in one line naming the key while the others are scored, and so does a prediction named by a
path (another case's file); a skipped case is named by its capture id
(or its position), never by the folder it sits in, which may be the patient's; an --out folder that is
not a concordance report (an evaluate report, a folder of other files) is refused and left as it was.
The real command on hand-made captured and registered cases."""

from __future__ import annotations

import datetime
import json

import cv2
import numpy as np
import pytest
import yaml
from captured_cases import SHAPE, write_captured_case
from cli import sonomap

from edge_runtime.manifest import sha256_file

BAND_ROWS, BAND_COLS = slice(50, 70), slice(20, 180)  # the registered band's known pixels
PATIENT_FOLDER = "Doe_Jane_1970"
EXIT_USER_ERROR = 2


def _prediction() -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[:, 120:200] = True
    return mask


def _capture(folder, expected_yield=None) -> None:
    """A captured case in ``folder`` (its case.yaml id: the folder's name), with ``expected_yield``
    written into capture when given."""
    write_captured_case(folder, _prediction())
    if expected_yield is not None:
        case_yaml = folder / "case.yaml"
        case = yaml.safe_load(case_yaml.read_text())
        case["capture"]["expected_yield"] = expected_yield
        case_yaml.write_text(yaml.safe_dump(case, sort_keys=False))


def _register(ds, case_yaml, patient: str) -> None:
    """What register-batch leaves for the case at ``case_yaml``: label.png (255 outside the band),
    report.json, the dataset image."""
    case_id = yaml.safe_load(case_yaml.read_text())["id"]
    reg = ds / "registration" / case_id
    reg.mkdir(parents=True)
    label = np.full(SHAPE, 255, np.uint8)
    label[BAND_ROWS, BAND_COLS] = 0
    label[BAND_ROWS, 100:180] = 1
    cv2.imwrite(str(reg / "label.png"), label)
    report = {
        "case_id": case_id,
        "patient_id": patient,
        "case_file": {"sha256": sha256_file(case_yaml)},
        "quality": {"score": 0.9},
    }
    (reg / "report.json").write_text(json.dumps(report))
    (ds / "images").mkdir(exist_ok=True)
    (ds / "images" / f"{case_id}.png").write_bytes(b"")


def _skipped(out) -> dict[str, str]:
    return {s["case"]: s["reason"] for s in json.loads((out / "concordance.json").read_text())["skipped"]}


# --- capture.expected_yield ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected_yield", "key"),
    [
        ("unknown", "capture.expected_yield"),  # a hand-written note instead of the mapping
        ([0.4], "capture.expected_yield"),
        ({"fraction": datetime.date(2026, 12, 1)}, "capture.expected_yield.fraction"),  # YAML reads a date
        ({"fraction": "0.4"}, "capture.expected_yield.fraction"),
        ({"fraction": True}, "capture.expected_yield.fraction"),
        ({"fraction": 1.5}, "capture.expected_yield.fraction"),
    ],
)
def test_a_bad_expected_yield_skips_its_core_naming_the_key(tmp_path, expected_yield, key):
    cases, ds, out = tmp_path / "cases", tmp_path / "ds", tmp_path / "report"
    _capture(cases / "A1", {"fraction": 0.4, "needle_frame": 3, "gauge": 14})
    _capture(cases / "B1", expected_yield)
    for name in ("A1", "B1"):
        _register(ds, cases / name / "case.yaml", f"p_{name}")
    result = sonomap("concordance", cases, "--dataset", ds, "--out", out, check=False)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    skipped = _skipped(out)
    assert list(skipped) == ["B1"] and f"{key} must be" in skipped["B1"], skipped
    cores = json.loads((out / "concordance.json").read_text())["cores"]
    assert [(c["id"], c["expected_yield"]) for c in cores] == [("A1", 0.4)]


def test_cases_without_an_expected_yield_are_scored(tmp_path):
    cases, ds, out = tmp_path / "cases", tmp_path / "ds", tmp_path / "report"
    _capture(cases / "A1")
    _capture(cases / "B1", {"needle_frame": 3})  # the band was found, no fraction recorded
    for name in ("A1", "B1"):
        _register(ds, cases / name / "case.yaml", f"p_{name}")
    sonomap("concordance", cases, "--dataset", ds, "--out", out)
    cores = json.loads((out / "concordance.json").read_text())["cores"]
    assert [(c["id"], c["expected_yield"]) for c in cores] == [("A1", None), ("B1", None)]
    assert _skipped(out) == {}


@pytest.mark.parametrize("key", ["mask", "prob"])
def test_a_prediction_named_by_a_path_to_another_case_skips_the_core(tmp_path, key):
    """B1's case.yaml hand-edited to use A1's prediction file: B1 was scored against a prediction made
    on another biopsy (another patient's), with no word."""
    cases, ds, out = tmp_path / "cases", tmp_path / "ds", tmp_path / "report"
    for name in ("A1", "B1"):
        _capture(cases / name)
        _register(ds, cases / name / "case.yaml", f"p_{name}")
    case_yaml = cases / "B1" / "case.yaml"
    case = yaml.safe_load(case_yaml.read_text())
    own = case["capture"]["prediction"][key]
    case["capture"]["prediction"][key] = str(cases / "A1" / own)
    case_yaml.write_text(yaml.safe_dump(case, sort_keys=False))
    report_path = ds / "registration" / "B1" / "report.json"
    report = json.loads(report_path.read_text())
    report["case_file"]["sha256"] = sha256_file(case_yaml)  # registered as it reads now
    report_path.write_text(json.dumps(report))
    sonomap("concordance", cases, "--dataset", ds, "--out", out)
    skipped = _skipped(out)
    assert list(skipped) == ["B1"], skipped
    assert f"capture.prediction.{key} must name a file in the case's own folder" in skipped["B1"], skipped
    cores = json.loads((out / "concordance.json").read_text())["cores"]
    assert [c["id"] for c in cores] == ["A1"]


# --- skipped cases name no patient folder ------------------------------------------------------


def test_a_skipped_case_in_a_patient_folder_is_named_by_its_id_or_position(tmp_path):
    cases, ds, out = tmp_path / "cases", tmp_path / "ds", tmp_path / "report"
    _capture(cases / "A1")
    _register(ds, cases / "A1" / "case.yaml", "p1")
    patient = cases / PATIENT_FOLDER
    _capture(patient / "20261202T220452Z-1")  # captured, never registered
    _capture(patient / "20261202T220454Z-2", "unknown")  # registered, but its expected_yield is no mapping
    _register(ds, patient / "20261202T220454Z-2" / "case.yaml", "p2")
    broken = patient / "broken"
    broken.mkdir()
    (broken / "case.yaml").write_text("id: [unclosed\n")  # no id to name it by: its position
    result = sonomap("concordance", cases, "--dataset", ds, "--out", out)
    skipped = _skipped(out)
    assert list(skipped) == ["20261202T220452Z-1", "20261202T220454Z-2", "case 4 of 4"], skipped
    assert skipped["20261202T220452Z-1"].startswith("case.yaml: not registered in ds"), skipped
    assert skipped["case 4 of 4"].startswith("case.yaml: not valid YAML"), skipped
    for path in out.rglob("*"):
        assert PATIENT_FOLDER.encode() not in path.read_bytes(), path.name
        assert str(tmp_path).encode() not in path.read_bytes(), path.name
    assert PATIENT_FOLDER not in result.stdout + result.stderr


def test_a_case_without_id_in_a_patient_named_folder_is_skipped_without_the_name(tmp_path):
    """No id, so the folder's name would be the case id: one named after the patient is no id
    register-batch takes, and the skip reason must not carry it (``registration/<name>/...``)."""
    cases, ds, out = tmp_path / "cases", tmp_path / "ds", tmp_path / "report"
    _capture(cases / "A1")
    _register(ds, cases / "A1" / "case.yaml", "p1")
    _capture(cases / PATIENT_FOLDER)
    case_yaml = cases / PATIENT_FOLDER / "case.yaml"
    case = yaml.safe_load(case_yaml.read_text())
    del case["id"]
    case_yaml.write_text(yaml.safe_dump(case, sort_keys=False))
    result = sonomap("concordance", cases, "--dataset", ds, "--out", out)
    skipped = _skipped(out)
    assert list(skipped) == ["case 2 of 2"], skipped
    assert skipped["case 2 of 2"].startswith(
        "case.yaml: the case folder's name (the case id, as case.yaml has no id) refused"
    ), skipped
    for path in out.rglob("*"):
        assert PATIENT_FOLDER.encode() not in path.read_bytes(), path.name
    assert PATIENT_FOLDER not in result.stdout + result.stderr


def test_a_case_whose_typed_id_is_a_name_is_skipped_without_the_name(tmp_path):
    """An ``id`` typed by hand names the dataset's files as a folder's name does, so the same rule
    refuses it: register-batch has no registration of it, and the skip reason does not carry it."""
    cases, ds, out = tmp_path / "cases", tmp_path / "ds", tmp_path / "report"
    _capture(cases / "A1")
    _register(ds, cases / "A1" / "case.yaml", "p1")
    _capture(cases / "B1")
    case_yaml = cases / "B1" / "case.yaml"
    case = yaml.safe_load(case_yaml.read_text())
    case["id"] = PATIENT_FOLDER
    case_yaml.write_text(yaml.safe_dump(case, sort_keys=False))
    result = sonomap("concordance", cases, "--dataset", ds, "--out", out)
    skipped = _skipped(out)
    assert list(skipped) == ["case 2 of 2"], skipped
    assert skipped["case 2 of 2"].startswith("case.yaml: id refused (reads as a name with a birth year"), (
        skipped
    )
    for path in out.rglob("*"):
        assert PATIENT_FOLDER.encode() not in path.read_bytes(), path.name
    assert PATIENT_FOLDER not in result.stdout + result.stderr


# --- the report folder ---------------------------------------------------------------------


@pytest.fixture()
def scored_cases(tmp_path):
    cases, ds = tmp_path / "cases", tmp_path / "ds"
    for name in ("A1", "B1"):
        _capture(cases / name)
        _register(ds, cases / name / "case.yaml", f"p_{name}")
    return cases, ds


@pytest.mark.parametrize(
    "files",
    [
        {"report.md": "# Evaluation of best.pt\n", "metrics.csv": "split,dice\nval,0.5\n"},  # evaluate's
        {"report.md": "# my notes\n"},  # a report.md of something else
        {"cases.csv": "id,case_id,split\nA,p_A,train\n"},  # the dataset, say
    ],
)
def test_concordance_out_into_a_folder_that_is_not_its_report_is_refused(scored_cases, tmp_path, files):
    cases, ds = scored_cases
    out = tmp_path / "elsewhere"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    result = sonomap("concordance", cases, "--dataset", ds, "--out", out, check=False)
    err = result.stderr.strip()
    assert result.returncode == EXIT_USER_ERROR and "\n" not in err and "Traceback" not in err, err
    assert f"--out {out}" in err and "concordance" in err, err
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_concordance_out_may_be_empty_or_its_own_earlier_report(scored_cases, tmp_path):
    cases, ds = scored_cases
    out = tmp_path / "report"
    out.mkdir()
    sonomap("concordance", cases, "--dataset", ds, "--out", out)
    first = sorted(p.name for p in out.iterdir())
    sonomap("concordance", cases, "--dataset", ds, "--out", out, "--seed", 1)
    assert sorted(p.name for p in out.iterdir()) == first and "report.md" in first
