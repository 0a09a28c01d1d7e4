"""The runtime serves ONNX, TensorRT engines and TorchScript. Given a training checkpoint or a
Torch-TensorRT program (``model.ep``), or a model its chosen backend does not load, it says so in one
line naming the file and what to serve instead, before any loader meets the bytes (which reported a
protobuf or zip parse error about the wrong kind of file)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from cli import one_line_error
from export_fixtures import shared_checkpoint, shared_tiny_onnx
from runtime_model import tiny_onnx

from edge_runtime.backends import create_backend
from edge_runtime.cli import main
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, save_manifest

FOREIGN_BYTES = b"not a model of any kind " * 64


def _artifact(folder: Path, name: str, model_format: str) -> Path:
    """``folder/name`` (bytes no loader reads) with a manifest of ``model_format`` derived from a real
    model's: everything but the file, its hash and its format as an export writes it."""
    path = folder / name
    path.write_bytes(FOREIGN_BYTES)
    manifest = load_manifest(shared_tiny_onnx()).derive(format=model_format, file=name)
    save_manifest(manifest, path, sha256=hashlib.sha256(FOREIGN_BYTES).hexdigest())
    return path


def _replay(model: Path, out: Path, capsys, *extra: str) -> str:
    code = main(
        ["replay", "synthetic", "--model", str(model), "--max-frames", "2", "--out", str(out), *extra]
    )
    return one_line_error(capsys, code)


def test_replay_of_a_training_checkpoint_says_to_export_it(tmp_path, capsys):
    checkpoint = tmp_path / "best.pt"
    source = shared_checkpoint()
    shutil.copy2(source, checkpoint)
    shutil.copy2(source.with_name(source.name + ".yaml"), checkpoint.with_name("best.pt.yaml"))
    manifest = checkpoint.with_name("best.pt.yaml")
    manifest.write_text(manifest.read_text().replace(source.name, "best.pt"))
    err = _replay(checkpoint, tmp_path / "o.mp4", capsys)
    assert "best.pt: a training checkpoint" in err and "sonomap export onnx --checkpoint best.pt" in err
    assert not (tmp_path / "o.mp4").exists()


def test_replay_of_a_torch_tensorrt_program_says_what_to_serve(tmp_path, capsys):
    program = _artifact(tmp_path, "model.ep", "torch-tensorrt")
    err = _replay(program, tmp_path / "o.mp4", capsys)
    assert "model.ep: a Torch-TensorRT program" in err and "serve the ONNX model" in err
    assert "protobuf" not in err.lower()


@pytest.mark.parametrize(
    "backend, name, model_format",
    [("onnxruntime", "model.engine", "tensorrt"), ("tensorrt", "model.ts", "torchscript")],
)
def test_a_backend_named_for_a_format_it_does_not_load_is_refused_by_name(
    tmp_path, backend, name, model_format
):
    model = _artifact(tmp_path, name, model_format)
    with pytest.raises(
        ConfigError, match=rf"inference.backend {backend} loads .* but {name} is {model_format}"
    ):
        create_backend(backend, model, load_manifest(model), device="cpu")


def test_the_torch_backend_named_for_an_onnx_model_is_refused_before_torch_loads(tmp_path, capsys):
    model = tiny_onnx()
    err = _replay(model, tmp_path / "o.mp4", capsys, "--backend", "torch")
    assert f"inference.backend torch loads torchscript models, but {model.name} is onnx" in err
