"""`sonomap export torchscript` and the torch backend keep the same contract as the ONNX path: the
manifest records the TorchScript export's own parity verdict (never a copy of the checkpoint's), a
failed one makes the runtime refuse the model, and the file carries the model contract, so a manifest
that contradicts the graph is refused in one line naming the file and the key.

Real files: the shared tiny checkpoint, given the parity record of an ONNX export in its manifest (as
a checkpoint recovered from an ONNX file carries one), exported through the real CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from export_fixtures import copy_model, shared_checkpoint

from edge_runtime.backends import create_backend
from edge_runtime.cli import main
from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.parity_record import refuse_failed_parity
from export.onnx_export import exported_extra
from export.shapes import ShapeSpec
from export.staging import failed_path
from export.torch_trt import compiled_manifest

ONNX_PARITY = {  # what the ONNX export of the same network recorded: not a check of the TorchScript
    "reference": "torch-fp32",
    "candidate": "onnxruntime-fp32",
    "frames": 8,
    "mask_agreement": 1.0,
    "bar": 0.999,
    "passed": True,
}
PARITY_FRAMES = 2
SWAPPED_CLASSES = [
    {"id": 0, "name": "cancer", "color": [255, 40, 40]},
    {"id": 1, "name": "tissue", "color": [0, 0, 0]},
]
TAMPERS = {  # manifest key -> an edit that leaves the sha256 valid but contradicts the graph
    "classes": lambda m: m.update(classes=SWAPPED_CLASSES),
    "threshold": lambda m: m.update(threshold=0.9),
    "temperature": lambda m: m.update(temperature=3.0),
    "input.height": lambda m: m["input"].update(height=128),
    "normalisation.mean": lambda m: m["normalisation"].update(mean=0.5),
}


def checkpoint_with_onnx_parity(folder):
    ck = copy_model(shared_checkpoint(), folder)
    manifest = load_manifest(ck)
    save_manifest(manifest.derive(extra={**manifest.extra, "parity": ONNX_PARITY}), ck)
    return ck


def export(ck, out, busi_sample) -> int:
    frames = ["--frames", str(busi_sample / "images"), "--parity-frames", str(PARITY_FRAMES)]
    return main(["export", "torchscript", "--checkpoint", str(ck), "--out", str(out), *frames])


@pytest.fixture(scope="module")
def exported(tmp_path_factory, busi_sample):
    root = tmp_path_factory.mktemp("ts-contract")
    out = root / "model.ts"
    assert export(checkpoint_with_onnx_parity(root / "ck"), out, busi_sample) == 0
    return out


def test_an_exported_manifest_never_copies_the_checkpoint_parity():
    extra = exported_extra({"parity": ONNX_PARITY, "model_config": {"arch": "x"}}, "fp32")
    assert extra == {"model_config": {"arch": "x"}, "precision": "fp32"}


def test_the_torchscript_manifest_records_its_own_parity(exported):
    record = load_manifest(exported).extra["parity"]
    report = json.loads(exported.with_name(exported.name + ".parity.json").read_text())["torchscript"]
    assert record["candidate"] == "torchscript-fp32" and record["reference"] == "torch-eager-fp32"
    assert record["frames"] == PARITY_FRAMES and record["passed"] is True
    assert record["mask_agreement"] == report["mask_agreement"]


def test_a_torchscript_export_that_failed_parity_is_refused_by_the_runtime(
    tmp_path, busi_sample, monkeypatch, capsys
):
    monkeypatch.setattr("export.torchscript_export.FP32_AGREEMENT_BAR", 1.01)  # no run can reach it
    out = tmp_path / "model.ts"
    assert export(checkpoint_with_onnx_parity(tmp_path / "ck"), out, busi_sample) == 1
    assert "PARITY FAILED" in capsys.readouterr().out
    kept = failed_path(out) / out.name
    assert load_manifest(kept).extra["parity"]["passed"] is False
    with pytest.raises(ConfigError, match="failed parity check") as caught:
        create_backend("torch", kept, load_manifest(kept), device="cpu")
    assert str(kept) in str(caught.value)


def test_the_torch_tensorrt_manifest_says_its_parity_was_not_checked(tmp_path):
    source = load_manifest(DEFAULT_MODEL)  # an ONNX export's manifest: its parity passed
    assert source.extra["parity"]["passed"] is True
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"only its name and sha256 are recorded")
    manifest = compiled_manifest(source, checkpoint, ShapeSpec().profile(), {}, "fp16")
    record = manifest.extra["parity"]
    assert record["passed"] is False and "not checked" in record["note"]
    assert record["candidate"] == "torch-tensorrt-fp16"
    with pytest.raises(ConfigError, match="not checked"):
        refuse_failed_parity(tmp_path / "model.ep", manifest)


@pytest.mark.parametrize("key", sorted(TAMPERS))
def test_a_torchscript_manifest_that_contradicts_the_graph_is_refused(exported, tmp_path, key):
    model = copy_model(exported, tmp_path / "m")
    data = yaml.safe_load(manifest_path(model).read_text())
    TAMPERS[key](data)
    manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        create_backend("torch", model, load_manifest(model), device="cpu")
    message = str(caught.value)
    assert str(manifest_path(model)) in message and f"'{key}'" in message and "\n" not in message


def test_the_matching_torchscript_manifest_is_served(exported):
    backend = create_backend("torch", exported, load_manifest(exported), device="cpu")
    assert backend.infer(np.zeros((64, 64), np.uint8)).mask.shape == (64, 64)


def test_a_torchscript_file_without_the_contract_is_refused_in_one_line(exported, tmp_path):
    import torch

    model = tmp_path / "model.ts"
    torch.jit.load(str(exported)).save(str(model))  # the same graph, saved with no extra files
    save_manifest(load_manifest(exported), model)
    with pytest.raises(ConfigError, match="no model contract") as caught:
        create_backend("torch", model, load_manifest(model), device="cpu")
    message = str(caught.value)
    assert str(model) in message and "re-export" in message and "\n" not in message
