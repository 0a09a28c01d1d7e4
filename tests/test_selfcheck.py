"""`sonomap selfcheck` on this machine: versions, ONNX Runtime on real frames, and a clear
non-zero exit because TensorRT/pycuda cannot be installed here. The GPU test runs the full
check (engine build, cache reuse, agreement) where a GPU with TensorRT exists."""

from __future__ import annotations

import importlib.util

import pytest
from export_fixtures import copy_model, shared_tiny_onnx

from edge_runtime.cli import main
from export.selfcheck import DEFAULT_MODEL, EXIT_NO_TENSORRT, EXIT_OK

HAS_TRT = importlib.util.find_spec("tensorrt") is not None and importlib.util.find_spec("pycuda") is not None


@pytest.fixture(scope="module")
def tiny_onnx():
    return shared_tiny_onnx()


@pytest.mark.skipif(HAS_TRT, reason="TensorRT and pycuda are installed here")
def test_selfcheck_without_tensorrt(tiny_onnx, busi_sample, capsys):
    rc = main(
        ["selfcheck", "--model", str(tiny_onnx), "--frames", str(busi_sample / "images"), "--max-frames", "3"]
    )
    out = capsys.readouterr().out
    assert rc == EXIT_NO_TENSORRT
    assert "onnxruntime" in out and "tensorrt     not installed" in out
    assert "ONNX Runtime CPUExecutionProvider on a" in out and "runs" in out and "p50" in out
    assert "TensorRT check NOT run" in out and "pip install sonomap[tensorrt]" in out


@pytest.mark.skipif(HAS_TRT, reason="TensorRT and pycuda are installed here")
@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="shipped default model not present yet")
def test_selfcheck_default_model(capsys):
    rc = main(["selfcheck", "--max-frames", "2"])
    assert rc == EXIT_NO_TENSORRT and str(DEFAULT_MODEL) in capsys.readouterr().out


def test_selfcheck_missing_model(tmp_path, capsys):
    rc = main(["selfcheck", "--model", str(tmp_path / "none.onnx")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "none.onnx" in err and len(err.splitlines()) == 1


def test_selfcheck_bad_frames_dir(tiny_onnx, tmp_path, capsys):
    rc = main(["selfcheck", "--model", str(tiny_onnx), "--frames", str(tmp_path)])
    assert rc == 2 and "no images" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TRT, reason="TensorRT/pycuda not installed")
def test_selfcheck_on_gpu_builds_then_reuses(tiny_onnx, busi_sample, tmp_path, capsys):
    model = copy_model(tiny_onnx, tmp_path / "model")
    args = [
        "selfcheck",
        "--model",
        str(model),
        "--frames",
        str(busi_sample / "images"),
        "--max-frames",
        "4",
        "--cache-dir",
        str(tmp_path / "engines"),
    ]
    from export.fp16 import convert_fp16

    convert_fp16(model)  # the strongly typed path (TensorRT >= 10.12) needs the FP16 twin
    assert main(args) == EXIT_OK
    assert "built" in capsys.readouterr().out
    assert main(args) == EXIT_OK
    assert "loaded from cache" in capsys.readouterr().out
