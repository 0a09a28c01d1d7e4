"""A model file replaced while the runtime runs is never served: a SIGHUP reload that rebuilds the
backend, and the fail-safe's re-creation after faults, open the file again, and refuse one that is
not the model the run started with (its sha256 against the manifest in use), naming the file.

Real ONNX Runtime sessions on the dark-region model; the replacement is its NaN twin (same inputs and
outputs), so a served replacement would show at once as non-finite probabilities.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import yaml
from export_fixtures import copy_model
from runtime_model import dark_onnx

from edge_runtime.backends import failsafe
from edge_runtime.backends.failsafe import BANNER_FAULT
from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend
from edge_runtime.config import load_config
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path
from edge_runtime.pipeline.graph import Pipeline

GRAY = np.full((64, 64), 40, np.uint8)  # dark: the dark-region model marks it


def write_config(path, model, **inference) -> None:
    section = {"model": str(model), "backend": "onnxruntime", "device": "cpu", "threads": 1, **inference}
    path.write_text(yaml.safe_dump({"source": {"input": "synthetic"}, "inference": section}))


def swap_file(model) -> None:
    """Copy another model over ``model``, leaving its manifest as it is (a copy made on the cart)."""
    shutil.copy(dark_onnx(nan=True), model)


def swap_export(model) -> None:
    """Install another export, model and manifest, in place of ``model`` (a re-export to its --out)."""
    swap_file(model)
    data = yaml.safe_load(manifest_path(dark_onnx(nan=True)).read_text())
    manifest_path(model).write_text(yaml.safe_dump({**data, "file": model.name}, sort_keys=False))
    assert load_manifest(model).sha256 != load_manifest(dark_onnx()).sha256  # a valid pair on its own


def assert_the_vetted_model_answers(backend) -> None:
    prob = backend.infer(GRAY).prob
    assert np.isfinite(prob).all() and prob.max() > 0.5


def test_a_sighup_reload_refuses_a_model_file_copied_over_the_running_one(tmp_path):
    model = copy_model(dark_onnx(), tmp_path / "m")
    config = tmp_path / "config.yaml"
    write_config(config, model)
    pipeline = Pipeline(load_config(config), config_path=config)
    try:
        before = pipeline.guard.backend
        swap_file(model)
        write_config(config, model, threads=2)  # an inference change: the backend is rebuilt
        pipeline.request_reload()
        pipeline.apply_reload()
        error = pipeline.stats()["last_error"]
        assert error.startswith("reload rejected: ") and str(model) in error and "sha256" in error
        assert pipeline.guard.backend is before and pipeline.config.inference.threads == 1
        assert_the_vetted_model_answers(pipeline.guard.backend)
    finally:
        pipeline.close()


def test_a_rebuild_refuses_another_export_installed_in_place_of_the_running_one(tmp_path):
    model = copy_model(dark_onnx(), tmp_path / "m")
    config = tmp_path / "config.yaml"
    write_config(config, model)
    pipeline = Pipeline(load_config(config), config_path=config)
    try:
        swap_export(model)
        with pytest.raises(ConfigError, match="replaced while running") as caught:
            pipeline.guard.factory()  # what both the reload and the fail-safe call
        assert str(model) in str(caught.value) and "\n" not in str(caught.value)
    finally:
        pipeline.close()


class FailsFirst(OnnxRuntimeBackend):
    """A real ONNX Runtime backend whose first call fails, so the fail-safe re-creates the backend."""

    calls = 0

    def infer(self, gray):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("injected fault")
        return super().infer(gray)


def test_the_failsafe_re_creation_keeps_the_vetted_backend_and_shows_ai_error(tmp_path, caplog):
    model = copy_model(dark_onnx(), tmp_path / "m")
    config = tmp_path / "config.yaml"
    write_config(config, model, retry_after_s=0.0, retry_max_s=0.0, reload_after_errors=1)
    backend = FailsFirst(model, load_manifest(model), device="cpu")
    pipeline = Pipeline(load_config(config), config_path=config, backend=backend)
    try:
        swap_file(model)
        assert pipeline.guard.infer(GRAY) is None and pipeline.guard.banner() == ("error", BANNER_FAULT)
        with caplog.at_level(logging.ERROR, logger=failsafe.log.name):
            prediction = pipeline.guard.infer(GRAY)  # the re-creation is due first: refused
        refused = [r.getMessage() for r in caplog.records if "re-creation" in r.getMessage()]
        assert len(refused) == 1 and str(model) in refused[0] and "sha256" in refused[0]
        assert pipeline.guard.backend is backend and np.isfinite(prediction.prob).all()
    finally:
        pipeline.close()
