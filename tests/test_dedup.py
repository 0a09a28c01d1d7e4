"""Leak-free BUSI preparation: near-duplicates form one case (found alike in 8- and 16-bit images),
label conflicts are left out, and the contact sheet names an image it cannot read."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap
from PIL import Image

from edge_runtime.case_split import split_cases
from edge_runtime.errors import InputError
from edge_runtime.near_duplicates import (
    DHASH_MAX,
    PHASH_MAX,
    DuplicatePair,
    find_duplicates,
    group_ids,
    group_splits,
    merge_cases,
)
from training.busi import prepare_busi
from training.data import read_cases
from training.dedup_sheet import write_contact_sheet

SCAN = "malignant_002"  # re-saved below as a brighter, slightly cropped copy
CONFLICT = "benign_041"  # filed again below as malignant
SCALE_8_TO_16 = 257  # 255 * 257 = 65535: an 8-bit value as the same 16-bit brightness


def _copy_with(busi: Path, out: Path, extra: list[tuple[str, str, np.ndarray, np.ndarray]]) -> None:
    shutil.copytree(busi, out)
    with open(out / "index.csv", "a", newline="") as fh:
        writer = csv.writer(fh)
        for sid, label, image, mask in extra:
            cv2.imwrite(str(out / "images" / f"{sid}.png"), image)
            cv2.imwrite(str(out / "masks" / f"{sid}.png"), mask)
            writer.writerow([sid, label, image.shape[1], image.shape[0], int((mask > 0).sum()), f"{sid}.png"])


@pytest.fixture(scope="module")
def busi_with_duplicates(tmp_path_factory, busi_sample) -> Path:
    """The vendored sample plus a near-duplicate of SCAN and CONFLICT filed under the other label."""
    scan = cv2.imread(str(busi_sample / "images" / f"{SCAN}.png"), cv2.IMREAD_GRAYSCALE)
    scan_mask = cv2.imread(str(busi_sample / "masks" / f"{SCAN}.png"), cv2.IMREAD_GRAYSCALE)
    near = cv2.convertScaleAbs(scan[4:-4, 6:-6], alpha=1.1, beta=8)  # re-exported: cropped, brighter
    benign = cv2.imread(str(busi_sample / "images" / f"{CONFLICT}.png"), cv2.IMREAD_GRAYSCALE)
    benign_mask = cv2.imread(str(busi_sample / "masks" / f"{CONFLICT}.png"), cv2.IMREAD_GRAYSCALE)
    out = tmp_path_factory.mktemp("busi") / "busi"
    _copy_with(
        busi_sample,
        out,
        [
            ("malignant_900", "malignant", near, scan_mask[4:-4, 6:-6]),
            ("malignant_901", "malignant", benign, benign_mask),
        ],
    )
    return out


def test_hashes_find_the_planted_pairs_and_nothing_else(busi_with_duplicates):
    paths = {p.stem: p for p in (busi_with_duplicates / "images").glob("*.png")}
    pairs = {(p.a, p.b) for p in find_duplicates(paths)}
    assert pairs == {(CONFLICT, "malignant_901"), (SCAN, "malignant_900")}


def test_prepare_busi_groups_duplicates_and_leaves_out_conflicts(busi_with_duplicates, tmp_path):
    out = tmp_path / "ds"
    counts = prepare_busi(busi_with_duplicates, out, seed=0)
    assert counts["excluded"] == [CONFLICT, "malignant_901"] and counts["duplicate_pairs"] == 2
    samples = {s.id: s for s in read_cases(out)}
    assert len(samples) == 30  # 32 images, two left out
    assert CONFLICT not in samples and "malignant_901" not in samples
    assert not (out / "images" / f"{CONFLICT}.png").exists()
    # the duplicate shares its case and its split with the scan it repeats
    assert samples["malignant_900"].case_id == samples[SCAN].case_id == SCAN
    splits = {r["id"]: r["split"] for r in csv.DictReader(open(out / "cases.csv"))}
    assert splits["malignant_900"] == splits[SCAN]
    excluded = list(csv.DictReader(open(out / "excluded.csv")))
    assert {r["id"] for r in excluded} == {CONFLICT, "malignant_901"}
    assert {r["label"] for r in excluded} == {"benign", "malignant"}
    dups = list(csv.DictReader(open(out / "duplicates.csv")))
    assert {(r["id_a"], r["id_b"]) for r in dups} == {(CONFLICT, "malignant_901"), (SCAN, "malignant_900")}
    sheet = cv2.imread(str(out / "duplicates.png"))
    assert sheet is not None and sheet.shape[0] >= 200  # the contact sheet to check by eye
    # --no-dedup: the old one-case-per-image split, everything kept
    leaky = prepare_busi(busi_with_duplicates, tmp_path / "leaky", seed=0, dedup=False)
    assert leaky["excluded"] == [] and len(read_cases(tmp_path / "leaky")) == 32
    # one image, one case: the split is the shared splitter's (the one register-batch uses), by label
    labels = {r["id"]: r["label"] for r in csv.DictReader(open(busi_with_duplicates / "index.csv"))}
    leaky_split = {s.case_id: s.split for s in read_cases(tmp_path / "leaky")}
    assert leaky_split == split_cases(list(labels), seed=0, strata=labels)


def test_a_16_bit_copy_of_the_release_gives_the_same_pairs_and_dataset(busi_with_duplicates, tmp_path):
    """The same pictures saved as 16-bit PNGs (value * 257): hashed as the 8-bit gray image that is
    written, not clipped to black and white, so grouping and leaving out conflicts do not change."""
    deep = tmp_path / "busi16"
    shutil.copytree(busi_with_duplicates, deep)
    for path in (deep / "images").glob("*.png"):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(path), gray.astype(np.uint16) * SCALE_8_TO_16)
    assert cv2.imread(str(deep / "images" / f"{SCAN}.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    shallow_paths = {p.stem: p for p in (busi_with_duplicates / "images").glob("*.png")}
    deep_paths = {p.stem: p for p in (deep / "images").glob("*.png")}
    assert find_duplicates(deep_paths) == find_duplicates(shallow_paths)  # pairs and both distances
    counts = prepare_busi(busi_with_duplicates, tmp_path / "ds8", seed=0)
    assert prepare_busi(deep, tmp_path / "ds16", seed=0) == counts
    for name in ("cases.csv", "duplicates.csv", "excluded.csv"):
        assert (tmp_path / "ds16" / name).read_text() == (tmp_path / "ds8" / name).read_text(), name


def test_the_contact_sheet_names_an_image_it_cannot_read(tmp_path, busi_sample):
    """PCX bytes under .png: Pillow reads them, OpenCV does not; the sheet's reader says which file."""
    good = busi_sample / "images" / f"{CONFLICT}.png"
    bad = tmp_path / "malignant_901.png"
    with Image.open(good) as image:
        image.save(bad, format="PCX")
    pair = DuplicatePair(CONFLICT, "malignant_901", 0, 0)
    sheet = tmp_path / "duplicates.png"
    with pytest.raises(InputError, match=f"^{re.escape(str(bad))}: unreadable image"):
        write_contact_sheet([pair], {CONFLICT: good, "malignant_901": bad}, sheet)
    assert not sheet.exists()


