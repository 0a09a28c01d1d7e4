"""Calibration curve: isotonic fit, manifest rules, the curve folded into ONNX and its FP16 twin
(ONNX Runtime and torch agree, the mask is unchanged), `sonomap calibrate --method curve` on real BUSI images, and
the runtime's unfolded path applying the same curve."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from export_fixtures import shared_checkpoint
from scipy.optimize import lsq_linear

from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.calibration_curve import apply_curve, cancer_probability
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, load_manifest, save_manifest
from export.folded import CurveCalibration
from export.fp16 import convert_fp16
from export.onnx_export import export_onnx
from export.shapes import ShapeSpec
from training.evaluate import predict_logits
from training.isotonic import (
    CURVE_KNOTS,
    STRICT_RAMP,
    BandImage,
    fit_served_curve,
    served_prob,
)

BOUNDARY_PX = 9  # one network pixel in image pixels here (a 64-pixel input, images up to ~560 px)
SHAPES = ShapeSpec(min_hw=(64, 64), opt_hw=(240, 320), max_hw=(480, 640))
# A curve no temperature can give: a floor of 0.2 for confident "no", steep in the middle.
CURVE = {"margin": [-8.0, -3.0, 0.0, 2.0, 6.0], "prob": [0.02, 0.2, 0.35, 0.8, 0.99]}
ROW_PX = 500  # synthetic band pixels laid out as an image of rows this long


def _at_image_size(margin: np.ndarray, truth: np.ndarray, shape=None) -> BandImage:
    """Band pixels whose margin is at the image's size already, so serving resizes nothing: the fit
    is then a plain pixel-by-pixel fit of truth on margin. ``shape``: the image's (H, W); by default
    the pixels as rows of :data:`ROW_PX`."""
    shape = shape or (margin.size // ROW_PX, ROW_PX)
    return BandImage(margin.reshape(shape).astype(np.float32), np.ones(shape, bool), truth)


def test_isotonic_fit_recovers_a_floor_a_scale_cannot_give():
    """Truth drawn from 0.2 + 0.7 sigmoid(m): the curve follows it within a few hundredths."""
    rng = np.random.default_rng(0)
    margin = rng.normal(0.0, 4.0, 400_000)
    want = lambda m: 0.2 + 0.7 / (1 + np.exp(-m))  # noqa: E731 - the generating function, named
    truth = (rng.random(margin.size) < want(margin)).astype(np.float64)
    curve = fit_served_curve([_at_image_size(margin, truth)])
    knots, values = np.array(curve["margin"]), np.array(curve["prob"])
    assert knots.size == CURVE_KNOTS and np.all(np.diff(knots) > 0) and np.all(np.diff(values) > 0)
    inner = slice(1, -1)  # the end knots sit on the most extreme (noisiest) samples
    assert np.abs(values[inner] - want(knots[inner])).max() < 0.04
    with pytest.raises(ValueError, match="no decision-band pixels"):
        fit_served_curve([BandImage(np.zeros((2, 2), np.float32), np.zeros((2, 2), bool), np.zeros(0))])


def test_each_segment_of_the_curve_matches_its_pixels_cancer_rate():
    """Band pixels as on BUSI: a few at the lowest margins never cancer, then a long plateau where a
    fifth are (missed lesion parts), then a rise. Read off an isotonic fit at single points, the
    first knot took the extreme block's 0 and the first segment under-predicted by half."""
    rng = np.random.default_rng(1)
    low = np.linspace(-9.0, -8.5, 2_000)  # no cancer at all
    plateau = rng.uniform(-8.5, -1.0, 200_000)
    rise = rng.uniform(-1.0, 4.0, 100_000)
    margin = np.concatenate([low, plateau, rise])
    rate = np.concatenate([np.zeros(low.size), np.full(plateau.size, 0.2), 0.2 + 0.8 * (rise + 1.0) / 5.0])
    truth = (rng.random(margin.size) < rate).astype(np.float64)
    curve = fit_served_curve([_at_image_size(margin, truth)])
    served = apply_curve(margin, curve)
    knots = np.array(curve["margin"])
    for lo, hi in zip(knots[:-1], knots[1:], strict=True):
        inside = (margin >= lo) & (margin < hi)
        assert abs(served[inside].mean() - truth[inside].mean()) < 0.02, (lo, hi)


