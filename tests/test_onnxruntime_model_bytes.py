"""The ONNX Runtime backend runs the bytes its manifest vouches for: a model file replaced after its
manifest was read is refused, and so is a model keeping its weights in ONNX external data (which the
manifest's sha256 does not cover), even with a matching data file in the working folder.

Inputs: the shipped default model, re-saved with the onnx package into tmp_path (one file, or graph
plus external data). Outputs: none. Real ONNX Runtime sessions; nothing is mocked.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from export_fixtures import EXTERNAL_DATA, external_copy
from file_reads import opened_under

from edge_runtime.backends import create_backend
from edge_runtime.backends.onnxruntime import checked_session
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import InputError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest

GRAY = np.full((120, 160), 90, np.uint8)


def _resaved(tmp_path):
    """The default model saved again as tmp_path/model.onnx, one file, with its manifest."""
    path = tmp_path / "model.onnx"
    onnx.save_model(onnx.load(DEFAULT_MODEL), path)
    save_manifest(load_manifest(DEFAULT_MODEL), path)
    return path


def test_a_one_file_model_still_runs(tmp_path):
    path = _resaved(tmp_path)
    backend = create_backend("onnxruntime", path, load_manifest(path), device="cpu")
    assert backend.infer(GRAY).mask.shape == GRAY.shape


def test_a_model_with_external_weights_is_refused_even_with_its_data_in_the_working_folder(
    tmp_path, monkeypatch
):
    path = external_copy(DEFAULT_MODEL, tmp_path)
    assert (tmp_path / EXTERNAL_DATA).is_file()  # the file ONNX Runtime would read from a path
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    shutil.copy(tmp_path / EXTERNAL_DATA, cwd / EXTERNAL_DATA)  # and from bytes, by default
    monkeypatch.chdir(cwd)
    with pytest.raises(
        InputError, match=r"model\.onnx: keeps weights outside the file \(ONNX external data\)"
    ):
        create_backend("onnxruntime", path, load_manifest(path), device="cpu")


def test_a_model_replaced_after_its_manifest_was_read_is_refused(tmp_path):
    path = _resaved(tmp_path)
    manifest = load_manifest(path)  # checked against the file's bytes here
    model = onnx.load(path)
    model.doc_string = "re-exported while the runtime started"
    onnx.save_model(model, path)
    with pytest.raises(InputError, match=r"model\.onnx: sha256 \w+… is not its manifest's"):
        create_backend("onnxruntime", path, manifest, device="cpu")


def test_a_session_reads_its_model_file_twice(tmp_path):
    """Start-up hashes the model file once (load_manifest) and reads it once more for the bytes ONNX
    Runtime loads (checked again there); the capture's manifest and the first backend reuse that
    check, each of which read the file again before. An access log of a real `sonomap live` child
    process, not a wrapper."""
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(DEFAULT_MODEL, folder / "model.onnx")
    shutil.copy(manifest_path(DEFAULT_MODEL), folder / "model.onnx.yaml")
    args = [
        "live",
        "--source",
        "synthetic",
        "--headless",
        "--duration",
        "1",
        "--model",
        str(folder / "model.onnx"),
    ]
    child, opened = opened_under(folder, [*args, "--cases", str(tmp_path / "cases")])
    assert child.returncode == 0, child.stderr[-2000:]
    assert opened["model.onnx"] == 2, opened


@pytest.mark.parametrize("version", ["1.16.3", "1.18.1+jetson"])
def test_an_older_onnx_runtime_loads_the_checked_bytes_from_a_folder_of_their_own(
    tmp_path, monkeypatch, version
):
    """An ONNX Runtime older than 1.19 ignores the external-data folder key and, given bytes, reads
    ``model.onnx.data`` from the working folder; for such a version the session is made from a copy
    of the bytes in a new private folder, where no data file is found. Run here with this machine's
    ONNX Runtime told the older version number: what is tested is the branch, not an older build."""
    import onnxruntime as ort  # deferred like the backend's: only this test needs the module itself

    path = external_copy(DEFAULT_MODEL, tmp_path)
    monkeypatch.chdir(tmp_path)  # the data file sits in the working folder, as an older one reads it
    options = ort.SessionOptions()
    with pytest.raises(Exception, match="(?i)external data"):
        checked_session(ort, path.read_bytes(), options, ["CPUExecutionProvider"], version)
    (tmp_path / "one").mkdir()
    one_file = _resaved(tmp_path / "one")
    session = checked_session(ort, one_file.read_bytes(), options, ["CPUExecutionProvider"], version)
    assert session.get_inputs()[0].name == "frame"
    assert not list(Path(tempfile.gettempdir()).glob("sonomap-model-*"))  # the copy is removed
