"""A manifest's calibration must be what the model applies: a temperature that is not a finite number
> 0 is refused on load (inf would make every probability 0.5), and for a folded ONNX graph the
temperature and the calibration curve are checked against the graph's own contract, so an edited
manifest is refused in one line naming the key instead of being reported as applied. A contract
stamped before those two keys existed still loads, with a warning.

Real files: copies of the shipped model (which carries the whole contract), the shared tiny
checkpoint, ONNX Runtime through the runtime's backend factory and `sonomap evaluate` itself."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import onnx
import pytest
import yaml
from cli import sonomap
from export_fixtures import copy_model, shared_checkpoint, tiny_manifest

from edge_runtime.backends import create_backend
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import Manifest, load_manifest, manifest_path, save_manifest
from edge_runtime.model_contract import CONTRACT_KEY, check_contract, contract_of, curve_digest
from export.parity import ort_session

FP16_MODEL = DEFAULT_MODEL.with_name("model.fp16.onnx")
CALIBRATION_TAMPERS = {  # manifest key -> an edit that changes what the report would say is applied
    "temperature": lambda m: m.update(temperature=1.0),
    "calibration_curve": lambda m: m.pop("calibration_curve"),
}


def edit(model, change) -> None:
    """Edit the manifest beside ``model`` as a YAML file (its sha256 still matches the model)."""
    data = yaml.safe_load(manifest_path(model).read_text())
    change(data)
    manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))


def metadata(model) -> dict[str, str]:
    return ort_session(model).get_modelmeta().custom_metadata_map


@pytest.mark.parametrize("bad", [".inf", ".nan", "-.inf", "0.0"])
def test_a_temperature_that_is_no_finite_positive_number_is_refused(bad):
    data = tiny_manifest().to_dict()
    data["temperature"] = yaml.safe_load(bad)  # as the YAML file spells it
    with pytest.raises(ConfigError, match=r"m\.yaml: 'temperature' must be a finite number > 0"):
        Manifest.from_dict(data, origin="m.yaml")


@pytest.mark.parametrize(("key", "bad"), [("std", ".inf"), ("std", ".nan"), ("std", "0.0"), ("mean", ".nan")])
def test_a_normalisation_that_is_no_finite_number_is_refused(key, bad):
    data = tiny_manifest().to_dict()
    data["normalisation"][key] = yaml.safe_load(bad)
    with pytest.raises(ConfigError, match=r"m\.yaml: 'normalisation' needs finite mean, std > 0"):
        Manifest.from_dict(data, origin="m.yaml")


def test_evaluate_refuses_a_checkpoint_whose_manifest_has_an_infinite_temperature(tmp_path, busi_dataset):
    ck = tmp_path / "inf" / "tiny.pt"
    ck.parent.mkdir()
    shutil.copy2(shared_checkpoint(), ck)
    save_manifest(load_manifest(shared_checkpoint()), ck)
    text = manifest_path(ck).read_text()
    assert "temperature: 1.0\n" in text
    manifest_path(ck).write_text(text.replace("temperature: 1.0\n", "temperature: .inf\n"))
    out = tmp_path / "report"
    run = sonomap("evaluate", "--checkpoint", ck, "--data", busi_dataset, "--out", out, check=False)
    err = run.stderr.strip()
    assert run.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(manifest_path(ck)) in err and "'temperature'" in err and "inf" in err
    assert not out.exists()


@pytest.mark.parametrize("model", [DEFAULT_MODEL, FP16_MODEL], ids=["fp32", "fp16"])
def test_the_shipped_models_stamp_the_calibration_they_apply(model):
    stamped = json.loads(metadata(model)[CONTRACT_KEY])
    manifest = load_manifest(model)
    assert stamped["temperature"] == manifest.temperature
    assert stamped["calibration_curve"] == curve_digest(manifest.calibration_curve) is not None


@pytest.mark.parametrize("key", sorted(CALIBRATION_TAMPERS))
def test_an_edited_calibration_is_refused_in_one_line(tmp_path, key):
    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    edit(model, CALIBRATION_TAMPERS[key])
    with pytest.raises(ConfigError) as caught:
        create_backend("onnxruntime", model, load_manifest(model), device="cpu")
    message = str(caught.value)
    assert str(manifest_path(model)) in message and f"'{key}'" in message and "\n" not in message
    assert "does not belong to the graph" in message


def test_evaluate_refuses_an_onnx_manifest_whose_temperature_the_graph_does_not_apply(tmp_path, busi_dataset):
    model = copy_model(DEFAULT_MODEL, tmp_path / "m")
    edit(
        model, lambda m: (CALIBRATION_TAMPERS["temperature"](m), CALIBRATION_TAMPERS["calibration_curve"](m))
    )
    out = tmp_path / "report"
    run = sonomap("evaluate", "--checkpoint", model, "--data", busi_dataset, "--out", out, check=False)
    err = run.stderr.strip()
    assert run.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "'temperature' says 1.0" in err and str(manifest_path(model)) in err
    assert not out.exists()


def test_a_contract_stamped_before_the_calibration_keys_loads_with_a_warning(tmp_path, caplog):
    """A graph exported between the first contract and this one: still served; classes and
    threshold are checked, temperature and curve are taken on trust (and said so)."""
    model = copy_model(DEFAULT_MODEL, tmp_path / "older")
    manifest = load_manifest(model)
    graph = onnx.load(str(model))
    older = {k: v for k, v in contract_of(manifest).items() if k not in ("temperature", "calibration_curve")}
    onnx.helper.set_model_props(graph, {CONTRACT_KEY: json.dumps(older)})
    onnx.save(graph, str(model))
    save_manifest(load_manifest(model, verify_hash=False), model)
    edit(model, CALIBRATION_TAMPERS["temperature"])  # not detectable from such a contract
    with caplog.at_level(logging.WARNING, logger="sonomap.model_contract"):
        assert check_contract(metadata(model), load_manifest(model), model) is True
        backend = create_backend("onnxruntime", model, load_manifest(model), device="cpu")
    assert backend.infer(np.zeros((64, 64), np.uint8)).mask.shape == (64, 64)
    assert "predates temperature and calibration_curve" in caplog.text and str(model) in caplog.text
    edit(model, lambda m: m.update(threshold=0.9))  # the rest of that contract is still checked
    with pytest.raises(ConfigError, match="'threshold'"):
        check_contract(metadata(model), load_manifest(model), model)


def test_the_curve_digest_ignores_how_a_number_is_written():
    assert curve_digest({"margin": [-1, 1], "prob": [0, 1]}) == curve_digest(
        {"margin": [-1.0, 1.0], "prob": [0.0, 1.0]}
    )
    assert curve_digest(None) is None
