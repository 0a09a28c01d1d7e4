"""What register-batch persists, logs and prints names a case's input files by their case.yaml key,
never by a path or file name that may carry the patient's name; and a DATASET path that is not valid
UTF-8 is written to (OpenCV never sees such a path: it crashes on one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from cli import sonomap

CLI_TIMEOUT_S = 300
PATIENT = "MRN4711"  # what the lab's file names carry
SLIDE, ANNOTATION = f"DOE_JANE_{PATIENT}.ome.tif", f"Doe_Jane_{PATIENT}_annot.geojson"
KEPT_SHARE = 0.6  # of the slide file: its pyramid levels cut short


@pytest.fixture()
def simulated(simulated_cases):
    return simulated_cases(2)


def _rename_inputs(folder) -> None:
    """The slide and the annotation under the patient-named files a lab exports."""
    (folder / "core.ome.tif").rename(folder / SLIDE)
    (folder / "core.geojson").rename(folder / ANNOTATION)
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["pathology"].update(wsi=SLIDE, annotations=ANNOTATION)
    (folder / "case.yaml").write_text(yaml.safe_dump(case))


def test_failed_cases_name_their_inputs_by_case_yaml_key(simulated, tmp_path):
    cases = tmp_path / "cases"
    shutil.copytree(simulated, cases)
    bad_annotation, bad_slide = sorted(p for p in cases.iterdir())
    for folder in (bad_annotation, bad_slide):
        _rename_inputs(folder)
    (bad_annotation / ANNOTATION).write_text('{"type": "FeatureCollection",\n')  # malformed
    slide = bad_slide / SLIDE
    slide.write_bytes(slide.read_bytes()[: int(slide.stat().st_size * KEPT_SHARE)])  # truncated
    ds = tmp_path / "ds"
    out = sonomap("-v", "register-batch", cases, "--out", ds, "--no-progress", check=False)
    report = (ds / "batch_report.json").read_text()
    errors = {f["case"]: f["error"] for f in json.loads(report)["failures"]}
    assert set(errors) == {"case 1 of 2", "case 2 of 2"}  # their places among the sorted case files
    assert "pathology.annotations" in errors["case 1 of 2"]
    assert "pathology.wsi" in errors["case 2 of 2"]
    for text in (report, out.stdout, out.stderr):  # persisted, printed, logged (the WARNING lines)
        assert PATIENT not in text and "doe_jane" not in text.lower()
    # nor the folders under the cases folder (the command's own error line names the folder itself)
    assert str(cases) not in report
    assert out.stderr.count("WARNING") >= 2


def test_a_dataset_path_that_is_not_utf8_is_written(simulated, tmp_path):
    ds = os.fsdecode(os.fsencode(str(tmp_path)) + b"/ds\xffout")  # a surrogate escape in the str
    cmd = [
        sys.executable,
        "-m",
        "edge_runtime.cli",
        "register-batch",
        str(simulated),
        "--out",
        ds,
        "--no-progress",
    ]
    out = subprocess.run(cmd, capture_output=True, timeout=CLI_TIMEOUT_S)  # bytes: it prints the path
    assert out.returncode == 0, out.stderr[-2000:]  # not -11: OpenCV never got the path
    images = sorted(os.listdir(os.fsencode(ds) + b"/images"))
    assert images == sorted(os.listdir(os.fsencode(ds) + b"/labels")) and len(images) == 2


def test_batch_report_names_the_dataset_folder_without_its_parents(simulated, tmp_path):
    """batch_report.json travels with the dataset: it gives the folder's name, and a failure that
    concerns a dataset file names it by its path in DATASET, never by the user's folders above it."""
    ds = tmp_path / f"Doe_Jane_{PATIENT}" / "ds"
    blocked = ds / "registration" / "sim_0000"  # a file where the case's folder goes: that case fails
    blocked.parent.mkdir(parents=True)
    blocked.write_text("")
    out = sonomap("register-batch", simulated, "--out", ds, "--no-progress", check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((ds / "batch_report.json").read_text())
    assert summary["dataset"] == "ds"
    assert [f["id"] for f in summary["failures"]] == ["sim_0000"]
    assert "registration/sim_0000" in summary["failures"][0]["error"]
    for report in [ds / "batch_report.json", *ds.glob("registration/*/*.json")]:
        text = report.read_text()
        assert str(tmp_path) not in text and PATIENT not in text, report
