"""The normalisation a folded graph bakes in (mean/std) is part of the model contract, checked where
the graph's contract carries it: a manifest whose mean or std is edited is refused by the runtime and
by `training.recover`, which also checks the rest of the contract before building a checkpoint from
the manifest. The shipped default model, whose contract has no normalisation, still loads (noted at
info level). The manifest keys the runtime implements one value of (``input.channels``,
``normalisation.scale``) refuse any other, naming the file and the key.

Real files: copies of the shipped model, stamped the way `sonomap export onnx` stamps.
"""

from __future__ import annotations

import logging

import pytest
from export_fixtures import copy_model
from runtime_model import dark_onnx
from test_model_contract import edit, stamped_copy

from edge_runtime.backends import create_backend
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path
from edge_runtime.model_contract import check_model_file

EDITS = {
    "normalisation.mean": lambda m: m["normalisation"].update(mean=0.5),
    "normalisation.std": lambda m: m["normalisation"].update(std=0.25),
}
SWAPPED_CLASSES = [
    {"id": 0, "name": "cancer", "color": [255, 40, 40]},
    {"id": 1, "name": "tissue", "color": [0, 0, 0]},
]
FIXED_KEYS = {  # a value the runtime does not implement -> the key named in the refusal
    "input.channels": [("input", "channels", 3), ("input", "channels", 0), ("input", "channels", -7)],
    "normalisation.scale": [("normalisation", "scale", "1/65535")],
}


@pytest.mark.parametrize("key", sorted(EDITS))
def test_an_edited_mean_or_std_is_refused_by_the_runtime(tmp_path, key):
    model = stamped_copy(tmp_path / "m")
    assert check_model_file(model, load_manifest(model)) is True
    edit(model, EDITS[key])
    with pytest.raises(ConfigError) as caught:
        create_backend("onnxruntime", model, load_manifest(model), device="cpu")
    message = str(caught.value)
    assert str(manifest_path(model)) in message and f"'{key}'" in message and "\n" not in message


@pytest.mark.parametrize(
    "model", [DEFAULT_MODEL, DEFAULT_MODEL.with_name("model.fp16.onnx")], ids=["fp32", "fp16"]
)
def test_the_shipped_models_contract_without_normalisation_still_loads_with_a_note(model, caplog):
    with caplog.at_level(logging.INFO, logger="sonomap.model_contract"):
        assert check_model_file(model, load_manifest(model)) is True
    notes = [r for r in caplog.records if "predates normalisation" in r.getMessage()]
    assert [r.levelno for r in notes] == [logging.INFO] and str(model) in notes[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "key, change",
    [
        ("normalisation.mean", EDITS["normalisation.mean"]),
        ("classes", lambda m: m.update(classes=SWAPPED_CLASSES)),
    ],
    ids=["mean", "classes"],
)
def test_recover_refuses_a_manifest_that_does_not_describe_its_graph(tmp_path, key, change):
    from training.recover import recover_checkpoint

    model = stamped_copy(tmp_path / "m")
    edit(model, change)
    out = tmp_path / "rec" / "best.pt"
    with pytest.raises(ConfigError, match=f"'{key}'"):
        recover_checkpoint(model, out)
    assert not out.exists()


@pytest.mark.parametrize(
    "key, section, name, value", [(key, *edit_) for key, edits in FIXED_KEYS.items() for edit_ in edits]
)
def test_a_manifest_key_with_a_value_the_runtime_does_not_implement_is_refused(
    tmp_path, key, section, name, value
):
    model = copy_model(dark_onnx(), tmp_path / "m")
    load_manifest(model)  # the defaults load
    edit(model, lambda m: m[section].update({name: value}))
    with pytest.raises(ConfigError) as caught:
        load_manifest(model)
    message = str(caught.value)
    assert str(manifest_path(model)) in message and f"'{key}'" in message and "\n" not in message
