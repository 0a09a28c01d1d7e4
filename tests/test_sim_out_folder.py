"""`simulate-biopsy --out` writes only into a new or empty folder or one an earlier simulate-biopsy made:
synthetic cases written among real captured cases would go into a training dataset at the next
register-batch, and into a dataset or a training run they mix with that folder's own files. Any other
folder is one line naming it and what it holds (not the names in it: a case folder may be named after
a patient), exit 2, and nothing in it changes."""

from __future__ import annotations

import shutil

import pytest
from captured_cases import write_captured_case
from cli import sonomap

USER_ERROR = 2
PATIENT_CASE = "Doe_Jane_1970"  # a real case folder named after its patient


def _tree(root):
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))
    }


def _run(busi_sample, out, check=False):
    return sonomap(
        "simulate-biopsy", "--images", busi_sample / "images", "--masks", busi_sample / "masks",
        "--out", out, "--n", 1, "--seed", 0, "--wsi-mpp", 8, check=check,
    )  # fmt: skip


def _real_cases(root):
    write_captured_case(root / "20261130T010101Z-1")
    write_captured_case(root / PATIENT_CASE)
    return root


def _dataset(root, busi_dataset):
    shutil.copytree(busi_dataset, root)
    return root


def _run_folder(root):
    root.mkdir()
    (root / "metrics.csv").write_text("epoch,val_dice\n0,0.5\n")
    return root


def _own_case_with_more(root, simulated_case):
    shutil.copytree(simulated_case, root / "sim_0000")
    (root / "sim_0000" / "notes.txt").write_text("the pathologist's remarks")
    return root


@pytest.mark.parametrize(
    "kind,holds",
    [
        ("real cases", "holds 2 case folder(s) with a case.yaml that simulate-biopsy did not make"),
        ("a dataset", "2 other folder(s) and"),
        ("a training run", "holds 1 file(s) or link(s) that simulate-biopsy did not make"),
        ("a case with more files", "(sim_0000 holds files simulate-biopsy does not write)"),
    ],
)
def test_a_folder_simulate_biopsy_did_not_make_is_refused_and_kept(
    busi_sample, busi_dataset, simulated_case, tmp_path, kind, holds
):
    out = tmp_path / "out"
    {
        "real cases": lambda: _real_cases(out),
        "a dataset": lambda: _dataset(out, busi_dataset),
        "a training run": lambda: _run_folder(out),
        "a case with more files": lambda: _own_case_with_more(out, simulated_case),
    }[kind]()
    before = _tree(out)
    res = _run(busi_sample, out)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == USER_ERROR and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"sonomap simulate-biopsy: error: --out {out}: holds ") and holds in lines[0]
    assert PATIENT_CASE not in res.stderr
    assert _tree(out) == before


def test_an_empty_folder_and_its_own_earlier_run_are_written(busi_sample, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".DS_Store").write_bytes(b"\0")  # a file manager's, hidden: not a case register-batch takes
    _run(busi_sample, out, check=True)
    made = (out / "sim_0000" / "case.yaml").read_bytes()
    _run(busi_sample, out, check=True)  # the same run again writes over its own case
    assert (out / "sim_0000" / "case.yaml").read_bytes() == made
    assert sorted(p.name for p in out.iterdir()) == [".DS_Store", "sim_0000"]
