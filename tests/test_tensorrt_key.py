"""What an engine key holds beyond the model and TensorRT: the exact GPU (its SM count too, also for
an engine file given directly) and the schema of the build settings, so an engine built with other
settings is never loaded. Real exported ONNX files; stand-in plan bytes (no TensorRT build here)."""

from __future__ import annotations

import dataclasses

import pytest
from export_fixtures import copy_model, shared_tiny_onnx

from edge_runtime.errors import ConfigError
from edge_runtime.tensorrt.cache import BUILD, check_engine_file, engine_path, inspect_cached, write_engine
from edge_runtime.tensorrt.engines import plan_engine
from edge_runtime.tensorrt.key import KEY_SCHEMA, GpuInfo

ORIN = GpuInfo("Orin", "8.7", 16)
ORIN_8_SM = GpuInfo("Orin", "8.7", 8)  # same name and compute capability, a smaller module
TRT_JETPACK6 = "10.3.0.30"
PLAN = b"not-a-real-plan:" + bytes(range(256))
# The schema of engines built before TF32 was cleared on the FP32 path (an "fp32" engine of
# that schema runs its convolutions in TF32 on Ampere and later GPUs).
TF32_SCHEMA = 1


@pytest.fixture
def model(tmp_path):
    return copy_model(shared_tiny_onnx(), tmp_path / "m")


def test_an_engine_file_for_another_sm_count_is_refused(model, tmp_path):
    plan = plan_engine(model, tmp_path / "engines", "fp16", TRT_JETPACK6, ORIN)
    write_engine(plan.path, PLAN, plan.key, plan.manifest, model.name)
    assert check_engine_file(plan.path, ORIN, TRT_JETPACK6) == plan.key
    with pytest.raises(ConfigError) as refused:
        check_engine_file(plan.path, ORIN_8_SM, TRT_JETPACK6)
    text = str(refused.value)
    assert text.startswith(f"{plan.path}: engine unusable here: built for Orin (sm 8.7, 16 SMs)")
    assert "this machine has Orin (sm 8.7, 8 SMs)" in text and "sonomap export tensorrt" in text
    # the cache agrees: that GPU needs another engine file
    assert plan_engine(model, tmp_path / "engines", "fp16", TRT_JETPACK6, ORIN_8_SM).path != plan.path


def test_the_key_schema_names_the_cache_file(model, tmp_path):
    key = plan_engine(model, tmp_path, "fp32", TRT_JETPACK6, ORIN).key
    assert key.schema == KEY_SCHEMA and key.to_dict()["schema"] == KEY_SCHEMA
    other = dataclasses.replace(key, schema=KEY_SCHEMA + 1)
    assert engine_path(tmp_path, model.stem, other) != engine_path(tmp_path, model.stem, key)


def test_an_engine_built_with_tf32_on_is_not_loaded_as_fp32(model, tmp_path):
    """An FP32 engine cached before the build settings changed has the same ONNX, GPU, TensorRT,
    profile and workspace: only the schema tells it apart, and it must be built again."""
    cache = tmp_path / "engines"
    needed = plan_engine(model, cache, "fp32", TRT_JETPACK6, ORIN)
    old_key = dataclasses.replace(needed.key, schema=TF32_SCHEMA)
    old_path = engine_path(cache, model.stem, old_key)
    write_engine(old_path, PLAN, old_key, needed.manifest, model.name)
    assert old_path != needed.path
    assert plan_engine(model, cache, "fp32", TRT_JETPACK6, ORIN).state.action == BUILD
    stale = inspect_cached(old_path, needed.key)  # the old file judged against today's needs
    assert stale.action == BUILD and f"schema: engine has {TF32_SCHEMA}, needed {KEY_SCHEMA}" in stale.reason
