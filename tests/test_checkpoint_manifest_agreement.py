"""The manifest beside a checkpoint must agree with the checkpoint's own copy of it on what the weights
were trained with: the classes (ids and names), the input size and the normalisation. With its sha256
still that of the checkpoint, a manifest with the class names swapped or another input size would
export a graph whose parity check passes (the reference reads the same manifest) and that paints
tissue as cancer or squashes every frame: `sonomap export onnx` refuses it in one line naming the
manifest file and the key, and writes nothing. What `sonomap calibrate` rewrites (threshold,
temperature, calibration curve, mask filter) and the class colours may differ; a checkpoint without
its own copy (an older one) still loads.

Real files: a copy of the shared tiny checkpoint, the real CLI in a subprocess, ONNX Runtime.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from cli import sonomap
from export_fixtures import copy_model, shared_checkpoint, tiny_manifest

from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from export.parity import ort_session
from training.checkpoint import load_model
from training.checkpoint_save import save_checkpoint
from training.models import build_model

CONTRACT_KEY = "sonomap.model_contract"
PARITY_FRAMES = 2


def swapped_names(manifest: dict) -> None:
    """id 0 = cancer, id 1 = tissue: the names swapped with their colours (a grey cancer colour is
    refused on its own), the ids left."""
    first, second = manifest["classes"][:2]
    for key in ("name", "color"):
        first[key], second[key] = second[key], first[key]


EDITS = {  # manifest key -> an edit of tiny.pt.yaml that leaves its sha256 right
    "classes": swapped_names,
    "input.height": lambda m: m["input"].update(height=2 * m["input"]["height"]),
    "input.width": lambda m: m["input"].update(width=m["input"]["width"] // 2),
    "normalisation.mean": lambda m: m["normalisation"].update(mean=0.5),
    "normalisation.std": lambda m: m["normalisation"].update(std=0.5),
}


def edited_copy(folder, change):
    ck = copy_model(shared_checkpoint(), folder)
    data = yaml.safe_load(manifest_path(ck).read_text())
    change(data)
    manifest_path(ck).write_text(yaml.safe_dump(data, sort_keys=False))
    return ck


def export(ck, out, busi_sample, check: bool = True):
    frames = ("--frames", busi_sample / "images", "--parity-frames", PARITY_FRAMES)
    return sonomap("export", "onnx", "--checkpoint", ck, "--out", out, *frames, check=check)


@pytest.mark.parametrize("key", ["classes", "input.height"])
def test_export_refuses_a_manifest_that_contradicts_the_checkpoint(tmp_path, busi_sample, key):
    ck = edited_copy(tmp_path / "run", EDITS[key])
    out = tmp_path / "out" / "model.onnx"
    result = export(ck, out, busi_sample, check=False)
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{manifest_path(ck)}: manifest key '{key}'" in err, err
    assert not out.exists() and not out.parent.exists()  # nothing written at --out


def test_the_swapped_classes_are_named_both_ways(tmp_path):
    ck = edited_copy(tmp_path, EDITS["classes"])
    with pytest.raises(ConfigError) as caught:
        load_model(ck)
    assert "is [0 'cancer', 1 'tissue'] but tiny.pt was trained with [0 'tissue', 1 'cancer']" in str(
        caught.value
    )


@pytest.mark.parametrize("key", ["input.width", "normalisation.mean", "normalisation.std"])
def test_loading_refuses_another_input_width_or_normalisation(tmp_path, key):
    ck = edited_copy(tmp_path, EDITS[key])
    with pytest.raises(ConfigError) as caught:
        load_model(ck)  # export, evaluate and calibrate all load through it
    message = str(caught.value)
    assert message.startswith(f"{manifest_path(ck)}: manifest key '{key}'") and "\n" not in message


def test_a_calibrated_manifest_still_exports_with_its_calibration(tmp_path, busi_sample):
    ck = copy_model(shared_checkpoint(), tmp_path / "run")
    manifest = load_manifest(ck)
    colours = [c.__class__(id=c.id, name=c.name, color=[230, 9, 9]) for c in manifest.classes]
    save_manifest(manifest.derive(threshold=0.42, temperature=1.7, classes=colours), ck)  # as calibrate does
    out = tmp_path / "out" / "model.onnx"
    export(ck, out, busi_sample)
    exported = load_manifest(out)
    assert (exported.threshold, exported.temperature) == (0.42, 1.7)
    contract = json.loads(ort_session(out).get_modelmeta().custom_metadata_map[CONTRACT_KEY])
    assert contract["cancer_id"] == 1 and contract["input"] == {"height": 64, "width": 64}


def test_a_checkpoint_without_its_own_manifest_copy_still_loads(tmp_path):
    torch.manual_seed(0)
    model = build_model("unet_small", 2, width=4)
    payload = {
        "model": model.state_dict(),
        "model_config": {"arch": "unet_small", "num_classes": 2, "width": 4},
    }
    ck = save_checkpoint(payload, tmp_path / "best.pt", tiny_manifest("unet_small", 32))
    loaded, manifest = load_model(ck)
    assert manifest.input_height == 32
    for key, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[key]), key
