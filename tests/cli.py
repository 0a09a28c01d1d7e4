"""Test helper: run the real ``sonomap`` command (``python -m edge_runtime.cli``) in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli_fork import run_forked

DEFAULT_TIMEOUT_S = 300
EXIT_USER_ERROR = 2
STDERR_TAIL = 3000
FORK_ENV = "SONOMAP_TEST_FORK"  # "0": start every command as a new interpreter (slower, for comparison)


def sonomap(
    *args, check: bool = True, timeout: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``sonomap ARGS`` in a new process (forked from the per-process fork server of
    :mod:`cli_fork`, or a new interpreter with ``SONOMAP_TEST_FORK=0``), with ``env`` added to this
    process's environment; with ``check`` the exit status must be 0 (the failure shows stderr's tail)."""
    argv = list(map(str, args))
    if os.environ.get(FORK_ENV, "1") != "0":
        out = run_forked(argv, timeout=timeout, env=env)
    else:
        out = subprocess.run(
            [sys.executable, "-m", "edge_runtime.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    if check:
        assert out.returncode == 0, out.stderr[-STDERR_TAIL:]
    return out


def one_line_error(capsys, code: int) -> str:
    """The CLI's error after a command refused in process (``main([...])``): exit status 2, one line,
    no traceback. The CLI redacts identifiers other tests in this process registered, so expected
    paths go through ``redact`` too."""
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert "\n" not in err and "Traceback" not in err, err
    return err


def simulate_biopsy(
    busi: Path,
    out: Path,
    n: int = 1,
    seed: int = 3,
    wsi_mpp: float | None = 8,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> subprocess.CompletedProcess:
    """``sonomap simulate-biopsy`` on a BUSI-layout folder (``images/``, ``masks/``) into ``out``; must
    exit 0. ``wsi_mpp``: the simulated slides' µm per pixel (coarse 8 keeps tests fast; None: the
    command's default)."""
    mpp = () if wsi_mpp is None else ("--wsi-mpp", wsi_mpp)
    return sonomap(
        "simulate-biopsy",
        *("--images", busi / "images", "--masks", busi / "masks", "--out", out),
        *("--n", n, "--seed", seed, *mpp),
        timeout=timeout,
    )
