"""prepare-busi's split unit and label check: groups of several frames (cine frames of one lesion)
drain val and test under the default per-image rule, so that rule refuses, naming --split-unit group,
which draws the groups themselves; and no split is written without a label the kept images hold."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli import sonomap

from edge_runtime.case_split import SPLITS
from edge_runtime.errors import ConfigError
from training.busi import prepare_busi

FRAMES = 3  # frames per lesion: a group of 3 reaches test only if all three drew test


def _sample_ids(busi_sample: Path, label: str) -> list[str]:
    with open(busi_sample / "index.csv", newline="") as fh:
        return sorted(r["id"] for r in csv.DictReader(fh) if r["label"] == label)


def _busi_with_frames(busi_sample: Path, out: Path, lesions: dict[str, tuple[list[str], int]]) -> Path:
    """A BUSI-layout folder: per label, (sample ids, frames each); each id is written as FRAMES
    near-duplicate frames (itself plus copies with a little noise, as consecutive frames differ)."""
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True)
    rows = [["id", "label"]]
    for label, (ids, frames) in lesions.items():
        for sid in ids:
            image = cv2.imread(str(busi_sample / "images" / f"{sid}.png"), cv2.IMREAD_GRAYSCALE)
            mask = cv2.imread(str(busi_sample / "masks" / f"{sid}.png"), cv2.IMREAD_GRAYSCALE)
            for k in range(frames):
                noise = rng.normal(0, 3, image.shape) if k else 0
                frame = np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8)
                cv2.imwrite(str(out / "images" / f"{sid}_f{k}.png"), frame)
                cv2.imwrite(str(out / "masks" / f"{sid}_f{k}.png"), mask)
                rows.append([f"{sid}_f{k}", label])
    with open(out / "index.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return out


def _cases(out: Path) -> list[dict]:
    with open(out / "cases.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def cine_busi(tmp_path_factory, busi_sample) -> Path:
    """5 benign and 5 malignant lesions of 3 frames each (30 images, 10 groups)."""
    benign, malignant = _sample_ids(busi_sample, "benign")[:5], _sample_ids(busi_sample, "malignant")[:5]
    out = tmp_path_factory.mktemp("cine") / "busi"
    return _busi_with_frames(busi_sample, out, {"benign": (benign, FRAMES), "malignant": (malignant, FRAMES)})


def test_groups_of_frames_refuse_the_per_image_split_naming_the_group_unit(cine_busi, tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(ConfigError, match=r"would be empty .*--split-unit group") as exc:
        prepare_busi(cine_busi, out, seed=0, same_lesion=None)
    assert "lower --phash-max" not in str(exc.value) and "\n" not in str(exc.value)
    assert not out.exists()


def test_the_group_unit_splits_whole_groups_with_both_labels_everywhere(cine_busi, tmp_path):
    out = tmp_path / "ds"
    run = sonomap(
        "prepare-busi", "--busi", cine_busi, "--out", out, "--same-lesion", "none", "--split-unit", "group"
    )
    assert "split by group" in run.stdout, run.stdout
    rows = _cases(out)
    assert len(rows) == 10 * FRAMES
    split_of_case: dict[str, set[str]] = {}
    labels: dict[str, set[str]] = {name: set() for name in SPLITS}
    for row in rows:
        split_of_case.setdefault(row["case_id"], set()).add(row["split"])
        labels[row["split"]].add(row["id"].split("_")[0])
    assert len(split_of_case) == 10 and all(len(s) == 1 for s in split_of_case.values())
    assert all(labels[name] == {"benign", "malignant"} for name in SPLITS), labels


def test_a_split_without_one_label_is_refused_before_anything_is_written(busi_sample, tmp_path):
    """6 single benign images and 4 malignant lesions of 3 frames: per image, val and test draw 2
    and 1 malignant images, too few for a whole group, so neither holds a malignant image."""
    malignant = _sample_ids(busi_sample, "malignant")[:4]
    busi = _busi_with_frames(
        busi_sample,
        tmp_path / "busi",
        {"benign": (_sample_ids(busi_sample, "benign"), 1), "malignant": (malignant, FRAMES)},
    )
    out = tmp_path / "ds"
    with pytest.raises(
        ConfigError, match=r"split val would hold no malignant image .*another --seed or --split-unit group"
    ):
        prepare_busi(busi, out, seed=0, same_lesion=None)
    assert not out.exists()
    counts = prepare_busi(busi, out, seed=0, same_lesion=None, split_unit="group")
    assert all(set(counts[name]) == {"benign", "malignant"} for name in SPLITS), counts
    assert counts["split_unit"] == "group"


def test_a_set_with_one_label_is_split_as_it_is(busi_sample, tmp_path):
    busi = _busi_with_frames(
        busi_sample, tmp_path / "busi", {"malignant": (_sample_ids(busi_sample, "malignant")[:10], 1)}
    )
    counts = prepare_busi(busi, tmp_path / "ds", seed=0, same_lesion=None)
    assert all(set(counts[name]) == {"malignant"} for name in SPLITS), counts


def test_an_unknown_split_unit_is_refused(busi_sample, tmp_path):
    with pytest.raises(ConfigError, match="--split-unit 'patient'"):
        prepare_busi(busi_sample, tmp_path / "ds", split_unit="patient")
    run = sonomap(
        "prepare-busi",
        "--busi",
        busi_sample,
        "--out",
        tmp_path / "ds",
        "--split-unit",
        "patient",
        check=False,
    )
    assert run.returncode != 0 and "--split-unit" in run.stderr
    assert not (tmp_path / "ds").exists()