def _upsampled_band_images(seed: int, count: int = 6) -> list[BandImage]:
    """Noisy low-resolution margins (a network's output) with a blob lesion, served at 3-4x the size."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        h, w = rng.integers(24, 40, 2)
        yy, xx = np.mgrid[:h, :w]
        blob = np.hypot(yy - h / 2, xx - w / 2) < min(h, w) / 4
        margin = (np.where(blob, 3.0, -4.0) + rng.normal(0, 2.5, (h, w))).astype(np.float32)
        size = (int(h * rng.uniform(3, 4)), int(w * rng.uniform(3, 4)))
        lesion = cv2.resize(blob.astype(np.uint8), size[::-1], interpolation=cv2.INTER_NEAREST) > 0
        band = np.ones(size, bool)
        truth = (lesion | (rng.random(size) < 0.05))[band].astype(np.float64)
        images.append(BandImage(margin, band, truth))
    return images


def _served(image: BandImage, curve: dict) -> np.ndarray:
    """The curve at the model's size, then the probability resized: what a folded graph serves."""
    prob = apply_curve(image.margin, curve)
    return cv2.resize(prob, image.band.shape[::-1], interpolation=cv2.INTER_LINEAR)[image.band]


def _resized_margin(image: BandImage) -> np.ndarray:
    """The margin resized to the image first, as the curve was once fitted (no backend serves it)."""
    return cv2.resize(image.margin, image.band.shape[::-1], interpolation=cv2.INTER_LINEAR)


def test_the_curve_is_the_least_squares_fit_of_the_probability_as_served():
    """Brute force: each knot's value's effect on the served probability (a unit curve, served),
    then the monotone least squares on those columns. The fit must equal it, and score a lower
    Brier than a curve fitted to margins resized first (which no backend serves)."""
    images = _upsampled_band_images(0)
    curve = fit_served_curve(images)
    at = np.array(curve["margin"])
    columns = [
        np.concatenate([_served(im, {"margin": at, "prob": np.eye(at.size)[j]}) for im in images])
        for j in range(at.size)
    ]
    truth = np.concatenate([im.truth for im in images])
    cumsum = np.tril(np.ones((at.size, at.size)))
    lower = np.r_[-np.inf, np.zeros(at.size - 1)]
    steps = lsq_linear(np.stack(columns, axis=1) @ cumsum, truth, bounds=(lower, np.inf)).x
    want = (1 - STRICT_RAMP) * np.clip(cumsum @ steps, 0, 1) + STRICT_RAMP * np.linspace(0, 1, at.size)
    assert np.abs(np.array(curve["prob"]) - want).max() < 1e-4
    resized_first = fit_served_curve(
        [_at_image_size(_resized_margin(im), im.truth, im.band.shape) for im in images]
    )
    brier = lambda c: np.mean((np.concatenate([_served(im, c) for im in images]) - truth) ** 2)  # noqa: E731
    assert brier(curve) < brier(resized_first)


def test_graph_curve_matches_the_numpy_curve_everywhere():
    margin = np.linspace(-12.0, 12.0, 2001, dtype=np.float32)  # beyond both end knots too
    graph = CurveCalibration(CURVE)(torch.from_numpy(margin).reshape(1, 1, 1, -1)).numpy().ravel()
    assert np.abs(graph - apply_curve(margin, CURVE)).max() < 1e-6
    assert graph[0] == pytest.approx(0.02) and graph[-1] == pytest.approx(0.99)


def _manifest_dict(**changes) -> dict:
    ck = shared_checkpoint()
    data = load_manifest(ck).to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("curve", "classes", "want"),
    [
        ({"margin": [0.0, 0.0], "prob": [0.1, 0.9]}, None, "strictly increasing"),
        ({"margin": [-1.0, 1.0], "prob": [0.9, 0.1]}, None, "never decrease"),
        ({"margin": [-1.0, 1.0], "prob": [0.1, 1.5]}, None, r"lie in \[0, 1\]"),
        ({"margin": [-1.0, 1.0], "prob": [0.1]}, None, "one length"),
        ({"margin": [1.0], "prob": [0.1]}, None, "at least 2 knots"),
        ({"knots": [1.0]}, None, "keys margin and prob"),
        (CURVE, 3, "two-class model"),
    ],
)
def test_bad_curves_are_refused_with_the_file_named(curve, classes, want):
    data = _manifest_dict(calibration_curve=curve)
    if classes:
        data["classes"] = [*data["classes"], {"id": 2, "name": "benign", "color": [0, 255, 0]}]
    with pytest.raises(ConfigError, match=f"model.onnx.yaml: .*{want}"):
        Manifest.from_dict(data, origin="model.onnx.yaml")


def test_curve_round_trips_through_the_manifest():
    m = Manifest.from_dict(_manifest_dict(calibration_curve=CURVE, threshold=0.35))
    again = Manifest.from_dict(m.to_dict())
    assert again.calibration_curve == CURVE and again.threshold == 0.35
    assert Manifest.from_dict(_manifest_dict()).calibration_curve is None  # older manifests: none


