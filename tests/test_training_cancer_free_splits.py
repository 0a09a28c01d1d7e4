"""Train and validation splits with no cancer pixel, as a site hands them over: lesion masks saved as
0/255 (the usual export of a binary mask; 255 is "unknown" in the dataset layout, so the lesion would be
ignored), or a train split of benign images only. `sonomap train` refuses a train split without a cancer
pixel in one line before anything is written, naming cases.csv and a 0/255 label file; a validation
split without cancer selects best.pt by mean Dice and records that metric by its own name, not the
configured one. Real runs of `sonomap train` on the vendored BUSI sample (48x48, width 4)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from cli import sonomap

from edge_runtime.errors import InputError
from edge_runtime.manifest import load_manifest
from training.data import CANCER, IGNORE_INDEX, read_cases
from training.engine import FALLBACK_SELECT_METRIC
from training.train import run

TINY = {
    "name": "tiny-cancer-free",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 48, "input_width": 48, "mean": 0.3, "std": 0.2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}
EXIT_USER_ERROR = 2
NO_CANCER = "split 'train' has no cancer pixel (no label holds 1)"
MASK_HINT = "holds only 0 and 255"


def _config(folder: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _recode(data: Path, split: str | None, cancer_as: int) -> None:
    """Write every cancer pixel of SPLIT's labels (every split's when None) as CANCER_AS."""
    for sample in read_cases(data):
        if split is None or sample.split == split:
            label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(sample.label), np.where(label == CANCER, cancer_as, label).astype(np.uint8))


def _copy(busi_dataset: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    return data


def test_lesion_masks_saved_as_0_255_are_refused_in_one_line_before_training(tmp_path, busi_dataset):
    data = _copy(busi_dataset, tmp_path)
    _recode(data, None, IGNORE_INDEX)  # 0/255 masks: every value is one the layout allows
    out = tmp_path / "run"
    args = ("--config", _config(tmp_path), "--data", data, "--out", out, "--no-progress", "--device", "cpu")
    result = sonomap("train", *args, check=False)
    err = result.stderr.strip()
    assert result.returncode == EXIT_USER_ERROR, result.stderr[-2000:]
    assert "\n" not in err and "Traceback" not in err, err
    assert f"{data / 'cases.csv'}: {NO_CANCER}" in err, err
    assert f"{data / 'labels'}/" in err and MASK_HINT in err, err  # names a 0/255 label file
    assert not out.exists()


def test_a_train_split_of_images_without_cancer_is_refused(tmp_path, busi_dataset):
    data = _copy(busi_dataset, tmp_path)
    _recode(data, "train", 0)  # benign images only: 0/1 labels without a 1
    out = tmp_path / "run"
    with pytest.raises(InputError, match=NO_CANCER.replace("(", r"\(").replace(")", r"\)")) as caught:
        run(_config(tmp_path), data, out, show_progress=False, device="cpu")
    assert MASK_HINT not in str(caught.value)  # no 255 anywhere: no mask advice
    # what to do instead, with the split's size: the splits keep each patient where first placed
    n_train = sum(sample.split == "train" for sample in read_cases(data))
    assert f"its {n_train} image(s) are all cancer-free: register cases with cancer" in str(caught.value)
    assert "or move one patient's rows to 'train' in cases.csv" in str(caught.value)
    assert not out.exists()


def test_a_val_split_without_cancer_selects_by_mean_dice_and_records_that_name(tmp_path, busi_dataset):
    data = _copy(busi_dataset, tmp_path)
    _recode(data, "val", 0)
    out = tmp_path / "run"
    summary = run(_config(tmp_path), data, out, show_progress=False, device="cpu")  # dice_pos_mean configured
    assert summary["best"]["metric"] == FALLBACK_SELECT_METRIC, summary["best"]
    assert json.loads((out / "summary.json").read_text())["best"]["metric"] == FALLBACK_SELECT_METRIC
    metrics = load_manifest(out / "best.pt").metrics
    assert metrics["select_metric"] == FALLBACK_SELECT_METRIC
    assert math.isnan(metrics["val_dice_pos_mean"]) and metrics["val_n_positive"] == 0
    assert summary["best"]["value"] == pytest.approx(metrics[f"val_{FALLBACK_SELECT_METRIC}"])


def test_a_cancer_free_split_is_evaluated_with_undefined_figures_never_nan(tmp_path, busi_dataset):
    """The shipped model on a test split of benign images only: the figures that have no images with
    cancer or no predicted pixel to average over read `undefined` in report.md and on the console."""
    data = _copy(busi_dataset, tmp_path)
    _recode(data, "test", 0)
    shipped = Path(__file__).resolve().parents[1] / "edge_runtime" / "models" / "default" / "model.onnx"
    out = tmp_path / "eval"
    res = sonomap("evaluate", "--checkpoint", shipped, "--data", data, "--split", "test", "--out", out)
    report = (out / "report.md").read_text()
    assert "undefined" in report and "undefined" in res.stdout, res.stdout
    tables = "\n".join(line for line in report.splitlines() if line.startswith("|"))  # not the policy text
    for text in (tables, res.stdout):
        assert not [w for w in text.replace("|", " ").split() if w.strip("+-[](),;").lower() == "nan"], text


def test_a_split_of_unlabelled_images_is_not_called_cancer_free(tmp_path, busi_dataset):
    """Every val label all 255 (unknown), as calibrate reads its split: the error said the images were
    all cancer-free and to register cases with cancer; they are unlabelled."""
    from training.label_check import read_checked

    data = _copy(busi_dataset, tmp_path)
    samples = [sample for sample in read_cases(data) if sample.split == "val"]
    for sample in samples:
        label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(sample.label), np.full_like(label, IGNORE_INDEX))
    with pytest.raises(InputError) as caught:
        read_checked(samples, data, "val", "so no temperature can be fitted on it")
    message = str(caught.value)
    assert f"its {len(samples)} image(s) have no labelled pixel at all (every pixel 255, unknown)" in message
    assert "cancer-free" not in message
