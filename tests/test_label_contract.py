"""Labels are 0 tissue, 1 cancer, 255 unknown. A lesion mask saved as 0/255 passes the value check but
its lesion reads as unknown: `evaluate`, `train`'s validation split and `calibrate` refuse a split
without a cancer pixel whose labels look like that, in one line naming cases.csv, the split and the
label file with the values found, before anything is written. `calibrate` (temperature, curve,
mask filter) refuses any split without a cancer pixel, since nothing can be fitted, and leaves the
manifest as it was. A split of images without cancer whose labels are needle-tract bands (255
around a thin band of 0, as `register` writes them) is still evaluated. Real commands on copies of
the vendored BUSI sample's dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from cli import one_line_error
from export_fixtures import copy_model, shared_checkpoint, shared_tiny_onnx

from edge_runtime.cli import main as sonomap
from edge_runtime.errors import InputError
from edge_runtime.manifest import manifest_path
from edge_runtime.privacy import redact
from training.data import CANCER, IGNORE_INDEX, read_cases
from training.label_check import looks_like_0_255_mask
from training.train import run

MASK_VALUES = "holds only 0 and 255"
TINY = {
    "name": "tiny-labels",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}


def _dataset(busi_dataset: Path, tmp_path: Path, split: str | None, cancer_as: int) -> Path:
    """A copy of the dataset with every cancer pixel of SPLIT (every split: None) written as CANCER_AS."""
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    for sample in read_cases(data):
        if split is None or sample.split == split:
            label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(sample.label), np.where(label == CANCER, cancer_as, label).astype(np.uint8))
    return data


def _first_mask(data: Path, split: str) -> Path:
    """The first label of SPLIT (in cases.csv order) that held a lesion, now 0/255."""
    for sample in read_cases(data):
        label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
        if sample.split == split and (label == IGNORE_INDEX).any():
            return sample.label
    raise AssertionError(f"no 0/255 label in split {split}")


def test_the_mask_signature_is_a_lesion_on_labelled_background_not_a_needle_tract():
    mask = np.zeros((40, 40), np.uint8)
    mask[10:20, 10:20] = IGNORE_INDEX  # a lesion saved as 255
    tract = np.full((40, 40), IGNORE_INDEX, np.uint8)
    tract[18:22, :] = 0  # register: known tissue along the needle, unknown elsewhere
    assert looks_like_0_255_mask(mask)
    assert not looks_like_0_255_mask(tract)
    assert not looks_like_0_255_mask(np.where(mask == IGNORE_INDEX, CANCER, 0).astype(np.uint8))
    assert not looks_like_0_255_mask(np.zeros((40, 40), np.uint8))


def test_evaluate_refuses_0_255_masks_naming_the_file_and_its_values(busi_dataset, tmp_path, capsys):
    data = _dataset(busi_dataset, tmp_path, None, IGNORE_INDEX)
    out = tmp_path / "report"
    code = sonomap(
        ["evaluate", "--checkpoint", str(shared_tiny_onnx()), "--data", str(data), "--out", str(out)]
    )
    err = one_line_error(capsys, code)
    assert redact(f"{data / 'cases.csv'}: split 'test' has no cancer pixel") in err, err
    assert redact(f"{_first_mask(data, 'test')} {MASK_VALUES}") in err, err
    assert not out.exists()


def test_evaluate_still_scores_cancer_free_needle_tract_labels(busi_dataset, tmp_path, capsys):
    data = _dataset(busi_dataset, tmp_path, None, 0)
    for sample in read_cases(data):
        label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
        band = np.full_like(label, IGNORE_INDEX)
        band[label.shape[0] // 2 - 3 : label.shape[0] // 2 + 3] = 0  # known tissue along the needle only
        cv2.imwrite(str(sample.label), band)
    out = tmp_path / "report"
    code = sonomap(
        ["evaluate", "--checkpoint", str(shared_tiny_onnx()), "--data", str(data), "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["n_positive"] == 0


def test_train_refuses_a_val_split_of_0_255_masks_before_training(busi_dataset, tmp_path):
    data = _dataset(busi_dataset, tmp_path, "val", IGNORE_INDEX)  # train keeps its 0/1 labels
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    with pytest.raises(InputError, match="split 'val' has no cancer pixel") as caught:
        run(config, data, out, show_progress=False, device="cpu")
    assert f"{_first_mask(data, 'val')} {MASK_VALUES}" in str(caught.value)
    assert not out.exists()


@pytest.mark.parametrize("method", ["temperature", "curve", "mask-filter"])
@pytest.mark.parametrize("cancer_as", [0, IGNORE_INDEX], ids=["benign only", "0/255 masks"])
def test_calibrate_refuses_a_split_without_cancer_and_keeps_the_manifest(
    method, cancer_as, busi_dataset, tmp_path, capsys
):
    data = _dataset(busi_dataset, tmp_path, "val", cancer_as)
    ck = copy_model(shared_checkpoint(), tmp_path / "run")
    before = manifest_path(ck).read_bytes()
    code = sonomap(["calibrate", "--method", method, "--checkpoint", str(ck), "--data", str(data)])
    err = one_line_error(capsys, code)
    assert redact(f"{data / 'cases.csv'}: split 'val' has no cancer pixel (no label holds 1)") in err, err
    assert (MASK_VALUES in err) == (cancer_as == IGNORE_INDEX), err  # the mask hint only for 0/255
    assert manifest_path(ck).read_bytes() == before
