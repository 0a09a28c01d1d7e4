"""On a terminal that can only show ASCII (PYTHONIOENCODING=ascii, a serial console), a command's
non-ASCII text (register's "µm/px") comes out escaped; it crashed with exit 1 after the outputs were
written. A real interpreter with that encoding, not the tests' fork server."""

from __future__ import annotations

import os
import subprocess
import sys

from cli import simulate_biopsy


def test_a_terminal_that_cannot_show_micro_gets_an_escape_not_a_traceback(tmp_path, busi_sample):
    """register prints the slide's scale in µm/px; on an ASCII-only stdout (PYTHONIOENCODING=ascii, a
    serial console) the outputs were written and then the summary line crashed with exit 1."""
    cases = tmp_path / "cases"
    simulate_biopsy(busi_sample, cases, n=1, seed=0)
    case = next(cases.glob("*/case.yaml"))
    run = subprocess.run(
        [sys.executable, "-m", "edge_runtime.cli", "register", str(case), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        encoding="ascii",
        errors="strict",
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        timeout=300,
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "\\xb5m/px" in run.stdout, run.stdout
