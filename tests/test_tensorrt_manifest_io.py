"""A manifest whose ``io`` keys have the wrong type is refused by the TensorRT path in one line naming
the manifest file and the key: at the backend's start-up check, when the engine is planned, and by
``sonomap replay --backend tensorrt``. The model is a real exported ONNX file; its manifest is edited.

TensorRT and pycuda cannot be installed here: "installed" gives the backend's start-up check the
stand-in module of tests/trt_standins.py (the check reads only its version and BuilderFlag).
"""

from __future__ import annotations

import re

import pytest
import yaml
from export_fixtures import copy_model, shared_tiny_onnx
from trt_standins import runtime_module

import edge_runtime.backends as backends
from edge_runtime.backends import create_backend
from edge_runtime.cli import main
from edge_runtime.errors import EXIT_USER_ERROR, ConfigError
from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.tensorrt import modules
from edge_runtime.tensorrt.engines import plan_engine
from edge_runtime.tensorrt.key import GpuInfo
from edge_runtime.tensorrt.preflight import preflight

ORIN = GpuInfo("Orin", "8.7", 16)
TRT_JETPACK6 = "10.3.0.30"  # the builder-flag path: the FP32 ONNX is parsed, no FP16 twin needed


def _drop(key):
    return lambda io: io["profile"].pop(key)


def _set(value, *keys):
    def change(io):
        parent = io
        for key in keys[:-1]:
            parent = parent[key]
        parent[keys[-1]] = value

    return change


BAD_IO = {
    "inputs-text": (
        _set("frame", "inputs"),
        r"'io\.inputs' must be a list of \{name, dtype, shape\}.*'frame'",
    ),
    "inputs-names": (_set(["frame"], "inputs"), r"'io\.inputs' must be a list.*\['frame'\]"),
    "opset-text": (_set("seventeen", "opset"), r"'io\.opset' must be an integer, got 'seventeen'"),
    "opset-bool": (_set(True, "opset"), r"'io\.opset' must be an integer, got True"),
    "profile-list": (_set([[1, 1, 64, 64]], "profile"), r"'io\.profile' must be a mapping of min/opt/max"),
    "profile-no-max": (_drop("max"), r"'io\.profile' has no 'max'"),
    "profile-max-scalar": (_set(5, "profile", "max"), r"'io\.profile\.max' must be \[N, 1, H, W\].*got 5"),
    "profile-text-side": (_set([1, 1, "64", 64], "profile", "min"), r"'io\.profile\.min' must be"),
    "profile-order": (_set([1, 1, 1000, 64], "profile", "min"), r"'io\.profile' dimension 2 must satisfy"),
}


def edited(tmp_path, change):
    """A copy of the tiny folded model with ``change`` applied to its manifest's ``io`` section."""
    model = copy_model(shared_tiny_onnx(), tmp_path / "m")
    data = yaml.safe_load(manifest_path(model).read_text())
    change(data["io"])
    manifest_path(model).write_text(yaml.safe_dump(data, sort_keys=False))
    return model


def _one_line(exc: pytest.ExceptionInfo, model) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.startswith(f"{manifest_path(model)}: "), text
    return text


@pytest.mark.parametrize("case", sorted(BAD_IO))
def test_a_wrong_io_value_is_one_config_error_naming_the_file_and_key(tmp_path, case):
    change, message = BAD_IO[case]
    model = edited(tmp_path, change)
    with pytest.raises(ConfigError, match=message) as at_start:
        preflight(model, "fp16", TRT_JETPACK6, has_fp16_flag=True)
    with pytest.raises(ConfigError, match=message) as at_plan:
        plan_engine(model, tmp_path / "engines", "fp16", TRT_JETPACK6, ORIN)
    assert _one_line(at_start, model) == _one_line(at_plan, model)


def test_the_shipped_io_section_still_plans_an_engine(tmp_path):
    model = copy_model(shared_tiny_onnx(), tmp_path / "m")
    plan = plan_engine(model, tmp_path / "engines", "fp16", TRT_JETPACK6, ORIN)
    assert plan.key.profile["frame"] == load_manifest(model).io["profile"]


def test_a_manifest_made_in_code_with_a_bad_profile_is_refused_too(tmp_path):
    """save_manifest writes whatever ``io`` holds: the check is on the loaded values, not the YAML."""
    model = copy_model(shared_tiny_onnx(), tmp_path / "m")
    manifest = load_manifest(model)
    manifest.io = {**manifest.io, "profile": {"min": [1, 1, 64, 64], "opt": [1, 1, 64, 64]}}
    save_manifest(manifest, model)
    with pytest.raises(ConfigError, match=r"model\.onnx\.yaml: 'io\.profile' has no 'max'"):
        plan_engine(model, tmp_path / "engines", "fp32", TRT_JETPACK6, ORIN)


@pytest.fixture
def installed(monkeypatch):
    """As on a cart with TensorRT and pycuda installed."""
    lean = pytest.importorskip("tensorrt_lean", reason="tensorrt-lean-cu13 not installed")
    monkeypatch.setattr(backends, "_has", lambda module: True)
    monkeypatch.setattr(modules, "import_tensorrt", lambda: runtime_module(lean))


@pytest.mark.parametrize("case", ["inputs-text", "opset-text", "profile-list"])
def test_the_tensorrt_backend_refuses_it_at_start_up(installed, tmp_path, case):
    change, message = BAD_IO[case]
    model = edited(tmp_path, change)
    with pytest.raises(ConfigError, match=message):
        create_backend("tensorrt", model, load_manifest(model), cache_dir=tmp_path / "engines")


@pytest.mark.parametrize("case", ["inputs-text", "opset-text"])
def test_replay_with_tensorrt_ends_with_one_line(installed, tmp_path, capsys, case):
    change, message = BAD_IO[case]
    model = edited(tmp_path, change)
    argv = ["replay", "synthetic", "--max-frames", "2", "--model", str(model), "--backend", "tensorrt"]
    code = main([*argv, "--out", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("sonomap replay: error: "), err
    assert str(manifest_path(model)) in lines[0] and re.search(message, lines[0]), lines[0]


def test_export_tensorrt_with_shape_flags_names_a_bad_profile_too(tmp_path):
    """'sonomap export tensorrt --min/--opt/--max' reads the manifest's profile as the base of the
    given shapes: a profile of the wrong type is the same one line there."""
    from argparse import Namespace

    from export.tensorrt_command import profile_from_args

    onnx_path = edited(tmp_path, _set([1, 1, 256, 256], "profile"))
    args = Namespace(min_shape="1x1x64x64", opt_shape=None, max_shape=None)
    with pytest.raises(ConfigError, match=r"model.onnx.yaml: 'io.profile' must be a mapping"):
        profile_from_args(args, onnx_path)
