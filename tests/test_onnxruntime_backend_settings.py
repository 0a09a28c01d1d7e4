"""What the ONNX Runtime backend reports and takes from its surroundings: the precision it shows (the
HUD, logs and /metrics) is the one the model was exported at, and SONOMAP_ORT_THREADS is a positive
integer or a one-line error naming it. Real shipped models and real ONNX Runtime sessions."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from export_fixtures import copy_model

from edge_runtime.backends import backend_from_config, create_backend
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.config_schema import InferenceConfig
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path

THREADS_ENV = "SONOMAP_ORT_THREADS"  # the documented name (docs/runtime.md)
FP16_MODEL = DEFAULT_MODEL.with_name("model.fp16.onnx")  # shipped beside the FP32 model, checked by export


def _backend(model, **options):
    return create_backend("onnxruntime", model, load_manifest(model), device="cpu", **options)


@pytest.mark.parametrize(
    "model, precision", [(DEFAULT_MODEL, "fp32"), (FP16_MODEL, "fp16")], ids=["fp32", "fp16"]
)
def test_the_reported_precision_is_the_models(model, precision):
    assert load_manifest(model).extra["precision"] == precision
    backend = _backend(model)
    assert backend.describe()["precision"] == precision
    assert backend.infer(np.zeros((64, 80), np.uint8)).mask.shape == (64, 80)  # and it serves
    backend.close()


def test_an_unknown_recorded_precision_is_refused_in_one_line(tmp_path):
    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    data = yaml.safe_load(manifest_path(model).read_text())
    data["extra"]["precision"] = "int8"
    manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as refused:
        _backend(model)
    text = str(refused.value)
    assert text.startswith(f"{manifest_path(model)}: 'extra.precision' must be one of") and "'int8'" in text
    assert "\n" not in text


@pytest.mark.parametrize("value", ["four", "0", "-2", "2.5", "3 threads"])
def test_a_bad_threads_variable_is_one_config_error_naming_it(monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV, value)
    with pytest.raises(ConfigError) as refused:
        _backend(DEFAULT_MODEL)
    text = str(refused.value)
    assert text.startswith(f"environment variable {THREADS_ENV} must be a positive integer"), text
    assert repr(value) in text and "\n" not in text


@pytest.mark.parametrize("value, threads", [("2", 2), (" 3 ", 3), ("", 0)])
def test_the_threads_variable_sets_intra_op_threads(monkeypatch, value, threads):
    monkeypatch.setenv(THREADS_ENV, value)
    backend = _backend(DEFAULT_MODEL)
    assert backend.threads == threads and backend.describe()["threads"] == threads
    assert backend.session.get_session_options().intra_op_num_threads == threads
    backend.close()


def test_inference_threads_in_the_config_wins_over_the_variable(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "2")
    config = InferenceConfig(backend="onnxruntime", device="cpu", threads=1)
    backend = backend_from_config(config, DEFAULT_MODEL, load_manifest(DEFAULT_MODEL))
    assert backend.describe()["threads"] == 1
    backend.close()
