"""`sonomap concordance` replaces its report folder's files all together or not at all: a run that
cannot write one of them leaves the earlier report whole (never new cores.csv beside an old
report.md), and a run that succeeds leaves no temp file behind."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from captured_cases import SHAPE, write_captured_case
from cli import sonomap

from edge_runtime.manifest import sha256_file

REPORT_FILES = ("cores.csv", "concordance.json", "bland_altman.png", "report.md")


def _core(root, case_id: str, patient: str, cancer: bool) -> None:
    """A captured case predicting cancer in columns 100-200 and what register-batch leaves for it."""
    pred = np.zeros(SHAPE, bool)
    pred[:, 100:] = True
    write_captured_case(root / "cases" / case_id, pred)
    reg = root / "ds" / "registration" / case_id
    reg.mkdir(parents=True)
    label = np.full(SHAPE, 255, np.uint8)
    label[50:70, 20:180] = 0
    if cancer:
        label[50:70, 100:180] = 1
    cv2.imwrite(str(reg / "label.png"), label)
    case_file = {"sha256": sha256_file(root / "cases" / case_id / "case.yaml")}
    report = {"case_id": case_id, "patient_id": patient, "case_file": case_file, "quality": {"score": 0.9}}
    (reg / "report.json").write_text(json.dumps(report))
    (root / "ds" / "images").mkdir(exist_ok=True)
    (root / "ds" / "images" / f"{case_id}.png").write_bytes(b"")


def _run(root, check: bool = True):
    return sonomap(
        "concordance", root / "cases", "--dataset", root / "ds", "--out", root / "report", check=check
    )


@pytest.fixture(scope="module")
def earlier_report(tmp_path_factory):
    """Cores A and B and the report of one run on them: the earlier report both tests start from
    (each test works on its own copy; the run costs seconds of patient bootstrap)."""
    root = tmp_path_factory.mktemp("earlier")
    _core(root, "A1", "p1", cancer=True)
    _core(root, "B1", "p2", cancer=False)
    _run(root)
    return root


@pytest.fixture()
def root(earlier_report, tmp_path):
    return shutil.copytree(earlier_report, tmp_path / "root")


def test_a_failed_write_leaves_the_earlier_report_whole(root):
    out = root / "report"
    before = {name: (out / name).read_bytes() for name in REPORT_FILES}
    (out / "scatter.png").unlink()
    (out / "scatter.png").mkdir()  # the one file this run cannot replace
    _core(root, "C1", "p3", cancer=True)  # the new report would differ in every file
    res = _run(root, check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and str(out / "scatter.png") in res.stderr, res.stderr
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT_FILES, "scatter.png"])  # no temp left


def test_a_second_run_replaces_every_file_and_leaves_nothing_else(root):
    assert sorted(p.name for p in (root / "report").iterdir()) == sorted([*REPORT_FILES, "scatter.png"])
    _core(root, "C1", "p3", cancer=True)
    _run(root)
    out = root / "report"
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT_FILES, "scatter.png"])
    assert [c["id"] for c in json.loads((out / "concordance.json").read_text())["cores"]] == [
        "A1",
        "B1",
        "C1",
    ]
    assert (out / "cores.csv").read_text().count("\n") == 4 and "| C1 |" in (out / "report.md").read_text()
