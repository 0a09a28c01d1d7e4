"""Whole cases (the simulated case from the vendored BUSI sample): a case in a folder whose name is not UTF-8
registers; a dataset frame that does not exist names ultrasound.dataset_frame and leaves the earlier
outputs; outlines drawn twice or mostly excluded are not taken for annotation outside the tissue."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from edge_runtime.errors import InputError
from registration.pipeline import register_case

NOT_UTF8 = os.fsdecode(b"c\xff")  # a folder name in Latin-1, as a USB stick from another system has
EXCLUDED_SHARE = 0.9  # of the first tumour's width, covered by an Exclusion outline
MARGIN = 50  # annotation px the exclusion reaches past the tumour's other sides
CHILD_TIMEOUT_S = 300


@pytest.fixture()
def case(simulated_case, tmp_path):
    d = tmp_path / "case"
    shutil.copytree(simulated_case, d)
    return d


def _edit_yaml(case, change) -> None:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    change(spec)
    (case / "case.yaml").write_text(yaml.safe_dump(spec))


def _annotations(case) -> tuple:
    spec = yaml.safe_load((case / "case.yaml").read_text())
    path = case / spec["pathology"]["annotations"]
    return path, json.loads(path.read_text())


def test_a_case_in_a_folder_not_named_in_utf8_registers(case, tmp_path):
    folder = tmp_path / NOT_UTF8
    folder.mkdir()
    moved = folder / "case"
    shutil.move(case, moved)
    out = folder / "out"
    # a child process: OpenCV given such a path crashes the interpreter. Its output names the folder,
    # bytes that are no UTF-8: read as the file system's names are
    res = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "register", str(moved / "case.yaml"), "--out", str(out)],
        capture_output=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert res.returncode == 0, f"exit {res.returncode}: {os.fsdecode(res.stderr[-2000:])}"
    assert sorted(p.name for p in out.iterdir()) == ["label.png", "qa.png", "report.json", "us.png"]
    gray = cv2.imdecode(np.frombuffer((out / "us.png").read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert gray is not None and gray.ndim == 2


def test_a_missing_dataset_frame_names_its_key_and_keeps_earlier_outputs(case, tmp_path):
    out = tmp_path / "out"
    register_case(case / "case.yaml", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _edit_yaml(case, lambda c: c["ultrasound"].update(dataset_frame=3))
    with pytest.raises(InputError) as err:
        register_case(case / "case.yaml", out)
    assert "ultrasound.dataset_frame=3 but a PNG/JPEG has one frame" in str(err.value)
    assert "ultrasound.frame=" not in str(err.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _outside_warnings(report: dict) -> list:
    return [w for w in report["warnings"] if "outside the tissue" in w]


@pytest.mark.parametrize("copies", [1, 10])
def test_outlines_drawn_more_than_once_are_counted_once(case, tmp_path, copies):
    original = register_case(case / "case.yaml", tmp_path / "original")
    assert _outside_warnings(original) == []
    path, gj = _annotations(case)
    tumours = [f for f in gj["features"] if f["properties"]["classification"]["name"] == "Tumor"]
    assert tumours
    gj["features"] += copy.deepcopy(tumours) * copies  # e.g. an export of an annotation and its copy
    path.write_text(json.dumps(gj))
    report = register_case(case / "case.yaml", tmp_path / "twice")
    assert _outside_warnings(report) == []
    label = cv2.imread(str(tmp_path / "twice" / "label.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(label, cv2.imread(str(tmp_path / "original" / "label.png"), cv2.IMREAD_UNCHANGED))


def test_an_exclusion_over_most_of_a_tumour_is_not_annotation_outside_the_tissue(case, tmp_path):
    path, gj = _annotations(case)
    tumour = next(f for f in gj["features"] if f["properties"]["classification"]["name"] == "Tumor")
    ring = np.array(tumour["geometry"]["coordinates"][0], float)
    (x0, y0), (x1, y1) = ring.min(axis=0), ring.max(axis=0)
    xe = x0 + EXCLUDED_SHARE * (x1 - x0)
    box = [[x0 - MARGIN, y0 - MARGIN], [xe, y0 - MARGIN], [xe, y1 + MARGIN], [x0 - MARGIN, y1 + MARGIN]]
    gj["features"].append(
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [box + box[:1]]},
            "properties": {"objectType": "annotation", "classification": {"name": "Exclusion"}},
        }
    )
    path.write_text(json.dumps(gj))
    report = register_case(case / "case.yaml", tmp_path / "out")
    assert _outside_warnings(report) == []
