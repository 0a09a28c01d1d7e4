"""`sonomap export tensorrt` argument and environment errors (TensorRT is not installable here;
the build itself is exercised by `sonomap selfcheck` on a GPU machine)."""

from __future__ import annotations

import importlib.util

import pytest
from export_fixtures import shared_tiny_onnx

from edge_runtime.cli import main

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_TORCH_TRT = importlib.util.find_spec("torch_tensorrt") is not None


@pytest.fixture(scope="module")
def tiny_onnx():
    return shared_tiny_onnx()


def _error(capsys, rc):
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_missing_tensorrt(tiny_onnx, tmp_path, capsys):
    rc = main(["export", "tensorrt", "--onnx", str(tiny_onnx), "--out", str(tmp_path / "engines"), "--fp16"])
    assert "TensorRT Python module 'tensorrt' not found" in _error(capsys, rc)
    assert not (tmp_path / "engines").exists()


@pytest.mark.skipif(HAS_TORCH_TRT, reason="torch_tensorrt is installed here")
def test_missing_torch_tensorrt(tiny_onnx, tmp_path, capsys):
    ck = tiny_onnx.parent / "ck" / "tiny.pt"
    rc = main(
        ["export", "tensorrt", "--via", "torch-tensorrt", "--checkpoint", str(ck), "--out", str(tmp_path)]
    )
    assert "torch_tensorrt not found" in _error(capsys, rc)


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["--via", "torch-tensorrt"], "--checkpoint"),
        ([], "--onnx MODEL.onnx is required"),
        (["--onnx", "/nonexistent/model.onnx"], "/nonexistent/model.onnx"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, culprit):
    rc = main(["export", "tensorrt", "--out", str(tmp_path), *args])
    assert culprit in _error(capsys, rc)


def test_bad_profile_shapes(tiny_onnx):
    from types import SimpleNamespace

    from edge_runtime.errors import ConfigError
    from export.tensorrt_command import profile_from_args

    ok = SimpleNamespace(min_shape="1x1x64x64", opt_shape=None, max_shape="1x1x512x512")
    assert profile_from_args(ok, tiny_onnx) == {
        "min": [1, 1, 64, 64],
        "opt": [1, 1, 240, 320],
        "max": [1, 1, 512, 512],
    }
    assert (
        profile_from_args(SimpleNamespace(min_shape=None, opt_shape=None, max_shape=None), tiny_onnx) is None
    )
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        profile_from_args(SimpleNamespace(min_shape="1x1x300x300", opt_shape=None, max_shape=None), tiny_onnx)
    with pytest.raises(ConfigError, match="--max"):
        profile_from_args(SimpleNamespace(min_shape=None, opt_shape=None, max_shape="1x3x512x512"), tiny_onnx)


def test_graph_failing_the_lint_is_refused_before_tensorrt(tmp_path, capsys):
    """A graph TensorRT would reject (uint8 frame read by Shape) stops before any TensorRT import."""
    import onnx
    from export_fixtures import copy_model, old_style

    from edge_runtime.manifest import load_manifest, save_manifest
    from export.selfcheck import DEFAULT_MODEL

    model = copy_model(DEFAULT_MODEL, tmp_path / "old")
    onnx.save(old_style(onnx.load(str(model))), str(model))
    save_manifest(load_manifest(model, verify_hash=False), model)
    rc = main(["export", "tensorrt", "--onnx", str(model), "--out", str(tmp_path / "engines"), "--fp16"])
    err = _error(capsys, rc)
    assert "TensorRT would not build this graph" in err and "UINT8 input 'frame'" in err
    assert not (tmp_path / "engines").exists()


@pytest.mark.parametrize("via", ["tensorrt", "torch-tensorrt"])
def test_out_that_is_not_a_folder_is_refused_before_tensorrt(tiny_onnx, tmp_path, capsys, via):
    """`--out model.onnx` (as if it named the engine file) or a path below a file: one line naming
    --out, before TensorRT (or torch_tensorrt) is looked for, and the file untouched. Without the
    check it surfaced only after the import, when the engine was about to be written."""
    from export_fixtures import copy_model

    model = copy_model(tiny_onnx, tmp_path / "m")
    before = model.read_bytes()
    source = (
        ["--onnx", str(model)]
        if via == "tensorrt"
        else ["--checkpoint", str(tiny_onnx.parent / "ck" / "tiny.pt")]
    )
    for out, culprit in ((model, "exists and is not a folder"), (model / "engines", f"{model} is a file")):
        rc = main(["export", "tensorrt", "--via", via, *source, "--out", str(out)])
        err = _error(capsys, rc)
        assert err.startswith(f"sonomap export: error: --out {out}: ") and culprit in err
    assert model.read_bytes() == before


def test_selfcheck_refuses_a_cache_dir_that_is_a_file(tiny_onnx, tmp_path, capsys):
    blocker = tmp_path / "engines"
    blocker.write_text("kept")
    rc = main(["selfcheck", "--model", str(tiny_onnx), "--max-frames", "1", "--cache-dir", str(blocker)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [
        f"sonomap selfcheck: error: --cache-dir {blocker}: exists and is not a folder: "
        "give the engine cache folder"
    ]
    assert blocker.read_text() == "kept"
