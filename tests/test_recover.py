"""Recovering a unet_small checkpoint from its folded ONNX reproduces the exported model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import DEFAULT_CLASSES, Manifest
from export.onnx_export import export_onnx
from export.parity import ort_session, run_ort
from export.shapes import ShapeSpec
from training.checkpoint import load_model
from training.checkpoint_save import save_checkpoint
from training.evaluate import predict_logits
from training.isotonic import served_prob
from training.models import build_model
from training.recover import recover_checkpoint
from training.temperature import calibrated_prob

CURVE = {"margin": [-3.0, -1.0, 0.0, 1.0, 3.0], "prob": [0.02, 0.1, 0.35, 0.7, 0.97]}


@pytest.mark.parametrize("calibrated", [False, True], ids=["raw", "temperature-and-curve"])
def test_recovered_checkpoint_matches_the_onnx_it_came_from(tmp_path, busi_sample, calibrated):
    torch.manual_seed(0)
    model = build_model("unet_small", 2, width=4)
    for m in model.modules():  # non-trivial BatchNorm statistics, so the fusion matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    manifest = Manifest(
        "u",
        "unet_small",
        "checkpoint",
        64,
        64,
        0.3,
        0.2,
        list(DEFAULT_CLASSES),
        extra={"model_config": {"arch": "unet_small", "num_classes": 2, "aux": False, "width": 4}},
    )
    if calibrated:  # the shipped model's kind: its graph also holds the curve's own 1x1 Convs
        manifest = manifest.derive(temperature=2.0, calibration_curve=CURVE, threshold=0.35)
    ck = save_checkpoint(
        {
            "model": model.state_dict(),
            "manifest": manifest.to_dict(),
            "model_config": {"arch": "unet_small", "num_classes": 2, "aux": False, "width": 4},
        },
        tmp_path / "orig" / "best.pt",
        manifest,
    )
    onnx_path = tmp_path / "model.onnx"
    export_onnx(ck, onnx_path, ShapeSpec(min_hw=(64, 64), opt_hw=(240, 320), max_hw=(480, 640)))
    recovered = recover_checkpoint(onnx_path, tmp_path / "rec" / "best.pt")
    rec_model, rec_manifest = load_model(recovered)
    assert rec_manifest.source["recovered_from_onnx_sha256"]
    session = ort_session(onnx_path)
    gray = cv2.imread(str(busi_sample / "images" / "malignant_002.png"), cv2.IMREAD_GRAYSCALE)
    want = predict_logits(model, manifest, gray)
    got = predict_logits(rec_model, rec_manifest, gray)
    assert np.abs(want - got).max() < 1e-3
    prob, _ = run_ort(session, gray)
    assert rec_manifest.calibration_curve == manifest.calibration_curve
    assert np.abs(prob - served_prob(got, rec_manifest, gray.shape)).mean() < 0.01
    if not calibrated:
        assert np.abs(prob - calibrated_prob(got, 1.0, 1, gray.shape)).mean() < 0.01


def test_other_architectures_are_refused(tmp_path):
    from export_fixtures import shared_tiny_onnx

    with pytest.raises(ConfigError, match="unet_small"):
        recover_checkpoint(shared_tiny_onnx(), tmp_path / "x.pt")
