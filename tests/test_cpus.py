"""Thread counts derived from the CPUs this process may use (edge_runtime/cpus.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from edge_runtime import cpus


@pytest.mark.parametrize(
    "cores, decode, encode, render",
    [(1, 1, 1, 1), (2, 1, 1, 1), (6, 3, 1, 1), (8, 4, 2, 2), (16, 8, 4, 4), (64, 8, 8, 4)],
)
def test_codec_and_render_threads_follow_the_affinity_mask(monkeypatch, cores, decode, encode, render):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert cpus.available_cores() == cores
    assert (cpus.decode_threads(), cpus.encode_threads(), cpus.render_workers()) == (decode, encode, render)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) not installed")
def test_available_cores_is_the_real_affinity():
    """taskset -c 0 limits this process to one core; the rules must see that, not os.cpu_count()."""
    code = "from edge_runtime import cpus; print(cpus.available_cores(), cpus.decode_threads())"
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]


@pytest.mark.parametrize("env, expected", [(None, 1), ("3", 3)])
def test_opencv_runs_single_threaded_unless_the_user_says_otherwise(env, expected):
    """OpenCV reads OPENCV_FOR_THREADS_NUM at import; the runtime only lowers the default."""
    code = (
        "import cv2; from edge_runtime import cpus; cpus.limit_opencv_threads(); print(cv2.getNumThreads())"
    )
    environ = {k: v for k, v in os.environ.items() if k != cpus.OPENCV_THREADS_ENV}
    if env is not None:
        environ[cpus.OPENCV_THREADS_ENV] = env
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environ
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == expected
