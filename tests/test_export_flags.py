"""Flags of `sonomap export onnx|tensorrt` and `sonomap selfcheck` that used to pass unchecked: each
bad value is one line naming the flag (or the file), before any work. No TensorRT or torch_tensorrt
is needed: every check here runs before either is imported."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from cli import sonomap
from export_fixtures import shared_tiny_onnx

from edge_runtime.cli import main
from edge_runtime.errors import ConfigError
from edge_runtime.tensorrt.engines import MAX_WORKSPACE_MB
from export.shapes import MAX_BATCH, MAX_SIDE

HAS_TORCH_TRT = importlib.util.find_spec("torch_tensorrt") is not None
HUGE = "100000000000000000000"
TABLE = json.loads((Path(__file__).parent / "data" / "torch_tensorrt_signatures.json").read_text())
PRECISION_KEYWORDS = {"enabled_precisions", "enable_autocast", "autocast_low_precision_type"}


@pytest.fixture(scope="module")
def tiny_onnx():
    return shared_tiny_onnx()


def _one_line(capsys, rc: int) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _parser_error(capsys, argv: list[str]) -> str:
    """argparse refuses the value: exit 2, its last stderr line names the option."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


def _onnx_args(tmp_path) -> list[str]:
    # the checkpoint is never read: every flag below is refused first
    return ["export", "onnx", "--checkpoint", str(tmp_path / "ck.pt"), "--out", str(tmp_path / "m.onnx")]


@pytest.mark.parametrize("value, says", [(HUGE, f"<= {MAX_BATCH}"), ("65", f"<= {MAX_BATCH}"), ("0", ">= 1")])
def test_max_batch_is_bounded(tmp_path, capsys, value, says):
    line = _parser_error(capsys, [*_onnx_args(tmp_path), "--dynamic-batch", "--max-batch", value])
    assert "argument --max-batch" in line and says in line
    assert list(tmp_path.iterdir()) == []


def test_max_batch_without_dynamic_batch_is_refused(tmp_path, capsys):
    err = _one_line(capsys, main([*_onnx_args(tmp_path), "--max-batch", "8"]))
    assert "--max-batch 8 needs --dynamic-batch" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["--min-hw", "--opt-hw", "--max-hw"])
def test_a_dynamic_range_beside_a_fixed_roi_is_refused_not_dropped(tmp_path, capsys, flag):
    err = _one_line(capsys, main([*_onnx_args(tmp_path), "--roi", "96x96", flag, "64x64"]))
    assert f"{flag} set a dynamic ROI's range; with --roi 96x96 the ROI is fixed" in err
    assert list(tmp_path.iterdir()) == []


def test_tensorrt_names_a_missing_onnx_model_not_its_manifest(tmp_path, capsys):
    missing = tmp_path / "nonexist.onnx"
    err = _one_line(
        capsys, main(["export", "tensorrt", "--onnx", str(missing), "--out", str(tmp_path / "eng")])
    )
    assert f"--onnx {missing}: file not found" in err


@pytest.mark.parametrize(
    "flag, value", [("--max-hw", "100000x100000"), ("--roi", f"{MAX_SIDE + 1}x64"), ("--min-hw", "64x9000")]
)
def test_frame_sides_are_bounded(tmp_path, capsys, flag, value):
    err = _one_line(capsys, main([*_onnx_args(tmp_path), flag, value]))
    assert flag in err and str(MAX_SIDE) in err
    assert list(tmp_path.iterdir()) == []


def test_largest_allowed_shapes_are_accepted():
    from export.onnx_command import shape_spec_from_args

    args = SimpleNamespace(
        roi=None,
        dynamic_batch=True,
        max_batch=MAX_BATCH,
        min_hw=None,
        opt_hw=None,
        max_hw=f"{MAX_SIDE}x{MAX_SIDE}",
    )
    spec = shape_spec_from_args(args)
    assert spec.profile()["max"] == [MAX_BATCH, 1, MAX_SIDE, MAX_SIDE]
    fixed = shape_spec_from_args(SimpleNamespace(**{**vars(args), "dynamic_batch": False, "max_batch": None}))
    assert fixed.profile()["max"][0] == 1


@pytest.mark.parametrize("value, says", [("1", ">= 64"), (HUGE, f"<= {MAX_WORKSPACE_MB}")])
def test_workspace_is_bounded(tmp_path, capsys, value, says):
    line = _parser_error(
        capsys, ["export", "tensorrt", "--out", str(tmp_path / "e"), "--workspace-mb", value]
    )
    assert "argument --workspace-mb" in line and says in line


@pytest.mark.parametrize(
    "flag, value",
    [("--max", "1x1x100000x100000"), ("--max", f"{MAX_BATCH + 1}x1x480x640"), ("--opt", "1x1x9000x64")],
)
def test_profile_shapes_are_bounded_before_tensorrt_loads(tiny_onnx, tmp_path, capsys, flag, value):
    rc = main(["export", "tensorrt", "--onnx", str(tiny_onnx), "--out", str(tmp_path / "e"), flag, value])
    err = _one_line(capsys, rc)
    assert flag in err and "at most" in err and "tensorrt' not found" not in err
    assert not (tmp_path / "e").exists()


