"""The ONNX Runtime backend runs the bytes its manifest vouches for: a model file replaced after its
manifest was read is refused, and so is a model keeping its weights in ONNX external data (which the
manifest's sha256 does not cover), even with a matching data file in the working folder.

Inputs: the shipped default model, re-saved with the onnx package into tmp_path (one file, or graph
plus external data). Outputs: none. Real ONNX Runtime sessions; nothing is mocked.
"""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from edge_runtime.backends import create_backend
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import InputError
from edge_runtime.manifest import load_manifest, save_manifest

GRAY = np.full((120, 160), 90, np.uint8)


def _resaved(tmp_path, name: str, external: bool):
    """The default model saved as tmp_path/name (+ name.data with ``external``) with its manifest."""
    model = onnx.load(DEFAULT_MODEL)
    path = tmp_path / name
    onnx.save_model(model, path, save_as_external_data=external, location=f"{name}.data", size_threshold=0)
    save_manifest(load_manifest(DEFAULT_MODEL), path)
    return path


def test_a_one_file_model_still_runs(tmp_path):
    path = _resaved(tmp_path, "model.onnx", external=False)
    backend = create_backend("onnxruntime", path, load_manifest(path), device="cpu")
    assert backend.infer(GRAY).mask.shape == GRAY.shape


def test_a_model_with_external_weights_is_refused_even_with_its_data_in_the_working_folder(
    tmp_path, monkeypatch
):
    path = _resaved(tmp_path, "model.onnx", external=True)
    assert (tmp_path / "model.onnx.data").is_file()  # the file ONNX Runtime would read from a path
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    shutil.copy(tmp_path / "model.onnx.data", cwd / "model.onnx.data")  # and from bytes, by default
    monkeypatch.chdir(cwd)
    with pytest.raises(
        InputError, match=r"model\.onnx: keeps weights outside the file \(ONNX external data\)"
    ):
        create_backend("onnxruntime", path, load_manifest(path), device="cpu")


def test_a_model_replaced_after_its_manifest_was_read_is_refused(tmp_path):
    path = _resaved(tmp_path, "model.onnx", external=False)
    manifest = load_manifest(path)  # checked against the file's bytes here
    model = onnx.load(path)
    model.doc_string = "re-exported while the runtime started"
    onnx.save_model(model, path)
    with pytest.raises(InputError, match=r"model\.onnx: sha256 \w+… is not its manifest's"):
        create_backend("onnxruntime", path, manifest, device="cpu")
