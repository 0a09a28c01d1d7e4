"""Engine pruning keys on the model's location, not only its file name: two models both named
model.onnx, in different folders, share one engine cache without deleting each other's engines
(each deletion costs a rebuild of up to 20 minutes). Engines are stand-in plan bytes: only the
cache's files are exercised here, no TensorRT build."""

from __future__ import annotations

import types

import onnx
import pytest
from export_fixtures import copy_model, shared_tiny_onnx

from edge_runtime.manifest import load_manifest, manifest_path, save_manifest
from edge_runtime.tensorrt.cache import model_location, prune_siblings, write_engine
from edge_runtime.tensorrt.engines import ensure_engine, plan_engine
from edge_runtime.tensorrt.key import GpuInfo
from edge_runtime.tensorrt.lock import engine_lock, lock_path

ORIN = GpuInfo("Orin", "8.7", 16)
PLAN = b"not-a-real-plan:" + bytes(range(256))
TRT_OLD, TRT_MID, TRT_NEW = "10.3.0.30", "10.3.1.1", "10.4.0.1"


@pytest.fixture(scope="module")
def tiny_onnx():
    return shared_tiny_onnx()


def _engine(model, cache, trt_version: str, location: str | None):
    """Write a stand-in engine for ``model`` as the cache would after a build with ``trt_version``."""
    plan = plan_engine(model, cache, "fp16", trt_version, ORIN)
    write_engine(plan.path, PLAN, plan.key, plan.manifest, model.name, location)
    return plan.path


def _alive(path) -> bool:
    return path.is_file() and manifest_path(path).is_file()


def test_prune_deletes_only_the_same_models_older_engines(tiny_onnx, tmp_path):
    a = copy_model(tiny_onnx, tmp_path / "a")
    b = copy_model(tiny_onnx, tmp_path / "b")  # same name (and content), another folder
    cache = tmp_path / "engines"
    a_old = _engine(a, cache, TRT_OLD, model_location(a))
    b_own = _engine(b, cache, TRT_MID, model_location(b))
    a_new = _engine(a, cache, TRT_NEW, model_location(a))
    assert a_old.name.startswith("model-fp16-") and b_own.name.startswith("model-fp16-")  # one prefix

    assert prune_siblings(a_new) == [a_old]
    assert not a_old.exists() and not manifest_path(a_old).exists()
    assert _alive(b_own) and _alive(a_new)


def test_a_pruned_engines_lock_file_goes_unless_it_is_held(tiny_onnx, tmp_path):
    """Lock files do not pile up on a cart updated for months; one a process holds stays."""
    a = copy_model(tiny_onnx, tmp_path / "a")
    cache = tmp_path / "engines"
    idle, busy = _engine(a, cache, TRT_OLD, model_location(a)), _engine(a, cache, TRT_MID, model_location(a))
    new = _engine(a, cache, TRT_NEW, model_location(a))
    for engine in (idle, busy, new):
        with engine_lock(engine):  # as a build leaves them
            pass
    with engine_lock(busy):  # another open file description: flock conflicts as between processes
        assert sorted(prune_siblings(new)) == sorted([idle, busy])
        assert lock_path(busy).is_file()
    assert not lock_path(idle).exists() and lock_path(new).is_file()


def test_an_engine_of_unknown_origin_is_left_alone(tiny_onnx, tmp_path):
    """Engines cached before locations were recorded (or with an unreadable manifest) may belong to
    any model of that name: they are not deleted; and a kept engine without a location prunes nothing."""
    a = copy_model(tiny_onnx, tmp_path / "a")
    cache = tmp_path / "engines"
    legacy = _engine(a, cache, TRT_OLD, None)
    damaged = _engine(a, cache, TRT_MID, model_location(a))
    manifest_path(damaged).write_text("not: [valid")
    new = _engine(a, cache, TRT_NEW, model_location(a))
    assert prune_siblings(new) == []
    assert _alive(legacy) and damaged.is_file()
    assert prune_siblings(legacy) == []


def test_location_is_the_resolved_path(tiny_onnx, tmp_path, monkeypatch):
    a = copy_model(tiny_onnx, tmp_path / "a")
    monkeypatch.chdir(tmp_path)
    assert (
        model_location("a/model.onnx") == model_location(a) != model_location(tmp_path / "b" / "model.onnx")
    )
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert model_location(tmp_path / "link" / "model.onnx") == model_location(a)


def _update(model, tag: str) -> None:
    """Replace ``model`` in place with another export (other bytes, so another ONNX sha256)."""
    graph = onnx.load(str(model))
    graph.doc_string = f"{graph.doc_string} {tag}"
    onnx.save(graph, str(model))
    save_manifest(load_manifest(model, verify_hash=False), model)


