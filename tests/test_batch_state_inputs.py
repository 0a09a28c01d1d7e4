"""A registration is current only while case.yaml and the input files it names read as they did: a
revised annotation (or slide, or ultrasound image) has register-batch register the case again, and
until then `sonomap cases --dataset` lists it as complete (not registered) and `sonomap concordance`
skips it naming what changed. input_stats.json spares hashing unchanged inputs on every run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap

import edge_runtime.case_report as case_report
from registration.batch import register_batch

EMPTY_ANNOTATION = '{"type": "FeatureCollection", "features": []}'
CANCER, UNKNOWN = 1, 255


@pytest.fixture()
def cases(simulated_cases, tmp_path):
    return Path(shutil.copytree(simulated_cases(2), tmp_path / "cases"))


def _with_prediction(folder) -> None:
    """Give a simulated case the live prediction a capture saves (none predicted), for concordance."""
    shape = cv2.imread(str(folder / "us_prefire.png"), cv2.IMREAD_GRAYSCALE).shape
    cv2.imwrite(str(folder / "prefire_mask.png"), np.zeros(shape, np.uint8))
    cv2.imwrite(str(folder / "prefire_prob.png"), np.full(shape, 1000, np.uint16))
    case = yaml.safe_load((folder / "case.yaml").read_text())
    case["capture"] = {
        "prediction": {
            "mask": "prefire_mask.png",
            "prob": "prefire_prob.png",
            "prob_scale": 65535,
            "cancer_class": 1,
        }
    }
    (folder / "case.yaml").write_text(yaml.safe_dump(case))


def _concordance(cases, ds, out) -> dict:
    sonomap("concordance", cases, "--dataset", ds, "--out", out)
    return json.loads((out / "concordance.json").read_text())


def _label(ds, case_id) -> np.ndarray:
    return cv2.imread(str(ds / "labels" / f"{case_id}.png"), cv2.IMREAD_UNCHANGED)


def test_a_revised_annotation_is_seen_by_cases_concordance_and_register_batch(cases, tmp_path):
    ds = tmp_path / "ds"
    first, second = sorted(p.name for p in cases.iterdir())
    for name in (first, second):
        _with_prediction(cases / name)
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    assert (_label(ds, first) == CANCER).any()
    before = _concordance(cases, ds, tmp_path / "c1")
    assert {c["id"]: c["pathology_cancer"] for c in before["cores"]}[first] is True

    (cases / first / "core.geojson").write_text(EMPTY_ANNOTATION)  # the pathologist retracts the cancer

    listing = sonomap("cases", cases, "--dataset", ds).stdout.splitlines()
    (line,) = [x for x in listing if x.startswith(first)]
    assert " complete " in line and "pathology.annotations changed since it was registered" in line
    assert listing[-1].startswith("2 case(s): 1 registered, 0 held, 0 failed, 1 complete")
    stale = _concordance(cases, ds, tmp_path / "c2")
    assert [c["id"] for c in stale["cores"]] == [second]
    (skipped,) = stale["skipped"]
    assert (
        skipped["case"] == first
        and "pathology.annotations changed since it was registered" in skipped["reason"]
    )

    old_label = (ds / "labels" / f"{first}.png").read_bytes()
    out = sonomap("register-batch", cases, "--out", ds, "--no-progress").stdout
    s = json.loads((ds / "batch_report.json").read_text())
    assert (s["registered"], s["skipped_done"], s["failed"]) == (1, 1, 0)
    (again,) = s["registered_again"]
    assert again["id"] == first and "pathology.annotations changed" in again["reason"]
    # the label it replaced is kept in removed/ and said to be there, in the report and on stdout
    assert again["moved"] == [f"removed/images/{first}.png", f"removed/labels/{first}.png"]
    assert (ds / "removed" / "labels" / f"{first}.png").read_bytes() == old_label
    assert f"  registered again: {first} (" in out and f"removed/labels/{first}.png" in out
    assert not (_label(ds, first) == CANCER).any()  # the label now agrees with the annotation
    after = _concordance(cases, ds, tmp_path / "c3")
    assert {c["id"]: c["pathology_cancer"] for c in after["cores"]}[first] is False
    assert (
        sonomap("cases", cases, "--dataset", ds).stdout.splitlines()[-1].startswith("2 case(s): 2 registered")
    )


def test_an_edit_that_keeps_size_and_mtime_is_still_caught(cases, tmp_path):
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    first = sorted(p.name for p in cases.iterdir())[0]
    ann = cases / first / "core.geojson"
    st = ann.stat()
    text = ann.read_text()
    i = next(i for i, ch in enumerate(text) if ch in "123456789")
    ann.write_text(text[:i] + str(int(text[i]) % 9 + 1) + text[i + 1 :])  # one vertex moved, same size
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns))  # a copy tool keeping the old time
    assert ann.stat().st_size == st.st_size and ann.stat().st_mtime_ns == st.st_mtime_ns
    s = register_batch(cases, ds, progress=False)
    assert [a["id"] for a in s["registered_again"]] == [first]
    assert "pathology.annotations changed" in s["registered_again"][0]["reason"]


def test_unchanged_inputs_are_not_hashed_again(cases, tmp_path, monkeypatch):
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    stats = json.loads(next((ds / "registration").glob("*/input_stats.json")).read_text())
    assert set(stats) == {
        "case.yaml",
        "ultrasound.image",
        "ultrasound.dataset_image",
        "pathology.wsi",
        "pathology.annotations",
    }
    assert "core" not in json.dumps(stats)  # sizes, times and digests: no file name
    hashed = []
    real = case_report.sha256_file
    monkeypatch.setattr(case_report, "sha256_file", lambda p: hashed.append(p) or real(p))
    s = register_batch(cases, ds, progress=False)
    assert s["skipped_done"] == 2 and hashed == []  # a whole slide is not read again to skip its case
    slide = sorted(cases.glob("*/core.ome.tif"))[0]
    slide.touch()  # a new mtime, the same content: hashed once, still current
    s = register_batch(cases, ds, progress=False)
    assert s["skipped_done"] == 2 and hashed == [slide]


def test_a_case_revised_twice_keeps_both_earlier_copies(cases, tmp_path):
    ds = tmp_path / "ds"
    register_batch(cases, ds, progress=False)
    first = sorted(p.name for p in cases.iterdir())[0]
    labels = [(ds / "labels" / f"{first}.png").read_bytes()]
    for revision in (EMPTY_ANNOTATION, EMPTY_ANNOTATION + "\n"):  # revised: no cancer, then re-saved
        (cases / first / "core.geojson").write_text(revision)
        s = register_batch(cases, ds, progress=False)
        assert [a["id"] for a in s["registered_again"]] == [first]
        labels.append((ds / "labels" / f"{first}.png").read_bytes())
    (second_round,) = s["registered_again"]
    assert second_round["moved"] == [f"removed/images/{first}~2.png", f"removed/labels/{first}~2.png"]
    kept = [(ds / "removed" / "labels" / name).read_bytes() for name in (f"{first}.png", f"{first}~2.png")]
    assert kept == labels[:2]  # the oldest was not replaced by the second retirement