@pytest.fixture(scope="module")
def curve_checkpoint(tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck") / "tiny.pt"
    shutil.copy2(shared_checkpoint(), ck)
    # threshold = curve(0): the mask stays "cancer logit wins"
    save_manifest(load_manifest(shared_checkpoint()).derive(calibration_curve=CURVE, threshold=0.35), ck)
    return ck


def test_curve_folded_into_onnx_matches_torch_and_keeps_the_mask(curve_checkpoint, tmp_path, busi_sample):
    from training.checkpoint import load_model

    onnx_path = tmp_path / "model.onnx"
    onnx_manifest, _ = export_onnx(curve_checkpoint, onnx_path, SHAPES)
    assert onnx_manifest.calibration_curve == CURVE and onnx_manifest.threshold == 0.35
    ort = OnnxRuntimeBackend(onnx_path, load_manifest(onnx_path), device="cpu")
    fp16 = convert_fp16(onnx_path)
    assert load_manifest(fp16).calibration_curve == CURVE
    ort16 = OnnxRuntimeBackend(fp16, load_manifest(fp16), device="cpu")
    model, manifest = load_model(curve_checkpoint)
    plain = manifest.derive(calibration_curve=None, threshold=0.5)
    for sid in ("malignant_002", "benign_041"):
        gray = cv2.imread(str(busi_sample / "images" / f"{sid}.png"), cv2.IMREAD_GRAYSCALE)
        logits = predict_logits(model, manifest, gray)
        want, logistic = served_prob(logits, manifest, gray.shape), served_prob(logits, plain, gray.shape)
        got = ort.infer(gray)
        # only the uint8 rounding of the resized input differs (cv2 resizes uint8, the graph float)
        assert np.abs(got.prob - want).mean() < 0.01
        assert np.abs(got.prob - logistic).mean() > 5 * np.abs(got.prob - want).mean()  # the curve acts
        # Same mask as before the curve, up to boundary pixels: the probability is resized after the
        # curve, and a curve and a logistic interpolate differently between two network pixels.
        old = (logistic >= 0.5).astype(np.uint8)
        kernel = np.ones((2 * BOUNDARY_PX + 1,) * 2, np.uint8)
        boundary = cv2.dilate(old, kernel) != cv2.erode(old, kernel)
        assert not np.any(((want >= 0.35) != old.astype(bool)) & ~boundary)
        assert np.mean(got.mask == (want >= 0.35)) > 0.98
        half = ort16.infer(gray)  # the FP16 twin computes the same curve
        assert np.abs(half.prob - got.prob).max() < 0.01 and np.mean(half.mask == got.mask) > 0.999


def test_unfolded_runtime_path_applies_the_curve(curve_checkpoint):
    manifest = load_manifest(curve_checkpoint)
    logits = np.stack(
        [np.zeros((4, 5), np.float32), np.linspace(-10, 10, 20, dtype=np.float32).reshape(4, 5)]
    )
    prob = cancer_probability(logits, manifest)
    assert np.allclose(prob, apply_curve(logits[1] - logits[0], CURVE))
    plain = cancer_probability(logits, manifest.derive(calibration_curve=None))
    assert np.allclose(plain, 1 / (1 + np.exp(-(logits[1] - logits[0]))), atol=1e-6)


def test_calibrate_curve_cli_lowers_band_ece_and_keeps_the_mask(tmp_path, busi_dataset):
    from edge_runtime.cli import main

    data = busi_dataset
    ck = tmp_path / "tiny.pt"
    shutil.copy2(shared_checkpoint(), ck)
    save_manifest(load_manifest(shared_checkpoint()), ck)
    args = ["--data", str(data), "--split", "train"]  # the sample's train split has the most pixels
    assert main(["evaluate", "--checkpoint", str(ck), *args, "--out", str(tmp_path / "before")]) == 0
    assert main(["calibrate", "--checkpoint", str(ck), *args, "--method", "curve"]) == 0
    manifest = load_manifest(ck)
    record = manifest.extra["calibration"]
    assert record["method"] == "curve" and len(manifest.calibration_curve["margin"]) >= 2
    assert manifest.threshold == pytest.approx(apply_curve(np.zeros(1), manifest.calibration_curve)[0])
    assert record["ece_pixel_after"] < record["ece_pixel_before"]
    assert main(["evaluate", "--checkpoint", str(ck), *args, "--out", str(tmp_path / "after")]) == 0
    before = json.loads((tmp_path / "before" / "summary.json").read_text())
    after = json.loads((tmp_path / "after" / "summary.json").read_text())
    assert after["ece_pixel"] < before["ece_pixel"]
    assert after["calibration_curve"] == manifest.calibration_curve
    # same mask up to boundary pixels (see above; this model's 64-pixel output is upsampled ~8x)
    assert after["dice_pooled"] == pytest.approx(before["dice_pooled"], abs=0.01)
    # a temperature fit afterwards replaces the curve and restores the threshold it replaced
    assert main(["calibrate", "--checkpoint", str(ck), *args]) == 0
    back = load_manifest(ck)
    assert back.calibration_curve is None and back.threshold == before["threshold"]