BUILD_ARG_ONNX, BUILD_ARG_PROFILE = 1, 3  # positions in the build function's arguments


def _recording_build(builds: list, recorded_arg: int) -> dict:
    """ensure_engine options whose stand-in build records one of its arguments per build."""

    def build(*args):
        builds.append(args[recorded_arg])
        return PLAN

    trt = types.SimpleNamespace(__version__=TRT_OLD, BuilderFlag=types.SimpleNamespace(FP16=1))
    return {"trt": trt, "gpu": ORIN, "build": build}


def test_updating_one_model_keeps_the_other_models_engine(tiny_onnx, tmp_path):
    """Through ensure_engine, as the service and `export tensorrt` use it: models a/ and b/ share a
    cache; a/model.onnx is updated and rebuilt; b's engine is still loaded from the cache."""
    a = copy_model(tiny_onnx, tmp_path / "a")
    b = copy_model(tiny_onnx, tmp_path / "b")
    _update(b, "model b")  # another model under the same name
    cache = tmp_path / "engines"
    builds = []
    opts = _recording_build(builds, BUILD_ARG_ONNX)
    first_a = ensure_engine(a, cache, **opts)
    first_b = ensure_engine(b, cache, **opts)
    _update(a, "model a, version 2")
    second_a = ensure_engine(a, cache, **opts)
    assert second_a.built and not first_a.path.exists()  # a's superseded engine is pruned
    again_b = ensure_engine(b, cache, **opts)
    assert not again_b.built and again_b.path == first_b.path and len(builds) == 3


def test_engines_of_different_profiles_coexist(tiny_onnx, tmp_path):
    """`sonomap export tensorrt --min/--opt/--max` and the service (manifest profile) build two
    engines of one model: neither deletes the other, so neither is rebuilt. A rebuild of the same
    profile (an updated model) still replaces its predecessor, and so does a rebuilt same key."""
    a = copy_model(tiny_onnx, tmp_path / "a")
    cache = tmp_path / "engines"
    builds = []
    opts = _recording_build(builds, BUILD_ARG_PROFILE)
    custom = {"min": [1, 1, 64, 64], "opt": [1, 1, 480, 640], "max": [1, 1, 720, 960]}
    exported = ensure_engine(a, cache, profile=custom, **opts)
    service = ensure_engine(a, cache, **opts)
    assert exported.built and service.built and exported.path != service.path
    assert _alive(exported.path) and _alive(service.path)
    assert not ensure_engine(a, cache, profile=custom, **opts).built
    assert not ensure_engine(a, cache, **opts).built and len(builds) == 2

    wider = ensure_engine(a, cache, workspace_mb=2048, **opts)  # another workspace: another use too
    assert _alive(wider.path) and _alive(service.path)

    _update(a, "version 2")
    service_2 = ensure_engine(a, cache, **opts)
    assert service_2.built and not service.path.exists() and not manifest_path(service.path).exists()
    assert _alive(exported.path) and _alive(wider.path)  # other profiles: not superseded by this build

    again = ensure_engine(a, cache, force=True, **opts)  # the same key rebuilt: the file is replaced
    assert again.built and again.path == service_2.path and _alive(again.path)
    assert sorted(p.name for p in cache.glob("*.engine")) == sorted(
        p.name for p in (exported.path, wider.path, service_2.path)
    )


def test_a_pruned_engines_leftover_temp_files_go_unless_its_lock_is_held(tiny_onnx, tmp_path):
    """A killed writer's hidden plan (hundreds of MB) beside an engine that is then superseded: that
    engine is never built again, so its lock is never taken to remove it; pruning does, when idle."""
    a = copy_model(tiny_onnx, tmp_path / "a")
    cache = tmp_path / "engines"
    idle, busy = _engine(a, cache, TRT_OLD, model_location(a)), _engine(a, cache, TRT_MID, model_location(a))
    new = _engine(a, cache, TRT_NEW, model_location(a))
    # the atomic writer's names for temp files of each engine's plan and manifest
    left = {
        e: [cache / f".{e.name}.abcdefgh.tmp", cache / f".{e.name}.yaml.abcdefgh.tmp"] for e in (idle, busy)
    }
    for engine in (idle, busy, new):
        with engine_lock(engine):  # as a build leaves them
            pass
    for path in left[idle]:  # then a rebuild of it (--force) killed as it wrote
        path.write_bytes(b"part of a plan")
    with engine_lock(busy):  # its writer runs: what it writes now is no leftover
        for path in left[busy]:
            path.write_bytes(b"part of a plan")
        assert sorted(prune_siblings(new)) == sorted([idle, busy])
        assert all(path.is_file() for path in left[busy])
    assert not any(path.exists() for path in left[idle])
