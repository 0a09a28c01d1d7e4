"""Captured biopsy cases waiting for pathology: `sonomap cases DIR` lists what each lacks, and
`register-batch` reports them as pending without failing; broken cases still fail as before.
Patient ids: case.yaml patient_id, else pathology.patient_id, else capture.study_id, else the case id."""

from __future__ import annotations

import json

import pytest
from captured_cases import write_captured_case
from cli import sonomap

from edge_runtime.errors import ConfigError
from registration.case import load_case
from registration.cases.identity import patient_of

EXIT_ERROR = 2


def _filled(tmp_path, **extra) -> dict:
    """A pathology section naming files that exist (the loader checks presence, not content)."""
    for name in ("slide.ome.tif", "slide.geojson"):
        (tmp_path / name).write_bytes(b"x")
    return {
        "wsi": str(tmp_path / "slide.ome.tif"),
        "annotations": str(tmp_path / "slide.geojson"),
        "tip_end": "left",
        **extra,
    }


@pytest.fixture
def cases(tmp_path):
    root = tmp_path / "cases"
    write_captured_case(root / "20261130T010101Z-1")  # nothing back from the lab
    write_captured_case(
        root / "20261130T010102Z-2",
        pathology={"wsi": "slide.svs", "annotations": None, "tip_end": "left"},  # named, not copied in
        study_id="S-0042",
    )
    write_captured_case(root / "20261130T010103Z-3", pathology=_filled(tmp_path, shrinkage=0.9))
    write_captured_case(root / "20261130T010104Z-4", pathology=_filled(tmp_path, tip_end="middle"))
    write_captured_case(root / ".20261130T010105Z-5.partial")  # still being written: not a case yet
    return root


def test_listing_names_what_each_case_lacks(cases):
    out = sonomap("cases", cases).stdout.splitlines()
    assert out[-1] == "4 case(s): 0 registered, 0 held, 0 failed, 1 complete, 2 pending, 1 broken"
    by_name = {line.split()[0]: line for line in out[:-1]}
    assert set(by_name) == {f"20261130T01010{n}Z-{n}" for n in (1, 2, 3, 4)}
    first = by_name["20261130T010101Z-1"]
    assert " pending " in first and "slide (pathology.wsi)" in first
    assert "annotation (pathology.annotations)" in first and "shrinkage" in first and "(optional)" in first
    second = by_name["20261130T010102Z-2"]
    assert "slide file (pathology.wsi) not in the folder yet" in second and "slide.svs" not in second
    assert "slide (pathology.wsi)" not in second and "patient S-0042 (capture.study_id)" in second
    third = by_name["20261130T010103Z-3"]
    assert " complete " in third and "nothing missing" in third and "shrinkage" not in third
    assert "tip_end must be one of" in by_name["20261130T010104Z-4"]


def test_an_empty_cases_folder_lists_nothing_and_a_missing_one_is_an_error(tmp_path):
    (tmp_path / "cases" / ".20261130T010105Z-1.partial").mkdir(parents=True)
    out = sonomap("cases", tmp_path / "cases").stdout.splitlines()
    assert out == ["0 case(s): 0 registered, 0 held, 0 failed, 0 complete, 0 pending, 0 broken"]
    missing = sonomap("cases", tmp_path / "nowhere", check=False)
    assert missing.returncode == EXIT_ERROR and "cases folder not found" in missing.stderr


def test_register_batch_lists_pending_cases_and_succeeds(tmp_path):
    root = tmp_path / "cases"
    for n in (1, 2):
        write_captured_case(root / f"20261130T01010{n}Z-{n}")
    out = sonomap("register-batch", root, "--out", tmp_path / "ds", "--no-progress", "--strict")
    assert "registered 0" in out.stdout and "failed 0" in out.stdout and "pending 2" in out.stdout
    assert "pending: 20261130T010101Z-1 lacks slide (pathology.wsi), annotation" in out.stdout
    report = json.loads((tmp_path / "ds" / "batch_report.json").read_text())
    assert report["pending"] == 2 and report["failed"] == 0
    assert report["pending_cases"][1]["lacks"] == [
        "slide (pathology.wsi)",
        "annotation (pathology.annotations)",
    ]


def test_register_batch_still_fails_when_broken_cases_are_all_it_could_try(cases, tmp_path):
    out = sonomap("register-batch", cases, "--out", tmp_path / "ds", "--no-progress", check=False)
    # the complete case is a stub slide (not a readable TIFF) and the broken one has a bad key
    assert out.returncode == EXIT_ERROR, out.stdout
    report = json.loads((tmp_path / "ds" / "batch_report.json").read_text())
    assert report["pending"] == 2 and report["failed"] == 2
    assert any("tip_end" in f["error"] for f in report["failures"])
    listing = sonomap("cases", cases, "--dataset", tmp_path / "ds").stdout.splitlines()
    assert listing[-1] == "4 case(s): 0 registered, 0 held, 1 failed, 0 complete, 2 pending, 1 broken"
    (failed,) = [line for line in listing if " failed " in line]
    assert failed.startswith("20261130T010103Z-3") and "error: " in failed


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"patient_id": "P1", "pathology": {"patient_id": "P2"}, "capture": {"study_id": "S3"}}, "P1"),
        ({"pathology": {"patient_id": "P2"}, "capture": {"study_id": "S3"}}, "P2"),
        ({"pathology": {"wsi": None}, "capture": {"study_id": "S3"}}, "S3"),
        ({"capture": {"trigger": "fire"}}, "case-7"),
    ],
)
def test_patient_id_precedence(raw, expected):
    assert patient_of(raw, "case-7", "case.yaml")[0] == expected


def test_a_study_id_that_is_a_path_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="capture.study_id"):
        patient_of({"capture": {"study_id": "../x"}}, "c", "case.yaml")
    folder = write_captured_case(
        tmp_path / "c1", pathology=_filled(tmp_path, patient_id="P-9"), study_id="S-1"
    )
    assert load_case(folder / "case.yaml").patient_id == "P-9"


@pytest.mark.parametrize(
    "body", ["{not json", '{"failures": 5}', '{"failures": [{"case": "x"}]}', "[" * 100_000]
)
def test_a_damaged_batch_report_is_one_line_naming_it(cases, tmp_path, body):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "batch_report.json").write_text(body)
    out = sonomap("cases", cases, "--dataset", dataset, check=False)
    err = out.stderr.strip()
    assert out.returncode == 2 and "Traceback" not in err and "\n" not in err, err
    assert "batch_report.json: not a register-batch report" in err
