"""`sonomap concordance CASES --dataset DATASET --out REPORT`: REPORT must lie apart from both folders it
reads. A report written inside CASES would be met as a case by every later command reading the folder;
one inside DATASET would mix its files with the dataset's. One of, inside or holding either: refused in
one line naming both, before anything is read or written (edge_runtime.atomic.check_apart)."""

from __future__ import annotations

import pytest
from cli import sonomap
from file_trees import tree_bytes
from test_concordance_inputs import EXIT_USER_ERROR, _capture, _register


@pytest.fixture()
def loop(tmp_path):
    cases, ds = tmp_path / "loop" / "cases", tmp_path / "loop" / "ds"
    for name in ("A1", "B1"):
        _capture(cases / name)
        _register(ds, cases / name / "case.yaml", f"p_{name}")
    return cases, ds


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("cases", "CASES"),
        ("cases/report", "CASES"),
        ("ds", "--dataset"),
        ("ds/report", "--dataset"),
        (".", "CASES"),  # the folder holding both
    ],
)
def test_concordance_out_not_apart_from_its_inputs_is_refused(loop, where, named):
    cases, ds = loop
    root = cases.parent
    out = root / where
    before = tree_bytes(root)
    result = sonomap("concordance", cases, "--dataset", ds, "--out", out, check=False)
    err = result.stderr.strip()
    assert result.returncode == EXIT_USER_ERROR and "\n" not in err and "Traceback" not in err, err
    assert f"--out {out}" in err and f"{named} " in err and "apart" in err, err
    assert tree_bytes(root) == before and not (root / where / "report.md").exists()


def test_concordance_out_beside_its_inputs_is_written(loop):
    cases, ds = loop
    out = cases.parent / "report"
    sonomap("concordance", cases, "--dataset", ds, "--out", out)
    assert (out / "report.md").is_file()
