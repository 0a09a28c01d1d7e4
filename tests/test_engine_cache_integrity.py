"""The engine cache names an engine after the ONNX bytes it was built from, and builds it once.

On copies of the shipped model (real files) with fake plans (TensorRT cannot be installed here,
tests/test_tensorrt_cache.py): another ONNX file at the same path whose manifest lost its hash is
refused rather than served the first model's engine (the key is the sha256 of the bytes); two
processes asking for one engine at once build it once (the second waits on the entry's lock, then
loads).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import time
import types
from pathlib import Path

import pytest
import yaml

from edge_runtime.config import DEFAULT_MODEL
from edge_runtime.errors import ConfigError
from edge_runtime.manifest import load_manifest, manifest_path
from edge_runtime.tensorrt.cache import LOAD, write_engine
from edge_runtime.tensorrt.engines import ensure_engine, plan_engine
from edge_runtime.tensorrt.key import GpuInfo

ORIN = GpuInfo("Orin", "8.7", 16)
TRT_JETPACK6 = "10.3.0.30"
PLAN = b"not-a-real-plan:" + bytes(range(256)) * 4
BUILD_SECONDS = 2.0  # long enough that both processes have decided before the first build ends
WAIT_SECONDS = 120  # generous: a loaded CI machine starts the spawned interpreters slowly


def _copy(folder: Path, model: Path = DEFAULT_MODEL) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DEFAULT_MODEL.name
    shutil.copy(model, target)
    shutil.copy(manifest_path(DEFAULT_MODEL), manifest_path(target))
    return target


def test_another_onnx_at_the_same_path_without_a_hash_gets_no_cached_engine(tmp_path):
    onnx = _copy(tmp_path / "model")
    first = plan_engine(onnx, tmp_path / "cache", "fp32", TRT_JETPACK6, ORIN)
    assert first.key.onnx_sha256 == hashlib.sha256(onnx.read_bytes()).hexdigest()  # the bytes name it
    write_engine(first.path, PLAN, first.key, first.manifest, onnx.name)
    assert plan_engine(onnx, tmp_path / "cache", "fp32", TRT_JETPACK6, ORIN).state.action == LOAD
    shutil.copy(DEFAULT_MODEL.with_name("model.fp16.onnx"), onnx)  # another model, same path
    data = yaml.safe_load(manifest_path(onnx).read_text())
    data.pop("sha256")
    manifest_path(onnx).write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match="'sha256'"):
        plan_engine(onnx, tmp_path / "cache", "fp32", TRT_JETPACK6, ORIN)


def _slow_build(log: Path, trt, onnx, build_path, profile, workspace, timing) -> bytes:
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(BUILD_SECONDS)
    return PLAN


class _Build:
    """A picklable stand-in builder that records each build in ``log`` (one line per build)."""

    def __init__(self, log: Path):
        self.log = log

    def __call__(self, *args) -> bytes:
        return _slow_build(self.log, *args)


def _ask_for_the_engine(onnx: Path, cache: Path, log: Path, barrier, results) -> None:
    trt = types.SimpleNamespace(__version__=TRT_JETPACK6, BuilderFlag=types.SimpleNamespace(FP16=object()))
    barrier.wait(WAIT_SECONDS)  # both decide at the same moment: neither finds an engine
    record = ensure_engine(onnx, cache, precision="fp32", trt=trt, gpu=ORIN, build=_Build(log))
    results.put(record.built)


def test_two_processes_build_one_engine_once(tmp_path):
    onnx, cache, log = _copy(tmp_path / "model"), tmp_path / "cache", tmp_path / "builds.log"
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test worker
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_ask_for_the_engine, args=(onnx, cache, log, barrier, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    built = sorted(results.get(timeout=WAIT_SECONDS) for _ in workers)
    for worker in workers:
        worker.join(WAIT_SECONDS)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert len(log.read_text().splitlines()) == 1 and built == [False, True]
    engines = list(cache.glob("*.engine"))
    assert len(engines) == 1 and load_manifest(engines[0]).sha256 == hashlib.sha256(PLAN).hexdigest()
