"""Calibration: ECE/Brier, the decision band, temperature fitting, and the temperature folded into
ONNX and TorchScript (runtime backends agree with each other and with evaluate's torch path)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from export_fixtures import shared_checkpoint

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.backends.torch import TorchBackend
from edge_runtime.manifest import load_manifest, save_manifest
from export.onnx_export import export_onnx
from export.shapes import ShapeSpec
from export.torchscript_export import export_torchscript
from training.calibration import (
    BAND_PX,
    CalibrationAccumulator,
    decision_band,
    reliability,
    reliability_bars,
)
from training.evaluate import predict_logits
from training.temperature import LogitMap, calibrated_prob, fit_temperature

BOUNDARY_DICE = 5e-3  # ONNX Runtime vs torch evaluation of one model: boundary pixels only
TEMPERATURE = 2.0


def test_ece_and_brier_by_hand():
    # bin [0.8, 0.867): 4 samples at 0.8, 2 with cancer -> gap |0.5 - 0.8| = 0.3, weight 4/6
    # bin [0.133, 0.2): 2 samples at 0.15, none with cancer -> gap 0.15, weight 2/6
    prob = np.array([0.8, 0.8, 0.8, 0.8, 0.15, 0.15])
    truth = np.array([1, 1, 0, 0, 0, 0])
    r = reliability(prob, truth, 15)
    assert r["ece"] == pytest.approx(4 / 6 * 0.3 + 2 / 6 * 0.15)
    assert r["brier"] == pytest.approx(np.mean((prob - truth) ** 2))
    assert sum(r["count"]) == 6
    perfect = reliability(np.full(10, 0.3), np.array([1, 1, 1] + [0] * 7), 10)
    assert perfect["ece"] == pytest.approx(0.0, abs=1e-12)


def test_reliability_bars_leave_empty_bins_out_and_carry_their_counts():
    # 4 images at 0.3 none with cancer, 2 at 0.9 both with: bins 3 and 9 of 10, the rest empty
    r = reliability(np.array([0.3, 0.3, 0.3, 0.3, 0.9, 0.9]), np.array([0, 0, 0, 0, 1, 1]), 10)
    centres, observed, count = reliability_bars(r)
    assert centres == pytest.approx([0.35, 0.95])
    assert observed.tolist() == [0.0, 1.0] and count.tolist() == [4, 2]


def test_decision_band_keeps_pixels_near_truth_or_prediction_only():
    label = np.zeros((200, 200), np.uint8)
    label[90:110, 20:40] = 1  # cancer on the left
    label[0:5, :] = 255  # unknown pixels never count
    pred = np.zeros_like(label, bool)
    pred[90:110, 160:180] = True  # a false positive on the right
    band = decision_band(label, pred)
    assert band[100, 30] and band[100, 40 + BAND_PX - 1] and not band[100, 40 + BAND_PX + 2]
    assert band[100, 170] and band[100, 160 - BAND_PX + 1]
    assert not band[10, 100] and not band[2, 30]  # far background; unknown pixels
    assert not decision_band(np.zeros_like(label), np.zeros_like(pred)).any()


def test_temperature_fit_recovers_the_temperature_that_made_the_data():
    """Labels drawn from sigmoid(d / 3): the fit must find T near 3 (overconfident logits)."""
    rng = np.random.default_rng(0)
    maps = []
    for i in range(6):
        d = rng.normal(0.0, 6.0, (64, 64)).astype(np.float32)
        d = cv2.GaussianBlur(d, (0, 0), 1.0) * 3
        truth = rng.random((64, 64)) < 1 / (1 + np.exp(-d / 3.0))
        logits = np.stack([np.zeros_like(d), d])
        maps.append(LogitMap(str(i), logits, truth.astype(np.uint8), np.zeros((64, 64), np.uint8)))
    fit = fit_temperature(maps, cancer_index=1, band_px=1000)
    assert fit["temperature"] == pytest.approx(3.0, rel=0.15)
    assert fit["nll_after"] < fit["nll_before"]
    cal = CalibrationAccumulator(band_px=1000)
    raw = CalibrationAccumulator(band_px=1000)
    for m in maps:
        cal.add(calibrated_prob(m.logits, fit["temperature"], 1, m.label.shape), m.label)
        raw.add(calibrated_prob(m.logits, 1.0, 1, m.label.shape), m.label)
    assert cal.summary()["pixel"]["ece"] < 0.03 < raw.summary()["pixel"]["ece"]


@pytest.fixture(scope="module")
def calibrated_checkpoint(tmp_path_factory):
    """The shared tiny checkpoint with a temperature written into its manifest (as calibrate does)."""
    src = shared_checkpoint()
    ck = tmp_path_factory.mktemp("ck") / "tiny.pt"
    shutil.copy2(src, ck)
    save_manifest(load_manifest(src).derive(temperature=TEMPERATURE), ck)
    return ck


def test_temperature_is_folded_into_onnx_and_torchscript_with_parity(
    calibrated_checkpoint, tmp_path, busi_sample
):
    from training.checkpoint import load_model

    onnx_path, ts_path = tmp_path / "model.onnx", tmp_path / "model.ts"
    onnx_manifest, _ = export_onnx(
        calibrated_checkpoint, onnx_path, ShapeSpec(min_hw=(64, 64), opt_hw=(240, 320), max_hw=(480, 640))
    )
    export_torchscript(calibrated_checkpoint, ts_path)
    assert onnx_manifest.temperature == TEMPERATURE == load_manifest(ts_path).temperature
    ort = OnnxRuntimeBackend(onnx_path, load_manifest(onnx_path), device="cpu")
    ts = TorchBackend(ts_path, load_manifest(ts_path), device="cpu")
    model, manifest = load_model(calibrated_checkpoint)
    for sid in ("malignant_002", "benign_041"):
        gray = cv2.imread(str(busi_sample / "images" / f"{sid}.png"), cv2.IMREAD_GRAYSCALE)
        logits = predict_logits(model, manifest, gray)
        want = calibrated_prob(logits, TEMPERATURE, manifest.cancer_index, gray.shape)
        uncalibrated = calibrated_prob(logits, 1.0, manifest.cancer_index, gray.shape)
        a, b = ort.infer(gray), ts.infer(gray)
        assert np.abs(a.prob - b.prob).max() < 1e-4  # the two folded backends: same graph, same numbers
        # Against evaluate's unfolded path only the uint8 rounding of the resized input differs
        # (cv2 resizes uint8, the graph float), as in test_export_onnx.
        assert np.abs(a.prob - want).mean() < 0.01
        assert np.abs(a.prob - uncalibrated).mean() > 2 * np.abs(a.prob - want).mean()  # T changed them
        # the mask at threshold 0.5 keeps its meaning: the pixels of the uncalibrated model
        assert np.mean((want >= 0.5) == (uncalibrated >= 0.5)) > 0.999
        assert np.mean(a.mask == (want >= 0.5)) > 0.98  # input rounding flips pixels near 0.5 only
        assert np.mean(a.mask == b.mask) > 0.999


def test_evaluate_reports_calibration_for_checkpoint_and_onnx(calibrated_checkpoint, tmp_path, busi_dataset):
    from edge_runtime.cli import main

    data = busi_dataset
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(calibrated_checkpoint),
                "--data",
                str(data),
                "--split",
                "test",
                "--out",
                str(tmp_path / "ck"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "ck" / "summary.json").read_text())
    cal = json.loads((tmp_path / "ck" / "calibration.json").read_text())
    assert summary["temperature"] == TEMPERATURE and summary["calibration_band_px"] == BAND_PX
    assert 0.0 <= summary["ece_pixel"] <= 1.0 and "uncalibrated_ece_pixel" in summary
    low, high = summary["ci95"]["ece_pixel"]  # a case bootstrap over the split's band pixels
    assert 0.0 <= low < high <= 1.0 and high > summary["ece_pixel"]
    assert "| ece_pixel |" in (tmp_path / "ck" / "report.md").read_text()
    assert (
        cal["calibrated"]["pixel"]["bins"] == 15
        and cal["calibrated"]["image_max"]["n"] == summary["n_images"]
    )
    for png in ("reliability.png", "reliability_uncalibrated.png"):
        assert cv2.imread(str(tmp_path / "ck" / png)) is not None
    assert "ECE pixels" in (tmp_path / "ck" / "report.md").read_text()
    onnx_path = tmp_path / "model.onnx"
    export_onnx(
        calibrated_checkpoint, onnx_path, ShapeSpec(min_hw=(64, 64), opt_hw=(240, 320), max_hw=(480, 640))
    )
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(onnx_path),
                "--data",
                str(data),
                "--split",
                "test",
                "--out",
                str(tmp_path / "onnx"),
            ]
        )
        == 0
    )
    via_ort = json.loads((tmp_path / "onnx" / "summary.json").read_text())
    # The same mask up to boundary pixels: the graph resizes to the image inside ONNX Runtime, torch
    # evaluation with OpenCV, and this tiny model's 64-pixel output is upsampled ~8x, so its broad
    # boundaries hold many pixels near the threshold. How many flip depends on the weights the CPU
    # trained (pooled Dice 0.0027 apart on an Intel Xeon, under 0.002 on an AMD EPYC).
    assert via_ort["dice_pooled"] == pytest.approx(summary["dice_pooled"], abs=BOUNDARY_DICE)
    assert via_ort["ece_pixel"] == pytest.approx(summary["ece_pixel"], abs=BOUNDARY_DICE)
    assert "uncalibrated_ece_pixel" not in via_ort  # ONNX gives calibrated probabilities only
