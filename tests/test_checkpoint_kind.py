"""A file given where a training checkpoint goes that is none (an ONNX or TorchScript model, a TensorRT
engine, a manifest, an empty or foreign file) is named as what it is, with what to give instead; the
advice to run `sonomap upgrade-checkpoint` is only for a real older pickle checkpoint. Real files:
the shipped ONNX model, a TorchScript archive torch writes, real old-format checkpoints."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from cli import sonomap

from edge_runtime.errors import InputError
from training.checkpoint import read_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHIPPED_ONNX = REPO / "edge_runtime" / "models" / "default" / "model.onnx"
UPGRADE = "upgrade-checkpoint"
TINY = {
    "model": {"arch": "unet_small", "width": 4},
    "data": {"input_height": 32, "input_width": 32},
    "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1},
}


def one_line_error(result, command: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"sonomap {command}: error: "), result.stderr[-2000:]
    return lines[0]


def torchscript_model(path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 2, 3)), str(path))
    return path


def test_export_onnx_names_an_onnx_model_given_as_checkpoint(tmp_path):
    result = sonomap(
        "export", "onnx", "--checkpoint", SHIPPED_ONNX, "--out", tmp_path / "x.onnx", check=False
    )
    line = one_line_error(result, "export")
    assert f"{SHIPPED_ONNX}: is an ONNX model, not a training checkpoint" in line
    assert "best.pt" in line and UPGRADE not in line and "trust" not in line
    assert (
        "python -m training.recover MODEL.onnx OUT/best.pt rebuilds it" in line
    )  # the shipped model has none
    assert list(tmp_path.iterdir()) == []


def test_train_init_from_an_onnx_model_names_it(tmp_path, busi_dataset):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    fp16 = SHIPPED_ONNX.with_name("model.fp16.onnx")
    result = sonomap(
        "train",
        "--config",
        config,
        "--data",
        busi_dataset,
        "--out",
        tmp_path / "run",
        "--init-from",
        fp16,
        "--no-progress",
        "--device",
        "cpu",
        check=False,
    )
    line = one_line_error(result, "train")
    assert f"{fp16}: is an ONNX model, not a training checkpoint" in line and UPGRADE not in line


@pytest.mark.parametrize(
    "name,make,kind",
    [
        ("model.ts", torchscript_model, "is a TorchScript model"),
        ("model.engine", lambda p: p.write_bytes(bytes(range(256)) * 8), "is a TensorRT engine"),
        ("best.pt", lambda p: p.write_bytes(b""), "is an empty file"),
        ("best.pt", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)), "is not a torch checkpoint"),
        ("config.yaml", lambda p: p.write_text(yaml.safe_dump(TINY)), "is a manifest or config (YAML)"),
        ("notes.pt", lambda p: p.write_text("trained on the cart, see notes\n"), "is a text file"),
    ],
)
def test_a_file_that_is_no_checkpoint_is_named_without_upgrade_advice(tmp_path, name, make, kind):
    path = tmp_path / name
    make(path)
    for trust in (False, True):  # upgrade-checkpoint --trust-checkpoint refuses it the same way
        with pytest.raises(InputError) as caught:
            read_checkpoint(path, trust=trust)
        message = str(caught.value)
        assert message.startswith(f"{path}: {kind}") and UPGRADE not in message, message
        assert "\n" not in message


def test_the_manifest_beside_a_checkpoint_points_to_it(tmp_path):
    checkpoint = tmp_path / "best.pt"
    torch.save({"model": {}, "model_config": {}}, checkpoint)
    manifest = tmp_path / "best.pt.yaml"
    manifest.write_text("schema: sonomap.manifest/1\n")
    with pytest.raises(
        InputError, match=f"is the manifest of a checkpoint, not the checkpoint: give {checkpoint}"
    ):
        read_checkpoint(manifest)


@pytest.mark.parametrize("zip_format", [True, False])
def test_a_real_old_pickle_checkpoint_still_gets_the_upgrade_advice(tmp_path, zip_format):
    """torch.save of numpy objects (what older sonomap wrote), in torch's zip and legacy formats."""
    path = tmp_path / "last.pt"
    payload = {"model": {}, "model_config": {}, "rng": {"numpy": np.random.get_state()}}
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
    assert path.read_bytes()[:4] == b"PK\x03\x04" if zip_format else path.read_bytes()[:1] == b"\x80"
    with pytest.raises(InputError, match="holds Python objects besides tensors") as caught:
        read_checkpoint(path)
    assert f"sonomap {UPGRADE} {path} --trust-checkpoint" in str(caught.value)
    assert read_checkpoint(path, trust=True)["rng"]["numpy"][0] == "MT19937"  # trusted: read as before


@pytest.mark.parametrize(
    "name", ["best.pt", "code.pt", "constants.pt"]
)  # the archive's top folder is the stem
def test_a_plain_checkpoint_still_loads(tmp_path, name):
    path = tmp_path / name
    torch.save({"model": {"w": torch.ones(2)}, "model_config": {"arch": "unet_small"}}, path)
    assert torch.equal(read_checkpoint(path)["model"]["w"], torch.ones(2))
