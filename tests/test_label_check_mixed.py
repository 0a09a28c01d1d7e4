"""A split that holds cancer in some labels and 0/255 lesion masks in others: the masks' lesions would
be read as unknown and silently ignored while the other labels are scored. `evaluate` and `train` name
every such label in one warning and go on (training/label_check.py says why a warning, not a refusal);
a needle-tract label (255 around a thin known band, as `register` writes it) is never named. Real
commands on copies of the vendored BUSI sample's dataset."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml
from export_fixtures import shared_tiny_onnx
from test_label_contract import TINY

from edge_runtime.cli import main as sonomap
from training.data import CANCER, IGNORE_INDEX, read_cases
from training.train import run

LOGGER = "sonomap.labels"


def _mixed(busi_dataset: Path, tmp_path: Path, split: str, n: int) -> tuple[Path, list[Path], Path]:
    """A copy of the dataset where the first N cancer labels of SPLIT are saved as 0/255 masks, and
    one benign label of SPLIT is a needle-tract band; the rest keep their 0/1 cancer.
    Returns (data, the 0/255 labels, the band label)."""
    data = tmp_path / "data"
    shutil.copytree(busi_dataset, data)
    masks, band, kept = [], None, 0
    for sample in read_cases(data):
        if sample.split != split:
            continue
        label = cv2.imread(str(sample.label), cv2.IMREAD_UNCHANGED)
        if (label == CANCER).any() and len(masks) < n:
            cv2.imwrite(str(sample.label), np.where(label == CANCER, IGNORE_INDEX, label).astype(np.uint8))
            masks.append(sample.label)
        elif (label == CANCER).any():
            kept += 1
        elif band is None:
            tract = np.full_like(label, IGNORE_INDEX)
            tract[label.shape[0] // 2 - 3 : label.shape[0] // 2 + 3] = 0
            cv2.imwrite(str(sample.label), tract)
            band = sample.label
    assert len(masks) == n and kept and band is not None, f"split {split}: too few labels for the test"
    return data, masks, band


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_evaluate_names_each_0_255_label_of_a_split_with_cancer(busi_dataset, tmp_path, caplog):
    data, masks, band = _mixed(busi_dataset, tmp_path, "test", 1)
    out = tmp_path / "report"
    with caplog.at_level(logging.WARNING, LOGGER):
        code = sonomap(
            ["evaluate", "--checkpoint", str(shared_tiny_onnx()), "--data", str(data), "--out", str(out)]
        )
    assert code == 0 and (out / "summary.json").is_file()  # a warning: the split is still evaluated
    (line,) = _warnings(caplog)
    assert "\n" not in line and "split 'test': 1 label(s)" in line, line
    # named inside the dataset (data/labels/<id>.png), never by the folders above it
    assert all(f"data/labels/{mask.name} holds only 0 and 255" in line for mask in masks), line
    assert str(tmp_path) not in line and f"labels/{band.name}" not in line  # the needle-tract exception
    assert json.loads((out / "summary.json").read_text())["n_positive"] > 0


def test_train_names_each_0_255_label_of_its_val_split(busi_dataset, tmp_path, caplog):
    data, masks, band = _mixed(busi_dataset, tmp_path, "val", 2)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    with caplog.at_level(logging.WARNING, LOGGER):
        run(config, data, tmp_path / "run", show_progress=False, device="cpu")
    (line,) = _warnings(caplog)
    assert "split 'val': 2 label(s)" in line and all(f"data/labels/{m.name}" in line for m in masks), line
    assert str(tmp_path) not in line and f"labels/{band.name}" not in line
    assert (tmp_path / "run" / "best.pt").is_file()