def test_a_group_never_spans_two_splits_and_test_only_loses_images():
    groups = group_ids(["a", "b", "c", "d"], [_pair("a", "b"), _pair("b", "c")])
    assert groups == {"a": "a", "b": "a", "c": "a", "d": "d"}
    split = group_splits({"a": "test", "b": "val", "c": "test", "d": "test"}, groups)
    assert split == {"a": "val", "d": "test"}  # the earliest split of any member wins


def test_register_batch_patients_joined_by_a_duplicate_become_one_case():
    case_of = {"img1": "P1", "img2": "P2", "img3": "P3", "img4": "P2"}
    groups = {"img1": "img1", "img2": "img1", "img3": "img3", "img4": "img4"}
    merged = merge_cases(case_of, groups)
    assert merged == {"img1": "P1+P2", "img2": "P1+P2", "img3": "P3", "img4": "P1+P2"}


def test_cli_help_shows_the_thresholds_without_importing_imagehash():
    code = (
        "import sys, argparse\n"
        "from training import commands\n"
        "p = argparse.ArgumentParser(); sub = p.add_subparsers()\n"
        "commands.register(sub)\n"
        "print('imagehash' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # --help stays light
    help_run = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "prepare-busi", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    help_text = " ".join(help_run.stdout.split())  # argparse wraps lines
    assert f"(default {PHASH_MAX})" in help_text and f"(default {DHASH_MAX})" in help_text


def _pair(a: str, b: str):
    from edge_runtime.near_duplicates import DuplicatePair

    return DuplicatePair(a, b, 0, 0)


FULL_SET_SCANS = (("malignant_007", "malignant_008", "malignant_009"), ("malignant_018", "malignant_116"))
FULL_SET_CONFLICT = ("benign_042", "malignant_051")  # one image filed under both labels


@pytest.mark.busi
def test_the_full_busi_set_keeps_each_repeated_scan_in_one_case_and_leaves_out_the_conflict(
    busi_full, tmp_path
):
    """The real set's known repeats (Pawłowska et al. 2023, and a perceptual hash over this subset):
    each scan is one case in one split, and the image filed as benign and as malignant is left out."""
    counts = prepare_busi(busi_full, tmp_path / "ds", seed=0)
    with open(tmp_path / "ds" / "cases.csv", newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    for scan in FULL_SET_SCANS:
        assert len({rows[i]["case_id"] for i in scan}) == 1, scan
    assert set(FULL_SET_CONFLICT) <= set(counts["excluded"]) and not set(FULL_SET_CONFLICT) & set(rows)
    splits_of_case: dict[str, set[str]] = {}
    for row in rows.values():
        splits_of_case.setdefault(row["case_id"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in splits_of_case.values())
    assert len(rows) + len(counts["excluded"]) == len((busi_full / "index.csv").read_text().splitlines()) - 1


@pytest.mark.parametrize("with_duplicates", [False, True])
def test_the_command_names_the_contact_sheet_only_when_it_wrote_one(
    busi_sample, busi_with_duplicates, tmp_path, with_duplicates
):
    busi = busi_with_duplicates if with_duplicates else busi_sample
    out = tmp_path / "dataset"
    run = sonomap("prepare-busi", "--busi", busi, "--out", out, "--same-lesion", "none")
    assert (out / "duplicates.png").is_file() is with_duplicates
    assert ("duplicates.png" in run.stdout) is with_duplicates, run.stdout
    assert "duplicates.csv" in run.stdout and "excluded.csv" in run.stdout
