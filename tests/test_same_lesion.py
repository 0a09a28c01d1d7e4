"""Same-lesion pairs listed by eye join their images into one case, like hash near-duplicates."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.errors import InputError
from edge_runtime.near_duplicates import find_duplicates
from training.busi import prepare_busi
from training.same_lesion import SHIPPED_LIST, read_same_lesion

HEADER = "id_a,id_b,note\n"


def _rows(ds: Path) -> dict[str, dict]:
    with open(ds / "cases.csv", newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def _split_apart_pair(busi: Path, tmp_path: Path) -> tuple[str, str]:
    """Two malignant images of the sample that the hashes keep apart and seed 0 puts in different
    splits (one of them in test): what a listed same-lesion pair must change."""
    prepare_busi(busi, tmp_path / "plain", seed=0, same_lesion=None)
    rows = _rows(tmp_path / "plain")
    by_split: dict[str, list[str]] = {}
    for sid, row in sorted(rows.items()):
        if sid.startswith("malignant") and row["case_id"] == sid:
            by_split.setdefault(row["split"], []).append(sid)
    return by_split["train"][0], by_split["test"][0]


def test_a_listed_pair_becomes_one_case_in_one_split(busi_sample, tmp_path):
    a, b = _split_apart_pair(busi_sample, tmp_path)
    images = {sid: busi_sample / "images" / f"{sid}.png" for sid in (a, b)}
    assert not find_duplicates(images), "the hashes already join the pair: the test shows nothing"
    listed = tmp_path / "same.csv"
    listed.write_text(HEADER + f"{b},{a},same mass; the probe moved\nmalignant_999,{a},not in this set\n")
    counts = prepare_busi(busi_sample, tmp_path / "ds", seed=0, same_lesion=listed)
    rows = _rows(tmp_path / "ds")
    assert rows[a]["case_id"] == rows[b]["case_id"] and rows[a]["split"] == rows[b]["split"] == "train"
    assert counts["same_lesion_pairs"] == 1  # the pair with an image not at hand is left out
    with open(tmp_path / "ds" / "duplicates.csv", newline="") as fh:
        found = {(r["id_a"], r["id_b"]): r["found_by"] for r in csv.DictReader(fh)}
    assert found[(b, a)] == "list" and set(found.values()) <= {"hash", "list"}


@pytest.mark.parametrize(
    "text, where",
    [
        ("a,b\nmalignant_001,malignant_002\n", "needs the header"),
        (HEADER + "malignant_001,,seen\n", ":2: needs an id_a"),
        (HEADER + "malignant_001,malignant_002,ok\nmalignant_003,malignant_003,self\n", ":3: "),
        (HEADER + "malignant_001,malignant_002,note,extra\n", ":2: needs an id_a"),
    ],
)
def test_a_malformed_list_is_refused_naming_file_and_line(tmp_path, text, where):
    path = tmp_path / "same.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"{path}.*{where}"):
        read_same_lesion(path)


def test_the_shipped_list_reads_and_the_cli_can_leave_it_out(busi_sample, tmp_path):
    assert len(read_same_lesion(SHIPPED_LIST)) >= 5
    run = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "prepare-busi", "--busi", str(busi_sample)]
        + ["--out", str(tmp_path / "ds"), "--same-lesion", "none"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "0 listed same-lesion pairs" in run.stdout


@pytest.mark.busi
def test_no_test_image_of_the_full_set_has_a_listed_lesion_in_another_split(busi_full, tmp_path):
    prepare_busi(busi_full, tmp_path / "ds", seed=0)
    rows = _rows(tmp_path / "ds")
    pairs = read_same_lesion(SHIPPED_LIST)
    assert all(rows[a]["case_id"] == rows[b]["case_id"] for a, b in pairs if a in rows and b in rows)
    tested = [(a, b) for a, b in pairs if "test" in {rows[a]["split"], rows[b]["split"]}]
    assert not tested  # each listed pair sits whole in train or val: the test split only lost images


def test_a_list_saved_in_another_encoding_is_refused_naming_the_line(tmp_path):
    """The shared CSV text reader: a spreadsheet's byte-order mark is accepted, a byte that is not
    UTF-8 is one error naming the file and its line."""
    path = tmp_path / "same.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"malignant_001,malignant_002,ok\n")
    assert read_same_lesion(path) == [("malignant_001", "malignant_002")]
    path.write_bytes(HEADER.encode() + b"malignant_001,malignant_002,m\xe4ss\n")
    with pytest.raises(
        InputError, match=rf"{path}:2: not UTF-8 text; save it as UTF-8 CSV \(id_a,id_b,note\)"
    ):
        read_same_lesion(path)
