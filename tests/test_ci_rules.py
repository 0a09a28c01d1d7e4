"""The CI rules: on CI a test that needs Xvfb, systemd or Chromium fails when the tool is
missing (off CI it skips); `make sysdeps` fails when root + apt cannot install them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ci_rules import missing_required_tool, on_ci

WINDOW_TEST = "tests/test_runtime_sinks.py::test_window_sink_under_xvfb"
CHILD_TIMEOUT_S = 240


@pytest.mark.parametrize(
    "reason,tool",
    [
        ("Xvfb not installed (apt-get install xvfb)", "Xvfb"),
        ("systemd-analyze not installed (apt-get install systemd)", "systemd-analyze"),
        ("chromium/chromedriver not installed (apt-get install chromium chromium-driver)", "chromium"),
        ("needs systemd-sysusers and root (chown in the temp root)", "systemd-sysusers"),
        ("no CUDA device on this machine", None),
        ("full BUSI set not found at /x (set SONOMAP_BUSI)", None),
        ("openssl not installed (apt-get install openssl)", "openssl"),
        ("xdotool not installed (apt-get install xdotool)", "xdotool"),
        ("TensorRT/pycuda not installed", None),
        ("Orthanc not installed (Debian package orthanc)", "Orthanc"),
        ("orthanc-dicomweb not installed (/usr/share/orthanc/plugins/x.so not found)", "orthanc-dicomweb"),
        ("highdicom not installed (pacs extra)", "highdicom"),
    ],
)
def test_which_skips_are_required_tools(reason, tool):
    assert missing_required_tool(reason) == tool


def test_ci_flag():
    assert on_ci({"CI": "true"}) and on_ci({"CI": "1"}) and not on_ci({}) and not on_ci({"CI": "false"})


def run_without_system_tools(repo: Path, ci: str) -> subprocess.CompletedProcess:
    """The window test in a child pytest whose PATH holds only the venv: Xvfb cannot be found."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", WINDOW_TEST],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )


def test_missing_xvfb_skips_off_ci_and_fails_on_ci(repo_root):
    off = run_without_system_tools(repo_root, "")
    assert off.returncode == 0 and "1 skipped" in off.stdout, off.stdout[-2000:]
    on = run_without_system_tools(repo_root, "true")
    assert on.returncode != 0, on.stdout[-2000:]
    assert "CI=true but Xvfb is missing" in on.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_sysdeps_fails_as_root_when_a_package_cannot_be_installed(repo_root, tmp_path):
    """A fake apt-get that always fails stands in for a broken mirror; a fake tool list makes
    one package missing. As root with apt, that must be an error, not a warning."""
    if os.geteuid() != 0:
        pytest.skip("the rule applies to root only (non-root may only warn)")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-get").write_text("#!/bin/sh\necho 'E: Unable to locate package' >&2\nexit 100\n")
    (fake / "apt-get").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    res = subprocess.run(
        ["make", "-s", "sysdeps", "SYSDEPS=sonomap-no-such-tool:sonomap-no-such-package"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0, res.stdout + res.stderr
    assert "could not install" in res.stderr and "sonomap-no-such-package" in res.stderr
    ok = subprocess.run(
        ["make", "-s", "sysdeps", "SYSDEPS=sh:dash"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr  # nothing missing: apt is never called
    # a tool given as a path is a file that must exist (the Orthanc DICOMweb plugin is a library)
    present = subprocess.run(
        ["make", "-s", "sysdeps", f"SYSDEPS={fake / 'apt-get'}:sonomap-no-such-package"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert present.returncode == 0, present.stderr
    absent = subprocess.run(
        ["make", "-s", "sysdeps", f"SYSDEPS={tmp_path / 'no-such.so'}:sonomap-no-such-package"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert absent.returncode != 0 and "sonomap-no-such-package" in absent.stderr


def test_every_test_has_a_time_limit(request):
    assert float(request.config.getini("timeout")) > 0
    assert request.config.getini("timeout_method") == "thread"


def test_a_hung_test_is_stopped_by_the_configured_timeout(repo_root, tmp_path):
    """With this project's pytest settings (limit shortened to 3 s), a test stuck in a blocking
    native call is ended and reported, so a hang cannot stall CI."""
    hung = tmp_path / "test_hung.py"
    hung.write_text("import socket\n\ndef test_hangs():\n    a, b = socket.socketpair()\n    a.recv(1)\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(repo_root / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-o",
            "timeout=3",
            str(hung),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0
    assert "Timeout" in res.stdout + res.stderr and "test_hangs" in res.stdout + res.stderr
