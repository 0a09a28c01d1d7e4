"""The calibration curve's knots and the threshold it must be able to give, as a hand-edited manifest
YAML has them: each bad knot, and a threshold outside the curve's probabilities, is a one-line
ConfigError naming the file and the key; the shipped manifests load."""

from __future__ import annotations

import re

import pytest
import yaml

from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path

SHIPPED = manifest_path(DEFAULT_MODEL)
KNOT = 3  # the knot edited below; the shipped curve has 16


def shipped() -> dict:
    return yaml.safe_load(SHIPPED.read_text())


def write(tmp_path, data: dict):
    path = tmp_path / "model.onnx.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("side", ["margin", "prob"])
@pytest.mark.parametrize(
    "knot",
    ["0.5", "a", {"a": 1}, [0.1, 0.2], True, False, None, float("nan"), float("inf")],
    ids=["numeric-string", "string", "mapping", "list", "true", "false", "null", "nan", "inf"],
)
def test_a_knot_that_is_not_a_finite_number_is_refused_with_its_key(tmp_path, side, knot):
    data = shipped()
    data["calibration_curve"][side][KNOT] = knot
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 'calibration_curve.{side}[{KNOT}]' must be a finite number")
    assert "\n" not in message


def test_every_knot_quoted_is_refused_before_the_runtime_sees_it(tmp_path):
    data = shipped()
    data["calibration_curve"] = {k: [str(v) for v in vs] for k, vs in data["calibration_curve"].items()}
    with pytest.raises(ConfigError, match=r"'calibration_curve\.margin\[0\]' must be a finite number"):
        load_manifest(write(tmp_path, data))


@pytest.mark.parametrize(
    ("prob", "threshold"),
    [([0.5, 0.6], 0.373), ([0.1, 0.3], 0.373), ([0.373, 0.9], 0.373)],
    ids=["above-all", "below-all", "at-the-lowest"],
)
def test_a_threshold_the_curve_cannot_give_is_refused(tmp_path, prob, threshold):
    """Above every probability no pixel is cancer, at or below the lowest every pixel is."""
    data = shipped()
    data["calibration_curve"] = {"margin": [-1.0, 1.0], "prob": prob}
    data["threshold"] = threshold
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: 'threshold' {threshold} is not a cut-off")):
        load_manifest(path)


def test_a_threshold_at_the_curves_top_is_a_cut_off(tmp_path):
    data = shipped()
    data["calibration_curve"] = {"margin": [-1.0, 1.0], "prob": [0.1, 0.9]}
    data["threshold"] = 0.9  # reached at and beyond the top knot (prob >= threshold)
    assert load_manifest(write(tmp_path, data)).threshold == 0.9


@pytest.mark.parametrize("name", ["model.onnx.yaml", "model.fp16.onnx.yaml"])
def test_the_shipped_manifests_load(name):
    manifest = load_manifest(SHIPPED.with_name(name))
    prob = manifest.calibration_curve["prob"]
    assert min(prob) < manifest.threshold <= max(prob)
