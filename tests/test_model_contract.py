"""The model contract: export stamps what the folded graph bakes in (class ids and names, the cancer
id, the threshold, the input size) into the ONNX metadata, and the runtime refuses a manifest that
says otherwise, in one line naming the manifest file and the key.

Real files: copies of the shipped model stamped the way export stamps (no training needed), and the
shared tiny export for what ``sonomap export onnx`` itself writes. A graph without the contract (an
export made before it) still loads, with a warning.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
import yaml
from cli import sonomap
from export_fixtures import copy_model, shared_tiny_onnx
from runtime_model import dark_onnx

from edge_runtime.backends import create_backend
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.model_contract import CONTRACT_KEY, check_contract, contract_of, contract_props
from export.onnx_export import stamp_contract
from export.parity import ort_session

FP16_MODEL = DEFAULT_MODEL.with_name("model.fp16.onnx")
SWAPPED_CLASSES = [
    {"id": 0, "name": "cancer", "color": [255, 40, 40]},
    {"id": 1, "name": "tissue", "color": [0, 0, 0]},
]
TAMPERS = {  # manifest key -> an edit a cart operator (or a copy from another export) could make
    "classes": lambda m: m.update(classes=SWAPPED_CLASSES),
    "input.height": lambda m: m["input"].update(height=128),
    "input.width": lambda m: m["input"].update(width=512),
    "threshold": lambda m: m.update(threshold=0.95),
    "io.inputs": lambda m: m["io"]["inputs"][0].update(name="image"),  # a manifest of another graph
    "io.outputs": lambda m: m["io"]["outputs"][0].update(dtype="float16"),
}


def stamped_copy(folder, source=DEFAULT_MODEL):
    """A copy of ``source`` with its manifest's contract stamped as export stamps it (manifest's
    sha256 updated): a model as ``sonomap export onnx`` now writes them."""
    model = copy_model(source, folder)
    graph = onnx.load(str(model))
    stamp_contract(graph, load_manifest(model))
    onnx.save(graph, str(model))
    save_manifest(load_manifest(model, verify_hash=False), model)
    return model


def edit(model, change):
    """Edit the manifest beside ``model`` as a YAML file (its sha256 still matches the model)."""
    data = yaml.safe_load(manifest_path(model).read_text())
    change(data)
    manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))


def metadata(model) -> dict[str, str]:
    return ort_session(model).get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("key", sorted(TAMPERS))
def test_a_manifest_that_does_not_describe_the_graph_is_refused_in_one_line(tmp_path, key):
    model = stamped_copy(tmp_path / "m")
    edit(model, TAMPERS[key])
    with pytest.raises(ConfigError) as caught:
        create_backend("onnxruntime", model, load_manifest(model), device="cpu")
    message = str(caught.value)
    assert str(manifest_path(model)) in message and f"'{key}'" in message and "\n" not in message


def test_swapped_class_ids_name_the_cancer_class(tmp_path):
    model = stamped_copy(tmp_path / "m")
    edit(model, TAMPERS["classes"])
    with pytest.raises(
        ConfigError, match="cancer is id 0 but the graph model.onnx was exported with cancer as id 1"
    ):
        check_contract(metadata(model), load_manifest(model), model)


def test_the_matching_manifest_is_served(tmp_path):
    model = stamped_copy(tmp_path / "m")
    assert check_contract(metadata(model), load_manifest(model), model) is True
    backend = create_backend("onnxruntime", model, load_manifest(model), device="cpu")
    assert backend.infer(np.zeros((64, 64), np.uint8)).mask.shape == (64, 64)


def test_replay_with_swapped_classes_ends_with_one_line_naming_the_key(tmp_path, busi_sample):
    model = stamped_copy(tmp_path / "m")
    edit(model, TAMPERS["classes"])
    run = sonomap(
        "replay",
        busi_sample / "images",
        *("--model", model, "--backend", "onnxruntime", "--max-frames", 1, "--out", tmp_path / "o.mp4"),
        check=False,
    )
    assert run.returncode != 0 and "'classes'" in run.stderr and str(manifest_path(model)) in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "o.mp4").exists()


def test_the_tensorrt_backend_checks_the_contract_before_tensorrt_loads(tmp_path):
    model = stamped_copy(tmp_path / "m")
    edit(model, TAMPERS["classes"])
    with pytest.raises(ConfigError, match="'classes'"):
        create_backend("tensorrt", model, load_manifest(model))


def test_selfcheck_refuses_a_manifest_of_another_graph(tmp_path, capsys):
    from edge_runtime.cli import main

    model = stamped_copy(tmp_path / "m")
    edit(model, TAMPERS["threshold"])
    rc = main(["selfcheck", "--model", str(model), "--max-frames", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "'threshold'" in err and len(err.splitlines()) == 1


def test_an_older_export_without_the_contract_loads_with_a_warning(tmp_path, caplog):
    model = copy_model(DEFAULT_MODEL, tmp_path / "old")
    graph = onnx.load(str(model))
    del graph.metadata_props[:]  # as `sonomap export onnx` wrote graphs before the contract
    onnx.save(graph, str(model))
    save_manifest(load_manifest(model, verify_hash=False), model)
    with caplog.at_level(logging.WARNING, logger="sonomap.model_contract"):
        backend = create_backend("onnxruntime", model, load_manifest(model), device="cpu")
    assert backend.infer(np.zeros((64, 64), np.uint8)).mask.shape == (64, 64)
    assert "no model contract" in caplog.text and str(model) in caplog.text


def test_a_graph_built_by_other_means_loads_with_a_note(caplog):
    """No exporter in its manifest: nothing to re-export, so the missing contract is only noted."""
    assert CONTRACT_KEY not in metadata(dark_onnx())
    with caplog.at_level(logging.INFO, logger="sonomap.model_contract"):
        create_backend("onnxruntime", dark_onnx(), load_manifest(dark_onnx()), device="cpu")
    assert [r.levelno for r in caplog.records if "no model contract" in r.message] == [logging.INFO]


def test_a_contract_of_another_version_is_refused(tmp_path):
    model = stamped_copy(tmp_path / "m")
    manifest = load_manifest(model)
    other = {CONTRACT_KEY: json.dumps({**contract_of(manifest), "version": 99})}
    with pytest.raises(ConfigError, match="contract version"):
        check_contract(other, manifest, model)


def test_export_stamps_the_contract_and_the_fp16_twin_keeps_it(tmp_path):
    from export.fp16 import convert_fp16

    exported = shared_tiny_onnx()
    manifest = load_manifest(exported)
    assert metadata(exported)[CONTRACT_KEY] == contract_props(manifest)[CONTRACT_KEY]
    assert check_contract(metadata(exported), manifest, exported) is True
    twin = convert_fp16(copy_model(exported, tmp_path / "t"))
    assert metadata(twin)[CONTRACT_KEY] == contract_props(manifest)[CONTRACT_KEY]


@pytest.mark.parametrize("model", [DEFAULT_MODEL, FP16_MODEL], ids=["fp32", "fp16"])
def test_the_shipped_models_carry_a_contract_that_matches_their_manifests(model):
    assert check_contract(metadata(model), load_manifest(model), model) is True
