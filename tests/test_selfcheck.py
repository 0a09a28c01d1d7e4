"""`sonomap selfcheck` on this machine: versions, ONNX Runtime on real frames, and a clear
non-zero exit because TensorRT/pycuda cannot be installed here. The GPU test runs the full
check (engine build, cache reuse, agreement) where a GPU with TensorRT exists."""

from __future__ import annotations

import importlib.util

import pytest
from export_fixtures import shared_checkpoint, shared_tiny_onnx

from edge_runtime.cli import main
from edge_runtime.tensorrt.cache import DEFAULT_CACHE_DIR, SERVICE_CACHE_DIR
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


@pytest.mark.skipif(HAS_TRT, reason="TensorRT and pycuda are installed here")
def test_selfcheck_says_which_engine_cache_it_checks(tiny_onnx, busi_sample, tmp_path, capsys):
    """From a shell the default cache is the user's, not the service's: the output says which one
    is checked and how to check the service's."""
    frames = ["--frames", str(busi_sample / "images"), "--max-frames", "1"]
    main(["selfcheck", "--model", str(tiny_onnx), *frames])
    out = capsys.readouterr().out
    assert f"engine cache {DEFAULT_CACHE_DIR}" in out
    if DEFAULT_CACHE_DIR != SERVICE_CACHE_DIR:
        assert f"--cache-dir {SERVICE_CACHE_DIR}" in out
    main(["selfcheck", "--model", str(tiny_onnx), *frames, "--cache-dir", str(tmp_path / "engines")])
    assert f"engine cache {tmp_path / 'engines'}" in capsys.readouterr().out


def test_selfcheck_missing_model(tmp_path, capsys):
    rc = main(["selfcheck", "--model", str(tmp_path / "none.onnx")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "none.onnx" in err and len(err.splitlines()) == 1


def test_selfcheck_bad_frames_dir(tiny_onnx, tmp_path, capsys):
    rc = main(["selfcheck", "--model", str(tiny_onnx), "--frames", str(tmp_path)])
    assert rc == 2 and "no images" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_TRT, reason="TensorRT/pycuda not installed")
def test_selfcheck_on_gpu_builds_then_reuses(busi_sample, tmp_path, capsys):
    # 'export onnx --fp16' makes the model and its FP16 twin and checks both: the strongly typed path
    # (TensorRT >= 10.12) builds from the twin and refuses one whose check did not pass
    model = tmp_path / "model" / "model.onnx"
    model.parent.mkdir()
    frames = ["--frames", str(busi_sample / "images")]
    export = ["export", "onnx", "--checkpoint", str(shared_checkpoint()), "--out", str(model), "--fp16"]
    assert main([*export, *frames, "--parity-frames", "4"]) == 0
    capsys.readouterr()
    args = ["selfcheck", "--model", str(model), *frames, "--max-frames", "4"]
    args += ["--cache-dir", str(tmp_path / "engines")]
    assert main(args) == EXIT_OK
    assert "built" in capsys.readouterr().out
    assert main(args) == EXIT_OK
    assert "loaded from cache" in capsys.readouterr().out
