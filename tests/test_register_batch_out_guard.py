"""register-batch writes only into a new or empty folder or a dataset it made; `cases --dataset` reads only one.

Through the real CLI on simulated cases: an OUT holding someone else's images/ (no registration/ or
batch_report.json), a BUSI-style folder (images/ + masks/) or a training run (best.pt) is refused
with one line naming the folder and what it holds, exit 2, every byte and folder as it was (before,
register-batch moved such images to removed/). An empty OUT and a re-run on its own dataset still
work. `sonomap cases --dataset` refuses a missing folder, an empty one and one register-batch did
not write (before, it listed every case as ready to register), and `sonomap cases FILE` says that
FILE is a file, as `register-batch FILE` does. A cases folder with no case yet is nothing to do (exit 0), the dataset untouched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli import EXIT_USER_ERROR, simulate_biopsy, sonomap
from file_trees import tree_bytes


def _one_line_error(result) -> str:
    err = result.stderr.strip()
    assert result.returncode == EXIT_USER_ERROR, err
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def cases(tmp_path_factory, busi_sample) -> Path:
    out = tmp_path_factory.mktemp("guard") / "cases"
    simulate_biopsy(busi_sample, out, n=2, seed=0)
    return out


@pytest.fixture(scope="module")
def dataset(cases) -> Path:
    """A dataset register-batch made from ``cases`` into an empty folder, then re-ran on."""
    ds = cases.parent / "dataset"
    ds.mkdir()
    sonomap("register-batch", cases, "--out", ds, "--no-progress")
    again = sonomap("register-batch", cases, "--out", ds, "--no-progress")  # its own dataset: resumes
    assert again.stdout.startswith("registered 0, already done 2"), again.stdout
    return ds


def _foreign(root: Path, kind: str, busi: Path) -> tuple[Path, str]:
    """A folder register-batch did not make, and the name its error should give."""
    folder = root / kind
    (folder / "images").mkdir(parents=True)
    shutil.copy(busi / "images" / "benign_041.png", folder / "images")
    if kind == "busi":
        (folder / "masks").mkdir()
        shutil.copy(busi / "masks" / "benign_041.png", folder / "masks")
        return folder, "holds masks, which register-batch does not write"
    if kind == "run":
        (folder / "best.pt").write_bytes(b"checkpoint")
        return folder, "holds best.pt, which register-batch does not write"
    return folder, "holds images but neither registration/ nor batch_report.json"


@pytest.mark.parametrize("kind", ["images", "busi", "run"])
def test_register_batch_refuses_a_folder_it_did_not_make_and_moves_nothing(
    cases, busi_sample, tmp_path, kind
):
    folder, held = _foreign(tmp_path, kind, busi_sample)
    before = tree_bytes(folder, folders=True)
    err = _one_line_error(sonomap("register-batch", cases, "--out", folder, "--no-progress", check=False))
    assert f"--out {folder}: {held}" in err and "not a register-batch dataset" in err
    assert tree_bytes(folder, folders=True) == before  # no removed/, no cases.csv, the image in place


def test_cases_dataset_must_be_a_register_batch_dataset(cases, dataset, busi_sample, tmp_path):
    listing = sonomap("cases", cases, "--dataset", dataset).stdout.splitlines()
    assert listing[-1].startswith("2 case(s): 2 registered"), listing
    folder, held = _foreign(tmp_path, "images", busi_sample)
    empty = tmp_path / "empty"
    empty.mkdir()
    wrong = {
        tmp_path / "typo": "folder not found",
        folder: held,
        empty: "is empty",
        dataset / "cases.csv": "is a file",
    }
    for path, what in wrong.items():
        err = _one_line_error(sonomap("cases", cases, "--dataset", path, check=False))
        assert f"--dataset {path}: {what}" in err


def test_cases_given_a_file_says_it_is_a_file(cases):
    case_yaml = sorted(cases.glob("*/case.yaml"))[0]
    err = _one_line_error(sonomap("cases", case_yaml, check=False))
    assert f"{case_yaml}: is a file, not a cases folder" in err


def test_register_batch_given_a_file_as_cases_folder_says_it_is_a_file_and_writes_nothing(cases, tmp_path):
    case_yaml = sorted(cases.glob("*/case.yaml"))[0]
    out = tmp_path / "new"
    err = _one_line_error(sonomap("register-batch", case_yaml, "--out", out, "--no-progress", check=False))
    assert f"{case_yaml}: is a file, not a cases folder" in err
    assert not out.exists()


def test_register_batch_on_a_folder_with_no_case_yet_succeeds_and_touches_nothing(dataset, tmp_path):
    # a day with no biopsy captured: `sonomap cases` lists 0 cases, and a nightly register-batch (or
    # configs/biopsy-loop.sh under set -e) must not fail on it, nor touch the dataset
    empty = tmp_path / "cases"
    (empty / ".capture.host-1.partial").mkdir(parents=True)  # a capture still being written is no case
    assert sonomap("cases", empty).stdout.splitlines()[-1].startswith("0 case(s)")
    before = tree_bytes(dataset, folders=True)
    for out in (dataset, tmp_path / "new"):
        result = sonomap("register-batch", empty, "--out", out, "--no-progress")
        assert result.stdout.strip() == f"0 case(s) under {empty}: nothing to register; {out} not touched"
    assert tree_bytes(dataset, folders=True) == before and not (tmp_path / "new").exists()
    err = _one_line_error(sonomap("register-batch", tmp_path / "typo", "--out", dataset, check=False))
    assert f"{tmp_path / 'typo'}: cases folder not found" in err


@pytest.mark.parametrize(
    ("name", "kind"), [("split_history.csv", "file"), ("cases.csv", "file"), ("removed", "folder")]
)
def test_register_batch_names_one_of_its_own_names_held_by_the_other_kind(cases, tmp_path, name, kind):
    """A folder where register-batch writes a file (or a file where it makes a folder) is refused as
    that, not as something register-batch does not write."""
    out = tmp_path / "new"
    out.mkdir()
    (out / name).mkdir() if kind == "file" else (out / name).write_text("x")
    err = _one_line_error(sonomap("register-batch", cases, "--out", out, "--no-progress", check=False))
    assert f"--out {out}: holds {name}, which is not the {kind} register-batch writes there" in err
