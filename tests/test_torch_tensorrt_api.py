"""Torch-TensorRT API surface: every keyword sonomap passes exists in each supported release.

torch-tensorrt cannot be installed here, so the signatures were read from the real package
source (pytorch/TensorRT at each release tag, parsed with ``ast``) and vendored with their
provenance in tests/data/torch_tensorrt_signatures.json. ``dynamo.compile`` takes ``**kwargs``
and ignores keywords it does not know, so a keyword missing from its named parameters is a
silent change of behaviour (e.g. an FP32 engine where the manifest says FP16), not an error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

from edge_runtime.tensorrt.key import parse_version
from edge_runtime.tensorrt.modules import TensorRTUnavailable
from export.torch_trt import MIN_TORCH_TENSORRT, check_torch_tensorrt_version, compile_kwargs, save_kwargs

tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib to read pyproject.toml")

ROOT = Path(__file__).resolve().parents[1]
TABLE = json.loads((Path(__file__).parent / "data" / "torch_tensorrt_signatures.json").read_text())
VERSIONS = TABLE["versions"]
SUPPORTED = sorted((v for v in VERSIONS if parse_version(v)[:2] >= MIN_TORCH_TENSORRT), key=parse_version)
TOO_OLD = sorted((v for v in VERSIONS if parse_version(v)[:2] < MIN_TORCH_TENSORRT), key=parse_version)
WORKSPACE_MB = 1024


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def _accepted(entry: dict, keyword: str) -> bool:
    """Does torch_tensorrt.compile(ir='dynamo') act on ``keyword``: a named parameter of compile,
    or passed through its **kwargs to a named parameter of dynamo.compile."""
    top, dynamo = entry["torch_tensorrt.compile"], entry["torch_tensorrt.dynamo.compile"]
    return keyword in top["params"] or (top["var_keyword"] is not None and keyword in dynamo["params"])


def test_table_provenance():
    assert TABLE["source"]["repo"] == "pytorch/TensorRT"
    for entry in VERSIONS.values():
        assert len(entry["commit"]) == 40 and entry["tag"].startswith("v") and entry["date"]
    assert "2.5.0" in SUPPORTED and "2.13.0" in SUPPORTED and TOO_OLD == ["2.3.0", "2.4.0"]


@pytest.mark.parametrize("version", SUPPORTED)
def test_compile_keywords_exist(version):
    entry = VERSIONS[version]
    kwargs = compile_kwargs(set(entry["CompilationSettings"]), torch, spec=None, workspace_mb=WORKSPACE_MB)
    unknown = [k for k in kwargs if not _accepted(entry, k)]
    assert not unknown, f"torch-tensorrt {version} would ignore {unknown}"
    fp16 = {k: v for k, v in kwargs.items() if v is torch.float16 or v == {torch.half}}
    assert fp16, f"no FP16 setting passed for torch-tensorrt {version}"


@pytest.mark.parametrize("version", SUPPORTED)
def test_fp16_keyword_per_release(version):
    """>= 2.10: autocast to float16 (the documented keyword); earlier: enabled_precisions."""
    kwargs = compile_kwargs(set(VERSIONS[version]["CompilationSettings"]), torch, None, WORKSPACE_MB)
    if parse_version(version)[:2] >= (2, 10):
        assert kwargs["enable_autocast"] is True and kwargs["autocast_low_precision_type"] is torch.float16
        assert "enabled_precisions" not in kwargs and "use_explicit_typing" not in kwargs
    else:
        assert kwargs["enabled_precisions"] == {torch.half}


@pytest.mark.parametrize("version", SUPPORTED)
def test_save_keywords_exist(version):
    params = VERSIONS[version]["torch_tensorrt.save"]["params"]
    assert set(save_kwargs(example=None)) <= set(params)
    # every release takes retrace; passed explicitly, since its default became True in 2.10 and a
    # re-trace from the one example tensor would fix the saved program's height and width
    assert save_kwargs(example=None)["retrace"] is False


@pytest.mark.parametrize("version", TOO_OLD)
def test_releases_without_arg_inputs_are_refused(version):
    entry = VERSIONS[version]
    assert not _accepted(entry, "arg_inputs") and "arg_inputs" not in entry["torch_tensorrt.save"]["params"]
    (requirement,) = _extra("torch-tensorrt")
    assert not requirement.specifier.contains(version)
    with pytest.raises(TensorRTUnavailable, match=f"torch_tensorrt {version} is too old"):
        check_torch_tensorrt_version(version)


def test_supported_releases_are_allowed_by_the_pin():
    (requirement,) = _extra("torch-tensorrt")
    for version in SUPPORTED:
        assert requirement.specifier.contains(version)
        check_torch_tensorrt_version(version)


def test_tensorrt_pin_stops_before_12():
    tensorrt = next(r for r in _extra("tensorrt") if r.name == "tensorrt")
    assert tensorrt.specifier.contains("10.3.0") and tensorrt.specifier.contains("11.4.0")
    assert not tensorrt.specifier.contains("12.0.0") and not tensorrt.specifier.contains("10.2.0")
