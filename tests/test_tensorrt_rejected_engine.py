"""A cached engine TensorRT rejects is replaced once, even when two processes reject it together.

Process A rejects the cached plan, deletes it and builds a good one while process B, which read the
same bad plan just before, is still inside TensorRT. B must then load A's engine, not delete it and
build a second time. On real files with stand-in plan bytes and a stand-in runtime (TensorRT cannot
be installed here); A runs inside B's deserialise call, which is where the race puts it.
"""

from __future__ import annotations

import types

import pytest
from export_fixtures import copy_model, shared_tiny_onnx

from edge_runtime.errors import ConfigError
from edge_runtime.tensorrt import engines
from edge_runtime.tensorrt.key import GpuInfo

GOOD, BAD = b"GOOD-PLAN", b"BAD-PLAN"
OPTS = {
    "precision": "fp16",
    "trt": types.SimpleNamespace(__version__="10.3.0.30", BuilderFlag=types.SimpleNamespace(FP16=0)),
    "gpu": GpuInfo("Orin", "8.7", 16),
}


class Runtime:
    """``trt.Runtime``: returns None for a plan it rejects (``deserialize_cuda_engine`` docstring,
    pyCoreDoc.h 10.3). ``meanwhile`` runs once, while a rejected plan is being deserialised."""

    def __init__(self, meanwhile=None):
        self.meanwhile = meanwhile

    def deserialize_cuda_engine(self, blob):
        if bytes(blob) == GOOD:
            return ("engine", bytes(blob))
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return None


@pytest.fixture
def cached_bad(tmp_path):
    """A model whose cached engine matches its manifest but is rejected by TensorRT."""
    model = copy_model(shared_tiny_onnx(), tmp_path / "m")
    engines.ensure_engine(model, tmp_path / "cache", build=lambda *a: BAD, **OPTS)
    return model, tmp_path / "cache"


def test_two_processes_rejecting_one_engine_build_it_once(cached_bad):
    model, cache = cached_bad
    builds, seen = [], {}

    def build(*args):
        builds.append(args)
        return GOOD

    def process_a():
        seen["a"] = engines.load_engine(Runtime(), model, cache, build=build, **OPTS)

    engine, record = engines.load_engine(Runtime(meanwhile=process_a), model, cache, build=build, **OPTS)
    engine_a, record_a = seen["a"]
    assert engine == engine_a == ("engine", GOOD)
    assert len(builds) == 1 and record_a.built and not record.built
    assert record.path.read_bytes() == GOOD


def test_an_engine_that_vanishes_before_it_is_read_is_rebuilt(cached_bad, monkeypatch):
    """Another process may prune the file between the cache check and the read."""
    model, cache = cached_bad
    real = engines.ensure_engine
    calls = []

    def ensure_then_vanish(*args, **kwargs):
        record = real(*args, **kwargs)
        calls.append(record)
        if len(calls) == 1:
            record.path.unlink()
        return record

    monkeypatch.setattr(engines, "ensure_engine", ensure_then_vanish)
    engine, record = engines.load_engine(Runtime(), model, cache, build=lambda *a: GOOD, **OPTS)
    assert engine == ("engine", GOOD) and record.built


def test_an_engine_still_rejected_after_the_rebuild_is_one_config_error(cached_bad):
    model, cache = cached_bad
    with pytest.raises(ConfigError, match="cannot deserialise the engine it just built"):
        engines.load_engine(Runtime(), model, cache, build=lambda *a: BAD, **OPTS)
