"""One rule for every pooled figure: a split (or a bootstrap resample) with neither a cancer pixel nor
a predicted one has no pooled Dice or IoU (NaN), while one such image still scores the per-image 1.0.
`summarize` (the point estimate in summary.json and report.md) against `pooled_scores` (the bootstrap),
and `sonomap evaluate` end to end: a real ONNX model that marks nothing, on cancer-free BUSI images."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from cli import sonomap
from runtime_model import tiny_onnx

from training.metrics import METRICS, Counts, pooled_scores, scores, summarize

SILENT_BIAS = -40.0  # shifts the cancer logit so far down that the tiny model marks no pixel
BENIGN = ("benign_002", "benign_041", "benign_047")


def test_a_cancer_free_set_with_nothing_predicted_has_no_pooled_dice():
    counts = [Counts(0, 0, 0, 100), Counts(0, 0, 0, 50)]
    assert scores(counts[0])["dice"] == 1.0  # one image: the model agreed there is no cancer
    summary = summarize(counts)
    assert summary["dice_mean"] == 1.0
    assert math.isnan(summary["dice_pooled"]) and math.isnan(summary["iou_pooled"])
    assert summary["pixel_accuracy_pooled"] == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_summarize_pools_as_the_bootstrap_does(seed):
    rng = np.random.default_rng(seed)
    counts = [Counts(*(int(v) for v in rng.integers(0, 3, 4) * rng.integers(0, 2))) for _ in range(4)]
    summary, pooled = summarize(counts), pooled_scores(counts)
    for m in METRICS:
        assert summary[f"{m}_pooled"] == pytest.approx(pooled[m], nan_ok=True), m


def test_evaluate_reports_no_pooled_dice_on_a_cancer_free_split_without_predictions(tmp_path, busi_sample):
    data = tmp_path / "ds"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    for sid in BENIGN:
        gray = cv2.imread(str(busi_sample / "images" / f"{sid}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(data / "images" / f"{sid}.png"), gray)
        cv2.imwrite(str(data / "labels" / f"{sid}.png"), np.zeros_like(gray))  # no cancer anywhere
    rows = "".join(f"{sid},case_{sid},test\n" for sid in BENIGN)
    (data / "cases.csv").write_text("id,case_id,split\n" + rows)
    out = tmp_path / "report"
    sonomap(
        "evaluate", "--checkpoint", tiny_onnx(SILENT_BIAS), "--data", data, "--split", "test", "--out", out
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_negative_with_fp"] == 0 and summary["dice_mean"] == 1.0  # nothing marked
    assert summary["dice_pooled"] is None and summary["iou_pooled"] is None  # NaN, written as null
    report = (out / "report.md").read_text()
    assert "| dice | 1.0000 | undefined | undefined | 0 |" in report
