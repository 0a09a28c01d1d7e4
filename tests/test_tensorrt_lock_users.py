"""An engine cache shared by two users (an operator's 'sonomap export tensorrt' and the service user):
each can take the engine lock whoever created its file, and a build by one is not failed by the
pruning of the other's superseded engine. Engines are stand-in plan bytes; the second user is real:
a child process that imports sonomap as root, then switches to uid/gid 65534 ('nobody') with
os.setuid before it touches the cache. Without root no second user can be made: the tests skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from export_fixtures import copy_model, shared_tiny_onnx

from edge_runtime.manifest import manifest_path
from edge_runtime.tensorrt.cache import model_location, write_engine
from edge_runtime.tensorrt.engines import plan_engine
from edge_runtime.tensorrt.key import GpuInfo
from edge_runtime.tensorrt.lock import engine_lock, lock_path

REPO = Path(__file__).resolve().parents[1]
OTHER_ID = 65534  # 'nobody': a user that owns none of the files the test process makes
ORIN = GpuInfo("Orin", "8.7", 16)
PLAN = b"not-a-real-plan:" + bytes(range(256))
TRT_OLD, TRT_NEW = "10.3.0.30", "10.4.0.1"
SHARED_DIR_MODE, STICKY_DIR_MODE = 0o777, 0o1777
PRIVATE_LOCK_MODE = 0o600  # what LOCK_MODE becomes under a umask of 077
CHILD_TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="a second user needs root (os.setuid in a child process)"
)

# Runs as root until the switch: every module it needs is imported first (the interpreter's own
# folders need not be readable by the other user).
CHILD = f"""
import json, os, sys
from pathlib import Path
from edge_runtime.tensorrt import cache, engines, lock
from edge_runtime.tensorrt.key import GpuInfo

action, model, cache_dir, version = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
os.setgroups([])
os.setgid({OTHER_ID})
os.setuid({OTHER_ID})
plan = engines.plan_engine(model, cache_dir, "fp32", version, GpuInfo("Orin", "8.7", 16))
with lock.engine_lock(plan.path):
    pruned = []
    if action == "build":
        location = cache.model_location(model)
        cache.write_engine(plan.path, b"PLAN", plan.key, plan.manifest, model.name, location)
        pruned = [p.name for p in cache.prune_siblings(plan.path)]
print(json.dumps({{"uid": os.getuid(), "engine": plan.path.name, "pruned": pruned}}))
"""


@pytest.fixture
def shared():
    """A cache folder both users may write (pytest's own tmp folders are the test user's only)."""
    root = Path(tempfile.mkdtemp(prefix="sonomap-shared-"))
    try:
        if any(not parent.stat().st_mode & stat.S_IXOTH for parent in root.parents):
            pytest.skip(f"{root.parent} cannot be entered by another user")
        root.chmod(SHARED_DIR_MODE)
        model = copy_model(shared_tiny_onnx(), root / "model")
        cache = root / "engines"
        cache.mkdir(mode=SHARED_DIR_MODE)
        cache.chmod(SHARED_DIR_MODE)  # mkdir's mode is cut by the umask
        yield model, cache
    finally:
        shutil.rmtree(root)


def as_other_user(action: str, model: Path, cache: Path, version: str) -> dict:
    """Run CHILD as the other user; its JSON line (the test fails with its stderr when it fails)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, action, str(model), str(cache), version],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def built_by_this_user(model: Path, cache: Path, version: str) -> Path:
    """An engine as this user's build leaves it: plan, manifest and its lock file."""
    plan = plan_engine(model, cache, "fp32", version, ORIN)
    with engine_lock(plan.path):
        write_engine(plan.path, PLAN, plan.key, plan.manifest, model.name, model_location(model))
    return plan.path


def test_the_other_user_takes_a_lock_this_user_created(shared):
    model, cache = shared
    engine = built_by_this_user(model, cache, TRT_OLD)
    lock = lock_path(engine)
    assert lock.stat().st_uid == os.geteuid() and stat.S_IMODE(lock.stat().st_mode) & 0o002 == 0
    result = as_other_user("lock", model, cache, TRT_OLD)
    assert result == {"uid": OTHER_ID, "engine": engine.name, "pruned": []}


def test_a_read_only_lock_still_excludes_another_holder(shared):
    model, cache = shared
    engine = built_by_this_user(model, cache, TRT_OLD)
    with engine_lock(engine):
        other = os.open(lock_path(engine), os.O_RDONLY)  # another open file description, as another process
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)


def test_the_other_users_build_prunes_this_users_engine_and_its_lock(shared):
    model, cache = shared
    old = built_by_this_user(model, cache, TRT_OLD)
    result = as_other_user("build", model, cache, TRT_NEW)
    assert result["pruned"] == [old.name]
    assert not old.exists() and not manifest_path(old).exists() and not lock_path(old).exists()
    assert (cache / result["engine"]).is_file()


def test_a_lock_the_other_user_cannot_open_is_left_and_the_build_succeeds(shared):
    model, cache = shared
    old = built_by_this_user(model, cache, TRT_OLD)
    lock_path(old).chmod(PRIVATE_LOCK_MODE)
    result = as_other_user("build", model, cache, TRT_NEW)
    assert result["pruned"] == [old.name] and not old.exists() and not manifest_path(old).exists()
    assert lock_path(old).is_file()  # counted as held: its owner's to remove
    assert (cache / result["engine"]).is_file()


def test_in_a_sticky_folder_this_users_engine_is_left_and_the_build_succeeds(shared):
    """A sticky folder lets only a file's owner delete it: the other user's prune keeps it."""
    model, cache = shared
    cache.chmod(STICKY_DIR_MODE)
    old = built_by_this_user(model, cache, TRT_OLD)
    result = as_other_user("build", model, cache, TRT_NEW)
    assert result["pruned"] == []
    assert old.is_file() and manifest_path(old).is_file() and lock_path(old).is_file()
    assert (cache / result["engine"]).is_file()


def test_a_leftover_the_other_user_may_not_delete_is_left_and_the_build_succeeds(shared):
    """The temp file a stopped build of this user left (in a sticky folder, its owner's alone to
    delete) stays when the other user takes that engine's lock, with a warning, and the build goes on."""
    model, cache = shared
    cache.chmod(STICKY_DIR_MODE)
    engine = plan_engine(model, cache, "fp32", TRT_NEW, ORIN).path
    leftover = cache / f".{engine.name}.abcdefgh.tmp"  # the atomic writer's name for a temp file of it
    leftover.write_bytes(b"part of a plan")
    result = as_other_user("build", model, cache, TRT_NEW)
    assert result["engine"] == engine.name and engine.is_file() and leftover.is_file()
