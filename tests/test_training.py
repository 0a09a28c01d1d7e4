"""Training stage on real BUSI images at tiny size: prepare-busi, train, resume, evaluate, errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from edge_runtime.errors import ConfigError, InputError
from edge_runtime.manifest import load_manifest
from training.busi import prepare_busi
from training.checkpoint import load_model, read_checkpoint
from training.data import read_cases, read_pair, select_split
from training.report_text import interval_text
from training.train import run

TINY = {
    "name": "tiny",
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 64, "input_width": 64, "mean": "auto", "std": "auto"},
    "train": {"epochs": 2, "batch_size": 4, "warmup_iters": 2, "lr": 3.0e-3},
}


def _sonomap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, busi_dataset, tiny_cfg) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    run(tiny_cfg, busi_dataset, out, deterministic=True, show_progress=False)
    return out


def test_prepare_busi_labels_and_split(busi_dataset, busi_sample, tmp_path):
    samples = read_cases(busi_dataset)
    assert len(samples) == 30
    index = {r["id"]: r["label"] for r in csv.DictReader(open(busi_sample / "index.csv"))}
    for s in samples:
        _, label = read_pair(s)
        mask = cv2.imread(str(busi_sample / "masks" / f"{s.id}.png"), cv2.IMREAD_GRAYSCALE)
        expected = (mask > 0) if index[s.id] == "malignant" else np.zeros_like(mask, bool)
        np.testing.assert_array_equal(label == 1, expected)  # benign masses are not cancer
        assert set(np.unique(label)) <= {0, 1}
    for split in ("train", "val", "test"):
        chosen = select_split(samples, split, busi_dataset)
        assert {index[s.id] for s in chosen} == {"malignant", "benign"}  # stratified
    assert len(select_split(samples, "train", busi_dataset)) == 21
    # same seed, same split; a case never sits in two splits (case_id = image id for BUSI)
    again = tmp_path / "again"
    prepare_busi(busi_sample, again, seed=0)
    assert (again / "cases.csv").read_text() == (busi_dataset / "cases.csv").read_text()


def test_train_writes_checkpoint_manifest_and_logs(trained):
    manifest = load_manifest(trained / "best.pt")  # verifies sha256
    assert manifest.arch == "unet_small" and (manifest.input_height, manifest.input_width) == (64, 64)
    assert [c.name for c in manifest.classes] == ["tissue", "cancer"]
    assert len(manifest.source["dataset_sha256"]) == 64 and len(manifest.source["config_sha256"]) == 64
    assert 0.0 <= manifest.metrics["val_dice_pos_mean"] <= 1.0
    rows = list(csv.DictReader(open(trained / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert float(rows[1]["train_loss"]) > 0
    assert len(list((trained / "tb").glob("events.out.tfevents.*"))) == 1  # TensorBoard scalars
    model, _ = load_model(trained / "best.pt")
    out = model(torch.zeros(1, 1, 64, 64))
    assert out.shape == (1, 2, 64, 64)
    state = read_checkpoint(trained / "last.pt")
    assert {"optimizer", "scheduler", "epoch", "rng", "best"} <= set(state)


def test_resume_continues_exactly(tmp_path, busi_dataset, tiny_cfg, trained):
    out = tmp_path / "resumed"
    run(tiny_cfg, busi_dataset, out, deterministic=True, show_progress=False, stop_after_epochs=1)
    assert read_checkpoint(out / "last.pt")["epoch"] == 0
    # interrupted after epoch 0, resumed: must equal the uninterrupted 2-epoch run bit for bit
    run(tiny_cfg, busi_dataset, out, resume=True, deterministic=True, show_progress=False)
    assert (out / "metrics.csv").read_text().count("\n") == 3
    a = read_checkpoint(out / "last.pt")["model"]
    b = read_checkpoint(trained / "last.pt")["model"]
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_resume_with_other_config_is_refused(tmp_path, busi_dataset, tiny_cfg, trained):
    cfg = yaml.safe_load(tiny_cfg.read_text())
    cfg["train"]["lr"] = 0.5
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="last.pt.*config mismatch"):
        run(other, busi_dataset, trained, resume=True, show_progress=False)


def test_evaluate_cli_writes_report(tmp_path, busi_dataset, trained):
    rep = tmp_path / "rep"
    res = _sonomap(
        "evaluate",
        "--checkpoint",
        str(trained / "best.pt"),
        "--data",
        str(busi_dataset),
        "--split",
        "test",
        "--out",
        str(rep),
    )
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(rep / "metrics.csv")))
    test_ids = {s.id for s in select_split(read_cases(busi_dataset), "test", busi_dataset)}
    assert {r["id"] for r in rows} == test_ids
    assert {
        "tp",
        "fp",
        "fn",
        "tn",
        "pixel_accuracy",
        "dice",
        "recall",
        "precision",
        "iou",
        "specificity",
    } <= set(rows[0])
    for r in rows:
        gray = cv2.imread(str(busi_dataset / "images" / f"{r['id']}.png"), cv2.IMREAD_GRAYSCALE)
        pred = cv2.imread(str(rep / "pred" / f"{r['id']}.png"), cv2.IMREAD_UNCHANGED)
        assert pred.shape == gray.shape and set(np.unique(pred)) <= {0, 255}
        assert int(r["tp"]) + int(r["fp"]) == int(np.count_nonzero(pred))  # no 255 labels in BUSI
    for png in (
        "confusion_counts.png",
        "confusion_normalised.png",
        "boxplot.png",
        "training_curves.png",
        "gallery.png",
    ):
        assert (rep / png).stat().st_size > 1000, png
    report = (rep / "report.md").read_text()
    assert "Empty-mask policy" in report
    summary = json.loads((rep / "summary.json").read_text(), parse_constant=_no_nan)  # strict JSON
    low, high = summary["ci95"]["dice_pooled"]
    assert low <= summary["dice_pooled"] <= high
    # the interval as the report words it: a resample with neither cancer nor a predicted pixel has
    # no pooled Dice and is left out, which the report counts after the bounds
    assert (
        f"| dice_pooled | {summary['dice_pooled']:.4f} | {interval_text(summary, 'dice_pooled')} |" in report
    )
    assert interval_text(summary, "dice_pooled").startswith(f"{low:.4f} – {high:.4f}")
    assert "dice (mean over images with cancer)" in res.stdout and "95 % CI" in res.stdout


def _no_nan(token: str):
    raise AssertionError(f"summary.json holds {token}, which is not JSON")


def _copy_dataset(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_bad_dataset_inputs_give_one_line_errors(tmp_path, busi_dataset, tiny_cfg):
    bad_value = _copy_dataset(busi_dataset, tmp_path / "bad_value")
    victim = read_cases(bad_value)[0]
    lab = cv2.imread(str(victim.label), cv2.IMREAD_UNCHANGED)
    lab[0, 0] = 7
    cv2.imwrite(str(victim.label), lab)
    with pytest.raises(InputError, match=rf"{victim.id}.png: label values \[7\]"):
        read_pair(victim)

    mismatch = _copy_dataset(busi_dataset, tmp_path / "mismatch")
    victim = read_cases(mismatch)[0]
    cv2.imwrite(str(victim.label), np.zeros((10, 12), np.uint8))
    with pytest.raises(InputError, match=rf"{victim.id}.png: label size"):
        read_pair(victim)

    empty = _copy_dataset(busi_dataset, tmp_path / "empty")
    text = (empty / "cases.csv").read_text().replace(",val", ",train")
    (empty / "cases.csv").write_text(text)
    res = _sonomap("train", "--config", str(tiny_cfg), "--data", str(empty), "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "cases.csv: split 'val' is empty" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_config_key_and_checkpoint_manifest_mismatch(tmp_path, busi_dataset, trained):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("train:\n  lr_rate: 0.1\n")
    res = _sonomap("train", "--config", str(cfg), "--data", str(busi_dataset), "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "unknown key 'train.lr_rate'" in res.stderr

    import shutil

    ck = tmp_path / "best.pt"
    shutil.copy(trained / "best.pt", ck)
    data = yaml.safe_load((trained / "best.pt.yaml").read_text())
    data["arch"] = "fcn_resnet101"
    (tmp_path / "best.pt.yaml").write_text(yaml.safe_dump(data))
    res = _sonomap(
        "evaluate", "--checkpoint", str(ck), "--data", str(busi_dataset), "--out", str(tmp_path / "e")
    )
    assert res.returncode == 2 and "best.pt: checkpoint is unet_small" in res.stderr


def test_config_input_size_shorthand(tmp_path):
    from training.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  input_size: [32, 48]\n")
    data = load_config(cfg).data
    assert (data.input_height, data.input_width) == (32, 48) and data.input_size is None
    cfg.write_text("data:\n  input_size: big\n")
    with pytest.raises(ConfigError, match="'data.input_size' must be"):
        load_config(cfg)