def test_selfcheck_refuses_a_checkpoint_in_one_line(tiny_onnx, capsys):
    checkpoint = tiny_onnx.parent / "ck" / "tiny.pt"
    err = _one_line(capsys, main(["selfcheck", "--model", str(checkpoint)]))
    assert str(checkpoint) in err and "format 'checkpoint'" in err and "sonomap export onnx" in err


def test_selfcheck_refuses_a_manifest_without_an_input_shape(tiny_onnx, tmp_path, capsys):
    from export_fixtures import copy_model

    from edge_runtime.manifest import load_manifest, save_manifest

    model = copy_model(tiny_onnx, tmp_path)
    manifest = load_manifest(model)
    manifest.io = {**manifest.io, "inputs": [{"name": "frame", "dtype": "uint8"}]}
    save_manifest(manifest, model)
    err = _one_line(capsys, main(["selfcheck", "--model", str(model)]))
    assert "model.onnx.yaml" in err and "io.inputs[0].shape" in err


def _torch_trt_args(tiny_onnx, out: Path, *extra: str) -> list[str]:
    checkpoint = tiny_onnx.parent / "ck" / "tiny.pt"
    return [
        "export",
        "tensorrt",
        "--via",
        "torch-tensorrt",
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize(
    "shapes, says",
    [
        (["--min", "1x1x500x500", "--max", "1x1x100x100"], "min <= opt <= max"),
        (["--opt", "1x1x64x64", "--min", "1x1x128x128"], "min <= opt <= max"),
        (["--max", "1x1x9000x9000"], "--max"),
    ],
)
def test_torch_tensorrt_checks_the_range_before_loading(tiny_onnx, tmp_path, capsys, shapes, says):
    err = _one_line(capsys, main(_torch_trt_args(tiny_onnx, tmp_path, *shapes)))
    assert says in err and "torch_tensorrt not found" not in err


def test_torch_tensorrt_replaces_a_program_only_with_force(tiny_onnx, tmp_path, capsys):
    program = tmp_path / "model.ep"
    program.write_bytes(b"an earlier program")
    # in a process of its own: the in-process redactor may hold terms other tests registered
    # (a DICOM's identifiers), which could cut the path this checks for
    result = sonomap(*_torch_trt_args(tiny_onnx, tmp_path), check=False)
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(program) in err and "--force" in err
    assert program.read_bytes() == b"an earlier program"
    if not HAS_TORCH_TRT:  # with --force the flags pass, and the missing package is what stops it
        err = _one_line(capsys, main(_torch_trt_args(tiny_onnx, tmp_path, "--force")))
        assert "torch_tensorrt not found" in err


def test_torch_tensorrt_save_is_atomic(tmp_path):
    from export.torch_trt import save_program

    program = tmp_path / "model.ep"
    program.write_bytes(b"the good program")

    def failing_save(compiled, path, **kwargs):
        Path(path).write_bytes(b"half a progr")
        raise RuntimeError("out of GPU memory while serialising")

    with pytest.raises(RuntimeError):
        save_program(failing_save, object(), program, example=None)
    assert program.read_bytes() == b"the good program"
    assert [p.name for p in tmp_path.iterdir()] == ["model.ep"]  # no temp file left

    def save(compiled, path, arg_inputs, retrace):
        Path(path).write_bytes(b"the new program")

    save_program(save, object(), program, example=None)
    assert program.read_bytes() == b"the new program"
    assert [p.name for p in tmp_path.iterdir()] == ["model.ep"]


@pytest.mark.parametrize("version", ["2.5.0", "2.9.0", "2.10.0", "2.13.0"])
def test_torch_tensorrt_honours_fp16(version):
    """Without --fp16 no precision keyword is passed (each release then builds FP32, as the ONNX path
    does); with it, the release's FP16 keyword."""
    from export.torch_trt import compile_kwargs

    fields = set(TABLE["versions"][version]["CompilationSettings"])
    assert not PRECISION_KEYWORDS & set(compile_kwargs(fields, torch, None, 1024, fp16=False))
    assert PRECISION_KEYWORDS & set(compile_kwargs(fields, torch, None, 1024, fp16=True))


def test_torch_tensorrt_manifest_records_the_precision():
    from edge_runtime.manifest import load_manifest
    from export.selfcheck import DEFAULT_MODEL
    from export.torch_trt import compiled_manifest

    source = load_manifest(DEFAULT_MODEL)
    shapes = {"min": [1, 1, 64, 64], "opt": [1, 1, 64, 64], "max": [1, 1, 64, 64]}
    manifest = compiled_manifest(source, DEFAULT_MODEL, shapes, {}, precision="fp32")
    assert manifest.extra["precision"] == "fp32"


def test_programmatic_profile_is_checked_too(tiny_onnx):
    from export.tensorrt_command import profile_from_args

    with pytest.raises(ConfigError, match="--min"):
        profile_from_args(SimpleNamespace(min_shape="70x1x64x64", opt_shape=None, max_shape=None), tiny_onnx)
